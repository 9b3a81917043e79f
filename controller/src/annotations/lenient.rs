//! Go's lenient value parsing (`ParseBool`, `Atoi`) and the warning for an unusable value,
//! shared by the annotation readers and validators.

/// An annotation whose value was not usable, and what was used instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationWarning {
    /// The full annotation key, e.g. `nginx.ingress.kubernetes.io/canary-weight`.
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl std::fmt::Display for AnnotationWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "annotation {}={:?}: {}", self.key, self.value, self.reason)
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.Atoi` on a 64-bit platform: optional sign, ASCII digits only, no spaces.
pub fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

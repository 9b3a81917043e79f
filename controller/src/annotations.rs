//! ingress-nginx's canary annotations, read leniently: Go `ParseBool`/`Atoi`, defaults on error.
//!
//! A value that does not parse falls back to its default and yields a warning; the Ingress
//! is never rejected for it (docs/canary-semantics.md §1). Turning the values into a
//! [`CanaryDoc`] that `weir-config` accepts (clamping, D2, D5) happens in [`canary_doc`].
//! The main Ingress's per-rule settings (body size, timeouts, protocol, redirects) are in
//! [`rule`]. Every ingress-nginx key's classification (honoured, refused, ignored, unknown)
//! is in [`catalog`], ingress-nginx's value validators in [`validate`], and the judgement
//! of one Ingress's annotations against the catalog in [`evaluate`].

use std::collections::BTreeMap;

use weir_config::model::DEFAULT_WEIGHT_TOTAL;
use weir_config::wire::{BackendDoc, CanaryDoc};

pub mod catalog;
pub mod evaluate;
mod lenient;
pub mod rule;
pub mod validate;
pub use evaluate::{evaluate, Evaluation, Finding, Verdict};
pub use lenient::{parse_bool, parse_int, AnnotationWarning};
pub use rule::{read_rule, RuleAnnotations};

/// The canary annotations of one Ingress, after lenient parsing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CanaryAnnotations {
    /// `canary`: this Ingress is an alternative backend for a main Ingress.
    pub enabled: bool,
    /// `canary-weight`, default 0.
    pub weight: i64,
    /// `canary-weight-total`, default 100.
    pub weight_total: i64,
    pub header: Option<String>,
    pub header_value: Option<String>,
    pub header_pattern: Option<String>,
    pub cookie: Option<String>,
    /// `service-upstream` as the canary Ingress sets it (ingress-nginx reads it there; filled
    /// by translation).
    pub service_upstream: bool,
    /// Why this canary is refused (its paired main rules answer 503); set by translation.
    pub refused: Option<String>,
    /// `affinity-canary-behavior: legacy` on this canary (set by translation).
    pub legacy_affinity: bool,
}

impl CanaryAnnotations {
    /// True when any canary setting beyond `canary` itself is present; used to warn about
    /// an Ingress that sets them without `canary: "true"` ("configured but not enabled").
    pub fn any_setting(&self) -> bool {
        self.weight > 0
            || self.header.is_some()
            || self.header_value.is_some()
            || self.header_pattern.is_some()
            || self.cookie.is_some()
    }
}

const CANARY_NAMES: [&str; 7] = [
    "canary",
    "canary-weight",
    "canary-weight-total",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
];

/// Read the canary annotations under `prefix` (e.g. `nginx.ingress.kubernetes.io`).
/// Empty string values count as absent, as in ingress-nginx's annotation parser.
pub fn read_canary(
    annotations: Option<&BTreeMap<String, String>>,
    prefix: &str,
) -> (CanaryAnnotations, Vec<AnnotationWarning>) {
    let mut warnings = Vec::new();
    let mut out = CanaryAnnotations { weight_total: i64::from(DEFAULT_WEIGHT_TOTAL), ..Default::default() };
    let Some(annotations) = annotations else { return (out, warnings) };
    // One pass over the Ingress's annotations instead of a formatted key per lookup.
    let mut found: [Option<(&String, &String)>; CANARY_NAMES.len()] = Default::default();
    for (k, v) in annotations {
        let Some(name) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else { continue };
        if let Some(i) = CANARY_NAMES.iter().position(|n| *n == name) {
            found[i] = Some((k, v)).filter(|_| !v.trim().is_empty());
        }
    }
    let get = |name: &str| {
        let i = CANARY_NAMES.iter().position(|n| *n == name)?;
        found[i].map(|(k, v)| (k.clone(), v.clone()))
    };
    if let Some((key, value)) = get("canary") {
        match parse_bool(&value) {
            Some(b) => out.enabled = b,
            None => {
                warnings.push(AnnotationWarning { key, value, reason: "not a boolean; using false".into() })
            }
        }
    }
    for (name, slot, default) in [
        ("canary-weight", &mut out.weight, 0),
        ("canary-weight-total", &mut out.weight_total, i64::from(DEFAULT_WEIGHT_TOTAL)),
    ] {
        if let Some((key, value)) = get(name) {
            match parse_int(&value) {
                Some(n) => *slot = n,
                None => warnings.push(AnnotationWarning {
                    key,
                    value,
                    reason: format!("not an integer; using {default}"),
                }),
            }
        }
    }
    let mut checked = |name: &str| checked(get(name), name, &mut warnings);
    out.header = checked("canary-by-header");
    out.header_value = checked("canary-by-header-value");
    out.header_pattern = checked("canary-by-header-pattern");
    out.cookie = checked("canary-by-cookie");
    (out, warnings)
}

/// A string canary value after ingress-nginx's validator for its key ([`catalog::check`]):
/// a value with characters outside the key's set is dropped with a warning, as
/// ingress-nginx drops it (e.g. a bad `canary-by-header-value` leaves always/never).
fn checked(
    found: Option<(String, String)>,
    name: &str,
    warnings: &mut Vec<AnnotationWarning>,
) -> Option<String> {
    let (key, value) = found?;
    match catalog::check(name, &value) {
        Some((catalog::Checked::Valid(v), _)) => Some(v),
        Some((catalog::Checked::Invalid(reason) | catalog::Checked::Unsupported(reason), fallback)) => {
            warnings.push(AnnotationWarning { key, value, reason: format!("{reason}; using {fallback}") });
            None
        }
        None => Some(value),
    }
}

/// Build the wire canary from parsed annotations, so that `weir-config` always accepts it:
/// negative weight → 0, total < 1 → 100 (D2), weight above total → total (same decision:
/// always canary), an invalid header name or cookie name → dropped, a pattern the `regex`
/// crate rejects → `invalidHeaderPattern` (D5). Each repair is returned as a warning.
pub fn canary_doc(
    a: &CanaryAnnotations,
    prefix: &str,
    backend: BackendDoc,
) -> (CanaryDoc, Vec<AnnotationWarning>) {
    let mut warnings = Vec::new();
    let key = |name: &str| format!("{prefix}/{name}");
    let mut total = a.weight_total;
    if total < 1 {
        warnings.push(AnnotationWarning {
            key: key("canary-weight-total"),
            value: total.to_string(),
            reason: format!("must be at least 1; using {DEFAULT_WEIGHT_TOTAL}"),
        });
        total = i64::from(DEFAULT_WEIGHT_TOTAL);
    }
    let total = total.min(i64::from(u32::MAX));
    let mut weight = a.weight;
    if weight < 0 {
        warnings.push(AnnotationWarning {
            key: key("canary-weight"),
            value: weight.to_string(),
            reason: "is negative; using 0".into(),
        });
        weight = 0;
    }
    let weight = weight.min(total);
    let mut doc = CanaryDoc {
        backend,
        weight: Some(weight),
        weight_total: Some(total),
        cookie: None,
        ..Default::default()
    };
    match &a.header {
        Some(name) if http::HeaderName::from_bytes(name.as_bytes()).is_err() => {
            warnings.push(AnnotationWarning {
                key: key("canary-by-header"),
                value: name.clone(),
                reason: "is not a valid HTTP header name; header routing disabled".into(),
            });
        }
        Some(name) => {
            doc.header = Some(name.clone());
            if let Some(v) = &a.header_value {
                // ingress-nginx: the value wins and the pattern is ignored.
                doc.header_value = Some(v.clone());
            } else if let Some(p) = &a.header_pattern {
                match regex::Regex::new(p) {
                    Ok(_) => doc.header_pattern = Some(p.clone()),
                    Err(e) => {
                        warnings.push(AnnotationWarning {
                            key: key("canary-by-header-pattern"),
                            value: p.clone(),
                            reason: format!(
                                "is not a valid pattern ({}); requests carrying the header go to stable",
                                e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
                            ),
                        });
                        doc.invalid_header_pattern = Some(p.clone());
                    }
                }
            }
        }
        None => {}
    }
    if let Some(c) = &a.cookie {
        if weir_config::checks::is_token(c) {
            doc.cookie = Some(c.clone());
        } else {
            warnings.push(AnnotationWarning {
                key: key("canary-by-cookie"),
                value: c.clone(),
                reason: "is not a valid cookie name; cookie routing disabled".into(),
            });
        }
    }
    (doc, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_parse_bool_accepts_exactly_its_spellings() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["yes", "tRUE", " true", "", "on"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn go_atoi_takes_a_sign_and_digits_only() {
        assert_eq!(parse_int("20"), Some(20));
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("-3"), Some(-3));
        assert_eq!(parse_int("007"), Some(7));
        for bad in ["", "+", "1.5", " 5", "5 ", "1e3", "0x10", "99999999999999999999"] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
    }
}

//! Regular-expression paths and path rewrites, as ingress-nginx makes them.
//!
//! A host with `regexPaths` (ingress-nginx: any Ingress of the host with `use-regex`, or with a
//! `rewrite-target` other than its path) matches every rule's path as nginx's
//! `location ~* "^<path>"`: a case-insensitive regular expression anchored at the start only,
//! tried in ingress-nginx's order (longest path first, then the greater path), the first that
//! matches wins. A rule's `rewrite` replaces the **whole** path the upstream gets, as nginx's
//! `rewrite "(?i)<path>" <target> break` does: `$1`…`$9` are the rule path's capture groups
//! in the normalized request path; the query is carried as received. Patterns use the
//! linear-time `regex` crate: PCRE-only syntax (look-around, back-references) is refused.

use std::borrow::Cow;

use regex::Regex;

use crate::field::FieldError;

/// Where this module's checks report: validation's list.
type Errors = Vec<FieldError>;

fn push(errs: &mut Errors, field: impl Into<String>, reason: impl Into<String>) {
    errs.push(FieldError { field: field.into(), reason: reason.into() });
}

/// A regex host's matcher: every rule's anchored pattern, in match order, each behind the
/// literal its matches must start with (a few byte comparisons rule most patterns out before
/// any automaton runs).
#[derive(Debug)]
pub struct RegexPaths {
    /// (the literal prefix, `(?i)^<path>`, route index), in match order.
    patterns: Vec<(Literal, Regex, usize)>,
}

/// A pattern's lower-cased ASCII literal prefix, its first 8 bytes also as one word, so that
/// most patterns are ruled out by one comparison.
#[derive(Debug)]
struct Literal {
    bytes: Box<[u8]>,
    word: u64,
    mask: u64,
}

impl Literal {
    fn new(lit: &str) -> Literal {
        let bytes: Box<[u8]> = lit.as_bytes().into();
        let n = bytes.len().min(8);
        Literal {
            word: word(&bytes[..n]),
            mask: if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 },
            bytes,
        }
    }

    /// Whether a path whose first 8 bytes lower-cased are `head` (see [`RegexPaths::route_for`])
    /// can start with the literal under `(?i)`.
    fn could_start(&self, path: &[u8], head: u64) -> bool {
        path.len() >= self.bytes.len()
            && head & self.mask == self.word
            && (self.bytes.len() <= 8 || path[8..self.bytes.len()].eq_ignore_ascii_case(&self.bytes[8..]))
    }
}

/// Up to 8 bytes as a little-endian word, ASCII lower-cased.
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    for (d, b) in w.iter_mut().zip(bytes) {
        *d = b.to_ascii_lowercase();
    }
    u64::from_le_bytes(w)
}

impl RegexPaths {
    /// From (path, route index) pairs: sorted into ingress-nginx's order, each path as
    /// `(?i)^<path>`. The paths compiled one by one before ([`pattern`]).
    pub(crate) fn new(mut paths: Vec<(String, usize)>) -> Result<RegexPaths, regex::Error> {
        paths.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| b.0.cmp(&a.0)));
        let patterns = paths
            .into_iter()
            .map(|(p, i)| Ok((Literal::new(&literal_prefix(&p)), Regex::new(&anchored(&p))?, i)))
            .collect::<Result<_, regex::Error>>()?;
        Ok(RegexPaths { patterns })
    }

    /// The route of the first pattern (in match order) that matches a normalized path.
    pub(crate) fn route_for(&self, path: &str) -> Option<usize> {
        let bytes = path.as_bytes();
        // A non-ASCII byte (whose Unicode case folds could match an ASCII `k` or `s`) leaves
        // every pattern to its regex.
        if !bytes.is_ascii() {
            return self.patterns.iter().find(|(_, regex, _)| regex.is_match(path)).map(|p| p.2);
        }
        let head = word(&bytes[..bytes.len().min(8)]);
        self.patterns
            .iter()
            .find(|(lit, regex, _)| lit.could_start(bytes, head) && regex.is_match(path))
            .map(|p| p.2)
    }
}

/// The ASCII literal every match of `^<path>` starts with (lower-cased): the leading plain
/// characters, less one that a quantifier after it makes optional; nothing when the pattern
/// has an alternation outside any group (`^/a|/b` matches `/b` anywhere).
fn literal_prefix(path: &str) -> String {
    if top_level_alternation(path) {
        return String::new();
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/-_~:@=,;!%'\"<>`".contains(c);
    let mut lit: String = path.chars().take_while(|c| plain(*c)).collect();
    if matches!(path[lit.len()..].chars().next(), Some('?' | '*' | '{')) {
        lit.pop();
    }
    lit.to_ascii_lowercase()
}

/// A `|` outside groups and classes, not escaped.
fn top_level_alternation(path: &str) -> bool {
    let (mut depth, mut class, mut escaped) = (0usize, false, false);
    for c in path.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' if !class => class = true,
            ']' if class => class = false,
            _ if class => {}
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

fn anchored(path: &str) -> String {
    format!("(?i)^{path}")
}

/// A rule path of a regex host, compiled alone so that its error names the rule.
pub(crate) fn pattern(errs: &mut Errors, at: &str, path: &str) -> Option<()> {
    match Regex::new(&anchored(path)) {
        Ok(_) => Some(()),
        Err(e) => {
            push(
                errs,
                format!("{at}.path"),
                format!("{path:?} is not a regular expression weir runs: {}", reason(&e)),
            );
            None
        }
    }
}

/// The `regex` crate's reason, with what it means for PCRE-only syntax.
fn reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(&text).trim();
    let last = last.strip_prefix("error: ").unwrap_or(last);
    if text.contains("look-around") || text.contains("backreferences") {
        format!("{last} (PCRE-only syntax: weir's engine is linear-time)")
    } else {
        last.to_string()
    }
}

/// One piece of a rewrite target or forwarded prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Group(usize),
}

/// A rule's rewrite.
#[derive(Debug)]
pub struct Rewrite {
    /// The rule path, case-insensitive (nginx's `rewrite "(?i)<path>"`); run with the
    /// capture slots on the stack.
    regex: regex_automata::meta::Regex,
    /// The pattern is anchored at the start (searched anchored: the one-pass engine).
    anchored: bool,
    /// The group of a trailing `(.*)` (ingress-nginx's usual `/app(/|$)(.*)`), taken off the
    /// compiled pattern: it always matches the rest of the path up to a line feed, so `regex`
    /// finds the same groups without it and its text is what follows the match, and the
    /// one-pass engine does not record a match at every byte of the tail.
    tail: Option<usize>,
    target: Vec<Part>,
    prefix: Option<Vec<Part>>,
}

/// What the upstream gets instead of the request's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The new path (escaped) and the request's query.
    pub path_and_query: String,
    /// `X-Forwarded-Prefix`, when the rule asks for it.
    pub prefix: Option<String>,
}

impl Rewrite {
    /// Parse `target` (and `prefix`) against the rule path: in a regex host the path is the
    /// pattern, elsewhere it is taken literally (and has no groups).
    pub(crate) fn new(
        errs: &mut Errors,
        at: &str,
        path: &str,
        regex_host: bool,
        target: &str,
        prefix: Option<&str>,
    ) -> Option<Rewrite> {
        let source = if regex_host { Cow::Borrowed(path) } else { Cow::Owned(regex::escape(path)) };
        // nginx's rewrite is unanchored; a request the rule matched has a match at the start,
        // which is the leftmost, so anchoring finds the same groups faster, unless an
        // alternation outside groups lets the rule match elsewhere.
        let anchor = if top_level_alternation(&source) { "" } else { "^" };
        let pattern = format!("(?i){anchor}{source}");
        let anchored = anchor == "^";
        let (regex, groups, tail) = compile(&pattern, anchored)?; // its error is the path's
        let before = errs.len();
        if !(target.starts_with('/') || target.starts_with('$')) {
            push(errs, format!("{at}.target"), format!("{target:?} must start with / or a $n group"));
        }
        let target = parts(errs, &format!("{at}.target"), target, groups);
        let prefix = prefix.map(|p| parts(errs, &format!("{at}.forwardedPrefix"), p, groups));
        (errs.len() == before).then_some(Rewrite { regex, anchored, tail, target, prefix })
    }

    /// Whether the pattern's trailing `(.*)` was taken off (its tests).
    #[cfg(test)]
    pub(crate) fn splits_tail(&self) -> bool {
        self.tail.is_some()
    }

    /// The upstream's path and query for a request's normalized path
    /// (`matching::normalize_request_path`) and its query as received: nginx's whole-path
    /// replacement, escaped; `None` when the rule's path does not occur in it (a request the
    /// rule matched always has it).
    pub fn apply(&self, normalized: &str, query: Option<&str>) -> Option<Rewritten> {
        // Groups $0..$9: the only ones a target may name.
        let mut slots = [None; 20];
        let anchored =
            if self.anchored { regex_automata::Anchored::Yes } else { regex_automata::Anchored::No };
        self.regex.search_slots(&regex_automata::Input::new(normalized).anchored(anchored), &mut slots)?;
        if let Some(g) = self.tail {
            let end = slots[1].map_or(0, |e| e.get());
            let stop = normalized[end..].find('\n').map_or(normalized.len(), |i| end + i);
            slots[2 * g] = regex_automata::util::primitives::NonMaxUsize::new(end);
            slots[2 * g + 1] = regex_automata::util::primitives::NonMaxUsize::new(stop);
        }
        let caps = Groups { hay: normalized, slots: &slots };
        let mut out = String::with_capacity(normalized.len() + query.map_or(0, |q| q.len() + 1) + 8);
        for part in &self.target {
            let piece = match part {
                Part::Text(t) => t.as_str(),
                Part::Group(g) => caps.get(*g),
            };
            if out.is_empty() && !piece.is_empty() && !piece.starts_with('/') {
                out.push('/');
            }
            escape_path_into(&mut out, piece);
        }
        if out.is_empty() {
            out.push('/');
        }
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        let prefix = self.prefix.as_ref().map(|p| expand(p, &caps));
        Some(Rewritten { path_and_query: out, prefix })
    }
}

/// The rewrite's regex for `pattern`, its number of groups, and the group of a trailing
/// `(.*)` it was compiled without (only for a pattern searched anchored: the match starts at
/// the path's start, so the rest of the pattern's leftmost-first match is the same with or
/// without the tail).
fn compile(pattern: &str, anchored: bool) -> Option<(regex_automata::meta::Regex, usize, Option<usize>)> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let groups = hir.properties().explicit_captures_len();
    let (hir, tail) = match anchored.then(|| without_trailing_any(&hir, groups)).flatten() {
        Some(head) => (head, Some(groups)),
        None => (hir, None),
    };
    let regex = regex_automata::meta::Builder::new().build_from_hir(&hir).ok()?;
    Some((regex, groups, tail))
}

/// `hir` without its last element when that is a greedy `(.*)` and the last of its `groups`
/// (opened last, so the other groups keep their numbers).
fn without_trailing_any(hir: &regex_syntax::hir::Hir, groups: usize) -> Option<regex_syntax::hir::Hir> {
    use regex_syntax::hir::{Dot, Hir, HirKind};
    let HirKind::Concat(subs) = hir.kind() else { return None };
    let (last, rest) = subs.split_last()?;
    let HirKind::Capture(c) = last.kind() else { return None };
    let HirKind::Repetition(r) = c.sub.kind() else { return None };
    let any = r.min == 0 && r.max.is_none() && r.greedy && *r.sub == Hir::dot(Dot::AnyCharExceptLF);
    (any && c.index as usize == groups).then(|| Hir::concat(rest.to_vec()))
}

/// A match's groups, from its capture slots.
struct Groups<'a> {
    hay: &'a str,
    slots: &'a [Option<regex_automata::util::primitives::NonMaxUsize>],
}

impl<'a> Groups<'a> {
    /// Group `g`'s text; empty when it did not take part.
    fn get(&self, g: usize) -> &'a str {
        match (self.slots.get(2 * g).copied().flatten(), self.slots.get(2 * g + 1).copied().flatten()) {
            (Some(s), Some(e)) => self.hay.get(s.get()..e.get()).unwrap_or(""),
            _ => "",
        }
    }
}

fn expand(parts: &[Part], caps: &Groups<'_>) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Group(g) => out.push_str(caps.get(*g)),
        }
    }
    out
}

/// `$1`…`$9` and text; anything else after `$`, a control, a space, `?` or `#` is an error.
fn parts(errs: &mut Errors, at: &str, s: &str, groups: usize) -> Vec<Part> {
    if s.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#') {
        push(errs, at, format!("{s:?} contains a space, control character, '?' or '#'"));
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        if i > 0 {
            out.push(Part::Text(rest[..i].to_string()));
        }
        let after = &rest[i + 1..];
        match after.bytes().next() {
            Some(d @ b'1'..=b'9') => {
                let g = usize::from(d - b'0');
                if g > groups {
                    push(
                        errs,
                        at,
                        format!("${g} names a capture group the path does not have (it has {groups})"),
                    );
                }
                out.push(Part::Group(g));
                rest = &after[1..];
            }
            _ => {
                push(errs, at, format!("{s:?}: a $ must start a capture group reference $1..$9"));
                return Vec::new();
            }
        }
    }
    if !rest.is_empty() {
        out.push(Part::Text(rest.to_string()));
    }
    out
}

/// Percent-encode onto `out` what a path may not carry as is (RFC 3986 `pchar` and `/` stay).
fn escape_path_into(out: &mut String, piece: &str) {
    if piece.bytes().all(|b| KEEP[usize::from(b)]) {
        out.push_str(piece);
        return;
    }
    for b in piece.bytes() {
        if KEEP[usize::from(b)] {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// The bytes a rewritten path carries as they are: RFC 3986 `pchar` and `/`.
const KEEP: [bool; 256] = {
    let mut keep = [false; 256];
    let mut b = 0;
    while b < 256 {
        keep[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let marks = b"-._~!$&'()*+,;=:@/";
    let mut i = 0;
    while i < marks.len() {
        keep[marks[i] as usize] = true;
        i += 1;
    }
    keep
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// What a regex host's validation says of one rule path: its number of capture groups, or
/// why weir cannot run it (the controller checks each Ingress's rule alone with this, so one
/// bad pattern costs that rule, not the table).
pub fn check_pattern(path: &str) -> Result<usize, String> {
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(format!("{path:?} contains a space or control character"));
    }
    Regex::new(&anchored(path)).map(|r| r.captures_len() - 1).map_err(|e| reason(&e))
}

/// What validation says of a rewrite target (or forwarded prefix, `target: false`) for a
/// path with `groups` capture groups.
pub fn check_target(value: &str, groups: usize, target: bool) -> Result<(), String> {
    let mut errs = Vec::new();
    if target && !(value.starts_with('/') || value.starts_with('$')) {
        return Err(format!("{value:?} must start with / or a $n group"));
    }
    parts(&mut errs, "", value, groups);
    errs.into_iter().next().map_or(Ok(()), |e| Err(e.reason))
}

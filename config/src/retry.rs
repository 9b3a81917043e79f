//! Which failed attempts are tried again on another endpoint (ingress-nginx's
//! `proxy-next-upstream`, `-tries`, `-timeout`), and the per-write send timeout
//! (`proxy-send-timeout`).
//!
//! The default is ingress-nginx's: `error timeout`, 3 tries, no time limit. A request that
//! may have reached an upstream is sent again only when its method is idempotent, unless
//! `non_idempotent` is given; a request whose body weir streamed is never sent twice (weir
//! does not buffer bodies to replay them), and nothing is sent again once any response byte
//! reached the client.

use std::time::Duration;

use http::StatusCode;

use crate::field::FieldError;
use crate::wire::RetryDoc;

/// At most this many endpoints are tried for one request, whatever `tries` says (nginx's
/// `proxy_next_upstream_tries 0`, no limit, is this many).
pub const MAX_TRIES: u8 = 16;

/// ingress-nginx's `proxy-next-upstream-tries`.
pub const DEFAULT_TRIES: u8 = 3;

/// ingress-nginx's `proxy-send-timeout`.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The conditions of `proxy-next-upstream`, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryOn(u16);

impl RetryOn {
    /// Connecting failed, or the connection failed before a response head arrived.
    pub const ERROR: RetryOn = RetryOn(1);
    /// Connecting or the response head took longer than its timeout.
    pub const TIMEOUT: RetryOn = RetryOn(1 << 1);
    /// The upstream's answer was not HTTP.
    pub const INVALID_HEADER: RetryOn = RetryOn(1 << 2);
    /// Requests with a method that is not idempotent may be sent again too.
    pub const NON_IDEMPOTENT: RetryOn = RetryOn(1 << 3);
    const STATUS_BASE: u16 = 4;
    /// The statuses nginx can retry on, in bit order after `STATUS_BASE`.
    const STATUSES: [u16; 7] = [500, 502, 503, 504, 403, 404, 429];
    /// Nothing is retried (`off`).
    pub const OFF: RetryOn = RetryOn(0);

    /// The set of a name (`error`, `http_503`, …), if nginx knows it.
    pub fn named(name: &str) -> Option<RetryOn> {
        Some(match name {
            "error" => Self::ERROR,
            "timeout" => Self::TIMEOUT,
            "invalid_header" => Self::INVALID_HEADER,
            "non_idempotent" => Self::NON_IDEMPOTENT,
            "off" => Self::OFF,
            _ => {
                let code: u16 = name.strip_prefix("http_")?.parse().ok()?;
                let i = Self::STATUSES.iter().position(|s| *s == code)?;
                RetryOn(1 << (Self::STATUS_BASE + i as u16))
            }
        })
    }

    pub fn contains(self, other: RetryOn) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether an upstream answer with this status is tried again.
    pub fn status(self, status: StatusCode) -> bool {
        let bits = self.0 >> Self::STATUS_BASE;
        bits != 0
            && Self::STATUSES.iter().enumerate().any(|(i, s)| bits & (1 << i) != 0 && *s == status.as_u16())
    }

    /// Whether any status is tried again (the common case is none: one branch).
    pub fn any_status(self) -> bool {
        self.0 >> Self::STATUS_BASE != 0
    }
}

impl std::ops::BitOr for RetryOn {
    type Output = RetryOn;
    fn bitor(self, rhs: RetryOn) -> RetryOn {
        RetryOn(self.0 | rhs.0)
    }
}

/// A rule's retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub on: RetryOn,
    /// Endpoints tried at most, 1 ..= [`MAX_TRIES`] (1: none is tried again).
    pub tries: u8,
    /// No attempt starts later than this after the first one (`None`: no limit).
    pub timeout: Option<Duration>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { on: RetryOn::ERROR | RetryOn::TIMEOUT, tries: DEFAULT_TRIES, timeout: None }
    }
}

/// Build a rule's retry policy: every mistake is a field error under `at`.
pub(crate) fn build(errs: &mut Vec<FieldError>, at: &str, doc: &RetryDoc) -> Option<Retry> {
    let before = errs.len();
    let mut retry = Retry::default();
    if let Some(on) = &doc.on {
        let mut set = RetryOn::OFF;
        for (i, name) in on.iter().enumerate() {
            match RetryOn::named(name) {
                Some(_) if name == "off" && on.len() > 1 => errs.push(FieldError {
                    field: format!("{at}.on[{i}]"),
                    reason: "\"off\" cannot be combined with other conditions".into(),
                }),
                Some(c) => set = set | c,
                None => errs.push(FieldError {
                    field: format!("{at}.on[{i}]"),
                    reason: format!(
                        "{name:?} is not one of error, timeout, invalid_header, non_idempotent, http_500, http_502, http_503, http_504, http_403, http_404, http_429, off"
                    ),
                }),
            }
        }
        retry.on = set;
    }
    if let Some(tries) = doc.tries {
        match tries {
            0 => retry.tries = MAX_TRIES,
            1..=255 => retry.tries = (tries as u8).min(MAX_TRIES),
            _ => errs.push(FieldError {
                field: format!("{at}.tries"),
                reason: format!("{tries} is not 0 (as many as allowed, {MAX_TRIES}) or 1..255"),
            }),
        }
    }
    if let Some(t) = &doc.timeout {
        match humantime::parse_duration(t) {
            Ok(d) if d.is_zero() => retry.timeout = None,
            Ok(d) => retry.timeout = Some(d),
            Err(e) => errs.push(FieldError {
                field: format!("{at}.timeout"),
                reason: format!("{t:?} is not a duration like 500ms, 5s or 2m (0: no limit): {e}"),
            }),
        }
    }
    (errs.len() == before).then_some(retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(on: &[&str], tries: Option<i64>, timeout: Option<&str>) -> RetryDoc {
        RetryDoc {
            on: Some(on.iter().map(|s| s.to_string()).collect()),
            tries,
            timeout: timeout.map(String::from),
        }
    }

    #[test]
    fn conditions_statuses_and_limits() {
        let mut errs = Vec::new();
        let r = build(&mut errs, "r", &doc(&["error", "http_503", "non_idempotent"], Some(5), Some("3s")))
            .expect("valid");
        assert!(errs.is_empty());
        assert!(r.on.contains(RetryOn::ERROR) && r.on.contains(RetryOn::NON_IDEMPOTENT));
        assert!(!r.on.contains(RetryOn::TIMEOUT));
        assert!(r.on.status(StatusCode::SERVICE_UNAVAILABLE) && r.on.any_status());
        assert!(!r.on.status(StatusCode::BAD_GATEWAY) && !r.on.status(StatusCode::OK));
        assert_eq!((r.tries, r.timeout), (5, Some(Duration::from_secs(3))));

        let off = build(&mut errs, "r", &doc(&["off"], Some(0), Some("0"))).expect("valid");
        assert_eq!((off.on, off.tries, off.timeout), (RetryOn::OFF, MAX_TRIES, None));
        assert!(!off.on.any_status() && !off.on.contains(RetryOn::ERROR));

        let d = Retry::default();
        assert!(d.on.contains(RetryOn::ERROR | RetryOn::TIMEOUT) && !d.on.any_status());
        assert_eq!(d.tries, 3);
    }

    #[test]
    fn every_mistake_names_its_field() {
        let mut errs = Vec::new();
        let r = build(
            &mut errs,
            "hosts[0].rules[1].retry",
            &doc(&["error", "http_418", "off"], Some(-1), Some("soon")),
        );
        assert!(r.is_none());
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "hosts[0].rules[1].retry.on[1]",
                "hosts[0].rules[1].retry.on[2]",
                "hosts[0].rules[1].retry.tries",
                "hosts[0].rules[1].retry.timeout"
            ]
        );
        assert!(errs[0].reason.contains("\"http_418\" is not one of"), "{}", errs[0].reason);
    }
}

//! A rule's rate limits (ingress-nginx's `limit-rps`, `limit-rpm`, `limit-burst-multiplier`,
//! `limit-connections`, `limit-allowlist`): per client address, counted in a zone that
//! every rule naming it shares (ingress-nginx: one zone per Ingress).
//!
//! As nginx's `limit_req … burst=rate×multiplier nodelay`: a client may send `rate` requests
//! per second (or minute) on average and a burst of `rate × burstMultiplier` above it at
//! once; beyond that it gets `status` (503). `connections` bounds a client's requests in
//! progress at once (nginx's `limit_conn`). Clients in `allowlist` are not limited.

use std::net::IpAddr;

use http::StatusCode;

use crate::access::CidrSet;
use crate::field::FieldError;
use crate::wire::RateLimitDoc;

/// A rule's rate limits.
#[derive(Debug)]
pub struct RateLimit {
    /// The zone: rules with the same name (and policy) count together.
    pub zone: String,
    /// Requests per second (`limit-rps`) and the burst above it (rate × multiplier).
    pub per_second: Option<Rate>,
    /// Requests per minute (`limit-rpm`) and the burst above it.
    pub per_minute: Option<Rate>,
    /// Requests in progress at once per client (`limit-connections`).
    pub connections: Option<u32>,
    allowlist: CidrSet,
    /// The answer to a limited request (ingress-nginx's `limit-req-status-code`, 503).
    pub status: StatusCode,
}

/// A rate with its burst, both in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub requests: u32,
    /// Per this many seconds (1 or 60).
    pub per_secs: u32,
    pub burst: u32,
}

impl RateLimit {
    /// Whether `client` is limited at all (not in the allowlist).
    pub fn applies_to(&self, client: IpAddr) -> bool {
        !self.allowlist.contains(client)
    }
}

/// Build a rule's rate limit; `default_zone` names its zone when the document does not.
pub(crate) fn build(
    errs: &mut Vec<FieldError>,
    at: &str,
    doc: &RateLimitDoc,
    default_zone: &str,
) -> Option<RateLimit> {
    let before = errs.len();
    let mut err =
        |field: &str, reason: String| errs.push(FieldError { field: format!("{at}.{field}"), reason });
    let positive = |v: Option<i64>, field: &str, err: &mut dyn FnMut(&str, String)| match v {
        None => None,
        Some(n) if (1..=1_000_000).contains(&n) => Some(n as u32),
        Some(n) => {
            err(field, format!("{n} is not within 1..1000000"));
            None
        }
    };
    let multiplier = match doc.burst_multiplier {
        None => 5,
        Some(m) if (1..=1000).contains(&m) => m as u32,
        Some(m) => {
            err("burstMultiplier", format!("{m} is not within 1..1000"));
            1
        }
    };
    let rate = |n: u32, per_secs: u32| Rate { requests: n, per_secs, burst: n.saturating_mul(multiplier) };
    let per_second = positive(doc.rps, "rps", &mut err).map(|n| rate(n, 1));
    let per_minute = positive(doc.rpm, "rpm", &mut err).map(|n| rate(n, 60));
    let connections = positive(doc.connections, "connections", &mut err);
    if per_second.is_none()
        && per_minute.is_none()
        && connections.is_none()
        && doc.rps.is_none()
        && doc.rpm.is_none()
        && doc.connections.is_none()
    {
        err("rps", "a rate limit needs rps, rpm or connections".into());
    }
    let status = match doc.status {
        None => StatusCode::SERVICE_UNAVAILABLE,
        Some(s) => match u16::try_from(s)
            .ok()
            .filter(|s| (400..=599).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
        {
            Some(s) => s,
            None => {
                err("status", format!("{s} is not within 400..599"));
                StatusCode::SERVICE_UNAVAILABLE
            }
        },
    };
    let zone = match &doc.zone {
        Some(z) if z.is_empty() || z.len() > 253 || z.chars().any(char::is_control) => {
            err("zone", format!("{z:?} must be 1 to 253 characters, none a control"));
            String::new()
        }
        Some(z) => z.clone(),
        None => default_zone.to_string(),
    };
    let allowlist = crate::access::parse_cidrs(errs, &format!("{at}.allowlist"), &doc.allowlist);
    (errs.len() == before).then_some(RateLimit {
        zone,
        per_second,
        per_minute,
        connections,
        allowlist,
        status,
    })
}

#[cfg(test)]
mod tests {
    use crate::test_support::{field_errors, one_host};

    fn limited(doc: &str) -> Result<crate::RouteTable, crate::ConfigError> {
        one_host(&format!(
            "      - path: /api\n        backend: {{ endpoints: [] }}\n        rateLimit: {doc}\n"
        ))
    }

    #[test]
    fn a_rate_limit_takes_nginx_s_burst_and_its_zone_defaults_to_the_rule() {
        let t = limited("{ rps: 10, rpm: 100, connections: 3, allowlist: [10.0.0.0/8] }").expect("valid");
        let r = t.match_route("app.example.com", "/api").unwrap().unwrap();
        let l = r.rate_limit.as_ref().expect("limited");
        assert_eq!(l.zone, "app.example.com/api");
        assert_eq!(l.per_second.map(|r| (r.requests, r.per_secs, r.burst)), Some((10, 1, 50)));
        assert_eq!(l.per_minute.map(|r| (r.requests, r.per_secs, r.burst)), Some((100, 60, 500)));
        assert_eq!((l.connections, l.status.as_u16()), (Some(3), 503));
        assert!(!l.applies_to("10.1.2.3".parse().unwrap()) && l.applies_to("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn every_bad_rate_limit_field_is_named() {
        let cases = [
            ("{ rps: 0 }", "rps", "is not within 1..1000000"),
            ("{ rpm: -3 }", "rpm", "is not within 1..1000000"),
            ("{ connections: 0 }", "connections", "is not within 1..1000000"),
            ("{ rps: 1, burstMultiplier: 0 }", "burstMultiplier", "is not within 1..1000"),
            ("{ rps: 1, status: 200 }", "status", "is not within 400..599"),
            ("{ rps: 1, zone: '' }", "zone", "must be 1 to 253 characters"),
            ("{ rps: 1, allowlist: [10.0.0.1/8] }", "allowlist[0]", "has host bits set"),
            ("{ }", "rps", "needs rps, rpm or connections"),
        ];
        for (doc, field, reason) in cases {
            let errs = field_errors(limited(doc));
            assert_eq!(errs.len(), 1, "{doc}: {errs:?}");
            assert_eq!(errs[0].0, format!("hosts[0].rules[0].rateLimit.{field}"), "{doc}");
            assert!(errs[0].1.contains(reason), "{doc}: {:?}", errs[0].1);
        }
    }
}

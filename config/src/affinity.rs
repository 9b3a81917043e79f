//! Session affinity (ingress-nginx's `affinity: cookie` and `session-cookie-*`) and weir's
//! sticky canary assignment: the pure parts, the proxy applies them (`proxy/src/serve.rs`).
//!
//! **Affinity.** A cookie (`INGRESSCOOKIE` by default) names an endpoint and the backend it
//! belongs to, `<key>|<backend key>` as ingress-nginx writes it. `balanced` (the default):
//! the key is random and picks the endpoint by rendezvous hashing over the backend's
//! endpoints, so a scale-up moves only the share of clients the new endpoints take;
//! `persistent`: the key is the endpoint's own hash, and a client moves only when its
//! endpoint is gone. A request without a cookie for the backend it goes to gets one.
//! With `canaryBehavior: sticky` (ingress-nginx's default) a client whose cookie names the
//! stable or the canary backend stays on that side; `legacy`: only stable is sticky and the
//! canary sets no cookie. Unlike ingress-nginx, the canary header and cookie (and managed
//! header routes) still win over an affinity cookie: a tester's `X-Canary: always` reaches
//! the canary even with a stable session.
//!
//! **Sticky canary assignment** (weir's own): a client draws a point in `0..POINTS` once,
//! kept in a cookie; the weight stage sends it to the canary when `point × total <
//! weight × POINTS`. While the weight only grows, a client on the canary stays there and one
//! on stable moves only when the weight passes its point: nobody flips back and forth.

use std::net::SocketAddr;

use http::HeaderValue;

use crate::field::FieldError;
use crate::wire::{AffinityDoc, StickyAssignmentDoc};

/// ingress-nginx's default cookie name.
pub const DEFAULT_COOKIE: &str = "INGRESSCOOKIE";
/// The sticky assignment cookie's default name.
pub const DEFAULT_POINT_COOKIE: &str = "weir-canary-point";
/// A sticky assignment point is in `0..POINTS`.
pub const POINTS: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Balanced,
    Persistent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    None,
    Lax,
    Strict,
}

/// A rule's session affinity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affinity {
    pub cookie: String,
    pub mode: Mode,
    /// The cookie's Path; `None`: the rule's path (ingress-nginx's location path).
    pub path: Option<String>,
    pub domain: Option<String>,
    pub max_age: Option<i64>,
    /// Seconds from the answer to the cookie's Expires.
    pub expires: Option<i64>,
    pub same_site: Option<SameSite>,
    /// Leave `SameSite=None` out for browsers that reject it.
    pub conditional_same_site_none: bool,
    /// `None`: Secure on HTTPS answers only.
    pub secure: Option<bool>,
    /// When the cookie's endpoint failed and another answered, point the cookie elsewhere.
    pub change_on_failure: bool,
    /// ingress-nginx's `affinity-canary-behavior: sticky` (true) or `legacy`.
    pub canary_sticky: bool,
}

/// A canary's sticky assignment: the point cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyAssignment {
    pub cookie: String,
    pub max_age: Option<i64>,
}

/// The backend key a cookie carries: a hash of the backend's upstream name
/// (`BackendId::upstream_name`), the same on every replica and after restarts.
pub fn backend_key(upstream_name: &str) -> String {
    format!("{:016x}", fnv(upstream_name.as_bytes(), FNV_OFFSET))
}

/// A cookie's value from `Cookie` headers: the first `name=value` pair named `name`.
pub fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// An affinity cookie's parts: `(key, backend key)`.
pub fn split_value(value: &str) -> Option<(&str, &str)> {
    let (key, backend) = value.split_once('|')?;
    (!key.is_empty() && !backend.is_empty()).then_some((key, backend))
}

impl Affinity {
    /// The endpoint a cookie key names among `endpoints`, if any.
    pub fn endpoint_for(&self, key: &str, salt: &str, endpoints: &[SocketAddr]) -> Option<usize> {
        match self.mode {
            Mode::Balanced => rendezvous(fnv(key.as_bytes(), FNV_OFFSET), endpoints),
            Mode::Persistent => endpoints.iter().position(|e| endpoint_key(salt, *e) == key),
        }
    }

    /// A new cookie key: balanced, a random one whose endpoint is not in `avoid` (20 draws
    /// at most, as ingress-nginx); persistent, the key of `answered`.
    pub fn new_key(
        &self,
        salt: &str,
        endpoints: &[SocketAddr],
        answered: Option<SocketAddr>,
        avoid: Option<SocketAddr>,
    ) -> Option<String> {
        match self.mode {
            Mode::Persistent => answered.map(|a| endpoint_key(salt, a)),
            Mode::Balanced => (0..20).find_map(|_| {
                let key = format!("{:016x}", fastrand::u64(..));
                let at = self.endpoint_for(&key, salt, endpoints)?;
                (Some(endpoints[at]) != avoid).then_some(key)
            }),
        }
    }

    /// The `Set-Cookie` value for `key|backend`. `now_unix` dates `Expires`.
    pub fn set_cookie(
        &self,
        key: &str,
        backend: &str,
        rule_path: &str,
        https: bool,
        user_agent: Option<&str>,
        now_unix: u64,
    ) -> Option<HeaderValue> {
        let mut c = format!("{}={key}|{backend}", self.cookie);
        c.push_str("; Path=");
        c.push_str(self.path.as_deref().unwrap_or(rule_path));
        if let Some(secs) = self.expires {
            let at =
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(now_unix.saturating_add_signed(secs));
            c.push_str("; Expires=");
            c.push_str(&httpdate::fmt_http_date(at));
        }
        if let Some(age) = self.max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if let Some(domain) = &self.domain {
            c.push_str("; Domain=");
            c.push_str(domain);
        }
        let same_site = match self.same_site {
            Some(SameSite::None)
                if self.conditional_same_site_none && !same_site_none_compatible(user_agent) =>
            {
                None
            }
            s => s,
        };
        match same_site {
            Some(SameSite::None) => c.push_str("; SameSite=None"),
            Some(SameSite::Lax) => c.push_str("; SameSite=Lax"),
            Some(SameSite::Strict) => c.push_str("; SameSite=Strict"),
            None => {}
        }
        if self.secure.unwrap_or(https) {
            c.push_str("; Secure");
        }
        c.push_str("; HttpOnly");
        HeaderValue::from_str(&c).ok()
    }
}

impl StickyAssignment {
    /// The point a request's cookie carries, if it is one.
    pub fn point(&self, headers: &http::HeaderMap) -> Option<u32> {
        cookie(headers, &self.cookie)?.parse().ok().filter(|p| *p < POINTS)
    }

    /// A fresh point.
    pub fn draw() -> u32 {
        fastrand::u32(..POINTS)
    }

    /// The `Set-Cookie` for a point.
    pub fn set_cookie(&self, point: u32, https: bool) -> HeaderValue {
        let mut c = format!("{}={point}; Path=/", self.cookie);
        if let Some(age) = self.max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if https {
            c.push_str("; Secure");
        }
        c.push_str("; HttpOnly; SameSite=Lax");
        HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static(""))
    }
}

/// The weight stage's draw for a point: `1..=total`, canary when it is at most the weight,
/// so a point is on the canary exactly when `point × total < weight × POINTS`.
pub fn point_roll(point: u32, total: u32) -> u32 {
    (u64::from(point) * u64::from(total) / u64::from(POINTS)) as u32 + 1
}

/// ingress-nginx's list of browsers that reject `SameSite=None` (Chromium's
/// "incompatible clients").
pub fn same_site_none_compatible(user_agent: Option<&str>) -> bool {
    let Some(ua) = user_agent else { return true };
    let old_chrome = ["Chrome/4", "Chrome/5", "Chrome/6"].iter().any(|p| ua.contains(p));
    let ios12 = ua.contains("CPU iPhone OS 12") || ua.contains("iPad; CPU OS 12");
    let mac_safari = ua.contains("Macintosh")
        && ua.contains("Intel Mac OS X 10_14")
        && ua.contains("Safari")
        && !ua.contains("Chrome");
    !(old_chrome || ios12 || mac_safari)
}

/// A persistent cookie's key for an endpoint: its address hashed with the backend's name.
fn endpoint_key(salt: &str, endpoint: SocketAddr) -> String {
    format!("{:016x}", fnv(endpoint.to_string().as_bytes(), fnv(salt.as_bytes(), FNV_OFFSET)))
}

/// The endpoint with the highest score for `key` (rendezvous hashing).
fn rendezvous(key: u64, endpoints: &[SocketAddr]) -> Option<usize> {
    let score = |e: &SocketAddr| {
        let h = match e.ip() {
            std::net::IpAddr::V4(ip) => fnv(&ip.octets(), FNV_OFFSET),
            std::net::IpAddr::V6(ip) => fnv(&ip.octets(), FNV_OFFSET),
        };
        mix(key ^ fnv(&e.port().to_be_bytes(), h))
    };
    (0..endpoints.len()).max_by_key(|i| score(&endpoints[*i]))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// splitmix64's finalizer: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Build a rule's affinity: every mistake is a field error under `at`.
pub(crate) fn build(errs: &mut Vec<FieldError>, at: &str, doc: &AffinityDoc) -> Option<Affinity> {
    let before = errs.len();
    let mut err =
        |field: &str, reason: String| errs.push(FieldError { field: format!("{at}.{field}"), reason });
    let cookie = doc.cookie.clone().unwrap_or_else(|| DEFAULT_COOKIE.into());
    if !is_token(&cookie) {
        err("cookie", format!("{cookie:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"));
    }
    let mode = match doc.mode.as_deref() {
        None | Some("balanced") => Mode::Balanced,
        Some("persistent") => Mode::Persistent,
        Some(other) => {
            err("mode", format!("{other:?} is not one of balanced, persistent"));
            Mode::Balanced
        }
    };
    let canary_sticky = match doc.canary_behavior.as_deref() {
        None | Some("sticky") => true,
        Some("legacy") => false,
        Some(other) => {
            err("canaryBehavior", format!("{other:?} is not one of sticky, legacy"));
            true
        }
    };
    let same_site = match doc.same_site.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("none") => Some(SameSite::None),
        Some("lax") => Some(SameSite::Lax),
        Some("strict") => Some(SameSite::Strict),
        Some(_) => {
            err(
                "sameSite",
                format!("{:?} is not one of None, Lax, Strict", doc.same_site.as_deref().unwrap_or("")),
            );
            None
        }
    };
    let attr = |v: &Option<String>, field: &str, err: &mut dyn FnMut(&str, String)| {
        let v = v.as_ref()?;
        if v.is_empty() || v.bytes().any(|b| b.is_ascii_control() || b == b';' || b == b' ' || b == b',') {
            err(field, format!("{v:?} cannot be a cookie attribute (no spaces, ; or ,)"));
            return None;
        }
        Some(v.clone())
    };
    let path = attr(&doc.path, "path", &mut err);
    if path.as_deref().is_some_and(|p| !p.starts_with('/')) {
        err("path", "must start with /".into());
    }
    let domain = attr(&doc.domain, "domain", &mut err);
    for (field, v) in [("maxAge", doc.max_age), ("expires", doc.expires)] {
        if v.is_some_and(|s| s < 0 && field == "expires") {
            err(field, format!("{} is negative", v.unwrap_or(0)));
        }
    }
    let affinity = Affinity {
        cookie,
        mode,
        path,
        domain,
        max_age: doc.max_age,
        expires: doc.expires,
        same_site,
        conditional_same_site_none: doc.conditional_same_site_none.unwrap_or(false),
        secure: doc.secure,
        change_on_failure: doc.change_on_failure.unwrap_or(false),
        canary_sticky,
    };
    (errs.len() == before).then_some(affinity)
}

/// Build a canary's sticky assignment.
pub(crate) fn build_sticky(
    errs: &mut Vec<FieldError>,
    at: &str,
    doc: &StickyAssignmentDoc,
) -> Option<StickyAssignment> {
    let cookie = doc.cookie.clone().unwrap_or_else(|| DEFAULT_POINT_COOKIE.into());
    if !is_token(&cookie) {
        errs.push(FieldError {
            field: format!("{at}.cookie"),
            reason: format!("{cookie:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"),
        });
        return None;
    }
    Some(StickyAssignment { cookie, max_age: doc.max_age })
}

/// An RFC 6265 cookie name (an HTTP token).
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u8) -> Vec<SocketAddr> {
        (1..=n).map(|i| SocketAddr::from(([192, 0, 2, i], 8080))).collect()
    }

    fn affinity(mode: Mode) -> Affinity {
        let doc = AffinityDoc {
            mode: Some(if mode == Mode::Balanced { "balanced" } else { "persistent" }.into()),
            ..Default::default()
        };
        build(&mut Vec::new(), "a", &doc).expect("valid")
    }

    #[test]
    fn balanced_keys_spread_and_a_scale_up_moves_only_the_new_endpoint_s_share() {
        let a = affinity(Mode::Balanced);
        let (four, five) = (addrs(4), addrs(5));
        let keys: Vec<String> = (0..2000).map(|i| format!("{i:016x}")).collect();
        let mut per = [0usize; 4];
        let mut moved = 0;
        for k in &keys {
            let at = a.endpoint_for(k, "s", &four).expect("an endpoint");
            per[at] += 1;
            let after = a.endpoint_for(k, "s", &five).expect("an endpoint");
            if after != at {
                assert_eq!(after, 4, "a key only ever moves to the new endpoint");
                moved += 1;
            }
        }
        // 500 each within 5σ (σ ≈ 19.4), and a fifth of the keys moved (400 ± 5σ, σ ≈ 17.9).
        assert!(per.iter().all(|n| (403..=597).contains(n)), "{per:?}");
        assert!((311..=489).contains(&moved), "{moved}");
    }

    #[test]
    fn persistent_keys_name_their_endpoint_until_it_is_gone() {
        let a = affinity(Mode::Persistent);
        let eps = addrs(3);
        let key = a.new_key("ns-svc-80", &eps, Some(eps[1]), None).expect("a key");
        assert_eq!(a.endpoint_for(&key, "ns-svc-80", &eps), Some(1));
        assert_eq!(a.endpoint_for(&key, "ns-svc-80", &addrs(8)), Some(1), "a scale-up moves nobody");
        assert_eq!(a.endpoint_for(&key, "other", &eps), None, "salted by the backend");
        assert_eq!(a.endpoint_for(&key, "ns-svc-80", &[eps[0], eps[2]]), None);
    }

    #[test]
    fn cookies_carry_ingress_nginx_s_attributes() {
        let doc = AffinityDoc {
            cookie: Some("route".into()),
            path: Some("/app".into()),
            max_age: Some(172800),
            expires: Some(172800),
            same_site: Some("None".into()),
            conditional_same_site_none: Some(true),
            domain: Some(".example.com".into()),
            ..Default::default()
        };
        let a = build(&mut Vec::new(), "a", &doc).expect("valid");
        let v = a.set_cookie("k1", "b1", "/", true, Some("Mozilla/5.0 Chrome/120.0"), 0).expect("a value");
        assert_eq!(
            v,
            "route=k1|b1; Path=/app; Expires=Sat, 03 Jan 1970 00:00:00 GMT; Max-Age=172800; Domain=.example.com; SameSite=None; Secure; HttpOnly"
        );
        let old = a.set_cookie(
            "k1",
            "b1",
            "/",
            false,
            Some("Mozilla/5.0 (iPhone; CPU iPhone OS 12_0 like Mac OS X)"),
            0,
        );
        assert_eq!(old.expect("a value"), "route=k1|b1; Path=/app; Expires=Sat, 03 Jan 1970 00:00:00 GMT; Max-Age=172800; Domain=.example.com; HttpOnly");
        let plain = affinity(Mode::Balanced).set_cookie("k", "b", "/shop", false, None, 0).expect("a value");
        assert_eq!(plain, "INGRESSCOOKIE=k|b; Path=/shop; HttpOnly");
    }

    #[test]
    fn points_are_monotonic_in_the_weight() {
        for total in [100, 1000, 7] {
            for point in (0..POINTS).step_by(37) {
                let on = |w: u32| point_roll(point, total) <= w;
                let first = (0..=total).find(|w| on(*w)).expect("at weight = total every point is on");
                assert!((first..=total).all(on), "point {point} stays on from weight {first}");
                assert!(u64::from(point) * u64::from(total) < u64::from(first) * u64::from(POINTS));
            }
        }
    }

    #[test]
    fn every_mistake_names_its_field() {
        let doc = AffinityDoc {
            cookie: Some("bad name".into()),
            mode: Some("sometimes".into()),
            canary_behavior: Some("wobbly".into()),
            same_site: Some("loose".into()),
            path: Some("app".into()),
            expires: Some(-5),
            ..Default::default()
        };
        let mut errs = Vec::new();
        assert!(build(&mut errs, "hosts[0].rules[0].affinity", &doc).is_none());
        let fields: Vec<&str> = errs.iter().map(|e| e.field.rsplit('.').next().unwrap_or("")).collect();
        assert_eq!(fields, ["cookie", "mode", "canaryBehavior", "sameSite", "path", "expires"]);
    }
}

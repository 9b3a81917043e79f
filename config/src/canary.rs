//! The canary decision: stable or canary for one request, with ingress-nginx's rules.
//!
//! Order: managed header routes (a WeirRoute's `setHeaderRoute`, first match wins), then
//! ingress-nginx's stages (docs/canary-semantics.md §2): header stage, cookie stage, weight stage; the first stage
//! that decides wins. Then availability (D3): a *weighted* choice whose side has no ready
//! endpoints goes to the other side and says so; an explicit header/cookie choice is kept
//! even when its side is empty (the proxy answers 503), so testers see the truth.
//!
//! Pure: the weighted draw comes from the caller (`roll(total)` returns r in `1..=total`),
//! so the proxy passes a per-thread RNG and tests pass a seeded one.

use http::header::COOKIE;
use http::HeaderMap;

use crate::model::{
    Canary, CanaryPolicy, HeaderMatch, HeaderMatcher, HeaderRoute, MirrorMatch, MirrorRoute, Route, ValueTest,
};

/// Which of a rule's backends serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Stable,
    Canary,
    /// The canary's additional destination at this index (`Canary::destinations`).
    Destination(u16),
}

/// What decided the side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The rule has no canary.
    NoCanary,
    /// A managed header route (`setHeaderRoute`) matched.
    HeaderRoute,
    Header,
    Cookie,
    Weight,
    /// The weight stage was skipped: the canary's guard has tripped, so weighted traffic
    /// goes to stable.
    Guard,
    /// A session affinity cookie named this side (`affinity.rs`, canary behavior sticky).
    Affinity,
}

/// The outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// `None`: no side can serve (503).
    pub side: Option<Side>,
    pub reason: Reason,
    /// A weighted choice landed on an empty side and was moved to the other one (D3).
    pub fell_back: bool,
}

/// Decide a route's side for a request. `roll(total)` must return r uniformly in `1..=total`;
/// it is called only when the weight stage needs a draw (0 < weight < total).
pub fn pick_backend(route: &Route, headers: &HeaderMap, roll: impl FnOnce(u32) -> u32) -> Decision {
    pick_backend_guarded(route, headers, false, roll)
}

/// [`pick_backend`] for a rule whose canary guard may have tripped: when `tripped`, what
/// the weight stage would decide goes to stable instead, with no draw and no D3 fallback
/// onto the canary (a stable without endpoints answers 503). The header-route, header and
/// cookie stages are untouched, so testers still reach the canary.
pub fn pick_backend_guarded(
    route: &Route,
    headers: &HeaderMap,
    tripped: bool,
    roll: impl FnOnce(u32) -> u32,
) -> Decision {
    pick_backend_pinned(route, headers, tripped, None, roll)
}

/// [`pick_backend_guarded`] for a request a session affinity cookie pins to `pinned`
/// (stable or canary): after the header-route, header and cookie stages (which still win),
/// the pinned side serves when it can, instead of the weight stage. A canary whose guard
/// tripped is never pinned to.
pub fn pick_backend_pinned(
    route: &Route,
    headers: &HeaderMap,
    tripped: bool,
    pinned: Option<Side>,
    roll: impl FnOnce(u32) -> u32,
) -> Decision {
    let stable_ready = route.stable.is_ready();
    let Some(canary) = &route.canary else {
        return Decision {
            side: stable_ready.then_some(Side::Stable),
            reason: Reason::NoCanary,
            fell_back: false,
        };
    };
    let canary_ready = canary.backend.is_ready();
    // A header route is an explicit choice, kept even when the canary has no endpoints.
    if header_route(&canary.routes, headers).is_some() {
        return Decision {
            side: canary_ready.then_some(Side::Canary),
            reason: Reason::HeaderRoute,
            fell_back: false,
        };
    }
    if let Some((side, reason)) = forced_side(&canary.policy, headers) {
        let ready = match side {
            Side::Canary => canary_ready,
            _ => stable_ready,
        };
        return Decision { side: ready.then_some(side), reason, fell_back: false };
    }
    match pinned {
        Some(Side::Stable) if stable_ready => {
            return Decision { side: Some(Side::Stable), reason: Reason::Affinity, fell_back: false }
        }
        Some(Side::Canary) if canary_ready && !tripped => {
            return Decision { side: Some(Side::Canary), reason: Reason::Affinity, fell_back: false }
        }
        _ => {}
    }
    let guarded =
        Decision { side: stable_ready.then_some(Side::Stable), reason: Reason::Guard, fell_back: false };
    if tripped && canary.destinations.is_empty() {
        return guarded;
    }
    let wanted = match weighted_side(canary, roll) {
        // The tripped guard's share goes to stable, never elsewhere.
        Side::Canary if tripped => return guarded,
        side => side,
    };
    let ready = |side: Side| match side {
        Side::Stable => stable_ready,
        Side::Canary => canary_ready && !tripped,
        Side::Destination(i) => canary.destinations.get(usize::from(i)).is_some_and(|d| d.backend.is_ready()),
    };
    if ready(wanted) {
        return Decision { side: Some(wanted), reason: Reason::Weight, fell_back: false };
    }
    // D3: the drawn side has no endpoint: stable takes its request, else the canary.
    let other = [Side::Stable, Side::Canary].into_iter().find(|s| *s != wanted && ready(*s));
    Decision { side: other, reason: Reason::Weight, fell_back: other.is_some() }
}

/// The first managed header route whose matches all hold, if any.
pub fn header_route<'r>(routes: &'r [HeaderRoute], headers: &HeaderMap) -> Option<&'r HeaderRoute> {
    routes.iter().find(|r| r.matches.iter().all(|m| value_passes(m, headers)))
}

/// The mirror route that copies this request to the canary, if any: the first route one of
/// whose matches holds decides, then its percentage (`roll(100)` must return r uniformly in
/// `1..=100`; called only for 0 < percentage < 100). Only a request going to `Side::Stable`
/// is copied: one the canary serves itself is not sent there twice.
pub fn mirror_route<'r>(
    canary: &'r Canary,
    side: Side,
    method: &http::Method,
    path: &str,
    headers: &HeaderMap,
    roll: impl FnOnce(u32) -> u32,
) -> Option<&'r MirrorRoute> {
    if side != Side::Stable {
        return None;
    }
    let route =
        canary.mirrors.iter().find(|r| r.matches.iter().any(|m| selects(m, method, path, headers)))?;
    match route.percentage {
        0 => None,
        p if p >= 100 => Some(route),
        p => (roll(100) <= p).then_some(route),
    }
}

fn selects(m: &MirrorMatch, method: &http::Method, path: &str, headers: &HeaderMap) -> bool {
    m.method.as_ref().is_none_or(|want| want == method)
        && m.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
        && m.headers.iter().all(|h| value_passes(h, headers))
}

fn value_passes(m: &HeaderMatch, headers: &HeaderMap) -> bool {
    let Some(value) = joined_header(headers, &m.name) else { return false };
    match &m.test {
        ValueTest::Exact(v) => value.as_ref() == v.as_bytes(),
        ValueTest::Prefix(p) => value.starts_with(p.as_bytes()),
        // A value that is not UTF-8 cannot match a pattern.
        ValueTest::Regex(re) => std::str::from_utf8(&value).is_ok_and(|s| re.is_match(s)),
    }
}

/// Header then cookie stage. `None` means fall through to the weight.
pub fn forced_side(policy: &CanaryPolicy, headers: &HeaderMap) -> Option<(Side, Reason)> {
    if let Some(rule) = &policy.header {
        if let Some(value) = joined_header(headers, &rule.name) {
            let side = match &rule.matcher {
                HeaderMatcher::Value(v) => (value.as_ref() == v.as_bytes()).then_some(Side::Canary),
                // A value that is not UTF-8 cannot match a pattern; it falls through.
                HeaderMatcher::Pattern(re) => {
                    std::str::from_utf8(&value).ok().filter(|s| re.is_match(s)).map(|_| Side::Canary)
                }
                HeaderMatcher::Keywords => match value.as_ref() {
                    b"always" => Some(Side::Canary),
                    b"never" => Some(Side::Stable),
                    _ => None,
                },
                HeaderMatcher::InvalidPattern(_) => Some(Side::Stable),
            };
            if let Some(side) = side {
                return Some((side, Reason::Header));
            }
        }
    }
    if let Some(name) = &policy.cookie {
        match cookie_value(headers, name) {
            Some(b"always") => return Some((Side::Canary, Reason::Cookie)),
            Some(b"never") => return Some((Side::Stable, Reason::Cookie)),
            _ => {}
        }
    }
    None
}

/// Weight stage: draw r in [1, total]; canary iff r ≤ weight. No draw at the ends. With
/// additional destinations, each takes the next `weight` values of r after the canary's
/// (validation keeps their sum within `total`), and stable the rest; no draw when no one
/// but stable has a share.
pub fn weighted_side(canary: &Canary, roll: impl FnOnce(u32) -> u32) -> Side {
    let policy = &canary.policy;
    if canary.destinations.is_empty() {
        let to_canary = match policy.weight {
            0 => false,
            w if w >= policy.total => true,
            w => roll(policy.total) <= w,
        };
        return if to_canary { Side::Canary } else { Side::Stable };
    }
    if policy.weight == 0 && canary.destinations.iter().all(|d| d.weight == 0) {
        return Side::Stable;
    }
    let r = roll(policy.total);
    if r <= policy.weight {
        return Side::Canary;
    }
    let mut upto = policy.weight;
    for (i, d) in canary.destinations.iter().enumerate() {
        upto = upto.saturating_add(d.weight);
        if r <= upto {
            return Side::Destination(i as u16);
        }
    }
    Side::Stable
}

/// The header's value; repeated headers are joined with `", "` as nginx does.
fn joined_header<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<std::borrow::Cow<'a, [u8]>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    match values.next() {
        None => Some(std::borrow::Cow::Borrowed(first.as_bytes())),
        Some(second) => {
            let mut joined = first.as_bytes().to_vec();
            for v in std::iter::once(second).chain(values) {
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(v.as_bytes());
            }
            Some(std::borrow::Cow::Owned(joined))
        }
    }
}

/// The first cookie named `name` across all Cookie headers (HTTP/2 clients send one per
/// cookie), found exactly as nginx's `$cookie_<name>` finds it (ingress-nginx reads its
/// canary cookie through that variable): the name compared case-insensitively at the start
/// of a pair, spaces allowed around `=`, and the value taken as received up to the next `;`
/// — quotes and trailing spaces included, so `canary="always"` is not `always`. Pairs start
/// after a `;` or a `,` (and the spaces after it). Bytes, not text: a line with non-ASCII
/// bytes in some other cookie is still searched.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get_all(COOKIE).iter().find_map(|line| cookie_in_line(line.as_bytes(), name.as_bytes()))
}

fn cookie_in_line<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = line;
    while !rest.is_empty() {
        if rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name) {
            let after = skip_spaces(&rest[name.len()..]);
            match after.split_first() {
                Some((b'=', value)) => {
                    let value = skip_spaces(value);
                    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
                    return Some(&value[..end]);
                }
                // Like nginx, the byte that was not `=` is consumed before looking for the
                // next separator, even when it is one: `c;c=always` finds nothing.
                Some((_, more)) => rest = more,
                None => return None,
            }
        }
        let next = rest.iter().position(|&b| b == b';' || b == b',').map_or(rest.len(), |i| i + 1);
        rest = skip_spaces(&rest[next..]);
    }
    None
}

fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

//! Session affinity and sticky canary assignment on the request path (the pure parts are
//! `weir_config::affinity`): which side a cookie pins, which endpoint it names, and the
//! `Set-Cookie`s the answer carries. A rule with neither pays one branch.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use weir_config::affinity::{self, Affinity, StickyAssignment};
use weir_config::{Backend, Route, Side};

/// What one request of a sticky rule decided, kept in its record until the answer.
pub struct Sticky {
    https: bool,
    user_agent: Option<HeaderValue>,
    /// A point drawn for this client (sticky assignment): its cookie goes on the answer.
    new_point: Option<(u32, StickyAssignment)>,
    /// The client's affinity cookie, `(key, backend key)`.
    cookie: Option<(String, String)>,
    endpoint: Option<EndpointChoice>,
}

/// The affinity decision within the chosen backend.
struct EndpointChoice {
    affinity: Box<Affinity>,
    backend: Arc<Backend>,
    backend_key: String,
    rule_path: String,
    /// The endpoint the cookie names (or a new balanced key names).
    preferred: Option<SocketAddr>,
    /// A cookie to set whatever answers: a new balanced key.
    new_key: Option<String>,
    /// The cookie named no endpoint of this backend: set one for whoever answers.
    needs_cookie: bool,
}

impl Sticky {
    /// The side stage's inputs for a sticky rule, if it is one: `(sticky, pinned side, the
    /// weight stage's draw from the client's point)`.
    pub fn begin(
        route: &Route,
        headers: &HeaderMap,
        https: bool,
    ) -> Option<(Box<Sticky>, Option<Side>, Option<u32>)> {
        let point_rule = route.canary.as_ref().and_then(|c| c.sticky.as_ref().map(|s| (s, c.policy.total)));
        if route.affinity.is_none() && point_rule.is_none() {
            return None;
        }
        let mut sticky = Box::new(Sticky {
            https,
            user_agent: headers.get(http::header::USER_AGENT).cloned(),
            new_point: None,
            cookie: None,
            endpoint: None,
        });
        let roll = point_rule.map(|(rule, total)| {
            let point = rule.point(headers).unwrap_or_else(|| {
                let p = StickyAssignment::draw();
                sticky.new_point = Some((p, rule.clone()));
                p
            });
            affinity::point_roll(point, total)
        });
        let mut pinned = None;
        if let Some(a) = &route.affinity {
            sticky.cookie = affinity::cookie(headers, &a.cookie)
                .and_then(affinity::split_value)
                .map(|(k, b)| (k.to_string(), b.to_string()));
            // The point decides the side when the canary has one; else the cookie's backend.
            if let (Some((_, bk)), None) = (&sticky.cookie, roll) {
                if *bk == affinity::backend_key(&route.stable.id.upstream_name()) {
                    pinned = Some(Side::Stable);
                } else if let Some(c) = route.canary.as_ref().filter(|_| a.canary_sticky) {
                    if *bk == affinity::backend_key(&c.backend.id.upstream_name()) {
                        pinned = Some(Side::Canary);
                    }
                }
            }
        }
        Some((sticky, pinned, roll))
    }

    /// The side is chosen: which endpoint the cookie names in its backend (an index into
    /// its endpoints), to be tried first.
    pub fn choose_endpoint(&mut self, route: &Route, side: Side, backend: &Arc<Backend>) -> Option<usize> {
        let a = route.affinity.as_ref()?;
        // `legacy`: the canary is not sticky.
        if side == Side::Canary && !a.canary_sticky {
            return None;
        }
        let salt = backend.id.upstream_name();
        let backend_key = affinity::backend_key(&salt);
        let named = self
            .cookie
            .as_ref()
            .filter(|(_, bk)| *bk == backend_key)
            .and_then(|(key, _)| a.endpoint_for(key, &salt, &backend.endpoints));
        let mut choice = EndpointChoice {
            affinity: a.clone(),
            backend: backend.clone(),
            backend_key,
            rule_path: route.path.clone(),
            preferred: named.map(|i| backend.endpoints[i]),
            new_key: None,
            needs_cookie: named.is_none(),
        };
        let mut index = named;
        if named.is_none() && a.mode == affinity::Mode::Balanced {
            choice.new_key = a.new_key(&salt, &backend.endpoints, None, None);
            index = choice.new_key.as_ref().and_then(|k| a.endpoint_for(k, &salt, &backend.endpoints));
            choice.preferred = index.map(|i| backend.endpoints[i]);
        }
        self.endpoint = Some(choice);
        index
    }

    /// The `Set-Cookie`s for the answer; `answered`: the endpoint whose answer it is.
    pub fn cookies(self, answered: Option<SocketAddr>, now_unix: u64) -> Vec<HeaderValue> {
        let mut out = Vec::new();
        if let Some((point, rule)) = &self.new_point {
            out.push(rule.set_cookie(*point, self.https));
        }
        let ua = self.user_agent.as_ref().and_then(|v| v.to_str().ok());
        if let (Some(c), Some(answered)) = (self.endpoint, answered) {
            let a = &c.affinity;
            let salt = c.backend.id.upstream_name();
            let moved = c.preferred.is_some_and(|p| p != answered);
            let key = if moved && a.change_on_failure {
                a.new_key(&salt, &c.backend.endpoints, Some(answered), c.preferred)
            } else if c.needs_cookie {
                c.new_key.clone().or_else(|| a.new_key(&salt, &c.backend.endpoints, Some(answered), None))
            } else {
                None
            };
            if let Some(key) = key {
                out.extend(a.set_cookie(&key, &c.backend_key, &c.rule_path, self.https, ua, now_unix));
            }
        }
        out
    }
}

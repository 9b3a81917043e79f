//! Access control in the model: deny rules, IP allow/deny lists, the client address they
//! judge, basic auth and external auth; with the pure decisions the proxy asks of them.
//!
//! # Layout
//! - this file: the validated types and the IP decisions ([`IpRules::permits`],
//!   [`ClientAddress::forwarded_client`]).
//! - [`doc`]: their wire form (`deny`, `access` on a rule; `clientAddress` on the table).
//! - [`build`]: wire → model with field errors (called from `validate`).
//! - [`htpasswd`]: basic-auth entries (bcrypt, apr1, `{SHA}`) and the credential check.
//! - [`external`]: the external-auth settings and their templates (signin URL, cache key).
//!
//! Fail closed throughout: an address that cannot be determined is not permitted by any
//! rule that lists addresses, and nothing here widens what a rule lets through.

use std::net::IpAddr;

use http::StatusCode;

pub(crate) mod build;
pub mod doc;
pub mod external;
pub mod htpasswd;

#[cfg(test)]
mod tests;

pub use external::{AuthCache, ExternalAuth, Template, TemplatePart, Variable, Vars};
pub use htpasswd::BasicAuth;

/// Whether weir's proxy enforces `deny` and `access` (its check_access step answers deny
/// rules, checks IP rules, basic and external auth: weir-proxy's `access.rs`). It does. Were
/// it off, every rule with either would be *closed* when the table is built (no endpoints,
/// no canary: 503 rather than forward a request the rule would have stopped), and the
/// controller would keep the access annotations refused on the same switch.
pub const ENFORCED: bool = true;

/// A rule that answers by itself: a fixed status, never forwarded. The controller installs
/// one for each path of an Ingress it refuses, so the path stays closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    /// 4xx or 5xx; 503 for a refused Ingress.
    pub status: StatusCode,
    /// Why, for `GET /config` and the access log only; the client sees the status's
    /// generic text.
    pub reason: String,
}

/// The checks a request must pass before it is forwarded, in this order: IP rules (403),
/// basic auth (401), external auth. A rule without any has `Route::access == None`.
#[derive(Debug)]
pub struct Access {
    pub ip: Option<IpRules>,
    pub basic: Option<BasicAuth>,
    pub external: Option<ExternalAuth>,
}

/// ingress-nginx's denylist-source-range and allowlist-source-range, in nginx's order:
/// a denied address is refused; then, when an allowlist is given, only its addresses pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRules {
    pub allow: CidrSet,
    pub deny: CidrSet,
}

impl IpRules {
    /// Whether a client may pass. `None` (the address could not be determined, e.g. a
    /// malformed X-Forwarded-For from a trusted proxy) passes only rules that list nothing.
    pub fn permits(&self, client: Option<IpAddr>) -> bool {
        let Some(ip) = client else { return self.allow.is_empty() && self.deny.is_empty() };
        !self.deny.contains(ip) && (self.allow.is_empty() || self.allow.contains(ip))
    }
}

/// A set of IPv4 and IPv6 networks as sorted, merged, inclusive address ranges: a lookup
/// is one binary search, whatever the number of CIDRs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// CIDRs or bare addresses; host bits under the mask are an error (a likely mistake).
pub(crate) fn parse_cidrs(errs: &mut Vec<crate::field::FieldError>, at: &str, list: &[String]) -> CidrSet {
    let mut nets = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let s = raw.trim();
        let net = match s.parse::<ipnet::IpNet>() {
            Ok(n) => Ok(n),
            Err(_) => s.parse::<IpAddr>().map(ipnet::IpNet::from).map_err(|_| {
                format!("{raw:?} is not an IPv4/IPv6 address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)")
            }),
        };
        match net {
            Ok(n) if n.addr() != n.network() => errs.push(crate::field::FieldError {
                field: format!("{at}[{i}]"),
                reason: format!("{raw:?} has host bits set under its mask; did you mean {}?", n.trunc()),
            }),
            Ok(n) => nets.push(n),
            Err(reason) => errs.push(crate::field::FieldError { field: format!("{at}[{i}]"), reason }),
        }
    }
    CidrSet::new(&nets)
}

impl CidrSet {
    pub fn new(nets: &[ipnet::IpNet]) -> CidrSet {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                ipnet::IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                ipnet::IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        CidrSet { v4: merge(v4), v6: merge(v6) }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether `ip` is in one of the networks. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
    /// what a dual-stack socket reports for an IPv4 client) is judged as the IPv4 address,
    /// so an IPv4 denylist cannot be sidestepped through it.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => within(&self.v4, u32::from(a)),
            IpAddr::V6(a) => within(&self.v6, u128::from(a)),
        }
    }
}

fn merge<T: Ord + Copy>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn within<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    let after = ranges.partition_point(|r| r.0 <= x);
    after > 0 && ranges[after - 1].1 >= x
}

/// Where a request's client address comes from (table-wide).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClientAddress {
    /// The TCP peer (default).
    #[default]
    Peer,
    /// X-Forwarded-For, believed only from these peers (ingress-nginx's
    /// use-forwarded-headers + proxy-real-ip-cidr), read right to left.
    ForwardedFor { trusted: CidrSet },
    /// The PROXY protocol (v1 or v2) header that starts every connection on the listener
    /// (use-proxy-protocol). `trusted`: only these peers may send one; others are closed.
    ProxyProtocol { trusted: Option<CidrSet> },
}

impl ClientAddress {
    /// The client behind `peer`, given the request's X-Forwarded-For values in order (a
    /// repeated header is one list, as nginx joins it). nginx's `real_ip_recursive on`: an
    /// untrusted peer is the client and its header is ignored; from a trusted peer, walk the
    /// list from the right past trusted addresses; the first untrusted one is the client, or
    /// the leftmost when all are trusted. An entry that is not an address gives `None`
    /// (unknown: refused by any IP rule), never the trusted hop before it. For the other
    /// sources this is `Some(peer)`.
    pub fn forwarded_client<'a, I>(&self, peer: IpAddr, headers: I) -> Option<IpAddr>
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        let ClientAddress::ForwardedFor { trusted } = self else { return Some(peer) };
        if !trusted.contains(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for value in headers.rev() {
            for entry in value.rsplit(|b| *b == b',') {
                let entry = entry.trim_ascii();
                if entry.is_empty() {
                    continue;
                }
                let ip = std::str::from_utf8(entry).ok().and_then(parse_forwarded_ip)?;
                client = ip;
                if !trusted.contains(ip) {
                    return Some(ip);
                }
            }
        }
        Some(client)
    }
}

/// An X-Forwarded-For entry: an IPv4 or IPv6 address, IPv6 optionally in brackets.
fn parse_forwarded_ip(s: &str) -> Option<IpAddr> {
    let s = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    s.parse().ok()
}

//! The forwarded-header parsers on arbitrary input: the client address weir believes from
//! X-Forwarded-For behind trusted proxies (`weir_config::access::ClientAddress`), the
//! forwarding headers weir writes for the upstream (`weir_proxy::fuzzing::forwarding`), and
//! check_request's Host rule (`weir_proxy::fuzzing::host`).
//!
//! Properties of the client address: an untrusted peer is the client whatever the header
//! says; the answer is the peer or one of the listed addresses; a trusted answer other than
//! the peer means every listed address is trusted and it is the leftmost; no answer means
//! some entry was not an address; every entry right of an untrusted answer is a trusted
//! address. The other two assert their own (see their docs).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use weir_config::access::{CidrSet, ClientAddress};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input<'a> {
    peer: Addr,
    /// (address, prefix length) of the trusted networks.
    trusted: Vec<(Addr, u8)>,
    /// X-Forwarded-For lines, in order.
    xff: Vec<&'a [u8]>,
    /// Other client header lines, for the forwarding rules.
    headers: Vec<(&'a [u8], &'a [u8])>,
    host: &'a str,
}

#[derive(Debug, Clone, Copy, arbitrary::Arbitrary)]
enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Addr {
    fn ip(self) -> IpAddr {
        match self {
            Addr::V4(b) => IpAddr::V4(Ipv4Addr::from(b)),
            Addr::V6(b) => IpAddr::V6(Ipv6Addr::from(b)),
        }
    }
}

/// An X-Forwarded-For entry as weir reads it: an address, IPv6 optionally bracketed.
fn entry_ip(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry).ok()?;
    let s = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    s.parse().ok()
}

fuzz_target!(|input: Input<'_>| {
    let nets: Vec<ipnet::IpNet> =
        input.trusted.iter().take(8).filter_map(|(a, len)| ipnet::IpNet::new(a.ip(), *len).ok()).collect();
    let trusted = CidrSet::new(&nets);
    let peer = input.peer.ip();
    let lines: Vec<&[u8]> = input.xff.iter().take(8).copied().collect();
    // Every non-empty entry, left to right, across the lines (one list, RFC 9110 §5.3).
    let entries: Vec<&[u8]> = lines
        .iter()
        .flat_map(|l| l.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
        .collect();
    let from = ClientAddress::ForwardedFor { trusted: trusted.clone() };
    let got = from.forwarded_client(peer, lines.iter().copied());
    if !trusted.contains(peer) {
        assert_eq!(got, Some(peer), "an untrusted peer's header was believed");
    } else {
        match got {
            None => assert!(
                entries.iter().any(|e| entry_ip(e).is_none()),
                "no answer, yet every entry is an address"
            ),
            Some(ip) => {
                let listed: Vec<Option<IpAddr>> = entries.iter().map(|e| entry_ip(e)).collect();
                assert!(ip == peer || listed.contains(&Some(ip)), "{ip} is neither the peer nor listed");
                if trusted.contains(ip) && ip != peer {
                    assert!(listed.iter().all(|l| l.is_some_and(|a| trusted.contains(a))));
                    assert_eq!(listed.first().copied().flatten(), Some(ip), "not the leftmost");
                }
                if !trusted.contains(ip) {
                    let at = listed.iter().rposition(|l| *l == Some(ip)).expect("listed");
                    assert!(listed[at + 1..].iter().all(|l| l.is_some_and(|a| trusted.contains(a))));
                }
            }
        }
    }
    assert_eq!(ClientAddress::Peer.forwarded_client(peer, lines.iter().copied()), Some(peer));

    let mut headers: Vec<(&[u8], &[u8])> = input.headers.iter().take(16).copied().collect();
    headers.extend(lines.iter().map(|l| (&b"x-forwarded-for"[..], *l)));
    weir_proxy::fuzzing::forwarding(&headers, input.host, peer);
    weir_proxy::fuzzing::host(input.host.as_bytes());
});

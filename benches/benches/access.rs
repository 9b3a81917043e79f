//! The IP allow/deny decision against 100 CIDRs (IPv4 and IPv6), and the X-Forwarded-For
//! walk: the access step's pure work per request (budget: ≤ 50 ns for the decision).

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use weir_config::access::{CidrSet, ClientAddress, IpRules};

/// 80 IPv4 /24s spread over 10.0.0.0/8 and 20 IPv6 /48s: 100 CIDRs, none adjacent.
fn rules() -> IpRules {
    let mut nets: Vec<ipnet::IpNet> = (0..80u32)
        .map(|i| {
            format!("10.{}.{}.0/24", i * 3 % 256, i * 7 % 256).parse().unwrap_or_else(|_| panic!("v4 {i}"))
        })
        .collect();
    nets.extend((0..20u32).map(|i| {
        format!("2001:db8:{:x}::/48", i * 5).parse::<ipnet::IpNet>().unwrap_or_else(|_| panic!("v6 {i}"))
    }));
    IpRules { allow: CidrSet::new(&nets), deny: CidrSet::new(&nets[..10]) }
}

fn decisions(c: &mut Criterion) {
    let rules = rules();
    let clients: [IpAddr; 4] = [
        [10, 30, 70, 9].into(),                                      // allowed (i = 10)
        [192, 0, 2, 1].into(),                                       // not listed: refused
        [10, 0, 0, 1].into(),                                        // denied (i = 0)
        "2001:db8:32::1".parse().unwrap_or(IpAddr::from([0u8; 16])), // allowed v6 (i = 10)
    ];
    let mut i = 0;
    c.bench_function("access/permits_100_cidrs", |b| {
        b.iter(|| {
            i = (i + 1) % clients.len();
            black_box(rules.permits(Some(black_box(clients[i]))))
        })
    });
    let trusted = ClientAddress::ForwardedFor {
        trusted: CidrSet::new(&["10.0.0.0/8".parse().unwrap_or_else(|_| panic!("net"))]),
    };
    let header: &[u8] = b"203.0.113.9, 198.51.100.7, 10.0.0.9";
    c.bench_function("access/forwarded_client_3_hops", |b| {
        b.iter(|| {
            black_box(
                trusted.forwarded_client(black_box([10, 0, 0, 2].into()), [black_box(header)].into_iter()),
            )
        })
    });
}

criterion_group!(benches, decisions);
criterion_main!(benches);

//! weir-benches: criterion benchmarks only; this library is empty.
//!
//! # Layout
//! - `benches/decisions.rs`: route matching (10 and 10,000 hosts; exact, wildcard, a
//!   many-rule host), the canary decision (weight, header, cookie), a snapshot load.
//! - `benches/proxy_path.rs`: one request through in-process weir to a loopback upstream,
//!   against the same request sent straight to the upstream.

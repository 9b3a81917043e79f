//! The one test kit (feature `testkit`): real upstreams on loopback, weir in-process, real
//! clients, and a reader of the metrics exposition. Used by weir-proxy's tests, the
//! controller's end-to-end tests and the benches.
//!
//! - [`upstream`]: [`Upstream`], a hyper HTTP/1.1 server on `127.0.0.1:0` that names itself.
//! - [`weir`]: [`Weir`], `weir_proxy::start` on port 0 with a YAML table, admin-API helpers.
//! - [`client`]: [`H1`], [`get`], [`raw`], [`h2c`]: clients over hyper's connection API, so a
//!   test controls Host, `:authority` and every header byte.
//! - [`tls`]: certificates made at test time and TLS clients trusting them.
//! - [`exposition`]: samples, labels and types of the Prometheus text format.
//! - [`wait`]: the one timeout, [`WAIT`], that bounds every wait of the kit.

pub mod client;
pub mod exposition;
pub mod tls;
pub mod upstream;
pub mod wait;
pub mod weir;

pub use client::{body, empty, get, h2c, raw, read, request, send_get, BoxError, Reply, ReqBody, H1};
pub use upstream::{generated, refused_addr, Upstream};
pub use wait::{within, WAIT};
pub use weir::{one_upstream_table, parse_doc, Weir};

//! `weir-test-upstream [NAME]`: the test kit's plain upstream ([`Upstream::plain`]: answers
//! `<NAME> <body length>`, steered by the same query parameters) in a process of its own, so
//! a test can kill an endpoint for real (SIGKILL) while weir sends to it. It listens on
//! `127.0.0.1:0`, prints its address as the first line of stdout, and serves until it is
//! killed or its stdin closes (so it never outlives a test that died). Built only with the
//! `testkit` feature.

use tokio::io::AsyncReadExt;
use weir_proxy::testkit::Upstream;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "upstream".to_owned());
    let name: &'static str = Box::leak(name.into_boxed_str());
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("an async runtime");
    runtime.block_on(async {
        let upstream = Upstream::plain(name).await;
        println!("{}", upstream.addr);
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        upstream.stop();
    });
}

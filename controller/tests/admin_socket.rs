//! The push client on the proxy's Unix admin socket (`--proxy-admin=unix:/path`), against a
//! real weir serving its admin API there (deploy/'s default).

use bytes::Bytes;
use weir_controller::push::{AdminClient, PutOutcome};
use weir_proxy::testkit::{get, one_upstream_table, within, Upstream};

#[tokio::test]
async fn the_push_client_speaks_the_proxys_unix_admin_socket() {
    let up = Upstream::start("app").await;
    let dir = std::env::temp_dir().join(format!("weir-ctrl-admin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join("admin.sock");
    let settings = weir_proxy::Settings {
        admin_listen: None,
        admin_socket: Some(path.clone()),
        ..weir_proxy::testkit::weir::settings()
    };
    let weir = weir_proxy::testkit::weir::start(settings, None).await;

    for url in [format!("unix:{}", path.display()), format!("unix://{}", path.display())] {
        let client = AdminClient::new(&url).expect("a unix: admin URL");
        assert_eq!(within("GET /config", client.current_version()).await.expect("answered"), None);
    }
    let client = AdminClient::new(&format!("unix:{}", path.display())).expect("admin client");
    let table =
        one_upstream_table(up.addr).replace("schema: weir/v1\n", "schema: weir/v1\nversion: pushed-1\n");
    let outcome = within("PUT /config", client.put_config(Bytes::from(table))).await.expect("pushed");
    assert_eq!(outcome, PutOutcome::Accepted { version: Some("pushed-1".into()) });
    assert_eq!(
        within("GET /config", client.current_version()).await.expect("answered").as_deref(),
        Some("pushed-1")
    );
    assert_eq!(get(weir.data_addr, "app.test", "/", &[]).await.upstream(), "app");
    let refused = within("PUT a bad table", client.put_config(Bytes::from_static(b"schema: nope\n"))).await;
    assert!(matches!(refused, Ok(PutOutcome::Rejected { .. })), "{refused:?}");

    within("weir to shut down", weir.shutdown()).await;
    let gone = within("PUT to a stopped proxy", client.put_config(Bytes::from_static(b"{}"))).await;
    let err = gone.expect_err("nothing listens any more").to_string();
    assert!(err.contains("admin.sock"), "the error names the socket: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn admin_urls_that_are_neither_http_nor_an_absolute_unix_path_are_refused() {
    for bad in ["unix:", "unix:relative/admin.sock", "unix:///", "https://127.0.0.1:10255", "127.0.0.1:10255"]
    {
        assert!(AdminClient::new(bad).is_err(), "{bad} was accepted");
    }
    assert!(AdminClient::new("http://127.0.0.1:10255").is_ok());
    assert!(AdminClient::new("unix:/run/weir/admin.sock").is_ok());
}

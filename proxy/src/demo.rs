//! `weir demo`: the embedded default. Two built-in upstreams named `stable` and `canary` on
//! loopback, and a table that sends 10 % to the canary and honours `X-Canary: always|never`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, Response};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use weir_config::TableDoc;

/// Serve a tiny upstream that answers every request with its name (body and
/// `x-upstream` header). Returns its address; it runs until the runtime stops.
pub async fn spawn_upstream(name: &'static str) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = service_fn(move |_req| async move {
                let mut resp = Response::new(Full::new(Bytes::from(format!("{name}\n"))));
                resp.headers_mut().insert("x-upstream", HeaderValue::from_static(name));
                resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                Ok::<_, Infallible>(resp)
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// The demo table: default server, `/` split 90/10 with the `X-Canary` header rule.
pub fn table(stable: SocketAddr, canary: SocketAddr) -> TableDoc {
    let yaml = format!(
        r#"schema: weir/v1
version: demo-1
hosts:
  - rules:
      - path: /
        backend: {{ namespace: demo, ingress: demo, service: stable, port: 80, endpoints: ["{stable}"] }}
        canary:
          backend: {{ namespace: demo, ingress: demo-canary, service: canary, port: 80, endpoints: ["{canary}"] }}
          weight: 10
          header: X-Canary
          cookie: canary
"#
    );
    // The template is fixed and valid; a failure here is a bug in this file.
    serde_yaml_ng::from_str(&yaml).unwrap_or_default()
}

/// What to print for the user once the demo is up.
pub fn banner(data: SocketAddr, admin: Option<SocketAddr>, stable: SocketAddr, canary: SocketAddr) -> String {
    // Listening on every interface (the default): show the loopback address to curl.
    let data = match data.ip().is_unspecified() {
        true => SocketAddr::from(([127, 0, 0, 1], data.port())),
        false => data,
    };
    let admin_lines = match admin {
        Some(a) => format!(
            "\n  # the table in force, then the canary moved to 50 % through the admin API:\n  \
             curl -s http://{a}/config\n  \
             curl -s http://{a}/config | python3 -c 'import json,sys; t=json.load(sys.stdin)[\"table\"]; \
             t[\"hosts\"][0][\"rules\"][0][\"canary\"][\"weight\"]=50; print(json.dumps(t))' | \\\n    \
             curl -s -X PUT --data-binary @- http://{a}/config\n"
        ),
        None => String::new(),
    };
    format!(
        "weir demo is serving on http://{data}\n\
         upstreams: stable on {stable}, canary on {canary}; 10 % of requests go to the canary\n\n\
         Try:\n  curl -s http://{data}/                            # stable, or canary 1 time in 10\n  \
         for i in $(seq 100); do curl -s http://{data}/; done | sort | uniq -c\n  \
         curl -s -H 'X-Canary: always' http://{data}/      # always canary\n  \
         curl -s -H 'X-Canary: never' http://{data}/       # always stable\n  \
         curl -s --cookie 'canary=always' http://{data}/   # canary by cookie\n{admin_lines}\n\
         Ctrl-C stops it.\n"
    )
}

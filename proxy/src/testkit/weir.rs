//! [`Weir`]: weir started in this process on loopback port 0, and the settings tests use.

use std::net::SocketAddr;
use std::time::Duration;

use http::{header, Request};
use weir_config::TableDoc;

use super::client::{body, get, Reply, H1};
use super::upstream::Upstream;
use super::wait::within;
use crate::{Running, Settings};

/// How long a test weir may drain at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Everything on `127.0.0.1:0`: the data and admin listeners; no TLS, no metrics listener.
pub fn settings() -> Settings {
    Settings {
        listen: loopback(),
        tls_listen: None,
        admin_listen: Some(loopback()),
        metrics_listen: None,
        drain_timeout: DRAIN,
        ..Settings::default()
    }
}

/// [`settings`] with the TLS listener on.
pub fn tls_settings() -> Settings {
    Settings { tls_listen: Some(loopback()), ..settings() }
}

/// [`settings`] with the metrics listener on.
pub fn metrics_settings() -> Settings {
    Settings { metrics_listen: Some(loopback()), ..settings() }
}

/// A table routing all of `app.test` to the one endpoint `addr`.
pub fn one_upstream_table(addr: SocketAddr) -> String {
    format!(
        "schema: weir/v1\nhosts:\n  - host: app.test\n    rules:\n      - {{ path: /, backend: {{ endpoints: [\"{addr}\"] }} }}\n"
    )
}

pub fn parse_doc(yaml: &str) -> TableDoc {
    match serde_yaml_ng::from_str(yaml) {
        Ok(d) => d,
        Err(e) => panic!("test table does not parse: {e}\n{yaml}"),
    }
}

/// Start weir with `settings`, serving `doc` (or no table yet).
pub async fn start(settings: Settings, doc: Option<TableDoc>) -> Running {
    match crate::start(settings, doc).await {
        Ok(r) => r,
        Err(e) => panic!("weir did not start: {e}"),
    }
}

/// Start weir with `settings`, serving the YAML table `yaml`.
pub async fn serving(settings: Settings, yaml: &str) -> Running {
    start(settings, Some(parse_doc(yaml))).await
}

/// A weir started in this process on loopback port 0, with its admin API.
pub struct Weir {
    pub data: SocketAddr,
    pub admin: SocketAddr,
    running: Option<Running>,
}

impl Weir {
    /// Start weir serving `yaml` (or no table yet).
    pub async fn start(yaml: Option<&str>) -> Weir {
        Weir::start_with(yaml, 1).await
    }

    /// Start weir serving `yaml` with `workers` data-plane workers.
    pub async fn start_with(yaml: Option<&str>, workers: usize) -> Weir {
        let running = start(Settings { workers, ..settings() }, yaml.map(parse_doc)).await;
        let admin = running.admin_addr.expect("admin API enabled");
        Weir { data: running.data_addr, admin, running: Some(running) }
    }

    pub async fn with(yaml: &str) -> Weir {
        Weir::start(Some(yaml)).await
    }

    /// An upstream named `app` and a weir routing all of `app.test` to it.
    pub async fn with_one_upstream() -> (Upstream, Weir) {
        let up = Upstream::start("app").await;
        let weir = Weir::with(&one_upstream_table(up.addr)).await;
        (up, weir)
    }

    /// One request to the data port on a new connection.
    pub async fn get(&self, host: &str, path: &str) -> Reply {
        get(self.data, host, path, &[]).await
    }

    /// `PUT /config` on the admin API.
    pub async fn put_config(&self, yaml: &str) -> Reply {
        let req = Request::put("/config")
            .header(header::HOST, "admin")
            .body(body(yaml.to_owned()))
            .expect("request");
        H1::connect(self.admin).await.send(req).await.expect("admin PUT /config")
    }

    pub async fn admin_get(&self, path: &str) -> Reply {
        get(self.admin, "admin", path, &[]).await
    }

    /// Stop accepting, drain, and wait for weir's tasks to end.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            within("weir to shut down", r.shutdown()).await;
        }
    }
}

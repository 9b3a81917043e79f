//! A real Prometheus for the tests that evaluate shipped PromQL against a running weir: one
//! process per test on 127.0.0.1 (a free port), scraping the given targets every second,
//! killed by its own PID and its data directory removed on drop, even on panic.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`, which scripts/test.sh
//! installs); a missing one fails the test.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::metrics_kit;

/// One scrape target: a job of its own, with the target labels service discovery would
/// have attached (`namespace`, `pod`, ... as the Prometheus Operator does).
pub struct Target {
    pub job: &'static str,
    pub addr: SocketAddr,
    /// false: scraped labels that clash with target labels become `exported_<name>`.
    pub honor_labels: bool,
    pub labels: Vec<(&'static str, String)>,
}

pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind for a free port");
    l.local_addr().expect("addr").port()
}

/// One series of an instant query's answer: its labels and value (NaN included).
pub type Series = (serde_json::Value, f64);

impl Prometheus {
    /// Start Prometheus scraping `targets` every second and wait until it is ready.
    pub async fn start(name: &str, targets: &[Target], deadline: Instant) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("weir-prom-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n");
        for t in targets {
            let labels: Vec<String> =
                t.labels.iter().map(|(k, v)| format!("{k}: {}", serde_json::json!(v))).collect();
            config.push_str(&format!(
                "  - job_name: {}\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    honor_labels: {}\n    \
                 static_configs:\n      - targets: ['{}']\n        labels: {{{}}}\n",
                t.job,
                t.honor_labels,
                t.addr,
                labels.join(", ")
            ));
        }
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus must be installed (apt-get install prometheus; scripts/test.sh does)");
        let prom = Prometheus { child, dir, addr };
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok()
                && metrics_kit::get(addr, "127.0.0.1", "/-/ready").await.0 == 200
            {
                return prom;
            }
            assert!(Instant::now() < deadline, "prometheus did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An instant query: the series it answers, or Prometheus's error (bad PromQL).
    pub async fn query(&self, q: &str) -> Result<Vec<Series>, String> {
        let (status, body) =
            metrics_kit::get(self.addr, "127.0.0.1", &format!("/api/v1/query?query={}", url_encode(q))).await;
        if status != 200 {
            return Err(format!("HTTP {status}: {body}"));
        }
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        let result = &v["data"]["result"];
        // A scalar answer (time(), a number) is ["<ts>", "<value>"].
        if v["data"]["resultType"] == "scalar" {
            let value = result[1].as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
            return Ok(vec![(serde_json::json!({}), value)]);
        }
        Ok(result
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .filter_map(|s| Some((s["metric"].clone(), s["value"][1].as_str()?.parse::<f64>().ok()?)))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Poll `q` every 250 ms until `ok` holds for its answer; the last answer at the deadline.
    pub async fn wait_for(
        &self,
        q: &str,
        deadline: Instant,
        ok: impl Fn(&[Series]) -> bool,
    ) -> Result<Vec<Series>, Vec<Series>> {
        loop {
            let answer = self.query(q).await.unwrap_or_else(|e| panic!("query {q} failed: {e}"));
            if ok(&answer) {
                return Ok(answer);
            }
            if Instant::now() >= deadline {
                return Err(answer);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

pub fn url_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

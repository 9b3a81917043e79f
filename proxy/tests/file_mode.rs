//! The `weir` binary in file mode: serving a file, reloading it on change and on SIGHUP,
//! keeping the old table when the new file is invalid, `weir check`, start-up errors, and a
//! graceful SIGTERM that finishes the request in flight and exits 0.
//!
//! The binary's addresses (port 0) and its readiness are read from its log on stderr.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tokio::sync::mpsc;

use weir_proxy::testkit::{get, within, Upstream, WAIT};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("weir-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    /// Write `text` to `name` atomically (a rename), so a poller never sees half a file.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn table(version: &str, up: &Upstream) -> String {
    format!(
        "schema: weir/v1\nversion: {version}\nhosts:\n  - host: app.test\n    rules:\n      - {{ path: /, backend: {{ endpoints: [\"{}\"] }} }}\n",
        up.addr
    )
}

const INVALID: &str = "schema: weir/v1
version: broken
hosts:
  - host: app.test
    rules:
      - path: nope
        backend: { endpoints: [\"not-an-address\"] }
        canary: { backend: { endpoints: [] }, weight: -5 }
";

/// A running `weir` process; killed (by its own pid) if the test ends before it exits.
struct Weir {
    child: Child,
    log: mpsc::UnboundedReceiver<String>,
    data: SocketAddr,
    admin: SocketAddr,
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn addr_after(line: &str, key: &str) -> SocketAddr {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("no {key} in {line:?}")) + key.len()..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':')).unwrap_or(rest.len());
    rest[..end].parse().unwrap_or_else(|e| panic!("bad address after {key} in {line:?}: {e}"))
}

impl Weir {
    /// Start `weir --config FILE` on loopback port 0 and wait until it serves.
    async fn start(config: &Path, poll: &str) -> Weir {
        let mut child = Command::new(WEIR)
            .arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--no-tls"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--config-poll", poll, "--drain-timeout", "20s", "--workers", "1"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(strip_ansi(&line)).is_err() {
                    break;
                }
            }
        });
        let mut weir = Weir {
            child,
            log,
            data: SocketAddr::from(([0, 0, 0, 0], 0)),
            admin: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let serving = weir.wait_for_log("weir is serving").await;
        weir.data = addr_after(&serving, "data_addr=");
        weir.admin = addr_after(&serving, "admin=Some(");
        weir.wait_for_log("watching the config file").await;
        weir
    }

    /// The next log line containing `needle` (earlier lines are skipped).
    async fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.log.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("weir exited before logging {needle:?}"),
                Err(_) => panic!("weir did not log {needle:?} within {WAIT:?}"),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    async fn version(&self) -> String {
        let r = get(self.admin, "admin", "/config", &[]).await;
        r.json()["version"].as_str().unwrap_or_default().to_owned()
    }

    async fn who(&self) -> String {
        get(self.data, "app.test", "/", &[]).await.upstream().to_owned()
    }

    /// Wait for the process to exit; its exit code.
    async fn exit_code(mut self) -> Option<i32> {
        let mut child = std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"));
        let status = within("weir to exit", tokio::task::spawn_blocking(move || child.wait())).await;
        status.expect("join").expect("wait").code()
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn file_mode_serves_and_reloads_when_the_file_changes() {
    let dir = Scratch::new("change");
    let (one, two) = (Upstream::start("one").await, Upstream::start("two").await);
    let file = dir.write("weir.yaml", &table("v1", &one));
    let mut weir = Weir::start(&file, "50ms").await;
    assert_eq!((weir.version().await, weir.who().await), ("v1".into(), "one".into()));

    dir.write("weir.yaml", &table("v2", &two));
    weir.wait_for_log("route table reloaded").await;
    assert_eq!((weir.version().await, weir.who().await), ("v2".into(), "two".into()));

    // An invalid file is rejected and the table in force keeps serving.
    dir.write("weir.yaml", INVALID);
    let rejected = weir.wait_for_log("reload rejected").await;
    assert!(rejected.contains("3 invalid field(s)"), "{rejected}");
    assert_eq!((weir.version().await, weir.who().await), ("v2".into(), "two".into()));

    // And a fixed file is picked up again.
    dir.write("weir.yaml", &table("v3", &one));
    weir.wait_for_log("route table reloaded").await;
    assert_eq!((weir.version().await, weir.who().await), ("v3".into(), "one".into()));
}

#[tokio::test]
async fn a_renewed_certificate_file_is_picked_up_though_the_table_file_is_unchanged() {
    let dir = Scratch::new("cert");
    let up = Upstream::start("app").await;
    let pair = |name: &str| {
        let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("rcgen");
        (c.cert.pem(), c.signing_key.serialize_pem())
    };
    let (cert, key) = pair("app.test");
    dir.write("tls.crt", &cert);
    dir.write("tls.key", &key);
    let yaml = format!(
        "schema: weir/v1\nversion: v1\nhosts:\n  - host: app.test\n    tls: {{ certificateFile: tls.crt, keyFile: tls.key }}\n    rules:\n      - {{ path: /, backend: {{ endpoints: [\"{}\"] }} }}\n",
        up.addr
    );
    let file = dir.write("weir.yaml", &yaml);
    // Written a minute ago, as far as file times tell: a just-written file is re-read on
    // every poll for a moment (its time is ambiguous), and this test is about the stamps.
    for name in ["weir.yaml", "tls.crt", "tls.key"] {
        let f = std::fs::File::options().write(true).open(dir.0.join(name)).expect("open");
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60)).expect("set mtime");
    }
    let mut weir = Weir::start(&file, "50ms").await;
    assert_eq!(weir.who().await, "app");

    // cert-manager renews: new files beside an unchanged table.
    let (cert, key) = pair("app.test");
    dir.write("tls.key", &key);
    dir.write("tls.crt", &cert);
    weir.wait_for_log("route table reloaded").await;
    assert_eq!((weir.version().await, weir.who().await), ("v1".into(), "app".into()));
}

#[tokio::test]
async fn sighup_reloads_the_file() {
    let dir = Scratch::new("hup");
    let (one, two) = (Upstream::start("one").await, Upstream::start("two").await);
    let file = dir.write("weir.yaml", &table("v1", &one));
    // Polling is effectively off: only SIGHUP can reload.
    let mut weir = Weir::start(&file, "1h").await;
    dir.write("weir.yaml", &table("v2", &two));
    assert_eq!(weir.version().await, "v1", "nothing reloads without the signal");

    weir.signal("HUP");
    weir.wait_for_log("route table reloaded").await;
    assert_eq!((weir.version().await, weir.who().await), ("v2".into(), "two".into()));

    // SIGHUP with an invalid file keeps the table in force.
    dir.write("weir.yaml", INVALID);
    weir.signal("HUP");
    weir.wait_for_log("reload rejected").await;
    assert_eq!((weir.version().await, weir.who().await), ("v2".into(), "two".into()));
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let dir = Scratch::new("term");
    let up = Upstream::start("app").await;
    let file = dir.write("weir.yaml", &table("v1", &up));
    let mut weir = Weir::start(&file, "1h").await;

    let data = weir.data;
    let in_flight = tokio::spawn(async move { get(data, "app.test", "/?hold=1", &[]).await });
    up.wait_for_hits(1).await;
    weir.signal("TERM");
    weir.wait_for_log("shutting down").await;
    // weir is draining with the request still held upstream; now let it answer.
    up.release();
    let r = within("the in-flight response", in_flight).await.expect("request task");
    assert_eq!((r.status.as_u16(), r.upstream()), (200, "app"));
    assert_eq!(weir.exit_code().await, Some(0));
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(WEIR).args(args).env("NO_COLOR", "1").output().expect("run weir");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn weir_check_lists_every_error_and_exits_1() {
    let dir = Scratch::new("check");
    let bad = dir.write("bad.yaml", INVALID);
    let (code, _, stderr) = run(&["check", bad.to_str().expect("utf-8 path")]);
    assert_eq!(code, Some(1), "{stderr}");
    for field in [
        "hosts[0].rules[0].path",
        "hosts[0].rules[0].backend.endpoints[0]",
        "hosts[0].rules[0].canary.weight",
    ] {
        assert!(stderr.contains(field), "{field} missing from:\n{stderr}");
    }
    assert!(stderr.contains("3 invalid field(s)"), "{stderr}");

    let good = dir.write("good.yaml", "schema: weir/v1\nversion: ok-1\nhosts: []\n");
    let (code, stdout, stderr) = run(&["check", good.to_str().expect("utf-8 path")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("valid"), "{stdout}");
}

#[test]
fn a_missing_file_is_a_one_line_error_and_exit_2() {
    let missing = std::env::temp_dir().join(format!("weir-e2e-{}-does-not-exist.yaml", std::process::id()));
    let missing = missing.to_str().expect("utf-8 path");
    for args in [vec!["--config", missing, "--listen", "127.0.0.1:0", "--no-admin"], vec!["check", missing]] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, Some(2), "weir {args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "weir {args:?} printed:\n{stderr}");
        assert!(stderr.contains(missing), "{stderr}");
    }
}

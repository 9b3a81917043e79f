//! 100 MB up and 100 MB down stream through weir without weir holding them in memory.
//!
//! weir runs in this process, so the process's resident memory bounds weir's. The upstream
//! counts the upload frame by frame and generates the download in 64 KiB chunks; the client
//! uploads from a generator and counts the download frame by frame: nothing in the test
//! buffers a body either. This file holds a single test so no other test shares the process
//! while it measures.
//!
//! The bound, 20 MB: a proxy that buffered either body would grow by 100 MB or more. A
//! streaming one holds per connection at most hyper's read buffer (~400 KB) and a few
//! in-flight 64 KiB chunks, on four connection ends (client→weir, weir→upstream), plus
//! allocator slack; 20 MB leaves room for that and is still five times below one body.

use http::Request;
use http_body_util::BodyExt;
use weir_proxy::testkit::{generated, request, within, Upstream, Weir, H1};

const BODY: u64 = 100 * 1024 * 1024;
const BOUND_KB: u64 = 20 * 1024;

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Samples VmRSS on a thread until dropped, keeping the highest value seen. The kernel's
/// VmHWM is updated lazily (on unmap), so the sampler guards against a missed peak.
struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl RssSampler {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            // Bounded: at most ~2 minutes of samples even if never stopped.
            for _ in 0..60_000 {
                max = max.max(status_kb("VmRSS:"));
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            max
        });
        RssSampler { stop, thread: Some(thread) }
    }

    fn max_kb(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().expect("sampler"))
    }
}

/// Reset the peak-RSS mark (VmHWM) to the current RSS; false where the kernel cannot.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

async fn upload(conn: &mut H1, n: u64) -> u64 {
    let req = Request::post("/?count=1").header("host", "app.test").body(generated(n)).expect("request");
    let r = conn.send(req).await.expect("upload");
    assert_eq!(r.status, 200, "{}", r.text());
    r.headers["x-received-bytes"].to_str().expect("count").parse().expect("count")
}

async fn download(conn: &mut H1, n: u64) -> u64 {
    let resp =
        conn.send_streaming(request("app.test", &format!("/?bytes={n}"), &[])).await.expect("download");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = 0u64;
    while let Some(frame) = within("the next download chunk", body.frame()).await {
        got += frame.expect("download frame").data_ref().map_or(0, |d| d.len() as u64);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_and_download_stream_through_without_growing_memory() {
    let up = Upstream::start("app").await;
    let weir = Weir::with(&format!(
        "schema: weir/v1\nhosts:\n  - host: app.test\n    rules:\n      - {{ path: /, maxBodySize: \"0\", backend: {{ endpoints: [\"{}\"] }} }}\n",
        up.addr
    ))
    .await;
    let mut conn = H1::connect(weir.data).await;
    // Warm up: connections, pools and allocator arenas exist before the baseline.
    assert_eq!(upload(&mut conn, 4 << 20).await, 4 << 20);
    assert_eq!(download(&mut conn, 4 << 20).await, 4 << 20);

    let baseline = status_kb("VmRSS:");
    let peak_resets = reset_peak();
    let hwm_before = status_kb("VmHWM:");
    let sampler = RssSampler::start();

    let started = std::time::Instant::now();
    assert_eq!(upload(&mut conn, BODY).await, BODY, "the upstream counted every uploaded byte");
    let rss_after_upload = status_kb("VmRSS:");
    assert_eq!(download(&mut conn, BODY).await, BODY, "the client counted every downloaded byte");
    let elapsed = started.elapsed();
    let rss_after = status_kb("VmRSS:");
    let hwm = status_kb("VmHWM:");
    let sampled = sampler.max_kb();

    // Without a resettable peak, the high-water mark only counts if it rose.
    let hwm_growth = if peak_resets { hwm.saturating_sub(baseline) } else { hwm.saturating_sub(hwm_before) };
    let growth = hwm_growth.max(sampled.saturating_sub(baseline));
    eprintln!(
        "200 MB in {elapsed:?}: RSS {baseline} kB before, {rss_after_upload} kB after the upload, \
         {rss_after} kB after the download; peak {hwm} kB by VmHWM (reset: {peak_resets}), \
         {sampled} kB sampled; growth {growth} kB"
    );
    assert!(growth < BOUND_KB, "memory grew by {growth} kB while streaming (bound {BOUND_KB} kB)");
    assert!(rss_after.saturating_sub(baseline) < BOUND_KB);
    drop(conn);
    weir.stop().await;
}

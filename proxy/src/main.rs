//! The `weir` binary: run from a config file, check a file, or run the demo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use weir_config::{ConfigError, RouteTable};
use weir_proxy::access_log::AccessLogTarget;
use weir_proxy::metrics::{MetricsSettings, DEFAULT_CONTROLLER_CLASS};
use weir_proxy::pool::PoolSettings;
use weir_proxy::reload;
use weir_proxy::server::ConnSettings;

/// weir: an ingress proxy for progressive delivery, with ingress-nginx's canary semantics.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a table file and print every error (exit 1 if invalid, 2 if unreadable).
    Check { file: PathBuf },
    /// Run with two built-in upstreams and a 10 % canary: no Kubernetes, no config needed.
    Demo {
        #[command(flatten)]
        listen: Box<ListenArgs>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// The route table file (YAML or JSON, schema weir/v1). Reloaded on SIGHUP and on change.
    /// Without it, weir starts with no table and waits for one on the admin API.
    #[arg(long, env = "WEIR_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    listen: ListenArgs,
}

#[derive(Args, Clone)]
struct ListenArgs {
    /// Data-plane listen address (HTTP/1.1 and h2c).
    #[arg(long, env = "WEIR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// TLS data-plane listen address (certificates come from the route table's hosts).
    #[arg(long, env = "WEIR_TLS_LISTEN", default_value = "0.0.0.0:8443")]
    tls_listen: SocketAddr,
    /// Turn the TLS listener off.
    #[arg(long, env = "WEIR_NO_TLS")]
    no_tls: bool,
    /// Admin API address. Loopback by default: it can change routing.
    #[arg(long, env = "WEIR_ADMIN_LISTEN", default_value = "127.0.0.1:10255")]
    admin_listen: SocketAddr,
    /// Serve the admin API on this Unix domain socket (mode 0600: only weir's user, i.e. the
    /// controller beside it in the pod, can change routing) instead of --admin-listen.
    #[arg(long, env = "WEIR_ADMIN_SOCKET", conflicts_with_all = ["admin_listen", "no_admin"])]
    admin_socket: Option<PathBuf>,
    /// Turn the admin API off.
    #[arg(long, env = "WEIR_NO_ADMIN")]
    no_admin: bool,
    /// Data-plane workers, each a thread with its own runtime and listening sockets
    /// (default: one per CPU).
    #[arg(long, env = "WEIR_WORKERS")]
    workers: Option<usize>,
    /// Time allowed for a request's headers once they started arriving (slowloris guard).
    #[arg(long, env = "WEIR_HEADER_READ_TIMEOUT", default_value = "60s", value_parser = humantime_duration)]
    header_read_timeout: Duration,
    /// Close a client connection idle (no request in flight) this long.
    #[arg(long, env = "WEIR_KEEPALIVE_TIMEOUT", default_value = "75s", value_parser = humantime_duration)]
    keepalive_timeout: Duration,
    /// Largest request head (request line + headers); larger requests get 431.
    #[arg(long, env = "WEIR_MAX_HEADER_BYTES", default_value_t = 32 * 1024)]
    max_header_bytes: usize,
    /// Client connections served at once (both listeners); more wait in the accept queue.
    #[arg(long, env = "WEIR_MAX_CONNECTIONS", default_value_t = 16_384)]
    max_connections: usize,
    /// Time allowed for a client's TLS handshake.
    #[arg(long, env = "WEIR_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime_duration)]
    tls_handshake_timeout: Duration,
    /// Idle upstream keep-alive connections kept per endpoint.
    #[arg(long, env = "WEIR_UPSTREAM_KEEPALIVE", default_value_t = 320)]
    upstream_keepalive: usize,
    /// How long an idle upstream connection is kept.
    #[arg(long, env = "WEIR_UPSTREAM_KEEPALIVE_TIMEOUT", default_value = "60s", value_parser = humantime_duration)]
    upstream_keepalive_timeout: Duration,
    /// Mirror copies (mirror routes) being buffered or sent at once; more are dropped and
    /// counted (`weir_mirror_copies_total{result="full"}`).
    #[arg(long, env = "WEIR_MIRROR_MAX_IN_FLIGHT", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    mirror_max_in_flight: u32,
    /// Largest request body a mirror copy carries (bytes); a copy of a larger request is
    /// dropped and counted (`result="too_large"`). The primary request is never affected.
    #[arg(long, env = "WEIR_MIRROR_BODY_LIMIT", default_value_t = 64 * 1024)]
    mirror_body_limit: u64,
    /// At shutdown, how long in-flight requests may take to finish.
    #[arg(long, env = "WEIR_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime_duration)]
    drain_timeout: Duration,
    /// How often the config file is checked for changes.
    #[arg(long, env = "WEIR_CONFIG_POLL", default_value = "1s", value_parser = humantime_duration)]
    config_poll: Duration,
    /// Log filter (overridden by RUST_LOG), e.g. info, debug, weir_proxy=trace.
    #[arg(long, env = "WEIR_LOG", default_value = "info")]
    log: String,
    /// Log line format (on stderr).
    #[arg(long, env = "WEIR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Prometheus metrics listener (`/metrics`, `/healthz`), ingress-nginx's port by default.
    #[arg(long, env = "WEIR_METRICS_LISTEN", default_value = "0.0.0.0:10254")]
    metrics_listen: SocketAddr,
    /// Record no metrics and serve no metrics listener.
    #[arg(long, env = "WEIR_NO_METRICS")]
    no_metrics: bool,
    /// The `controller_class` label of every metric.
    #[arg(long, env = "WEIR_CONTROLLER_CLASS", default_value = DEFAULT_CONTROLLER_CLASS)]
    controller_class: String,
    /// Label `status` with the status class ("2xx") instead of the code ("200").
    #[arg(long, env = "WEIR_METRICS_STATUS_CLASS")]
    metrics_status_class: bool,
    /// Write an access log: one JSON line per request.
    #[arg(long, env = "WEIR_ACCESS_LOG")]
    access_log: bool,
    /// Append the access log to this file instead of stdout (implies --access-log).
    #[arg(long, env = "WEIR_ACCESS_LOG_PATH")]
    access_log_path: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 500ms, 5s or 2m: {e}"))
}

impl ListenArgs {
    fn settings(&self) -> weir_proxy::Settings {
        weir_proxy::Settings {
            listen: self.listen,
            tls_listen: (!self.no_tls).then_some(self.tls_listen),
            admin_listen: (!self.no_admin && self.admin_socket.is_none()).then_some(self.admin_listen),
            admin_socket: self.admin_socket.clone(),
            metrics_listen: (!self.no_metrics).then_some(self.metrics_listen),
            metrics: (!self.no_metrics)
                .then(|| MetricsSettings::from_env(self.controller_class.clone(), self.metrics_status_class)),
            access_log: match (&self.access_log_path, self.access_log) {
                (Some(path), _) => Some(AccessLogTarget::File(path.clone())),
                (None, true) => Some(AccessLogTarget::Stdout),
                (None, false) => None,
            },
            conn: ConnSettings {
                header_read_timeout: self.header_read_timeout,
                keepalive_timeout: self.keepalive_timeout,
                max_header_bytes: self.max_header_bytes,
                max_connections: self.max_connections,
                tls_handshake_timeout: self.tls_handshake_timeout,
            },
            pool: PoolSettings {
                max_idle_per_endpoint: self.upstream_keepalive,
                idle_timeout: self.upstream_keepalive_timeout,
            },
            drain_timeout: self.drain_timeout,
            workers: self.workers(),
            mirror: weir_proxy::mirror::MirrorSettings {
                max_in_flight: self.mirror_max_in_flight as usize,
                body_limit: self.mirror_body_limit,
            },
        }
    }

    /// The control runtime: admin API, metrics, reloads, signals; with one worker, also
    /// the data plane. More workers get threads of their own (`weir_proxy::start`).
    /// Current-thread runtimes only: no work-stealing queues, no cross-thread wakeups on
    /// the request path (measurably less CPU per request).
    fn runtime(&self) -> anyhow::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("weir")
            .build()
            .context("cannot start the async runtime")
    }

    /// Data-plane workers: `--workers`, else one per CPU.
    fn workers(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
            .max(1)
    }
}

/// jemalloc rather than glibc's malloc: after a burst of connections glibc keeps the freed
/// heap (a chunk still in use near the top of the brk heap pins everything below it; only
/// `malloc_trim`, an FFI call, gives it back), while jemalloc returns freed pages to the OS
/// on its own, within its decay time (10 s), from a background thread, with no call in
/// weir's code. Numbers in loadtests/README.md ("After a burst").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Purge freed memory even while idle (without it, jemalloc purges only when it is
    // called, and an idle proxy after a burst is not calling it).
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("weir: cannot start the allocator's background thread ({e}); freed memory is returned more slowly");
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { file }) => check(&file),
        Some(Command::Demo { listen }) => exit(run_demo(*listen)),
        None => exit(run(cli.run)),
    }
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logs(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// `weir check`: the file as `weir --config` would load it (certificate files read too).
fn check(file: &std::path::Path) -> ExitCode {
    let doc = match reload::read_doc(file) {
        Ok(doc) => doc,
        Err(e @ reload::FileError::Read { .. }) => {
            eprintln!("weir: {e}");
            return ExitCode::from(2);
        }
        Err(e @ reload::FileError::Parse { .. }) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    match RouteTable::from_doc(&doc) {
        Ok(t) => {
            println!("{}: valid (version {}, {} routes)", file.display(), t.version(), t.routes().len());
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid(errs)) => {
            eprintln!("{}: {} invalid field(s):", file.display(), errs.len());
            for e in errs {
                eprintln!("  {e}");
            }
            ExitCode::from(1)
        }
        Err(e @ ConfigError::Parse(_)) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let initial = match &args.config {
        Some(path) => Some((path.clone(), reload::read_table(path)?)),
        None => None,
    };
    // Validate before binding anything, so a bad file is an error with exit 2.
    if let Some((path, table)) = &initial {
        RouteTable::from_doc(&table.doc).with_context(|| format!("{} is invalid", path.display()))?;
    }
    init_logs(&args.listen.log, args.listen.log_format);
    let runtime = args.listen.runtime()?;
    runtime.block_on(async {
        let stop = shutdown_signal();
        let doc = initial.as_ref().map(|(_, table)| table.doc.clone());
        let running = weir_proxy::start(args.listen.settings(), doc).await?;
        if let Some((path, table)) = initial {
            tokio::spawn(reload::watch_file(path, running.routes.clone(), table, args.listen.config_poll));
        }
        stop.await;
        tracing::info!("shutting down: draining in-flight requests");
        running.shutdown().await;
        Ok(())
    })
}

fn run_demo(listen: ListenArgs) -> anyhow::Result<()> {
    init_logs(&listen.log, listen.log_format);
    let runtime = listen.runtime()?;
    runtime.block_on(async {
        let stop = shutdown_signal();
        let stable =
            weir_proxy::demo::spawn_upstream("stable").await.context("cannot start the stable upstream")?;
        let canary =
            weir_proxy::demo::spawn_upstream("canary").await.context("cannot start the canary upstream")?;
        let settings = weir_proxy::Settings { tls_listen: None, ..listen.settings() };
        let running = weir_proxy::start(settings, Some(weir_proxy::demo::table(stable, canary))).await?;
        println!("{}", weir_proxy::demo::banner(running.data_addr, running.admin_addr, stable, canary));
        stop.await;
        running.shutdown().await;
        Ok(())
    })
}

/// Install the SIGTERM and Ctrl-C handlers now (before anything is served, so an early
/// SIGTERM drains instead of killing the process); the future resolves on either signal.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = ctrl_c => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}

//! `weir-controller`: the command line around [`weir_controller::run`] and the migration
//! analyzer ([`weir_controller::analyze`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use weir_controller::annotations::catalog::Waivers;
use weir_controller::lease::LeaseSettings;
use weir_controller::metrics::{self, Metrics};
use weir_controller::status::Publish;
use weir_controller::{Options, Settings};

/// Watches Ingresses (ingress-nginx canary annotations included) and keeps weir's route
/// table in step through its admin API.
#[derive(Debug, Parser)]
#[command(name = "weir-controller", version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Ingress class weir serves (spec.ingressClassName or kubernetes.io/ingress.class).
    #[arg(long, env = "WEIR_CLASS", default_value = "weir")]
    class: String,
    /// spec.controller of the IngressClasses weir implements.
    #[arg(long, env = "WEIR_CONTROLLER_NAME", default_value = "weir.dev/ingress-controller")]
    controller_name: String,
    /// Prefix of the ingress-nginx annotations.
    #[arg(
        long,
        global = true,
        env = "WEIR_ANNOTATION_PREFIX",
        default_value = "nginx.ingress.kubernetes.io"
    )]
    annotation_prefix: String,
    /// Refused annotation keys (comma-separated, e.g. configuration-snippet) whose refusal the
    /// operator accepts: Ingresses using them are served without them. Logged at start.
    #[arg(long, global = true, env = "WEIR_ACCEPT_ANNOTATION", value_delimiter = ',')]
    accept_annotation: Vec<String>,
    /// TLS Secret (namespace/name) served when SNI names no host with a certificate, like
    /// ingress-nginx's flag of the same name. It must be in a watched namespace.
    #[arg(long, env = "WEIR_DEFAULT_SSL_CERTIFICATE")]
    default_ssl_certificate: Option<String>,
    /// Take the client address from X-Forwarded-For, believed only from the peers in
    /// --proxy-real-ip-cidr (ingress-nginx's use-forwarded-headers): what IP allow/deny lists
    /// judge, X-Real-IP carries and the access log shows. Default: the TCP peer.
    #[arg(long, env = "WEIR_USE_FORWARDED_HEADERS", conflicts_with = "use_proxy_protocol")]
    use_forwarded_headers: bool,
    /// Expect a PROXY protocol (v1 or v2) header on every data connection and take the
    /// client address from it (ingress-nginx's use-proxy-protocol).
    #[arg(long, env = "WEIR_USE_PROXY_PROTOCOL")]
    use_proxy_protocol: bool,
    /// The proxies in front of weir (CIDRs, comma-separated; ingress-nginx's
    /// proxy-real-ip-cidr): required with --use-forwarded-headers; with
    /// --use-proxy-protocol, other peers are refused.
    #[arg(long, env = "WEIR_PROXY_REAL_IP_CIDR", value_delimiter = ',')]
    proxy_real_ip_cidr: Vec<String>,
    /// Watch (or analyze) only this namespace (default: all namespaces).
    #[arg(long, global = true, env = "WEIR_NAMESPACE")]
    namespace: Option<String>,
    /// The proxy's admin API: `http://host:port`, or `unix:/path` for its --admin-socket.
    #[arg(long, env = "WEIR_PROXY_ADMIN", default_value = "http://127.0.0.1:10255")]
    proxy_admin: String,
    /// Service (namespace/name) whose address goes into Ingress status.loadBalancer.
    #[arg(long, env = "WEIR_PUBLISH_SERVICE", conflicts_with = "publish_address")]
    publish_service: Option<String>,
    /// Addresses (IPs or host names, comma-separated) for Ingress status.loadBalancer.
    #[arg(long, env = "WEIR_PUBLISH_ADDRESS", value_delimiter = ',')]
    publish_address: Vec<String>,
    /// Where /healthz, /readyz and /metrics listen.
    #[arg(long, env = "WEIR_LISTEN", default_value = "127.0.0.1:10257")]
    listen: SocketAddr,
    /// Elect one leader (a Lease) to write status and events; off for a single replica.
    #[arg(long, env = "WEIR_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    #[arg(long, env = "WEIR_LEASE_NAME", default_value = "weir-controller")]
    lease_name: String,
    /// Namespace of the Lease (usually the controller's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's identity in the Lease and in Events.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Read Ingresses (YAML files or directories, `kubectl get ingress -A -o yaml` output;
    /// without files, from the cluster) and print what weir would do with each ingress-nginx
    /// annotation. Exit 0: nothing refused; 1: something would be refused; 2: unreadable input.
    Analyze {
        /// Files or directories (walked for .yaml, .yml, .json); `-` is standard input. None:
        /// read the cluster.
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Only Ingresses of this class (annotation or spec.ingressClassName), and those
        /// naming none. Default: every Ingress.
        #[arg(long)]
        ingress_class: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let prefix = args.annotation_prefix.trim_end_matches('/').to_string();
    if let Some(Command::Analyze { files, output, ingress_class }) = &args.command {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
            )
            .init();
        let code = analyze(files, *output, ingress_class.as_deref(), &prefix, &args).await?;
        std::process::exit(code);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let waivers = Waivers::parse(&args.accept_annotation, &prefix)?;
    if !waivers.is_empty() {
        tracing::warn!(
            keys = %waivers.iter().collect::<Vec<_>>().join(","),
            "the operator accepts these refused annotations: Ingresses using them are served without them"
        );
    }
    let publish = match (&args.publish_service, args.publish_address.is_empty()) {
        (Some(s), _) => {
            let Some((namespace, name)) = s.split_once('/') else {
                bail!("--publish-service must be namespace/name, got {s:?}");
            };
            Publish::Service { namespace: namespace.into(), name: name.into() }
        }
        (None, false) => Publish::Addresses(args.publish_address.clone()),
        (None, true) => Publish::Nothing,
    };
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{:08x}", host.trim(), fastrand::u32(..))
    });
    let default_certificate = match &args.default_ssl_certificate {
        None => None,
        Some(s) => match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Some((ns.to_string(), name.to_string()))
            }
            _ => bail!("--default-ssl-certificate must be namespace/name, got {s:?}"),
        },
    };
    let client_address = client_address(&args)?;
    let mut settings = Settings::new(&args.proxy_admin);
    settings.options = Options {
        class: args.class,
        controller_name: args.controller_name,
        annotation_prefix: prefix,
        default_certificate,
        accepted: waivers,
        client_address,
    };
    settings.namespace = args.namespace;
    settings.publish = publish;
    settings.instance = Some(identity.clone());
    settings.lease = args.leader_elect.then(|| LeaseSettings {
        namespace: args.lease_namespace,
        name: args.lease_name,
        identity,
        duration: Duration::from_secs(15),
        retry: Duration::from_secs(2),
    });

    let metrics = Metrics::new()?;
    let listener = metrics::bind(args.listen).await?;
    tokio::spawn(metrics::serve(listener, metrics.clone()));
    let client = kube::Client::try_default().await.context("no Kubernetes configuration found")?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    weir_controller::run(client, settings, metrics, stop_rx).await?;
    Ok(())
}

/// `weir-controller analyze`: the report on stdout, the exit code returned. Input that
/// cannot be had at all (a bad flag, no cluster) is exit 2 too, not anyhow's 1, which
/// means "refused".
async fn analyze(
    files: &[PathBuf],
    output: Output,
    class: Option<&str>,
    prefix: &str,
    args: &Args,
) -> anyhow::Result<i32> {
    let waivers = match Waivers::parse(&args.accept_annotation, prefix) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("weir-controller analyze: {e}");
            return Ok(2);
        }
    };
    let (loaded, errors) = if files.is_empty() {
        let listed = match kube::Client::try_default().await {
            Ok(client) => weir_controller::analyze::from_cluster(client, args.namespace.as_deref()).await,
            Err(e) => Err(e.into()),
        };
        match listed {
            Ok(loaded) => (loaded, Vec::new()),
            Err(e) => {
                eprintln!(
                    "weir-controller analyze: reading Ingresses from the cluster (give YAML files to analyze offline): {e}"
                );
                return Ok(2);
            }
        }
    } else {
        weir_controller::analyze::read_paths(files)
    };
    let loaded = match class {
        Some(c) => weir_controller::analyze::of_class(loaded, c),
        None => loaded,
    };
    let mut report = weir_controller::analyze::analyze(loaded, prefix, &waivers);
    report.add_errors(errors);
    match output {
        Output::Text => print!("{}", report.text(prefix)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report.json())?),
    }
    for (path, reason) in &report.errors {
        eprintln!("weir-controller analyze: {path}: {reason}");
    }
    Ok(report.exit_code())
}

/// The table's `clientAddress` from the flags, checked now as weir-config checks it (a
/// mistake here would otherwise make every table the controller pushes refused).
fn client_address(args: &Args) -> anyhow::Result<Option<weir_config::access::doc::ClientAddressDoc>> {
    use weir_config::access::doc::ClientAddressDoc;
    let from = match (args.use_forwarded_headers, args.use_proxy_protocol) {
        (true, _) => "forwardedFor",
        (false, true) => "proxyProtocol",
        (false, false) if args.proxy_real_ip_cidr.is_empty() => return Ok(None),
        (false, false) => bail!("--proxy-real-ip-cidr needs --use-forwarded-headers or --use-proxy-protocol"),
    };
    let doc = ClientAddressDoc {
        from: Some(from.into()),
        trusted_proxies: args.proxy_real_ip_cidr.iter().map(|c| c.trim().to_string()).collect(),
    };
    let probe = weir_config::TableDoc {
        schema: weir_config::wire::SCHEMA_V1.into(),
        client_address: Some(doc.clone()),
        ..Default::default()
    };
    if let Err(e) = weir_config::RouteTable::from_doc(&probe) {
        bail!("--use-forwarded-headers/--use-proxy-protocol/--proxy-real-ip-cidr: {e}");
    }
    Ok(Some(doc))
}

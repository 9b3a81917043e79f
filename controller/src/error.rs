//! The controller's error type, re-exported at the crate root as `Error`.

/// What can go wrong in the controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// `--proxy-admin` is not an `http://host:port` URL nor `unix:/path`.
    #[error("proxy admin URL {0:?} is not of the form http://host:port or unix:/path/to/socket")]
    AdminUrl(String),
    /// The proxy's admin socket could not be connected to.
    #[error("cannot connect to the admin socket {}", path.display())]
    AdminSocket {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An admin API exchange over the Unix socket failed.
    #[error("admin API exchange failed")]
    AdminExchange(#[source] hyper::Error),
    #[error("could not build the admin API request")]
    AdminBuild(#[source] http::Error),
    /// The proxy's admin API could not be reached.
    #[error("admin API request failed")]
    AdminRequest(#[source] hyper_util::client::legacy::Error),
    #[error("reading the admin API response failed")]
    AdminBody(#[source] hyper::Error),
    #[error("admin API answered {0}")]
    AdminStatus(http::StatusCode),
    #[error("admin API response is not the expected JSON")]
    AdminJson(#[source] serde_json::Error),
    #[error("admin API did not answer in time")]
    AdminTimeout,
    #[error("could not register a metric")]
    Metrics(#[from] prometheus::Error),
    /// `--accept-annotation` names a key that is not refused (or not a key at all).
    #[error("--accept-annotation {key}: {problem}")]
    Waiver { key: String, problem: String },
    /// The analyzer could not read an input file or directory.
    #[error("cannot read {}", path.display())]
    AnalyzeRead {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An input file is not YAML, or a document in it is not a well-formed Ingress.
    #[error("{} is not readable as Kubernetes YAML", path.display())]
    AnalyzeParse {
        path: std::path::PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("could not listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

//! Everything that can end a request early, and the one place it becomes a status code.

use http::StatusCode;
use weir_config::PathError;

pub use crate::fault::Fault;

/// nginx's 499: the client closed the request before weir could answer it.
const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(s) => s,
    Err(_) => StatusCode::BAD_REQUEST,
};

/// Why weir answered a request itself instead of relaying an upstream response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    // ----- the client's fault -----
    #[error("the request has no usable host (no Host header and no authority)")]
    MissingHost,
    #[error("the request path cannot be routed: {0}")]
    BadPath(#[source] PathError),
    #[error("the request is malformed: {0}")]
    BadRequest(&'static str),
    #[error("{0} requests are not served: weir is not a forward proxy")]
    MethodNotAllowed(http::Method),
    #[error("{what} is not a usable host: {reason}")]
    BadHost { what: &'static str, reason: &'static str },
    #[error("the request body is larger than the rule allows ({limit} bytes)")]
    BodyTooLarge { limit: u64 },
    #[error("the request body is malformed: {0}")]
    BadBody(#[source] hyper::Error),
    #[error("the client went away before its request body ended: {0}")]
    ClientClosed(#[source] hyper::Error),

    // ----- nothing is configured for it -----
    #[error("no rule matches this host and path")]
    NoRoute,

    // ----- the upstream side -----
    #[error("no backend of the route has a ready endpoint")]
    NoEndpoints,
    #[error("could not connect to any endpoint of the backend (last tried {addr}): {source}")]
    Connect {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the upstream did not send response headers within {0:?}")]
    ResponseTimeout(std::time::Duration),
    #[error("the upstream took no more of the request for {0:?}")]
    SendTimeout(std::time::Duration),
    #[error("the upstream connection failed: {0}")]
    Upstream(#[source] hyper::Error),
    #[error("the upstream exchange failed: {0}")]
    Exchange(#[source] crate::exchange::ExchangeError),
    #[error("the upstream switched protocols (101) for a request that asked for no upgrade")]
    UnaskedUpgrade,

    // ----- an access check that could not be made -----
    #[error("the external auth service failed: {0}")]
    AuthService(String),

    // ----- weir itself -----
    #[error("weir could not build the upstream request: {0}")]
    Internal(#[source] http::Error),
}

impl ProxyError {
    /// The status weir answers with, classified by who failed. No catch-all arm on purpose:
    /// a new variant must decide its status here.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::MissingHost
            | ProxyError::BadPath(_)
            | ProxyError::BadRequest(_)
            | ProxyError::BadHost { .. }
            | ProxyError::BadBody(_) => StatusCode::BAD_REQUEST,
            ProxyError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::ClientClosed(_) => CLIENT_CLOSED_REQUEST,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoEndpoints => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect { .. }
            | ProxyError::Upstream(_)
            | ProxyError::Exchange(_)
            | ProxyError::UnaskedUpgrade => StatusCode::BAD_GATEWAY,
            ProxyError::ResponseTimeout(_) | ProxyError::SendTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            // Fail closed, as nginx's auth_request: an auth service that cannot answer
            // lets nothing through, and no backend is blamed.
            ProxyError::AuthService(_) | ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Who failed, for the record: the status alone cannot say (a 400 may be weir's answer
    /// to a malformed request or an upstream's own answer). No catch-all arm, as above.
    pub fn fault(&self) -> Fault {
        match self {
            ProxyError::MissingHost
            | ProxyError::BadPath(_)
            | ProxyError::BadRequest(_)
            | ProxyError::BadHost { .. }
            | ProxyError::MethodNotAllowed(_)
            | ProxyError::BodyTooLarge { .. }
            | ProxyError::BadBody(_)
            | ProxyError::ClientClosed(_) => Fault::Client,
            // Nothing failed: no rule serves it (and such requests are not recorded).
            ProxyError::NoRoute => Fault::None,
            ProxyError::NoEndpoints
            | ProxyError::Connect { .. }
            | ProxyError::ResponseTimeout(_)
            | ProxyError::SendTimeout(_)
            | ProxyError::Upstream(_)
            | ProxyError::Exchange(_)
            | ProxyError::UnaskedUpgrade => Fault::Backend,
            // An external auth service weir depends on, never the rule's backend.
            ProxyError::AuthService(_) | ProxyError::Internal(_) => Fault::Proxy,
        }
    }

    /// The gRPC status for a gRPC request weir failed itself (gRPC clients read
    /// `grpc-status`, not the HTTP status), per the gRPC HTTP-to-status mapping.
    pub fn grpc_status(&self) -> u8 {
        match self.status().as_u16() {
            400 => 13,       // INTERNAL
            499 => 1,        // CANCELLED
            404 | 405 => 12, // UNIMPLEMENTED
            413 => 8,        // RESOURCE_EXHAUSTED
            502..=504 => 14, // UNAVAILABLE
            _ => 2,          // UNKNOWN
        }
    }
}

//! weir-config: the route model shared by the proxy and the controller.
//!
//! Pure: no I/O, no async runtime. The proxy serves from a [`RouteTable`]; the controller
//! builds a [`wire::TableDoc`] from cluster state and can preview its decisions here too.
//!
//! # Layout
//! - [`wire`]: the versioned YAML/JSON document (config file and admin API), as written.
//! - [`validate`]: wire → model in one place, collecting every error with its field path.
//! - [`checks`]: the field checks (host names, tokens, nginx sizes, certificates, the content
//!   hash), exported for the controller.
//! - [`model`]: the validated table: virtual hosts, routes, backends, canary policies.
//! - [`matching`]: host + path → route (`RouteTable::match_route`).
//! - [`canary`]: the per-request stable/canary decision (`pick_backend`).
//! - [`access`]: deny rules, IP rules, the client address, basic and external auth.

pub mod access;
pub mod affinity;
pub mod canary;
pub mod checks;
pub mod cors;
mod field;
pub mod matching;
pub mod model;
pub mod ratelimit;
mod redact;
pub mod retry;
pub mod rewrite;
pub mod validate;
pub mod wire;

#[cfg(test)]
mod cors_tests;
#[cfg(test)]
mod destination_tests;
#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod header_route_tests;
#[cfg(test)]
mod mirror_route_tests;
#[cfg(test)]
mod redirect_tests;
#[cfg(test)]
mod rewrite_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use canary::{
    mirror_route, pick_backend, pick_backend_guarded, pick_backend_pinned, Decision, Reason, Side,
};
pub use matching::PathError;
pub use model::{
    Backend, BackendId, Canary, CanaryPolicy, Certificate, Destination, Guard, GuardKey, HeaderMatch,
    HeaderMatcher, HeaderRoute, HeaderRule, MirrorMatch, MirrorRoute, PathType, Protocol, Redirect,
    RequestParts, Route, RouteTable, ValueTest,
};
pub use rewrite::{Rewrite, Rewritten};
pub use validate::FieldError;
pub use wire::TableDoc;

/// Why a document was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not YAML/JSON, or a field of the wrong type or an unknown field.
    #[error("the document does not parse: {0}")]
    Parse(#[source] serde_yaml_ng::Error),
    /// It parsed, and these fields are invalid; nothing of it was applied.
    #[error("{} invalid field(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

impl RouteTable {
    /// Parse a YAML or JSON document (JSON is YAML) and validate it whole.
    pub fn parse(text: &str) -> Result<RouteTable, ConfigError> {
        let doc: TableDoc = serde_yaml_ng::from_str(text).map_err(ConfigError::Parse)?;
        RouteTable::from_doc(&doc)
    }

    /// Validate a parsed document and build the table.
    pub fn from_doc(doc: &TableDoc) -> Result<RouteTable, ConfigError> {
        validate::build(doc).map_err(ConfigError::Invalid)
    }
}

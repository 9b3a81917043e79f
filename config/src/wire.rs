//! The wire format: what a config file and the admin API carry, before validation.
//!
//! These types mirror the YAML/JSON document one to one and accept anything that parses;
//! [`crate::validate`] turns them into the model or lists every problem. Keeping them apart
//! from the model means the model can hold only valid, pre-compiled state.

use serde::{Deserialize, Serialize};

/// The only schema this version of weir reads.
pub const SCHEMA_V1: &str = "weir/v1";

/// A whole route table as written in a file or pushed to `PUT /config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableDoc {
    /// Must be `weir/v1`.
    pub schema: String,
    /// A free-form label for this table (the controller sends a content hash). When absent,
    /// the proxy derives one from the document's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Table-wide defaults that a rule may override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<DefaultsDoc>,
    /// Virtual hosts. At most one may omit `host`: that one is the default server.
    #[serde(default)]
    pub hosts: Vec<HostDoc>,
}

/// Defaults for every rule of the table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultsDoc {
    /// Upstream TCP connect timeout, e.g. `5s` (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    /// Time allowed for the upstream's response headers, e.g. `60s` (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_timeout: Option<String>,
}

/// One virtual host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostDoc {
    /// `app.example.com`, `*.example.com` (one label), or absent for the default server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
}

/// One path rule of a host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleDoc {
    /// Request path to match; empty means `/`.
    #[serde(default)]
    pub path: String,
    /// `Exact`, `Prefix` or `ImplementationSpecific` (treated as Prefix). Default `Prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_type: Option<String>,
    /// The stable (main) backend.
    pub backend: BackendDoc,
    /// The canary backend and how requests are split onto it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_timeout: Option<String>,
}

/// A backend: where to send, and who it is for metrics and logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Service port, by number or name; used in labels only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortDoc>,
    /// Ready endpoints as `ip:port`. May be empty (the backend then cannot serve).
    #[serde(default)]
    pub endpoints: Vec<String>,
}

/// A Service port: a number or a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortDoc {
    Number(i64),
    Name(String),
}

/// Canary backend and policy, with ingress-nginx's annotation meanings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryDoc {
    pub backend: BackendDoc,
    /// `canary-weight`: share of traffic, out of `weightTotal`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// `canary-weight-total`: the denominator. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_total: Option<i64>,
    /// `canary-by-header`: the header that can force the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `canary-by-header-value`: exact value that sends to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value: Option<String>,
    /// `canary-by-header-pattern`: regex searched in the header's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_pattern: Option<String>,
    /// Set by the controller when an annotation's pattern does not compile (D5): requests
    /// carrying the header go to the stable backend, as in ingress-nginx. Holds the pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_header_pattern: Option<String>,
    /// `canary-by-cookie`: the cookie that can force the decision (`always`/`never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

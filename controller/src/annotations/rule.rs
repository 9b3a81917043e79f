//! Per-rule annotations of a main Ingress: body size, timeouts, upstream protocol, redirects.
//!
//! docs/canary-semantics.md §3: these come from the main Ingress only; a canary Ingress's own
//! values are ignored. Lenient like the canary annotations (§1): a value that does not
//! parse is reported and the default (the proxy's, or `true` for `ssl-redirect`) is used,
//! so every value written into the table is one `weir-config` accepts.

use std::collections::BTreeMap;

use super::lenient::{parse_bool, parse_int, AnnotationWarning};

/// ingress-nginx takes timeouts as whole seconds; more than a year is surely a mistake.
pub(crate) const MAX_TIMEOUT_SECS: i64 = 365 * 24 * 3600;

/// The per-rule settings of one main Ingress, as wire strings (`None` = proxy default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleAnnotations {
    /// `proxy-body-size`, nginx size syntax (`8m`, `512k`, `0` = no limit).
    pub max_body_size: Option<String>,
    /// `proxy-connect-timeout` seconds, as `"30s"`.
    pub connect_timeout: Option<String>,
    /// `proxy-read-timeout` seconds, as `"30s"`.
    pub response_timeout: Option<String>,
    /// `backend-protocol`: `HTTPS`, `GRPC` or `GRPCS`; `None` is HTTP.
    pub protocol: Option<String>,
    /// `ssl-redirect`, default true: plain HTTP to a host with TLS gets a redirect.
    pub ssl_redirect: bool,
    /// `force-ssl-redirect`, default false: redirect even when `ssl-redirect` is false.
    pub force_ssl_redirect: bool,
    /// IP lists, basic and external auth (filled by translation, which reads Secrets).
    pub access: Option<weir_config::wire::AccessDoc>,
    /// `temporal-redirect` or `permanent-redirect` with its code (filled by translation from
    /// the catalog's checked values).
    pub redirect: Option<weir_config::wire::RedirectDoc>,
    /// `app-root` (filled by translation).
    pub app_root: Option<String>,
    /// `use-regex` (filled by translation).
    pub use_regex: bool,
    /// `rewrite-target` and `x-forwarded-prefix` (filled by translation).
    pub rewrite_target: Option<String>,
    pub forwarded_prefix: Option<String>,
    /// `upstream-vhost` (filled by translation).
    pub upstream_host: Option<String>,
    /// `enable-cors` and `cors-*` (filled by translation).
    pub cors: Option<weir_config::wire::CorsDoc>,
    /// `from-to-www-redirect` (filled by translation).
    pub from_to_www: bool,
    /// `limit-*` (filled by translation).
    pub rate_limit: Option<weir_config::wire::RateLimitDoc>,
    /// `proxy-send-timeout` (filled by translation).
    pub send_timeout: Option<String>,
    /// `proxy-next-upstream`, `-tries`, `-timeout` (filled by translation).
    pub retry: Option<weir_config::wire::RetryDoc>,
    /// `affinity` and `session-cookie-*` (filled by translation).
    pub affinity: Option<weir_config::wire::AffinityDoc>,
    /// `server-alias`: checked, lower-cased, sorted names (filled by translation).
    pub aliases: Vec<String>,
    /// `default-backend`: the Service (in the Ingress's namespace) whose endpoints serve a
    /// rule whose own Service has none (filled by translation).
    pub default_backend: Option<String>,
    /// `service-upstream`: the Service's ClusterIP instead of its pods (filled by translation).
    pub service_upstream: bool,
    /// Why the Ingress is refused (its rules answer 503); set by translation.
    pub refused: Option<String>,
}

impl Default for RuleAnnotations {
    fn default() -> Self {
        RuleAnnotations {
            max_body_size: None,
            connect_timeout: None,
            response_timeout: None,
            protocol: None,
            ssl_redirect: true,
            force_ssl_redirect: false,
            access: None,
            redirect: None,
            app_root: None,
            use_regex: false,
            rewrite_target: None,
            forwarded_prefix: None,
            upstream_host: None,
            cors: None,
            rate_limit: None,
            send_timeout: None,
            retry: None,
            affinity: None,
            from_to_www: false,
            aliases: Vec::new(),
            default_backend: None,
            service_upstream: false,
            refused: None,
        }
    }
}

impl RuleAnnotations {
    /// What a host with TLS gets as `sslRedirect`.
    pub fn redirect(&self) -> bool {
        self.ssl_redirect || self.force_ssl_redirect
    }
}

/// Read the per-rule annotations under `prefix`. Empty values count as absent.
pub fn read_rule(
    annotations: Option<&BTreeMap<String, String>>,
    prefix: &str,
) -> (RuleAnnotations, Vec<AnnotationWarning>) {
    let mut out = RuleAnnotations::default();
    let mut warnings = Vec::new();
    let ours = annotations.into_iter().flatten().filter_map(|(k, v)| {
        let name = k.strip_prefix(prefix)?.strip_prefix('/')?;
        (!v.trim().is_empty()).then_some((k, name, v))
    });
    for (key, name, value) in ours {
        let mut warn = |reason: String| {
            warnings.push(AnnotationWarning { key: key.clone(), value: value.clone(), reason })
        };
        match name {
            "proxy-body-size" => match body_size(value) {
                Some(size) => out.max_body_size = Some(size),
                None => warn("is not a size like 1048576, 512k, 8m or 1g (0 = no limit); using 1m".into()),
            },
            "proxy-connect-timeout" => out.connect_timeout = seconds(value, &mut warn, "5s"),
            "proxy-read-timeout" => out.response_timeout = seconds(value, &mut warn, "60s"),
            "backend-protocol" => out.protocol = protocol(value, &mut warn),
            "ssl-redirect" | "force-ssl-redirect" => {
                let slot =
                    if name == "ssl-redirect" { &mut out.ssl_redirect } else { &mut out.force_ssl_redirect };
                match parse_bool(value) {
                    Some(b) => *slot = b,
                    None => warn(format!("not a boolean; using {slot}")),
                }
            }
            _ => {}
        }
    }
    (out, warnings)
}

/// nginx size syntax, checked as weir-config reads it (`weir_config::checks::size`).
/// Returns the trimmed value.
pub fn body_size(value: &str) -> Option<String> {
    weir_config::checks::size(value).map(|_| value.trim().to_string())
}

/// Whole seconds (Go `Atoi`), 1 s to a year, as a humantime string.
fn seconds(value: &str, warn: &mut impl FnMut(String), default: &str) -> Option<String> {
    match parse_int(value) {
        Some(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => Some(format!("{n}s")),
        Some(_) => {
            warn(format!("must be between 1 and {MAX_TIMEOUT_SECS} seconds; using {default}"));
            None
        }
        None => {
            warn(format!("is not a whole number of seconds; using {default}"));
            None
        }
    }
}

/// ingress-nginx upper-cases and trims; AUTO_HTTP, AJP and FCGI are valid there but not
/// served by weir, so they fall back to HTTP like any invalid value, with a warning.
fn protocol(value: &str, warn: &mut impl FnMut(String)) -> Option<String> {
    match value.trim().to_ascii_uppercase().as_str() {
        "HTTP" => None,
        p @ ("HTTPS" | "GRPC" | "GRPCS") => Some(p.to_string()),
        p @ ("AUTO_HTTP" | "AJP" | "FCGI") => {
            warn(format!("{p} is not supported by weir; using HTTP"));
            None
        }
        _ => {
            warn("is not one of HTTP, HTTPS, GRPC, GRPCS; using HTTP".into());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_sizes_take_digits_and_one_unit_letter() {
        for (v, want) in [("1m", Some("1m")), (" 512K ", Some("512K")), ("0", Some("0")), ("8g", Some("8g"))]
        {
            assert_eq!(body_size(v).as_deref(), want, "{v}");
        }
        for bad in ["", "m", "1.5m", "10b", "-1", "1mb", "99999999999999999999g", "17179869184g"] {
            assert_eq!(body_size(bad), None, "{bad}");
        }
    }
}

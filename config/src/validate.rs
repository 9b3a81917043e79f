//! Wire → model, in one place: every check, every error collected, nothing half-built.
//!
//! Each problem is reported with the field path as written in the document
//! (`hosts[2].rules[0].canary.weight`) and a reason, and any problem rejects the whole
//! document: there is no partially valid table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use crate::checks;
use crate::matching::normalize_prefix;
use crate::model::*;
use crate::wire::*;

pub use crate::field::FieldError;

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), reason: reason.into() });
    }
}

/// Validate a document and build the table, or return every problem found.
pub fn build(doc: &TableDoc) -> Result<RouteTable, Vec<FieldError>> {
    let mut errs = Errors::default();
    if doc.schema != SCHEMA_V1 {
        errs.push("schema", format!("{:?} is not supported; expected {SCHEMA_V1:?}", doc.schema));
    }
    let defaults = doc.defaults.clone().unwrap_or_default();
    let default_connect = duration(&mut errs, "defaults.connectTimeout", &defaults.connect_timeout)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let default_response = duration(&mut errs, "defaults.responseTimeout", &defaults.response_timeout)
        .unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
    let default_body = match &defaults.max_body_size {
        None => Some(DEFAULT_MAX_BODY_SIZE),
        Some(s) => body_size(&mut errs, "defaults.maxBodySize", s),
    };
    let rule_defaults =
        RuleDefaults { connect: default_connect, response: default_response, body: default_body };

    let mut table = RouteTable::empty();
    table.version = doc.version.clone().unwrap_or_else(|| content_hash(doc));
    if table.version.is_empty() {
        errs.push("version", "must not be empty when given");
    }
    if let Some(default) = doc.tls.as_ref().and_then(|t| t.default_certificate.as_ref()) {
        table.default_certificate = certificate(&mut errs, "tls.defaultCertificate", "_", default);
    }
    table.client_address = crate::access::build::client_address(&mut errs.0, doc.client_address.as_ref());
    // Keyed by the host itself (`None`: the default server), so a host literally named `_`
    // is not mistaken for the default server.
    let mut seen_hosts: HashMap<Option<String>, usize> = HashMap::new();
    // Each guard's policy and where it was first given.
    let mut guards: HashMap<GuardKey, (String, Guard)> = HashMap::new();

    for (h, host_doc) in doc.hosts.iter().enumerate() {
        let at = format!("hosts[{h}]");
        let host = match host_doc.host.as_deref() {
            None => None,
            Some(raw) => match checks::host_name(raw) {
                Ok(name) => Some(name),
                Err(reason) => {
                    errs.push(format!("{at}.host"), reason);
                    // Keep going so the rules' errors are reported too; the table is
                    // rejected anyway, so this stand-in name is never served.
                    Some(format!("invalid.host.{h}"))
                }
            },
        };
        let key = host.clone().unwrap_or_else(|| "_".into());
        if let Some(first) = seen_hosts.insert(host.clone(), h) {
            let what =
                host.as_deref().map_or("the default server (no host)".to_string(), |n| format!("{n:?}"));
            errs.push(format!("{at}.host"), format!("{what} is already defined at hosts[{first}]"));
        }
        let ssl_redirect = match (&host_doc.tls, &host) {
            (None, _) => false,
            (Some(_), None) => {
                errs.push(
                    format!("{at}.tls"),
                    "the default server has no name to match SNI; use tls.defaultCertificate",
                );
                false
            }
            (Some(tls), Some(name)) => {
                if let Some(cert) = certificate(&mut errs, &format!("{at}.tls"), name, tls) {
                    table.certificates.push(cert);
                }
                host_doc.ssl_redirect.unwrap_or(true)
            }
        };
        let regex_host = host_doc.regex_paths.unwrap_or(false);
        let mut vhost = VirtualHost { exact_paths: HashMap::new(), prefixes: Vec::new(), regex: None };
        let mut regex_paths: Vec<(String, usize)> = Vec::new();
        let mut seen_rules: HashMap<(String, bool), usize> = HashMap::new();
        for (r, rule_doc) in host_doc.rules.iter().enumerate() {
            let at = format!("{at}.rules[{r}]");
            let Some(mut route) =
                rule(&mut errs, &at, &key, rule_doc, regex_host, &rule_defaults, &mut table)
            else {
                continue;
            };
            if let Some(g) = route.canary.as_ref().and_then(|c| c.guard.as_ref()) {
                one_policy_per_guard(&mut errs, &mut guards, &format!("{at}.canary.guard"), g);
            }
            route.ssl_redirect = ssl_redirect;
            crate::access::build::close_unenforced(&mut route, &mut table);
            // In a regex host a path is a pattern: only the same text is the same rule.
            let exact = route.path_type == PathType::Exact && !regex_host;
            let norm = if exact || regex_host {
                route.path.clone()
            } else {
                normalize_prefix(&route.path).to_string()
            };
            if let Some(first) = seen_rules.insert((norm.clone(), exact), r) {
                errs.push(
                    format!("{at}.path"),
                    format!(
                        "{:?} ({}) duplicates rules[{first}] of this host",
                        route.path,
                        route.path_type.as_str()
                    ),
                );
                continue;
            }
            let index = table.routes.len();
            if regex_host {
                regex_paths.push((route.path.clone(), index));
            } else if exact {
                vhost.exact_paths.insert(norm.into(), index);
            } else {
                vhost.prefixes.push((norm.into(), index));
            }
            table.routes.push(Arc::new(Route { index, ..route }));
        }
        // Longest prefix first; equal lengths cannot both match one path, so order among
        // them does not matter, but keep it deterministic.
        vhost.prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        if regex_host {
            match crate::rewrite::RegexPaths::new(regex_paths) {
                Ok(paths) => vhost.regex = Some(paths),
                Err(e) => errs.push(
                    format!("{at}.regexPaths"),
                    format!("the host's paths do not compile together: {e}"),
                ),
            }
        }
        match host {
            None => table.default_server = Some(vhost),
            Some(name) => match name.strip_prefix("*.") {
                Some(suffix) => {
                    table.wildcard.insert(suffix.into(), vhost);
                }
                None => {
                    table.exact.insert(name.into(), vhost);
                }
            },
        }
    }
    if errs.0.is_empty() {
        Ok(table)
    } else {
        Err(errs.0)
    }
}

/// Table-wide defaults a rule inherits.
struct RuleDefaults {
    connect: Duration,
    response: Duration,
    body: Option<u64>,
}

fn rule(
    errs: &mut Errors,
    at: &str,
    host: &str,
    doc: &RuleDoc,
    regex_host: bool,
    defaults: &RuleDefaults,
    table: &mut RouteTable,
) -> Option<Route> {
    let before = errs.0.len();
    let path = if doc.path.is_empty() { "/".to_string() } else { doc.path.clone() };
    if !path.starts_with('/') {
        errs.push(format!("{at}.path"), format!("{path:?} must start with '/'"));
    } else if regex_host {
        // A pattern may hold `?`; never a space or a control.
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            errs.push(format!("{at}.path"), format!("{path:?} contains a space or control character"));
        } else {
            crate::rewrite::pattern(&mut errs.0, at, &path);
        }
    } else if path.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#') {
        errs.push(format!("{at}.path"), format!("{path:?} contains a space, control character, '?' or '#'"));
    }
    let path_type = match doc.path_type.as_deref() {
        None | Some("Prefix") => PathType::Prefix,
        Some("Exact") => PathType::Exact,
        Some("ImplementationSpecific") => PathType::ImplementationSpecific,
        Some(other) => {
            errs.push(
                format!("{at}.pathType"),
                format!("{other:?} is not one of Exact, Prefix, ImplementationSpecific"),
            );
            PathType::Prefix
        }
    };
    let connect_timeout =
        duration(errs, &format!("{at}.connectTimeout"), &doc.connect_timeout).unwrap_or(defaults.connect);
    let response_timeout =
        duration(errs, &format!("{at}.responseTimeout"), &doc.response_timeout).unwrap_or(defaults.response);
    let max_body_size = match &doc.max_body_size {
        None => defaults.body,
        Some(s) => body_size(errs, &format!("{at}.maxBodySize"), s),
    };
    let protocol = match doc.protocol.as_deref() {
        None | Some("HTTP") => Protocol::Http,
        Some("HTTPS") => Protocol::Https,
        Some("GRPC") => Protocol::Grpc,
        Some("GRPCS") => Protocol::Grpcs,
        Some(other) => {
            errs.push(format!("{at}.protocol"), format!("{other:?} is not one of HTTP, HTTPS, GRPC, GRPCS"));
            Protocol::Http
        }
    };
    let (deny, access) = crate::access::build::rule(&mut errs.0, at, doc.deny.as_ref(), doc.access.as_ref());
    let stable = backend(errs, &format!("{at}.backend"), &doc.backend, table);
    let canary = doc.canary.as_ref().map(|c| {
        let at = format!("{at}.canary");
        let backend = backend(errs, &format!("{at}.backend"), &c.backend, table);
        let policy = policy(errs, &at, c);
        let routes = header_routes(errs, &at, &c.header_routes);
        let mirrors = mirror_routes(errs, &at, &c.mirror_routes);
        let guard = c.guard.as_ref().and_then(|g| guard(errs, &format!("{at}.guard"), g, &backend.id));
        let destinations = destinations(errs, &at, &c.destinations, &policy, table);
        let sticky = c
            .sticky_assignment
            .as_ref()
            .and_then(|s| crate::affinity::build_sticky(&mut errs.0, &format!("{at}.stickyAssignment"), s));
        Canary { backend, policy, routes, mirrors, guard, destinations, sticky }
    });
    if doc.deny.is_some() && (doc.redirect.is_some() || doc.app_root.is_some()) {
        errs.push(format!("{at}.deny"), "a deny rule answers its status; it cannot also redirect");
    }
    let redirect = doc.redirect.as_ref().and_then(|r| redirect(errs, &format!("{at}.redirect"), r));
    let upstream_host =
        doc.upstream_host.as_deref().and_then(|h| upstream_host(errs, &format!("{at}.upstreamHost"), h));
    let rate_limit = doc
        .rate_limit
        .as_ref()
        .and_then(|r| {
            crate::ratelimit::build(&mut errs.0, &format!("{at}.rateLimit"), r, &format!("{host}{path}"))
        })
        .map(Box::new);
    let send_timeout = duration(errs, &format!("{at}.sendTimeout"), &doc.send_timeout)
        .unwrap_or(crate::retry::DEFAULT_SEND_TIMEOUT);
    let retry = doc
        .retry
        .as_ref()
        .and_then(|r| crate::retry::build(&mut errs.0, &format!("{at}.retry"), r))
        .unwrap_or_default();
    let affinity = doc
        .affinity
        .as_ref()
        .and_then(|a| crate::affinity::build(&mut errs.0, &format!("{at}.affinity"), a))
        .map(|mut a| {
            // A pattern is no cookie path: `/` unless the rule names one.
            if regex_host && a.path.is_none() {
                a.path = Some("/".into());
            }
            Box::new(a)
        });
    let cors = doc
        .cors
        .as_ref()
        .and_then(|c| crate::cors::build(&mut errs.0, &format!("{at}.cors"), c))
        .map(Box::new);
    let rewrite = match &doc.rewrite {
        Some(rw) if errs.0.len() == before => crate::rewrite::Rewrite::new(
            &mut errs.0,
            &format!("{at}.rewrite"),
            &path,
            regex_host,
            &rw.target,
            rw.forwarded_prefix.as_deref(),
        )
        .map(Box::new),
        _ => None,
    };
    let app_root = doc.app_root.as_ref().and_then(|p| {
        let ok = p.starts_with('/')
            && p.len() > 1
            && !p.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'$');
        if !ok {
            errs.push(
                format!("{at}.appRoot"),
                format!("{p:?} is not a path like /app (no spaces, controls or $)"),
            );
        }
        ok.then(|| p.clone())
    });
    (errs.0.len() == before).then(|| Route {
        index: 0,
        host: host.to_string(),
        path,
        path_type,
        stable,
        canary,
        connect_timeout,
        response_timeout,
        max_body_size,
        protocol,
        ssl_redirect: false,
        deny,
        access,
        redirect,
        app_root,
        rewrite,
        upstream_host,
        cors,
        rate_limit,
        send_timeout,
        retry,
        affinity,
    })
}

/// `upstreamHost` ([`checks::upstream_host`]).
fn upstream_host(errs: &mut Errors, at: &str, value: &str) -> Option<http::HeaderValue> {
    checks::upstream_host(value).map_err(|reason| errs.push(at, reason)).ok()
}

/// A redirect URL: absolute http(s), or a path on the request's own scheme and host; its
/// nginx variables parsed; a code nginx answers with a Location (301, 302, 303, 307, 308).
fn redirect(errs: &mut Errors, at: &str, doc: &RedirectDoc) -> Option<Redirect> {
    let code = match doc.code {
        None => http::StatusCode::MOVED_PERMANENTLY,
        Some(c) => match u16::try_from(c).ok().filter(|c| REDIRECT_CODES.contains(c)) {
            Some(c) => http::StatusCode::from_u16(c).unwrap_or(http::StatusCode::MOVED_PERMANENTLY),
            None => {
                errs.push(
                    format!("{at}.code"),
                    format!("{c} is not a redirect status (301, 302, 303, 307 or 308)"),
                );
                return None;
            }
        },
    };
    let url = doc.url.as_str();
    let absolute = url.starts_with("http://") || url.starts_with("https://") || url.starts_with("$scheme://");
    let path = url.starts_with('/') && !url.starts_with("//");
    if !(absolute || path) || url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        errs.push(
            format!("{at}.url"),
            format!("{url:?} is not an absolute http:// or https:// URL, nor a path starting with /"),
        );
        return None;
    }
    // A path is completed as nginx completes it (absolute_redirect, no port): the request's
    // scheme and host.
    let full = if path { format!("$scheme://$host{url}") } else { url.to_string() };
    match crate::access::Template::parse(&full, crate::access::Vars::Redirect) {
        Ok(location) => Some(Redirect { code, location }),
        Err(reason) => {
            errs.push(format!("{at}.url"), reason);
            None
        }
    }
}

/// The statuses nginx's `return` answers with a Location.
const REDIRECT_CODES: [u16; 5] = [301, 302, 303, 307, 308];

/// Most additional destinations on one rule.
const MAX_DESTINATIONS: usize = 8;

fn destinations(
    errs: &mut Errors,
    at: &str,
    docs: &[DestinationDoc],
    policy: &CanaryPolicy,
    table: &mut RouteTable,
) -> Vec<Destination> {
    if docs.len() > MAX_DESTINATIONS {
        errs.push(
            format!("{at}.destinations"),
            format!("{} destinations; at most {MAX_DESTINATIONS}", docs.len()),
        );
    }
    let mut sum = u64::from(policy.weight);
    let out: Vec<Destination> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let at = format!("{at}.destinations[{i}]");
            let weight = match u32::try_from(d.weight) {
                Ok(w) => w,
                Err(_) => {
                    errs.push(format!("{at}.weight"), format!("{} is not within 0..weightTotal", d.weight));
                    0
                }
            };
            sum += u64::from(weight);
            Destination { backend: backend(errs, &format!("{at}.backend"), &d.backend, table), weight }
        })
        .collect();
    if !docs.is_empty() && sum > u64::from(policy.total) {
        errs.push(
            format!("{at}.destinations"),
            format!(
                "the canary's weight and the destinations' weights add up to {sum}, over weightTotal {}",
                policy.total
            ),
        );
    }
    out
}

/// Shortest and longest guard window.
const GUARD_WINDOW: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(600));

/// The checks a canary's `guard` gets in a table, for a controller to judge its input
/// before it writes one (`at` names the guard field).
pub fn check_guard(at: &str, doc: &GuardDoc) -> Vec<FieldError> {
    let mut errs = Errors::default();
    let unnamed =
        BackendId { namespace: "-".into(), ingress: "-".into(), service: "-".into(), port: "-".into() };
    guard(&mut errs, at, doc, &unnamed);
    errs.0
}

fn guard(errs: &mut Errors, at: &str, doc: &GuardDoc, canary: &BackendId) -> Option<Guard> {
    let before = errs.0.len();
    let label = |errs: &mut Errors, field: &str, v: &str, max: usize| {
        if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
            errs.push(
                format!("{at}.{field}"),
                format!("{v:?} must be 1 to {max} characters, none a control"),
            );
        }
    };
    let name = match &doc.name {
        Some(n) => {
            label(errs, "name", n, 253);
            n.clone()
        }
        None if canary.service == "-" => {
            errs.push(format!("{at}.name"), "is required when the canary backend names no service");
            String::new()
        }
        None => canary.service.clone(),
    };
    if let Some(r) = &doc.revision {
        label(errs, "revision", r, 63);
    }
    let error_percent = match u32::try_from(doc.error_percent) {
        Ok(p) if (1..=100).contains(&p) => p,
        _ => {
            errs.push(format!("{at}.errorPercent"), format!("{} is not within 1..100", doc.error_percent));
            0
        }
    };
    let min_requests = match u32::try_from(doc.min_requests) {
        Ok(n) if n >= 1 => n,
        _ => {
            errs.push(
                format!("{at}.minRequests"),
                format!(
                    "{} is under 1 (a guard must never judge a canary with no requests)",
                    doc.min_requests
                ),
            );
            0
        }
    };
    let window = match humantime::parse_duration(&doc.window) {
        Ok(d) if (GUARD_WINDOW.0..=GUARD_WINDOW.1).contains(&d) => d,
        Ok(_) => {
            errs.push(format!("{at}.window"), format!("{:?} is not within 1s..10m", doc.window));
            GUARD_WINDOW.0
        }
        Err(e) => {
            errs.push(
                format!("{at}.window"),
                format!("{:?} is not a duration like 10s or 1m: {e}", doc.window),
            );
            GUARD_WINDOW.0
        }
    };
    let key = GuardKey {
        namespace: canary.namespace.clone(),
        name,
        revision: doc.revision.clone().unwrap_or_default(),
    };
    (errs.0.len() == before).then_some(Guard { key, error_percent, window, min_requests })
}

/// Rules sharing a guard share its judgement, so they must ask for the same one.
fn one_policy_per_guard(
    errs: &mut Errors,
    seen: &mut HashMap<GuardKey, (String, Guard)>,
    at: &str,
    g: &Guard,
) {
    match seen.get(&g.key) {
        Some((first, policy)) if policy != g => errs.push(
            at,
            format!(
                "guard {:?} is already set with another errorPercent, window or minRequests at {first}",
                g.key.name
            ),
        ),
        Some(_) => {}
        None => {
            seen.insert(g.key.clone(), (at.to_string(), g.clone()));
        }
    }
}

/// A size in nginx's grammar ([`checks::size`]); `0` = no limit.
fn body_size(errs: &mut Errors, field: &str, s: &str) -> Option<u64> {
    match checks::size(s) {
        Some(0) => None,
        Some(n) => Some(n),
        None => {
            errs.push(field, format!("{s:?} is not a size like 1048576, 512k, 8m or 1g (0 = no limit)"));
            Some(DEFAULT_MAX_BODY_SIZE)
        }
    }
}

/// Parse a PEM chain and key; file paths must have been read by the loader already.
fn certificate(errs: &mut Errors, at: &str, name: &str, doc: &TlsDoc) -> Option<Certificate> {
    use rustls_pki_types::CertificateDer;

    let before = errs.0.len();
    for (field, set) in
        [("certificateFile", doc.certificate_file.is_some()), ("keyFile", doc.key_file.is_some())]
    {
        if set {
            errs.push(
                format!("{at}.{field}"),
                "file paths are read only from a config file, not from the admin API",
            );
        }
    }
    let chain: Vec<CertificateDer<'static>> = match &doc.certificate {
        None => {
            errs.push(format!("{at}.certificate"), "is required");
            Vec::new()
        }
        Some(pem) => checks::parse_certificate(pem).unwrap_or_else(|problem| {
            errs.push(format!("{at}.certificate"), problem.to_string());
            Vec::new()
        }),
    };
    // Never echo key material: the reason names the problem, not the content.
    let key = match &doc.key {
        None => {
            errs.push(format!("{at}.key"), "is required");
            None
        }
        Some(pem) => {
            checks::parse_key(pem).map_err(|problem| errs.push(format!("{at}.key"), problem.to_string())).ok()
        }
    };
    match key {
        Some(key) if errs.0.len() == before => {
            Some(Certificate { name: name.to_string(), field: at.to_string(), chain, key })
        }
        _ => None,
    }
}

fn backend(errs: &mut Errors, at: &str, doc: &BackendDoc, table: &mut RouteTable) -> Arc<Backend> {
    let label = |v: &Option<String>| match v.as_deref() {
        None | Some("") => "-".to_string(),
        Some(s) => s.to_string(),
    };
    let port = match &doc.port {
        None => "-".to_string(),
        Some(PortDoc::Number(n)) if (1..=65535).contains(n) => n.to_string(),
        Some(PortDoc::Number(n)) => {
            errs.push(format!("{at}.port"), format!("{n} is not a port number (1-65535)"));
            "-".to_string()
        }
        Some(PortDoc::Name(s)) if s.is_empty() => "-".to_string(),
        Some(PortDoc::Name(s)) => s.clone(),
    };
    let mut endpoints = Vec::with_capacity(doc.endpoints.len());
    for (i, ep) in doc.endpoints.iter().enumerate() {
        match ep.parse::<SocketAddr>() {
            Ok(addr) if addr.port() == 0 => {
                errs.push(format!("{at}.endpoints[{i}]"), format!("{ep:?}: port 0 is not allowed"))
            }
            Ok(addr) if endpoints.contains(&addr) => {
                errs.push(format!("{at}.endpoints[{i}]"), format!("{ep:?} is listed twice"))
            }
            Ok(addr) => endpoints.push(addr),
            Err(_) => errs.push(
                format!("{at}.endpoints[{i}]"),
                format!("{ep:?} is not an ip:port address (e.g. 10.0.0.7:8080 or [fd00::7]:8080)"),
            ),
        }
    }
    let b = Arc::new(Backend {
        index: table.backends.len(),
        id: BackendId {
            namespace: label(&doc.namespace),
            ingress: label(&doc.ingress),
            service: label(&doc.service),
            port,
        },
        endpoints,
    });
    table.backends.push(b.clone());
    b
}

fn policy(errs: &mut Errors, at: &str, doc: &CanaryDoc) -> CanaryPolicy {
    let weight = match doc.weight {
        None => 0,
        Some(w) if w < 0 => {
            errs.push(format!("{at}.weight"), format!("{w} is negative"));
            0
        }
        Some(w) => u32::try_from(w).unwrap_or_else(|_| {
            errs.push(format!("{at}.weight"), format!("{w} is too large"));
            0
        }),
    };
    let total = match doc.weight_total {
        None => DEFAULT_WEIGHT_TOTAL,
        Some(t) if t < 1 => {
            errs.push(format!("{at}.weightTotal"), format!("{t} must be at least 1"));
            DEFAULT_WEIGHT_TOTAL
        }
        Some(t) => u32::try_from(t).unwrap_or_else(|_| {
            errs.push(format!("{at}.weightTotal"), format!("{t} is too large"));
            DEFAULT_WEIGHT_TOTAL
        }),
    };
    if doc.weight.is_some() && weight > total {
        errs.push(format!("{at}.weight"), format!("{weight} exceeds weightTotal {total}"));
    }
    let header = match doc.header.as_deref() {
        None => {
            for (field, set) in [
                ("headerValue", doc.header_value.is_some()),
                ("headerPattern", doc.header_pattern.is_some()),
                ("invalidHeaderPattern", doc.invalid_header_pattern.is_some()),
            ] {
                if set {
                    errs.push(format!("{at}.{field}"), "is set but `header` is not");
                }
            }
            None
        }
        Some(name) => match HeaderName::from_bytes(name.as_bytes()) {
            Err(_) => {
                errs.push(format!("{at}.header"), format!("{name:?} is not a valid HTTP header name"));
                None
            }
            Ok(name) => {
                let matcher = if let Some(v) = &doc.header_value {
                    // ingress-nginx: when both are set, the value wins and the pattern is ignored.
                    HeaderMatcher::Value(v.clone())
                } else if let Some(p) = &doc.header_pattern {
                    match regex::Regex::new(p) {
                        Ok(re) => HeaderMatcher::Pattern(re),
                        Err(e) => {
                            errs.push(
                                format!("{at}.headerPattern"),
                                format!("{p:?} is not a valid pattern: {}", one_line(&e.to_string())),
                            );
                            HeaderMatcher::Keywords
                        }
                    }
                } else if let Some(p) = &doc.invalid_header_pattern {
                    HeaderMatcher::InvalidPattern(p.clone())
                } else {
                    HeaderMatcher::Keywords
                };
                Some(HeaderRule { name, matcher })
            }
        },
    };
    let cookie = match doc.cookie.as_deref() {
        None => None,
        Some(c) if !checks::is_token(c) => {
            errs.push(format!("{at}.cookie"), format!("{c:?} is not a valid cookie name"));
            None
        }
        Some(c) => Some(c.to_ascii_lowercase()),
    };
    CanaryPolicy { weight, total, header, cookie }
}

/// Most header routes on one rule, and matches in one route: a table is data from a
/// controller, and every request on the rule walks them.
pub const MAX_HEADER_ROUTES: usize = 32;
pub const MAX_HEADER_MATCHES: usize = 16;
/// Compiled size limit of one header-route regex (the `regex` crate's `size_limit`).
const HEADER_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The checks `headerRoutes` gets in a table, for a controller to judge its input before it
/// builds one: the field errors, with paths under `at`.
pub fn check_header_routes(at: &str, docs: &[HeaderRouteDoc]) -> Vec<FieldError> {
    let mut errs = Errors::default();
    header_routes(&mut errs, at, docs);
    errs.0
}

fn header_routes(errs: &mut Errors, at: &str, docs: &[HeaderRouteDoc]) -> Vec<HeaderRoute> {
    if docs.len() > MAX_HEADER_ROUTES {
        errs.push(
            format!("{at}.headerRoutes"),
            format!("{} routes; at most {MAX_HEADER_ROUTES}", docs.len()),
        );
    }
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let at = format!("{at}.headerRoutes[{i}]");
        if doc.name.is_empty() {
            errs.push(format!("{at}.name"), "is empty");
        } else if !names.insert(doc.name.as_str()) {
            errs.push(
                format!("{at}.name"),
                format!("{:?} is used by an earlier route of this rule", doc.name),
            );
        }
        if doc.matches.is_empty() {
            errs.push(format!("{at}.matches"), "is empty; a route needs at least one match");
        } else if doc.matches.len() > MAX_HEADER_MATCHES {
            errs.push(
                format!("{at}.matches"),
                format!("{} matches; at most {MAX_HEADER_MATCHES}", doc.matches.len()),
            );
        }
        let matches: Vec<_> = doc
            .matches
            .iter()
            .enumerate()
            .filter_map(|(j, m)| header_match(errs, &format!("{at}.matches[{j}]"), m))
            .collect();
        out.push(HeaderRoute { name: doc.name.clone(), matches });
    }
    out
}

/// Most mirror routes on one rule, and matches in one route.
pub const MAX_MIRROR_ROUTES: usize = 32;
pub const MAX_MIRROR_MATCHES: usize = 16;

/// The checks `mirrorRoutes` gets in a table, for a controller to judge its input before it
/// builds one: the field errors, with paths under `at`.
pub fn check_mirror_routes(at: &str, docs: &[MirrorRouteDoc]) -> Vec<FieldError> {
    let mut errs = Errors::default();
    mirror_routes(&mut errs, at, docs);
    errs.0
}

fn mirror_routes(errs: &mut Errors, at: &str, docs: &[MirrorRouteDoc]) -> Vec<MirrorRoute> {
    if docs.len() > MAX_MIRROR_ROUTES {
        errs.push(
            format!("{at}.mirrorRoutes"),
            format!("{} routes; at most {MAX_MIRROR_ROUTES}", docs.len()),
        );
    }
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let at = format!("{at}.mirrorRoutes[{i}]");
        if doc.name.is_empty() {
            errs.push(format!("{at}.name"), "is empty");
        } else if !names.insert(doc.name.as_str()) {
            errs.push(
                format!("{at}.name"),
                format!("{:?} is used by an earlier mirror route of this rule", doc.name),
            );
        }
        let percentage = match u32::try_from(doc.percentage) {
            Ok(p) if p <= 100 => p,
            _ => {
                errs.push(format!("{at}.percentage"), format!("{} is not within 0..100", doc.percentage));
                0
            }
        };
        if doc.matches.is_empty() {
            errs.push(format!("{at}.matches"), "is empty; a mirror route needs at least one match");
        } else if doc.matches.len() > MAX_MIRROR_MATCHES {
            errs.push(
                format!("{at}.matches"),
                format!("{} matches; at most {MAX_MIRROR_MATCHES}", doc.matches.len()),
            );
        }
        let matches = doc
            .matches
            .iter()
            .enumerate()
            .map(|(j, m)| mirror_match(errs, &format!("{at}.matches[{j}]"), m))
            .collect();
        out.push(MirrorRoute { name: doc.name.clone(), percentage, matches });
    }
    out
}

fn mirror_match(errs: &mut Errors, at: &str, doc: &MirrorMatchDoc) -> MirrorMatch {
    let method = doc.method.as_deref().and_then(|m| {
        let token = !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
        match http::Method::from_bytes(m.as_bytes()) {
            Ok(method) if token => Some(method),
            _ => {
                errs.push(format!("{at}.method"), format!("{m:?} is not an upper-case HTTP method like GET"));
                None
            }
        }
    });
    if let Some(p) = &doc.path_prefix {
        if !p.starts_with('/') {
            errs.push(format!("{at}.pathPrefix"), format!("{p:?} does not start with /"));
        }
    }
    if doc.headers.len() > MAX_HEADER_MATCHES {
        errs.push(
            format!("{at}.headers"),
            format!("{} header tests; at most {MAX_HEADER_MATCHES}", doc.headers.len()),
        );
    }
    let headers = doc
        .headers
        .iter()
        .enumerate()
        .filter_map(|(k, h)| header_match(errs, &format!("{at}.headers[{k}]"), h))
        .collect();
    MirrorMatch { method, path_prefix: doc.path_prefix.clone(), headers }
}

fn header_match(errs: &mut Errors, at: &str, doc: &HeaderMatchDoc) -> Option<HeaderMatch> {
    let name = match HeaderName::from_bytes(doc.header.as_bytes()) {
        Ok(n) => Some(n),
        Err(_) => {
            errs.push(format!("{at}.header"), format!("{:?} is not a valid HTTP header name", doc.header));
            None
        }
    };
    let test = match (&doc.exact, &doc.prefix, &doc.regex) {
        (Some(v), None, None) => Some(ValueTest::Exact(v.clone())),
        (None, Some(v), None) => Some(ValueTest::Prefix(v.clone())),
        (None, None, Some(p)) => {
            match regex::RegexBuilder::new(&format!("^(?:{p})$")).size_limit(HEADER_REGEX_SIZE_LIMIT).build()
            {
                Ok(re) => Some(ValueTest::Regex(re)),
                Err(e) => {
                    errs.push(
                        format!("{at}.regex"),
                        format!("{p:?} is not a valid pattern: {}", one_line(&e.to_string())),
                    );
                    None
                }
            }
        }
        (None, None, None) => {
            errs.push(at, "needs one of exact, prefix or regex");
            None
        }
        _ => {
            errs.push(at, "sets more than one of exact, prefix and regex; set exactly one");
            None
        }
    };
    Some(HeaderMatch { name: name?, test: test? })
}

fn duration(errs: &mut Errors, field: &str, v: &Option<String>) -> Option<Duration> {
    let s = v.as_deref()?;
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => {
            errs.push(field, format!("{s:?} must be greater than zero"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            errs.push(field, format!("{s:?} is not a duration like 500ms, 5s or 2m: {e}"));
            None
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A short, stable label for a document that did not name its version: its FNV-1a 64
/// content hash ([`checks::content_fnv1a64`]).
fn content_hash(doc: &TableDoc) -> String {
    format!("fnv1a64-{:016x}", checks::content_fnv1a64(doc))
}

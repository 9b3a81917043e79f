//! A main Ingress's access annotations → the rule's `access` (IP lists, basic auth with its
//! Secret, external auth), or the reason the Ingress must be refused.
//!
//! Fail closed: whatever cannot be honoured exactly (a missing or unreadable Secret, a Secret
//! in another namespace, a setting weir-config would reject) refuses the Ingress, whose rules
//! then answer 503. The result is checked with weir-config itself, so a table is never
//! rejected whole because of one Ingress.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use weir_config::wire::{
    AccessDoc, AuthCacheDoc, BackendDoc, BasicAuthDoc, CacheDurationDoc, DenyDoc, ExternalAuthDoc, HostDoc,
    RuleDoc, TableDoc, SCHEMA_V1,
};

use crate::annotations::catalog::cache_durations;
use crate::annotations::Evaluation;

/// What the access annotations ask for; `Ok(None)` when they ask for nothing.
pub(super) fn access_doc(
    ing: &Ingress,
    eval: &Evaluation,
    prefix: &str,
    secrets: &HashMap<(&str, &str), &Secret>,
) -> Result<Option<AccessDoc>, String> {
    let key = |name: &str| format!("{prefix}/{name}");
    let list = |name: &str| -> Vec<String> {
        eval.value(name).map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default()
    };
    let allow = match eval.value("allowlist-source-range") {
        Some(_) => list("allowlist-source-range"),
        None => list("whitelist-source-range"),
    };
    let mut doc = AccessDoc { allow, deny: list("denylist-source-range"), ..Default::default() };
    if eval.value("auth-type") == Some("basic") {
        doc.basic_auth =
            Some(basic_auth(ing, eval, secrets).map_err(|why| format!("{}: {why}", key("auth-secret")))?);
    }
    if let Some(url) = eval.value("auth-url") {
        doc.external_auth = Some(external_auth(url, eval));
    }
    if doc == AccessDoc::default() {
        return Ok(None);
    }
    // The same checks the proxy applies; the reasons name wire fields, so say which keys.
    let probe = TableDoc {
        schema: SCHEMA_V1.into(),
        hosts: vec![HostDoc {
            rules: vec![RuleDoc { access: Some(doc.clone()), ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match weir_config::RouteTable::from_doc(&probe) {
        Ok(_) => Ok(Some(doc)),
        Err(weir_config::ConfigError::Invalid(errs)) => {
            let reasons: Vec<String> = errs
                .iter()
                .map(|e| {
                    let field = e.field.trim_start_matches("hosts[0].rules[0].access.");
                    format!("{}: {} ({field})", key(annotation_of(field)), e.reason)
                })
                .collect();
            Err(reasons.join("; "))
        }
        Err(e) => Err(format!("the access annotations cannot be honoured: {e}")),
    }
}

fn basic_auth(
    ing: &Ingress,
    eval: &Evaluation,
    secrets: &HashMap<(&str, &str), &Secret>,
) -> Result<BasicAuthDoc, String> {
    let own = ing.metadata.namespace.as_deref().unwrap_or("default");
    let name =
        eval.value("auth-secret").ok_or("auth-type basic needs auth-secret, which is missing or invalid")?;
    let (namespace, name) = name.split_once('/').unwrap_or((own, name));
    if namespace != own {
        return Err(format!(
            "Secret {namespace}/{name} is in another namespace than the Ingress; weir reads only the Ingress's own"
        ));
    }
    let source = format!("{namespace}/{name}");
    let secret = secrets.get(&(namespace, name)).ok_or(format!("Secret {source} does not exist"))?;
    let data = secret.data.as_ref();
    let text = |bytes: &k8s_openapi::ByteString| String::from_utf8(bytes.0.clone()).ok();
    let users: Vec<String> = match eval.value("auth-secret-type").unwrap_or("auth-file") {
        "auth-map" => {
            let map = data.filter(|d| !d.is_empty()).ok_or(format!("Secret {source} has no entries"))?;
            map.iter()
                .map(|(user, hash)| text(hash).map(|h| format!("{user}:{}", h.trim())))
                .collect::<Option<_>>()
                .ok_or(format!("Secret {source} has a value that is not UTF-8 text"))?
        }
        _ => {
            let file =
                data.and_then(|d| d.get("auth")).ok_or(format!("Secret {source} has no key `auth`"))?;
            let file = text(file).ok_or(format!("Secret {source}: `auth` is not UTF-8 text"))?;
            file.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect()
        }
    };
    let realm = eval.value("auth-realm").map(str::to_string);
    Ok(BasicAuthDoc { realm, users, source: Some(source) })
}

fn external_auth(url: &str, eval: &Evaluation) -> ExternalAuthDoc {
    let response_headers = eval
        .value("auth-response-headers")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let cache = eval.value("auth-cache-key").map(|key| AuthCacheDoc {
        key: key.to_string(),
        durations: eval
            .value("auth-cache-duration")
            .and_then(|v| cache_durations(v).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|(statuses, duration)| CacheDurationDoc { statuses, duration })
            .collect(),
    });
    ExternalAuthDoc {
        url: url.to_string(),
        method: eval.value("auth-method").map(str::to_string),
        signin: eval.value("auth-signin").map(str::to_string),
        signin_redirect_param: eval.value("auth-signin-redirect-param").map(str::to_string),
        response_headers,
        cache,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;

/// The annotation behind a field of the probe's `access`.
fn annotation_of(field: &str) -> &'static str {
    const BY_FIELD: [(&str, &str); 10] = [
        ("allow", "allowlist-source-range"),
        ("deny", "denylist-source-range"),
        ("basicAuth.realm", "auth-realm"),
        ("basicAuth", "auth-secret"),
        ("externalAuth.method", "auth-method"),
        ("externalAuth.signinRedirectParam", "auth-signin-redirect-param"),
        ("externalAuth.signin", "auth-signin"),
        ("externalAuth.responseHeaders", "auth-response-headers"),
        ("externalAuth.cache", "auth-cache-key"),
        ("externalAuth", "auth-url"),
    ];
    BY_FIELD.iter().find(|(f, _)| field.starts_with(f)).map_or("auth-url", |(_, k)| k)
}

/// The deny rule of a refused Ingress: 503, the reason cut to what weir-config accepts.
pub(super) fn deny_doc(why: &str) -> DenyDoc {
    let mut reason: String = why.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if reason.len() > 1000 {
        let mut end = 1000;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    DenyDoc { status: Some(503), reason }
}

/// The labels of a refused rule whose Service cannot be resolved: it still gets its deny
/// rule (never dropped, so it cannot fall through to another Ingress's `/`).
pub(super) fn labels_only(ing: &Ingress, service: Option<&str>) -> BackendDoc {
    BackendDoc {
        namespace: ing.metadata.namespace.clone(),
        ingress: ing.metadata.name.clone(),
        service: service.map(str::to_string),
        ..Default::default()
    }
}

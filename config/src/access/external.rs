//! External auth in the model: the subrequest's target and what is copied around it, and the
//! small templates (signin URL, cache key) whose variables the proxy fills per request.
//!
//! Templates are parsed at load from a fixed variable set; anything else is an error, so no
//! value is ever interpreted as configuration (ingress-nginx's CVE-2025-24514 came from
//! splicing auth-url into nginx.conf).

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};

/// Default time allowed for the whole auth subrequest.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// ingress-nginx's default `auth-cache-duration`: `200 202 401 5m`.
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(300);

/// Validated external-auth settings of a rule.
#[derive(Debug, Clone)]
pub struct ExternalAuth {
    /// Absolute `http` or `https` URL with a host.
    pub url: Uri,
    pub method: Method,
    /// 401 from the auth service → 302 here, with `signin_redirect_param` = the original URL
    /// added unless the rendered URL's query already has that parameter.
    pub signin: Option<Template>,
    pub signin_redirect_param: String,
    /// Copied from a 2xx auth response; removed from the client's request in every case.
    pub response_headers: Vec<HeaderName>,
    /// Set on the subrequest.
    pub proxy_set_headers: Vec<(HeaderName, HeaderValue)>,
    pub cache: Option<AuthCache>,
    pub timeout: Duration,
}

/// Remembered auth answers: the key template and, per status, how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCache {
    pub key: Template,
    pub durations: Vec<(u16, Duration)>,
}

impl AuthCache {
    /// How long an answer with `status` is kept; `None`: not cached.
    pub fn duration(&self, status: u16) -> Option<Duration> {
        self.durations.iter().find(|(s, _)| *s == status).map(|(_, d)| *d)
    }
}

/// Literal text and request variables, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Literal(String),
    Var(Variable),
}

/// The request variables a template may use, spelled as in nginx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    /// `$host`: the request's host, without port.
    Host,
    /// `$scheme`: `http` or `https`.
    Scheme,
    /// `$request_uri`: the original path and query.
    RequestUri,
    /// `$escaped_request_uri`: the same, percent-encoded for use in a query value.
    EscapedRequestUri,
    /// `$uri`: the normalized path.
    Uri,
    /// `$args` (or `$query_string`): the query, empty when there is none.
    Args,
    /// `$remote_addr`: the client address.
    RemoteAddr,
    /// `$http_<name>`: a request header (`_` → `-`), empty when absent.
    Header(HeaderName),
    /// `$cookie_<name>`: a cookie's value, empty when absent.
    Cookie(String),
}

/// Which variables a template accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vars {
    /// A signin URL: `$host`, `$scheme`, `$request_uri`, `$escaped_request_uri`.
    Url,
    /// A cache key: every [`Variable`] but `$args`.
    Key,
    /// A redirect's URL: `$scheme`, `$host`, `$request_uri`, `$uri`, `$args` (`$query_string`).
    Redirect,
}

impl Template {
    /// Parse `text`. Variables are `$name` (letters, digits, `_`); `${…}`, a lone `$` and
    /// unknown names are errors.
    pub fn parse(text: &str, vars: Vars) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let len = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
            let name = &after[..len];
            let var = variable(name, vars)?;
            if !literal.is_empty() {
                parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
            }
            parts.push(TemplatePart::Var(var));
            rest = &after[len..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(TemplatePart::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// Fill the template; `value` gives each variable's text for this request.
    pub fn render(&self, mut value: impl FnMut(&Variable) -> String) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Var(v) => out.push_str(&value(v)),
            }
        }
        out
    }
}

fn variable(name: &str, vars: Vars) -> Result<Variable, String> {
    let url_var = match name {
        "host" => Some(Variable::Host),
        "scheme" => Some(Variable::Scheme),
        "request_uri" => Some(Variable::RequestUri),
        "escaped_request_uri" => Some(Variable::EscapedRequestUri),
        _ => None,
    };
    let key_var = || match name {
        "uri" => Some(Variable::Uri),
        "remote_addr" => Some(Variable::RemoteAddr),
        _ => {
            if let Some(h) = name.strip_prefix("http_").filter(|h| !h.is_empty()) {
                HeaderName::from_bytes(h.replace('_', "-").as_bytes()).ok().map(Variable::Header)
            } else {
                name.strip_prefix("cookie_").filter(|c| !c.is_empty()).map(|c| Variable::Cookie(c.into()))
            }
        }
    };
    let redirect_var = || match name {
        "host" => Some(Variable::Host),
        "scheme" => Some(Variable::Scheme),
        "request_uri" => Some(Variable::RequestUri),
        "uri" => Some(Variable::Uri),
        "args" | "query_string" => Some(Variable::Args),
        _ => None,
    };
    let found = match vars {
        Vars::Url => url_var,
        Vars::Key => url_var.or_else(key_var),
        Vars::Redirect => redirect_var(),
    };
    found.ok_or_else(|| {
        let allowed = match vars {
            Vars::Url => "$host, $scheme, $request_uri, $escaped_request_uri",
            Vars::Key => {
                "$host, $scheme, $request_uri, $escaped_request_uri, $uri, $remote_addr, $http_<header>, $cookie_<name>"
            }
            Vars::Redirect => "$scheme, $host, $request_uri, $uri, $args",
        };
        if name.is_empty() {
            format!("has a '$' that starts no variable; variables are {allowed}")
        } else {
            format!("uses ${name}, which weir does not provide; variables are {allowed}")
        }
    })
}

//! Main rules merged per host and the default server (canaries attach in the `canary` step).

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use weir_config::matching::normalize_prefix;
use weir_config::wire::{BackendDoc, CanaryDoc, DenyDoc, HostDoc, RuleDoc, TableDoc, TlsDoc, SCHEMA_V1};

use super::access::{deny_doc, labels_only};
use super::backends::{Index, Via};
use super::diagnostics::{Diagnostics, IngressRef, Reason};
use crate::annotations::RuleAnnotations;

/// A rule's identity as weir-config sees duplicates: Prefix and ImplementationSpecific
/// compare by normalized prefix (`/a` = `/a/`), Exact by the path itself.
pub(super) type RuleKey = (String, bool);

pub(super) struct Entry {
    /// The path as written (`/` when empty) and its pathType: canaries pair on these exactly.
    pub(super) path: String,
    pub(super) path_type: String,
    pub(super) backend: BackendDoc,
    pub(super) owner: IngressRef,
    /// Body size, timeouts and protocol: always the main Ingress's (§3).
    settings: RuleAnnotations,
    /// Filled by `spec.defaultBackend` (not by a rule): a canary's defaultBackend pairs here.
    pub(super) from_default: bool,
    pub(super) canary: Option<Attached>,
    /// The WeirRoute that holds this rule (its canary, or none when it was refused): canary
    /// Ingresses do not attach here.
    pub(super) route: Option<RouteHold>,
    /// Set for a refused Ingress's rule, or a main rule whose refused canary pairs with it:
    /// the rule answers 503 instead of forwarding (and so never falls through).
    pub(super) deny: Option<DenyDoc>,
    /// Order of insertion (Ingresses come oldest first): on a regex host the older of two
    /// rules with one pattern keeps it.
    seq: usize,
}

/// The WeirRoute holding a rule (the `weirroutes` step sets it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteHold {
    pub(crate) route: IngressRef,
}

/// The canary that holds a rule, and whether a Rollout controls it (it then wins, see
/// the `canary` step).
pub(super) struct Attached {
    pub(super) doc: CanaryDoc,
    pub(super) ingress: IngressRef,
    pub(super) rollout: Option<String>,
    /// `affinity-canary-behavior: legacy` on the canary Ingress.
    pub(super) legacy_affinity: bool,
}

#[derive(Default)]
pub(crate) struct Table {
    /// `None` is the default server.
    pub(super) hosts: BTreeMap<Option<String>, BTreeMap<RuleKey, Entry>>,
    /// Entries inserted so far (each entry's `seq`).
    inserted: usize,
    /// `server-alias` by host: the oldest Ingress of the host that asks for aliases, and
    /// its names (as ingress-nginx keeps one server's aliases).
    aliases: BTreeMap<String, (IngressRef, Vec<String>)>,
}

/// One rule path of an Ingress, checked so that weir-config will accept it.
pub(super) struct RulePath<'a> {
    pub(super) host: Option<String>,
    pub(super) path: String,
    pub(super) path_type: String,
    pub(super) backend: &'a IngressBackend,
}

impl RulePath<'_> {
    pub(super) fn key(&self) -> RuleKey {
        let exact = self.path_type == "Exact";
        let norm = if exact { self.path.clone() } else { normalize_prefix(&self.path).to_string() };
        (norm, exact)
    }

    pub(super) fn describe(&self) -> String {
        format!("host {:?} path {:?} ({})", self.host.as_deref().unwrap_or("*"), self.path, self.path_type)
    }
}

/// The rule paths of an Ingress; invalid ones are reported and left out. With `regex` (an
/// Ingress whose paths may be patterns) a path may hold `?`.
pub(super) fn rule_paths<'a>(ing: &'a Ingress, regex: bool, diags: &mut Diagnostics) -> Vec<RulePath<'a>> {
    let at = IngressRef::of(ing);
    let mut out = Vec::new();
    for rule in ing.spec.as_ref().and_then(|s| s.rules.as_deref()).unwrap_or_default() {
        let host = rule.host.as_deref().filter(|h| !h.is_empty()).map(str::to_ascii_lowercase);
        if let Some(h) = &host {
            if !valid_host(h) {
                diags.warn(
                    &at,
                    Reason::UnsupportedRule,
                    format!("host {h:?} is not a valid DNS name; rule skipped"),
                );
                continue;
            }
        }
        for p in rule.http.as_ref().map(|h| h.paths.as_slice()).unwrap_or_default() {
            let path = p.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/").to_string();
            let rp =
                RulePath { host: host.clone(), path, path_type: p.path_type.clone(), backend: &p.backend };
            if !matches!(rp.path_type.as_str(), "Exact" | "Prefix" | "ImplementationSpecific") {
                diags.warn(
                    &at,
                    Reason::UnsupportedRule,
                    format!("{}: unknown pathType; skipped", rp.describe()),
                );
            } else if !rp.path.starts_with('/')
                || rp
                    .path
                    .bytes()
                    .any(|b| b.is_ascii_control() || b == b' ' || (b == b'?' && !regex) || b == b'#')
            {
                diags.warn(
                    &at,
                    Reason::UnsupportedRule,
                    format!("{}: not a plain URL path; skipped", rp.describe()),
                );
            } else {
                out.push(rp);
            }
        }
    }
    out
}

/// A host's certificate and redirect setting, ready for its `HostDoc`.
#[derive(Clone)]
pub(crate) struct HostTls {
    pub doc: TlsDoc,
    pub ssl_redirect: bool,
}

/// The host check weir-config applies (`weir_config::checks::host_name`).
pub(crate) fn valid_host(h: &str) -> bool {
    weir_config::checks::host_name(h).is_ok()
}

impl Table {
    /// Add an ordinary Ingress's rules. Called oldest first, so an existing entry is older
    /// and keeps the rule, like ingress-nginx; the newer one is reported. A refused
    /// Ingress's rules are slotted by the same rule, as deny rules: kept even when their
    /// Service cannot be resolved, so `/admin` cannot fall through to another Ingress's `/`.
    pub(crate) fn add_main(
        &mut self,
        ing: &Ingress,
        settings: &RuleAnnotations,
        index: &Index<'_>,
        diags: &mut Diagnostics,
    ) {
        let at = IngressRef::of(ing);
        let fallback = settings.default_backend.as_deref().and_then(|d| index.default_backend(&at, d, diags));
        let via = Via { service_upstream: settings.service_upstream, default_backend: fallback.as_deref() };
        for rp in rule_paths(ing, settings.use_regex || settings.rewrite_target.is_some(), diags) {
            if let Some(host) = &rp.host {
                self.claim_aliases(host, &at, settings, diags);
            }
            let rules = self.hosts.entry(rp.host.clone()).or_default();
            let key = rp.key();
            if let Some(first) = rules.get(&key) {
                if first.owner != at {
                    diags.warn(
                        &at,
                        Reason::DuplicateRule,
                        format!(
                            "{} is already served by older ingress {}; ignored here",
                            rp.describe(),
                            first.owner
                        ),
                    );
                }
                continue;
            }
            let deny = settings.refused.as_deref().map(deny_doc);
            let backend = match index.backend_via(&at, rp.backend, &via, diags) {
                Some(b) => Some(b),
                None if deny.is_some() => {
                    Some(labels_only(ing, rp.backend.service.as_ref().map(|s| s.name.as_str())))
                }
                None => None,
            };
            if let Some(backend) = backend {
                let entry = Entry {
                    path: rp.path.clone(),
                    path_type: rp.path_type.clone(),
                    backend,
                    owner: at.clone(),
                    settings: settings.clone(),
                    from_default: false,
                    canary: None,
                    route: None,
                    deny,
                    seq: self.inserted,
                };
                self.inserted += 1;
                rules.insert(key, entry);
            }
        }
    }

    /// `spec.defaultBackend`: the default server's `/` (oldest Ingress wins) and the `/` of
    /// each host this Ingress names (in rules or `spec.tls`) when no rule claims it, as
    /// ingress-nginx does. Runs after every explicit rule, so explicit rules always win.
    pub(crate) fn add_default_backend(
        &mut self,
        ing: &Ingress,
        settings: &RuleAnnotations,
        index: &Index<'_>,
        diags: &mut Diagnostics,
    ) {
        let Some(default) = ing.spec.as_ref().and_then(|s| s.default_backend.as_ref()) else { return };
        let at = IngressRef::of(ing);
        let fallback = settings.default_backend.as_deref().and_then(|d| index.default_backend(&at, d, diags));
        let via = Via { service_upstream: settings.service_upstream, default_backend: fallback.as_deref() };
        let backend = match index.backend_via(&at, default, &via, diags) {
            Some(b) => b,
            None if settings.refused.is_some() => {
                labels_only(ing, default.service.as_ref().map(|s| s.name.as_str()))
            }
            None => return,
        };
        let spec = ing.spec.as_ref();
        let rule_hosts = spec.and_then(|s| s.rules.as_deref()).unwrap_or_default().iter().map(|r| &r.host);
        let tls_hosts = spec
            .and_then(|s| s.tls.as_deref())
            .unwrap_or_default()
            .iter()
            .flat_map(|t| t.hosts.as_deref().unwrap_or_default())
            .map(Some);
        let mut hosts: Vec<Option<String>> = vec![None];
        for h in rule_hosts.map(Option::as_ref).chain(tls_hosts).flatten() {
            let h = h.to_ascii_lowercase();
            if !h.is_empty() && valid_host(&h) {
                hosts.push(Some(h));
            }
        }
        hosts.sort();
        hosts.dedup();
        for host in hosts {
            let is_default_server = host.is_none();
            let rules = self.hosts.entry(host).or_default();
            match rules.get(&(String::new(), false)) {
                Some(first) if is_default_server && first.owner != at => diags.warn(
                    &at,
                    Reason::DuplicateRule,
                    format!(
                        "defaultBackend ignored: the default server is already served by older ingress {}",
                        first.owner
                    ),
                ),
                Some(_) => {}
                None => {
                    let entry = Entry {
                        path: "/".into(),
                        path_type: "Prefix".into(),
                        backend: backend.clone(),
                        owner: at.clone(),
                        settings: settings.clone(),
                        from_default: true,
                        canary: None,
                        route: None,
                        deny: settings.refused.as_deref().map(deny_doc),
                        seq: self.inserted,
                    };
                    self.inserted += 1;
                    rules.insert((String::new(), false), entry);
                }
            }
        }
    }

    /// The table; hosts with a certificate in `tls` get it (and `sslRedirect`), and are kept
    /// even without rules. Hosts with neither rules nor a certificate are left out.
    pub(crate) fn into_doc(
        mut self,
        mut tls: BTreeMap<String, HostTls>,
        diags: &mut Diagnostics,
    ) -> TableDoc {
        let aliases = self.resolve_aliases(diags);
        // An alias with a certificate of its own (a `spec.tls` host) keeps it; the others
        // take their host's. Either way it is no host of its own.
        let alias_tls: BTreeMap<String, HostTls> =
            aliases.keys().filter_map(|a| Some((a.clone(), tls.remove(a)?))).collect();
        self.add_www_redirects(&mut tls, &aliases);
        for host in tls.keys() {
            self.hosts.entry(Some(host.clone())).or_default();
        }
        let mut hosts: Vec<HostDoc> = self
            .hosts
            .into_iter()
            .filter_map(|(host, rules)| {
                let cert = host.as_ref().and_then(|h| tls.remove(h));
                if rules.is_empty() && cert.is_none() {
                    return None;
                }
                let regex = rules.values().any(Entry::makes_regex);
                let rules: Vec<RuleDoc> = match regex {
                    true => regex_rules(rules, diags),
                    false => rules.into_values().map(Entry::into_rule).collect(),
                };
                Some(HostDoc {
                    host,
                    ssl_redirect: cert.as_ref().map(|c| c.ssl_redirect),
                    tls: cert.map(|c| c.doc),
                    regex_paths: regex.then_some(true),
                    rules,
                })
            })
            .collect();
        let mut copies = Vec::new();
        for (alias, host) in &aliases {
            let Some(of) = hosts.iter().find(|h| h.host.as_deref() == Some(host.as_str())) else { continue };
            let mut copy = HostDoc { host: Some(alias.clone()), ..of.clone() };
            if let Some(own) = alias_tls.get(alias) {
                copy.tls = Some(own.doc.clone());
                copy.ssl_redirect = Some(own.ssl_redirect);
            }
            copies.push(copy);
        }
        hosts.extend(copies);
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        TableDoc { schema: SCHEMA_V1.into(), hosts, ..Default::default() }
    }
}

impl Table {
    /// ingress-nginx's `server-alias` is one server's: the oldest Ingress of the host that
    /// sets it gives the names; a younger one's are ignored (ingress-nginx: "Aliases already
    /// configured for server"), reported. A refused Ingress gives none.
    fn claim_aliases(
        &mut self,
        host: &str,
        at: &IngressRef,
        settings: &RuleAnnotations,
        diags: &mut Diagnostics,
    ) {
        if settings.aliases.is_empty() || settings.refused.is_some() {
            return;
        }
        match self.aliases.get(host) {
            Some((first, _)) if first != at => diags.warn(
                at,
                Reason::DuplicateRule,
                format!(
                    "server-alias ignored for host {host:?}: it has the aliases of older ingress {first}, as in ingress-nginx"
                ),
            ),
            Some(_) => {}
            None => {
                self.aliases.insert(host.to_string(), (at.clone(), settings.aliases.clone()));
            }
        }
    }

    /// The aliases to serve, alias → host. As ingress-nginx: not the host itself, and not a
    /// host some rule names (reported); a name two hosts claim goes to the first in name order
    /// (nginx's first `server_name`), reported for the other. Fail closed beyond that: an
    /// exact alias that a wildcard host of another Ingress's rules covers is not added either
    /// (nginx would give the alias the requests those rules serve).
    fn resolve_aliases(&self, diags: &mut Diagnostics) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for (host, (owner, names)) in &self.aliases {
            if self.hosts.get(&Some(host.clone())).is_none_or(BTreeMap::is_empty) {
                continue;
            }
            for alias in names {
                if alias == host {
                    continue;
                }
                let rules_of = |h: &str| self.hosts.get(&Some(h.to_string())).filter(|r| !r.is_empty());
                let not_added =
                    |why: String| format!("server-alias {alias:?} of host {host:?} not added: {why}");
                if let Some(rules) = rules_of(alias) {
                    let by = rules.values().next().map(|e| e.owner.to_string()).unwrap_or_default();
                    let msg =
                        not_added(format!("it is a host of ingress {by}'s rules, as ingress-nginx skips it"));
                    diags.warn(owner, Reason::DuplicateRule, msg);
                    continue;
                }
                if let Some(other) = out.get(alias) {
                    let msg = not_added(format!("it is already an alias of host {other:?}"));
                    diags.warn(owner, Reason::DuplicateRule, msg);
                    continue;
                }
                let cover =
                    alias.split_once('.').filter(|(first, _)| *first != "*").map(|(_, r)| format!("*.{r}"));
                let other_owner = cover
                    .as_deref()
                    .and_then(rules_of)
                    .and_then(|rules| rules.values().find(|e| e.owner != *owner).map(|e| e.owner.clone()));
                if let (Some(cover), Some(by)) = (&cover, other_owner) {
                    let msg = not_added(format!(
                        "wildcard host {cover:?} of ingress {by}'s rules covers it, and the alias would take its requests"
                    ));
                    diags.warn(owner, Reason::DuplicateRule, msg);
                    continue;
                }
                out.insert(alias.clone(), host.clone());
            }
        }
        out
    }

    /// ingress-nginx's `from-to-www-redirect`: for a host one of whose Ingresses asks for it,
    /// the other name (`www.` added, or taken off) answers every request with 308 to the host,
    /// unless a rule or certificate already names it. It gets the host's certificate, as
    /// ingress-nginx gives it when the certificate covers the name.
    fn add_www_redirects(&mut self, tls: &mut BTreeMap<String, HostTls>, aliases: &BTreeMap<String, String>) {
        let mut add = Vec::new();
        for (host, rules) in &self.hosts {
            let Some(h) = host else { continue };
            let Some(asking) = rules.values().find(|e| e.settings.from_to_www && e.deny.is_none()) else {
                continue;
            };
            if h.starts_with("*.") {
                continue;
            }
            let from = match h.strip_prefix("www.") {
                Some(bare) => bare.to_string(),
                None => format!("www.{h}"),
            };
            if self.hosts.contains_key(&Some(from.clone()))
                || tls.contains_key(&from)
                || aliases.contains_key(&from)
                || !valid_host(&from)
            {
                continue;
            }
            add.push((from, h.clone(), asking.owner.clone()));
        }
        for (from, to, owner) in add {
            if let Some(cert) = tls.get(&to).cloned() {
                tls.insert(from.clone(), cert);
            }
            let settings = RuleAnnotations {
                redirect: Some(weir_config::wire::RedirectDoc {
                    url: format!("$scheme://{to}$request_uri"),
                    code: Some(308),
                }),
                ..RuleAnnotations::default()
            };
            let entry = Entry {
                path: "/".into(),
                path_type: "Prefix".into(),
                backend: BackendDoc::default(),
                owner,
                settings,
                from_default: false,
                canary: None,
                route: None,
                deny: None,
                seq: self.inserted,
            };
            self.inserted += 1;
            self.hosts.entry(Some(from)).or_default().insert((String::new(), false), entry);
        }
    }
}

/// A regex host's rules (ingress-nginx: a host where an Ingress has `use-regex` or a
/// `rewrite-target` other than its path): every path is a pattern. A path weir cannot run as
/// one, or the same pattern a second time (an Exact and a Prefix of one path), costs that rule
/// alone, reported; a rewrite naming groups its path lacks refuses the rule (503).
fn regex_rules(rules: BTreeMap<RuleKey, Entry>, diags: &mut Diagnostics) -> Vec<RuleDoc> {
    let mut seen: BTreeMap<String, IngressRef> = BTreeMap::new();
    let mut out = Vec::new();
    let mut entries: Vec<Entry> = rules.into_values().collect();
    entries.sort_by_key(|e| e.seq);
    for mut entry in entries {
        let groups = match weir_config::rewrite::check_pattern(&entry.path) {
            Ok(g) => g,
            Err(why) => {
                let msg =
                    format!("path {:?} is not a regular expression weir runs ({why}); skipped", entry.path);
                diags.warn(&entry.owner, Reason::UnsupportedRule, msg);
                continue;
            }
        };
        if let Some(first) = seen.get(&entry.path) {
            let msg = format!(
                "path {:?} ({}) is the same pattern as a rule of ingress {first} on a host of regular-expression paths; ignored here",
                entry.path, entry.path_type
            );
            diags.warn(&entry.owner, Reason::DuplicateRule, msg);
            continue;
        }
        seen.insert(entry.path.clone(), entry.owner.clone());
        if entry.deny.is_none() && entry.rewrites() {
            let s = &entry.settings;
            let target = s.rewrite_target.as_deref().unwrap_or_default();
            let problem = weir_config::rewrite::check_target(target, groups, true).err().or_else(|| {
                s.forwarded_prefix
                    .as_deref()
                    .and_then(|p| weir_config::rewrite::check_target(p, groups, false).err())
            });
            if let Some(why) = problem {
                let msg = format!(
                    "rewrite-target {target:?} on path {:?}: {why}; its rule answers 503",
                    entry.path
                );
                diags.warn(&entry.owner, Reason::AnnotationRefused, msg.clone());
                entry.deny = Some(deny_doc(&format!("not served as asked (its rules answer 503): {msg}")));
            }
        }
        out.push(entry.into_rule());
    }
    out
}

impl Entry {
    /// The Ingress makes its host's paths patterns (`use-regex`, or a rewrite).
    fn makes_regex(&self) -> bool {
        self.settings.use_regex || self.rewrites()
    }

    /// ingress-nginx's `needsRewrite`: a target other than the rule's own path.
    fn rewrites(&self) -> bool {
        self.settings.rewrite_target.as_deref().is_some_and(|t| t != self.path)
    }

    fn into_rule(self) -> RuleDoc {
        let rewrites = self.rewrites();
        let s = self.settings;
        let mut backend = self.backend;
        let legacy = self.canary.as_ref().is_some_and(|a| a.legacy_affinity);
        let mut canary = self.canary.map(|a| a.doc);
        let mut affinity = s.affinity;
        if let Some(a) = affinity.as_mut().filter(|_| legacy) {
            a.canary_behavior = Some("legacy".into());
        }
        let (mut redirect, mut app_root, mut cors, mut rate_limit) =
            (s.redirect, s.app_root, s.cors, s.rate_limit);
        let mut rewrite = rewrites.then(|| weir_config::wire::RewriteDoc {
            target: s.rewrite_target.clone().unwrap_or_default(),
            forwarded_prefix: s.forwarded_prefix.clone(),
        });
        if self.deny.is_some() {
            redirect = None;
            app_root = None;
            rewrite = None;
            cors = None;
            rate_limit = None;
            affinity = None;
            // No endpoints and no canary: a proxy that predates `deny` answers 503 too.
            backend.endpoints.clear();
            canary = None;
        }
        RuleDoc {
            path: self.path,
            path_type: Some(self.path_type),
            backend,
            canary,
            connect_timeout: s.connect_timeout,
            response_timeout: s.response_timeout,
            max_body_size: s.max_body_size,
            protocol: s.protocol,
            deny: self.deny,
            access: s.access,
            redirect,
            app_root,
            rewrite,
            upstream_host: s.upstream_host,
            cors,
            rate_limit,
            send_timeout: s.send_timeout,
            retry: s.retry,
            affinity,
        }
    }
}

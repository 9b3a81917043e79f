//! Guards the `deploy/` tree in CI: manifests parse, route tables validate, dashboard and
//! alert queries name only metrics weir exports, alert rules pass promtool, and the pod
//! keeps its security posture (admin API on the pod's Unix socket, locked-down containers).
//!
//! promtool is required, not optional: `scripts/test.sh` installs it (Debian `prometheus`).

mod deploy_kit;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use deploy_kit::{assert_pod_locked_down, assert_service_hides_admin, deploy_dir, files, read, yaml_docs};
use serde_yaml_ng::Value;
use weir_config::RouteTable;

/// Every metric family a query under `deploy/` may name. ingress-nginx's request families
/// (reference/metrics.md) and weir's own; keep in step with the proxy's metrics module.
const HISTOGRAMS: &[&str] = &[
    "nginx_ingress_controller_request_duration_seconds",
    "nginx_ingress_controller_response_duration_seconds",
    "nginx_ingress_controller_header_duration_seconds",
    "nginx_ingress_controller_connect_duration_seconds",
    "nginx_ingress_controller_request_size",
    "nginx_ingress_controller_response_size",
    "nginx_ingress_controller_bytes_sent",
];
const SERIES: &[&str] = &[
    "nginx_ingress_controller_requests",
    "weir_canary_weight",
    "weir_canary_weight_denominator",
    "weir_canary_weight_ratio",
    "weir_canary_fallbacks_total",
    "weir_backend_ready_endpoints",
    "weir_config_info",
    "weir_config_generation",
    "weir_config_last_applied_timestamp_seconds",
    "weir_config_reloads_total",
    "weir_canary_guard_tripped",
    "weir_canary_guard_window_answers",
    "weir_canary_guard_window_faults",
    "weir_mirror_requests_total",
    "weir_mirror_copies_total",
    "weir_rate_limited_total",
    // The controller's (controller/src/metrics.rs).
    "weir_controller_diagnostics",
    // Prometheus's own per-target series, for "weir is down".
    "up",
];

fn known_metric(name: &str) -> bool {
    SERIES.contains(&name)
        || HISTOGRAMS.iter().any(|h| {
            name.strip_prefix(h).is_some_and(|suffix| ["_bucket", "_sum", "_count"].contains(&suffix))
        })
}

/// The YAML files under deploy/, less the Helm chart's templates: those are Go templates
/// (helm_chart.rs lints and renders them, and checks what they render).
fn yaml_files() -> Vec<PathBuf> {
    let templates = deploy_dir().join("helm/weir/templates");
    files(&deploy_dir(), &[".yaml", ".yml"]).into_iter().filter(|p| !p.starts_with(&templates)).collect()
}

fn all_yaml() -> Vec<(PathBuf, Vec<Value>)> {
    let paths = yaml_files();
    assert!(paths.len() >= 10, "expected the deploy tree, found only {paths:?}");
    paths.into_iter().map(|p| (p.clone(), yaml_docs(&p).unwrap_or_else(|e| panic!("{e}")))).collect()
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let broken: Vec<String> = yaml_files().iter().filter_map(|p| yaml_docs(p).err()).collect();
    assert!(broken.is_empty(), "YAML that does not parse:\n{}", broken.join("\n"));
}

#[test]
fn every_kubernetes_manifest_has_api_version_kind_and_name() {
    let dirs = ["base", "components", "overlays", "examples"];
    let mut problems = Vec::new();
    for (path, docs) in all_yaml() {
        let rel = path.strip_prefix(deploy_dir()).expect("under deploy").to_string_lossy().into_owned();
        if !dirs.iter().any(|d| rel.starts_with(d)) {
            continue;
        }
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap_or_default();
            if doc["apiVersion"].as_str().is_none() || kind.is_empty() {
                problems.push(format!("{rel}: a document without apiVersion or kind"));
            } else if !matches!(kind, "Kustomization" | "Component")
                && doc["metadata"]["name"].as_str().is_none()
            {
                problems.push(format!("{rel}: a {kind} without metadata.name"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_kustomization_names_files_that_exist() {
    for path in files(&deploy_dir(), &["kustomization.yaml"]) {
        let doc = &yaml_docs(&path).unwrap_or_else(|e| panic!("{e}"))[0];
        let dir = path.parent().expect("a directory");
        for key in ["resources", "components"] {
            for entry in doc[key].as_sequence().into_iter().flatten() {
                let name = entry.as_str().expect("a path");
                assert!(dir.join(name).exists(), "{}: {key} entry {name} does not exist", path.display());
            }
        }
    }
}

#[test]
fn route_tables_under_deploy_validate() {
    let mut tables = 0;
    for (path, docs) in all_yaml() {
        for doc in docs.iter().filter(|d| d["schema"].as_str().is_some_and(|s| s.starts_with("weir/"))) {
            let text = serde_yaml_ng::to_string(doc).expect("re-serialise");
            if let Err(e) = RouteTable::parse(&text) {
                panic!("{} is not a valid route table: {e}", path.display());
            }
            tables += 1;
        }
    }
    assert!(tables >= 1, "expected at least deploy/standalone/weir.yaml");
}

/// Metric names a PromQL expression selects: identifiers outside strings, label matchers
/// and ranges that are not functions, keywords, or the label lists of by/on/... clauses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Operators, and aggregations (which may be followed by `by (...)` instead of `(`).
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_to = |i: &mut usize, close: char| {
        while *i < chars.len() && chars[*i] != close {
            *i += if chars[*i] == '\\' { 2 } else { 1 };
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '"' | '\'' | '`' => skip_to(&mut i, c),
            // A selector, to its `}`: quoted values may hold braces (`{{args.ingress}}`).
            '{' => {
                while i < chars.len() && chars[i] != '}' {
                    let q = chars[i];
                    i += 1;
                    if matches!(q, '"' | '\'' | '`') {
                        skip_to(&mut i, q);
                    }
                }
                i += 1;
            }
            '[' => skip_to(&mut i, ']'),
            // Numbers and durations (1e3, 0.99, 5m), and Grafana variables ($ingress).
            '0'..='9' | '.' | '$' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.')) {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i - 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':')) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let call = chars.get(next) == Some(&'(');
                if LABEL_LISTS.contains(&word.as_str()) && call {
                    i = next + 1;
                    skip_to(&mut i, ')');
                } else if !call && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
            }
            _ => {}
        }
    }
    names
}

#[test]
fn metric_name_extraction_sees_through_promql_syntax() {
    let expr = r#"histogram_quantile(0.99, sum by (ingress, le) (rate(a_bucket{x=~"b|c",y!=""}[$__rate_interval])))
        / on (ingress) group_left (canary) label_join(b == 0, "d", "-", "e") unless c offset 5m > 1e3"#;
    let want: BTreeSet<String> = ["a_bucket", "b", "c"].map(String::from).into();
    assert_eq!(metric_names(expr), want);
    // A quoted label value may hold braces (an AnalysisTemplate's `{{args.ingress}}`).
    let templated = r#"sum(rate(r{ingress="{{args.ingress}}",fault!="client"}[1m]))"#;
    assert_eq!(metric_names(templated), BTreeSet::from(["r".to_owned()]));
}

/// Every PromQL query under deploy/: (where, expr). Dashboard panels (rows included),
/// alert and recording rules, and AnalysisTemplate Prometheus queries.
fn queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dashboard = deploy_dir().join("monitoring/weir-canary.json");
    let json: serde_json::Value = serde_json::from_str(&read(&dashboard)).expect("the dashboard is JSON");
    let mut panels: Vec<&serde_json::Value> = json["panels"].as_array().expect("panels").iter().collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        let title = panel["title"].as_str().unwrap_or("?");
        let targets = panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(panel["type"] == "row" || !targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
            out.push((format!("dashboard panel {title:?}"), expr.to_string()));
        }
    }
    for (path, docs) in all_yaml() {
        for doc in &docs {
            for group in doc["groups"].as_sequence().into_iter().flatten() {
                for r in group["rules"].as_sequence().into_iter().flatten() {
                    let name = r["alert"].as_str().or(r["record"].as_str()).unwrap_or("?");
                    out.push((
                        format!("{} rule {name}", path.display()),
                        r["expr"].as_str().expect("expr").into(),
                    ));
                }
            }
            if doc["kind"] == "AnalysisTemplate" {
                for m in doc["spec"]["metrics"].as_sequence().into_iter().flatten() {
                    if let Some(q) = m["provider"]["prometheus"]["query"].as_str() {
                        out.push((
                            format!("{} metric {}", path.display(), m["name"].as_str().unwrap_or("?")),
                            q.into(),
                        ));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn dashboard_alert_and_analysis_queries_name_only_metrics_weir_exports() {
    let queries = queries();
    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    for (place, expr) in &queries {
        for name in metric_names(expr) {
            if !known_metric(&name) {
                unknown.push(format!("{place}: {name}"));
            }
            used.insert(name);
        }
    }
    assert!(unknown.is_empty(), "queries name metrics weir does not export:\n{}", unknown.join("\n"));
    // The panels and alerts the deploy tree promises.
    for name in [
        "nginx_ingress_controller_requests",
        "nginx_ingress_controller_request_duration_seconds_bucket",
        "weir_canary_weight",
        "weir_canary_weight_denominator",
        "weir_canary_fallbacks_total",
        "weir_config_reloads_total",
        "weir_backend_ready_endpoints",
        "weir_controller_diagnostics",
        "weir_canary_guard_tripped",
    ] {
        assert!(used.contains(name), "no query uses {name}");
    }
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy_dir().join(".."))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); install it: apt-get install prometheus (scripts/test.sh does)")
        });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let check = promtool(&["check", "rules", "deploy/monitoring/weir-alerts.yaml"]);
    assert!(check.contains("SUCCESS"), "{check}");
    let test = promtool(&["test", "rules", "deploy/monitoring/weir-alerts.test.yaml"]);
    assert!(test.contains("SUCCESS"), "{test}");
}

#[test]
fn dashboard_queries_parse_as_promql() {
    // promtool parses the expressions of a rule file: wrap each panel query in a recording
    // rule, with Grafana's variables replaced by values of the right type.
    let mut rules = Vec::new();
    for (i, (_, expr)) in queries().into_iter().filter(|(p, _)| p.starts_with("dashboard")).enumerate() {
        let expr =
            expr.replace("$__rate_interval", "5m").replace("$namespace", ".*").replace("$ingress", ".*");
        rules.push(serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": expr}));
    }
    let file = std::env::temp_dir().join(format!("weir-dashboard-queries-{}.yaml", std::process::id()));
    let doc = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, serde_yaml_ng::to_string(&doc).expect("serialise")).expect("write temp file");
    let result = promtool(&["check", "rules", &file.to_string_lossy()]);
    let _ = std::fs::remove_file(&file);
    assert!(result.contains("SUCCESS"), "{result}");
}

#[test]
fn pod_keeps_the_admin_api_on_its_unix_socket_and_containers_locked_down() {
    let deployment = &yaml_docs(&deploy_dir().join("base/deployment.yaml")).expect("parses")[0];
    assert_pod_locked_down(&deployment["spec"]["template"]["spec"], "base/deployment.yaml");
    for doc in yaml_docs(&deploy_dir().join("base/service.yaml")).expect("parses") {
        assert_service_hides_admin(&doc, "base/service.yaml");
    }
}

#[test]
fn dockerfile_builds_on_the_debian_release_it_runs_on() {
    // The binaries link the builder's glibc: the runtime must be the same Debian release.
    let dockerfile = read(&deploy_dir().join("Dockerfile"));
    let images: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    let release_of = |image: &str| -> Option<&'static str> {
        [("bookworm", "12"), ("debian12", "12"), ("trixie", "13"), ("debian13", "13")]
            .iter()
            .find(|(name, _)| image.contains(name))
            .map(|(_, release)| *release)
    };
    assert!(images.len() >= 3, "a build stage and two runtime stages: {images:?}");
    let releases: Vec<Option<&str>> = images.iter().map(|i| release_of(i)).collect();
    assert!(releases.iter().all(Option::is_some), "every FROM must name its Debian release: {images:?}");
    assert!(
        releases.windows(2).all(|w| w[0] == w[1]),
        "builder and runtimes on different Debian releases: {images:?}"
    );
}

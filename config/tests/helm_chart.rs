//! The Helm chart (`deploy/helm/weir`): `helm lint --strict`, `helm template` for the default
//! and every CI value set (`deploy/helm/weir/ci/*.yaml`) validated offline with kubeconform
//! against the Kubernetes JSON schemas (from the PyPI package kubernetes-validate) and the
//! Argo Rollouts and Prometheus Operator CRD schemas, together with every manifest of the
//! kustomize tree and the examples; the default rendering equals the kustomize base; the
//! chart's RBAC equals `deploy/base/rbac.yaml`; bad values are refused naming the field.
//!
//! The tools are pinned and cached by `deploy/tools/install.sh`, which these tests run (it
//! builds what is missing): nothing here is skipped for a missing tool.

mod deploy_kit;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use deploy_kit::{
    assert_pod_locked_down, assert_service_hides_admin, deploy_dir, files, read, yaml_docs, yaml_docs_str,
};
use serde_yaml_ng::{Mapping, Value};

/// Kubernetes versions validated against: the chart's minimum (kubeVersion >= 1.30), the
/// version the controller is built for (k8s-openapi v1_33), and the newest schemas shipped.
const KUBERNETES_VERSIONS: &[&str] = &["1.30.0", "1.33.0", "1.37.0"];
const NAMESPACE: &str = "weir-system";

struct Tools {
    helm: PathBuf,
    kubeconform: PathBuf,
    /// `<dir>/v<version>-standalone-strict/<kind>-<group>-<version>.json`, kubeconform's layout.
    kubernetes_schemas: PathBuf,
    /// `<dir>/<group>/<kind>_<version>.json`, from the CRDs' openAPIV3Schema.
    crd_schemas: PathBuf,
}

fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let paths = deploy_kit::tools();
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubeconform-schemas");
        let kubernetes_schemas = prepare_kubernetes_schemas(&paths["KUBERNETES_SCHEMAS"], &work);
        let crd_schemas = prepare_crd_schemas(
            &[paths["ARGO_ROLLOUTS_CRDS"].clone(), paths["PROMETHEUS_OPERATOR_CRDS"].clone()],
            &work,
        );
        Tools {
            helm: paths["HELM"].clone(),
            kubeconform: paths["KUBECONFORM"].clone(),
            kubernetes_schemas,
            crd_schemas,
        }
    })
}

/// A fresh directory `<work>/<name>-<pid>` (a test process writes only its own).
fn fresh_dir(work: &Path, name: &str) -> PathBuf {
    let dir = work.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// kubernetes-validate's strict schemas, made loadable from disk: their `$id`s are
/// https://kubernetes.io/... and their `$ref`s point at /api/_definitions.json on that
/// host, so the ids are dropped and the refs made relative to the file.
fn prepare_kubernetes_schemas(source: &Path, work: &Path) -> PathBuf {
    let out = fresh_dir(work, "kubernetes");
    for version in KUBERNETES_VERSIONS {
        let from = source.join(format!("v{version}-local-strict"));
        let to = out.join(format!("v{version}-standalone-strict"));
        std::fs::create_dir_all(&to).expect("schema dir");
        let mut count = 0;
        for file in files(&from, &[".json"]) {
            let mut schema: serde_json::Value =
                serde_json::from_str(&read(&file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if let Some(object) = schema.as_object_mut() {
                object.remove("$id");
            }
            let text = schema.to_string().replace("\"/api/_definitions.json#", "\"_definitions.json#");
            std::fs::write(to.join(file.file_name().expect("file name")), text).expect("write schema");
            count += 1;
        }
        assert!(count > 500, "only {count} schemas in {}", from.display());
    }
    out
}

/// JSON schemas for kubeconform from CustomResourceDefinitions, strict like the Kubernetes
/// ones: objects with declared properties refuse others (unless the CRD preserves unknown
/// fields there), `x-kubernetes-int-or-string` is integer or string, `nullable` admits null.
fn prepare_crd_schemas(dirs: &[PathBuf], work: &Path) -> PathBuf {
    let out = fresh_dir(work, "crds");
    let mut count = 0;
    for dir in dirs {
        for file in files(dir, &[".yaml"]) {
            for crd in yaml_docs(&file).unwrap_or_else(|e| panic!("{e}")) {
                if crd["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let group = crd["spec"]["group"].as_str().expect("spec.group");
                let kind = crd["spec"]["names"]["kind"].as_str().expect("kind").to_lowercase();
                for version in crd["spec"]["versions"].as_sequence().expect("versions") {
                    let Some(schema) = version["schema"].get("openAPIV3Schema") else { continue };
                    let schema = strict_json_schema(serde_json::to_value(schema).expect("as JSON"));
                    let path = out
                        .join(group)
                        .join(format!("{kind}_{}.json", version["name"].as_str().expect("name")));
                    std::fs::create_dir_all(path.parent().expect("dir")).expect("group dir");
                    std::fs::write(&path, schema.to_string()).expect("write schema");
                    count += 1;
                }
            }
        }
    }
    for needed in [
        "argoproj.io/rollout_v1alpha1",
        "argoproj.io/analysistemplate_v1alpha1",
        "monitoring.coreos.com/servicemonitor_v1",
        "monitoring.coreos.com/prometheusrule_v1",
    ] {
        assert!(out.join(format!("{needed}.json")).exists(), "no CRD schema {needed} among {count}");
    }
    out
}

fn strict_json_schema(node: serde_json::Value) -> serde_json::Value {
    use serde_json::{json, Value as J};
    match node {
        J::Array(items) => J::Array(items.into_iter().map(strict_json_schema).collect()),
        J::Object(map) => {
            let mut map: serde_json::Map<String, J> =
                map.into_iter().map(|(k, v)| (k, strict_json_schema(v))).collect();
            if map.get("x-kubernetes-int-or-string") == Some(&J::Bool(true)) {
                map.remove("type");
                map.insert("anyOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
            }
            if map.get("nullable") == Some(&J::Bool(true)) {
                if let Some(t) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                }
            }
            let preserves = map.get("x-kubernetes-preserve-unknown-fields") == Some(&J::Bool(true));
            if map.contains_key("properties") && !map.contains_key("additionalProperties") && !preserves {
                map.insert("additionalProperties".into(), J::Bool(false));
            }
            J::Object(map)
        }
        other => other,
    }
}

fn chart_dir() -> PathBuf {
    deploy_dir().join("helm/weir")
}

/// The default (None) and every CI value set.
fn value_sets() -> Vec<Option<PathBuf>> {
    let sets = files(&chart_dir().join("ci"), &["-values.yaml"]);
    assert!(sets.len() >= 3, "expected several CI value sets, found {sets:?}");
    std::iter::once(None).chain(sets.into_iter().map(Some)).collect()
}

fn set_name(set: &Option<PathBuf>) -> String {
    set.as_ref()
        .map_or("default values".into(), |p| p.file_name().expect("name").to_string_lossy().into_owned())
}

/// `helm <args>`: Ok(stdout) or Err(stdout + stderr).
fn helm(args: &[&str]) -> Result<String, String> {
    let out = Command::new(&tools().helm)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tools().helm.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// `helm template` of release "weir" in weir-system; `extra` are more flags (-f, --set).
fn render(kube_version: &str, set: &Option<PathBuf>, extra: &[&str]) -> Result<String, String> {
    let chart = chart_dir().to_string_lossy().into_owned();
    let mut args = vec!["template", "weir", &chart, "--namespace", NAMESPACE, "--kube-version", kube_version];
    let file;
    if let Some(path) = set {
        file = path.to_string_lossy().into_owned();
        args.extend(["-f", &file]);
    }
    args.extend(extra);
    helm(&args)
}

fn render_docs(set: &Option<PathBuf>, extra: &[&str]) -> Vec<Value> {
    let text = render("1.30.0", set, extra)
        .unwrap_or_else(|e| panic!("helm template ({}) failed:\n{e}", set_name(set)));
    yaml_docs_str(&text, "helm template").unwrap_or_else(|e| panic!("{e}"))
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", identities(docs)))
}

fn identities(docs: &[Value]) -> BTreeSet<(String, String)> {
    docs.iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or("?").to_string(),
                d["metadata"]["name"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// kubeconform's summary of validating `paths` (strict) for one Kubernetes version.
fn kubeconform(kube_version: &str, paths: &[PathBuf]) -> (serde_json::Value, String) {
    let t = tools();
    let k8s = format!(
        "{}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        t.kubernetes_schemas.display()
    );
    let crds = format!(
        "{}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
        t.crd_schemas.display()
    );
    let out = Command::new(&t.kubeconform)
        .args(["-strict", "-summary", "-output", "json", "-kubernetes-version", kube_version])
        .args(["-schema-location", &k8s, "-schema-location", &crds])
        .args(paths)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubeconform: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("kubeconform printed no JSON ({e}):\n{stdout}{}", String::from_utf8_lossy(&out.stderr))
    });
    (report, stdout)
}

/// Every Kubernetes manifest kept under deploy/ (kustomize base, components, examples);
/// kustomization files are kustomize's input, not objects.
fn static_manifests() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["base", "components", "examples"] {
        out.extend(
            files(&deploy_dir().join(dir), &[".yaml"])
                .into_iter()
                .filter(|p| !p.ends_with("kustomization.yaml")),
        );
    }
    out
}

fn object_count(paths: &[PathBuf]) -> usize {
    paths.iter().map(|p| yaml_docs(p).unwrap_or_else(|e| panic!("{e}")).len()).sum()
}

#[test]
fn chart_passes_helm_lint_strict_with_every_value_set() {
    let chart = chart_dir().to_string_lossy().into_owned();
    for set in value_sets() {
        let mut args = vec!["lint", "--strict", &chart, "--kube-version", "1.30.0"];
        let file;
        if let Some(path) = &set {
            file = path.to_string_lossy().into_owned();
            args.extend(["-f", &file]);
        }
        let out = helm(&args).unwrap_or_else(|e| panic!("helm lint ({}) failed:\n{e}", set_name(&set)));
        assert!(out.contains("1 chart(s) linted, 0 chart(s) failed"), "{out}");
        assert!(
            !out.contains("[WARNING]") && !out.contains("[ERROR]"),
            "helm lint ({}):\n{out}",
            set_name(&set)
        );
        eprintln!("helm lint --strict ({}): {}", set_name(&set), out.lines().last().unwrap_or_default());
    }
}

#[test]
fn every_rendering_and_manifest_validates_against_the_kubernetes_and_crd_schemas() {
    let work = fresh_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "helm-renderings");
    for version in KUBERNETES_VERSIONS {
        let mut paths = static_manifests();
        for (i, set) in value_sets().iter().enumerate() {
            let text = render(version, set, &[])
                .unwrap_or_else(|e| panic!("helm template ({}) failed:\n{e}", set_name(set)));
            let path = work.join(format!("{version}-{i}.yaml"));
            std::fs::write(&path, text).expect("write rendering");
            paths.push(path);
        }
        let objects = object_count(&paths);
        let (report, text) = kubeconform(version, &paths);
        let summary = &report["summary"];
        assert_eq!(summary["invalid"], 0, "Kubernetes {version}:\n{text}");
        assert_eq!(summary["errors"], 0, "Kubernetes {version}:\n{text}");
        assert_eq!(summary["skipped"], 0, "Kubernetes {version}:\n{text}");
        assert_eq!(
            summary["valid"].as_u64(),
            Some(objects as u64),
            "Kubernetes {version}: objects {objects}:\n{text}"
        );
        eprintln!(
            "kubeconform -strict, Kubernetes {version}: {objects} objects ({} files, {} value sets): {summary}",
            paths.len(),
            value_sets().len()
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn validation_refuses_broken_objects_of_every_schema_source() {
    // One mistake per schema source, so a schema that failed to load (and let everything
    // through) shows up here.
    let work = fresh_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "broken-objects");
    let broken = [
        (
            "deployment",
            read(&deploy_dir().join("base/deployment.yaml")).replace("replicas: 2", "replicas: two"),
        ),
        (
            "service",
            read(&deploy_dir().join("base/service.yaml"))
                .replace("externalTrafficPolicy", "externalTraficPolicy"),
        ),
        (
            "rollout",
            read(&deploy_dir().join("examples/argo-rollouts/canary/rollout.yaml"))
                .replace("stableService:", "stableServise:"),
        ),
        (
            "analysis",
            read(&deploy_dir().join("examples/argo-rollouts/canary/analysis-template.yaml")).replacen(
                "failureLimit: 2",
                "failureLimit: [2]",
                1,
            ),
        ),
        (
            "servicemonitor",
            read(&deploy_dir().join("components/servicemonitor/servicemonitor.yaml"))
                .replace("honorLabels: true", "honourLabels: true"),
        ),
    ];
    let mut paths = Vec::new();
    for (name, text) in &broken {
        let path = work.join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write");
        paths.push(path);
    }
    let (report, text) = kubeconform("1.30.0", &paths);
    let invalid: BTreeSet<String> = report["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] == "statusInvalid")
        .filter_map(|r| r["kind"].as_str().map(String::from))
        .collect();
    let want: BTreeSet<String> =
        ["Deployment", "Service", "Rollout", "AnalysisTemplate", "ServiceMonitor"].map(String::from).into();
    assert_eq!(invalid, want, "{text}");
    let _ = std::fs::remove_dir_all(&work);
}

/// Recursively drops `app.kubernetes.io/instance` (the chart's release label, which the
/// kustomize base has no use for) from every mapping.
fn without_instance_label(v: &Value) -> Value {
    match v {
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .filter(|(k, _)| k.as_str() != Some("app.kubernetes.io/instance"))
                .map(|(k, v)| (k.clone(), without_instance_label(v)))
                .collect::<Mapping>(),
        ),
        Value::Sequence(s) => Value::Sequence(s.iter().map(without_instance_label).collect()),
        other => other.clone(),
    }
}

fn base_objects() -> Vec<Value> {
    let mut docs = Vec::new();
    for name in ["rbac.yaml", "ingressclass.yaml", "deployment.yaml", "service.yaml", "pdb.yaml"] {
        docs.extend(yaml_docs(&deploy_dir().join("base").join(name)).unwrap_or_else(|e| panic!("{e}")));
    }
    let listed: Vec<String> = yaml_docs(&deploy_dir().join("base/kustomization.yaml")).expect("parses")[0]
        ["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .filter_map(|r| r.as_str().map(String::from))
        .collect();
    assert_eq!(
        listed,
        ["namespace.yaml", "rbac.yaml", "ingressclass.yaml", "deployment.yaml", "service.yaml", "pdb.yaml"],
        "base/kustomization.yaml lists other files: compare them with the chart here"
    );
    docs
}

#[test]
fn default_rendering_has_the_objects_of_the_kustomize_base() {
    let chart = render_docs(&None, &[]);
    let base = base_objects();
    // The Namespace is the one object the chart leaves out: Helm needs the release
    // namespace before it installs anything (helm install --create-namespace).
    assert_eq!(identities(&chart), identities(&base), "chart (left) and base (right) objects differ");
    for b in &base {
        let (kind, name) = (b["kind"].as_str().expect("kind"), b["metadata"]["name"].as_str().expect("name"));
        let c = without_instance_label(find(&chart, kind, name));
        for field in ["spec", "rules", "roleRef", "subjects"] {
            assert_eq!(
                c[field], b[field],
                "{kind} {name}: {field} differs between the chart and deploy/base"
            );
        }
        if kind == "IngressClass" {
            assert_eq!(
                c["metadata"]["annotations"], b["metadata"]["annotations"],
                "IngressClass annotations"
            );
        }
        if let Some(ns) = c["metadata"]["namespace"].as_str() {
            assert_eq!(ns, NAMESPACE, "{kind} {name}");
        }
    }
}

#[test]
fn chart_rbac_rules_are_the_base_rbac_rules() {
    let base = yaml_docs(&deploy_dir().join("base/rbac.yaml")).expect("parses");
    // Also for another release name: the rules do not depend on it, only names do.
    for release in ["weir", "edge"] {
        let chart = render_docs(&None, &["--set", &format!("fullnameOverride={release}")]);
        for b in base.iter().filter(|d| matches!(d["kind"].as_str(), Some("ClusterRole" | "Role"))) {
            let kind = b["kind"].as_str().expect("kind");
            let name = b["metadata"]["name"].as_str().expect("name").replacen("weir", release, 1);
            let rules = find(&chart, kind, &name)["rules"].clone();
            let want = if release == "weir" {
                b["rules"].clone()
            } else {
                serde_yaml_ng::from_str(
                    &serde_yaml_ng::to_string(&b["rules"])
                        .expect("yaml")
                        .replace("- weir-controller\n", &format!("- {release}-controller\n")),
                )
                .expect("yaml")
            };
            assert_eq!(
                rules, want,
                "{kind} {name} (release {release}): rules differ from deploy/base/rbac.yaml"
            );
        }
    }
}

#[test]
fn service_monitor_and_alert_rules_match_the_kustomize_component_and_rule_file() {
    let chart = render_docs(
        &None,
        &[
            "--set",
            "controller.metrics.serviceMonitor.enabled=true",
            "--set",
            "controller.metrics.prometheusRule.enabled=true",
        ],
    );
    let component =
        &yaml_docs(&deploy_dir().join("components/servicemonitor/servicemonitor.yaml")).expect("parses")[0];
    let monitor = without_instance_label(find(&chart, "ServiceMonitor", "weir"));
    assert_eq!(monitor["spec"], component["spec"], "ServiceMonitor spec: chart vs components/servicemonitor");

    let rules_file = deploy_dir().join("monitoring/weir-alerts.yaml");
    assert_eq!(
        read(&chart_dir().join("files/weir-alerts.yaml")),
        read(&rules_file),
        "deploy/helm/weir/files/weir-alerts.yaml is a copy of deploy/monitoring/weir-alerts.yaml: \
         cp deploy/monitoring/weir-alerts.yaml deploy/helm/weir/files/"
    );
    let groups = &yaml_docs(&rules_file).expect("parses")[0]["groups"];
    assert_eq!(&find(&chart, "PrometheusRule", "weir")["spec"]["groups"], groups);
}

#[test]
fn every_value_set_keeps_the_pod_locked_down_and_the_admin_api_unexposed() {
    for set in value_sets() {
        let docs = render_docs(&set, &[]);
        let place = set_name(&set);
        let deployment = docs.iter().find(|d| d["kind"] == "Deployment").expect("a Deployment");
        assert_pod_locked_down(&deployment["spec"]["template"]["spec"], &place);
        for service in docs.iter().filter(|d| d["kind"] == "Service") {
            assert_service_hides_admin(service, &place);
        }
    }
}

#[test]
fn value_sets_do_what_their_keys_say() {
    let sets: BTreeMap<String, Vec<Value>> =
        value_sets().iter().map(|s| (set_name(s), render_docs(s, &[]))).collect();

    let scaled = &sets["autoscaling-values.yaml"];
    let deployment = find(scaled, "Deployment", "edge");
    assert!(deployment["spec"]["replicas"].is_null(), "an HPA owns the replica count");
    let hpa = find(scaled, "HorizontalPodAutoscaler", "edge");
    assert_eq!(
        (hpa["spec"]["minReplicas"].as_i64(), hpa["spec"]["maxReplicas"].as_i64()),
        (Some(3), Some(9))
    );
    let pdb = find(scaled, "PodDisruptionBudget", "edge");
    assert_eq!(pdb["spec"]["minAvailable"].as_i64(), Some(2));
    assert!(pdb["spec"]["maxUnavailable"].is_null());
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_sequence().expect("containers");
    assert!(containers[0]["image"].as_str().expect("image").contains("@sha256:"), "image by digest");
    let args = |c: &Value| -> Vec<String> {
        c["args"].as_sequence().expect("args").iter().filter_map(|a| a.as_str().map(String::from)).collect()
    };
    assert!(args(&containers[0]).contains(&"--drain-timeout=60s".into()));
    assert!(args(&containers[0]).contains(&"--access-log".into()));
    assert!(args(&containers[1]).contains(&"--namespace=shop".into()));
    assert!(args(&containers[1]).contains(&"--lease-name=edge-controller".into()));
    assert_eq!(
        find(scaled, "Role", "edge-controller-leader-election")["rules"][1]["resourceNames"][0],
        "edge-controller"
    );

    let minimal = &sets["minimal-values.yaml"];
    assert_eq!(
        identities(minimal),
        [("Deployment", "weir"), ("IngressClass", "weir-internal"), ("Service", "weir")]
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .into(),
        "one replica: no PDB; rbac.create/serviceAccount.create false; metrics.enabled false"
    );
    let class = find(minimal, "IngressClass", "weir-internal");
    assert_eq!(class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"], "true");
    assert_eq!(class["spec"]["controller"], "weir.dev/internal");
    let pod = &find(minimal, "Deployment", "weir")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "weir-managed-elsewhere");
    let watcher = args(&pod["containers"][1]);
    for want in [
        "--class=weir-internal",
        "--controller-name=weir.dev/internal",
        "--publish-service=ingress/edge-lb",
        "--leader-elect=false",
    ] {
        assert!(watcher.contains(&want.to_string()), "{want} not in {watcher:?}");
    }
    let ports = &find(minimal, "Service", "weir")["spec"]["ports"];
    assert_eq!(ports.as_sequence().map(Vec::len), Some(1), "HTTP only: {ports:?}");

    let monitored = &sets["monitoring-values.yaml"];
    let monitor = find(monitored, "ServiceMonitor", "weir");
    assert_eq!(monitor["metadata"]["namespace"], "monitoring");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"][0], NAMESPACE,
        "scrapes the release namespace"
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], false);
    let groups =
        find(monitored, "PrometheusRule", "weir")["spec"]["groups"].as_sequence().expect("groups").clone();
    assert_eq!(groups.last().expect("a group")["rules"][0]["alert"], "WeirTooManyRequests");
}

#[test]
fn bad_values_are_refused_with_an_error_naming_the_field() {
    let cases: &[(&[&str], &str)] = &[
        // An ingress-nginx key weir does not implement: refused, not silently ignored.
        (
            &["--set", "controller.config.use-forwarded-headers=true"],
            "additional properties 'config' not allowed",
        ),
        (&["--set", "controller.service.type=Ingress"], "/controller/service/type"),
        (&["--set", "controller.replicaCount=-1"], "/controller/replicaCount"),
        (&["--set", "controller.image.digest=latest"], "/controller/image/digest"),
        (
            &["--set", "controller.terminationGracePeriodSeconds=30"],
            "controller.terminationGracePeriodSeconds (30) must exceed",
        ),
        (&["--set", "controller.extraArgs.admin-listen=0.0.0.0:10255"], "controller.extraArgs.admin-listen"),
        (
            &["--set", "controller.watcher.extraArgs.proxy-admin=http://10.0.0.1:10255"],
            "controller.watcher.extraArgs.proxy-admin",
        ),
        (
            &[
                "--set",
                "controller.autoscaling.enabled=true",
                "--set",
                "controller.autoscaling.minReplicas=5",
                "--set",
                "controller.autoscaling.maxReplicas=2",
            ],
            "controller.autoscaling.minReplicas (5) exceeds",
        ),
        (
            &[
                "--set",
                "controller.metrics.enabled=false",
                "--set",
                "controller.metrics.serviceMonitor.enabled=true",
            ],
            "controller.metrics.serviceMonitor.enabled needs",
        ),
        (&["--set", "serviceAccount.create=false"], "serviceAccount.name is required"),
        (
            &["--set", "controller.service.enabled=false"],
            "controller.publishService.enabled publishes the chart's Service",
        ),
    ];
    for (args, want) in cases {
        match render("1.30.0", &None, args) {
            Ok(_) => panic!("helm template {args:?} succeeded; expected an error containing {want:?}"),
            Err(e) => {
                assert!(e.contains(want), "helm template {args:?}: error does not contain {want:?}:\n{e}")
            }
        }
    }
}

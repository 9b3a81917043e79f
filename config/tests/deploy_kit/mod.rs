//! Shared pieces of the tests that check `deploy/`: finding and parsing its YAML, the pinned
//! tools of `deploy/tools/install.sh`, and the pod security posture every way of installing
//! weir (kustomize base, Helm chart) must keep.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml_ng::Value;

pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Files under `dir` (recursively) whose name ends with one of `exts`, sorted.
pub fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if exts.iter().any(|x| path.to_string_lossy().ends_with(x)) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The documents of a multi-document YAML text; comment-only documents are left out.
pub fn yaml_docs_str(text: &str, origin: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(v) => docs.push(v),
            Err(e) => return Err(format!("{origin} (document {i}): {e}")),
        }
    }
    Ok(docs)
}

pub fn yaml_docs(path: &Path) -> Result<Vec<Value>, String> {
    yaml_docs_str(&read(path), &path.display().to_string())
}

/// Where `deploy/tools/install.sh` put the pinned tools (HELM, KUBECONFORM, ...). Runs it,
/// which builds or fetches whatever is not cached yet: a missing tool is installed, never
/// a reason to skip a check.
pub fn tools() -> BTreeMap<String, PathBuf> {
    let out = Command::new("bash")
        .arg(deploy_dir().join("tools/install.sh"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run deploy/tools/install.sh: {e}"));
    assert!(
        out.status.success(),
        "deploy/tools/install.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let paths: BTreeMap<String, PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
        .collect();
    for key in ["HELM", "KUBECONFORM", "KUBERNETES_SCHEMAS", "ARGO_ROLLOUTS_CRDS", "PROMETHEUS_OPERATOR_CRDS"]
    {
        let path = paths.get(key).unwrap_or_else(|| panic!("install.sh printed no {key}: {paths:?}"));
        assert!(path.exists(), "{key}={} does not exist", path.display());
    }
    paths
}

/// The weir pod's security posture, wherever its spec comes from (`place` names it in
/// failures): non-root, seccomp, both containers locked down, the admin API on loopback
/// and never declared as a port, and a grace period that covers preStop + the drain.
pub fn assert_pod_locked_down(pod: &Value, place: &str) {
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{place}");
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"), "{place}");
    let containers = pod["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 2, "{place}: weir and weir-controller");
    for c in containers {
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false), "{place}: {name}");
        assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{place}: {name}");
        assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"), "{place}: {name}");
        assert!(sc["capabilities"]["add"].is_null(), "{place}: {name} adds capabilities");
        for port in c["ports"].as_sequence().into_iter().flatten() {
            assert_ne!(
                port["containerPort"].as_i64(),
                Some(10255),
                "{place}: {name} declares the admin port"
            );
        }
    }
    let weir = containers.iter().find(|c| c["name"] == "weir").expect("the weir container");
    let args: Vec<&str> =
        weir["args"].as_sequence().expect("args").iter().filter_map(Value::as_str).collect();
    // The admin API only on the Unix socket (mode 0600) of a volume the two containers share.
    let admin: Vec<&&str> = args.iter().filter(|a| a.starts_with("--admin-")).collect();
    assert_eq!(
        admin,
        [&"--admin-socket=/run/weir/admin.sock"],
        "{place}: the admin API must be on the pod's Unix socket only: {args:?}"
    );
    let controller = containers.iter().find(|c| c["name"] == "weir-controller").expect("the controller");
    let pushes_to: Vec<&str> = controller["args"]
        .as_sequence()
        .expect("controller args")
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| a.starts_with("--proxy-admin"))
        .collect();
    assert_eq!(pushes_to, ["--proxy-admin=unix:/run/weir/admin.sock"], "{place}");
    for c in [weir, controller] {
        let mounted = c["volumeMounts"].as_sequence().into_iter().flatten().any(|m| {
            m["name"].as_str() == Some("admin-socket") && m["mountPath"].as_str() == Some("/run/weir")
        });
        assert!(
            mounted,
            "{place}: {} mounts the admin-socket volume at /run/weir",
            c["name"].as_str().unwrap_or("?")
        );
    }
    let volume = pod["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|v| v["name"].as_str() == Some("admin-socket"))
        .unwrap_or_else(|| panic!("{place}: no admin-socket volume"));
    assert!(volume["emptyDir"].is_mapping(), "{place}: the admin-socket volume is an emptyDir");
    assert!(!args.contains(&"--no-admin"), "{place}: the controller needs the admin API");
    let drain: i64 = args
        .iter()
        .find_map(|a| a.strip_prefix("--drain-timeout="))
        .and_then(|d| d.strip_suffix('s'))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("{place}: no --drain-timeout=<n>s in {args:?}"));
    let grace = pod["terminationGracePeriodSeconds"].as_i64().expect("grace period");
    let sleep = weir["lifecycle"]["preStop"]["sleep"]["seconds"].as_i64().unwrap_or(0);
    assert!(
        grace > sleep + drain,
        "{place}: terminationGracePeriodSeconds {grace} <= preStop {sleep} + drain {drain}"
    );
}

/// No Service port names the admin API.
pub fn assert_service_hides_admin(service: &Value, place: &str) {
    for port in service["spec"]["ports"].as_sequence().into_iter().flatten() {
        assert_ne!(port["targetPort"].as_i64(), Some(10255), "{place}");
        assert_ne!(port["port"].as_i64(), Some(10255), "{place}");
    }
}

//! The analyzer's input: Ingresses from YAML files and directories, or from the cluster.
//!
//! A file may hold many documents (`---`), and a document may be a `List` or `IngressList`
//! with `items` (what `kubectl get ingress -A -o yaml` prints). Documents of other kinds
//! (Deployments, Services, … in a manifests directory) are skipped; empty documents too.

use std::path::{Path, PathBuf};

use k8s_openapi::api::networking::v1::Ingress;
use serde_yaml_ng::Value;

use crate::error::Error;

/// An Ingress and where it came from (a file path, or `cluster`).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub source: String,
    pub ingress: Ingress,
}

/// Read every path: a directory is walked (sorted, recursively) for `.yaml`, `.yml` and
/// `.json` files; a file is read whatever its name; `-` is standard input (`kubectl get
/// ingress -A -o yaml | weir-controller analyze -`). Unreadable inputs are returned as
/// errors next to what could be read, so one broken file does not hide the others.
pub fn read_paths(paths: &[PathBuf]) -> (Vec<Loaded>, Vec<Error>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.as_os_str() != "-" && p.is_dir() {
            walk(p, &mut files, &mut errors);
        } else {
            files.push(p.clone());
        }
    }
    let mut loaded = Vec::new();
    for path in files {
        let stdin = path.as_os_str() == "-";
        let read =
            if stdin { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(&path) };
        let source = if stdin { "stdin".to_string() } else { path.display().to_string() };
        let text = match read {
            Ok(t) => t,
            Err(source) => {
                errors.push(Error::AnalyzeRead { path, source });
                continue;
            }
        };
        match parse_documents(&text) {
            Ok(ingresses) => {
                loaded.extend(ingresses.into_iter().map(|ingress| Loaded { source: source.clone(), ingress }))
            }
            Err(source) => errors.push(Error::AnalyzeParse { path, source }),
        }
    }
    (loaded, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<Error>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => return errors.push(Error::AnalyzeRead { path: dir.to_path_buf(), source }),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, files, errors);
        } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            files.push(p);
        }
    }
}

/// The Ingresses in a YAML (or JSON) text of one or more documents.
pub fn parse_documents(text: &str) -> Result<Vec<Ingress>, serde_yaml_ng::Error> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = <Value as serde::Deserialize>::deserialize(doc)?;
        collect(value, &mut out)?;
    }
    Ok(out)
}

fn collect(value: Value, out: &mut Vec<Ingress>) -> Result<(), serde_yaml_ng::Error> {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    match kind.as_str() {
        "Ingress" => out.push(serde_yaml_ng::from_value(value)?),
        "List" | "IngressList" => {
            if let Some(Value::Sequence(items)) = value.get("items") {
                for item in items.clone() {
                    collect(item, out)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Every Ingress in the cluster (or one namespace). The caller makes the client as the
/// controller does (`kube::Client::try_default`: kubeconfig, or in-cluster).
pub async fn from_cluster(client: kube::Client, namespace: Option<&str>) -> Result<Vec<Loaded>, Error> {
    let api: kube::Api<Ingress> = match namespace {
        Some(ns) => kube::Api::namespaced(client, ns),
        None => kube::Api::all(client),
    };
    let list = api.list(&kube::api::ListParams::default()).await?;
    Ok(list.items.into_iter().map(|ingress| Loaded { source: "cluster".into(), ingress }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_multi_document_files_yield_their_ingresses_and_skip_other_kinds() {
        let text = "\
apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: a, namespace: x}
- apiVersion: v1
  kind: Service
  metadata: {name: s}
---
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: b}
";
        let names: Vec<_> = parse_documents(text)
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.metadata.name.unwrap_or_default())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn a_document_that_is_not_yaml_is_an_error() {
        assert!(parse_documents("kind: Ingress\nmetadata: {name: [}\n").is_err());
        assert!(parse_documents("kind: Ingress\nmetadata: {annotations: {a: [1]}}\n").is_err());
    }
}

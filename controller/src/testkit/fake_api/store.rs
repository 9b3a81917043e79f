//! The fake API server's memory: stored objects, their change history and the watches'
//! broadcast, shared by the server's front (`FakeApi`) and its HTTP handlers.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

/// `group/version/plural`, e.g. `networking.k8s.io/v1/ingresses` or `/v1/services`.
pub type ResourceKey = String;

/// One stored change, as a watch sends it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub rv: u64,
    pub resource: ResourceKey,
    pub namespace: String,
    pub type_: &'static str,
    pub object: Value,
}

#[derive(Default)]
pub(crate) struct Db {
    pub rv: u64,
    /// (resource, namespace or "", name) → object.
    pub objects: BTreeMap<(ResourceKey, String, String), Value>,
    pub history: Vec<Change>,
    /// Watches from a resourceVersion below this get 410 Gone.
    pub compacted_below: u64,
    /// (method, path?query) of every request, in order.
    pub requests: Vec<(String, String)>,
    pub gone_sent: usize,
    /// Resources that answer 404, like a CRD that is not installed.
    pub missing: std::collections::BTreeSet<ResourceKey>,
    /// Server-side apply of `status.replicas` (a list-map keyed by `name`): the field manager
    /// owning each entry, by (resource, namespace, object name, entry name).
    pub replica_owners: BTreeMap<(ResourceKey, String, String, String), String>,
}

pub(crate) struct Inner {
    pub db: Mutex<Db>,
    pub changes: broadcast::Sender<Change>,
    /// Bumped to end every open watch stream.
    pub close_watches: watch::Sender<u64>,
}

impl Inner {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Store a write under a new resourceVersion and tell the watches. Holding the lock
    /// while broadcasting keeps history and live events in one order.
    pub fn write(&self, resource: &str, namespace: &str, type_: &'static str, mut object: Value) -> Value {
        let mut db = self.lock();
        db.rv += 1;
        let rv = db.rv;
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            meta.entry("uid").or_insert_with(|| json!(format!("uid-{rv}")));
            meta.entry("creationTimestamp").or_insert_with(|| json!("2025-01-01T00:00:00Z"));
            if !namespace.is_empty() {
                meta.insert("namespace".into(), json!(namespace));
            }
        }
        let key = (resource.to_string(), namespace.to_string(), name);
        if type_ == "DELETED" {
            db.objects.remove(&key);
        } else {
            db.objects.insert(key, object.clone());
        }
        let change = Change {
            rv,
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            type_,
            object: object.clone(),
        };
        db.history.push(change.clone());
        let _ = self.changes.send(change);
        object
    }
}

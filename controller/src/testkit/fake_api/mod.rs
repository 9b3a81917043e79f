//! An in-process fake Kubernetes API server on 127.0.0.1, answering from memory.
//!
//! It behaves like the real one for what the controller does: LIST with a list
//! `resourceVersion`; WATCH from a resourceVersion as newline-delimited JSON events
//! (ADDED, MODIFIED, DELETED, BOOKMARK with `allowWatchBookmarks`); a `410 Gone` ERROR event
//! for a resourceVersion older than the compacted history; GET/POST/PUT/PATCH/DELETE for
//! status, Events and Leases; server-side apply (`application/apply-patch+yaml`) of the
//! list-map `status.replicas` only, entries owned per field manager (WeirRoute status). One global, monotonically increasing resourceVersion across
//! all objects, like etcd. Tests change objects mid-run with [`FakeApi::apply`] and
//! [`FakeApi::delete`], and force relists with [`FakeApi::expire_watches`].

mod http;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use store::ResourceKey;
pub(crate) use store::{Db, Inner};

/// The running fake API server. Dropping it stops it and every connection.
pub struct FakeApi {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

fn resource_key<K: Resource<DynamicType = ()>>() -> ResourceKey {
    format!("{}/{}/{}", K::group(&()), K::version(&()), K::plural(&()))
}

impl FakeApi {
    pub async fn start() -> std::io::Result<FakeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            db: Mutex::new(Db::default()),
            changes: broadcast::channel(4096).0,
            close_watches: watch::channel(0).0,
        });
        let task = tokio::spawn(http::serve(listener, inner.clone()));
        Ok(FakeApi { addr, inner, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client for this server: no auth, default namespace `default`.
    pub fn client(&self) -> Result<kube::Client, kube::Error> {
        let uri = self.url().parse::<::http::Uri>().map_err(|e| kube::Error::Service(Box::new(e)))?;
        kube::Client::try_from(kube::Config::new(uri))
    }

    /// Create or replace an object (ADDED or MODIFIED), keeping its uid and creation time.
    pub fn apply<K: Resource<DynamicType = ()> + Serialize>(&self, obj: &K) -> Value {
        let resource = resource_key::<K>();
        let namespace = obj.meta().namespace.clone().unwrap_or_default();
        let name = obj.meta().name.clone().unwrap_or_default();
        let mut value = serde_json::to_value(obj).unwrap_or(Value::Null);
        let existing = self.inner.lock().objects.get(&(resource.clone(), namespace.clone(), name)).cloned();
        let type_ = match &existing {
            Some(old) => {
                // A custom resource with a status subresource keeps its status when its
                // object is written without one, as the API server does.
                if resource.starts_with("weir.dev/")
                    && value.get("status").is_none()
                    && old.get("status").is_some()
                {
                    value["status"] = old["status"].clone();
                }
                for field in ["uid", "creationTimestamp"] {
                    if value["metadata"].get(field).is_none() {
                        value["metadata"][field] = old["metadata"][field].clone();
                    }
                }
                "MODIFIED"
            }
            None => "ADDED",
        };
        self.inner.write(&resource, &namespace, type_, value)
    }

    /// Delete an object (DELETED). Returns whether it existed.
    pub fn delete<K: Resource<DynamicType = ()>>(&self, namespace: &str, name: &str) -> bool {
        let resource = resource_key::<K>();
        let old = self.inner.lock().objects.get(&(resource.clone(), namespace.into(), name.into())).cloned();
        match old {
            Some(obj) => {
                self.inner.write(&resource, namespace, "DELETED", obj);
                true
            }
            None => false,
        }
    }

    /// The stored object, typed.
    pub fn get<K: Resource<DynamicType = ()> + DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<K> {
        let v =
            self.inner.lock().objects.get(&(resource_key::<K>(), namespace.into(), name.into())).cloned()?;
        serde_json::from_value(v).ok()
    }

    /// Every stored object of a kind, typed.
    pub fn list<K: Resource<DynamicType = ()> + DeserializeOwned>(&self) -> Vec<K> {
        let key = resource_key::<K>();
        let db = self.inner.lock();
        db.objects
            .iter()
            .filter(|((r, _, _), _)| *r == key)
            .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    /// Compact all history up to now and close every watch: the next watch from any
    /// resourceVersion seen so far gets `410 Gone`, so watchers must relist.
    pub fn expire_watches(&self) {
        {
            let mut db = self.inner.lock();
            db.compacted_below = db.rv + 1;
            db.history.clear();
        }
        self.inner.close_watches.send_modify(|g| *g += 1);
    }

    /// Close every open watch stream (as an API server restart or timeout would).
    pub fn close_watches(&self) {
        self.inner.close_watches.send_modify(|g| *g += 1);
    }

    /// How many requests matched `method` and a path containing `needle`.
    pub fn count_requests(&self, method: &str, needle: &str) -> usize {
        self.inner.lock().requests.iter().filter(|(m, p)| m == method && p.contains(needle)).count()
    }

    /// Make a kind's every path answer 404 (`installed: false`), as when its CRD is not
    /// installed, or serve it again.
    pub fn set_installed<K: Resource<DynamicType = ()>>(&self, installed: bool) {
        let key = resource_key::<K>();
        let mut db = self.inner.lock();
        if installed {
            db.missing.remove(&key);
        } else {
            db.missing.insert(key);
        }
    }

    /// How many 410 Gone watch errors were sent.
    pub fn gone_sent(&self) -> usize {
        self.inner.lock().gone_sent
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.lock().rv
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! Reflectors: one watch + cache per kind, and a change signal for the reconcile loop.
//!
//! Each cache is a kube-runtime reflector over a watcher (LIST, then WATCH from the list's
//! resourceVersion; relist on `410 Gone`; backoff on errors). `managedFields` are dropped
//! before caching to save memory. Secrets are watched by field selector, in two caches:
//! `type=kubernetes.io/tls` (certificates) and `type=Opaque` (basic-auth htpasswd files, as
//! ingress-nginx's docs create them); service-account tokens, Helm releases and the other
//! typed Secrets are never cached. WeirRoutes are watched too, and may be absent (no CRD).

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::translate::{CertChecks, ClusterState};
use crate::weirroute::WeirRoute;

/// The reflector caches the translation reads.
#[derive(Clone)]
pub struct Caches {
    pub ingresses: Store<Ingress>,
    pub classes: Store<IngressClass>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub secrets: Store<Secret>,
    /// Opaque Secrets: basic-auth `auth-secret`s.
    pub opaque_secrets: Store<Secret>,
    /// WeirRoutes (weir.dev/v1alpha1). Not part of [`Caches::wait_synced`]: without the CRD
    /// this cache stays empty (its watch retries with backoff) and Ingresses are served as
    /// before; once the CRD is installed the next retry lists them, with no restart.
    pub weir_routes: Store<WeirRoute>,
    /// Certificate verdicts memoized across translations (by Secret uid + resourceVersion).
    pub cert_checks: CertChecks,
}

impl Caches {
    /// The caches' current contents.
    pub fn snapshot(&self) -> ClusterState {
        ClusterState {
            ingresses: self.ingresses.state(),
            classes: self.classes.state(),
            services: self.services.state(),
            slices: self.slices.state(),
            secrets: self.secrets.state().into_iter().chain(self.opaque_secrets.state()).collect(),
            weir_routes: self.weir_routes.state(),
            cert_checks: self.cert_checks.clone(),
        }
    }

    /// Wait until every cache has its first full list. Translating earlier would push a
    /// partial table (say, Ingresses without endpoints) and cause 503s.
    pub async fn wait_synced(&self) -> bool {
        self.ingresses.wait_until_ready().await.is_ok()
            && self.classes.wait_until_ready().await.is_ok()
            && self.services.wait_until_ready().await.is_ok()
            && self.slices.wait_until_ready().await.is_ok()
            && self.secrets.wait_until_ready().await.is_ok()
            && self.opaque_secrets.wait_until_ready().await.is_ok()
    }

    /// (kind, objects cached) for the `watched_objects` gauge.
    pub fn counts(&self) -> [(&'static str, usize); 6] {
        [
            ("Ingress", self.ingresses.len()),
            ("IngressClass", self.classes.len()),
            ("Service", self.services.len()),
            ("EndpointSlice", self.slices.len()),
            ("Secret", self.secrets.len() + self.opaque_secrets.len()),
            ("WeirRoute", self.weir_routes.len()),
        ]
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A reflector for one kind: its cache and the future that keeps it filled.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: Arc<Notify>,
) -> (Store<K>, impl Future<Output = ()> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    reflect_with(api, config, changed, |_| {}, |_| true)
}

/// [`reflect`] with `strip` applied to each object before it is cached, and `matters` deciding
/// whether an added or modified object is a change the translation must see (deletions and
/// relists always are).
fn reflect_with<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: Arc<Notify>,
    strip: fn(&mut K),
    mut matters: impl FnMut(&K) -> bool + Send + 'static,
) -> (Store<K>, impl Future<Output = ()> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(move |o: &mut K| {
            o.meta_mut().managed_fields = None;
            strip(o);
        })
        .reflect(writer);
    let run = async move {
        stream
            .for_each(|event| {
                match event {
                    // Init and InitApply only fill the buffer; the store swaps at InitDone.
                    Ok(watcher::Event::Init) | Ok(watcher::Event::InitApply(_)) => {}
                    Ok(watcher::Event::Apply(o)) if !matters(&o) => {}
                    Ok(_) => changed.notify_one(),
                    Err(error) => tracing::warn!(kind = %K::kind(&()), %error, "watch failed; retrying"),
                }
                std::future::ready(())
            })
            .await
    };
    (reader, run)
}

/// WeirRoutes: their status is written by every weir replica (a heartbeat each 15 s) and read
/// by none, so it is not cached, and an update that leaves uid and generation alone (a status
/// write) does not wake the reconcile loop; a spec change bumps the generation.
fn weir_routes(
    client: &Client,
    namespace: Option<&str>,
    changed: Arc<Notify>,
) -> (Store<WeirRoute>, impl Future<Output = ()> + Send + 'static) {
    let mut seen: HashMap<(String, String), (Option<String>, Option<i64>)> = HashMap::new();
    let matters = move |wr: &WeirRoute| {
        let m = &wr.metadata;
        let key = (m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default());
        let now = (m.uid.clone(), m.generation);
        seen.insert(key, now.clone()) != Some(now)
    };
    reflect_with(api(client, namespace), watcher::Config::default(), changed, |wr| wr.status = None, matters)
}

/// A watch that keeps one cache filled; runs until dropped.
pub type WatchTask = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Start the seven watches; each future runs until dropped.
pub fn start(client: &Client, namespace: Option<&str>, changed: Arc<Notify>) -> (Caches, Vec<WatchTask>) {
    let plain = watcher::Config::default;
    let (ingresses, a) = reflect::<Ingress>(api(client, namespace), plain(), changed.clone());
    let (classes, b) = reflect::<IngressClass>(Api::all(client.clone()), plain(), changed.clone());
    let (services, c) = reflect::<Service>(api(client, namespace), plain(), changed.clone());
    let (slices, d) = reflect::<EndpointSlice>(api(client, namespace), plain(), changed.clone());
    let tls = plain().fields("type=kubernetes.io/tls");
    let (secrets, e) = reflect::<Secret>(api(client, namespace), tls, changed.clone());
    let opaque = plain().fields("type=Opaque");
    let (opaque_secrets, f) = reflect::<Secret>(api(client, namespace), opaque, changed.clone());
    let (weir_routes, g) = weir_routes(client, namespace, changed);
    let caches = Caches {
        ingresses,
        classes,
        services,
        slices,
        secrets,
        opaque_secrets,
        weir_routes,
        cert_checks: CertChecks::default(),
    };
    let tasks: Vec<WatchTask> =
        vec![Box::pin(a), Box::pin(b), Box::pin(c), Box::pin(d), Box::pin(e), Box::pin(f), Box::pin(g)];
    (caches, tasks)
}

//! `status.loadBalancer` of the Ingresses weir serves: where clients reach weir.
//!
//! From `--publish-address` (IPs or host names) or `--publish-service` (that Service's
//! load-balancer ingress, else its external IPs, else its cluster IP). Written by the
//! leader only, and only when it differs, so replicas never fight over it.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

use crate::error::Error;
use crate::translate::IngressRef;

/// Where the addresses written to Ingress status come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Publish {
    /// Leave Ingress status alone.
    #[default]
    Nothing,
    /// `--publish-service namespace/name`.
    Service { namespace: String, name: String },
    /// `--publish-address a,b`: IPs become `ip`, anything else `hostname`.
    Addresses(Vec<String>),
}

fn entry(addr: &str) -> IngressLoadBalancerIngress {
    if addr.parse::<std::net::IpAddr>().is_ok() {
        IngressLoadBalancerIngress { ip: Some(addr.into()), ..Default::default() }
    } else {
        IngressLoadBalancerIngress { hostname: Some(addr.into()), ..Default::default() }
    }
}

/// The addresses to publish, sorted; `None` when there is nothing to publish.
pub async fn addresses(
    client: &Client,
    publish: &Publish,
) -> Result<Option<Vec<IngressLoadBalancerIngress>>, Error> {
    let mut out: Vec<IngressLoadBalancerIngress> = match publish {
        Publish::Nothing => return Ok(None),
        Publish::Addresses(a) => a.iter().map(|a| entry(a)).collect(),
        Publish::Service { namespace, name } => {
            let svc = Api::<Service>::namespaced(client.clone(), namespace).get(name).await?;
            let lb: Vec<_> = svc
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|l| l.ingress)
                .unwrap_or_default()
                .into_iter()
                .map(|i| IngressLoadBalancerIngress { ip: i.ip, hostname: i.hostname, ..Default::default() })
                .collect();
            let spec = svc.spec.unwrap_or_default();
            if !lb.is_empty() {
                lb
            } else if let Some(ext) = spec.external_ips.filter(|e| !e.is_empty()) {
                ext.iter().map(|a| entry(a)).collect()
            } else {
                spec.cluster_ip
                    .iter()
                    .filter(|ip| *ip != "None" && !ip.is_empty())
                    .map(|a| entry(a))
                    .collect()
            }
        }
    };
    out.sort_by(|a, b| (&a.ip, &a.hostname).cmp(&(&b.ip, &b.hostname)));
    out.dedup();
    Ok(Some(out))
}

/// Patch the status of each served Ingress whose load-balancer list differs. Returns how
/// many were patched.
pub async fn sync(
    client: &Client,
    served: &[IngressRef],
    cache: &Store<Ingress>,
    want: &[IngressLoadBalancerIngress],
) -> Result<usize, Error> {
    let mut patched = 0;
    for r in served {
        let Some(ing) = cache.get(&ObjectRef::new(&r.name).within(&r.namespace)) else { continue };
        let have =
            ing.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.as_deref());
        if have.unwrap_or_default() == want {
            continue;
        }
        let patch = serde_json::json!({ "status": { "loadBalancer": { "ingress": want } } });
        Api::<Ingress>::namespaced(client.clone(), &r.namespace)
            .patch_status(&r.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        patched += 1;
    }
    Ok(patched)
}

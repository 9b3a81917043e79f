//! A synthetic cluster of a given size, for the bench and the memory example.

use std::sync::Arc;

use super::fixtures::{argo_canary, endpoint_slice, ingress, service, test_cert, tls_secret_with};
use crate::translate::ClusterState;

/// `ingresses` main Ingresses (each with its own host, Service and TLS Secret holding its
/// own certificate, with a uid and resourceVersion as the API server sets them), the first
/// `canaries` of them with an Argo canary Ingress and canary Service, and `endpoints` ready
/// endpoints spread evenly over all Services' EndpointSlices.
pub fn cluster(ingresses: usize, canaries: usize, endpoints: usize) -> ClusterState {
    let services = ingresses + canaries;
    let mut state = ClusterState::default();
    let mut next_ep = 0usize;
    let mut add_service = |state: &mut ClusterState, name: &str, i: usize| {
        state.services.push(Arc::new(service(name).port("http", 80, "http").build()));
        // Service i gets endpoints [i*E/S, (i+1)*E/S).
        let end = (i + 1) * endpoints / services.max(1);
        let mut slice = endpoint_slice(&format!("{name}-x1"), name).port("http", 8080);
        while next_ep < end {
            let ip = format!("10.{}.{}.{}", next_ep >> 16 & 255, next_ep >> 8 & 255, next_ep & 255);
            slice = if next_ep % 10 == 9 { slice.terminating(&ip) } else { slice.ready(&ip) };
            next_ep += 1;
        }
        state.slices.push(Arc::new(slice.build()));
    };
    for i in 0..ingresses {
        let name = format!("app{i}");
        let host = format!("app{i}.example.com");
        let stable = ingress(&name)
            .created(i as i64)
            .host(&host)
            .path("/", &name, "http")
            .path("/api", &name, "http")
            .tls(&[&host], &format!("{name}-tls"))
            .build();
        add_service(&mut state, &name, i);
        let mut secret = tls_secret_with(&format!("{name}-tls"), &test_cert(&[&host]));
        secret.metadata.uid = Some(format!("uid-{name}-tls"));
        secret.metadata.resource_version = Some("1".into());
        state.secrets.push(Arc::new(secret));
        if i < canaries {
            let canary_svc = format!("{name}-canary");
            let canary = argo_canary(&stable, &format!("{name}-rollout"), &name, &canary_svc)
                .weight((i % 101) as i64)
                .build();
            add_service(&mut state, &canary_svc, ingresses + i);
            state.ingresses.push(Arc::new(canary));
        }
        state.ingresses.push(Arc::new(stable));
    }
    state
}

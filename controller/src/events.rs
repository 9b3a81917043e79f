//! Diagnostics → Kubernetes Events on the Ingress they name (events.k8s.io/v1).
//!
//! Each distinct diagnostic is published once while it persists; when it goes away and
//! comes back, it is published again. Only the leader publishes, so replicas do not
//! repeat each other; a new leader publishes the current set once.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};

use crate::translate::Diagnostic;

pub struct EventSink {
    recorder: Recorder,
    published: BTreeSet<Diagnostic>,
}

impl EventSink {
    pub fn new(client: Client, instance: Option<String>) -> EventSink {
        let reporter = Reporter { controller: "weir-controller".into(), instance };
        EventSink { recorder: Recorder::new(client, reporter), published: BTreeSet::new() }
    }

    /// Forget what was published (on losing leadership), so a later leader term repeats it.
    pub fn forget(&mut self) {
        self.published.clear();
    }

    /// Publish the diagnostics not published yet. A failed publish is retried next time.
    pub async fn publish(&mut self, diagnostics: &[Diagnostic], ingresses: &Store<Ingress>) {
        self.published.retain(|d| diagnostics.contains(d));
        for d in diagnostics {
            if self.published.contains(d) {
                continue;
            }
            let key = ObjectRef::<Ingress>::new(&d.ingress.name).within(&d.ingress.namespace);
            // The Ingress may have gone since the translation; then there is no one to tell.
            let Some(ing) = ingresses.get(&key) else { continue };
            let event = Event {
                type_: EventType::Warning,
                reason: d.reason.as_str().into(),
                note: Some(truncate(&d.message, 1000)),
                action: "Translate".into(),
                secondary: None,
            };
            match self.recorder.publish(&event, &ing.object_ref(&())).await {
                Ok(()) => {
                    self.published.insert(d.clone());
                }
                Err(error) => tracing::warn!(%error, ingress = %d.ingress, "could not publish an event"),
            }
        }
    }
}

/// Event notes are limited to 1 kB.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

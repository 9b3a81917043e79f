//! The WeirRoute resource (`weirroutes.weir.dev/v1alpha1`): the contract between weir's
//! traffic-router plugin for Argo Rollouts, which writes spec, and each weir replica's
//! controller, which writes its own entry of `status.replicas` (plugin/README.md, "The
//! contract: WeirRoute").
//!
//! Only what the controller reads is typed, every field defaulted: the watch must never
//! fail on one odd object (the CRD's schema is the validation; the translation judges the
//! rest and refuses what it cannot express, with a message in the replica's entry).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "weir.dev";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "weir.dev/v1alpha1";
pub const KIND: &str = "WeirRoute";

/// One Rollout's desired traffic state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeirRoute {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RouteSpec,
    /// Read only by tests; the controller writes its own entry by server-side apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteSpec {
    pub stable_service: String,
    pub canary_service: String,
    pub stable_ingresses: Vec<String>,
    pub stable_hash: String,
    pub canary_hash: String,
    pub max_weight: i64,
    pub weight: i64,
    pub additional_destinations: Vec<serde_json::Value>,
    pub header_routes: Vec<HeaderRoute>,
    pub mirror_routes: Vec<MirrorRoute>,
    pub guard: Option<serde_json::Value>,
    /// A client's point, kept in a cookie, decides its side as the weight grows.
    pub sticky_assignment: Option<StickyAssignment>,
}

/// `spec.stickyAssignment`: the point cookie's name (default `weir-canary-point`) and Max-Age.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StickyAssignment {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cookie: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeaderRoute {
    pub name: String,
    pub matches: Vec<HeaderMatch>,
}

/// A mirror route: `percentage` % of the requests that any one of `matches` selects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MirrorRoute {
    pub name: String,
    pub percentage: i64,
    pub matches: Vec<MirrorMatch>,
}

/// Every field that is set must hold; empty strings are unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MirrorMatch {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path_prefix: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeaderMatch {
    pub header: String,
    pub value: StringMatch,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StringMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl kube::Resource for WeirRoute {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        API_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "weirroutes".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// One replica's entry of `status.replicas`, as the contract spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    pub name: String,
    pub observed_generation: i64,
    pub weight: i64,
    /// The acknowledged table version `w-<16 hex>` as the CRD's int64: its 64 bits read as
    /// two's complement, so `format!("w-{:016x}", v as u64)` gives the version back.
    pub table_version: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_destinations: Vec<DestinationWeight>,
    pub guard: GuardStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub heartbeat_time: Time,
}

/// One of `spec.additionalDestinations`: an experiment's Service and its share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Destination {
    pub service_name: String,
    pub pod_template_hash: String,
    pub weight: i64,
}

/// An additional destination's share in force, as a replica reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationWeight {
    pub service_name: String,
    pub weight: i64,
}

/// `spec.guard`: the plugin's guard policy (checked by the translation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GuardPolicy {
    pub error_percent: i64,
    pub window_seconds: i64,
    pub min_requests: i64,
}

/// A replica's guard, as the contract spells it: `Off` (no `spec.guard`), `Armed` or
/// `Tripped` (with when and why), for the canary hash it judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardStatus {
    pub state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub canary_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tripped_at: Option<Time>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl GuardStatus {
    /// No guard asked for.
    pub fn off() -> GuardStatus {
        GuardStatus {
            state: GUARD_OFF.into(),
            canary_hash: String::new(),
            tripped_at: None,
            reason: String::new(),
        }
    }
}

pub const GUARD_OFF: &str = "Off";
pub const GUARD_ARMED: &str = "Armed";
pub const GUARD_TRIPPED: &str = "Tripped";

/// `w-<16 hex>` → the int64 of `tableVersion`; anything else → 0.
pub fn table_version_number(version: &str) -> i64 {
    version.strip_prefix("w-").and_then(|h| u64::from_str_radix(h, 16).ok()).map_or(0, |v| v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_version_round_trips_through_int64() {
        for v in ["w-0000000000000001", "w-ffffffffffffffff", "w-8a3c0d9e11f2b7c4"] {
            let n = table_version_number(v);
            assert_eq!(format!("w-{:016x}", n as u64), v);
        }
        assert_eq!(table_version_number("fnv1a64-12"), 0);
    }

    #[test]
    fn an_odd_object_still_reads() {
        let wr: WeirRoute = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "n", "generation": 3},
            "spec": {"stableService": "s", "weight": 20, "unknownField": true,
                     "headerRoutes": [{"name": "t", "matches": [{"header": "x-canary", "value": {"exact": "true"}}]}]}
        }))
        .expect("reads");
        assert_eq!(wr.spec.weight, 20);
        assert_eq!(wr.spec.max_weight, 0);
        assert_eq!(wr.spec.header_routes[0].matches[0].value.exact.as_deref(), Some("true"));
    }
}

// Wire types of the WeirRoute resource (weirroutes.weir.dev/v1alpha1): the contract between this
// plugin, which writes spec and the status summary, and each weir replica's controller, which
// writes its own entry of status.replicas. manifests/weirroute-crd.yaml is the schema of these.
package router

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Resource is the WeirRoute resource the plugin reads and writes.
var Resource = schema.GroupVersionResource{Group: "weir.dev", Version: "v1alpha1", Resource: "weirroutes"}

const (
	// APIVersion and Kind of a WeirRoute object.
	APIVersion = "weir.dev/v1alpha1"
	Kind       = "WeirRoute"
	// FieldManager names the plugin's writes in managedFields.
	FieldManager = "weir-rollouts-plugin"
)

// WeirRoute is one Rollout's desired traffic state; it has the Rollout's name and namespace and
// an ownerReference to it, so it goes when the Rollout goes.
type WeirRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RouteSpec   `json:"spec"`
	Status            RouteStatus `json:"status,omitempty"`
}

// RouteSpec is written only by the plugin. Every change bumps metadata.generation, which is what
// a replica's status entry says it applied.
type RouteSpec struct {
	// StableService and CanaryService are Service names in the WeirRoute's namespace.
	StableService string `json:"stableService"`
	CanaryService string `json:"canaryService"`
	// StableIngresses name the Ingresses (same namespace) whose rules that send to StableService
	// get the canary split: the controller applies it to those rules and to no other.
	StableIngresses []string `json:"stableIngresses"`
	// StableHash and CanaryHash are the rollouts-pod-template-hash values Argo last gave
	// (UpdateHash); a changed CanaryHash resets the replicas' canary guards.
	StableHash string `json:"stableHash,omitempty"`
	CanaryHash string `json:"canaryHash,omitempty"`
	// MaxWeight is the denominator of every weight (Rollout maxTrafficWeight, default 100).
	MaxWeight int32 `json:"maxWeight"`
	// Weight is the canary's share of weighted traffic, 0..MaxWeight.
	Weight int32 `json:"weight"`
	// AdditionalDestinations are experiment Services with their own shares; the stable share is
	// MaxWeight - Weight - the sum of these.
	AdditionalDestinations []Destination `json:"additionalDestinations,omitempty"`
	// HeaderRoutes send every matching request to the canary, before the weighted split; listed
	// in managedRoutes order, the first that matches wins.
	HeaderRoutes []HeaderRoute `json:"headerRoutes,omitempty"`
	// MirrorRoutes copy a share of matching requests to the canary (response discarded); listed in
	// managedRoutes order.
	MirrorRoutes []MirrorRoute `json:"mirrorRoutes,omitempty"`
	// Guard, when set, arms each replica's local canary guard for the canary's weighted traffic.
	Guard *GuardPolicy `json:"guard,omitempty"`
	// StickyAssignment, when set, keeps each client's side while the weight grows: a client's
	// point, drawn once and kept in a cookie, decides it instead of a fresh draw per request.
	StickyAssignment *StickyAssignment `json:"stickyAssignment,omitempty"`
}

// StickyAssignment names the cookie that keeps a client's point (default weir-canary-point)
// and its Max-Age (0: a session cookie).
type StickyAssignment struct {
	Cookie        string `json:"cookie,omitempty"`
	MaxAgeSeconds int64  `json:"maxAgeSeconds,omitempty"`
}

// Destination is one additional (experiment) backend of the weighted split.
type Destination struct {
	ServiceName     string `json:"serviceName"`
	PodTemplateHash string `json:"podTemplateHash,omitempty"`
	Weight          int32  `json:"weight"`
}

// HeaderRoute matches when every one of Matches matches (AND).
type HeaderRoute struct {
	Name    string        `json:"name"`
	Matches []HeaderMatch `json:"matches"`
}

// HeaderMatch is one request header compared with a StringMatch. Header is lower-case.
type HeaderMatch struct {
	Header string      `json:"header"`
	Value  StringMatch `json:"value"`
}

// StringMatch has exactly one of its fields set. Regex is RE2 syntax matched against the whole
// value (anchored at both ends, as Envoy's safe_regex and so Istio do); note that ingress-nginx's
// canary-by-header-pattern is unanchored, so "beta" there is ".*beta.*" here.
type StringMatch struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Regex  string `json:"regex,omitempty"`
}

// MirrorRoute copies Percentage percent of the requests that match any one of Matches (OR).
type MirrorRoute struct {
	Name       string        `json:"name"`
	Percentage int32         `json:"percentage"`
	Matches    []MirrorMatch `json:"matches"`
}

// MirrorMatch matches when every field that is set matches (AND); an empty one matches all.
type MirrorMatch struct {
	// Method is an exact, upper-case HTTP method.
	Method string `json:"method,omitempty"`
	// PathPrefix is a prefix of the request path.
	PathPrefix string `json:"pathPrefix,omitempty"`
	// Headers, sorted by header name.
	Headers []HeaderMatch `json:"headers,omitempty"`
}

// GuardPolicy: a replica stops the canary's weighted traffic when, over the last WindowSeconds,
// the canary answered at least MinRequests requests and more than ErrorPercent percent of them
// were backend faults (5xx from the canary or no answer), never client faults.
type GuardPolicy struct {
	ErrorPercent  int32 `json:"errorPercent"`
	WindowSeconds int32 `json:"windowSeconds"`
	MinRequests   int32 `json:"minRequests"`
}

// RouteStatus holds one entry per weir replica (written by that replica's controller with
// server-side apply, field manager "weir-controller/<pod>") and a summary the plugin writes
// (merge patch) when VerifyWeight runs, for `kubectl get weirroutes`.
type RouteStatus struct {
	Replicas []ReplicaStatus `json:"replicas,omitempty"`

	// Summary, written by the plugin: the generation it judged, "applied/expected" replicas,
	// whether the requested weight is verified, the guard in one word, and why not verified.
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	Applied            string `json:"applied,omitempty"`
	Verified           bool   `json:"verified"`
	Guard              string `json:"guard,omitempty"`
	Message            string `json:"message,omitempty"`
}

// ReplicaStatus is what one weir replica's proxy acknowledged. The list is a map keyed by Name.
type ReplicaStatus struct {
	// Name is the weir pod's name.
	Name string `json:"name"`
	// ObservedGeneration is the WeirRoute generation in the table the proxy acknowledged.
	ObservedGeneration int64 `json:"observedGeneration"`
	// Weight and AdditionalDestinations are the shares in force at that generation.
	Weight                 int32               `json:"weight"`
	AdditionalDestinations []DestinationWeight `json:"additionalDestinations,omitempty"`
	// TableVersion is the route-table version the proxy acknowledged over its admin API.
	TableVersion int64 `json:"tableVersion"`
	// Guard is the replica's local canary guard.
	Guard GuardStatus `json:"guard"`
	// Message says why the replica could not apply ObservedGeneration+1 (it keeps the old
	// table); empty when it applied the current generation.
	Message string `json:"message,omitempty"`
	// HeartbeatTime is refreshed at least every 20 s while the controller runs.
	HeartbeatTime metav1.Time `json:"heartbeatTime"`
}

// DestinationWeight is the share in force for one additional destination.
type DestinationWeight struct {
	ServiceName string `json:"serviceName"`
	Weight      int32  `json:"weight"`
}

// Guard states a replica reports.
const (
	GuardOff     = "Off"     // spec.guard is unset
	GuardArmed   = "Armed"   // watching the canary; weighted traffic flows
	GuardTripped = "Tripped" // weighted traffic to the canary stopped; header routes still reach it
)

// GuardStatus is a replica's guard. A trip holds until the canary hash changes.
type GuardStatus struct {
	State string `json:"state"`
	// CanaryHash is the hash the guard judged; a trip for an older hash is void.
	CanaryHash string `json:"canaryHash,omitempty"`
	// TrippedAt and Reason are set when State is Tripped (e.g. "5xx 41 of 80 in 10s").
	TrippedAt *metav1.Time `json:"trippedAt,omitempty"`
	Reason    string       `json:"reason,omitempty"`
}

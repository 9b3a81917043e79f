// The plugin's per-Rollout configuration, read from
// spec.strategy.canary.trafficRouting.plugins["weir-proxy/weir"] and checked field by field.
package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

// PluginName is the name the argo-rollouts-config ConfigMap and the Rollout give the plugin. Argo
// Rollouts requires <namespace>/<name> with ^[a-zA-Z0-9-]+ as the namespace (no dot: it refuses
// its whole config, and exits, on "weir.dev/weir").
const PluginName = "weir-proxy/weir"

// defaultHeartbeatTimeout is how old a replica's heartbeat may be before VerifyWeight distrusts
// its entry; controllers refresh every 20 s, so two missed refreshes and some slack.
const defaultHeartbeatTimeout = 60 * time.Second

// Config is the plugin config of one Rollout.
type Config struct {
	// StableIngresses (from stableIngress or stableIngresses) in the Rollout's namespace.
	StableIngresses []string
	// Proxy is the weir Deployment whose ready pods must all report before a weight is verified.
	ProxyNamespace, ProxyDeployment string
	HeartbeatTimeout                time.Duration
	Guard                           *GuardPolicy
	StickyAssignment                *StickyAssignment
}

type configWire struct {
	StableIngress   string   `json:"stableIngress"`
	StableIngresses []string `json:"stableIngresses"`
	Proxy           struct {
		Namespace  string `json:"namespace"`
		Deployment string `json:"deployment"`
	} `json:"proxy"`
	HeartbeatTimeoutSeconds *int32            `json:"heartbeatTimeoutSeconds"`
	Guard                   *GuardPolicy      `json:"guard"`
	StickyAssignment        *StickyAssignment `json:"stickyAssignment"`
}

// ConfigError names the field of the plugin config (or of the Rollout) that is wrong and why.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("weir plugin: %s: %s", e.Field, e.Reason)
}

// ReadConfig parses and checks the Rollout's weir plugin config. Unknown fields are errors, so a
// misspelt key is not silently ignored.
func ReadConfig(ro *v1alpha1.Rollout) (*Config, error) {
	canary := ro.Spec.Strategy.Canary
	if canary == nil || canary.TrafficRouting == nil {
		return nil, &ConfigError{"spec.strategy.canary.trafficRouting", "required"}
	}
	raw, ok := canary.TrafficRouting.Plugins[PluginName]
	field := fmt.Sprintf("spec.strategy.canary.trafficRouting.plugins[%q]", PluginName)
	if !ok {
		return nil, &ConfigError{field, "missing"}
	}
	var w configWire
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, &ConfigError{field, fmt.Sprintf("not a valid weir config: %v", err)}
	}
	cfg := &Config{HeartbeatTimeout: defaultHeartbeatTimeout, Guard: w.Guard, StickyAssignment: w.StickyAssignment}
	switch {
	case w.StableIngress != "" && len(w.StableIngresses) > 0:
		return nil, &ConfigError{field + ".stableIngress", "set either stableIngress or stableIngresses, not both"}
	case w.StableIngress != "":
		cfg.StableIngresses = []string{w.StableIngress}
	case len(w.StableIngresses) > 0:
		cfg.StableIngresses = w.StableIngresses
	default:
		return nil, &ConfigError{field + ".stableIngress", "required (the Ingress whose rules get the canary split)"}
	}
	for i, name := range cfg.StableIngresses {
		if name == "" {
			return nil, &ConfigError{fmt.Sprintf("%s.stableIngresses[%d]", field, i), "empty name"}
		}
	}
	cfg.ProxyNamespace, cfg.ProxyDeployment = w.Proxy.Namespace, w.Proxy.Deployment
	if cfg.ProxyNamespace == "" {
		return nil, &ConfigError{field + ".proxy.namespace", "required (the weir Deployment's namespace)"}
	}
	if cfg.ProxyDeployment == "" {
		return nil, &ConfigError{field + ".proxy.deployment", "required (the weir Deployment whose replicas must apply each weight)"}
	}
	if s := w.HeartbeatTimeoutSeconds; s != nil {
		if *s < 30 {
			return nil, &ConfigError{field + ".heartbeatTimeoutSeconds", fmt.Sprintf("%d is under 30 (controllers refresh every 20 s)", *s)}
		}
		cfg.HeartbeatTimeout = time.Duration(*s) * time.Second
	}
	if g := cfg.Guard; g != nil {
		if g.ErrorPercent < 1 || g.ErrorPercent > 100 {
			return nil, &ConfigError{field + ".guard.errorPercent", fmt.Sprintf("%d is not within 1..100", g.ErrorPercent)}
		}
		if g.WindowSeconds < 1 || g.WindowSeconds > 600 {
			return nil, &ConfigError{field + ".guard.windowSeconds", fmt.Sprintf("%d is not within 1..600", g.WindowSeconds)}
		}
		if g.MinRequests < 1 {
			return nil, &ConfigError{field + ".guard.minRequests", fmt.Sprintf("%d is under 1 (the guard must never judge a canary with no requests)", g.MinRequests)}
		}
	}
	if sa := cfg.StickyAssignment; sa != nil {
		if sa.Cookie != "" && !cookieName(sa.Cookie) {
			return nil, &ConfigError{field + ".stickyAssignment.cookie", fmt.Sprintf("%q is not a cookie name (letters, digits and !#$%%&'*+-.^_`|~)", sa.Cookie)}
		}
		if sa.MaxAgeSeconds < 0 {
			return nil, &ConfigError{field + ".stickyAssignment.maxAgeSeconds", fmt.Sprintf("%d is negative", sa.MaxAgeSeconds)}
		}
	}
	if canary.StableService == "" {
		return nil, &ConfigError{"spec.strategy.canary.stableService", "required by the weir plugin"}
	}
	if canary.CanaryService == "" {
		return nil, &ConfigError{"spec.strategy.canary.canaryService", "required by the weir plugin"}
	}
	return cfg, nil
}

// maxWeight is the Rollout's weight denominator.
func maxWeight(ro *v1alpha1.Rollout) int32 {
	if tr := ro.Spec.Strategy.Canary.TrafficRouting; tr != nil && tr.MaxTrafficWeight != nil {
		return *tr.MaxTrafficWeight
	}
	return 100
}

// cookieName reports whether s is an RFC 6265 cookie name (an HTTP token).
func cookieName(s string) bool {
	for _, c := range s {
		ok := c < 128 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c))
		if !ok {
			return false
		}
	}
	return s != ""
}

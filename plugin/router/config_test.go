// Tests of the plugin config: every malformed config is refused with the field that is wrong.
package router

import (
	"strings"
	"testing"
	"time"
)

func TestReadConfigRefusesBadConfigNamingTheField(t *testing.T) {
	cases := []struct {
		name, raw, field string
	}{
		{"not json", `{"stableIngress":`, `plugins["weir-proxy/weir"]`},
		{"misspelt key", `{"stableIngres":"shop","proxy":{"namespace":"weir","deployment":"weir"}}`, `unknown field "stableIngres"`},
		{"no ingress", `{"proxy":{"namespace":"weir","deployment":"weir"}}`, ".stableIngress: required"},
		{"both ingress forms", `{"stableIngress":"a","stableIngresses":["b"],"proxy":{"namespace":"weir","deployment":"weir"}}`, "not both"},
		{"empty ingress in list", `{"stableIngresses":["a",""],"proxy":{"namespace":"weir","deployment":"weir"}}`, ".stableIngresses[1]: empty name"},
		{"no proxy namespace", `{"stableIngress":"shop","proxy":{"deployment":"weir"}}`, ".proxy.namespace: required"},
		{"no proxy deployment", `{"stableIngress":"shop","proxy":{"namespace":"weir"}}`, ".proxy.deployment: required"},
		{"short heartbeat", `{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"},"heartbeatTimeoutSeconds":5}`, ".heartbeatTimeoutSeconds: 5 is under 30"},
		{"guard percent over 100", `{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"},"guard":{"errorPercent":150,"windowSeconds":10,"minRequests":20}}`, ".guard.errorPercent: 150"},
		{"guard no window", `{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"},"guard":{"errorPercent":10,"minRequests":20}}`, ".guard.windowSeconds: 0"},
		{"guard no minimum", `{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"},"guard":{"errorPercent":10,"windowSeconds":10}}`, ".guard.minRequests: 0"},
		{"sticky cookie not a name", `{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"},"stickyAssignment":{"cookie":"a b"}}`, ".stickyAssignment.cookie: \"a b\" is not a cookie name"},
		{"sticky negative max age", `{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"},"stickyAssignment":{"maxAgeSeconds":-1}}`, ".stickyAssignment.maxAgeSeconds: -1 is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadConfig(rollout().withConfig(tc.raw).ro)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error = %v, want one containing %q", err, tc.field)
			}
		})
	}
}

func TestReadConfigNeedsBothServices(t *testing.T) {
	ro := rollout().ro
	ro.Spec.Strategy.Canary.CanaryService = ""
	_, err := ReadConfig(ro)
	if err == nil || !strings.Contains(err.Error(), "spec.strategy.canary.canaryService") {
		t.Fatalf("error = %v, want canaryService named", err)
	}
}

func TestReadConfigReadsEveryField(t *testing.T) {
	cfg, err := ReadConfig(rollout().withConfig(`{"stableIngresses":["a","b"],"proxy":{"namespace":"edge","deployment":"weir-public"},
		"heartbeatTimeoutSeconds":90,"guard":{"errorPercent":20,"windowSeconds":10,"minRequests":50},
		"stickyAssignment":{"cookie":"shop-point","maxAgeSeconds":86400}}`).ro)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.StableIngresses, ",") != "a,b" || cfg.ProxyNamespace != "edge" || cfg.ProxyDeployment != "weir-public" ||
		cfg.HeartbeatTimeout != 90*time.Second || cfg.Guard == nil || *cfg.Guard != (GuardPolicy{20, 10, 50}) ||
		cfg.StickyAssignment == nil || *cfg.StickyAssignment != (StickyAssignment{"shop-point", 86400}) {
		t.Fatalf("config = %+v (guard %+v)", cfg, cfg.Guard)
	}
}

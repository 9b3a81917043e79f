// Tests of each RPC against fake API clients: what it writes, that a repeated call writes
// nothing, route order and removal, and errors that reach Argo.
package router

import (
	"strings"
	"testing"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/plugin/types"
)

func header(name, value string) *v1alpha1.SetHeaderRoute {
	return &v1alpha1.SetHeaderRoute{Name: name, Match: []v1alpha1.HeaderRoutingMatch{{HeaderName: "X-Canary", HeaderValue: &v1alpha1.StringMatch{Exact: value}}}}
}

func mirror(name string, pct int32) *v1alpha1.SetMirrorRoute {
	return &v1alpha1.SetMirrorRoute{Name: name, Percentage: &pct, Match: []v1alpha1.RouteMatch{{Method: &v1alpha1.StringMatch{Exact: "GET"}, Path: &v1alpha1.StringMatch{Prefix: "/api"}}}}
}

func mustOK(t *testing.T, what string, err interface {
	HasError() bool
	Error() string
}) {
	t.Helper()
	if err.HasError() {
		t.Fatalf("%s: %s", what, err.Error())
	}
}

func TestSetWeightCreatesTheWeirRouteOwnedByTheRolloutThenWritesNothingTwice(t *testing.T) {
	c := newCluster(t)
	ro := rollout().ro
	mustOK(t, "SetWeight", c.r.SetWeight(ro, 20, nil))
	if n := c.writes(); n != 1 {
		t.Fatalf("first SetWeight made %d writes, want 1 (create)", n)
	}
	wr := c.route(t)
	if wr == nil {
		t.Fatal("no weirroute created")
	}
	owner := wr.OwnerReferences
	if len(owner) != 1 || owner[0].Kind != "Rollout" || owner[0].Name != "shop" || owner[0].UID != "uid-shop" || !*owner[0].Controller {
		t.Fatalf("owner references = %+v", owner)
	}
	s := wr.Spec
	if s.Weight != 20 || s.MaxWeight != 100 || s.StableService != "shop-stable" || s.CanaryService != "shop-canary" || strings.Join(s.StableIngresses, ",") != "shop" {
		t.Fatalf("spec = %+v", s)
	}
	for i := 0; i < 3; i++ {
		mustOK(t, "SetWeight again", c.r.SetWeight(ro, 20, nil))
		mustOK(t, "UpdateHash", c.r.UpdateHash(ro, "", "", nil))
		mustOK(t, "RemoveManagedRoutes", c.r.RemoveManagedRoutes(ro))
	}
	if n := c.writes(); n != 0 {
		t.Fatalf("repeated identical calls made %d writes, want 0", n)
	}
	mustOK(t, "SetWeight 50", c.r.SetWeight(ro, 50, nil))
	if n := c.writes(); n != 1 || c.route(t).Spec.Weight != 50 {
		t.Fatalf("SetWeight 50: %d writes, weight %d; want 1 write, 50", n, c.route(t).Spec.Weight)
	}
}

func TestSetWeightCarriesAdditionalDestinationsAndRefusesTooMuch(t *testing.T) {
	c := newCluster(t)
	ro := rollout().ro
	extra := []v1alpha1.WeightDestination{{ServiceName: "shop-exp", PodTemplateHash: "abc", Weight: 10}}
	mustOK(t, "SetWeight", c.r.SetWeight(ro, 20, extra))
	if d := c.route(t).Spec.AdditionalDestinations; len(d) != 1 || d[0] != (Destination{"shop-exp", "abc", 10}) {
		t.Fatalf("additional destinations = %+v", d)
	}
	cases := []struct {
		name    string
		desired int32
		extra   []v1alpha1.WeightDestination
		field   string
	}{
		{"weight over max", 101, nil, "desiredWeight: 101 is not within 0..100"},
		{"sum over max", 80, []v1alpha1.WeightDestination{{ServiceName: "shop-exp", Weight: 30}}, "add up to 110"},
		{"nameless destination", 20, []v1alpha1.WeightDestination{{Weight: 5}}, "additionalDestinations[0].serviceName: required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.r.SetWeight(ro, tc.desired, tc.extra)
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error = %q, want one containing %q", err.Error(), tc.field)
			}
			if got := c.route(t).Spec.Weight; got != 20 {
				t.Fatalf("a refused SetWeight changed the weight to %d", got)
			}
		})
	}
}

func TestSetWeightCarriesTheStickyAssignment(t *testing.T) {
	c := newCluster(t)
	ro := rollout().withConfig(`{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"},"stickyAssignment":{"cookie":"shop-point"}}`).ro
	mustOK(t, "SetWeight", c.r.SetWeight(ro, 10, nil))
	if sa := c.route(t).Spec.StickyAssignment; sa == nil || *sa != (StickyAssignment{Cookie: "shop-point"}) {
		t.Fatalf("sticky assignment = %+v", sa)
	}
	// Taken out of the plugin config: the next call drops it from the WeirRoute.
	mustOK(t, "SetWeight", c.r.SetWeight(rollout().ro, 25, nil))
	if sa := c.route(t).Spec.StickyAssignment; sa != nil {
		t.Fatalf("sticky assignment = %+v, want none", sa)
	}
}

func TestUpdateHashRecordsTheHashesOnce(t *testing.T) {
	c := newCluster(t)
	ro := rollout().ro
	mustOK(t, "UpdateHash", c.r.UpdateHash(ro, "canary1", "stable1", nil))
	mustOK(t, "UpdateHash again", c.r.UpdateHash(ro, "canary1", "stable1", nil))
	if n := c.writes(); n != 1 {
		t.Fatalf("writes = %d, want 1", n)
	}
	if s := c.route(t).Spec; s.CanaryHash != "canary1" || s.StableHash != "stable1" {
		t.Fatalf("hashes = %q %q", s.CanaryHash, s.StableHash)
	}
}

func TestHeaderAndMirrorRoutesKeepManagedOrderAndAllGoOnRemove(t *testing.T) {
	c := newCluster(t)
	ro := rollout().withManagedRoutes("testers", "mirror-api", "beta").ro
	mustOK(t, "beta", c.r.SetHeaderRoute(ro, header("beta", "beta")))
	mustOK(t, "testers", c.r.SetHeaderRoute(ro, header("testers", "true")))
	mustOK(t, "mirror", c.r.SetMirrorRoute(ro, mirror("mirror-api", 50)))
	s := c.route(t).Spec
	if len(s.HeaderRoutes) != 2 || s.HeaderRoutes[0].Name != "testers" || s.HeaderRoutes[1].Name != "beta" {
		t.Fatalf("header routes = %+v, want testers then beta", s.HeaderRoutes)
	}
	if len(s.MirrorRoutes) != 1 || s.MirrorRoutes[0].Percentage != 50 || s.MirrorRoutes[0].Matches[0].PathPrefix != "/api" {
		t.Fatalf("mirror routes = %+v", s.MirrorRoutes)
	}
	c.writes()
	mustOK(t, "testers again", c.r.SetHeaderRoute(ro, header("testers", "true")))
	mustOK(t, "mirror again", c.r.SetMirrorRoute(ro, mirror("mirror-api", 50)))
	if n := c.writes(); n != 0 {
		t.Fatalf("repeated route steps made %d writes", n)
	}
	mustOK(t, "remove beta", c.r.SetHeaderRoute(ro, &v1alpha1.SetHeaderRoute{Name: "beta"}))
	if hr := c.route(t).Spec.HeaderRoutes; len(hr) != 1 || hr[0].Name != "testers" {
		t.Fatalf("after removing beta: %+v", hr)
	}
	mustOK(t, "RemoveManagedRoutes", c.r.RemoveManagedRoutes(ro))
	s = c.route(t).Spec
	if len(s.HeaderRoutes)+len(s.MirrorRoutes) != 0 {
		t.Fatalf("left behind: %+v %+v", s.HeaderRoutes, s.MirrorRoutes)
	}
}

func TestRouteDroppedFromManagedRoutesStopsSendingToTheCanary(t *testing.T) {
	c := newCluster(t)
	mustOK(t, "testers", c.r.SetHeaderRoute(rollout().withManagedRoutes("testers", "beta").ro, header("testers", "true")))
	mustOK(t, "SetWeight", c.r.SetWeight(rollout().withManagedRoutes("beta").ro, 0, nil))
	if hr := c.route(t).Spec.HeaderRoutes; len(hr) != 0 {
		t.Fatalf("unmanaged route kept: %+v", hr)
	}
}

func TestRemoveManagedRoutesWithoutAWeirRouteCreatesNothing(t *testing.T) {
	c := newCluster(t)
	mustOK(t, "RemoveManagedRoutes", c.r.RemoveManagedRoutes(rollout().ro))
	if c.route(t) != nil || c.writes() != 0 {
		t.Fatal("RemoveManagedRoutes created a weirroute")
	}
}

func TestBadInputReachesArgoAsAnErrorAndWritesNothing(t *testing.T) {
	bad := rollout().withConfig(`{"stableIngress":"shop","proxy":{"namespace":"weir"}}`).ro
	routes := rollout().withManagedRoutes("testers", "mirror-api").ro
	cases := []struct {
		name  string
		call  func(r *Router) string
		field string
	}{
		{"SetWeight bad config", func(r *Router) string { return r.SetWeight(bad, 20, nil).Error() }, "proxy.deployment: required"},
		{"UpdateHash bad config", func(r *Router) string { return r.UpdateHash(bad, "a", "b", nil).Error() }, "proxy.deployment"},
		{"VerifyWeight bad config", func(r *Router) string { _, e := r.VerifyWeight(bad, 20, nil); return e.Error() }, "proxy.deployment"},
		{"empty header name", func(r *Router) string {
			return r.SetHeaderRoute(routes, &v1alpha1.SetHeaderRoute{Name: "testers", Match: []v1alpha1.HeaderRoutingMatch{{HeaderValue: &v1alpha1.StringMatch{Exact: "1"}}}}).Error()
		}, "headerName: empty header name"},
		{"mirror over 100", func(r *Router) string { return r.SetMirrorRoute(routes, mirror("mirror-api", 101)).Error() }, "percentage: 101"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "weir-a")
			if got := tc.call(c.r); !strings.Contains(got, tc.field) {
				t.Fatalf("error = %q, want one containing %q", got, tc.field)
			}
			if n := c.writes(); n != 0 {
				t.Fatalf("refused call made %d writes", n)
			}
		})
	}
}

func TestCallsBeforeInitPluginAreErrorsNotPanics(t *testing.T) {
	r := &Router{}
	if e := r.SetWeight(rollout().ro, 20, nil); !strings.Contains(e.Error(), "InitPlugin") {
		t.Fatalf("SetWeight = %q", e.Error())
	}
	if v, e := r.VerifyWeight(rollout().ro, 20, nil); v != types.NotVerified || !strings.Contains(e.Error(), "InitPlugin") {
		t.Fatalf("VerifyWeight = %v %q", v, e.Error())
	}
}

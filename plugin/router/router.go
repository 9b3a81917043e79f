// Router implements Argo Rollouts' traffic-router plugin interface for weir: each call turns the
// Rollout and its step into the desired WeirRoute spec and writes it only when it changed, so
// the calls Argo repeats on every reconcile and resync write nothing.
package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/plugin/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// callTimeout bounds the API calls of one RPC; Argo's reconcile waits on it.
const callTimeout = 10 * time.Second

// Router is the plugin. Connect (or InitPlugin, through Clients) must give it its clients.
type Router struct {
	// Clients makes the API clients on InitPlugin; nil when Kube and Dynamic are set already.
	Clients func() (kubernetes.Interface, dynamic.Interface, error)
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Now is the clock for heartbeat ages (time.Now when nil).
	Now func() time.Time
}

// InitPlugin makes the API clients once, when Argo starts the plugin.
func (r *Router) InitPlugin() types.RpcError {
	if r.Clients == nil {
		return types.RpcError{}
	}
	kube, dyn, err := r.Clients()
	if err != nil {
		return rpcError(fmt.Errorf("weir plugin: connecting to the API server: %w", err))
	}
	r.Kube, r.Dynamic = kube, dyn
	return types.RpcError{}
}

// Type names the router in Argo's logs.
func (r *Router) Type() string { return "weir" }

// UpdateHash records the canary and stable pod-template hashes (a new canary hash resets the
// replicas' guards) and the additional destinations' hashes.
func (r *Router) UpdateHash(ro *v1alpha1.Rollout, canaryHash, stableHash string, extra []v1alpha1.WeightDestination) types.RpcError {
	return r.change(ro, true, func(spec *RouteSpec, _ []string) error {
		spec.CanaryHash, spec.StableHash = canaryHash, stableHash
		hashes := map[string]string{}
		for _, d := range extra {
			hashes[d.ServiceName] = d.PodTemplateHash
		}
		for i := range spec.AdditionalDestinations {
			if h, ok := hashes[spec.AdditionalDestinations[i].ServiceName]; ok {
				spec.AdditionalDestinations[i].PodTemplateHash = h
			}
		}
		return nil
	})
}

// SetWeight writes the canary weight and the additional destinations. A tripped guard does not
// fail it: an error here would stop Argo's reconcile before the analysis that aborts the rollout;
// VerifyWeight reports the trip instead.
func (r *Router) SetWeight(ro *v1alpha1.Rollout, desired int32, extra []v1alpha1.WeightDestination) types.RpcError {
	return r.change(ro, true, func(spec *RouteSpec, _ []string) error {
		dests, err := destinations(desired, spec.MaxWeight, extra)
		if err != nil {
			return err
		}
		spec.Weight, spec.AdditionalDestinations = desired, dests
		return nil
	})
}

// SetHeaderRoute adds, replaces or (with no matches) removes one managed header route.
func (r *Router) SetHeaderRoute(ro *v1alpha1.Rollout, step *v1alpha1.SetHeaderRoute) types.RpcError {
	return r.change(ro, true, func(spec *RouteSpec, managed []string) error {
		route, err := HeaderRouteFrom(step, managed)
		if err != nil {
			return err
		}
		spec.HeaderRoutes = withHeaderRoute(spec.HeaderRoutes, step.Name, route, managed)
		return nil
	})
}

// SetMirrorRoute adds, replaces or (with no matches) removes one managed mirror route.
func (r *Router) SetMirrorRoute(ro *v1alpha1.Rollout, step *v1alpha1.SetMirrorRoute) types.RpcError {
	return r.change(ro, true, func(spec *RouteSpec, managed []string) error {
		route, err := MirrorRouteFrom(step, managed)
		if err != nil {
			return err
		}
		spec.MirrorRoutes = withMirrorRoute(spec.MirrorRoutes, step.Name, route, managed)
		return nil
	})
}

// RemoveManagedRoutes drops every header and mirror route; it creates nothing when the Rollout
// has no WeirRoute yet.
func (r *Router) RemoveManagedRoutes(ro *v1alpha1.Rollout) types.RpcError {
	return r.change(ro, false, func(spec *RouteSpec, _ []string) error {
		spec.HeaderRoutes, spec.MirrorRoutes = nil, nil
		return nil
	})
}

// VerifyWeight is Verified only when every ready weir replica reports desired in force at the
// current generation (see Judge); it writes the status summary when it changed.
func (r *Router) VerifyWeight(ro *v1alpha1.Rollout, desired int32, extra []v1alpha1.WeightDestination) (types.RpcVerified, types.RpcError) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := r.ready(); err != nil {
		return types.NotVerified, rpcError(err)
	}
	cfg, err := ReadConfig(ro)
	if err != nil {
		return types.NotVerified, rpcError(err)
	}
	wr, err := newStore(r.Dynamic).get(ctx, ro)
	if err != nil {
		return types.NotVerified, rpcError(err)
	}
	if wr == nil {
		return types.NotVerified, types.RpcError{}
	}
	expected, existing, err := expectedReplicas(ctx, r.Kube, cfg.ProxyNamespace, cfg.ProxyDeployment)
	if err != nil {
		return types.NotVerified, rpcError(err)
	}
	asked, err := destinations(desired, wr.Spec.MaxWeight, extra)
	if err != nil {
		return types.NotVerified, rpcError(err)
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	verdict := Judge(wr, desired, asked, expected, now(), cfg.HeartbeatTimeout)
	st := newStore(r.Dynamic)
	if err := st.patchSummary(ctx, wr, verdict.Summary(wr)); err != nil {
		return types.NotVerified, rpcError(err)
	}
	// Housekeeping after the verdict (which ignores these entries anyway); a failure is reported.
	if err := st.removeEntries(ctx, wr, departed(wr.Status.Replicas, existing, now(), cfg.HeartbeatTimeout)); err != nil {
		return types.NotVerified, rpcError(err)
	}
	if !verdict.Verified {
		if len(verdict.Faults) > 0 {
			return types.NotVerified, types.RpcError{ErrorString: "weir: " + strings.Join(verdict.Faults, "; ")}
		}
		return types.NotVerified, types.RpcError{}
	}
	return types.Verified, types.RpcError{}
}

// ready reports a Router used before InitPlugin gave it clients.
func (r *Router) ready() error {
	if r.Kube == nil || r.Dynamic == nil {
		return fmt.Errorf("weir plugin: no API clients (InitPlugin has not run or failed)")
	}
	return nil
}

// change reads the Rollout's WeirRoute, refreshes what the Rollout and config say, applies edit
// and writes the result if it differs. create says whether a missing WeirRoute is made.
func (r *Router) change(ro *v1alpha1.Rollout, create bool, edit func(*RouteSpec, []string) error) types.RpcError {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	cfg, err := ReadConfig(ro)
	if err != nil {
		return rpcError(err)
	}
	managed := managedRouteNames(ro)
	// Edits are pure: a dry run refuses bad input before any API call.
	if err := edit(&RouteSpec{MaxWeight: maxWeight(ro)}, managed); err != nil {
		return rpcError(err)
	}
	if err := r.ready(); err != nil {
		return rpcError(err)
	}
	st := newStore(r.Dynamic)
	current, err := st.get(ctx, ro)
	if err != nil {
		return rpcError(err)
	}
	if current == nil && !create {
		return types.RpcError{}
	}
	var spec RouteSpec
	if current != nil {
		spec = current.Spec
	}
	refresh(&spec, ro, cfg, managed)
	if err := edit(&spec, managed); err != nil {
		return rpcError(err)
	}
	if current == nil {
		return rpcError(st.create(ctx, ro, spec))
	}
	if sameSpec(current.Spec, spec) {
		return types.RpcError{}
	}
	return rpcError(st.updateSpec(ctx, current, spec))
}

// refresh copies into spec what the Rollout and the plugin config say now, and drops routes whose
// names left managedRoutes (a route nobody manages must not keep sending traffic to the canary).
func refresh(spec *RouteSpec, ro *v1alpha1.Rollout, cfg *Config, managed []string) {
	canary := ro.Spec.Strategy.Canary
	spec.StableService, spec.CanaryService = canary.StableService, canary.CanaryService
	spec.StableIngresses = append([]string(nil), cfg.StableIngresses...)
	spec.MaxWeight = maxWeight(ro)
	spec.Guard = cfg.Guard
	spec.StickyAssignment = cfg.StickyAssignment
	var headers []HeaderRoute
	for _, h := range spec.HeaderRoutes {
		if position(h.Name, managed) < len(managed) {
			headers = append(headers, h)
		}
	}
	var mirrors []MirrorRoute
	for _, m := range spec.MirrorRoutes {
		if position(m.Name, managed) < len(managed) {
			mirrors = append(mirrors, m)
		}
	}
	spec.HeaderRoutes, spec.MirrorRoutes = headers, mirrors
	if spec.Weight > spec.MaxWeight {
		spec.Weight = spec.MaxWeight
	}
}

// destinations checks the weights Argo asks for: each within 0..max, their sum too.
func destinations(desired, max int32, extra []v1alpha1.WeightDestination) ([]Destination, error) {
	if desired < 0 || desired > max {
		return nil, &ConfigError{"desiredWeight", fmt.Sprintf("%d is not within 0..%d", desired, max)}
	}
	sum := desired
	var out []Destination
	for i, d := range extra {
		field := fmt.Sprintf("additionalDestinations[%d]", i)
		if d.ServiceName == "" {
			return nil, &ConfigError{field + ".serviceName", "required"}
		}
		if d.Weight < 0 {
			return nil, &ConfigError{field + ".weight", fmt.Sprintf("%d is negative", d.Weight)}
		}
		sum += d.Weight
		out = append(out, Destination{ServiceName: d.ServiceName, PodTemplateHash: d.PodTemplateHash, Weight: d.Weight})
	}
	if sum > max {
		return nil, &ConfigError{"additionalDestinations", fmt.Sprintf("canary and additional weights add up to %d, over the maximum %d", sum, max)}
	}
	return out, nil
}

// sameSpec compares specs as the API server stores them (an empty list and no list are equal).
func sameSpec(a, b RouteSpec) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func rpcError(err error) types.RpcError {
	if err == nil {
		return types.RpcError{}
	}
	return types.RpcError{ErrorString: err.Error()}
}

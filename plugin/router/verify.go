// The weight check: which weir replicas must have applied a weight (the ready pods of the weir
// Deployment named in the plugin config) and the pure judgement of their status entries.
package router

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// expectedReplicas names the pods of the weir Deployment that serve traffic now (selected by its
// selector, Running, Ready, not being deleted) and, in existing, every pod it selects. Any error
// leaves the weight unverified.
func expectedReplicas(ctx context.Context, kube kubernetes.Interface, namespace, name string) (serving []string, existing map[string]bool, err error) {
	dep, err := kube.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, &ConfigError{"proxy.deployment", fmt.Sprintf("Deployment %s/%s not found", namespace, name)}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading weir Deployment %s/%s: %w", namespace, name, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil || selector.Empty() {
		return nil, nil, fmt.Errorf("weir Deployment %s/%s has no usable selector", namespace, name)
	}
	pods, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing weir pods in %s: %w", namespace, err)
	}
	existing = map[string]bool{}
	for i := range pods.Items {
		existing[pods.Items[i].Name] = true
		if isServing(&pods.Items[i]) {
			serving = append(serving, pods.Items[i].Name)
		}
	}
	sort.Strings(serving)
	return serving, existing, nil
}

// departed lists the indexes (highest first) of entries whose pod no longer exists and whose
// heartbeat is stale: nobody will write them again, so the plugin removes them.
func departed(entries []ReplicaStatus, existing map[string]bool, now time.Time, heartbeatTimeout time.Duration) []int {
	var out []int
	for i := len(entries) - 1; i >= 0; i-- {
		if !existing[entries[i].Name] && now.Sub(entries[i].HeartbeatTime.Time) > heartbeatTimeout {
			out = append(out, i)
		}
	}
	return out
}

func isServing(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Verdict is the judgement of one VerifyWeight call.
type Verdict struct {
	Verified          bool
	Applied, Expected int
	// Faults need a person (a tripped guard, a refused spec, a silent controller, no replicas);
	// they go back to Argo as the RPC error, which it shows as a WeightVerifyError event.
	Faults []string
	// Waiting lists replicas that have not caught up yet; no error, Argo asks again.
	Waiting []string
	// Tripped names the replicas whose guard is tripped for the current canary.
	Tripped []string
}

// Judge decides whether every expected replica has desired (and the additional destinations'
// weights) in force at the WeirRoute's current generation. Unsure is false.
func Judge(wr *WeirRoute, desired int32, extra []Destination, expected []string, now time.Time, heartbeatTimeout time.Duration) Verdict {
	v := Verdict{Expected: len(expected)}
	if wr.Spec.Weight != desired || !sameWeights(wr.Spec.AdditionalDestinations, extra) {
		v.Waiting = append(v.Waiting, fmt.Sprintf("spec has weight %d, asked %d (SetWeight has not written it)", wr.Spec.Weight, desired))
	}
	if len(expected) == 0 {
		v.Faults = append(v.Faults, "no ready weir replicas to apply the weight")
	}
	entries := map[string]*ReplicaStatus{}
	for i := range wr.Status.Replicas {
		entries[wr.Status.Replicas[i].Name] = &wr.Status.Replicas[i]
	}
	for _, name := range expected {
		e, ok := entries[name]
		switch {
		case !ok:
			v.Waiting = append(v.Waiting, name+": no report yet")
			continue
		case now.Sub(e.HeartbeatTime.Time) > heartbeatTimeout:
			v.Faults = append(v.Faults, fmt.Sprintf("%s: heartbeat older than %s (its controller is not reporting)", name, heartbeatTimeout))
			continue
		}
		if e.Guard.State == GuardTripped && e.Guard.CanaryHash == wr.Spec.CanaryHash {
			v.Tripped = append(v.Tripped, name)
			if desired > 0 {
				v.Faults = append(v.Faults, fmt.Sprintf("%s: canary guard tripped (%s): weighted traffic to the canary stopped", name, e.Guard.Reason))
				continue
			}
		}
		switch {
		case e.ObservedGeneration != wr.Generation && e.Message != "":
			v.Faults = append(v.Faults, fmt.Sprintf("%s: refused generation %d: %s", name, wr.Generation, e.Message))
		case e.ObservedGeneration != wr.Generation:
			v.Waiting = append(v.Waiting, fmt.Sprintf("%s: at generation %d of %d", name, e.ObservedGeneration, wr.Generation))
		case e.Weight != desired || !sameApplied(e.AdditionalDestinations, extra):
			v.Faults = append(v.Faults, fmt.Sprintf("%s: has weight %d in force at generation %d, asked %d", name, e.Weight, wr.Generation, desired))
		default:
			v.Applied++
		}
	}
	v.Verified = len(v.Faults) == 0 && len(v.Waiting) == 0 && v.Applied == v.Expected && v.Expected > 0
	return v
}

// Summary is the status summary the plugin writes for this verdict on wr.
func (v Verdict) Summary(wr *WeirRoute) summary {
	guard := GuardArmed
	switch {
	case len(v.Tripped) > 0:
		guard = GuardTripped
	case wr.Spec.Guard == nil:
		guard = GuardOff
	}
	return summary{
		ObservedGeneration: wr.Generation,
		Applied:            fmt.Sprintf("%d/%d", v.Applied, v.Expected),
		Verified:           v.Verified,
		Guard:              guard,
		Message:            strings.Join(append(append([]string{}, v.Faults...), v.Waiting...), "; "),
	}
}

func sameWeights(spec, asked []Destination) bool {
	if len(spec) != len(asked) {
		return false
	}
	for i := range spec {
		if spec[i].ServiceName != asked[i].ServiceName || spec[i].Weight != asked[i].Weight {
			return false
		}
	}
	return true
}

func sameApplied(applied []DestinationWeight, asked []Destination) bool {
	if len(applied) != len(asked) {
		return false
	}
	for i := range applied {
		if applied[i].ServiceName != asked[i].ServiceName || applied[i].Weight != asked[i].Weight {
			return false
		}
	}
	return true
}

// Test fixtures: a Rollout builder, fake API clients holding the weir Deployment and its pods,
// and helpers that read back the WeirRoute and count the writes a call made.
package router

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

// testRollout is a Rollout "shop" using the weir plugin with the given config JSON.
type testRollout struct{ ro *v1alpha1.Rollout }

func rollout() testRollout {
	return testRollout{&v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "apps", UID: "uid-shop"},
		Spec: v1alpha1.RolloutSpec{Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.CanaryStrategy{
			StableService: "shop-stable",
			CanaryService: "shop-canary",
			TrafficRouting: &v1alpha1.RolloutTrafficRouting{
				Plugins: map[string]json.RawMessage{PluginName: json.RawMessage(
					`{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"}}`)},
			},
		}}},
	}}
}

func (t testRollout) withConfig(raw string) testRollout {
	t.ro.Spec.Strategy.Canary.TrafficRouting.Plugins[PluginName] = json.RawMessage(raw)
	return t
}

func (t testRollout) withManagedRoutes(names ...string) testRollout {
	t.ro.Spec.Strategy.Canary.TrafficRouting.ManagedRoutes = nil
	for _, n := range names {
		t.ro.Spec.Strategy.Canary.TrafficRouting.ManagedRoutes = append(t.ro.Spec.Strategy.Canary.TrafficRouting.ManagedRoutes, v1alpha1.MangedRoutes{Name: n})
	}
	return t
}

// cluster is a fake API server: the weir Deployment in "weir" and its pods.
type cluster struct {
	kube *kubefake.Clientset
	dyn  *dynamicfake.FakeDynamicClient
	r    *Router
	now  time.Time
}

func newCluster(t *testing.T, readyPods ...string) *cluster {
	t.Helper()
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "weir", Namespace: "weir"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "weir"}}},
	}
	objs := []runtime.Object{dep}
	for _, name := range readyPods {
		objs = append(objs, pod(name, "weir", true))
	}
	c := &cluster{
		kube: kubefake.NewSimpleClientset(objs...),
		dyn: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
			map[schema.GroupVersionResource]string{Resource: "WeirRouteList"}),
		now: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC),
	}
	c.r = &Router{Kube: c.kube, Dynamic: c.dyn, Now: func() time.Time { return c.now }}
	return c
}

func pod(name, app string, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "weir", Labels: map[string]string{"app": app}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

// route reads the WeirRoute back; nil when there is none.
func (c *cluster) route(t *testing.T) *WeirRoute {
	t.Helper()
	wr, err := newStore(c.dyn).get(context.Background(), rollout().ro)
	if err != nil {
		t.Fatalf("reading weirroute: %v", err)
	}
	return wr
}

// writes counts the create/update/patch/delete calls on WeirRoutes since the last call.
func (c *cluster) writes() int {
	n := 0
	for _, a := range c.dyn.Actions() {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete":
			n++
		}
	}
	c.dyn.ClearActions()
	return n
}

// acknowledge stands in for the API server and a weir replica's controller: it bumps the
// generation when the spec changed (the fake does not) and writes the replica's status entry.
func (c *cluster) acknowledge(t *testing.T, entry ReplicaStatus) {
	t.Helper()
	wr := c.route(t)
	replaced := false
	for i := range wr.Status.Replicas {
		if wr.Status.Replicas[i].Name == entry.Name {
			wr.Status.Replicas[i], replaced = entry, true
		}
	}
	if !replaced {
		wr.Status.Replicas = append(wr.Status.Replicas, entry)
	}
	c.store(t, wr)
}

// store writes wr whole, as the API server and controllers would have left it.
func (c *cluster) store(t *testing.T, wr *WeirRoute) {
	t.Helper()
	wr.TypeMeta = metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind}
	u, err := toUnstructured(wr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.dyn.Resource(Resource).Namespace(wr.Namespace).Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("storing weirroute: %v", err)
	}
	c.dyn.ClearActions()
}

// bumpGeneration does what the API server does on a spec change.
func (c *cluster) bumpGeneration(t *testing.T) int64 {
	t.Helper()
	wr := c.route(t)
	wr.Generation++
	c.store(t, wr)
	return wr.Generation
}

func applied(name string, generation int64, weight int32, heartbeat time.Time) ReplicaStatus {
	return ReplicaStatus{Name: name, ObservedGeneration: generation, Weight: weight, TableVersion: 7,
		Guard: GuardStatus{State: GuardArmed}, HeartbeatTime: metav1.NewTime(heartbeat)}
}

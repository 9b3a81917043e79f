// Against a real kube-apiserver (WEIR_TEST_KUBECONFIG set, the CRD applied; see
// ../scripts/realapi.sh): the plugin's writes are idempotent after the server's normalisation,
// a controller's server-side-applied entry coexists with the plugin's summary, and VerifyWeight
// turns true. Skipped without a server.
package router

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/utils/plugin/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestRealAPIServer(t *testing.T) {
	path := os.Getenv("WEIR_TEST_KUBECONFIG")
	if path == "" {
		t.Skip("WEIR_TEST_KUBECONFIG not set")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := context.Background()
	now := time.Now()
	r := &Router{Kube: kube, Dynamic: dyn, Now: func() time.Time { return now }}
	ro := rollout().withManagedRoutes("testers", "mirror-api").withConfig(
		`{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"},"guard":{"errorPercent":20,"windowSeconds":10,"minRequests":50}}`).ro
	mustOK(t, "SetWeight", r.SetWeight(ro, 20, nil))
	mustOK(t, "header", r.SetHeaderRoute(ro, header("testers", "true")))
	mustOK(t, "mirror", r.SetMirrorRoute(ro, mirror("mirror-api", 50)))
	first := getRoute(t, dyn)
	for i := 0; i < 3; i++ {
		mustOK(t, "SetWeight again", r.SetWeight(ro, 20, nil))
		mustOK(t, "header again", r.SetHeaderRoute(ro, header("testers", "true")))
		mustOK(t, "mirror again", r.SetMirrorRoute(ro, mirror("mirror-api", 50)))
		mustOK(t, "UpdateHash", r.UpdateHash(ro, "", "", nil))
	}
	again := getRoute(t, dyn)
	if again.ResourceVersion != first.ResourceVersion || again.Generation != first.Generation {
		t.Fatalf("repeated calls wrote: resourceVersion %s -> %s, generation %d -> %d", first.ResourceVersion, again.ResourceVersion, first.Generation, again.Generation)
	}
	pods, err := kube.CoreV1().Pods("weir").List(ctx, metav1.ListOptions{LabelSelector: "app=weir"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("weir pods: %v (%d)", err, len(pods.Items))
	}
	if v, _ := r.VerifyWeight(ro, 20, nil); v != types.NotVerified {
		t.Fatalf("verified before any report: %v", v)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning {
			applyEntry(t, dyn, p.Name, applied(p.Name, again.Generation, 20, now))
		}
	}
	v, e := r.VerifyWeight(ro, 20, nil)
	if v != types.Verified {
		t.Fatalf("not verified after every ready pod reported: %s", e.Error())
	}
	final := getRoute(t, dyn)
	if !final.Status.Verified || len(final.Status.Replicas) == 0 {
		t.Fatalf("status after verify: %+v", final.Status)
	}
	if v, _ := r.VerifyWeight(ro, 20, nil); v != types.Verified || getRoute(t, dyn).ResourceVersion != final.ResourceVersion {
		t.Fatal("a repeated VerifyWeight wrote the summary again")
	}
	mustOK(t, "RemoveManagedRoutes", r.RemoveManagedRoutes(ro))
	if s := getRoute(t, dyn).Spec; len(s.HeaderRoutes)+len(s.MirrorRoutes) != 0 {
		t.Fatalf("routes left: %+v", s)
	}
}

func getRoute(t *testing.T, dyn dynamic.Interface) *WeirRoute {
	t.Helper()
	wr, err := newStore(dyn).get(context.Background(), rollout().ro)
	if err != nil || wr == nil {
		t.Fatalf("weirroute: %v", err)
	}
	return wr
}

// applyEntry is what a weir replica's controller does: server-side apply of its own entry.
func applyEntry(t *testing.T, dyn dynamic.Interface, pod string, e ReplicaStatus) {
	t.Helper()
	entry, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&e)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": APIVersion, "kind": Kind,
		"metadata": map[string]any{"name": "shop", "namespace": "apps"},
		"status":   map[string]any{"replicas": []any{entry}},
	}}
	_, err = dyn.Resource(Resource).Namespace("apps").ApplyStatus(context.Background(), "shop", u,
		metav1.ApplyOptions{FieldManager: "weir-controller/" + pod, Force: true})
	if err != nil {
		t.Fatalf("applying %s's entry: %v", pod, err)
	}
}

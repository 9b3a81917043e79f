// Reading and writing WeirRoute objects through the dynamic client: spec by create/update with
// the resourceVersion read (a concurrent writer makes the call fail and Argo retry), the status
// summary by a merge patch on the status subresource that leaves status.replicas alone.
package router

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// store reads and writes the WeirRoutes of one namespace.
type store struct {
	api dynamic.NamespaceableResourceInterface
}

func newStore(client dynamic.Interface) store {
	return store{api: client.Resource(Resource)}
}

// get returns the Rollout's WeirRoute, or nil when there is none.
func (s store) get(ctx context.Context, ro *v1alpha1.Rollout) (*WeirRoute, error) {
	u, err := s.api.Namespace(ro.Namespace).Get(ctx, ro.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading weirroute %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	var wr WeirRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &wr); err != nil {
		return nil, fmt.Errorf("decoding weirroute %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	return &wr, nil
}

// create makes the Rollout's WeirRoute, owned by the Rollout.
func (s store) create(ctx context.Context, ro *v1alpha1.Rollout, spec RouteSpec) error {
	controller, block := true, false
	wr := WeirRoute{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name:      ro.Name,
			Namespace: ro.Namespace,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": FieldManager},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: ro.Name, UID: ro.UID,
				Controller: &controller, BlockOwnerDeletion: &block,
			}},
		},
		Spec: spec,
	}
	u, err := toUnstructured(&wr)
	if err != nil {
		return err
	}
	delete(u.Object, "status")
	_, err = s.api.Namespace(ro.Namespace).Create(ctx, u, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("creating weirroute %s/%s: %w", ro.Namespace, ro.Name, err)
	}
	return nil
}

// updateSpec writes spec into the WeirRoute read as current, failing on a concurrent change.
func (s store) updateSpec(ctx context.Context, current *WeirRoute, spec RouteSpec) error {
	next := current.DeepCopySpec(spec)
	u, err := toUnstructured(next)
	if err != nil {
		return err
	}
	delete(u.Object, "status")
	_, err = s.api.Namespace(current.Namespace).Update(ctx, u, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("updating weirroute %s/%s: %w", current.Namespace, current.Name, err)
	}
	return nil
}

// summary is the part of the status the plugin owns.
type summary struct {
	ObservedGeneration int64  `json:"observedGeneration"`
	Applied            string `json:"applied"`
	Verified           bool   `json:"verified"`
	Guard              string `json:"guard"`
	Message            string `json:"message"`
}

func summaryOf(st RouteStatus) summary {
	return summary{st.ObservedGeneration, st.Applied, st.Verified, st.Guard, st.Message}
}

// patchSummary writes the summary when it differs from what the object has.
func (s store) patchSummary(ctx context.Context, wr *WeirRoute, sum summary) error {
	if summaryOf(wr.Status) == sum {
		return nil
	}
	body, err := json.Marshal(map[string]any{"status": sum})
	if err != nil {
		return err
	}
	_, err = s.api.Namespace(wr.Namespace).Patch(ctx, wr.Name, types.MergePatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager}, "status")
	if err != nil {
		return fmt.Errorf("patching weirroute %s/%s status: %w", wr.Namespace, wr.Name, err)
	}
	return nil
}

// removeEntries deletes the status entries at indexes (highest first), each guarded by a test of
// its name so a list that changed meanwhile makes the patch fail instead of removing another.
func (s store) removeEntries(ctx context.Context, wr *WeirRoute, indexes []int) error {
	if len(indexes) == 0 {
		return nil
	}
	var ops []map[string]any
	for _, i := range indexes {
		path := fmt.Sprintf("/status/replicas/%d", i)
		ops = append(ops,
			map[string]any{"op": "test", "path": path + "/name", "value": wr.Status.Replicas[i].Name},
			map[string]any{"op": "remove", "path": path})
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	_, err = s.api.Namespace(wr.Namespace).Patch(ctx, wr.Name, types.JSONPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager}, "status")
	if err != nil {
		return fmt.Errorf("removing departed replicas from weirroute %s/%s: %w", wr.Namespace, wr.Name, err)
	}
	return nil
}

// DeepCopySpec returns a copy of the object's identity (name, namespace, resourceVersion, labels,
// owners) carrying spec. managedFields are left out: an update without them keeps the server's.
func (wr *WeirRoute) DeepCopySpec(spec RouteSpec) *WeirRoute {
	meta := wr.ObjectMeta.DeepCopy()
	meta.ManagedFields = nil
	return &WeirRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind},
		ObjectMeta: *meta,
		Spec:       spec,
	}
}

func toUnstructured(wr *WeirRoute) (*unstructured.Unstructured, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(wr)
	if err != nil {
		return nil, fmt.Errorf("encoding weirroute %s/%s: %w", wr.Namespace, wr.Name, err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

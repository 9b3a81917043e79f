// Tests of the weight check: the pure judgement of replica entries, the expected replica set,
// and VerifyWeight turning from false to true as replicas report.
package router

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/utils/plugin/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestJudge(t *testing.T) {
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	fresh, stale := now.Add(-5*time.Second), now.Add(-2*time.Minute)
	tripped := func(e ReplicaStatus, hash string) ReplicaStatus {
		e.Guard = GuardStatus{State: GuardTripped, CanaryHash: hash, Reason: "5xx 41 of 80 in 10s"}
		return e
	}
	refused := func(e ReplicaStatus) ReplicaStatus { e.Message = "regex not supported"; return e }
	cases := []struct {
		name     string
		desired  int32
		expected []string
		entries  []ReplicaStatus
		verified bool
		fault    string // substring of a fault; "" means no fault
	}{
		{"all applied", 20, []string{"a", "b"}, []ReplicaStatus{applied("a", 3, 20, fresh), applied("b", 3, 20, fresh)}, true, ""},
		{"one has not reported", 20, []string{"a", "b"}, []ReplicaStatus{applied("a", 3, 20, fresh)}, false, ""},
		{"one at an older generation", 20, []string{"a", "b"}, []ReplicaStatus{applied("a", 3, 20, fresh), applied("b", 2, 10, fresh)}, false, ""},
		{"entry of a gone pod does not count", 20, []string{"a", "b"}, []ReplicaStatus{applied("a", 3, 20, fresh), applied("old", 3, 20, fresh)}, false, ""},
		{"entry of a gone pod does not block", 20, []string{"a"}, []ReplicaStatus{applied("a", 3, 20, fresh), applied("old", 1, 0, stale)}, true, ""},
		{"stale heartbeat", 20, []string{"a"}, []ReplicaStatus{applied("a", 3, 20, stale)}, false, "heartbeat older than 1m0s"},
		{"no ready replicas", 20, nil, nil, false, "no ready weir replicas"},
		{"other weight at this generation", 20, []string{"a"}, []ReplicaStatus{applied("a", 3, 30, fresh)}, false, "has weight 30 in force"},
		{"refused the spec", 20, []string{"a"}, []ReplicaStatus{refused(applied("a", 2, 10, fresh))}, false, "refused generation 3: regex not supported"},
		{"guard tripped", 20, []string{"a", "b"}, []ReplicaStatus{applied("a", 3, 20, fresh), tripped(applied("b", 3, 20, fresh), "c1")}, false, "b: canary guard tripped (5xx 41 of 80 in 10s)"},
		{"guard tripped for an older canary is void", 20, []string{"a"}, []ReplicaStatus{tripped(applied("a", 3, 20, fresh), "c0")}, true, ""},
		{"guard tripped at weight 0 is what was asked", 0, []string{"a"}, []ReplicaStatus{tripped(applied("a", 3, 0, fresh), "c1")}, true, ""},
		{"spec not at the asked weight", 50, []string{"a"}, []ReplicaStatus{applied("a", 3, 20, fresh)}, false, "has weight 20 in force at generation 3, asked 50"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wr := &WeirRoute{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Spec: RouteSpec{Weight: 20, MaxWeight: 100, CanaryHash: "c1"},
				Status: RouteStatus{Replicas: tc.entries}}
			if tc.desired == 0 {
				wr.Spec.Weight = 0
			}
			v := Judge(wr, tc.desired, nil, tc.expected, now, time.Minute)
			if v.Verified != tc.verified {
				t.Fatalf("verified = %v, want %v (%+v)", v.Verified, tc.verified, v)
			}
			faults := strings.Join(v.Faults, "; ")
			if (tc.fault == "") != (faults == "") || !strings.Contains(faults, tc.fault) {
				t.Fatalf("faults = %q, want %q", faults, tc.fault)
			}
		})
	}
}

func TestExpectedReplicasAreTheReadyPodsOfTheDeployment(t *testing.T) {
	c := newCluster(t, "weir-a", "weir-b")
	deleting := pod("weir-c", "weir", true)
	deleting.DeletionTimestamp = &metav1.Time{Time: c.now}
	deleting.Finalizers = []string{"test"}
	for _, p := range []*corev1.Pod{pod("weir-d", "weir", false), pod("other", "nginx", true), deleting} {
		if _, err := c.kube.CoreV1().Pods("weir").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, existing, err := expectedReplicas(context.Background(), c.kube, "weir", "weir")
	if err != nil || strings.Join(got, ",") != "weir-a,weir-b" {
		t.Fatalf("expected = %v, %v; want weir-a,weir-b", got, err)
	}
	if len(existing) != 4 || !existing["weir-c"] || !existing["weir-d"] || existing["other"] {
		t.Fatalf("existing = %v, want weir-a..weir-d", existing)
	}
	if _, _, err := expectedReplicas(context.Background(), c.kube, "weir", "missing"); err == nil || !strings.Contains(err.Error(), "proxy.deployment") {
		t.Fatalf("missing Deployment: %v", err)
	}
}

func TestVerifyWeightTurnsTrueOnlyWhenEveryReplicaApplied(t *testing.T) {
	c := newCluster(t, "weir-a", "weir-b")
	ro := rollout().ro
	verify := func(desired int32) (types.RpcVerified, string) {
		v, err := c.r.VerifyWeight(ro, desired, nil)
		return v, err.Error()
	}
	if v, _ := verify(20); v != types.NotVerified {
		t.Fatalf("no weirroute yet: %v", v)
	}
	mustOK(t, "SetWeight", c.r.SetWeight(ro, 20, nil))
	gen := c.bumpGeneration(t)
	if v, err := verify(20); v != types.NotVerified || err != "" {
		t.Fatalf("nobody applied: %v %q", v, err)
	}
	c.acknowledge(t, applied("weir-a", gen, 20, c.now))
	if v, _ := verify(20); v != types.NotVerified {
		t.Fatalf("one of two applied: %v", v)
	}
	if st := c.route(t).Status; st.Applied != "1/2" || st.Verified {
		t.Fatalf("summary = %+v", st)
	}
	c.acknowledge(t, applied("weir-b", gen, 20, c.now))
	if v, err := verify(20); v != types.Verified || err != "" {
		t.Fatalf("both applied: %v %q", v, err)
	}
	if st := c.route(t).Status; st.Applied != "2/2" || !st.Verified || st.Message != "" {
		t.Fatalf("summary = %+v", st)
	}
	c.writes()
	if v, _ := verify(20); v != types.Verified || c.writes() != 0 {
		t.Fatal("a repeated VerifyWeight rewrote the summary")
	}

	mustOK(t, "SetWeight 50", c.r.SetWeight(ro, 50, nil))
	gen = c.bumpGeneration(t)
	if v, _ := verify(50); v != types.NotVerified {
		t.Fatalf("new weight, old reports: %v", v)
	}
	c.acknowledge(t, applied("weir-a", gen, 50, c.now))
	b := applied("weir-b", gen, 50, c.now)
	b.Guard = GuardStatus{State: GuardTripped, Reason: "5xx 41 of 80 in 10s"}
	c.acknowledge(t, b)
	if v, err := verify(50); v != types.NotVerified || !strings.Contains(err, "weir-b: canary guard tripped") {
		t.Fatalf("tripped guard: %v %q", v, err)
	}
	if st := c.route(t).Status; st.Guard != GuardTripped {
		t.Fatalf("summary guard = %q", st.Guard)
	}
	b.Guard = GuardStatus{State: GuardArmed}
	c.acknowledge(t, b)
	c.now = c.now.Add(2 * time.Minute)
	if v, err := verify(50); v != types.NotVerified || !strings.Contains(err, "heartbeat older") {
		t.Fatalf("stale: %v %q", v, err)
	}
}

func TestDepartedReplicasEntriesAreRemovedOnlyWhenGoneAndStale(t *testing.T) {
	c := newCluster(t, "weir-a")
	ro := rollout().ro
	mustOK(t, "SetWeight", c.r.SetWeight(ro, 20, nil))
	gen := c.bumpGeneration(t)
	c.acknowledge(t, applied("gone-stale", gen, 20, c.now.Add(-time.Hour)))
	c.acknowledge(t, applied("weir-a", gen, 20, c.now))
	c.acknowledge(t, applied("gone-fresh", gen, 20, c.now))
	if v, e := c.r.VerifyWeight(ro, 20, nil); v != types.Verified {
		t.Fatalf("VerifyWeight = %v %q", v, e.Error())
	}
	var names []string
	for _, e := range c.route(t).Status.Replicas {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "weir-a,gone-fresh" {
		t.Fatalf("entries left = %v, want weir-a,gone-fresh", names)
	}
	c.writes()
	if v, _ := c.r.VerifyWeight(ro, 20, nil); v != types.Verified || c.writes() != 0 {
		t.Fatal("a second VerifyWeight wrote again")
	}
}

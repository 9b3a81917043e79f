// Runs the built plugin binary the way Argo Rollouts does (go-plugin client, Argo's handshake and
// plugin map, net/rpc with gob) and checks that calls and their errors cross the process boundary.
package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/rollout/trafficrouting/plugin/rpc"
	goplugin "github.com/hashicorp/go-plugin"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A kubeconfig pointing at a closed port: clients can be made, no call can succeed.
const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: "x"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
`

func TestBinaryServesArgosPluginProtocol(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "weir-rollouts-plugin")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cfgPath, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: handshake,
		Plugins:         map[string]goplugin.Plugin{"RpcTrafficRouterPlugin": &rpc.RpcTrafficRouterPlugin{}},
		Cmd:             exec.Command(bin, "--kubeconfig="+cfgPath),
	})
	defer client.Kill()
	conn, err := client.Client()
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	raw, err := conn.Dispense("RpcTrafficRouterPlugin")
	if err != nil {
		t.Fatal(err)
	}
	plugin := raw.(rpc.TrafficRouterPlugin)
	if e := plugin.InitPlugin(); e.HasError() {
		t.Fatalf("InitPlugin: %s", e.Error())
	}
	if got := plugin.Type(); got != "weir" {
		t.Fatalf("Type = %q", got)
	}
	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "apps"},
		Spec: v1alpha1.RolloutSpec{Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.CanaryStrategy{
			StableService: "shop-stable", CanaryService: "shop-canary",
			TrafficRouting: &v1alpha1.RolloutTrafficRouting{
				ManagedRoutes: []v1alpha1.MangedRoutes{{Name: "testers"}},
				Plugins: map[string]json.RawMessage{"weir-proxy/weir": json.RawMessage(
					`{"stableIngress":"shop","proxy":{"namespace":"weir","deployment":"weir"}}`)},
			},
		}}},
	}
	cases := []struct {
		name, want string
		call       func() string
	}{
		{"bad step is refused before any API call", "match[0].headerName: empty header name", func() string {
			return plugin.SetHeaderRoute(ro, &v1alpha1.SetHeaderRoute{Name: "testers", Match: []v1alpha1.HeaderRoutingMatch{{HeaderValue: &v1alpha1.StringMatch{Exact: "1"}}}}).Error()
		}},
		{"unreachable API server is an error, not success", "reading weirroute apps/shop", func() string { return plugin.SetWeight(ro, 20, nil).Error() }},
		{"unverifiable weight is not verified", "reading weirroute apps/shop", func() string {
			v, e := plugin.VerifyWeight(ro, 20, nil)
			if v.IsVerified() == nil || *v.IsVerified() {
				return "verified"
			}
			return e.Error()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.call(); !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

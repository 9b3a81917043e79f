// Command weir-rollouts-plugin is the weir traffic-router plugin Argo Rollouts starts as a child
// process: it serves router.Router over hashicorp/go-plugin's net/rpc with Argo's handshake.
//
// Layout: router/ holds the plugin (config.go the per-Rollout config, routes.go header and mirror
// routes, router.go the RPCs, store.go the WeirRoute reads and writes, verify.go the weight
// check, wire.go the WeirRoute types); manifests/ the CRD, RBAC and argo-rollouts-config entry;
// build.sh the cached build; scripts/realapi.sh the check against a real kube-apiserver. A Rollout
// using the plugin is in deploy/examples/argo-rollouts/plugin/.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/argoproj/argo-rollouts/rollout/trafficrouting/plugin/rpc"
	goplugin "github.com/hashicorp/go-plugin"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"weir.dev/plugin/router"
)

// handshake is the one Argo Rollouts' plugin client checks (rollout/trafficrouting/plugin/client).
var handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "ARGO_ROLLOUTS_RPC_PLUGIN",
	MagicCookieValue: "trafficrouter",
}

func main() {
	// The ConfigMap entry's args reach here; with no --kubeconfig, KUBECONFIG or ~/.kube/config
	// is used if present, else the in-cluster config of Argo's ServiceAccount.
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file (default: KUBECONFIG, ~/.kube/config, then in-cluster)")
	flag.Parse()
	r := &router.Router{Clients: func() (kubernetes.Interface, dynamic.Interface, error) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = *kubeconfig
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, nil, err
		}
		cfg.UserAgent = "weir-rollouts-plugin"
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, nil, err
		}
		dyn, err := dynamic.NewForConfig(cfg)
		return kube, dyn, err
	}}
	if os.Getenv(handshake.MagicCookieKey) != handshake.MagicCookieValue {
		fmt.Fprintln(os.Stderr, "weir-rollouts-plugin is started by the Argo Rollouts controller (argo-rollouts-config trafficRouterPlugins), not by hand")
		os.Exit(1)
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins: map[string]goplugin.Plugin{
			"RpcTrafficRouterPlugin": &rpc.RpcTrafficRouterPlugin{Impl: r},
		},
	})
}

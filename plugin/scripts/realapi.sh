#!/usr/bin/env bash
# Runs router's TestRealAPIServer against a real etcd + kube-apiserver started in a private
# network namespace (no port can collide with other runs): applies the WeirRoute CRD, makes a weir
# Deployment with two Ready pods (status written by hand; no kubelet), runs the test, then shows
# `kubectl get weirroutes`. Binaries from the e2e suite's cache (WEIR_E2E_CACHE, ~/.cache/weir-e2e).
set -euo pipefail
if [[ "${1:-}" != inner ]]; then exec unshare --net "$0" inner; fi
here="$(cd "$(dirname "$0")/.." && pwd)"
cache="${WEIR_E2E_CACHE:-$HOME/.cache/weir-e2e}"
work="$(mktemp -d /tmp/weir-plugin-realapi.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
ip link set lo up
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=ca 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > san.cnf
openssl req -newkey rsa:2048 -nodes -keyout api.key -out api.csr -subj /CN=kube-apiserver 2>/dev/null
openssl x509 -req -in api.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out api.crt -days 1 -extfile san.cnf 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
token=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,admin,admin,system:masters" > tokens.csv
cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: "https://127.0.0.1:6443", certificate-authority: $work/ca.crt}}]
users: [{name: t, user: {token: "$token"}}]
contexts: [{name: t, context: {cluster: t, user: t}}]
current-context: t
KC
"$cache"/etcd-*/bin/etcd --data-dir="$work/etcd" --listen-client-urls=http://127.0.0.1:2379 \
  --advertise-client-urls=http://127.0.0.1:2379 --listen-peer-urls=http://127.0.0.1:2380 \
  --log-level=error --unsafe-no-fsync > etcd.log 2>&1 & pids+=($!)
"$cache"/kubernetes-*/bin/kube-apiserver --etcd-servers=http://127.0.0.1:2379 --bind-address=127.0.0.1 \
  --secure-port=6443 --advertise-address=127.0.0.1 --tls-cert-file=api.crt --tls-private-key-file=api.key \
  --client-ca-file=ca.crt --token-auth-file=tokens.csv --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file=sa.pub --service-account-signing-key-file=sa.key \
  --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=RBAC --endpoint-reconciler-type=none \
  --disable-admission-plugins=ServiceAccount --cert-dir="$work/certs" --v=0 > apiserver.log 2>&1 & pids+=($!)
k() { kubectl --kubeconfig="$work/kubeconfig" "$@"; }
for _ in $(seq 120); do k get --raw /readyz >/dev/null 2>&1 && break; sleep 0.5; done
k get --raw /readyz >/dev/null || { tail -20 apiserver.log; exit 1; }
k apply -f "$here/manifests/weirroute-crd.yaml"
k wait --for=condition=Established crd/weirroutes.weir.dev --timeout=30s
k create namespace apps >/dev/null && k create namespace weir >/dev/null
k -n weir create deployment weir --image=weir:test >/dev/null
for p in weir-a weir-b; do
  k -n weir run "$p" --image=weir:test --labels=app=weir >/dev/null
  k -n weir patch pod "$p" --subresource=status --type=merge \
    -p '{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}' >/dev/null
done
cd "$here" && WEIR_TEST_KUBECONFIG="$work/kubeconfig" go test ./router -run TestRealAPIServer -count=1 -v 2>&1 | grep -v "^=== RUN"
k -n apps get weirroutes
k -n apps get weirroutes -o wide
k -n apps get weirroute shop -o jsonpath='{range .metadata.managedFields[*]}{.manager} {.operation} {.subresource}{"\n"}{end}'

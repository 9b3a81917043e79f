#!/usr/bin/env bash
# Builds or fetches, once, the pinned tools that check deploy/ offline, into a cache outside
# the repository (~/.cache/weir-tools/), and prints where they are:
#
#   HELM=…/helm-<pin>/helm
#   KUBECONFORM=…/kubeconform-<pin>/kubeconform
#   KUBERNETES_SCHEMAS=…/kubernetes-validate-1.37.0/kubernetes_validate/kubernetes-json-schema
#   ARGO_ROLLOUTS_CRDS=<Go module cache>/github.com/argoproj/argo-rollouts@v1.10.1/manifests/crds
#   PROMETHEUS_OPERATOR_CRDS=<Go module cache>/…/prometheus-operator@v0.85.0/example/prometheus-operator-crd
#
# helm (v3.22.0) and kubeconform (v0.8.0) are built from the Go module proxy by
# tools/build.sh, pinned with all their dependencies by tools/helm/go.mod and
# tools/kubeconform/go.mod (+ go.sum). The data is pinned below: the Kubernetes JSON schemas
# of the PyPI package kubernetes-validate, and the CRDs of Argo Rollouts and the Prometheus
# Operator, files of their Go modules. What is cached is reused; delete a directory to
# rebuild it. Progress goes to stderr, the paths to stdout.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=1.37.0
ARGO_ROLLOUTS_VERSION=v1.10.1
PROMETHEUS_OPERATOR_VERSION=v0.85.0

root=$(cd "$(dirname "$0")/../.." && pwd)
CACHE="${WEIR_TOOLS_CACHE:-$HOME/.cache/weir-tools}"
mkdir -p "$CACHE"
# The official Go distribution's place, for shells whose PATH lacks it.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  PATH="/usr/local/go/bin:$PATH"
fi

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "deploy/tools/install.sh: $1 is required ($2)" >&2; exit 1; }
}

# go_module_dir <module@version>: the module's files in Go's module cache (downloaded once,
# checked against the Go checksum database).
go_module_dir() {
  need go "to download $1"
  local tmp dir
  tmp=$(mktemp -d)
  dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$tmp"
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "deploy/tools/install.sh: cannot download $1" >&2; exit 1; }
  echo "$dir"
}

helm=$(WEIR_TOOLS_CACHE="$CACHE" "$root/tools/build.sh" helm)
kubeconform=$(WEIR_TOOLS_CACHE="$CACHE" "$root/tools/build.sh" kubeconform)

kv_dir="$CACHE/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
if [ ! -d "$kv_dir/kubernetes_validate/kubernetes-json-schema" ]; then
  need python3 "for pip"
  echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $kv_dir (once)" >&2
  tmp=$(mktemp -d "$CACHE/.pip.XXXXXX")
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$tmp" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
  rm -rf "$kv_dir"
  mv "$tmp" "$kv_dir"
fi

argo_dir=$(go_module_dir "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION")
prom_op_dir=$(go_module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")

echo "HELM=$helm"
echo "KUBECONFORM=$kubeconform"
echo "KUBERNETES_SCHEMAS=$kv_dir/kubernetes_validate/kubernetes-json-schema"
echo "ARGO_ROLLOUTS_CRDS=$argo_dir/manifests/crds"
echo "PROMETHEUS_OPERATOR_CRDS=$prom_op_dir/example/prometheus-operator-crd"

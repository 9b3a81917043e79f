#!/usr/bin/env bash
# Builds or fetches, once, the pinned tools that check deploy/ offline, into a cache outside
# the repository (~/.cache/weir-tools/<tool>-<version>/), and prints where they are:
#
#   HELM=…/helm-v3.22.0/helm
#   KUBECONFORM=…/kubeconform-v0.8.0/kubeconform
#   KUBERNETES_SCHEMAS=…/kubernetes-validate-1.37.0/kubernetes_validate/kubernetes-json-schema
#   ARGO_ROLLOUTS_CRDS=<Go module cache>/github.com/argoproj/argo-rollouts@v1.10.1/manifests/crds
#   PROMETHEUS_OPERATOR_CRDS=<Go module cache>/…/prometheus-operator@v0.85.0/example/prometheus-operator-crd
#
# helm and kubeconform are built from the Go module proxy; the Kubernetes JSON schemas come
# from the PyPI package kubernetes-validate; the CRDs of Argo Rollouts and the Prometheus
# Operator are files of their Go modules at the versions below. A tool already in the cache
# is reused; delete its directory to rebuild it. Progress goes to stderr, the paths to stdout.
set -euo pipefail

# The one place the versions are pinned.
HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VALIDATE_VERSION=1.37.0
ARGO_ROLLOUTS_VERSION=v1.10.1
PROMETHEUS_OPERATOR_VERSION=v0.85.0

CACHE="${WEIR_TOOLS_CACHE:-$HOME/.cache/weir-tools}"
# The official Go distribution's place, for shells whose PATH lacks it.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  PATH="/usr/local/go/bin:$PATH"
fi
mkdir -p "$CACHE"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "deploy/tools/install.sh: $1 is required ($2)" >&2; exit 1; }
}

# go_build <dir> <package@version> [ldflags]: build one Go command into <dir>, atomically
# (a half-built tool never looks cached).
go_build() {
  local dir=$1 pkg=$2 ldflags=${3:-}
  local name=${pkg%@*}
  name=${name##*/}
  [ -x "$dir/$name" ] && return 0
  need go "https://go.dev/dl; the Debian package golang-go is too old for helm $HELM_VERSION"
  echo "building $pkg into $dir (once)" >&2
  local tmp
  tmp=$(mktemp -d "$CACHE/.build.XXXXXX")
  (cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp" CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w $ldflags" "$pkg") >&2
  mkdir -p "$dir"
  mv "$tmp/$name" "$dir/$name"
  rm -rf "$tmp"
}

# go_module_dir <module@version>: the module's files in Go's module cache (downloaded once).
go_module_dir() {
  need go "to download $1"
  local tmp dir
  tmp=$(mktemp -d)
  dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$tmp"
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "deploy/tools/install.sh: cannot download $1" >&2; exit 1; }
  echo "$dir"
}

helm_dir="$CACHE/helm-$HELM_VERSION"
go_build "$helm_dir" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

kubeconform_dir="$CACHE/kubeconform-$KUBECONFORM_VERSION"
go_build "$kubeconform_dir" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" \
  "-X main.version=$KUBECONFORM_VERSION"

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

echo "HELM=$helm_dir/helm"
echo "KUBECONFORM=$kubeconform_dir/kubeconform"
echo "KUBERNETES_SCHEMAS=$kv_dir/kubernetes_validate/kubernetes-json-schema"
echo "ARGO_ROLLOUTS_CRDS=$argo_dir/manifests/crds"
echo "PROMETHEUS_OPERATOR_CRDS=$prom_op_dir/example/prometheus-operator-crd"

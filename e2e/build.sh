#!/usr/bin/env bash
# Builds the pinned control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok, Argo Rollouts' controller and kubectl plugin) from the Go module proxy
# into ~/.cache/weir-e2e/<component>-<version>/, skipping every component already built, and
# prints the directory of each. A warm run takes well under a second.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${WEIR_E2E_CACHE:-$HOME/.cache/weir-e2e}"
mkdir -p "$cache"
command -v go >/dev/null || { echo "build.sh: go is not installed (needed to build the control plane)" >&2; exit 1; }

log() { echo "build.sh: $*" >&2; }

# The compile cache of these builds grows to ~9 GB and is of no use once the binaries are
# cached: keep it private and remove it when every component is built.
export GOCACHE="$cache/.gocache"

# timed NAME DIR CMD...: runs CMD in DIR, reports its wall time, checks that every binary
# the component promises exists, and only then marks DIR done.
timed() {
  local name="$1" dir="$2"; shift 2
  local t0=$SECONDS rc=0
  log "building $name into $dir"
  # Not under `if`: there bash ignores set -e inside the subshell and a failed step passes.
  set +e
  (set -e; cd "$dir/src" && "$@") >"$dir/build.log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    log "building $name failed ($rc); last lines of $dir/build.log:"; tail -30 "$dir/build.log" >&2; exit 1
  fi
  for b in "${BINS[@]}"; do
    [ -x "$dir/bin/$b" ] || { log "building $name left no $dir/bin/$b; see $dir/build.log"; exit 1; }
  done
  echo "$((SECONDS - t0))" >"$dir/build-seconds"
  touch "$dir/.done"
  log "$name built in $((SECONDS - t0)) s"
}

# k8s_ldflags: the version strings kubectl and Argo parse; without them the server says v0.0.0-master.
k8s_ldflags() {
  local v="$KUBERNETES_VERSION" major minor
  major="$(echo "${v#v}" | cut -d. -f1)"; minor="$(echo "${v#v}" | cut -d. -f2)"
  local f=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    f+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "-s -w$f"
}

# copy_replaces MODULE@VERSION: copies the module's own replace directives into ./go.mod, since
# a dependency's replaces are ignored; local-path replaces of k8s.io staging modules become the
# released staging version, and staging modules the proxy does not serve become empty modules.
copy_replaces() {
  local gomod
  gomod="$(go mod download -json "$1" | jq -r .GoMod)"
  go mod edit -json "$gomod" | jq -r '.Replace // [] | .[] | "\(.Old.Path)|\(.Old.Version // "")|\(.New.Path)|\(.New.Version // "")"' |
    while IFS='|' read -r old oldv new newv; do
      local lhs="$old"; [ -n "$oldv" ] && lhs="$old@$oldv"
      if [ -n "$newv" ]; then
        go mod edit -replace "$lhs=$new@$newv"
      elif [[ "$old" == k8s.io/* ]]; then
        case "$old" in
          k8s.io/sample-cli-plugin | k8s.io/sample-controller)
            mkdir -p "empty/$old"; printf 'module %s\n' "$old" >"empty/$old/go.mod"
            go mod edit -replace "$lhs=./empty/$old" ;;
          *) go mod edit -replace "$lhs=$old@$KUBE_STAGING_VERSION" ;;
        esac
      else
        echo "unhandled local replace $old => $new in $1" >&2; return 1
      fi
    done
}

build_etcd() {
  cat >main.go <<'GO'
// etcd's server, built from its module: the whole binary is etcdmain.Main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod init weir-e2e/etcd
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod tidy
  go build -trimpath -ldflags=-s\ -w -o ../bin/etcd .
}

build_kubernetes() {
  go mod init weir-e2e/kubernetes
  copy_replaces "k8s.io/kubernetes@$KUBERNETES_VERSION"
  go mod edit -require "k8s.io/kubernetes@$KUBERNETES_VERSION"
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler)
  for c in "${cmds[@]}"; do go get -tool "k8s.io/kubernetes/cmd/$c@$KUBERNETES_VERSION"; done
  for c in "${cmds[@]}"; do
    go build -trimpath -ldflags="$(k8s_ldflags)" -o "../bin/$c" "k8s.io/kubernetes/cmd/$c"
  done
}

build_kwok() {
  go mod init weir-e2e/kwok
  copy_replaces "sigs.k8s.io/kwok@$KWOK_VERSION"
  go get -tool "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  go build -trimpath -ldflags=-s\ -w -o ../bin/kwok sigs.k8s.io/kwok/cmd/kwok
  # kwok's stage definitions (pod and node lifecycles) ship inside its module.
  local mod
  mod="$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  mkdir -p ../stages && cp -r "$mod/kustomize/stage/." ../stages/ && chmod -R u+w ../stages
}

build_argo() {
  go mod init weir-e2e/argo-rollouts
  copy_replaces "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION"
  local cmds=(rollouts-controller kubectl-argo-rollouts)
  for c in "${cmds[@]}"; do go get -tool "github.com/argoproj/argo-rollouts/cmd/$c@$ARGO_ROLLOUTS_VERSION"; done
  for c in "${cmds[@]}"; do
    go build -trimpath -ldflags=-s\ -w -o "../bin/$c" "github.com/argoproj/argo-rollouts/cmd/$c"
  done
  # The CRDs the controller serves, from the same module, so the API matches the binary.
  local mod
  mod="$(go list -m -f '{{.Dir}}' github.com/argoproj/argo-rollouts)"
  mkdir -p ../crds && cp "$mod"/manifests/crds/*.yaml ../crds/ && chmod u+w ../crds/*.yaml
}

component() {
  local name="$1" version="$2" fn="$3" dir="$cache/$1-$2"
  case "$name" in
    etcd) BINS=(etcd) ;;
    kubernetes) BINS=(kube-apiserver kube-controller-manager kube-scheduler) ;;
    kwok) BINS=(kwok) ;;
    argo-rollouts) BINS=(rollouts-controller kubectl-argo-rollouts) ;;
  esac
  if [ ! -e "$dir/.done" ]; then
    rm -rf "$dir"; mkdir -p "$dir/src" "$dir/bin"
    timed "$name $version" "$dir" "$fn"
  fi
  echo "$name=$dir"
}

only="${1:-all}"
for spec in "etcd $ETCD_VERSION build_etcd" "kubernetes $KUBERNETES_VERSION build_kubernetes" \
  "kwok $KWOK_VERSION build_kwok" "argo-rollouts $ARGO_ROLLOUTS_VERSION build_argo"; do
  read -r n v f <<<"$spec"
  if [ "$only" = all ] || [ "$only" = "$n" ]; then component "$n" "$v" "$f"; fi
done
if [ "$only" = all ]; then rm -rf "$GOCACHE"; fi

#!/usr/bin/env bash
# The e2e suite, one command: installs what it drives (Prometheus, openssl, iproute2 from
# Debian), builds the pinned control plane into ~/.cache/weir-e2e (once; see versions.env),
# builds weir's binaries (debug), and runs the scenarios inside a network namespace of its
# own (`unshare --net`, as root). Arguments: scenario names to run (default: all).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"

fail() { echo "e2e: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (unshare --net and addresses on lo need it)"
command -v unshare >/dev/null || fail "unshare (util-linux) is missing"
command -v kubectl >/dev/null || fail "kubectl is missing (the machine's kubectl is used)"

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v jq >/dev/null 2>&1 || need+=(jq)
if ((${#need[@]})); then
  echo "e2e: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

tools="$(mktemp)"
trap 'rm -f "$tools"' EXIT
t0=$SECONDS
"$here/build.sh" >"$tools"
echo "e2e: control plane ready ($((SECONDS - t0)) s)"
# helm for scenario 9-helm (pinned by tools/helm, built once; the scenarios run without a
# network, so it is built here).
if [ "$#" -eq 0 ] || [[ " $* " == *" 9-helm "* ]]; then
  t0=$SECONDS
  echo "HELM=$("$repo/tools/build.sh" helm)" >>"$tools"
  echo "e2e: helm ready ($((SECONDS - t0)) s)"
fi
t0=$SECONDS
(cd "$repo" && cargo build --bins --locked --quiet)
echo "e2e: weir binaries ready ($((SECONDS - t0)) s)"
bins="${CARGO_TARGET_DIR:-$repo/target}/debug"

unshare --net --fork -- python3 "$here/harness/main.py" "$repo" "$bins" "$tools" "$@"

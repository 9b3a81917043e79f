#!/usr/bin/env bash
# weir's whole test suite, from a fresh machine: installs the system tools the tests drive
# (Prometheus and promtool, curl, h2load), then checks formatting and lints, runs every test,
# and last the end-to-end suite on a real control plane with Argo Rollouts (e2e/run.sh, which
# builds the pinned control plane into ~/.cache/weir-e2e on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# helm, kubeconform and the Kubernetes / CRD schemas for config/tests/helm_chart.rs, built or
# fetched once into ~/.cache/weir-tools (the test runs it too; here its build time shows).
bash deploy/tools/install.sh >/dev/null

# One full build, not an edit loop: incremental compilation's caches would only take disk
# (nearly 3 GB) and time. A developer's own CARGO_INCREMENTAL wins.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cargo fmt --all --check
# No import circle in any crate: no set of modules that use each other in a loop.
for crate in config proxy controller; do
  python3 scripts/import-circles.py "$crate/src"
done
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# The Argo Rollouts traffic-router plugin (Go): formatted, vetted, its unit tests.
(
  cd plugin
  unformatted=$(gofmt -l .)
  [ -z "$unformatted" ] || { echo "gofmt needed: $unformatted" >&2; exit 1; }
  # The flags plugin/build.sh builds the binary with (static, -trimpath): the e2e suite's
  # build of it then finds every package compiled here in Go's cache.
  export CGO_ENABLED=0 GOFLAGS=-trimpath
  go vet ./...
  go test ./...
)

# The e2e suite's pinned control plane (built once into ~/.cache/weir-e2e; when it is there
# this takes under a second) builds beside the fuzz smoke run, whose fuzzers use one core.
# Its own process group, stopped if anything before the e2e suite fails.
e2e_build_log=$(mktemp)
setsid ./e2e/build.sh >/dev/null 2>"$e2e_build_log" &
e2e_build=$!
trap 'kill -- "-$e2e_build" 2>/dev/null || true; rm -f "$e2e_build_log"' EXIT

# 30 seconds of every fuzz target, an unoptimized build (it builds in half the time; fuzz/run.sh;
# longer runs, optimized: fuzz/run.sh 600).
FUZZ_PROFILE=dev ./fuzz/run.sh 30

e2e_built=0
wait "$e2e_build" || e2e_built=$?
cat "$e2e_build_log" >&2
[ "$e2e_built" -eq 0 ] || { echo "e2e/build.sh failed ($e2e_built)" >&2; exit 1; }

# The end-to-end suite, last. It needs root (its own network namespace); e2e/run.sh says so
# and fails if it cannot have it.
if [ "$(id -u)" -eq 0 ]; then
  ./e2e/run.sh
else
  sudo -E env "PATH=$PATH" ./e2e/run.sh
fi

#!/usr/bin/env bash
# Builds the weir traffic-router plugin binary into a cache outside the repository,
# ~/.cache/weir-plugin/<hash>/weir-rollouts-plugin, where <hash> covers every input (go.mod,
# go.sum, the Go sources, the Go version), so the e2e suite rebuilds only when something changed.
# Prints the binary's path on stdout (progress goes to stderr).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
hash="$( { go version; cat go.mod go.sum; find . -name '*.go' -not -name '*_test.go' | LC_ALL=C sort | xargs cat; } | sha256sum | cut -c1-16)"
out="${WEIR_PLUGIN_CACHE:-$HOME/.cache/weir-plugin}/$hash"
bin="$out/weir-rollouts-plugin"
if [[ ! -x "$bin" ]]; then
  mkdir -p "$out"
  start=$(date +%s)
  # Static and reproducible: Argo may run it in a distroless image.
  CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin.tmp" .
  mv "$bin.tmp" "$bin"
  echo $(( $(date +%s) - start )) > "$out/build-seconds"
  echo "built $bin in $(cat "$out/build-seconds") s" >&2
fi
echo "$bin"

#!/usr/bin/env bash
# Builds a pinned Go tool the tests drive, once, into a cache outside the repository, and
# prints its path:
#
#   tools/build.sh h2spec     # -> ~/.cache/weir-tools/h2spec-<pin>/h2spec
#
# Each tool is a directory here whose go.mod/go.sum pin it and all its dependencies and
# whose tools.go names the command to build. The cache directory is named by a hash of
# those pins: changing a version builds a new binary; an existing one is reused.
set -euo pipefail
name=${1:?usage: tools/build.sh NAME}
here=$(cd "$(dirname "$0")" && pwd)
src=$here/$name
[[ -f $src/go.mod && -f $src/tools.go ]] || { echo "tools/build.sh: no pinned tool '$name' in $here" >&2; exit 2; }
command -v go >/dev/null || { echo "tools/build.sh: go is required to build $name" >&2; exit 2; }

pin=$(cat "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)
dir=${WEIR_TOOLS_CACHE:-$HOME/.cache/weir-tools}/$name-$pin
if [[ ! -x $dir/$name ]]; then
  pkg=$(sed -n 's/^import _ "\(.*\)"$/\1/p' "$src/tools.go")
  echo "building $pkg into $dir (once)" >&2
  mkdir -p "$dir"
  tmp=$(mktemp -d "$dir/.build.XXXXXX")
  (cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$tmp/$name" "$pkg") >&2
  mv "$tmp/$name" "$dir/$name"
  rmdir "$tmp"
fi
echo "$dir/$name"

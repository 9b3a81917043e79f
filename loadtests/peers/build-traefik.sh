#!/usr/bin/env bash
# loadtests/peers/build-traefik.sh: build the pinned Traefik (versions.env) from the Go module
# proxy into $WEIR_PEERS_CACHE/traefik-<version>/traefik, once; later calls reuse it.
# Prints the binary's path on stdout (logs go to stderr).
#
# Traefik's module zip does not build as it is from the module proxy alone:
#   - github.com/traefik/traefik/dynamic/ext is replaced by ./pkg/config/dynamic/ext, a folder
#     that is not in the zip: a local module with its two empty types (HTTP, Router) stands in
#     (they are the hook for extensions; upstream's are empty too);
#   - github.com/abbot/go-http-auth points at a fork whose pseudo-version the proxy does not
#     serve: a local module with the API the basic/digest auth middlewares call stands in, and
#     it REFUSES every credential (401): the bench job uses no auth middleware;
#   - lego DNS providers whose SDKs the proxy does not serve are stubbed (see below); the
#     bench job uses no ACME;
#   - github.com/gorilla/mux => github.com/containous/mux (already a replace line upstream).
set -euo pipefail
trap 'log "failed (line $LINENO)"' ERR
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$HERE/versions.env"

V=$TRAEFIK_VERSION
OUT=$WEIR_PEERS_CACHE/traefik-$V
BIN=$OUT/traefik
log() { printf '[%s] build-traefik: %s\n' "$(date +%T)" "$*" >&2; }

if [[ -x $BIN ]] && "$BIN" version 2>/dev/null | grep -q "${V#v}"; then
    echo "$BIN"
    exit 0
fi
command -v go >/dev/null || { log "needs go (golang) on PATH"; exit 1; }

export GOFLAGS=-mod=mod
log "downloading github.com/traefik/traefik/v3@$V from the module proxy"
dir=$(cd /tmp && go mod download -json "github.com/traefik/traefik/v3@$V" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
[[ -f $dir/go.mod ]] || { log "no module source at $dir"; exit 1; }

SRC=$OUT/src
rm -rf "$SRC.tmp"
mkdir -p "$OUT"
cp -r "$dir" "$SRC.tmp"
chmod -R u+w "$SRC.tmp"

# 1. the extension module's two empty types
mkdir -p "$SRC.tmp/pkg/config/dynamic/ext"
cat >"$SRC.tmp/pkg/config/dynamic/ext/go.mod" <<'EOF'
module github.com/traefik/traefik/dynamic/ext

go 1.24
EOF
cat >"$SRC.tmp/pkg/config/dynamic/ext/ext.go" <<'EOF'
// Package ext: stand-in for the module missing from Traefik's zip (built by weir's
// loadtests/peers/build-traefik.sh). Extension points of the dynamic configuration, empty.
package ext

// HTTP is inlined into dynamic.HTTPConfiguration.
type HTTP struct{}

// Router is inlined into dynamic.Router.
type Router struct{}
EOF

# 2. go-http-auth: the API the auth middlewares call, refusing every credential
mkdir -p "$SRC.tmp/weir-stubs/go-http-auth"
cat >"$SRC.tmp/weir-stubs/go-http-auth/go.mod" <<'EOF'
module github.com/abbot/go-http-auth

go 1.24
EOF
cat >"$SRC.tmp/weir-stubs/go-http-auth/auth.go" <<'EOF'
// Package auth: stand-in for the go-http-auth fork the module proxy does not serve (built by
// weir's loadtests/peers/build-traefik.sh). Every check fails: basic and digest auth refuse
// every request with 401. The load tests use neither.
package auth

import (
	"net/http"
	"strings"
)

// SecretProvider returns the stored secret of a user in a realm ("" if none).
type SecretProvider func(user, realm string) string

// CheckSecret never matches.
func CheckSecret(password, secret string) bool { return false }

// BasicAuth answers 401 with a Basic challenge.
type BasicAuth struct {
	Realm   string
	Secrets SecretProvider
}

// RequireAuth writes the challenge.
func (a *BasicAuth) RequireAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+a.Realm+`"`)
	http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
}

// DigestAuth answers 401 with a Digest challenge.
type DigestAuth struct {
	Realm   string
	Secrets SecretProvider
}

// NewDigestAuthenticator makes a DigestAuth.
func NewDigestAuthenticator(realm string, secrets SecretProvider) *DigestAuth {
	return &DigestAuth{Realm: realm, Secrets: secrets}
}

// CheckAuth never authenticates.
func (a *DigestAuth) CheckAuth(r *http.Request) (string, *string) { return "", nil }

// RequireAuth writes the challenge.
func (a *DigestAuth) RequireAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Digest realm="`+a.Realm+`", algorithm=MD5, qop="auth"`)
	http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
}

// RequireAuthStale writes the challenge.
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) { a.RequireAuth(w, r) }

// DigestAuthParams parses the parameters of a Digest Authorization header.
func DigestAuthParams(header string) map[string]string {
	out := map[string]string{}
	s := strings.TrimSpace(header)
	if !strings.HasPrefix(s, "Digest ") {
		return out
	}
	for _, kv := range strings.Split(s[len("Digest "):], ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}
EOF
(cd "$SRC.tmp" && go mod edit -replace "github.com/abbot/go-http-auth=./weir-stubs/go-http-auth")

# 3. lego DNS providers whose SDKs the module proxy does not serve (403 for their zips): a
#    copy of lego with those providers left out of its provider table (asking for one of
#    them gives lego's "unrecognized DNS provider" error) and their folders removed.
LEGO_UNSERVED=(alidns aliesa azion dnsimple edgedns edgeone huaweicloud oraclecloud regfish
    sakuracloud tencentcloud ucloud yandexcloud)
# (from go.mod's require line: `go list -m all` itself fails on the unserved modules)
lego_mod=$(awk '$1 ~ /^github.com\/go-acme\/lego\/v[0-9]+$/ {print $1 "@" $2; exit}' "$SRC.tmp/go.mod")
[[ -n $lego_mod ]] || { log "no go-acme/lego in Traefik's module graph"; exit 1; }
lego_dir=$(cd /tmp && go mod download -json "$lego_mod" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
cp -r "$lego_dir" "$SRC.tmp/weir-stubs/lego"
chmod -R u+w "$SRC.tmp/weir-stubs/lego"
python3 - "$SRC.tmp/weir-stubs/lego/providers/dns/zz_gen_dns_providers.go" "${LEGO_UNSERVED[@]}" <<'PY'
import re, sys
path, drop = sys.argv[1], set(sys.argv[2:])
lines = open(path).read().split("\n")
out = []
for line in lines:
    m = re.match(r'\s*"github.com/go-acme/lego/v\d+/providers/dns/(\w+)"$', line)
    if m and m[1] in drop:
        continue
    m = re.match(r"\s*return (\w+)\.NewDNSProvider\(\)", line)
    if m and m[1] in drop:
        out.pop()  # its `case ...:` line
        continue
    out.append(line)
open(path, "w").write("\n".join(out))
PY
for prov in "${LEGO_UNSERVED[@]}"; do rm -rf "$SRC.tmp/weir-stubs/lego/providers/dns/$prov"; done
(cd "$SRC.tmp" && go mod edit -replace "${lego_mod%@*}=./weir-stubs/lego")

rm -rf "$SRC"
mv "$SRC.tmp" "$SRC"
log "building ./cmd/traefik (several minutes on 2 cores)"
(cd "$SRC" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$V" \
    -o "$BIN.tmp" ./cmd/traefik)
mv "$BIN.tmp" "$BIN"
"$BIN" version >&2
echo "$BIN"

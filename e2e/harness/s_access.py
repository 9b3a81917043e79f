"""Scenario 8: access control on the real control plane. Ingresses with
whitelist-source-range (a client from an allowed source address and one from another, a
forged X-Forwarded-For) and denylist-source-range; basic auth from an Opaque Secret in
each htpasswd format ({SHA}, apr1, bcrypt; right and wrong password, none; the Secret
changed, the new password works within a bounded time and the old one stops) and from an
auth-map Secret; and external auth against an auth service this harness runs (allow with
the identity header copied and a forged one stripped, 401, 403, a signin redirect, an
answer cached under auth-cache-key, a service that is down and one too slow → 500).

The backend is an echo server the harness runs on a pod-range address, behind a Service
without selector and its EndpointSlice, so the headers weir forwards can be read."""

import base64
import hashlib
import http.client
import json
import threading
import time
import warnings
from hashlib import md5
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ctx import NS
from load import WEIR_HOST, WEIR_PORT
from procs import SuiteError, wait_for

ALLOWED_CLIENT = "192.0.2.200"  # in the netns's local 192.0.2.0/24, outside the pod range
ECHO = ("192.0.2.201", 8080)
AUTH = ("127.0.0.1", 9913)
AUTH_DOWN = ("127.0.0.1", 9914)  # nothing listens here: the netns is the suite's own
IP_HOST, DENY_HOST = "ip.access.e2e.test", "deny.access.e2e.test"
BASIC_HOST, MAP_HOST = "basic.access.e2e.test", "map.access.e2e.test"
EXT_HOST, SIGNIN_HOST = "ext.access.e2e.test", "signin.access.e2e.test"
CACHE_HOST, DOWN_HOST = "cache.access.e2e.test", "down.access.e2e.test"
SIGNIN = "https://login.e2e.test/start"
ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def sha(password):
    return "{SHA}" + base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()


def apr1(password, salt="e2esalt1"):
    """Apache's MD5 crypt, as `htpasswd -m` writes it (checked against `openssl passwd -apr1`)."""
    pw, sl = password.encode(), salt.encode()
    ctx = pw + b"$apr1$" + sl
    alt = md5(pw + sl + pw).digest()
    for n in range(len(pw), 0, -16):
        ctx += alt[:min(16, n)]
    i = len(pw)
    while i:
        ctx += b"\0" if i & 1 else pw[:1]
        i >>= 1
    f = md5(ctx).digest()
    for i in range(1000):
        f = md5((pw if i & 1 else f) + (sl if i % 3 else b"") + (pw if i % 7 else b"") + (f if i & 1 else pw)).digest()

    def to64(v, n):
        return "".join(ITOA64[(v >> (6 * k)) & 0x3F] for k in range(n))
    groups = [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)]
    out = "".join(to64((f[a] << 16) | (f[b] << 8) | f[c], 4) for a, b, c in groups) + to64(f[11], 2)
    return f"$apr1${salt}${out}"


def bcrypt(password):
    """A bcrypt hash ($2b$, cost 4) from the C library's crypt(3), as `htpasswd -B` writes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    if not hashed or not hashed.startswith("$2b$04$"):
        raise SuiteError(f"crypt(3) made no bcrypt hash here: {hashed!r}")
    return hashed


def b64(text):
    return base64.b64encode(text.encode()).decode()


def secret(password):
    """The auth-file Secret: alice's password `password` ({SHA}), bob's apr1, carol's bcrypt."""
    lines = f"alice:{sha(password)}\nbob:{apr1('bob-pass')}\n# a comment\ncarol:{bcrypt('carol-pass')}\n"
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: access-htpasswd}}
type: Opaque
data: {{auth: "{b64(lines)}"}}
"""


def map_secret():
    """The auth-map Secret: a key per user, its value the hash."""
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: access-map}}
type: Opaque
data: {{dave: "{b64(bcrypt('dave-pass'))}", erin: "{b64(sha('erin-pass'))}"}}
---
"""


def echo_backend(service, addr):
    """A Service without selector and its EndpointSlice: `service` port `http` (80) sends to
    the echo server the harness runs on `addr` (host, port)."""
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {service}}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {service}-1
  labels: {{kubernetes.io/service-name: {service}}}
addressType: IPv4
ports: [{{name: http, port: {addr[1]}, protocol: TCP}}]
endpoints: [{{addresses: ["{addr[0]}"], conditions: {{ready: true}}}}]
---
"""


def ingress(name, host, annotations, service="access-echo"):
    notes = "\n".join(f'    nginx.ingress.kubernetes.io/{k}: "{v}"' for k, v in annotations.items())
    return f"""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  annotations:
{notes}
spec:
  ingressClassName: weir
  rules:
    - host: {host}
      http:
        paths:
          - {{path: /, pathType: Prefix, backend: {{service: {{name: {service}, port: {{name: http}}}}}}}}
---
"""


MANIFESTS = echo_backend("access-echo", ECHO) + ingress("access-ip", IP_HOST, {"whitelist-source-range": f"{ALLOWED_CLIENT}/32, 2001:db8::/32"}) \
    + ingress("access-deny", DENY_HOST, {"denylist-source-range": "127.0.0.0/8"}) \
    + ingress("access-basic", BASIC_HOST, {"auth-type": "basic", "auth-secret": "access-htpasswd",
                                           "auth-realm": "e2e staff"}) \
    + ingress("access-map", MAP_HOST, {"auth-type": "basic", "auth-secret": "access-map",
                                       "auth-secret-type": "auth-map"}) \
    + ingress("access-ext", EXT_HOST, {"auth-url": f"http://{AUTH[0]}:{AUTH[1]}/check",
                                       "auth-response-headers": "X-Auth-Request-User"}) \
    + ingress("access-signin", SIGNIN_HOST, {"auth-url": f"http://{AUTH[0]}:{AUTH[1]}/check",
                                             "auth-signin": SIGNIN}) \
    + ingress("access-cache", CACHE_HOST, {"auth-url": f"http://{AUTH[0]}:{AUTH[1]}/check",
                                           "auth-cache-key": "$http_x_user",
                                           "auth-cache-duration": "200 401 5m"}) \
    + ingress("access-down", DOWN_HOST, {"auth-url": f"http://{AUTH_DOWN[0]}:{AUTH_DOWN[1]}/check"})


class Echo(BaseHTTPRequestHandler):
    """The backend: 200 with the request's headers as JSON (lower-case names, lists)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        headers = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        body = json.dumps({"path": self.path, "headers": headers}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Auth(BaseHTTPRequestHandler):
    """The auth service: by X-Test-Auth, `allow` (200, X-Auth-Request-User: alice), `deny403`
    (403), `slow` (answers after 7 s, past weir's 5 s auth timeout) or else 401."""
    hits = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        Auth.hits += 1
        mode = self.headers.get("X-Test-Auth")
        if mode == "slow":
            time.sleep(7)
        status = {"allow": 200, "deny403": 403, "slow": 200}.get(mode, 401)
        self.send_response(status)
        if status == 200:
            self.send_header("X-Auth-Request-User", "alice")
        else:
            self.send_header("WWW-Authenticate", 'Bearer realm="e2e"')
        self.send_header("Content-Length", "0")
        self.end_headers()


def request(host, headers=None, source=None):
    """One GET / through weir on a new connection, from `source` if given: (status, headers
    with lower-case names, body)."""
    conn = http.client.HTTPConnection(WEIR_HOST, WEIR_PORT, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("GET", "/", headers={"Host": host, **(headers or {})})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def expect(s, what, got, want):
    if got != want:
        raise SuiteError(f"{s}: {what}: got {got}, want {want}")


def access_control(ctx):
    s = "8-access"
    servers = [ThreadingHTTPServer(ECHO, Echo), ThreadingHTTPServer(AUTH, Auth)]
    threads = [threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
               for srv in servers]
    for t in threads:
        t.start()
    try:
        ctx.apply(secret("first-pass") + "---\n" + map_secret() + MANIFESTS)
        # IP allowlist: served once translated; then only the allowed source address.
        wait_for(f"{IP_HOST} to serve the allowed client",
                 lambda: request(IP_HOST, source=ALLOWED_CLIENT)[0] == 200, 60, interval=0.2)
        denied = request(IP_HOST)[0]
        allowed = request(IP_HOST, source=ALLOWED_CLIENT)[0]
        forged = request(IP_HOST, headers={"X-Forwarded-For": ALLOWED_CLIENT})[0]
        ctx.note(s, f"whitelist-source-range {ALLOWED_CLIENT}/32: from {ALLOWED_CLIENT} {allowed}, "
                    f"from 127.0.0.1 {denied}, from 127.0.0.1 with X-Forwarded-For {ALLOWED_CLIENT} {forged}")
        expect(s, "allowed client", allowed, 200)
        expect(s, "denied client", denied, 403)
        expect(s, "untrusted X-Forwarded-For", forged, 403)
        wait_for(f"{DENY_HOST} to serve a client outside its denylist",
                 lambda: request(DENY_HOST, source=ALLOWED_CLIENT)[0] == 200, 60, interval=0.2)
        listed = request(DENY_HOST)[0]
        ctx.note(s, f"denylist-source-range 127.0.0.0/8: from 127.0.0.1 {listed}, from {ALLOWED_CLIENT} 200")
        expect(s, "denylisted client", listed, 403)

        # Basic auth from the Secret; then the Secret changes.
        wait_for(f"{BASIC_HOST} to accept alice", lambda: request(BASIC_HOST, basic("alice", "first-pass"))[0] == 200,
                 60, interval=0.2)
        wrong, h, _ = request(BASIC_HOST, basic("alice", "nope"))
        missing, _, _ = request(BASIC_HOST)
        ctx.note(s, f"basic auth: right password 200, wrong {wrong} ({h.get('www-authenticate')}), none {missing}")
        expect(s, "wrong password", wrong, 401)
        expect(s, "challenge", h.get("www-authenticate"), 'Basic realm="e2e staff"')
        expect(s, "no credentials", missing, 401)
        formats = {f"{u} ({kind})": (request(BASIC_HOST, basic(u, f"{u}-pass"))[0],
                                     request(BASIC_HOST, basic(u, "nope"))[0])
                   for u, kind in [("bob", "apr1"), ("carol", "bcrypt")]}
        ctx.note(s, "htpasswd formats, right / wrong password: "
                    + ", ".join(f"{k} {r}/{w}" for k, (r, w) in formats.items()))
        for k, got in formats.items():
            expect(s, f"{k}: right / wrong password", got, (200, 401))
        wait_for(f"{MAP_HOST} to accept dave", lambda: request(MAP_HOST, basic("dave", "dave-pass"))[0] == 200,
                 60, interval=0.2)
        mapped = (request(MAP_HOST, basic("erin", "erin-pass"))[0], request(MAP_HOST, basic("dave", "erin-pass"))[0],
                  request(MAP_HOST, basic("alice", "first-pass"))[0])
        ctx.note(s, f"auth-map Secret: dave (bcrypt) 200, erin ({{SHA}}) {mapped[0]}, dave with erin's password "
                    f"{mapped[1]}, alice (not in the map) {mapped[2]}")
        expect(s, "auth-map: erin / dave wrong / alice", mapped, (200, 401, 401))
        changed = time.monotonic()
        ctx.apply(secret("second-pass"))
        wait_for("the changed Secret's password to work",
                 lambda: request(BASIC_HOST, basic("alice", "second-pass"))[0] == 200, 30, interval=0.1)
        took = time.monotonic() - changed
        old = request(BASIC_HOST, basic("alice", "first-pass"))[0]
        ctx.note(s, f"Secret changed: new password accepted after {took:.2f} s, old password now {old}")
        expect(s, "old password after the change", old, 401)

        # External auth.
        wait_for(f"{EXT_HOST} to let an allowed request through",
                 lambda: request(EXT_HOST, {"X-Test-Auth": "allow"})[0] == 200, 60, interval=0.2)
        status, _, body = request(EXT_HOST, {"X-Test-Auth": "allow", "X-Auth-Request-User": "mallory"})
        seen = json.loads(body)["headers"].get("x-auth-request-user")
        refused, h, _ = request(EXT_HOST, {"X-Auth-Request-User": "mallory"})
        ctx.note(s, f"external auth: allowed {status}, the backend saw X-Auth-Request-User {seen} "
                    f"(the client sent mallory); refused {refused} ({h.get('www-authenticate')}); "
                    f"{Auth.hits} subrequests")
        expect(s, "allowed by the auth service", status, 200)
        expect(s, "X-Auth-Request-User at the backend", seen, ["alice"])
        expect(s, "refused by the auth service", refused, 401)
        expect(s, "the auth service's challenge", h.get("www-authenticate"), 'Bearer realm="e2e"')
        forbidden = request(EXT_HOST, {"X-Test-Auth": "deny403"})[0]
        expect(s, "403 from the auth service", forbidden, 403)

        wait_for(f"{SIGNIN_HOST} to send a refused client to sign in",
                 lambda: request(SIGNIN_HOST)[0] == 302, 60, interval=0.2)
        _, h, _ = request(SIGNIN_HOST)
        ctx.note(s, f"auth-signin: 401 became 302 to {h.get('location')}")
        expect(s, "signin redirect", h.get("location"), f"{SIGNIN}?rd=http%3A%2F%2F{SIGNIN_HOST}%2F")

        wait_for(f"{CACHE_HOST} to let an allowed request through",
                 lambda: request(CACHE_HOST, {"X-User": "warm", "X-Test-Auth": "allow"})[0] == 200, 60, interval=0.2)
        before = Auth.hits
        cached = [request(CACHE_HOST, {"X-User": "u1", "X-Test-Auth": mode})[0] for mode in ("allow", "deny403")]
        cached += [request(CACHE_HOST, {"X-User": "u2", "X-Test-Auth": mode})[0] for mode in ("other", "allow")]
        asked = Auth.hits - before
        ctx.note(s, f"auth-cache-key $http_x_user, 200 401 5m: u1 allowed then {cached[1]} from the cache, "
                    f"u2 refused then {cached[3]} from the cache; {asked} subrequests for 4 requests")
        expect(s, "cached answers", cached, [200, 200, 401, 401])
        expect(s, "subrequests with the cache", asked, 2)

        wait_for(f"{DOWN_HOST} to be translated", lambda: request(DOWN_HOST)[0] != 404, 60, interval=0.2)
        down = request(DOWN_HOST)[0]
        started = time.monotonic()
        slow = request(EXT_HOST, {"X-Test-Auth": "slow"})[0]
        took = time.monotonic() - started
        ctx.note(s, f"auth service down: {down}; too slow: {slow} after {took:.1f} s")
        expect(s, "auth service down", down, 500)
        expect(s, "auth service too slow", slow, 500)
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        for t in threads:
            t.join(10)
        ctx.kubectl.run("delete", "ingress", "access-ip", "access-deny", "access-basic", "access-map", "access-ext",
                        "access-signin", "access-cache", "access-down", f"--namespace={NS}", "--ignore-not-found")
        ctx.kubectl.run("delete", "service", "access-echo", f"--namespace={NS}", "--ignore-not-found")
        ctx.kubectl.run("delete", "endpointslice", "access-echo-1", f"--namespace={NS}", "--ignore-not-found")
        ctx.kubectl.run("delete", "secret", "access-htpasswd", "access-map", f"--namespace={NS}", "--ignore-not-found")

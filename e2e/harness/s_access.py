"""Scenario 8: access control on the real control plane. Ingresses with
whitelist-source-range (a client from an allowed source address and one from another),
basic auth from an Opaque Secret (right and wrong password; the Secret changed, the new
password works within a bounded time and the old one stops), and external auth against an
auth service this harness runs (allow, 401, a forged identity header stripped).

The backend is an echo server the harness runs on a pod-range address, behind a Service
without selector and its EndpointSlice, so the headers weir forwards can be read."""

import base64
import hashlib
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ctx import NS
from load import WEIR_HOST, WEIR_PORT
from procs import SuiteError, wait_for

ALLOWED_CLIENT = "192.0.2.200"  # in the netns's local 192.0.2.0/24, outside the pod range
ECHO = ("192.0.2.201", 8080)
AUTH = ("127.0.0.1", 9913)
IP_HOST, BASIC_HOST, EXT_HOST = "ip.access.e2e.test", "basic.access.e2e.test", "ext.access.e2e.test"


def sha_line(user, password):
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


def secret(password):
    data = base64.b64encode(sha_line("alice", password).encode()).decode()
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: access-htpasswd}}
type: Opaque
data: {{auth: "{data}"}}
"""


def ingress(name, host, annotations):
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
          - {{path: /, pathType: Prefix, backend: {{service: {{name: access-echo, port: {{name: http}}}}}}}}
---
"""


MANIFESTS = f"""
apiVersion: v1
kind: Service
metadata: {{name: access-echo}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: access-echo-1
  labels: {{kubernetes.io/service-name: access-echo}}
addressType: IPv4
ports: [{{name: http, port: {ECHO[1]}, protocol: TCP}}]
endpoints: [{{addresses: ["{ECHO[0]}"], conditions: {{ready: true}}}}]
---
""" + ingress("access-ip", IP_HOST, {"whitelist-source-range": f"{ALLOWED_CLIENT}/32, 2001:db8::/32"}) \
    + ingress("access-basic", BASIC_HOST, {"auth-type": "basic", "auth-secret": "access-htpasswd",
                                           "auth-realm": "e2e staff"}) \
    + ingress("access-ext", EXT_HOST, {"auth-url": f"http://{AUTH[0]}:{AUTH[1]}/check",
                                       "auth-response-headers": "X-Auth-Request-User"})


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
    """The auth service: by X-Test-Auth, `allow` (200, X-Auth-Request-User: alice) or 401."""
    hits = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        Auth.hits += 1
        allow = self.headers.get("X-Test-Auth") == "allow"
        self.send_response(200 if allow else 401)
        if allow:
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
        ctx.apply(secret("first-pass") + "---\n" + MANIFESTS)
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

        # Basic auth from the Secret; then the Secret changes.
        wait_for(f"{BASIC_HOST} to accept alice", lambda: request(BASIC_HOST, basic("alice", "first-pass"))[0] == 200,
                 60, interval=0.2)
        wrong, h, _ = request(BASIC_HOST, basic("alice", "nope"))
        missing, _, _ = request(BASIC_HOST)
        ctx.note(s, f"basic auth: right password 200, wrong {wrong} ({h.get('www-authenticate')}), none {missing}")
        expect(s, "wrong password", wrong, 401)
        expect(s, "challenge", h.get("www-authenticate"), 'Basic realm="e2e staff"')
        expect(s, "no credentials", missing, 401)
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
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        for t in threads:
            t.join(10)
        ctx.kubectl.run("delete", "ingress", "access-ip", "access-basic", "access-ext", f"--namespace={NS}",
                        "--ignore-not-found")
        ctx.kubectl.run("delete", "service", "access-echo", f"--namespace={NS}", "--ignore-not-found")
        ctx.kubectl.run("delete", "endpointslice", "access-echo-1", f"--namespace={NS}", "--ignore-not-found")
        ctx.kubectl.run("delete", "secret", "access-htpasswd", f"--namespace={NS}", "--ignore-not-found")

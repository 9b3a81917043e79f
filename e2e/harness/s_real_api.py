"""Scenario 7: the controller's own end-to-end scenarios (controller/tests/e2e*.rs, there
against a fake API server) against the real one: canary pairing and weight changes by
annotation, TLS certificates from Secrets, IngressClass selection, Ingress status from the
publish Service, Events, and the leader's Lease."""

import os
import socket
import ssl
import subprocess
import tempfile
import time

from ctx import NS, check_split, workload
from load import sample
from procs import SuiteError, wait_for

PAIR = workload("pair-main", "blue") + workload("pair-alt", "green") + """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: tls}
spec:
  ingressClassName: weir
  tls: [{hosts: [tls.e2e.test], secretName: pair-tls}]
  rules:
    - host: tls.e2e.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: pair-main, port: {name: http}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: pair}
spec:
  ingressClassName: weir
  rules:
    - host: pair.e2e.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: pair-main, port: {name: http}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: pair-canary
  annotations: {nginx.ingress.kubernetes.io/canary: "true", nginx.ingress.kubernetes.io/canary-weight: "0"}
spec:
  ingressClassName: weir
  rules:
    - host: pair.e2e.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: pair-alt, port: {name: http}}}}
"""

CATCH_ALL = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: catch-all}
spec:
  ingressClassName: weir
  defaultBackend: {service: {name: pair-main, port: {name: http}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: catch-all-canary
  annotations: {nginx.ingress.kubernetes.io/canary: "true", nginx.ingress.kubernetes.io/canary-weight: "100"}
spec:
  ingressClassName: weir
  defaultBackend: {service: {name: pair-alt, port: {name: http}}}
"""

CLASSES = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other-class}
spec:
  ingressClassName: other
  rules: [{host: other.e2e.test, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: app-stable, port: {number: 80}}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: legacy-annotation
  annotations: {kubernetes.io/ingress.class: weir}
spec:
  rules: [{host: annotated.e2e.test, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: app-stable, port: {number: 80}}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: no-class}
spec:
  rules: [{host: noclass.e2e.test, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: app-stable, port: {number: 80}}}}]}}]
"""


def tls_secret(ctx, host):
    d = tempfile.mkdtemp(prefix="tls-", dir=ctx.weir.work)
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                        "-days", "1", "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}"],
                       cwd=d, capture_output=True, text=True)
    if p.returncode != 0:
        raise SuiteError(f"openssl: {p.stderr}")
    ctx.kubectl.run("create", "secret", "tls", "pair-tls", f"--cert={d}/c.pem", f"--key={d}/k.pem", f"--namespace={NS}")
    return os.path.join(d, "c.pem")


def tls_get(host, cafile):
    """GET / over TLS to weir with SNI `host`, verifying against the Secret's certificate."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", 8443), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    return data.split(b"\r\n", 1)[0].decode(), data


def served_hosts(ctx):
    return {h.get("host") for h in ctx.weir.table().get("hosts", [])}


def controller_scenarios(ctx):
    s = "7-controller-e2e"
    cert = tls_secret(ctx, "tls.e2e.test")
    ctx.apply(PAIR)
    wait_for("pair.e2e.test canary at weight 0", lambda: ctx.canary_weight("pair.e2e.test") == 0, 30, interval=0.05)
    ctx.wait_only("pair.e2e.test", "blue", timeout=60)
    # Weight changes by annotation, as Argo makes them: each reaches clients within a second.
    for w in (20, 100, 0):
        t_cmd = time.monotonic()
        ctx.kubectl.run("annotate", "--overwrite", "ingress", "pair-canary",
                        f"nginx.ingress.kubernetes.io/canary-weight={w}", f"--namespace={NS}")
        t0 = time.monotonic()  # the API server has the change from here on
        took = ctx.wait_weight("pair.e2e.test", w, timeout=10) - t0
        ctx.note(s, f"annotate canary-weight={w} -> at weir {took:.2f} s after kubectl returned "
                    f"({t0 - t_cmd:.2f} s in kubectl)")
        if took > 1.0:
            raise SuiteError(f"{s}: weight {w} took {took:.2f} s to reach weir (> 1 s)")
        check_split(ctx, s, "pair.e2e.test", w, "green", n=200)
    # TLS from the Secret, on the host it names; plain HTTP there is redirected (ssl-redirect).
    status_line, body = wait_for("TLS on tls.e2e.test", lambda: tls_get("tls.e2e.test", cert), 30, interval=0.1)
    last_line = body.rstrip().split(b"\n")[-1].decode(errors="replace")
    ctx.note(s, f"TLS with SNI tls.e2e.test verified against the Secret's certificate: {status_line}, body {last_line!r}")
    if not status_line.endswith("200 OK") or not last_line.startswith("blue"):
        raise SuiteError(f"{s}: TLS request answered {status_line} {last_line!r}")
    plain = sample("tls.e2e.test", 10)
    ctx.note(s, f"plain HTTP to tls.e2e.test: {dict(plain)}")
    if plain != {"failed:308": 10}:
        raise SuiteError(f"{s}: plain HTTP to a TLS host was not redirected: {dict(plain)}")
    # A canary with only spec.defaultBackend pairs with the main default backend (catch-all).
    ctx.apply(CATCH_ALL)
    wait_for("the catch-all canary at weight 100", lambda: ctx.canary_weight(None) == 100, 30, interval=0.05)
    got = sample("unknown.e2e.test", 100)
    ctx.note(s, f"defaultBackend-only canary at weight 100, a host no rule names: {dict(got)}")
    if got != {"green": 100}:
        raise SuiteError(f"{s}: the defaultBackend canary did not take the catch-all: {dict(got)}")
    ctx.kubectl.run("delete", "ingress", "catch-all", "catch-all-canary", f"--namespace={NS}")
    # IngressClass selection.
    ctx.apply(CLASSES)
    wait_for("annotated.e2e.test served", lambda: "annotated.e2e.test" in served_hosts(ctx), 30, interval=0.05)
    hosts = served_hosts(ctx)
    if "other.e2e.test" in hosts or "noclass.e2e.test" in hosts:
        raise SuiteError(f"{s}: weir serves an Ingress of another class or of no class: {sorted(h for h in hosts if h)}")
    ctx.kubectl.run("annotate", "--overwrite", "ingressclass", "weir", "ingressclass.kubernetes.io/is-default-class=true")
    wait_for("noclass.e2e.test served once weir is the default class",
             lambda: "noclass.e2e.test" in served_hosts(ctx), 30, interval=0.05)
    ctx.kubectl.run("annotate", "--overwrite", "ingressclass", "weir", "ingressclass.kubernetes.io/is-default-class=false")
    wait_for("noclass.e2e.test dropped again", lambda: "noclass.e2e.test" not in served_hosts(ctx), 30, interval=0.05)
    ctx.note(s, "class: other-class not served; annotation class served; no class served only while weir is default")
    # Status: the publish Service's address on every served Ingress, written by the leader.
    svc = ctx.api.get("/api/v1/namespaces/weir-system/services/weir")
    ip = svc["spec"]["clusterIP"]

    def status_ip():
        ing = ctx.api.get(f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/pair")
        lb = (ing.get("status", {}).get("loadBalancer", {}) or {}).get("ingress") or []
        return lb and lb[0].get("ip") == ip
    wait_for(f"Ingress pair status.loadBalancer {ip}", status_ip, 30, interval=0.1)
    other = ctx.api.get(f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/other-class")
    if (other.get("status", {}).get("loadBalancer") or {}).get("ingress"):
        raise SuiteError(f"{s}: weir wrote the status of an Ingress of another class")
    lease = ctx.api.get("/apis/coordination.k8s.io/v1/namespaces/weir-system/leases/weir-controller")
    ctx.note(s, f"status.loadBalancer.ingress[0].ip = {ip} (Service weir-system/weir); Lease holder "
                f"{lease['spec'].get('holderIdentity')}")
    if lease["spec"].get("holderIdentity") != "weir-e2e-0":
        raise SuiteError(f"{s}: the Lease is held by {lease['spec'].get('holderIdentity')}, not the controller")
    # A diagnostic becomes an Event on its Ingress.
    ctx.kubectl.run("annotate", "--overwrite", "ingress", "pair-canary", "nginx.ingress.kubernetes.io/canary-weight=x",
                    f"--namespace={NS}")

    def invalid_event():
        evs = ctx.api.get(f"/apis/events.k8s.io/v1/namespaces/{NS}/events")["items"]
        return [e for e in evs if e.get("reason") == "InvalidAnnotation" and e["regarding"]["name"] == "pair-canary"]
    ev = wait_for("an InvalidAnnotation Event on pair-canary", invalid_event, 30, interval=0.2)[0]
    ctx.note(s, f"Event {ev['reason']} on pair-canary from {ev.get('reportingController')}: {ev.get('note', '')[:100]}")
    ctx.kubectl.run("delete", "ingress", "tls", "pair", "pair-canary", "other-class", "legacy-annotation", "no-class",
                    f"--namespace={NS}")
    ctx.kubectl.run("delete", "replicaset", "pair-main", "pair-alt", f"--namespace={NS}")

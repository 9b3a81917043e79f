"""Scenario 3: the seed's blue/green Rollout (deploy/examples/argo-rollouts/bluegreen): the
preview reachable through its own Ingress, promotion switching all traffic with no failed
request, and the old ReplicaSet kept for scaleDownDelaySeconds."""

import time

from ctx import NS
from load import Load, failed_summary, sample
from procs import SuiteError, wait_for
from s_canary import pods_of, set_image

HOST, PREVIEW = "bg.e2e.test", "preview.bg.e2e.test"
DELAY = 8

MANIFESTS = """
apiVersion: v1
kind: Service
metadata: {name: bg-active}
spec:
  selector: {app: bg}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: bg-preview}
spec:
  selector: {app: bg}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bg}
spec:
  ingressClassName: weir
  rules:
    - host: %(host)s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: bg-active, port: {name: http}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bg-preview}
spec:
  ingressClassName: weir
  rules:
    - host: %(preview)s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: bg-preview, port: {name: http}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: bg}
spec:
  replicas: 2
  revisionHistoryLimit: 2
  selector: {matchLabels: {app: bg}}
  template:
    metadata:
      labels: {app: bg, weir-e2e/app: bg}
    spec:
      containers:
        - name: app
          image: weir-e2e/demo:v1
          ports: [{name: http, containerPort: 8080}]
  strategy:
    blueGreen:
      activeService: bg-active
      previewService: bg-preview
      autoPromotionEnabled: false
      scaleDownDelaySeconds: %(delay)d
""" % {"host": HOST, "preview": PREVIEW, "delay": DELAY}


def bluegreen(ctx):
    s = "3-bluegreen"
    ctx.apply(MANIFESTS)
    ctx.wait_healthy("bg", timeout=120)
    ctx.wait_only(HOST, "v1")
    with Load(HOST) as load:
        set_image(ctx, "bg", "v2")
        ctx.wait_rollout("bg", "paused with a preview", lambda r: r.get("status", {}).get("phase") == "Paused"
                         and r["status"].get("blueGreen", {}).get("previewSelector")
                         != r["status"].get("blueGreen", {}).get("activeSelector"), 90)
        ctx.wait_only(PREVIEW, "v2", timeout=30)
        got = sample(HOST, 200)
        ctx.note(s, f"before promotion: preview host serves only v2; active host {dict(got)}")
        if got != {"v1": 200}:
            raise SuiteError(f"{s}: the active host served something else than v1 before promotion: {dict(got)}")
        t0 = time.monotonic()
        ctx.kubectl.argo("promote", "bg", f"--namespace={NS}")
        ctx.wait_only(HOST, "v2", timeout=30, n=20)
        switched = [r for r in load.snapshot(since=t0) if r.version == "v1"]
        t_last_v1 = max((r.t for r in switched), default=t0)
        first_v2 = min((r.t for r in load.snapshot(since=t0) if r.version == "v2"), default=None)
        ctx.note(s, f"promote -> first v2 {first_v2 - t0:.2f} s, last v1 {t_last_v1 - t0:.2f} s (all traffic switched)")
        # The old pods are kept for scaleDownDelaySeconds after the switch, then go.
        wait_for("v1 pods scaled down", lambda: not pods_of(ctx, "app=bg", "v1"), DELAY + 60, interval=0.2)
        gone = time.monotonic() - t0
        ctx.note(s, f"v1 pods gone {gone:.1f} s after promote (scaleDownDelaySeconds {DELAY})")
        time.sleep(1.0)
    bad = load.failures()
    ctx.note(s, f"{len(load.records)} requests through the switch and scale-down; failed: {len(bad)} "
                f"{failed_summary(load.records)}")
    if bad:
        raise SuiteError(f"{s}: {len(bad)} failed requests")
    # Argo writes the scale-down deadline in whole seconds: up to 1 s early is its rounding.
    if gone < DELAY - 1.0:
        raise SuiteError(f"{s}: the old ReplicaSet went after {gone:.1f} s, before scaleDownDelaySeconds {DELAY}")

"""Scenario 5: a hand-written canary Ingress for the same host/path, older than Argo's
(what a team migrating from ingress-nginx has lying around), must not disable Argo's
canary: the Rollout's canary wins, and the stale one is reported by an Event and a metric."""

import time

from ctx import NS, check_split
from load import sample
from procs import SuiteError, wait_for
from s_canary import set_image

HOST = "legacy.e2e.test"

MANIFESTS = """
apiVersion: v1
kind: Service
metadata: {name: legacy-stable}
spec:
  selector: {app: legacy}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: legacy-canary}
spec:
  selector: {app: legacy}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: legacy}
spec:
  ingressClassName: weir
  rules:
    - host: %(host)s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: legacy-stable, port: {name: http}}}}
---
# Left over from ingress-nginx: weight 0, pointing at the stable Service.
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: legacy-old-canary
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-weight: "0"
spec:
  ingressClassName: weir
  rules:
    - host: %(host)s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: legacy-stable, port: {name: http}}}}
"""

ROLLOUT = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: legacy}
spec:
  replicas: 2
  selector: {matchLabels: {app: legacy}}
  template:
    metadata:
      labels: {app: legacy, weir-e2e/app: legacy}
    spec:
      containers:
        - name: app
          image: weir-e2e/demo:v1
          ports: [{name: http, containerPort: 8080}]
  strategy:
    canary:
      stableService: legacy-stable
      canaryService: legacy-canary
      scaleDownDelaySeconds: 3
      trafficRouting:
        nginx:
          stableIngress: legacy
          additionalIngressAnnotations:
            canary-by-header: X-Canary
            canary-by-header-value: "true"
      steps:
        - setWeight: 50
        - pause: {}
"""
MANIFESTS = MANIFESTS % {"host": HOST}


def conflict_events(ctx):
    evs = ctx.api.get(f"/apis/events.k8s.io/v1/namespaces/{NS}/events")["items"]
    return [e for e in evs if e.get("reason") == "CanaryConflict"
            and e.get("regarding", {}).get("name") == "legacy-old-canary"]


def stale_canary(ctx):
    s = "5-stale-canary"
    ctx.apply(MANIFESTS)
    time.sleep(1.1)  # the hand-written canary is older than Argo's by a full second (timestamps are in s)
    ctx.apply(ROLLOUT)
    ctx.wait_healthy("legacy", timeout=120)
    ctx.wait_only(HOST, "v1")
    set_image(ctx, "legacy", "v2")
    ctx.wait_rollout("legacy", "paused at 50", lambda r: (r.get("status", {}).get("canary", {}).get("weights") or {})
                     .get("canary", {}).get("weight") == 50 and r["status"].get("phase") == "Paused", 90)
    ctx.wait_weight(HOST, 50)
    ings = {i["metadata"]["name"]: i["metadata"]["creationTimestamp"] for i in
            ctx.api.get(f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses")["items"]}
    ctx.note(s, f"hand-written canary created {ings['legacy-old-canary']}, Argo's legacy-legacy-canary "
                f"{ings.get('legacy-legacy-canary')}")
    if not ings.get("legacy-legacy-canary") or ings["legacy-old-canary"] >= ings["legacy-legacy-canary"]:
        raise SuiteError(f"{s}: the hand-written canary is not the older one, so this tests nothing")
    rule = ctx.weir.rule(HOST)
    if rule["canary"]["backend"].get("service") != "legacy-canary":
        raise SuiteError(f"{s}: weir's canary is not Argo's: {rule['canary']}")
    check_split(ctx, s, HOST, 50, "v2")
    forced = sample(HOST, 100, {"X-Canary": "true"})
    ctx.note(s, f"X-Canary: true -> {dict(forced)}")
    if forced != {"v2": 100}:
        raise SuiteError(f"{s}: X-Canary: true did not always reach Argo's canary: {dict(forced)}")
    evs = wait_for("a CanaryConflict Event on legacy-old-canary", lambda: conflict_events(ctx), 30, interval=0.2)
    ctx.note(s, f"Event {evs[0]['reason']} on {evs[0]['regarding']['name']}: {evs[0].get('note', '')[:160]}")
    metric = ctx.weir.controller_metric("weir_controller_diagnostics").get('{reason="CanaryConflict"}', 0)
    ctx.note(s, f'weir_controller_diagnostics{{reason="CanaryConflict"}} = {metric:.0f}')
    if metric < 1:
        raise SuiteError(f"{s}: the conflict is not counted in weir_controller_diagnostics")
    ctx.kubectl.argo("promote", "--full", "legacy", f"--namespace={NS}")
    ctx.wait_healthy("legacy")
    ctx.wait_only(HOST, "v2")

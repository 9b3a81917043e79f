"""Scenario 4: the seed's operational commands through kubectl-argo-rollouts, each reflected
in the split weir serves: set image (to the first setWeight: the CLI has no `set weight`),
promote, pause, resume (`promote` of a paused rollout: v1.10.1 has no `resume`), promote
--full, undo (back to the previous revision, through the steps) and abort."""

import time

from ctx import NS, check_split
from load import Load, failed_summary
from procs import SuiteError
from s_canary import set_image

HOST = "ops.e2e.test"
TIMED = 8

MANIFESTS = """
apiVersion: v1
kind: Service
metadata: {name: ops-stable}
spec:
  selector: {app: ops}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: ops-canary}
spec:
  selector: {app: ops}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ops}
spec:
  ingressClassName: weir
  rules:
    - host: %(host)s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: ops-stable, port: {name: http}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: ops}
spec:
  replicas: 2
  revisionHistoryLimit: 5
  selector: {matchLabels: {app: ops}}
  template:
    metadata:
      labels: {app: ops, weir-e2e/app: ops}
    spec:
      containers:
        - name: app
          image: weir-e2e/demo:v1
          ports: [{name: http, containerPort: 8080}]
  strategy:
    canary:
      stableService: ops-stable
      canaryService: ops-canary
      scaleDownDelaySeconds: 3
      trafficRouting:
        nginx:
          stableIngress: ops
      steps:
        - setWeight: 20
        - pause: {}
        - setWeight: 40
        - pause: {duration: %(timed)ds}
        - setWeight: 60
        - pause: {}
""" % {"host": HOST, "timed": TIMED}


def commands(ctx):
    s = "4-commands"

    def argo(*args):
        t0 = time.monotonic()
        ctx.kubectl.argo(*args, "ops", f"--namespace={NS}")
        return t0

    def step(label, t0, weight, canary):
        t = ctx.wait_weight(HOST, weight)
        ctx.note(s, f"{label}: weight {weight} at weir {t - t0:.2f} s after the command")
        check_split(ctx, s, HOST, weight, canary, n=300)

    ctx.apply(MANIFESTS)
    ctx.wait_healthy("ops", timeout=120)
    ctx.wait_only(HOST, "v1")
    with Load(HOST) as load:
        t0 = time.monotonic()
        set_image(ctx, "ops", "v2")
        step("set image v2 (setWeight 20)", t0, 20, "v2")
        step("promote", argo("promote"), 40, "v2")
        t_step = time.monotonic()
        argo("pause")
        ctx.wait_rollout("ops", "paused by the user", lambda r: r["spec"].get("paused") is True, 10)
        # The timed pause runs out while the user's pause holds the step.
        time.sleep(max(0.0, t_step + TIMED + 2 - time.monotonic()))
        if ctx.canary_weight(HOST) != 40:
            raise SuiteError(f"{s}: the user's pause did not hold weight 40 (now {ctx.canary_weight(HOST)})")
        check_split(ctx, s, HOST, 40, "v2", n=300)
        ctx.note(s, f"pause: weight still 40 after the {TIMED} s timed pause ran out")
        # kubectl-argo-rollouts v1.10.1 has no `resume`: `promote` of a user-paused rollout
        # clears spec.paused and the pause conditions, and the rollout goes on.
        step("resume (promote of the user-paused rollout)", argo("promote"), 60, "v2")
        t0 = argo("promote", "--full")
        ctx.wait_healthy("ops")
        ctx.wait_only(HOST, "v2")
        ctx.note(s, f"promote --full: Healthy, only v2 served {time.monotonic() - t0:.2f} s after the command")
        step("undo (to v1, through the steps)", argo("undo"), 20, "v1")
        t0 = argo("abort")
        t = ctx.wait_weight(HOST, 0)
        ctx.note(s, f"abort: weight 0 at weir {t - t0:.2f} s after the command")
        check_split(ctx, s, HOST, 0, "v1", n=300)
        set_image(ctx, "ops", "v2")
        ctx.wait_healthy("ops")
    bad = load.failures()
    ctx.note(s, f"{len(load.records)} requests through all commands; failed: {len(bad)} {failed_summary(load.records)}")
    if bad:
        raise SuiteError(f"{s}: {len(bad)} failed requests")

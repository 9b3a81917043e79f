"""Scenarios 1 and 2: the seed's canary Rollout (deploy/examples/argo-rollouts/canary, pauses
shortened, analysis against the real Prometheus scraping weir) promoted to the end, then a
canary whose pods answer 500 failing its analysis and aborted by Argo."""

import threading
import time

from ctx import NS, check_split
from load import Load, failed_summary
from procs import SuiteError, wait_for

HOST = "app.e2e.test"

MANIFESTS = """
apiVersion: v1
kind: Service
metadata: {name: app-stable}
spec:
  selector: {app: app}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: app-canary}
spec:
  selector: {app: app}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app}
spec:
  ingressClassName: weir
  rules:
    - host: %(host)s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: app-stable, port: {name: http}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: app-canary-health}
spec:
  metrics:
    - name: success-rate
      interval: 2s
      count: 3
      failureLimit: 0
      # No canary sample yet (NaN) is not a failure; a success rate under 0.95 is.
      successCondition: isNaN(result) || result >= 0.95
      provider:
        prometheus:
          address: http://127.0.0.1:9090
          query: |
            scalar(sum(rate(nginx_ingress_controller_requests{ingress="app",canary!="",status!~"5.."}[5s]))
              / sum(rate(nginx_ingress_controller_requests{ingress="app",canary!=""}[5s])))
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: app}
spec:
  replicas: 2
  revisionHistoryLimit: 3
  selector: {matchLabels: {app: app}}
  template:
    metadata:
      labels: {app: app, weir-e2e/app: app}
    spec:
      containers:
        - name: app
          image: weir-e2e/demo:v1
          ports: [{name: http, containerPort: 8080}]
  strategy:
    canary:
      stableService: app-stable
      canaryService: app-canary
      scaleDownDelaySeconds: 5
      trafficRouting:
        nginx:
          stableIngress: app
          additionalIngressAnnotations:
            canary-by-header: X-Canary
            canary-by-header-value: "true"
      steps:
        - setWeight: 10
        - pause: {duration: 6s}
        - analysis: {templates: [{templateName: app-canary-health}]}
        - setWeight: 25
        - pause: {duration: 6s}
        - setWeight: 50
        - pause: {duration: 6s}
        - setWeight: 100
""" % {"host": HOST}


def set_image(ctx, rollout, version):
    ctx.kubectl.argo("set", "image", rollout, f"app=weir-e2e/demo:{version}", f"--namespace={NS}")


def deploy(ctx):
    ctx.apply(MANIFESTS)
    ctx.wait_healthy("app", timeout=120)
    ctx.wait_only(HOST, "v1")


def pods_of(ctx, label, version):
    pods = ctx.api.get(f"/api/v1/namespaces/{NS}/pods?labelSelector={label}")["items"]
    return [p for p in pods if p["spec"]["containers"][0]["image"].endswith(":" + version)]


def canary_rollout(ctx):
    """Scenario 1: v1 -> v2 through every step, every response counted."""
    s = "1-canary"
    deploy(ctx)
    with Load(HOST) as load, Load(HOST, {"X-Canary": "true"}, workers=1, pause=0.02) as forced:
        t0 = time.monotonic()
        set_image(ctx, "app", "v2")
        first = None
        for w in (10, 25, 50):
            t = ctx.wait_weight(HOST, w)
            first = first or t
            ctx.note(s, f"weight {w} at weir {t - t0:.2f} s after set image")
            check_split(ctx, s, HOST, w, "v2")
            if ctx.canary_weight(HOST) != w:
                raise SuiteError(f"{s}: the step moved on while the split at {w} was measured; lengthen the pause")
        ctx.wait_healthy("app", timeout=120)
        promoted = time.monotonic()
        ctx.note(s, f"Healthy (promoted) {promoted - t0:.2f} s after set image")
        for run in analysis_runs(ctx):
            st = run.get("status", {})
            values = [m.get("value") for r in st.get("metricResults") or [] for m in r.get("measurements") or []]
            ctx.note(s, f"analysis {run['metadata']['name']}: {st.get('phase')}, success rate measured "
                        f"through Prometheus: {values}")
            if st.get("phase") != "Successful":
                raise SuiteError(f"{s}: the analysis did not succeed: {st.get('message')}")
        ctx.wait_only(HOST, "v2")
        wait_for("v1 pods scaled down", lambda: not pods_of(ctx, "app=app", "v1"), 60, interval=0.2)
        ctx.note(s, f"v1 scaled down {time.monotonic() - promoted:.2f} s after promotion (scaleDownDelaySeconds 5)")
        time.sleep(1.0)  # traffic after the last pod went
    bad = load.failures()
    ctx.note(s, f"{len(load.records)} requests during the rollout, promotion and scale-down; failed: {len(bad)} "
                f"{failed_summary(load.records)}")
    wrong = [r for r in forced.snapshot(since=first) if not (r.ok and r.version == "v2")]
    ctx.note(s, f"X-Canary: true after the first step: {len(forced.snapshot(since=first))} requests, "
                f"{len(wrong)} not answered by the canary")
    if bad or wrong or forced.failures():
        raise SuiteError(f"{s}: {len(bad)} failed requests, {len(wrong)} X-Canary requests missed the canary")


def analysis_runs(ctx):
    return ctx.api.get(f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/analysisruns")["items"]


def failed_measurement(run):
    return any(x.get("phase") == "Failed" for m in run.get("status", {}).get("metricResults") or []
               for x in m.get("measurements") or [])


class FailureWatch:
    """Watches AnalysisRuns and notes when the first failed measurement appears: a watch
    event arrives within milliseconds of Argo writing it, where polling would add its period."""

    def __init__(self, ctx):
        self.ctx, self.seen, self.run = ctx, None, None
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def start(self):
        path = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/analysisruns"
        self.rv = self.ctx.api.get(path)["metadata"]["resourceVersion"]
        self.path = path
        self.thread.start()
        return self

    def _watch(self):
        try:
            for ev in self.ctx.api.watch(self.path, self.rv, timeout_seconds=90):
                obj = ev.get("object", {})
                if ev.get("type") in ("ADDED", "MODIFIED") and failed_measurement(obj):
                    self.seen, self.run = time.monotonic(), obj["metadata"]["name"]
                    return
        except Exception as e:  # reported by the wait below timing out
            print(f"analysis watch ended: {e}", flush=True)


def abort(ctx):
    """Scenario 2: canary pods answer 500; the analysis fails and Argo aborts."""
    s = "2-abort"
    ctx.set_mode("v3", "500")
    watch = FailureWatch(ctx).start()
    with Load(HOST) as load:
        t0 = time.monotonic()
        set_image(ctx, "app", "v3")
        ctx.wait_weight(HOST, 10)
        wait_for("a failed analysis measurement", lambda: watch.seen, 90, interval=0.01)
        t_fail, run = watch.seen, watch.run
        ctx.note(s, f"analysis {run}: first failed measurement seen {t_fail - t0:.2f} s after set image")
        t_zero = ctx.wait_weight(HOST, 0, timeout=60)
        ctx.wait_rollout("app", "aborted", lambda r: r.get("status", {}).get("abort") is True, 30)
        time.sleep(2.0)
        end = time.monotonic()
    canary = [r for r in load.records if r.version == "v3" or r.status == 500]
    last = max((r.t for r in canary), default=t_fail)
    ctx.note(s, f"weight 0 at weir {t_zero - t_fail:.2f} s after the failed measurement; "
                f"last canary response {last - t_fail:.2f} s after it")
    after = [r for r in load.snapshot(since=t_zero + 0.5, until=end) if not (r.ok and r.version == "v2")]
    ctx.note(s, f"{len(canary)} canary (500) responses before the abort; {len(after)} non-stable after weight 0")
    stable_failures = [r for r in load.failures() if r.status != 500]
    if after or stable_failures:
        raise SuiteError(f"{s}: {len(after)} responses not from stable after the abort, "
                         f"{len(stable_failures)} failures not from the canary: {failed_summary(load.records)}")
    # Back to the stable version, as a user would after an abort.
    set_image(ctx, "app", "v2")
    ctx.wait_healthy("app")
    ctx.set_mode("v3", "ok")

"""What every scenario gets: the cluster, weir, the pod runner, and helpers to wait on a
Rollout, on weir's applied weight, and to judge a split; plus the report of figures."""

import json
import math
import time
import urllib.request

from load import sample
from procs import SuiteError, wait_for

NS = "demo"
PODRUNNER = "127.0.0.1:9911"


class Ctx:
    def __init__(self, cp, weir, podrunner):
        self.cp, self.weir, self.podrunner = cp, weir, podrunner
        self.kubectl, self.api = cp.kubectl, cp.api
        self.report = {}  # scenario -> list of lines

    def note(self, scenario, line):
        self.report.setdefault(scenario, []).append(line)
        print(f"  [{scenario}] {line}", flush=True)

    def apply(self, yaml_text):
        self.kubectl.apply(yaml_text, namespace=NS)

    # --- pods -----------------------------------------------------------------------------
    def set_mode(self, version, mode):
        req = urllib.request.Request(f"http://{PODRUNNER}/", data=json.dumps({"version": version, "mode": mode}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5):
            pass

    # --- rollouts -------------------------------------------------------------------------
    def rollout(self, name):
        return self.api.get(f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/{name}")

    def wait_rollout(self, name, what, pred, timeout=90):
        def check():
            self.weir.check_alive()
            r = self.rollout(name)
            return r if pred(r) else None
        try:
            return wait_for(f"Rollout {name} {what}", check, timeout, interval=0.1)
        except SuiteError as e:
            st = self.rollout(name).get("status", {})
            raise SuiteError(f"{e}; status: phase={st.get('phase')} message={st.get('message')!r} "
                             f"step={st.get('currentStepIndex')} weights={st.get('canary', {}).get('weights')}") from e

    def wait_healthy(self, name, timeout=90):
        def healthy(r):
            st, md = r.get("status", {}), r["metadata"]
            return (st.get("phase") == "Healthy" and str(st.get("observedGeneration")) == str(md["generation"])
                    and st.get("stableRS") and st.get("stableRS") == st.get("currentPodHash"))
        return self.wait_rollout(name, "Healthy", healthy, timeout)

    # --- weir -----------------------------------------------------------------------------
    def canary_weight(self, host, path="/"):
        r = self.weir.rule(host, path)
        if r is None:
            return None
        c = r.get("canary")
        return None if c is None else c.get("weight", 0)

    def wait_weight(self, host, weight, timeout=90):
        """Until weir's table has this canary weight on host `/`; the monotonic time then."""
        wait_for(f"weir to apply canary weight {weight} on {host}",
                 lambda: self.canary_weight(host) == weight, timeout, interval=0.02, proc=self.weir.proxy)
        return time.monotonic()

    def wait_only(self, host, version, timeout=60, n=40):
        """Until n requests in a row all get `version`."""
        last = {}

        def only():
            last.clear()
            last.update(sample(host, n))
            return last == {version: n}
        try:
            return wait_for(f"{host} to serve only {version}", only, timeout, interval=0.1)
        except SuiteError as e:
            raise SuiteError(f"{e}; last sample: {dict(last)}") from e


def within_sigma(canary, total, weight, k=5.0):
    """Whether `canary` of `total` is within k sigma of a binomial share weight/100."""
    p = weight / 100.0
    mean, sigma = total * p, math.sqrt(total * p * (1 - p))
    return abs(canary - mean) <= k * sigma, mean, sigma


def check_split(ctx, scenario, host, weight, canary_version, n=400):
    """Samples n requests now and checks the canary share is within 5 sigma of `weight`."""
    got = sample(host, n)
    failed = {k: v for k, v in got.items() if k.startswith("failed")}
    if failed:
        raise SuiteError(f"{scenario}: at weight {weight}, failed requests: {failed}")
    c = got.get(canary_version, 0)
    ok, mean, sigma = within_sigma(c, n, weight)
    ctx.note(scenario, f"weight {weight:3d}: canary {c}/{n} = {100.0 * c / n:5.1f} % "
                       f"(expected {mean:.0f} ± 5×{sigma:.1f}) {dict(got)}")
    if not ok:
        raise SuiteError(f"{scenario}: canary share {c}/{n} at weight {weight} is more than 5 sigma from {mean:.0f}")
    return c


def workload(name, version):
    """A ReplicaSet of one test pod answering `version`, and its Service `name` (port http)."""
    return f"""
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}, weir-e2e/app: {name}}}}}
    spec:
      containers: [{{name: app, image: "weir-e2e/demo:{version}", ports: [{{name: http, containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
"""

"""Scenario 10: weir's traffic-router plugin for Argo Rollouts (plugin/) on the real control
plane. The plugin is built (plugin/build.sh), the Argo controller is restarted with an
argo-rollouts-config that loads it from a file:// path, the WeirRoute CRD and RBAC are applied,
and a Rollout routed by the plugin goes setWeight 20 → setHeaderRoute (X-Canary: true) →
setMirrorRoute (GET /api, 50 %) → pause → setWeight 50 → pause → promoted, checked through weir
at each step: the split, header-route requests on the canary, copies of GET /api requests to
stable reaching the canary (weir's mirror metrics, within a band) while POSTs and other paths
are not copied, VerifyWeight true only once weir's controller reported the weight in force (its
status.replicas entry), and no header or mirror route left in weir's table at the end. Then a
second Rollout's experiment step with a weighted template: the experiment Service as an
additional destination, its share of the traffic, and its end. The
Argo controller is then restarted as it was, for the scenarios after this one."""

import contextlib
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request

from ctx import NS, check_split
from load import sample
from procs import SuiteError, wait_for
from weir import METRICS

S = "10-plugin"
HOST = "plugin.e2e.test"
ROLLOUT = "plug"
ARGO_NS = "argo-rollouts"
PROXY_NS = "weir-system"
PROXY_DEPLOYMENT = "weir-e2e-proxy"
POD = "weir-e2e-0"  # weir-controller's POD_NAME in the suite (weir.py)
WR = f"/apis/weir.dev/v1alpha1/namespaces/{NS}/weirroutes"

MANIFESTS = """
apiVersion: v1
kind: Service
metadata: {name: plug-stable}
spec:
  selector: {app: plug}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: plug-canary}
spec:
  selector: {app: plug}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: plug}
spec:
  ingressClassName: weir
  rules:
    - host: %(host)s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: plug-stable, port: {name: http}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: %(rollout)s}
spec:
  replicas: 2
  revisionHistoryLimit: 3
  selector: {matchLabels: {app: plug}}
  template:
    metadata:
      labels: {app: plug, weir-e2e/app: plug}
    spec:
      containers:
        - name: app
          image: weir-e2e/demo:v1
          ports: [{name: http, containerPort: 8080}]
  strategy:
    canary:
      stableService: plug-stable
      canaryService: plug-canary
      scaleDownDelaySeconds: 5
      trafficRouting:
        managedRoutes: [{name: testers}, {name: mirror-api}]
        plugins:
          weir-proxy/weir:
            stableIngress: plug
            proxy: {namespace: %(proxy_ns)s, deployment: %(proxy)s}
      steps:
        - setWeight: 20
        - setHeaderRoute:
            name: testers
            match:
              - headerName: X-Canary
                headerValue: {exact: "true"}
        - setMirrorRoute:
            name: mirror-api
            percentage: 50
            match:
              - method: {exact: GET}
                path: {prefix: /api}
        - pause: {}
        - setWeight: 50
        - pause: {}
""" % {"host": HOST, "rollout": ROLLOUT, "proxy_ns": PROXY_NS, "proxy": PROXY_DEPLOYMENT}

# The plugin counts the weir replicas that must report as the Running, Ready pods of a
# Deployment. The suite runs weir as local processes, so: a Deployment of 0 replicas whose
# selector picks one kwok pod named as weir-controller's POD_NAME (owned by a ConfigMap, so the
# Deployment's ReplicaSet does not adopt and delete it).
PROXY_PODS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: %(proxy)s, namespace: %(ns)s}
spec:
  replicas: 0
  selector: {matchLabels: {weir-e2e/proxy: "true"}}
  template:
    metadata: {labels: {weir-e2e/proxy: "true"}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: weir
          image: "weir-e2e/weir:local"
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: weir-e2e-proxy-owner, namespace: %(ns)s}
""" % {"proxy": PROXY_DEPLOYMENT, "ns": PROXY_NS}


def build_plugin(repo):
    p = subprocess.run([os.path.join(repo, "plugin", "build.sh")], capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise SuiteError(f"plugin/build.sh failed: {p.stderr.strip()[-800:]}")
    return p.stdout.strip().splitlines()[-1]


def proxy_pod(ctx):
    owner = ctx.api.get(f"/api/v1/namespaces/{PROXY_NS}/configmaps/weir-e2e-proxy-owner")
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": PROXY_NS, "labels": {"weir-e2e/proxy": "true"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                                          "uid": owner["metadata"]["uid"], "controller": True}]},
        # weir-system enforces the restricted Pod Security Standard.
        "spec": {"nodeName": "kwok-node-0",
                 "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [{"name": "weir", "image": "weir-e2e/weir:local",
                                 "securityContext": {"allowPrivilegeEscalation": False,
                                                     "capabilities": {"drop": ["ALL"]}}}]},
    }
    ctx.cp.kubectl.apply(json.dumps(pod))

    def ready():
        p = ctx.api.get(f"/api/v1/namespaces/{PROXY_NS}/pods/{POD}")
        return p.get("status", {}).get("phase") == "Running" and any(
            c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
    wait_for(f"pod {PROXY_NS}/{POD} Running and Ready", ready, 60, interval=0.2)


def restart_argo(ctx, env=None, cwd=None):
    cp = ctx.cp
    old = cp.procs["argo-rollouts"]
    old.stop()
    p = cp.sup.start("argo-rollouts", old.argv, env=env, cwd=cwd)
    cp.procs["argo-rollouts"] = p
    from procs import http_ok
    wait_for("argo-rollouts /healthz", lambda: http_ok("http://127.0.0.1:8081/healthz"), 60, proc=p)
    return p


def weirroute(ctx, name):
    return ctx.api.get(f"{WR}/{name}", ok_missing=True)


def own_entry(wr):
    for e in (wr or {}).get("status", {}).get("replicas") or []:
        if e.get("name") == POD:
            return e
    return None


def applied(wr, weight):
    """Whether weir's entry has this weight in force at the WeirRoute's current generation."""
    e = own_entry(wr)
    return (e is not None and wr["spec"].get("weight") == weight and e.get("weight") == weight
            and e.get("observedGeneration") == wr["metadata"]["generation"] and not e.get("message"))


def step_index(ctx, rollout=ROLLOUT):
    return ctx.rollout(rollout).get("status", {}).get("currentStepIndex")


def weight_step(ctx, weight, next_index, t_start, started_by, rollout=ROLLOUT, scenario=S):
    """Waits for SetWeight (spec.weight), weir's entry (applied), and Argo moving past the step
    (VerifyWeight true); checks they came in that order; returns the seconds SetWeight→verified."""
    seen = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "verified" not in seen:
        ctx.weir.check_alive()
        wr = weirroute(ctx, rollout)
        now = time.monotonic()
        if wr and wr["spec"].get("weight") == weight:
            seen.setdefault("set", now)
        if applied(wr, weight):
            seen.setdefault("applied", now)
        idx = step_index(ctx, rollout)
        if idx is not None and idx >= next_index and "set" in seen:
            # Argo moved on: VerifyWeight said true. weir's entry must already say applied.
            if "applied" not in seen:
                raise SuiteError(f"{scenario}: Argo passed setWeight {weight} (step {idx}) before weir's controller "
                                 f"reported it applied: entry {own_entry(wr)}")
            seen["verified"] = now
        time.sleep(0.05)
    if "verified" not in seen:
        wr = weirroute(ctx, rollout)
        raise SuiteError(f"{scenario}: setWeight {weight} not verified in 120 s; seen {sorted(seen)}; "
                         f"WeirRoute status {json.dumps((wr or {}).get('status'))[:600]}")
    ctx.note(scenario, f"setWeight {weight}: in the WeirRoute {seen['set'] - t_start:.2f} s after {started_by}; "
                f"weir's entry applied +{seen['applied'] - seen['set']:.2f} s; VerifyWeight true (Argo moved "
                f"past the step) +{seen['verified'] - seen['set']:.2f} s after SetWeight")
    return seen["verified"] - seen["set"]


def mirror_counts():
    """weir's mirror families now: (requests selected, {result: copies})."""
    with urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=2) as r:
        text = r.read().decode()
    requests, copies = 0.0, {}
    for line in text.splitlines():
        if line.startswith("weir_mirror_requests_total"):
            requests = float(line.rsplit(" ", 1)[1])
        elif line.startswith("weir_mirror_copies_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            copies[result] = float(line.rsplit(" ", 1)[1])
    return requests, copies


def check_mirror(ctx):
    """At the pause after setMirrorRoute: the route in weir's table; GET /api requests that go
    to stable are copied to the canary about half the time (5σ band), POSTs and other paths
    never; every copy answered by the canary's pods."""
    def mirror_in_table():
        c = (ctx.weir.rule(HOST) or {}).get("canary") or {}
        return c.get("mirrorRoutes")
    routes = wait_for("the mirror-api route in weir's table", mirror_in_table, 60, interval=0.05)
    ctx.note(S, f"mirror route in weir's table: {json.dumps(routes)}")
    before, copies_before = mirror_counts()
    # The pod runner answers POST with 501: what counts is that weir routed them, uncopied.
    others = sample(HOST, 100, path="/web") + sample(HOST, 50, method="POST", path="/api/x")
    if set(others) - {"v1", "v2", "failed:501"}:
        raise SuiteError(f"{S}: requests failed: {dict(others)}")
    unselected, _ = mirror_counts()
    got = sample(HOST, 400, path="/api/items")
    stable_served = got.get("v1", 0)

    def settled():
        n, copies = mirror_counts()
        done = sum(copies.values()) - sum(copies_before.values())
        return n - unselected >= 1 and done == n - before and (n, copies)
    n, copies = wait_for("every mirror copy answered or counted", settled, 30, interval=0.1)
    selected = n - unselected
    answered = copies.get("answered", 0) - copies_before.get("answered", 0)
    low, high = within_band(stable_served, 0.5)
    ctx.note(S, f"setMirrorRoute GET /api 50 %: 150 requests to /web and POST /api/x → "
                f"{unselected - before:.0f} copies; 400 GET /api/items ({dict(got)}) → {selected:.0f} copies of the "
                f"{stable_served} to stable (5σ band {low:.0f}..{high:.0f}), {answered:.0f} answered by the canary; "
                f"results {copies}")
    if unselected != before:
        raise SuiteError(f"{S}: requests no mirror match selects were copied ({unselected - before:.0f})")
    if not low <= selected <= high:
        raise SuiteError(f"{S}: {selected:.0f} copies of {stable_served} GET /api requests to stable at 50 %")
    if answered != selected:
        raise SuiteError(f"{S}: {selected:.0f} copies, {answered:.0f} answered: {copies}")


def within_band(n, p, k=5.0):
    sd = (n * p * (1 - p)) ** 0.5
    return n * p - k * sd, n * p + k * sd


def install_plugin(ctx):
    """Builds the plugin, applies the WeirRoute CRD and the plugin's RBAC; returns the binary."""
    repo = ctx.weir.repo
    t_build = time.monotonic()
    binary = build_plugin(repo)
    ctx.note(S, f"plugin binary {binary} ({time.monotonic() - t_build:.1f} s, cached by input hash)")
    for f in ("weirroute-crd.yaml", "plugin-rbac.yaml"):
        with open(os.path.join(repo, "plugin", "manifests", f)) as fh:
            ctx.cp.kubectl.run("apply", "--server-side", "-f", "-", stdin=fh.read())
    wait_for("CRD weirroutes.weir.dev Established", lambda: any(
        c["type"] == "Established" and c["status"] == "True"
        for c in ctx.api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/weirroutes.weir.dev")
        .get("status", {}).get("conditions") or []), 60, interval=0.1)
    return binary


@contextlib.contextmanager
def argo_with_plugin(ctx, binary):
    """The Argo controller restarted with an argo-rollouts-config that loads the plugin from
    `binary`, and the weir pods the plugin counts; afterwards Argo restarted as it was."""
    ctx.cp.kubectl.run("create", "namespace", ARGO_NS, check=False)
    config = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "argo-rollouts-config", "namespace": ARGO_NS},
              "data": {"trafficRouterPlugins": json.dumps([{
                  "name": "weir-proxy/weir", "location": f"file://{binary}",
                  "args": [f"--kubeconfig={ctx.cp.admin_kubeconfig}"]}])}}
    ctx.cp.kubectl.apply(json.dumps(config))
    ctx.cp.kubectl.apply(PROXY_PODS)
    proxy_pod(ctx)
    # Argo copies plugins to ./plugin-bin: a directory of this restart's own.
    argo_dir = os.path.join(ctx.cp.work, f"argo-plugin-cwd-{time.monotonic_ns()}")
    os.makedirs(argo_dir, exist_ok=True)
    restart_argo(ctx, env=dict(os.environ, POD_NAMESPACE=ARGO_NS), cwd=argo_dir)
    try:
        yield
    finally:
        ctx.cp.kubectl.run("delete", f"--namespace={ARGO_NS}", "configmap", "argo-rollouts-config", check=False)
        restart_argo(ctx)


def plugin(ctx):
    binary = install_plugin(ctx)
    # weir-controller started before the CRD existed: it must pick WeirRoutes up without a
    # restart. A probe naming no Ingress is refused, and says so in weir's entry.
    probe = {"apiVersion": "weir.dev/v1alpha1", "kind": "WeirRoute", "metadata": {"name": "probe", "namespace": NS},
             "spec": {"stableService": "none", "canaryService": "none-canary", "stableIngresses": ["none"],
                      "maxWeight": 100, "weight": 10}}
    ctx.apply(json.dumps(probe))
    t_probe = time.monotonic()
    e = wait_for("weir's entry on the probe WeirRoute", lambda: own_entry(weirroute(ctx, "probe")), 90, interval=0.2)
    ctx.note(S, f"weir-controller picked up the new CRD in {time.monotonic() - t_probe:.1f} s (no restart); probe "
                f"refused: weight {e.get('weight')}, message {e.get('message')!r}")
    if e.get("weight") != 0 or "not found" not in (e.get("message") or ""):
        raise SuiteError(f"{S}: the probe WeirRoute was not refused as it should be: {e}")
    ctx.cp.kubectl.run("delete", f"--namespace={NS}", "weirroute", "probe")
    with argo_with_plugin(ctx, binary):
        try:
            run_rollout(ctx)
            run_experiment(ctx)
        finally:
            for name in (ROLLOUT, "exper"):
                ctx.cp.kubectl.run("delete", f"--namespace={NS}", "rollout", name, "--wait=false", check=False)


def run_rollout(ctx):
    ctx.apply(MANIFESTS)
    ctx.wait_healthy(ROLLOUT, timeout=120)
    ctx.wait_only(HOST, "v1")
    wr = wait_for("WeirRoute of the Rollout", lambda: weirroute(ctx, ROLLOUT), 60, interval=0.2)
    ctx.note(S, f"WeirRoute {NS}/{ROLLOUT} written by the plugin: weight {wr['spec'].get('weight')}, "
                f"stableIngresses {wr['spec'].get('stableIngresses')}")
    t0 = time.monotonic()
    ctx.kubectl.argo("set", "image", ROLLOUT, "app=weir-e2e/demo:v2", f"--namespace={NS}")
    verify_20 = weight_step(ctx, 20, 1, t0, "set image")
    rule = ctx.weir.rule(HOST)
    if (rule or {}).get("canary", {}).get("weight") != 20:
        raise SuiteError(f"{S}: weir's table does not have weight 20 on {HOST}: {rule}")

    # setHeaderRoute, then the pause: X-Canary: true reaches the canary, the rest splits 20 %.
    def header_route_in_table():
        c = (ctx.weir.rule(HOST) or {}).get("canary") or {}
        return c.get("headerRoutes")
    routes = wait_for("the testers header route in weir's table", header_route_in_table, 60, interval=0.05)
    ctx.note(S, f"header route in weir's table: {json.dumps(routes)}")
    ctx.wait_rollout(ROLLOUT, "paused", lambda r: r.get("status", {}).get("pauseConditions"), 60)
    forced = sample(HOST, 100, {"X-Canary": "true"})
    other = sample(HOST, 100, {"X-Canary": "yes"})
    ctx.note(S, f"X-Canary: true → {dict(forced)}; X-Canary: yes → {dict(other)}")
    if forced != {"v2": 100}:
        raise SuiteError(f"{S}: header-route requests did not all reach the canary: {dict(forced)}")
    if other.get("v1", 0) < 50:
        raise SuiteError(f"{S}: requests the route does not match went to the canary: {dict(other)}")
    check_split(ctx, S, HOST, 20, "v2")
    check_mirror(ctx)

    t1 = time.monotonic()
    ctx.kubectl.argo("promote", ROLLOUT, f"--namespace={NS}")
    verify_50 = weight_step(ctx, 50, 5, t1, "promote")
    ctx.wait_rollout(ROLLOUT, "paused at setWeight 50", lambda r: r.get("status", {}).get("pauseConditions"), 60)
    check_split(ctx, S, HOST, 50, "v2")
    if sample(HOST, 50, {"X-Canary": "true"}) != {"v2": 50}:
        raise SuiteError(f"{S}: the header route did not hold at weight 50")
    ctx.note(S, f"SetWeight → VerifyWeight true: {verify_20:.2f} s at 20, {verify_50:.2f} s at 50 "
                f"(Argo re-asks a false VerifyWeight after 10 s)")

    ctx.kubectl.argo("promote", ROLLOUT, f"--namespace={NS}")
    ctx.wait_healthy(ROLLOUT, timeout=120)
    ctx.wait_only(HOST, "v2")

    # RemoveManagedRoutes and weight 0: nothing of the rollout left in weir's table.
    def clean():
        wr = weirroute(ctx, ROLLOUT)
        c = (ctx.weir.rule(HOST) or {}).get("canary") or {}
        return (not wr["spec"].get("headerRoutes") and not wr["spec"].get("mirrorRoutes")
                and wr["spec"].get("weight") == 0 and applied(wr, 0)
                and not c.get("headerRoutes") and not c.get("mirrorRoutes") and c.get("weight", 0) == 0) and (wr, c)
    wr, c = wait_for("no header or mirror route and weight 0 in weir's table after promotion", clean, 60,
                     interval=0.1)
    leftover = sample(HOST, 100, {"X-Canary": "true"})
    ctx.note(S, f"after promotion: weir's canary on {HOST}: weight {c.get('weight', 0)}, headerRoutes "
                f"{c.get('headerRoutes', [])}, mirrorRoutes {c.get('mirrorRoutes', [])}; X-Canary: true → "
                f"{dict(leftover)}; weir's entry {own_entry(wr)}")
    if leftover != {"v2": 100}:
        raise SuiteError(f"{S}: after promotion not every request reached the new stable: {dict(leftover)}")


EXPERIMENT = """
apiVersion: v1
kind: Service
metadata: {name: exper-stable}
spec:
  selector: {app: exper}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: exper-canary}
spec:
  selector: {app: exper}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: exper}
spec:
  ingressClassName: weir
  rules:
    - host: %(host)s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: exper-stable, port: {name: http}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: exper}
spec:
  replicas: 1
  revisionHistoryLimit: 3
  selector: {matchLabels: {app: exper}}
  template:
    metadata:
      labels: {app: exper, weir-e2e/app: exper}
    spec:
      containers:
        - name: app
          image: weir-e2e/demo:e1
          ports: [{name: http, containerPort: 8080}]
  strategy:
    canary:
      stableService: exper-stable
      canaryService: exper-canary
      scaleDownDelaySeconds: 5
      trafficRouting:
        plugins:
          weir-proxy/weir:
            stableIngress: exper
            proxy: {namespace: %(proxy_ns)s, deployment: %(proxy)s}
      steps:
        - setWeight: 20
        - experiment:
            duration: 20s
            templates:
              - {name: exp, specRef: canary, weight: 30}
        - pause: {}
""" % {"host": "exper.e2e.test", "proxy_ns": PROXY_NS, "proxy": PROXY_DEPLOYMENT}


def pods_of(ctx, service):
    """Names of the pods Service `service` selects now."""
    svc = ctx.api.get(f"/api/v1/namespaces/{NS}/services/{service}")
    selector = ",".join(f"{k}={v}" for k, v in (svc["spec"].get("selector") or {}).items())
    pods = ctx.api.get(f"/api/v1/namespaces/{NS}/pods?labelSelector={urllib.parse.quote(selector)}")
    return {p["metadata"]["name"] for p in pods.get("items") or []}


def run_experiment(ctx):
    """An experiment step with a weighted template: Argo's SetWeight carries the experiment
    Service as an additional destination; weir splits stable / canary / experiment 50/20/30
    and weir's entry reports the destination's share; when the experiment ends its share goes
    back to stable."""
    host = "exper.e2e.test"
    ctx.apply(EXPERIMENT)
    ctx.wait_healthy("exper", timeout=120)
    ctx.wait_only(host, "e1")
    ctx.kubectl.argo("set", "image", "exper", "app=weir-e2e/demo:e2", f"--namespace={NS}")

    def destination():
        wr = weirroute(ctx, "exper")
        dests = (wr or {}).get("spec", {}).get("additionalDestinations") or []
        e = own_entry(wr)
        c = (ctx.weir.rule(host) or {}).get("canary") or {}
        return (dests and e and e.get("observedGeneration") == wr["metadata"]["generation"]
                and e.get("additionalDestinations") and c.get("destinations") and (wr, e, c))
    t0 = time.monotonic()
    wr, e, c = wait_for("the experiment's destination in force at weir", destination, 120, interval=0.1)
    dest = wr["spec"]["additionalDestinations"][0]
    ctx.note(S, f"experiment step: WeirRoute weight {wr['spec']['weight']}, additionalDestinations "
                f"{wr['spec']['additionalDestinations']}; weir's entry {e.get('additionalDestinations')} "
                f"(+{time.monotonic() - t0:.1f} s after set image); weir's rule destinations "
                f"{[(d['backend'].get('service'), d['weight'], d['backend'].get('endpoints')) for d in c['destinations']]}")
    want = [{"serviceName": dest["serviceName"], "weight": dest["weight"]}]
    if e["additionalDestinations"] != want:
        raise SuiteError(f"{S}: weir's entry reports {e['additionalDestinations']}, the spec asks {want}")
    wait_for("the experiment's pods ready at weir",
             lambda: all(d["backend"].get("endpoints") for d in
                         ((ctx.weir.rule(host) or {}).get("canary") or {}).get("destinations") or [{}]), 60,
             interval=0.1)
    exp_pods, canary_pods = pods_of(ctx, dest["serviceName"]), pods_of(ctx, "exper-canary")
    stable_pods = pods_of(ctx, "exper-stable")
    got = sample(host, 600, key="X-Pod")
    sides = {"stable": 0, "canary": 0, "experiment": 0, "other": 0}
    for pod, n in got.items():
        side = ("experiment" if pod in exp_pods else "canary" if pod in canary_pods
                else "stable" if pod in stable_pods else "other")
        sides[side] += n
    ctx.note(S, f"600 requests during the experiment: {sides} (weights stable 50, canary 20, experiment "
                f"{dest['weight']}); pods {dict(got)}")
    for side, p in (("canary", wr["spec"]["weight"] / 100), ("experiment", dest["weight"] / 100)):
        low, high = within_band(600, p)
        if not low <= sides[side] <= high:
            raise SuiteError(f"{S}: {side} got {sides[side]} of 600 at {p:.0%} (5σ band {low:.0f}..{high:.0f})")
    if sides["other"]:
        raise SuiteError(f"{S}: requests answered by pods of no side: {dict(got)}")

    def ended():
        wr = weirroute(ctx, "exper")
        c = (ctx.weir.rule(host) or {}).get("canary") or {}
        return not wr["spec"].get("additionalDestinations") and not c.get("destinations") and wr
    t1 = time.monotonic()
    wait_for("the experiment's share gone from weir's table", ended, 90, interval=0.2)
    ctx.note(S, f"experiment ended: its destination left weir's table {time.monotonic() - t1:.1f} s later")

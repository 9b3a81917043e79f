"""Scenario 12: weir's local canary guard on the real control plane, through the plugin. A Rollout
routed by weir's plugin with `guard: {errorPercent: 20, windowSeconds: 10, minRequests: 20}` and a
background analysis on weir_canary_guard_tripped goes to setWeight 50 and a header route, under
steady load. A healthy canary does not trip it. Then the canary's pods answer 500: the figures are
how long until weir stopped sending the canary weighted traffic and how many requests reached it
meanwhile; header-route testers still reach it; weir's WeirRoute entry says Tripped, an Event
says so, and Argo's analysis aborts the rollout at its next measurement (the plugin's VerifyWeight
summary says Tripped). A new canary version (another pod-template hash) is judged afresh: its
setWeight 50 is verified and it gets its weighted share."""

import json
import time
import urllib.request

from ctx import NS, check_split
from load import Load, sample
from procs import SuiteError, wait_for
from s_plugin import argo_with_plugin, install_plugin, own_entry, weight_step, weirroute
from weir import ADMIN

S = "12-guard"
HOST = "guard.e2e.test"
ROLLOUT = "guarded"

MANIFESTS = """
apiVersion: v1
kind: Service
metadata: {name: guarded-stable}
spec:
  selector: {app: guarded}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: guarded-canary}
spec:
  selector: {app: guarded}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: guarded}
spec:
  ingressClassName: weir
  rules:
    - host: %(host)s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: guarded-stable, port: {name: http}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: guarded-canary-guard}
spec:
  metrics:
    - name: canary-guard
      interval: 5s
      failureLimit: 0
      consecutiveErrorLimit: 2
      successCondition: result[0] == 0
      provider:
        prometheus:
          address: http://127.0.0.1:9090
          query: max(weir_canary_guard_tripped{namespace="%(ns)s",guard="%(rollout)s"})
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: %(rollout)s}
spec:
  replicas: 2
  revisionHistoryLimit: 3
  selector: {matchLabels: {app: guarded}}
  template:
    metadata:
      labels: {app: guarded, weir-e2e/app: guarded}
    spec:
      containers:
        - name: app
          image: weir-e2e/demo:g1
          ports: [{name: http, containerPort: 8080}]
  strategy:
    canary:
      stableService: guarded-stable
      canaryService: guarded-canary
      scaleDownDelaySeconds: 5
      analysis:
        templates: [{templateName: guarded-canary-guard}]
        startingStep: 1
      trafficRouting:
        managedRoutes: [{name: testers}]
        plugins:
          weir-proxy/weir:
            stableIngress: guarded
            proxy: {namespace: weir-system, deployment: weir-e2e-proxy}
            guard: {errorPercent: 20, windowSeconds: 10, minRequests: 20}
      steps:
        - setWeight: 50
        - setHeaderRoute:
            name: testers
            match:
              - headerName: X-Canary
                headerValue: {exact: "true"}
        - pause: {}
""" % {"host": HOST, "rollout": ROLLOUT, "ns": NS}


def proxy_guard():
    """weir's guard for the Rollout, as its admin API reports it."""
    with urllib.request.urlopen(f"http://{ADMIN}/guards", timeout=2) as r:
        guards = json.load(r)["guards"]
    return next((g for g in guards if g["namespace"] == NS and g["name"] == ROLLOUT), None)


def tripped_events(ctx):
    items = ctx.api.get(f"/apis/events.k8s.io/v1/namespaces/{NS}/events").get("items") or []
    return [e for e in items if e.get("reason") == "CanaryGuardTripped"
            and (e.get("regarding") or {}).get("name") == ROLLOUT]


def guard(ctx):
    binary = install_plugin(ctx)
    with argo_with_plugin(ctx, binary):
        try:
            run(ctx)
        finally:
            ctx.set_mode("g2", "ok")
            ctx.cp.kubectl.run("delete", f"--namespace={NS}", "rollout", ROLLOUT, "--wait=false", check=False)


def run(ctx):
    ctx.apply(MANIFESTS)
    ctx.wait_healthy(ROLLOUT, timeout=120)
    ctx.wait_only(HOST, "g1")
    t0 = time.monotonic()
    ctx.kubectl.argo("set", "image", ROLLOUT, "app=weir-e2e/demo:g2", f"--namespace={NS}")
    weight_step(ctx, 50, 1, t0, "set image", rollout=ROLLOUT, scenario=S)
    ctx.wait_rollout(ROLLOUT, "paused", lambda r: r.get("status", {}).get("pauseConditions"), 60)
    rule = ctx.weir.rule(HOST) or {}
    armed = (rule.get("canary") or {}).get("guard")
    wr = weirroute(ctx, ROLLOUT)
    hash_g2 = wr["spec"].get("canaryHash")
    ctx.note(S, f"guard in weir's table: {json.dumps(armed)}; WeirRoute canaryHash {hash_g2}")
    if not armed or armed.get("revision") != hash_g2 or armed.get("name") != ROLLOUT:
        raise SuiteError(f"{S}: weir's table does not arm the guard for canary {hash_g2}: {rule}")

    with Load(HOST, workers=4, pause=0.002, max_seconds=180) as load:
        # A healthy canary under this load: judged (300 answers in its window), not tripped.
        t_load = time.monotonic()
        g = wait_for("300 canary answers in the guard's window",
                     lambda: (lambda g: g if g and g["answers"] >= 300 else None)(proxy_guard()), 60, interval=0.1)
        healthy = load.snapshot()
        ctx.note(S, f"healthy canary, {len(healthy)} requests in {time.monotonic() - t_load:.1f} s "
                    f"({sum(r.version == 'g2' for r in healthy)} to the canary): guard {g['state']}, {g['answers']} "
                    f"answers and {g['faults']} faults in its window")
        if g["state"] != "Armed" or g["answers"] < 20:
            raise SuiteError(f"{S}: a healthy canary under load: guard {g}")

        # The canary starts answering 500.
        t_fail_wall, t_fail = time.time(), time.monotonic()
        ctx.set_mode("g2", "500")
        g = wait_for("weir's guard to trip", lambda: (lambda g: g if g["state"] == "Tripped" else None)(proxy_guard()),
                     15, interval=0.01)
        t_seen = time.monotonic()
        testers = sample(HOST, 20, {"X-Canary": "true"})
        # Weighted traffic goes on (none of it may reach the canary) while the rest of the
        # trip's news is watched for, each stamped when first seen.
        seen, entry, events = {}, None, []
        deadline = t_seen + 90
        while time.monotonic() < deadline and (len(seen) < 4 or time.monotonic() < t_seen + 2.0):
            ctx.weir.check_alive()
            now = time.monotonic()
            if "entry" not in seen:
                e = own_entry(weirroute(ctx, ROLLOUT))
                if e and e["guard"]["state"] == "Tripped":
                    seen["entry"], entry = now, e
            if "event" not in seen:
                events = tripped_events(ctx)
                if events:
                    seen["event"] = now
            if "abort" not in seen and ctx.rollout(ROLLOUT).get("status", {}).get("abort") is True:
                seen["abort"] = now
            if "zero" not in seen and ctx.canary_weight(HOST) == 0:
                seen["zero"] = now
            time.sleep(0.05)
    if len(seen) < 4:
        raise SuiteError(f"{S}: within 90 s of the trip only {sorted(seen)} were seen (entry, event, abort, "
                         f"weight 0)")
    e = entry
    failing = [r for r in load.snapshot(since=t_fail) if r.status == 500 or r.version == "g2"]
    last = max((r.t for r in failing), default=t_fail)
    # Up to the abort's weight 0 (after which stable is all there is anyway).
    t_after = seen["zero"]
    late = [r for r in load.snapshot(since=t_seen, until=t_after) if r.version != "g1" or r.status != 200]
    after = load.snapshot(since=t_seen, until=t_after)
    ctx.note(S, f"canary answering 500 from t=0: weir's guard tripped at +{g['trippedAt'] - t_fail_wall:.3f} s "
                f"({g['reason']}); the last weighted request to the canary was sent at +{last - t_fail:.3f} s; "
                f"{len(failing)} requests reached the failing canary meanwhile; then {len(after)} weighted requests "
                f"in {t_after - t_seen:.1f} s, {len(late)} of them not g1 200")
    ctx.note(S, f"X-Canary: true after the trip → {dict(testers)} (testers still reach the canary)")
    ctx.note(S, f"after the trip was seen at weir: its entry said Tripped +{seen['entry'] - t_seen:.2f} s "
                f"({e['guard']}); Event +{seen['event'] - t_seen:.2f} s: {events[0].get('note')!r}; Argo aborted "
                f"(analysis on weir_canary_guard_tripped, every 5 s) +{seen['abort'] - t_seen:.2f} s; weight 0 at "
                f"weir +{seen['zero'] - t_seen:.2f} s")
    if late:
        raise SuiteError(f"{S}: weighted requests reached the canary after the trip: {len(late)}")
    if testers != {"failed:500": 20}:
        raise SuiteError(f"{S}: header-route testers did not reach the tripped canary: {dict(testers)}")
    if e["guard"].get("canaryHash") != hash_g2 or "backend faults" not in e["guard"].get("reason", ""):
        raise SuiteError(f"{S}: weir's entry does not name the trip: {e}")
    summary = wait_for("the plugin's summary to say Tripped",
                       lambda: (lambda st: st if st.get("guard") == "Tripped" else None)(
                           weirroute(ctx, ROLLOUT).get("status", {})), 30, interval=0.1)
    ctx.note(S, f"the plugin's WeirRoute summary: guard {summary.get('guard')}, verified {summary.get('verified')}, "
                f"message {summary.get('message')!r}")

    # A new canary: judged afresh, its weighted share flows.
    t1 = time.monotonic()
    ctx.kubectl.argo("set", "image", ROLLOUT, "app=weir-e2e/demo:g3", f"--namespace={NS}")
    weight_step(ctx, 50, 1, t1, "set image g3", rollout=ROLLOUT, scenario=S)
    wr = weirroute(ctx, ROLLOUT)
    hash_g3 = wr["spec"].get("canaryHash")
    e = wait_for("weir's entry Armed for the new canary",
                 lambda: (lambda e: e if e and e["guard"] == {"state": "Armed", "canaryHash": hash_g3} else None)(
                     own_entry(weirroute(ctx, ROLLOUT))), 30, interval=0.1)
    check_split(ctx, S, HOST, 50, "g3")
    ctx.note(S, f"new canary {hash_g3} (was {hash_g2}): entry guard {e['guard']}; its weighted share flows")
    if hash_g3 == hash_g2:
        raise SuiteError(f"{S}: the new image did not change the canary hash")

"""Scenario 6: faults under load on a served host: weir-controller killed and restarted, the
API server restarted, etcd stopped for 10 s (no failed request: weir stays up, and the table
converges afterwards), and weir itself restarted (its table back within 1 s)."""

import time

from ctx import NS, workload
from load import Load, failed_summary
from procs import SuiteError, http_ok, wait_for
from weir import METRICS, excuse_forbidden

HOST = "steady.e2e.test"

STEADY = workload("steady", "v1") + """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: steady}
spec:
  ingressClassName: weir
  rules:
    - host: steady.e2e.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: steady, port: {name: http}}}}
"""

PROBE = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: probe-%(n)d}
spec:
  ingressClassName: weir
  rules:
    - host: probe-%(n)d.e2e.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: steady, port: {name: http}}}}
"""


def converges(ctx, n, t0):
    """A new Ingress after the fault reaches weir's table: the watch -> push loop is back."""
    ctx.apply(PROBE % {"n": n})
    wait_for(f"probe-{n} in weir's table", lambda: ctx.weir.rule(f"probe-{n}.e2e.test") is not None, 60,
             interval=0.05, proc=ctx.weir.proxy)
    return time.monotonic() - t0


def under_load(ctx, s, what, fault):
    with Load(HOST) as load:
        time.sleep(0.5)
        t0 = time.monotonic()
        fault()
        took = time.monotonic() - t0
        time.sleep(0.5)
    bad = load.failures()
    ctx.note(s, f"{what}: {len(load.records)} requests, {len(bad)} failed {failed_summary(load.records)} "
                f"({took:.1f} s)")
    if bad:
        raise SuiteError(f"{s}: {what}: {len(bad)} failed requests while weir stayed up")


def faults(ctx):
    s = "6-faults"
    ctx.apply(STEADY)
    ctx.wait_only(HOST, "v1", timeout=60)
    w, cp = ctx.weir, ctx.cp

    def controller_restart():
        w.controller.kill()
        w.start_controller()
        ctx.note(s, f"controller killed (SIGKILL) -> table converged {converges(ctx, 1, time.monotonic()):.2f} s "
                    "after its restart")

    under_load(ctx, s, "weir-controller killed and restarted", controller_restart)

    def apiserver_restart():
        t0 = time.monotonic()
        cp.restart_apiserver()
        took = time.monotonic() - t0
        conv = converges(ctx, 2, time.monotonic())
        ctx.note(s, f"API server restarted in {took:.1f} s -> table converged {conv:.2f} s after it was ready "
                    f"({excuse_forbidden(w)} transient 403s while its RBAC caches filled)")

    under_load(ctx, s, "kube-apiserver restarted", apiserver_restart)

    def etcd_outage():
        cp.procs["etcd"].stop()
        time.sleep(10)
        cp.start_etcd()
        wait_for("kube-apiserver /readyz after etcd", lambda: cp.api.request("GET", "/readyz")[0] == 200, 60,
                 interval=0.1)
        conv = converges(ctx, 3, time.monotonic())
        ctx.note(s, f"etcd stopped 10 s -> table converged {conv:.2f} s after the API server was ready again "
                    f"({excuse_forbidden(w)} transient 403s)")

    under_load(ctx, s, "etcd stopped for 10 s", etcd_outage)

    # weir restarted: requests fail while it is down (nothing listens); what counts is how
    # soon the new process has its table again (the controller pushes on seeing it empty).
    with Load(HOST) as load:
        time.sleep(0.5)
        before = w.version()
        w.proxy.stop()
        t_down = time.monotonic()
        w.start_proxy()
        t_up = time.monotonic()
        wait_for("weir /readyz after restart", lambda: http_ok(f"http://{METRICS}/readyz", 0.5), 10, interval=0.01,
                 proc=w.proxy)
        t_table = time.monotonic()
        time.sleep(0.5)
    after = w.version()
    bad = load.failures()
    back = t_table - t_up
    ctx.note(s, f"weir restarted: down {t_up - t_down:.2f} s, table {after} back {back:.2f} s after the new "
                f"process was listening; {len(bad)} of {len(load.records)} requests failed meanwhile "
                f"{failed_summary(load.records)}")
    if after != before:
        raise SuiteError(f"{s}: the restarted weir has table {after}, not {before}")
    if back > 1.0:
        raise SuiteError(f"{s}: the restarted weir got its table back after {back:.2f} s (> 1 s)")
    late = load.failures(since=t_table)
    if late:
        raise SuiteError(f"{s}: {len(late)} requests failed after the restarted weir had its table")
    ctx.kubectl.run("delete", "ingress", "probe-1", "probe-2", "probe-3", "steady", f"--namespace={NS}")
    ctx.kubectl.run("delete", "replicaset", "steady", f"--namespace={NS}")

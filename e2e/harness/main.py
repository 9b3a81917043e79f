"""The e2e suite's driver, run by e2e/run.sh inside `unshare --net`: brings up the network
namespace's loopback and pod range, the control plane, weir and the pod runner, runs the
scenarios in order (each one's failure reported, none skipped), prints the figures, and
stops every process it started by its PID.

Usage: main.py REPO_DIR WEIR_BIN_DIR TOOL_DIRS_FILE [SCENARIO...]"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from cluster import ControlPlane
from ctx import NS, PODRUNNER, Ctx
from procs import SuiteError, Supervisor, http_ok, wait_for
from weir import Weir, fail_on_forbidden
import s_access
import s_bluegreen
import s_canary
import s_client
import s_faults
import s_guard
import s_helm
import s_ops
import s_plugin
import s_real_api
import s_stale

SCENARIOS = [
    ("1-canary", s_canary.canary_rollout),
    ("2-abort", s_canary.abort),
    ("3-bluegreen", s_bluegreen.bluegreen),
    ("4-commands", s_ops.commands),
    ("5-stale-canary", s_stale.stale_canary),
    ("6-faults", s_faults.faults),
    ("7-controller-e2e", s_real_api.controller_scenarios),
    ("8-access", s_access.access_control),
    ("9-helm", s_helm.helm_scenario),
    ("10-plugin", s_plugin.plugin),
    ("11-client-address", s_client.client_addresses),
    ("12-guard", s_guard.guard),
]


def netns_setup():
    """Only in a namespace of our own: nothing but lo may exist, so no address outside it
    can be reached. Then lo up and the pod range local."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = [l.split(":")[1].strip().split("@")[0] for l in links.splitlines() if l.strip()]
    if names != ["lo"]:
        raise SuiteError(f"not in a fresh network namespace (links: {names}); run through e2e/run.sh")
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "local", "192.0.2.0/24", "dev", "lo"]):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SuiteError(f"{' '.join(cmd)}: {p.stderr.strip()}")


def read_tools(path):
    tools = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                tools[k] = v
    return tools


def log_marks(procs):
    """Each process's log size now, so a failure can show what was logged after it."""
    return {p.log_path: os.path.getsize(p.log_path) if os.path.exists(p.log_path) else 0 for p in procs}


def print_new_problems(procs, marks, limit=15):
    """The warning and error lines each process logged since `marks` (the last `limit`)."""
    for p in procs:
        start = marks.get(p.log_path, 0)
        try:
            with open(p.log_path, "rb") as f:
                f.seek(start)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            continue
        hits = [ln for ln in lines if any(w in ln for w in ("WARN", "ERROR", "error", "takes over", "cannot bind"))]
        if hits:
            print(f"--- {p.name}: {len(hits)} warning/error lines during the scenario; the last {min(limit, len(hits))}:")
            for ln in hits[-limit:]:
                print(f"    {ln[:400]}")


def main():
    # A TERM (a CI timeout, Ctrl-C of run.sh's parent) must still reach the finally below
    # that stops every process by its PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    repo, bins, tools_file = sys.argv[1:4]
    wanted = sys.argv[4:] or [n for n, _ in SCENARIOS]
    unknown = set(wanted) - {n for n, _ in SCENARIOS}
    if unknown:
        print(f"unknown scenarios: {sorted(unknown)}; known: {[n for n, _ in SCENARIOS]}")
        return 2
    work = tempfile.mkdtemp(prefix="weir-e2e-")
    sup = Supervisor(work)
    results = []
    t_start = time.monotonic()
    print(f"e2e: logs in {work}", flush=True)
    try:
        netns_setup()
        cp = ControlPlane(sup, work, read_tools(tools_file))
        cp.up()
        print(f"e2e: control plane up in {time.monotonic() - t_start:.1f} s", flush=True)
        weir = Weir(sup, work, cp, repo, bins)
        weir.install()
        weir.start_prometheus()
        weir.start_proxy()
        weir.start_controller()
        weir.wait_proxy_ready()
        cp.kubectl.run("create", "namespace", NS)
        token_file = os.path.join(work, "admin.token")
        with open(token_file, "w") as f:
            f.write(cp.token)
        runner = sup.start("podrunner", [sys.executable, os.path.join(os.path.dirname(__file__), "podrunner.py"),
                                         PODRUNNER, "6443", cp.ca, token_file])
        wait_for("pod runner", lambda: http_ok(f"http://{PODRUNNER}/"), 20, proc=runner)
        ctx = Ctx(cp, weir, runner)
        print(f"e2e: ready in {time.monotonic() - t_start:.1f} s", flush=True)
        for name, fn in SCENARIOS:
            if name not in wanted:
                continue
            t0 = time.monotonic()
            print(f"--- scenario {name}", flush=True)
            marks = log_marks(sup.procs)
            try:
                fn(ctx)
                fail_on_forbidden(weir)
                results.append((name, True, time.monotonic() - t0, ""))
            except Exception as e:  # reported below; the next scenario still runs
                detail = str(e) if isinstance(e, SuiteError) else traceback.format_exc()
                results.append((name, False, time.monotonic() - t0, detail))
                print(f"FAILED {name}: {detail}", flush=True)
                print_new_problems(sup.procs, marks)
        print("\n=== e2e report", flush=True)
        for name, lines in ctx.report.items():
            print(f"{name}:")
            for line in lines:
                print(f"  {line}")
    except Exception as e:
        detail = str(e) if isinstance(e, SuiteError) else traceback.format_exc()
        results.append(("setup", False, time.monotonic() - t_start, detail))
        print(f"FAILED setup: {detail}", flush=True)
        for p in sup.procs:
            if not p.alive():
                print(f"--- {p.name} exited; last lines of {p.log_path}:\n{p.tail()}")
    finally:
        sup.stop_all()
    print("\n=== e2e results")
    for name, ok, secs, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name} ({secs:.1f} s){'' if ok else ': ' + detail.splitlines()[0]}")
    passed = sum(1 for r in results if r[1])
    if results and passed == len(results) and not os.environ.get("WEIR_E2E_KEEP"):
        shutil.rmtree(work, ignore_errors=True)  # etcd's data and the logs: kept only on failure
        work = "(removed; WEIR_E2E_KEEP=1 keeps them)"
    print(f"e2e: total {time.monotonic() - t_start:.1f} s; logs in {work}")
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

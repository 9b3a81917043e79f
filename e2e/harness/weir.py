"""weir as a cluster runs it: deploy/base applied to the API server (namespace, RBAC,
IngressClass, Service...), the proxy, and weir-controller with the `weir` ServiceAccount's
token (so the RBAC of deploy/ is what it has), and Prometheus scraping the proxy."""

import json
import os
import urllib.request

from cluster import write_kubeconfig
from procs import SuiteError, http_ok, wait_for

LISTEN = "127.0.0.1:8080"
TLS_LISTEN = "127.0.0.1:8443"
ADMIN = "127.0.0.1:10255"
METRICS = "127.0.0.1:10254"
CONTROLLER_METRICS = "127.0.0.1:10257"
PROMETHEUS = "127.0.0.1:9090"


class Weir:
    def __init__(self, sup, work, cp, repo, bins):
        self.sup, self.work, self.cp, self.repo, self.bins = sup, work, cp, repo, bins
        self.proxy = self.controller = self.prometheus = None
        self.kubeconfig = os.path.join(work, "weir-controller.kubeconfig")
        self.log_checked = 0  # bytes of the controller's log already checked for RBAC refusals

    def install(self):
        """deploy/base as `kubectl apply -k` would, and a token of its ServiceAccount."""
        rendered = self.cp.kubectl.run("kustomize", os.path.join(self.repo, "deploy", "base"))
        self.cp.kubectl.apply(rendered)
        token = self.cp.kubectl.run("create", "token", "weir", "--namespace=weir-system", "--duration=6h").strip()
        write_kubeconfig(self.kubeconfig, self.cp.ca, token, "system:serviceaccount:weir-system:weir")

    def start_proxy(self, listen=LISTEN):
        """The proxy; `listen`: its data listener (scenario 11 makes it dual-stack)."""
        self.proxy = self.sup.start("weir", [
            os.path.join(self.bins, "weir"), f"--listen={listen}", f"--tls-listen={TLS_LISTEN}",
            f"--admin-listen={ADMIN}", f"--metrics-listen={METRICS}", "--drain-timeout=5s", "--workers=1"])
        wait_for("weir /healthz", lambda: http_ok(f"http://{METRICS}/healthz"), 30, proc=self.proxy)
        return self.proxy

    def start_controller(self, extra=()):
        """weir-controller; `extra`: flags beyond the defaults (scenario 11's client address)."""
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, POD_NAMESPACE="weir-system", POD_NAME="weir-e2e-0",
                   RUST_LOG="info,kube=warn")
        if self.controller is not None:  # a restart: its log goes on in the same file
            self.log_checked = min(self.log_checked, os.path.getsize(self.controller.log_path))
        self.controller = self.sup.start("weir-controller", [
            os.path.join(self.bins, "weir-controller"), "--class=weir", f"--proxy-admin=http://{ADMIN}",
            f"--listen={CONTROLLER_METRICS}", "--publish-service=weir-system/weir", *extra], env=env)
        wait_for("weir-controller /readyz", lambda: http_ok(f"http://{CONTROLLER_METRICS}/readyz"), 60,
                 proc=self.controller)
        return self.controller

    def wait_proxy_ready(self, timeout=30):
        wait_for("weir /readyz (a table loaded)", lambda: http_ok(f"http://{METRICS}/readyz"), timeout,
                 proc=self.proxy)

    def start_prometheus(self):
        cfg = os.path.join(self.work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    f"scrape_configs:\n  - job_name: weir\n    static_configs: [{{targets: ['{METRICS}']}}]\n")
        self.prometheus = self.sup.start("prometheus", [
            "prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={self.work}/prometheus",
            f"--web.listen-address={PROMETHEUS}", "--log.level=warn"])
        wait_for("prometheus /-/ready", lambda: http_ok(f"http://{PROMETHEUS}/-/ready"), 60, proc=self.prometheus)

    def config(self):
        """The proxy's admin API answer: {version, generation, table}."""
        with urllib.request.urlopen(f"http://{ADMIN}/config", timeout=2) as r:
            return json.load(r)

    def table(self):
        """The proxy's current route table."""
        return self.config().get("table") or {}

    def version(self):
        return self.config().get("version")

    def rule(self, host, path="/"):
        for h in self.table().get("hosts", []):
            if h.get("host") == host:
                for r in h.get("rules", []):
                    if r.get("path") == path:
                        return r
        return None

    def controller_metric(self, name):
        """{labels-text: value} of one controller metric."""
        with urllib.request.urlopen(f"http://{CONTROLLER_METRICS}/metrics", timeout=2) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                k, _, v = line.rpartition(" ")
                out[k[len(name):]] = float(v)
        return out

    def check_alive(self):
        for p in (self.proxy, self.controller):
            if p is not None:
                p.check_alive()


def forbidden_lines(weir):
    """The controller's log lines since the last check where the API server refused it."""
    with open(weir.controller.log_path, "rb") as f:
        f.seek(weir.log_checked)
        data = f.read()
    return [l for l in data.decode(errors="replace").splitlines() if "forbidden" in l.lower()], len(data)


def excuse_forbidden(weir):
    """Skips the refusals logged so far (a restarted API server answers 403 until its RBAC
    caches are filled); returns how many there were."""
    lines, n = forbidden_lines(weir)
    weir.log_checked += n
    return len(lines)


def fail_on_forbidden(weir):
    lines, n = forbidden_lines(weir)
    weir.log_checked += n
    if lines:
        raise SuiteError("weir-controller was refused by RBAC:\n" + "\n".join(lines[:5]))

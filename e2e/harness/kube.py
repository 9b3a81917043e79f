"""A small Kubernetes API client on the standard library (JSON requests and watches), and
kubectl / kubectl-argo-rollouts run against the suite's own API server."""

import http.client
import json
import ssl
import subprocess
import time

from procs import SuiteError


class Api:
    def __init__(self, host, port, token, cafile):
        self.host, self.port, self.token, self.cafile = host, port, token, cafile
        self.ctx = None  # made on first use: the CA is written after this client is

    def _conn(self, timeout):
        if self.ctx is None:
            self.ctx = ssl.create_default_context(cafile=self.cafile)
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def request(self, method, path, body=None, content_type="application/json", timeout=10.0):
        """(status, parsed JSON or None)."""
        c = self._conn(timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = content_type
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw) if raw else None
            except ValueError:
                return r.status, {"raw": raw.decode(errors="replace")}
        finally:
            c.close()

    def get(self, path, ok_missing=False):
        status, obj = self.request("GET", path)
        if status == 404 and ok_missing:
            return None
        if status != 200:
            raise SuiteError(f"GET {path}: {status} {obj}")
        return obj

    def patch(self, path, body, kind="merge"):
        ct = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}[kind]
        status, obj = self.request("PATCH", path, body, ct)
        if status != 200:
            raise SuiteError(f"PATCH {path}: {status} {obj}")
        return obj

    def watch(self, path, resource_version, timeout_seconds=60):
        """Yields watch events (dicts) until the server ends the watch."""
        sep = "&" if "?" in path else "?"
        c = self._conn(timeout_seconds + 10)
        try:
            c.request("GET", f"{path}{sep}watch=1&resourceVersion={resource_version}"
                      f"&allowWatchBookmarks=true&timeoutSeconds={timeout_seconds}",
                      headers={"Authorization": f"Bearer {self.token}"})
            r = c.getresponse()
            if r.status != 200:
                raise SuiteError(f"watch {path}: {r.status} {r.read()[:300]!r}")
            while True:
                line = r.readline()
                if not line:
                    return
                yield json.loads(line)
        finally:
            c.close()


class Kubectl:
    def __init__(self, kubeconfig, plugin):
        self.kubeconfig, self.plugin = kubeconfig, plugin

    def run(self, *args, stdin=None, check=True, timeout=60):
        return self._run(["kubectl", f"--kubeconfig={self.kubeconfig}", *args], stdin, check, timeout)

    def argo(self, *args, check=True, timeout=60):
        """kubectl-argo-rollouts, as `kubectl argo rollouts ARGS` runs it."""
        return self._run([self.plugin, f"--kubeconfig={self.kubeconfig}", *args], None, check, timeout)

    def apply(self, yaml_text, namespace=None):
        ns = [f"--namespace={namespace}"] if namespace else []
        return self.run("apply", *ns, "-f", "-", stdin=yaml_text)

    @staticmethod
    def _run(argv, stdin, check, timeout):
        t0 = time.monotonic()
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise SuiteError(f"{' '.join(argv[:1] + argv[2:])} failed ({p.returncode}, "
                             f"{time.monotonic() - t0:.1f} s): {p.stderr.strip() or p.stdout.strip()}")
        return p.stdout

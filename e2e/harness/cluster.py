"""The control plane of the suite, inside its network namespace: a CA and keys, etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok (a fake node whose pods get
addresses of 192.0.2.0/25), and the Argo Rollouts controller. Every port is on 127.0.0.1."""

import base64
import json
import os
import secrets
import subprocess

from kube import Api, Kubectl
from procs import SuiteError, wait_for

API_PORT = 6443
POD_CIDR = "192.0.2.0/25"
NODE_IP = "192.0.2.251"
ADVERTISE_IP = "192.0.2.250"
# TEST-NET-2: Service ClusterIPs are allocated, never contacted (weir sends to pod addresses).
SERVICE_CIDR = "198.51.100.0/24"
WEIR_CLASS = "weir"


def openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SuiteError(f"openssl {' '.join(args[:2])} failed: {p.stderr.strip()}")


def make_pki(d):
    """CA, the API server's serving pair (127.0.0.1), and the service-account signing key."""
    os.makedirs(d, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=weir-e2e-ca", cwd=d)
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out", "apiserver.csr",
            "-subj", "/CN=kube-apiserver", cwd=d)
    openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "apiserver.crt", "-days", "2", "-extfile", "san.cnf", cwd=d)
    openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


def write_kubeconfig(path, cafile, token, user):
    with open(cafile, "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
        "clusters": [{"name": "e2e", "cluster": {"server": f"https://127.0.0.1:{API_PORT}",
                                                 "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user}}],
    }
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


class ControlPlane:
    def __init__(self, sup, work, tools):
        self.sup, self.work, self.tools = sup, work, tools
        self.pki = os.path.join(work, "pki")
        self.ca = os.path.join(self.pki, "ca.crt")
        self.token = secrets.token_hex(16)
        self.admin_kubeconfig = os.path.join(work, "admin.kubeconfig")
        self.api = Api("127.0.0.1", API_PORT, self.token, self.ca)
        self.kubectl = Kubectl(self.admin_kubeconfig, self.bin("argo-rollouts", "kubectl-argo-rollouts"))
        self.procs = {}

    def bin(self, component, name):
        return os.path.join(self.tools[component], "bin", name)

    def up(self):
        make_pki(self.pki)
        with open(os.path.join(self.pki, "tokens.csv"), "w") as f:
            f.write(f"{self.token},e2e-admin,e2e-admin,system:masters\n")
        write_kubeconfig(self.admin_kubeconfig, self.ca, self.token, "e2e-admin")
        self.start_etcd()
        self.start_apiserver()
        self.start("kube-controller-manager", [
            self.bin("kubernetes", "kube-controller-manager"), f"--kubeconfig={self.admin_kubeconfig}",
            "--bind-address=127.0.0.1", "--secure-port=10360", "--leader-elect=false",
            f"--root-ca-file={self.ca}", f"--service-account-private-key-file={self.pki}/sa.key",
            "--concurrent-replicaset-syncs=5", "--v=1"])
        self.start("kube-scheduler", [
            self.bin("kubernetes", "kube-scheduler"), f"--kubeconfig={self.admin_kubeconfig}",
            "--bind-address=127.0.0.1", "--secure-port=10359", "--leader-elect=false", "--v=1"])
        self.start_kwok()
        self.start_argo()

    def start(self, name, argv):
        self.procs[name] = self.sup.start(name, argv)
        return self.procs[name]

    def start_etcd(self):
        p = self.start("etcd", [
            self.bin("etcd", "etcd"), "--name=e2e", f"--data-dir={self.work}/etcd",
            "--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
            "--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
            "--initial-cluster=e2e=http://127.0.0.1:2380", "--listen-metrics-urls=http://127.0.0.1:2381",
            "--log-level=warn", "--unsafe-no-fsync"])
        from procs import http_ok
        wait_for("etcd /health", lambda: http_ok("http://127.0.0.1:2381/health"), 60, proc=p)

    def start_apiserver(self):
        p = self.start("kube-apiserver", [
            self.bin("kubernetes", "kube-apiserver"), "--etcd-servers=http://127.0.0.1:2379",
            "--bind-address=127.0.0.1", f"--secure-port={API_PORT}", f"--advertise-address={ADVERTISE_IP}",
            f"--tls-cert-file={self.pki}/apiserver.crt", f"--tls-private-key-file={self.pki}/apiserver.key",
            f"--client-ca-file={self.ca}", f"--token-auth-file={self.pki}/tokens.csv",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.pki}/sa.pub",
            f"--service-account-signing-key-file={self.pki}/sa.key",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=RBAC",
            "--endpoint-reconciler-type=none", "--disable-admission-plugins=ServiceAccount",
            f"--cert-dir={self.work}/apiserver-certs", "--profiling=false", "--v=1"])
        wait_for("kube-apiserver /readyz", lambda: self.api.request("GET", "/readyz")[0] == 200, 120,
                 interval=0.2, proc=p)

    def restart_apiserver(self):
        self.procs["kube-apiserver"].stop()
        self.start_apiserver()

    def start_kwok(self):
        stages = os.path.join(self.tools["kwok"], "stages")
        # Pods: scheduled -> Running and Ready at once, deleted at once (the pod runner keeps a
        # deleted pod serving for a grace period). The node: ready, heartbeating by its Lease.
        configs = []
        for d in ("node/fast", "node/heartbeat-with-lease", "pod/fast"):
            dir_ = os.path.join(stages, d)
            configs += [os.path.join(dir_, f) for f in sorted(os.listdir(dir_))
                        if f.endswith(".yaml") and f != "kustomization.yaml"]
        self.start("kwok", [
            self.bin("kwok", "kwok"), f"--kubeconfig={self.admin_kubeconfig}", "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", f"--cidr={POD_CIDR}",
            f"--node-ip={NODE_IP}", "--server-address=127.0.0.1:10247", "--node-lease-duration-seconds=40", *[f"--config={c}" for c in configs]])
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "kwok-node-0", "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"kubernetes.io/hostname": "kwok-node-0", "type": "kwok"}},
            "spec": {"podCIDR": POD_CIDR},
        }
        self.kubectl.apply(json.dumps(node))
        wait_for("kwok-node-0 Ready", lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (self.api.get("/api/v1/nodes/kwok-node-0").get("status", {}).get("conditions") or [])),
            60, interval=0.2, proc=self.procs["kwok"])

    def start_argo(self):
        crds = os.path.join(self.tools["argo-rollouts"], "crds")
        for f in sorted(f for f in os.listdir(crds) if f.endswith("-crd.yaml")):
            with open(os.path.join(crds, f)) as fh:
                self.kubectl.run("apply", "--server-side", "-f", "-", stdin=fh.read())
        def established(crd):
            obj = self.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}.argoproj.io")
            return any(c["type"] == "Established" and c["status"] == "True"
                       for c in obj.get("status", {}).get("conditions") or [])
        for crd in ("rollouts", "analysistemplates", "analysisruns", "experiments", "clusteranalysistemplates"):
            wait_for(f"CRD {crd}.argoproj.io Established", lambda: established(crd), 60, interval=0.1)
        p = self.start("argo-rollouts", [
            self.bin("argo-rollouts", "rollouts-controller"), f"--kubeconfig={self.admin_kubeconfig}",
            f"--nginx-ingress-classes={WEIR_CLASS}", "--leader-elect=false", "--loglevel=info",
            "--healthzPort=8081", "--metricsport=8090"])
        from procs import http_ok
        wait_for("argo-rollouts /healthz", lambda: http_ok("http://127.0.0.1:8081/healthz"), 60, proc=p)

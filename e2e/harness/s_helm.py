"""Scenario 9: `helm install` of deploy/helm/weir into the real API server, and weir serving
from what it installed.

helm (the pinned v3.22.0 of tools/helm, built by run.sh before the network is cut) installs
the chart into a namespace labelled for the restricted Pod Security Standard. No kubelet runs
containers here (kwok fakes the pods), so the scenario checks what the API server holds: the
Deployment, RBAC, IngressClass, Services and PodDisruptionBudget rendered and accepted (the
installed manifest applied again with strict server-side field validation, as a dry run), the
Deployment's pods admitted by Pod Security and scheduled. Then it runs the two containers
the way the pod spec says — the same args and env (fieldRefs resolved from one of those
pods, `$(VAR)` expanded as the kubelet does), weir-controller with the chart's
ServiceAccount's token — so the RBAC is the chart's, and checks that an Ingress of the
chart's class is served: a request through that weir reaches a test pod, the controller
holds the chart's Lease, and the proxy's metrics carry the pod's identity.

A pod has a network namespace of its own; these two share the suite's, so the addresses of
the pod spec (0.0.0.0, and 127.0.0.1 for the admin API between the containers) become
POD_LOOPBACK, which the suite's weir does not use; and the paths of the pod's emptyDir
mounts (the admin API's Unix socket between the containers) become a directory per volume
under the suite's work directory. Those are the only changes to the args."""

import http.client
import json
import os
import re
import time
import urllib.request

from cluster import write_kubeconfig
from ctx import NS, workload
from procs import SuiteError, http_ok, wait_for

RELEASE = "weir-helm"
NAMESPACE = "weir-helm"
CLASS = "weir-helm"
CONTROLLER_VALUE = "weir.dev/helm-e2e"
POD_LOOPBACK = "127.0.0.2"
HOST = "helm.e2e.test"

APP = workload("helm-app", "helm-v1") + f"""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: helm-app}}
spec:
  ingressClassName: {CLASS}
  rules:
    - host: {HOST}
      http:
        paths:
          - {{path: /, pathType: Prefix, backend: {{service: {{name: helm-app, port: {{name: http}}}}}}}}
"""


def kubelet_expand(value, env):
    """`$(VAR)` from the container's env, `$$` an escaped `$`, unknown references kept."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def container_env(container, pod):
    """The container's env as the kubelet gives it: values, and the fieldRefs the chart uses."""
    env = {}
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = kubelet_expand(e["value"], env)
            continue
        path = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        fields = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"]["namespace"]}
        if path not in fields:
            raise SuiteError(f"9-helm: env {e['name']} of container {container['name']} comes from {e.get('valueFrom')}, "
                             "which this scenario cannot resolve")
        env[e["name"]] = fields[path]
    return env


def pod_volumes(pod_spec, root):
    """The pod's emptyDir volumes as directories under `root` (one per volume, shared by the
    containers as the kubelet shares it): volume name -> directory."""
    dirs = {}
    for v in pod_spec.get("volumes") or []:
        if "emptyDir" in v:
            dirs[v["name"]] = os.path.join(root, v["name"])
            os.makedirs(dirs[v["name"]], mode=0o700, exist_ok=True)
    return dirs


def pod_args(container, env, volumes):
    """The container's args, expanded, with the pod's addresses moved to POD_LOOPBACK and
    the paths of its emptyDir mounts moved to the volumes' directories."""
    mounts = [(m["mountPath"].rstrip("/"), volumes[m["name"]])
              for m in container.get("volumeMounts") or [] if m["name"] in volumes]
    out = []
    for a in container.get("args") or []:
        a = kubelet_expand(a, env)
        a = a.replace("0.0.0.0:", f"{POD_LOOPBACK}:").replace("127.0.0.1:", f"{POD_LOOPBACK}:")
        for path, local in mounts:
            a = re.sub(rf"(?<![\w/.]){re.escape(path)}(?=/|$)", local, a)
        out.append(a)
    return out


def get_via(addr, host, path="/"):
    host_ip, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host_ip, int(port), timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        body = r.read()
        return r.status, r.getheader("X-Version"), body
    finally:
        conn.close()


def helm_install(ctx):
    helm = ctx.cp.tools.get("HELM")
    if not helm or not os.access(helm, os.X_OK):
        raise SuiteError(f"9-helm: no helm binary (HELM={helm!r} in the tools list); e2e/run.sh builds it "
                         "with tools/build.sh helm before the scenarios run")
    chart = os.path.join(ctx.weir.repo, "deploy", "helm", "weir")
    version = ctx.kubectl._run([helm, "version", "--short"], None, True, 30).strip()
    # The namespace as deploy/README.md says to make it: restricted Pod Security, enforced.
    ctx.kubectl.run("create", "namespace", NAMESPACE)
    ctx.kubectl.run("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted",
                    "pod-security.kubernetes.io/warn=restricted")
    # A kubelet labels its Node with its OS; kwok's node has no kubelet (the chart's
    # nodeSelector is kubernetes.io/os: linux).
    ctx.kubectl.run("label", "--overwrite", "node", "kwok-node-0", "kubernetes.io/os=linux")
    t0 = time.monotonic()
    out = ctx.kubectl._run([
        helm, f"--kubeconfig={ctx.cp.admin_kubeconfig}", "install", RELEASE, chart, f"--namespace={NAMESPACE}",
        f"--set=controller.ingressClassResource.name={CLASS}",
        f"--set=controller.ingressClassResource.controllerValue={CONTROLLER_VALUE}"], None, True, 120)
    status = re.search(r"STATUS: (\S+)", out)
    if not status or status.group(1) != "deployed":
        raise SuiteError(f"9-helm: helm install did not deploy:\n{out[-2000:]}")

    # Not helm --wait: it waits for the LoadBalancer Service's address, which only a cloud gives.
    def rolled_out():
        dep = ctx.api.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RELEASE}")
        return dep.get("status", {}).get("readyReplicas") == dep["spec"]["replicas"]
    try:
        wait_for(f"Deployment {RELEASE} ready (pods admitted under enforce=restricted, scheduled)", rolled_out, 90,
                 interval=0.2)
    except SuiteError as e:
        events = ctx.api.get(f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
        why = [f"{ev['involvedObject']['kind']}/{ev['involvedObject']['name']} {ev.get('reason')}: {ev.get('message')}"
               for ev in events if ev.get("type") == "Warning"]
        raise SuiteError(f"{e}; warnings: {why[-5:]}") from e
    ctx.note("9-helm", f"{version}: helm install {RELEASE} deploy/helm/weir: STATUS deployed, Deployment ready "
                       f"{time.monotonic() - t0:.1f} s after the install began")
    manifest = ctx.kubectl._run([helm, f"--kubeconfig={ctx.cp.admin_kubeconfig}", "get", "manifest", RELEASE,
                                 f"--namespace={NAMESPACE}"], None, True, 60)
    # Every installed object again, server-side, strict: an unknown or duplicate field fails.
    checked = ctx.kubectl.run("apply", "--server-side", "--dry-run=server", "--validate=strict",
                              "--field-manager=weir-e2e-check", "--force-conflicts", "-f", "-", stdin=manifest)
    return manifest, [l for l in checked.splitlines() if l.strip()]


def check_objects(ctx):
    """What the API server holds for the release; returns the Deployment."""
    s = "9-helm"
    get = ctx.api.get
    dep = get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RELEASE}")
    spec = dep["spec"]["template"]["spec"]
    names = [c["name"] for c in spec["containers"]]
    if names != ["weir", "weir-controller"] or spec.get("serviceAccountName") != RELEASE:
        raise SuiteError(f"{s}: Deployment containers {names}, serviceAccountName {spec.get('serviceAccountName')}")
    ready = dep.get("status", {}).get("readyReplicas")
    if ready != dep["spec"]["replicas"]:
        raise SuiteError(f"{s}: Deployment {ready} of {dep['spec']['replicas']} replicas ready")
    ic = get(f"/apis/networking.k8s.io/v1/ingressclasses/{CLASS}")
    if ic["spec"].get("controller") != CONTROLLER_VALUE:
        raise SuiteError(f"{s}: IngressClass {CLASS} has controller {ic['spec'].get('controller')}")
    svc = get(f"/api/v1/namespaces/{NAMESPACE}/services/{RELEASE}")
    ports = sorted((p["name"], p["port"]) for p in svc["spec"]["ports"])
    metrics_svc = get(f"/api/v1/namespaces/{NAMESPACE}/services/{RELEASE}-metrics", ok_missing=True)
    sa = get(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{RELEASE}")
    cr = get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{RELEASE}-controller")
    crb = get(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{RELEASE}-controller")
    role = get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/roles/{RELEASE}-controller-leader-election")
    pdb = get(f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets/{RELEASE}", ok_missing=True)
    subjects = [(x["kind"], x.get("namespace"), x["name"]) for x in crb.get("subjects", [])]
    if subjects != [("ServiceAccount", NAMESPACE, RELEASE)] or not sa or not role:
        raise SuiteError(f"{s}: ClusterRoleBinding subjects {subjects}")
    # The defaults render both (metrics on, two replicas).
    if not metrics_svc or not pdb:
        raise SuiteError(f"{s}: metrics Service {bool(metrics_svc)}, PodDisruptionBudget {bool(pdb)}")
    pods = [p for p in get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
            if p["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == RELEASE
            and p.get("status", {}).get("phase") == "Running"]
    if not pods:
        raise SuiteError(f"{s}: no Running pod of the Deployment")
    ctx.note(s, f"API server holds: Deployment {RELEASE} ({ready}/{dep['spec']['replicas']} ready, containers "
                f"{names}, pods admitted under enforce=restricted), IngressClass {CLASS} -> {CONTROLLER_VALUE}, "
                f"Service {svc['spec']['type']} {ports}, metrics Service {'yes' if metrics_svc else 'no'}, "
                f"ServiceAccount, ClusterRole ({len(cr.get('rules', []))} rules) + binding, leader-election Role, "
                f"PodDisruptionBudget {'yes' if pdb else 'no'}")
    return dep, pods[0]


def helm_scenario(ctx):
    s = "9-helm"
    manifest, checked = helm_install(ctx)
    kinds = sorted(set(re.findall(r"^kind: (\S+)", manifest, re.M)))
    ctx.note(s, f"installed manifest ({', '.join(kinds)}) re-applied with --dry-run=server --validate=strict: "
                f"{len(checked)} objects accepted")
    if len(checked) != len(re.findall(r"^kind: ", manifest, re.M)):
        raise SuiteError(f"{s}: strict server-side check: {checked}")
    dep, pod = check_objects(ctx)
    containers = {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}

    # The two containers, as the pod spec runs them.
    weir_c, ctrl_c = containers["weir"], containers["weir-controller"]
    weir_env, ctrl_env = container_env(weir_c, pod), container_env(ctrl_c, pod)
    volumes = pod_volumes(dep["spec"]["template"]["spec"], os.path.join(ctx.weir.work, "helm-pod-volumes"))
    weir_args, ctrl_args = pod_args(weir_c, weir_env, volumes), pod_args(ctrl_c, ctrl_env, volumes)
    token = ctx.kubectl.run("create", "token", RELEASE, f"--namespace={NAMESPACE}", "--duration=1h").strip()
    kubeconfig = os.path.join(ctx.weir.work, "helm-controller.kubeconfig")
    write_kubeconfig(kubeconfig, ctx.cp.ca, token, f"system:serviceaccount:{NAMESPACE}:{RELEASE}")
    ctx.note(s, f"weir {' '.join(weir_args)}  env {weir_env}")
    ctx.note(s, f"weir-controller {' '.join(ctrl_args)}  env {ctrl_env}")
    bins, sup = ctx.weir.bins, ctx.weir.sup
    port = lambda args, flag: next(a.split("=", 1)[1] for a in args if a.startswith(f"--{flag}="))
    listen, metrics = port(weir_args, "listen"), port(weir_args, "metrics-listen")
    ctrl_listen = port(ctrl_args, "listen")
    procs = []
    try:
        proxy = sup.start("helm-weir", [os.path.join(bins, "weir"), *weir_args], env=dict(os.environ, **weir_env))
        procs.append(proxy)
        wait_for("the chart's weir /healthz", lambda: http_ok(f"http://{metrics}/healthz"), 30, proc=proxy)
        env = dict(os.environ, KUBECONFIG=kubeconfig, RUST_LOG="info,kube=warn", **ctrl_env)
        ctrl = sup.start("helm-weir-controller", [os.path.join(bins, "weir-controller"), *ctrl_args], env=env)
        procs.append(ctrl)
        wait_for("the chart's weir-controller /readyz", lambda: http_ok(f"http://{ctrl_listen}/readyz"), 60, proc=ctrl)
        wait_for("the chart's weir /readyz (a table pushed)", lambda: http_ok(f"http://{metrics}/readyz"), 30,
                 proc=proxy)

        ctx.apply(APP)

        def served():
            proxy.check_alive()
            ctrl.check_alive()
            got = get_via(listen, HOST)
            return got if got[0] == 200 and got[1] == "helm-v1" else None
        status, version, body = wait_for(f"{HOST} through the chart's weir to reach the test pod", served, 60,
                                         interval=0.2)
        answers = [get_via(listen, HOST)[1] for _ in range(20)]
        ctx.note(s, f"GET http://{HOST}/ via the chart's weir ({listen}): {status}, X-Version {version}; "
                    f"20 more: {sorted(set(answers))}")
        if answers != ["helm-v1"] * 20:
            raise SuiteError(f"{s}: not every request reached the test pod: {answers}")
        # The suite's own weir (class weir) must not serve the chart's class.
        suite_hosts = {h.get("host") for h in ctx.weir.table().get("hosts", [])}
        if HOST in suite_hosts:
            raise SuiteError(f"{s}: the suite's weir (class weir) serves {HOST} of class {CLASS}")

        # The chart's RBAC let it do its work: the Lease the chart names is held by this pod.
        lease_name = port(ctrl_args, "lease-name")

        def lease_holder():
            lease = ctx.api.get(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{lease_name}",
                                ok_missing=True)
            holder = (lease or {}).get("spec", {}).get("holderIdentity")
            return holder if holder == pod["metadata"]["name"] else None
        holder = wait_for(f"Lease {lease_name} held by {pod['metadata']['name']}", lease_holder, 30, interval=0.2)
        with open(ctrl.log_path, "rb") as f:
            refused = [l for l in f.read().decode(errors="replace").splitlines() if "forbidden" in l.lower()]
        if refused:
            raise SuiteError(f"{s}: the chart's RBAC refused weir-controller:\n" + "\n".join(refused[:5]))

        # The proxy's metrics carry the pod's identity and the chart's class.
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5) as r:
            text = r.read().decode()
        want = (f'controller_class="{CONTROLLER_VALUE}",controller_namespace="{NAMESPACE}",'
                f'controller_pod="{pod["metadata"]["name"]}"')
        hash_line = next((l for l in text.splitlines()
                          if l.startswith("nginx_ingress_controller_config_hash{") and want in l), None)
        ok_line = next((l for l in text.splitlines()
                        if l.startswith("nginx_ingress_controller_config_last_reload_successful{")), "")
        ctx.note(s, f"Lease {lease_name} holder {holder}; no RBAC refusal; {hash_line}; {ok_line}")
        if hash_line is None or not ok_line.endswith(" 1"):
            raise SuiteError(f"{s}: the chart's weir metrics lack {want} or a successful reload")
    finally:
        for p in reversed(procs):
            p.stop()
        ctx.kubectl.run("delete", "ingress", "helm-app", f"--namespace={NS}", check=False)
        ctx.kubectl.run("delete", "replicaset,service", "helm-app", f"--namespace={NS}", check=False)
        helm = ctx.cp.tools.get("HELM")
        if helm:
            ctx.kubectl._run([helm, f"--kubeconfig={ctx.cp.admin_kubeconfig}", "uninstall", RELEASE,
                              f"--namespace={NAMESPACE}", "--wait", "--timeout=60s"], None, False, 90)
    # helm uninstall removes every object it installed, cluster-scoped ones included.
    left = [p for p in (f"/apis/networking.k8s.io/v1/ingressclasses/{CLASS}",
                        f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{RELEASE}-controller",
                        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RELEASE}")
            if ctx.api.get(p, ok_missing=True)]
    if left:
        raise SuiteError(f"{s}: helm uninstall left {left}")
    ctx.note(s, "helm uninstall removed the release's objects (IngressClass, ClusterRole, Deployment)")
    ctx.kubectl.run("delete", "namespace", NAMESPACE, "--wait=false", check=False)

"""The pod runner: what kubelet and the container would do for the test apps. For every
Running pod labelled `weir-e2e/app` it serves HTTP on the pod's IP and container port,
answering 200 with the pod's version (the image tag) in the body and `X-Version`. A control
listener switches a version to answering 500 or slowly. A pod that is deleted keeps serving
for a grace period, as a container does between SIGTERM and exit.

Run inside the suite's network namespace: python3 podrunner.py CONTROL_ADDR API_PORT CA TOKEN_FILE"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from kube import Api  # noqa: E402

GRACE_SECONDS = 8.0
modes = {}  # version -> "ok" | "500" | "slow"
# One listener per pod address. kwok hands a deleted pod's IP to the next pod at once, while
# the deleted pod's "container" is still in its grace period here: the new pod takes the
# listener over (its requests answer as the new pod from then on) rather than the old
# listener being closed, which would reset connections still in its accept queue — a
# failure no real cluster shows, since kubelet releases an IP only after the container exits.
listeners = {}  # (ip, port) -> {"uid", "version", "name", "server"}
by_uid = {}  # pod uid -> (ip, port)
lock = threading.Lock()
served = {"requests": 0}


class Quiet(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def app_handler(slot):
    class App(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            served["requests"] += 1
            version, pod = slot["version"], slot["name"]
            mode = modes.get(version, "ok")
            if mode == "slow":
                time.sleep(2.0)
            status = 500 if mode == "500" else 200
            body = f"{version} {pod}\n".encode()
            self.send_response(status)
            self.send_header("X-Version", version)
            self.send_header("X-Pod", pod)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return App


def start_pod(uid, ip, port, version, name):
    """Serves pod `uid` on ip:port: a new listener, or the one a terminating pod held."""
    slot = listeners.get((ip, port))
    if slot is not None:
        print(f"pod {name} ({version}) takes over {ip}:{port} from {slot['name']}", flush=True)
        by_uid.pop(slot["uid"], None)
        slot.update(uid=uid, version=version, name=name)
        by_uid[uid] = (ip, port)
        return
    slot = {"uid": uid, "version": version, "name": name}
    try:
        srv = Quiet((ip, port), app_handler(slot))
    except OSError as e:
        print(f"pod {name}: cannot bind {ip}:{port}: {e}", flush=True)
        return
    slot["server"] = srv
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    listeners[(ip, port)] = slot
    by_uid[uid] = (ip, port)
    print(f"pod {name} ({version}) serving on {ip}:{port}", flush=True)


def stop_later(uid, name):
    """After the grace period, closes the pod's listener unless a new pod took it over."""
    def stop():
        time.sleep(GRACE_SECONDS)
        with lock:
            addr = by_uid.get(uid)
            slot = listeners.get(addr) if addr else None
            if slot is None or slot["uid"] != uid:
                return
            del by_uid[uid]
            del listeners[addr]
        slot["server"].shutdown()
        slot["server"].server_close()
        print(f"pod {name} stopped", flush=True)
    threading.Thread(target=stop, daemon=True).start()


stopping = set()  # uids whose stop is scheduled


def handle(pod, deleted):
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    uid, name = meta["uid"], meta["name"]
    gone = deleted or meta.get("deletionTimestamp")
    with lock:
        if uid in by_uid:
            if gone and uid not in stopping:
                stopping.add(uid)
                stop_later(uid, name)
            return
        ip = status.get("podIP")
        if gone or status.get("phase") != "Running" or not ip:
            return
        c = spec["containers"][0]
        version = c["image"].rsplit(":", 1)[-1]
        port = (c.get("ports") or [{"containerPort": 8080}])[0]["containerPort"]
        start_pod(uid, ip, port, version, name)


def watch_pods(api):
    path = "/api/v1/pods?labelSelector=weir-e2e%2Fapp"
    while True:
        try:
            lst = api.get(path)
            for p in lst["items"]:
                handle(p, False)
            rv = lst["metadata"]["resourceVersion"]
            for ev in api.watch(path, rv, timeout_seconds=120):
                if ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    handle(ev["object"], ev["type"] == "DELETED")
                elif ev["type"] == "ERROR":
                    break
        except Exception as e:  # API server restarted (scenario 6): list again
            print(f"watch interrupted: {e}", flush=True)
            time.sleep(0.2)


class Control(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        modes[body["version"]] = body["mode"]
        self.send_response(204)
        self.end_headers()

    def do_GET(self):
        with lock:
            pods = sorted(f"{ip}:{port}" for ip, port in listeners)
        body = json.dumps({"pods": pods, "modes": modes, "requests": served["requests"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    control, api_port, ca, token_file = sys.argv[1:5]
    with open(token_file) as f:
        api = Api("127.0.0.1", int(api_port), f.read().strip(), ca)
    threading.Thread(target=watch_pods, args=(api,), daemon=True).start()
    host, port = control.rsplit(":", 1)
    Quiet((host, int(port)), Control).serve_forever()


if __name__ == "__main__":
    main()

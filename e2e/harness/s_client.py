"""Scenario 11: the client address that IP allow and deny lists judge, in each of the three
ways a table can define it, on the real control plane with weir-controller's flags:

1. the TCP peer (the default), on a dual-stack listener (`--listen=[::]:8080`): IPv4 and IPv6
   peers allowed and denied, an X-Forwarded-For from any peer ignored;
2. `--use-forwarded-headers --proxy-real-ip-cidr=...`: X-Forwarded-For believed from trusted
   peers only, read right to left past trusted hops (a client that prepends an allowed
   address gains nothing), IPv6 entries, a malformed entry refused, the found client in
   X-Real-IP at the backend; an untrusted peer's header ignored;
3. `--use-proxy-protocol --proxy-real-ip-cidr=...`: PROXY v1 and v2 headers (TCP4 and TCP6
   sources), X-Forwarded-For not believed, a connection without a header answered 400, and a
   peer outside the trusted CIDRs closed unanswered.

The scenario restarts weir (dual-stack) and weir-controller (each phase's flags), and puts
both back as the suite started them at the end, also when a check fails."""

import ipaddress
import json
import socket
import struct
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer

from ctx import NS
from load import WEIR_HOST
from procs import SuiteError, wait_for
from s_access import Echo, echo_backend, expect, ingress

ECHO = ("192.0.2.202", 8080)
HOST = "client.access.e2e.test"
DENY6_HOST = "deny6.access.e2e.test"
# Addresses this scenario puts on the namespace's lo, to connect from.
ALLOWED_V4, ALLOWED_V6 = "203.0.113.7", "2001:db8:0:1::7"
OTHER_V4 = "192.0.2.200"  # local through the suite's 192.0.2.0/24 route; in no list
# The dual-stack listener of this scenario: a port of its own, so the suite's 127.0.0.1:8080
# (and its connections' TIME_WAIT entries) never stand in its way.
PORT = 8088
TRUSTED = "127.0.0.0/8,::1/128"

MANIFESTS = echo_backend("client-echo", ECHO) \
    + ingress("client-allow", HOST, {"whitelist-source-range": "203.0.113.0/24, 2001:db8:0:1::/64"}, "client-echo") \
    + ingress("client-deny6", DENY6_HOST, {"denylist-source-range": "::1/128"}, "client-echo")


def raw(payload, source=None, family=socket.AF_INET, dest=WEIR_HOST):
    """`payload` sent on a new connection to weir (from `source` if given), then everything
    read until weir closes: (status or None when it closed without an answer, body)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        if source:
            s.bind((source, 0))
        s.connect((dest, PORT))
        data = b""
        try:
            s.sendall(payload)
        except (ConnectionResetError, BrokenPipeError):  # closed before it read a byte
            return None, b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if not data:
        return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def get(host, headers=None, prefix=b""):
    """A GET / HTTP/1.1 with Connection: close, after `prefix` (a PROXY header)."""
    lines = [f"GET / HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return prefix + ("\r\n".join(lines) + "\r\n\r\n").encode()


def v1(src, dst="192.0.2.1", sport=40000, dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src, dst, sport=40000, dport=80):
    """A PROXY protocol v2 header (PROXY command, TCP over IPv4 or IPv6)."""
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    fam = 0x11 if a.version == 4 else 0x21
    addrs = a.packed + b.packed + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, fam]) + struct.pack("!H", len(addrs)) + addrs


def ip(*args):
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if p.returncode != 0 and "File exists" not in p.stderr:
        raise SuiteError(f"ip {' '.join(args)}: {p.stderr.strip()}")


def client_address(w):
    """The `from` of the proxy's table's clientAddress (None: the TCP peer)."""
    return (w.table().get("clientAddress") or {}).get("from")


def restart_controller(w, flags, want):
    w.controller.stop()
    w.start_controller(flags)
    wait_for(f"the table's clientAddress to be {want}", lambda: client_address(w) == want, 30, interval=0.1)


def seen(body):
    """The X-Real-IP and X-Forwarded-For the echo backend received."""
    h = json.loads(body)["headers"]
    return (h.get("x-real-ip") or [None])[0], (h.get("x-forwarded-for") or [None])[0]


def client_addresses(ctx):
    s = "11-client-address"
    w = ctx.weir
    ip("addr", "add", f"{ALLOWED_V4}/32", "dev", "lo")
    ip("-6", "addr", "add", f"{ALLOWED_V6}/128", "dev", "lo", "nodad")
    server = ThreadingHTTPServer(ECHO, Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        w.proxy.stop()
        w.start_proxy(listen=f"[::]:{PORT}")
        w.wait_proxy_ready()
        ctx.apply(MANIFESTS)
        v6 = dict(family=socket.AF_INET6, dest="::1")

        # 1. The TCP peer, IPv4 and IPv6 on one dual-stack listener.
        wait_for(f"{HOST} to serve {ALLOWED_V4}", lambda: raw(get(HOST), ALLOWED_V4)[0] == 200, 60, interval=0.2)
        peer = {
            f"{ALLOWED_V4}": raw(get(HOST), ALLOWED_V4)[0],
            "127.0.0.1": raw(get(HOST))[0],
            f"127.0.0.1 with X-Forwarded-For {ALLOWED_V4}": raw(get(HOST, {"X-Forwarded-For": ALLOWED_V4}))[0],
            f"[{ALLOWED_V6}]": raw(get(HOST), ALLOWED_V6, **v6)[0],
            "[::1]": raw(get(HOST), **v6)[0],
        }
        status, body = raw(get(HOST), ALLOWED_V6, **v6)
        real_ip = seen(body)[0] if status == 200 else None
        status, body = raw(get(HOST), ALLOWED_V4)
        real_ip4 = seen(body)[0] if status == 200 else None
        wait_for(f"{DENY6_HOST} to be served", lambda: raw(get(DENY6_HOST))[0] == 200, 60, interval=0.2)
        deny6 = (raw(get(DENY6_HOST), **v6)[0], raw(get(DENY6_HOST), ALLOWED_V6, **v6)[0], raw(get(DENY6_HOST))[0])
        ctx.note(s, "TCP peer, dual-stack listener, whitelist 203.0.113.0/24 + 2001:db8:0:1::/64: "
                    + ", ".join(f"{k} {v}" for k, v in peer.items())
                    + f"; X-Real-IP at the backend {real_ip} and {real_ip4}; denylist ::1/128: from [::1] {deny6[0]}, "
                      f"[{ALLOWED_V6}] {deny6[1]}, 127.0.0.1 {deny6[2]}")
        expect(s, "TCP peer: allowed v4, other v4, forged XFF, allowed v6, other v6",
               list(peer.values()), [200, 403, 403, 200, 403])
        expect(s, "X-Real-IP of an IPv6 peer", real_ip, ALLOWED_V6)
        expect(s, "X-Real-IP of an IPv4 peer of the dual-stack listener (not ::ffff:...)", real_ip4, ALLOWED_V4)
        expect(s, "denylist ::1/128 from ::1, the allowed v6, 127.0.0.1", deny6, (403, 200, 200))

        # 2. X-Forwarded-For from trusted proxies.
        restart_controller(w, ["--use-forwarded-headers", f"--proxy-real-ip-cidr={TRUSTED}"], "forwardedFor")
        chains = {
            "203.0.113.9": 200,
            "198.51.100.1": 403,
            "203.0.113.9, 127.0.0.5": 200,  # a trusted hop after the client is skipped
            "203.0.113.9, 198.51.100.1": 403,  # an allowed address the client put first
            "2001:db8:0:1::9": 200,
            "[2001:db8:0:1::9]": 200,
            "2001:db8:0:2::9": 403,
            "not-an-address": 403,
        }
        got = {c: raw(get(HOST, {"X-Forwarded-For": c}))[0] for c in chains}
        status, body = raw(get(HOST, {"X-Forwarded-For": "203.0.113.9, 127.0.0.5"}))
        real_ip, xff = seen(body) if status == 200 else (None, None)
        via_v6 = raw(get(HOST, {"X-Forwarded-For": "203.0.113.9"}), **v6)[0]
        untrusted = raw(get(HOST, {"X-Forwarded-For": "203.0.113.9"}), OTHER_V4)[0]
        ctx.note(s, f"--use-forwarded-headers, trusted {TRUSTED}: from 127.0.0.1 "
                    + ", ".join(f"XFF '{c}' {v}" for c, v in got.items())
                    + f"; from [::1] XFF 203.0.113.9 {via_v6}; from untrusted {OTHER_V4} XFF 203.0.113.9 "
                      f"{untrusted}; backend saw X-Real-IP {real_ip}, X-Forwarded-For '{xff}'")
        expect(s, "X-Forwarded-For chains", got, chains)
        expect(s, "from a trusted IPv6 peer", via_v6, 200)
        expect(s, "an untrusted peer's X-Forwarded-For", untrusted, 403)
        expect(s, "X-Real-IP: the client found in the chain", real_ip, "203.0.113.9")
        expect(s, "X-Forwarded-For at the backend", xff, "203.0.113.9, 127.0.0.5, 127.0.0.1")

        # 3. The PROXY protocol.
        restart_controller(w, ["--use-proxy-protocol", f"--proxy-real-ip-cidr={TRUSTED}"], "proxyProtocol")
        cases = {
            "v1 TCP4 203.0.113.9": (get(HOST, prefix=v1("203.0.113.9")), {}, 200),
            "v1 TCP4 198.51.100.1": (get(HOST, prefix=v1("198.51.100.1")), {}, 403),
            "v1 TCP4 198.51.100.1 with X-Forwarded-For 203.0.113.9":
                (get(HOST, {"X-Forwarded-For": "203.0.113.9"}, prefix=v1("198.51.100.1")), {}, 403),
            "v2 TCP4 203.0.113.9": (get(HOST, prefix=v2("203.0.113.9", "192.0.2.1")), {}, 200),
            "v2 TCP6 2001:db8:0:1::9": (get(HOST, prefix=v2("2001:db8:0:1::9", "2001:db8::1")), {}, 200),
            "v1 TCP6 2001:db8:0:2::9": (get(HOST, prefix=v1("2001:db8:0:2::9", "2001:db8::1")), {}, 403),
            "v1 TCP4 203.0.113.9 over [::1]": (get(HOST, prefix=v1("203.0.113.9")), v6, 200),
            "no header": (get(HOST), {}, 400),
            f"v1 TCP4 203.0.113.9 from untrusted {OTHER_V4}":
                (get(HOST, prefix=v1("203.0.113.9")), {"source": OTHER_V4}, None),
        }
        wait_for(f"{HOST} to serve a PROXY protocol client",
                 lambda: raw(cases["v1 TCP4 203.0.113.9"][0])[0] == 200, 30, interval=0.1)
        got = {k: raw(payload, **kw)[0] for k, (payload, kw, _) in cases.items()}
        status, body = raw(get(HOST, prefix=v2("2001:db8:0:1::9", "2001:db8::1")))
        real_ip = seen(body)[0] if status == 200 else None
        ctx.note(s, f"--use-proxy-protocol, trusted {TRUSTED}: "
                    + ", ".join(f"{k} {'closed unanswered' if v is None else v}" for k, v in got.items())
                    + f"; X-Real-IP from a v2 TCP6 header {real_ip}")
        expect(s, "PROXY protocol cases", got, {k: want for k, (_, _, want) in cases.items()})
        expect(s, "X-Real-IP from the PROXY header", real_ip, "2001:db8:0:1::9")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        # Back as the suite started them: the default controller (its table's client is the
        # TCP peer again) and weir on its IPv4 listener.
        w.proxy.stop()
        w.start_proxy()
        w.wait_proxy_ready()
        if w.controller is not None:
            w.controller.stop()
            w.start_controller()
            wait_for("the table's clientAddress to be the TCP peer", lambda: client_address(w) is None, 30,
                     interval=0.1)
        ctx.kubectl.run("delete", "ingress", "client-allow", "client-deny6", f"--namespace={NS}",
                        "--ignore-not-found")
        ctx.kubectl.run("delete", "service", "client-echo", f"--namespace={NS}", "--ignore-not-found")
        ctx.kubectl.run("delete", "endpointslice", "client-echo-1", f"--namespace={NS}", "--ignore-not-found")

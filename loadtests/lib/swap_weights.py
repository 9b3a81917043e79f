#!/usr/bin/env python3
"""swap_weights.py: change the canary weight on a fixed tick while load runs.

--mode weir:  PUT the bench table with the next weight to the admin API (`PUT /config`)
              over one keep-alive connection, every --interval seconds (e.g. 0.01).
--mode nginx: rewrite the split_clients percentage in the rendered nginx conf and send
              SIGHUP to the master (what `nginx -s reload` does), every --interval seconds.
              A reload forks new workers and drains the old ones, so 1 s is the honest
              cadence for nginx; ingress-nginx itself avoids reloads for weight changes.
--mode haproxy: `set map <file> weight N` on HAProxy's admin socket (runtime API, no reload)
              every --interval seconds; the config reads the weight from that map per request.
--mode traefik: rewrite the two weights of the `split` service in Traefik's dynamic file
              (file provider, watched) every --interval seconds; Traefik applies at most one
              change per providersThrottleDuration (2 s by default).

The weights alternate between --weights (default 10,50). Ticks are scheduled on an absolute
clock (t0 + k*interval); a late tick is not made up with a burst. Writes a JSON summary.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import time


def put_weir(conn_box, host, port, body):
    for attempt in (0, 1):
        try:
            conn = conn_box[0]
            if conn is None:
                conn = conn_box[0] = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("PUT", "/config", body=body,
                         headers={"Content-Type": "application/yaml"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                try:  # weir answers {"version", "generation"}: keep the last generation seen
                    conn_box[1] = json.loads(body).get("generation")
                except ValueError:
                    pass
            return resp.status == 200
        except (OSError, http.client.HTTPException):
            if conn_box[0] is not None:
                conn_box[0].close()
            conn_box[0] = None
            if attempt:
                return False
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["weir", "nginx", "haproxy", "traefik"], required=True)
    ap.add_argument("--interval", type=float, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--weights", default="10,50")
    ap.add_argument("--table", help="weir: the bench table (YAML) with a `weight:` line")
    ap.add_argument("--admin", help="weir: host:port of the admin API")
    ap.add_argument("--conf", help="nginx: the rendered proxy conf to rewrite")
    ap.add_argument("--pid", type=int, help="nginx: the master's pid")
    ap.add_argument("--socket", help="haproxy: the admin socket")
    ap.add_argument("--map", help="haproxy: the weight map file, as named in the config")
    ap.add_argument("--dynamic", help="traefik: the dynamic configuration file")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    weights = [int(w) for w in args.weights.split(",")]

    if args.mode == "weir":
        table = open(args.table).read()
        if not re.search(r"(?m)^\s*weight:\s*\d+", table):
            raise SystemExit("the table has no `weight:` line")
        host, port = args.admin.rsplit(":", 1)
        box = [None, None]

        def apply(w):
            return put_weir(box, host, int(port),
                            re.sub(r"(?m)^(\s*weight:\s*)\d+", rf"\g<1>{w}", table).encode())
    elif args.mode == "haproxy":
        def apply(w):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    s.connect(args.socket)
                    s.sendall(f"set map {args.map} weight {w}\n".encode())
                    answer = b""
                    while chunk := s.recv(4096):
                        answer += chunk
                # an empty answer (or a blank line) is success; errors are text
                return not answer.strip()
            except OSError:
                return False
    elif args.mode == "traefik":
        dyn = open(args.dynamic).read()
        pat = r"(- name: stable\n\s*weight: )\d+(\n\s*- name: canary\n\s*weight: )\d+"
        if not re.search(pat, dyn):
            raise SystemExit("the Traefik dynamic file has no stable/canary weights")

        def apply(w):
            tmp = args.dynamic + ".tmp"
            with open(tmp, "w") as f:
                f.write(re.sub(pat, rf"\g<1>{100 - w}\g<2>{w}", dyn))
            os.replace(tmp, args.dynamic)
            return True
    else:
        conf = open(args.conf).read()
        if not re.search(r"(?m)^\s*\d+%\s+canary;", conf):
            raise SystemExit("the nginx conf has no `N% canary;` line")

        def apply(w):
            text = re.sub(r"(?m)^(\s*)\d+%(\s+canary;)", rf"\g<1>{w}%\g<2>", conf)
            tmp = args.conf + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, args.conf)
            try:
                os.kill(args.pid, signal.SIGHUP)
                return True
            except OSError:
                return False

    ok = failed = late = 0
    gaps = []
    t0 = time.monotonic()
    last = None
    k = 0
    while True:
        now = time.monotonic()
        if now - t0 >= args.duration:
            break
        if apply(weights[k % len(weights)]):
            ok += 1
        else:
            failed += 1
        done = time.monotonic()
        if last is not None:
            gaps.append(done - last)
        last = done
        k += 1
        nxt = t0 + k * args.interval
        if nxt < time.monotonic():  # late: skip the missed ticks, no burst
            late += 1
            k = int((time.monotonic() - t0) / args.interval) + 1
            nxt = t0 + k * args.interval
        time.sleep(max(0.0, nxt - time.monotonic()))
    # leave the weight where the steady runs expect it
    apply(weights[0])
    gaps.sort()
    generation = box[1] if args.mode == "weir" else None
    summary = {"mode": args.mode, "interval_s": args.interval, "swaps_ok": ok,
               "swaps_failed": failed, "late_ticks": late,
               "gap_p50_ms": round(1000 * gaps[len(gaps) // 2], 2) if gaps else None,
               "gap_max_ms": round(1000 * gaps[-1], 2) if gaps else None,
               "last_generation": generation}
    with open(args.out, "w") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""routecheck.py: is a proxy doing the job before it is timed?

Sends N requests per case over keep-alive connections and counts response bodies
(`stable\n` / `canary\n`, from the upstream conf): no header -> weighted share within
a tolerance band, `X-Canary: always` -> 100 % canary, `X-Canary: never` -> 0 %.
Also checks that the header match is case-sensitive (`Always` falls through to the weight),
as in ingress-nginx (reported, not fatal: it does not change the cost being measured).
With --cookie NAME (a contender configured with canary-by-cookie): cookie NAME=always ->
100 %, NAME=never -> 0 %, and `X-Canary: never` with NAME=always -> 0 % (the header stage
comes first); these are fatal too.
Prints one JSON line; exits 1 if none/always/never is out of its band.

Tolerance: with N=2000 and p=0.10 the share's standard deviation is 0.67 points, so the
default band of +-4 points is about 6 sigma: a correct proxy fails it essentially never.
"""
import argparse
import http.client
import json
import sys


def count(host, port, n, header, timeout, cookie=None):
    canary = stable = other = 0
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"X-Canary": header} if header is not None else {}
    if cookie:
        headers["Cookie"] = f"session=abc; {cookie}"
    for _ in range(n):
        try:
            conn.request("GET", "/", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            other += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            continue
        if resp.status != 200:
            other += 1
        elif body == b"canary\n":
            canary += 1
        elif body == b"stable\n":
            stable += 1
        else:
            other += 1
    conn.close()
    return canary, stable, other


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--weight", type=float, default=10.0, help="expected canary %% without header")
    ap.add_argument("--band", type=float, default=4.0, help="tolerance, percentage points")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--cookie", help="the canary-by-cookie name the contender is configured with")
    args = ap.parse_args()
    cases = [
        ("none", None, None, args.weight, args.band),
        ("always", "always", None, 100.0, 0.0),
        ("never", "never", None, 0.0, 0.0),
        ("Always (case-sensitive)", "Always", None, args.weight, args.band),
    ]
    if args.cookie:
        cases += [
            ("cookie always", None, f"{args.cookie}=always", 100.0, 0.0),
            ("cookie never", None, f"{args.cookie}=never", 0.0, 0.0),
            ("header never beats cookie always", "never", f"{args.cookie}=always", 0.0, 0.0),
        ]
    out, ok = {}, True
    for name, header, cookie, want, band in cases:
        n = args.n if header in (None, "Always") and cookie is None else max(200, args.n // 4)
        canary, stable, other = count(args.host, args.port, n, header, args.timeout, cookie)
        share = 100.0 * canary / n
        good = other == 0 and abs(share - want) <= band
        if header != "Always":
            ok &= good
        out[name] = {"n": n, "canary_pct": round(share, 2), "want": want, "band": band,
                     "errors": other, "ok": good}
    out["ok"] = ok
    print(json.dumps(out))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

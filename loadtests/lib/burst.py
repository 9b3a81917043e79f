#!/usr/bin/env python3
"""burst.py: N client connections opened at once, one request each, then all closed.

All N connections are opened together (no limit on how many connect at a time), then, once
every one is connected, each sends `GET /` at the same moment (a barrier) and reads its
answer: the proxy has N requests in flight at once, as after a reconnect storm. When every
answer is in, the summary goes to --ready-file (JSON) and the connections stay open until
SIGTERM/SIGINT or --hold seconds (the harness snapshots the proxy then); then all are
closed at once and the process ends.

Needs `ulimit -n` above N, and a listen backlog above N on the proxy (the bench configs
have 4096).
"""
import argparse
import asyncio
import json
import os
import signal
import time


async def one(host, port, timeout, connected, go, n):
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        connected.append(None)
        if len(connected) == n:
            go.set()
        return type(e).__name__
    connected.append(w)
    if len(connected) == n:
        go.set()
    await go.wait()
    try:
        w.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await asyncio.wait_for(r.readexactly(length), timeout)
        return w if status == 200 else status
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
        return type(e).__name__


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--hold", type=float, default=60.0)
    ap.add_argument("--ready-file", required=True)
    args = ap.parse_args()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)

    t0 = time.monotonic()
    connected, go = [], asyncio.Event()
    got = await asyncio.gather(*(one(args.host, args.port, args.timeout, connected, go, args.n)
                                 for _ in range(args.n)))
    ok = [g for g in got if isinstance(g, asyncio.StreamWriter)]
    failures = {}
    for g in got:
        if not isinstance(g, asyncio.StreamWriter):
            failures[str(g)] = failures.get(str(g), 0) + 1
    summary = {"wanted": args.n, "answered": len(ok), "failed": failures,
               "burst_s": round(time.monotonic() - t0, 2)}
    with open(args.ready_file + ".tmp", "w") as f:
        json.dump(summary, f)
    os.replace(args.ready_file + ".tmp", args.ready_file)
    try:
        await asyncio.wait_for(stop.wait(), args.hold)
    except asyncio.TimeoutError:
        pass
    for w in connected:
        if w is not None:
            w.close()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""idle_conns.py: open N keep-alive client connections to a proxy and hold them idle.

Each connection sends one `GET /` and reads the whole response (so the proxy has served it
and holds it as an idle keep-alive connection, the state a real idle client leaves), then
sits silent. When all are open, the summary is written to --ready-file (JSON) and the
connections are held until SIGTERM/SIGINT or --hold seconds; then the number the server has
closed meanwhile is counted and written to --result-file.

Needs `ulimit -n` above N. Opens at most --parallel connections at a time so the listen
backlog never overflows.
"""
import argparse
import asyncio
import json
import os
import signal
import time


async def open_one(host, port, sem, timeout):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
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
            return (r, w) if status == 200 else status
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            return type(e).__name__


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--parallel", type=int, default=256)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--hold", type=float, default=60.0, help="give up holding after this many s")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--result-file", required=True)
    args = ap.parse_args()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)

    t0 = time.monotonic()
    sem = asyncio.Semaphore(args.parallel)
    got = await asyncio.gather(*(open_one(args.host, args.port, sem, args.timeout)
                                 for _ in range(args.n)))
    conns = [g for g in got if isinstance(g, tuple)]
    failures = {}
    for g in got:
        if not isinstance(g, tuple):
            failures[str(g)] = failures.get(str(g), 0) + 1
    summary = {"wanted": args.n, "open": len(conns), "failed": failures,
               "open_s": round(time.monotonic() - t0, 2)}
    with open(args.ready_file + ".tmp", "w") as f:
        json.dump(summary, f)
    # rename: the waiting shell never sees a half-written file
    os.replace(args.ready_file + ".tmp", args.ready_file)

    try:
        await asyncio.wait_for(stop.wait(), args.hold)
    except asyncio.TimeoutError:
        pass
    held = time.monotonic() - t0
    # The loop has been running all along, so a server close has already been fed to each
    # reader as EOF (FIN) or an exception (RST); nothing needs to be read.
    await asyncio.sleep(0.1)
    closed = sum(1 for r, _w in conns if r.at_eof() or r.exception() is not None)
    for _r, w in conns:
        w.close()
    summary.update({"closed_by_server": closed, "held_s": round(held, 1)})
    with open(args.result_file, "w") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""idle_conns.py: open N keep-alive client connections to a proxy and hold them idle.

Each connection sends one `GET /` and reads the whole response (so the proxy has served it
and holds it as an idle keep-alive connection, the state a real idle client leaves), then
sits silent. --proto picks the client: h1 (HTTP/1.1), h2c (HTTP/2 by prior knowledge, no
TLS), h1-tls and h2-tls (TLS with ALPN http/1.1 or h2; the certificate is not verified: the
bench's is self-signed). HTTP/2 is spoken with a minimal client of its own: the preface,
empty SETTINGS (acknowledging the server's), one HEADERS frame on stream 1 and the frames up
to that stream's END_STREAM. When all are open, the summary is written to --ready-file (JSON) and the
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
import ssl
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, GOAWAY = 0, 1, 4, 6, 7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
# HPACK static table entries 8..14 are :status 200 204 206 304 400 404 500
STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def h2_status(block):
    """:status from the first field of a response header block, None if it cannot be told
    without a Huffman decoder (any status then counts as an answer)."""
    if not block:
        return None
    b = block[0]
    if b & 0x80:
        return STATIC_STATUS.get(b & 0x7F)
    if (b & 0xC0 == 0x40 and b & 0x3F in STATIC_STATUS) or (b & 0xF0 in (0, 0x10) and b & 0x0F in STATIC_STATUS):
        n = block[1]
        if not n & 0x80 and n == 3:
            return int(block[2:5])
    return None


async def h2_exchange(r, w, scheme, timeout):
    # :method GET, :scheme, :path /, :authority bench (literal, not indexed)
    block = b"\x82" + (b"\x87" if scheme == "https" else b"\x86") + b"\x84" + b"\x01\x05bench"
    w.write(PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    await w.drain()
    status = None
    while True:
        head = await asyncio.wait_for(r.readexactly(9), timeout)
        length = int.from_bytes(head[:3], "big")
        kind, flags, stream = head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        payload = await asyncio.wait_for(r.readexactly(length), timeout) if length else b""
        if kind == SETTINGS and not flags & ACK:
            w.write(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            w.write(frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            return "GOAWAY"
        elif kind == HEADERS and stream == 1:
            status = h2_status(payload) or 200
        if stream == 1 and kind in (HEADERS, DATA) and flags & END_STREAM:
            await w.drain()
            return status


async def h2_idle(r, w, closed):
    """While held, answer the server's PINGs (weir and Traefik ping idle h2 clients and
    close those that do not answer) and SETTINGS; note a close or GOAWAY."""
    try:
        while True:
            head = await r.readexactly(9)
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            payload = await r.readexactly(length) if length else b""
            if kind == PING and not flags & ACK:
                w.write(frame(PING, ACK, 0, payload))
            elif kind == SETTINGS and not flags & ACK:
                w.write(frame(SETTINGS, ACK, 0))
            elif kind == GOAWAY:
                closed.add(id(r))
                return
    except (OSError, asyncio.IncompleteReadError):
        closed.add(id(r))
    except asyncio.CancelledError:
        pass


async def h1_exchange(r, w, timeout):
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
    return status


def tls_context(proto):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"] if proto == "h2-tls" else ["http/1.1"])
    return ctx


async def open_one(host, port, sem, timeout, proto, ctx):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=ctx, server_hostname="bench" if ctx else None), timeout)
            if ctx:
                alpn = w.get_extra_info("ssl_object").selected_alpn_protocol()
                if alpn != ("h2" if proto == "h2-tls" else "http/1.1") and not (proto == "h1-tls" and alpn is None):
                    w.close()
                    return f"ALPN {alpn}"
            if proto in ("h2c", "h2-tls"):
                status = await h2_exchange(r, w, "https" if ctx else "http", timeout)
            else:
                status = await h1_exchange(r, w, timeout)
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
    ap.add_argument("--proto", choices=["h1", "h2c", "h1-tls", "h2-tls"], default="h1")
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
    ctx = tls_context(args.proto) if args.proto.endswith("-tls") else None
    got = await asyncio.gather(*(open_one(args.host, args.port, sem, args.timeout, args.proto, ctx)
                                 for _ in range(args.n)))
    conns = [g for g in got if isinstance(g, tuple)]
    h2_closed = set()
    keepers = [asyncio.ensure_future(h2_idle(r, w, h2_closed)) for r, w in conns] if args.proto in ("h2c", "h2-tls") else []
    failures = {}
    for g in got:
        if not isinstance(g, tuple):
            failures[str(g)] = failures.get(str(g), 0) + 1
    summary = {"proto": args.proto, "wanted": args.n, "open": len(conns), "failed": failures,
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
    closed = sum(1 for r, _w in conns if id(r) in h2_closed or r.at_eof() or r.exception() is not None)
    for k in keepers:
        k.cancel()
    for _r, w in conns:
        w.close()
    summary.update({"closed_by_server": closed, "held_s": round(held, 1)})
    with open(args.result_file, "w") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    asyncio.run(main())

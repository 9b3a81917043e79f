#!/usr/bin/env python3
"""report.py: the markdown summary of one run.sh run, from its raw folder.

Reads meta.json, route-*.json and results.jsonl (one row per measured step, written by
measure.py) and prints markdown: routing check, steady split per layout (median and range
over the valid repetitions), weir/nginx ratios, the three scenarios, and what was void.
A row is void when its load tool saw any non-2xx answer or socket error (or a weight swap
failed); void rows are left out of medians and counted in the "valid" column.
"""
import argparse
import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pool import cluster_interval  # noqa: E402  (the bootstrap pool.py pools runs with)

NAMES = {"nginx": "nginx (plain reference)", "ingress-nginx": "nginx as ingress-nginx",
         "haproxy": "HAProxy", "traefik": "Traefik", "weir": "weir"}

LAYOUT_TEXT = {
    "P": "P: proxy alone on CPU0, wrk/oha + upstream on CPU1",
    "F1": "F: unpinned, proxy 1 worker",
    "F2": "F: unpinned, proxy 2 workers",
    "limit": "physical limit: wrk on CPU1 → upstream alone on CPU0, no proxy",
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rng(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def f_rps(x):
    return "–" if x is None else f"{x / 1000:.1f}k"


def f_num(x, nd=1):
    return "–" if x is None else f"{x:.{nd}f}"


def f_ms(x):
    return "–" if x is None else f"{x:.3f}"


def f_mb(kb):
    return "–" if kb is None else f"{kb / 1024:.1f}"


def with_range(xs, fmt):
    m = med(xs)
    lo, hi = rng(xs)
    if m is None:
        return "–"
    if len([x for x in xs if x is not None]) < 2:
        return fmt(m)
    return f"{fmt(m)} ({fmt(lo)}–{fmt(hi)})"


def ratio(a, b, nd=2):
    return "–" if a is None or b in (None, 0) else f"{a / b:.{nd}f}"


def p99_wins(weir, nginx):
    """`w of n`: the rounds (keys present in both) where weir's p99 was below nginx's."""
    both = set(weir) & set(nginx)
    return f"{sum(weir[k] < nginx[k] for k in both)} of {len(both)}"


def errors_of(rows):
    return sum((r.get("non2xx") or 0) + (r.get("sock_errors") or 0) for r in rows)


def load(raw):
    meta = json.load(open(os.path.join(raw, "meta.json")))
    rows = [json.loads(line) for line in open(os.path.join(raw, "results.jsonl")) if line.strip()]
    routes = {}
    for p in sorted(glob.glob(os.path.join(raw, "route-*.json"))):
        who = os.path.basename(p)[len("route-"):-len(".json")]
        try:
            routes[who] = json.load(open(p))
        except ValueError:
            routes[who] = None
    return meta, rows, routes


def pick(rows, **kw):
    return [r for r in rows if all(str(r.get(k)) == str(v) for k, v in kw.items())]


def contenders(meta):
    return meta.get("contenders", "nginx weir").split()


def others(meta):
    """Every contender weir is compared with, the plain nginx reference first."""
    return [c for c in contenders(meta) if c != "weir"]


def header(meta, rows):
    out = [f"# weir vs {', '.join(others(meta)) or 'nobody'}: load test, {meta['date']} on `{meta['host']}`", ""]
    if meta.get("quick"):
        out += ["> **QUICK mode** (harness smoke test: short runs, 1 repetition). "
                "These numbers are not a benchmark.", ""]
    dist = sorted({d for r in rows for d in r.get("disturbers", [])})
    if dist:
        out += [f"> **Disturbed:** other work ran during measurements ({', '.join(dist)}). "
                "METHOD: never build or run anything else during a run — treat every figure "
                "below as void.", ""]
    out += [
        f"- machine: {meta['ncpu']} × {meta['cpu']}, kernel {meta['kernel']}, "
        f"load average at start {' '.join(meta['loadavg_start'])}",
        f"- contenders: weir `{meta['weir']}` (rev {meta['weir_rev']}), nginx {meta['nginx']} "
        f"(plain reference and as ingress-nginx), HAProxy {meta.get('haproxy') or '–'}, "
        f"Traefik {meta.get('traefik') or '–'}; measured: {', '.join(contenders(meta))}; "
        f"tools: wrk {meta['wrk']}, oha {meta['oha']}",
        f"- per run: {meta['warmup']} s warm-up, wrk -t1 -c{meta['conns']} -d{meta['duration']}s "
        f"(closed loop), oha -z {meta.get('lat_duration', meta['duration'])}s -c {meta['conns']} "
        f"-q {meta['rate']} --latency-correction (open loop"
        + (f", {meta['lat_slices']} interleaved slices per repetition" if "lat_slices" in meta else "")
        + f"); {meta['reps']} repetition(s), median (min–max)",
        "",
    ]
    return out


def route_section(routes):
    out = ["## Routing check (before any timing)", "",
           "Canary share of the answers. Cookie cases (`canary=always|never`, and `X-Canary: never` with "
           "`canary=always`, where the header must win) for every contender but the plain reference, "
           "whose shared config has no cookie rule.", "",
           "| contender | no header: canary % | `always` | `never` | `Always` (case-sensitive → weight) | "
           "cookie always | cookie never | header beats cookie | ok |",
           "|---|---|---|---|---|---|---|---|---|"]
    for who, r in routes.items():
        if not r:
            out.append(f"| {who} | no result | | | | | | | **no** |")
            continue
        c = lambda k: f"{r[k]['canary_pct']} % of {r[k]['n']}" + (  # noqa: E731
            f", {r[k]['errors']} errors" if r[k]["errors"] else "")
        case = r.get("Always (case-sensitive)")
        out.append(f"| {who} | {c('none')} | {c('always')} | {c('never')} | "
                   f"{c('Always (case-sensitive)') if case else '–'}"
                   f"{'' if not case or case['ok'] else ' ⚠ differs from ingress-nginx'} | "
                   + " | ".join(c(k) if k in r else "–" for k in
                                ("cookie always", "cookie never", "header never beats cookie always"))
                   + f" | {'yes' if r['ok'] else '**no**'} |")
    return out + [""]


def steady_section(rows, meta):
    out = ["## Steady 10 % split", "",
           "CPU µs/req = proxy utime+stime (all threads, all processes) ÷ requests served. "
           "Latency: the direct path (client → upstream) and each proxy are measured in short "
           "open-loop slices, interleaved, order rotated; added latency = proxy percentile − "
           "direct-path percentile of the same round, median over all slices; its 95 % interval "
           "comes from lib/pool.py's bootstrap, resampling whole repetitions (rounds within one "
           "share the machine's state; with one repetition, rounds are resampled, which is "
           "optimistic). `p99 wins` counts the rounds where weir's p99 was below the other's.", ""]
    ratio_lines = []
    layouts = [l for l in meta["layouts"].split() if pick(rows, layout=l)]
    for layout in layouts:
        out += [f"### {LAYOUT_TEXT.get(layout, layout)}", ""]
        if layout == "limit":
            w = pick(rows, layout=layout, kind="steady")
            ok = [r for r in w if not r["void"]]
            out += ["| path | valid | rps | upstream CPU µs/req | errors | busy % | steal % |",
                    "|---|---|---|---|---|---|---|",
                    f"| direct | {len(ok)}/{len(w)} | {with_range([r['rps'] for r in ok], f_rps)} | "
                    f"{f_num(med([r.get('cpu_us_per_req') for r in ok]))} | {errors_of(w)} | "
                    f"{f_num(med([r['busy_pct'] for r in w]))} | {f_num(med([r['steal_pct'] for r in w]), 2)} |",
                    ""]
            continue
        out += ["| contender | valid reps | rps (wrk) | CPU µs/req (wrk) | CPU µs/req @rate | "
                "p50 / p99 / p99.9 ms @rate | added p50 / p99 / p99.9 ms | added p99 95 % interval | "
                "RSS MB | PSS MB | errors | busy % | steal % |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        # a round: one repetition's slice (older runs had one unnamed slice per repetition)
        def rnd(r):
            return (r["rep"], r.get("slice"))

        direct = {rnd(r): r for r in pick(rows, layout=layout, kind="latency", contender="direct")
                  if not r["void"]}
        d_ok = list(direct.values())
        d_all = pick(rows, layout=layout, kind="latency", contender="direct")
        d_got = med([r.get("rps") for r in d_ok])
        d_knee = "" if d_got is None or d_got >= 0.95 * meta["rate"] else f" ⚠ only {f_rps(d_got)}/s served"
        out.append(f"| direct (no proxy) | {len(d_ok)}/{len(d_all)} "
                   f"| | | | {f_ms(med([r['p50_ms'] for r in d_ok]))} / "
                   f"{f_ms(med([r['p99_ms'] for r in d_ok]))} / {f_ms(med([r['p999_ms'] for r in d_ok]))}{d_knee} "
                   f"| | | | | {errors_of(d_all)} | | |")
        figures = {}
        for who in contenders(meta):
            w = pick(rows, layout=layout, kind="steady", contender=who)
            o = pick(rows, layout=layout, kind="latency", contender=who)
            if not w and not o:
                continue
            w_ok = [r for r in w if not r["void"]]
            o_ok = [r for r in o if not r["void"]]
            added = {k: [r[k] - direct[rnd(r)][k] for r in o_ok
                         if rnd(r) in direct and r.get(k) is not None and direct[rnd(r)].get(k) is not None]
                     for k in ("p50_ms", "p99_ms", "p999_ms")}
            # added p99 per round, clustered by repetition for the bootstrap
            by_rep = {}
            for r in o_ok:
                if rnd(r) in direct and r.get("p99_ms") is not None and direct[rnd(r)].get("p99_ms") is not None:
                    by_rep.setdefault(r["rep"], []).append(r["p99_ms"] - direct[rnd(r)]["p99_ms"])
            clusters = list(by_rep.values())
            if len(clusters) < 2:
                clusters = [[x] for c in clusters for x in c]
            ci = cluster_interval(clusters, statistics.median)
            fig = {"rps": med([r["rps"] for r in w_ok]),
                   "cpu": med([r.get("cpu_us_per_req") for r in w_ok]),
                   "cpu_rate": med([r.get("cpu_us_per_req") for r in o_ok]),
                   "added_p99": med(added["p99_ms"]),
                   "p99_by_round": {rnd(r): r["p99_ms"] for r in o_ok if r.get("p99_ms") is not None}}
            figures[who] = fig
            # a repetition is valid when both its wrk and its oha run were free of errors
            reps = {r["rep"] for r in w + o}
            bad = {r["rep"] for r in w + o if r["void"]}
            valid = f"{len(reps - bad)}/{len(reps)}"
            # open-loop latency means something only below the knee: flag a rate not reached
            got = med([r.get("rps") for r in o_ok])
            knee = "" if got is None or got >= 0.95 * meta["rate"] else f" ⚠ only {f_rps(got)}/s served"
            out.append(
                f"| {who} | {valid} | {with_range([r['rps'] for r in w_ok], f_rps)} | "
                f"{with_range([r.get('cpu_us_per_req') for r in w_ok], f_num)} | "
                f"{f_num(fig['cpu_rate'])} | "
                f"{f_ms(med([r['p50_ms'] for r in o_ok]))} / {f_ms(med([r['p99_ms'] for r in o_ok]))} / "
                f"{f_ms(med([r['p999_ms'] for r in o_ok]))}{knee} | "
                f"{f_ms(med(added['p50_ms']))} / {f_ms(med(added['p99_ms']))} / {f_ms(med(added['p999_ms']))} | "
                f"{'–' if ci is None else f'{f_ms(ci[0])} … {f_ms(ci[1])}'} | "
                f"{f_mb(med([r['rss_kb'] for r in w + o]))} | {f_mb(med([r['pss_kb'] for r in w + o]))} | "
                f"{errors_of(w + o)} | {f_num(med([r['busy_pct'] for r in w]))} | "
                f"{f_num(med([r['steal_pct'] for r in w + o]), 2)} |")
        out.append("")
        if "weir" in figures:
            a = figures["weir"]
            for who in others(meta):
                if who not in figures:
                    continue
                b = figures[who]
                ratio_lines.append(
                    f"| {layout} | {who} | {ratio(a['cpu'], b['cpu'])} | {ratio(a['cpu_rate'], b['cpu_rate'])} | "
                    f"{ratio(a['rps'], b['rps'])} | {ratio(a['added_p99'], b['added_p99'])} | "
                    f"{p99_wins(a['p99_by_round'], b['p99_by_round'])} |")
            best = [figures[w]["cpu"] for w in ("nginx", "ingress-nginx", "haproxy")
                    if w in figures and figures[w]["cpu"] is not None]
            if best:
                ratio_lines.append(f"| {layout} | best of nginx, ingress-nginx, HAProxy | "
                                   f"{ratio(a['cpu'], min(best))} | | | | |")
    if ratio_lines:
        out += ["### Ratios weir / each contender (medians; < 1 is better for weir except rps)", "",
                "| layout | weir / | CPU µs/req (wrk) | CPU µs/req @rate | rps | added p99 | p99 wins |",
                "|---|---|---|---|---|---|---|"] + ratio_lines + [""]
    return out


def scenario_section(rows, meta):
    out = []
    sw = pick(rows, kind="swap")
    if sw:
        out += ["## Scenario (a): canary weight changed under load", "",
                f"{meta['swap_duration']} s of wrk -c{meta['conns']}, weight alternating 10 ↔ 50. "
                f"weir: `PUT /config` on the admin API every {float(meta['swap_interval']) * 1000:g} ms; "
                f"nginx: conf rewritten + reload (SIGHUP) every {meta['nginx_swap_interval']} s — "
                "a reload every 10 ms is not something nginx can do (each forks new workers and drains "
                "the old), and ingress-nginx avoids reloads for weight changes. Any non-2xx or socket "
                "error voids the row.", "",
                "| contender | swaps applied | swaps failed | last table generation | late ticks | gap p50 / max ms | rps | "
                "non-2xx | socket errors | CPU µs/req | RSS MB | verdict |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sw:
            s = r.get("swap", {})
            out.append(f"| {r['contender']} | {s.get('swaps_ok', '–')} | {s.get('swaps_failed', '–')} | "
                       f"{s.get('last_generation') or '–'} | "
                       f"{s.get('late_ticks', '–')} | {s.get('gap_p50_ms', '–')} / {s.get('gap_max_ms', '–')} | "
                       f"{f_rps(r.get('rps'))} | {r.get('non2xx')} | {r.get('sock_errors')} | "
                       f"{f_num(r.get('cpu_us_per_req'))} | {f_mb(r['rss_kb'])} | "
                       f"{'**VOID**' if r['void'] else 'ok'} |")
        out.append("")
    idle = pick(rows, kind="idle")
    if idle:
        protos = []
        for r in idle:
            if r.get("proto", "h1") not in protos:
                protos.append(r.get("proto", "h1"))
        out += ["## Scenario (b): idle keep-alive client connections", "",
                f"{meta.get('idle_conns', '')} connections per contender and client protocol, each sends one "
                "request, reads the answer, then stays open and silent (h1: HTTP/1.1; h2c: HTTP/2 by "
                "prior knowledge; -tls: TLS 1.3 with ALPN, ECDSA P-256 certificate). Memory per "
                "connection = (RSS after − RSS before) ÷ connections held open; each protocol on a "
                "freshly started proxy. nginx and HAProxy get `worker_connections` / `maxconn` raised "
                "above the count for this scenario (8192 in the template cannot hold 10,000).", "",
                "RSS KiB per idle connection:", "",
                "| contender | " + " | ".join(protos) + " |",
                "|---|" + "---|" * len(protos)]

        def per(r, k="rss_kb"):
            n = (r.get("idle") or {}).get("open") or 0
            return None if not n else (r[k] - r[k.replace("_kb", "_before_kb")]) / n

        for who in contenders(meta):
            cells = []
            for proto in protos:
                rs = [r for r in idle if r["contender"] == who and r.get("proto", "h1") == proto]
                v = per(rs[0]) if rs else None
                cells.append("–" if v is None else f"{v:.2f}")
            if any(c != "–" for c in cells):
                out.append(f"| {who} | " + " | ".join(cells) + " |")
        out += ["", "| contender | protocol | held open | failed to open | RSS before → after MB | RSS KiB/conn | "
                "PSS KiB/conn | open s | closed by server while held |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in idle:
            i = r.get("idle") or {}
            n = i.get("open") or 0
            end = r.get("idle_end") or {}
            v, pv = per(r), per(r, "pss_kb")
            out.append(f"| {r['contender']} | {r.get('proto', 'h1')} | {n} of {i.get('wanted')} | {i.get('failed') or 0} | "
                       f"{f_mb(r['rss_before_kb'])} → {f_mb(r['rss_kb'])} | {'–' if v is None else f'{v:.2f}'} | "
                       f"{'–' if pv is None else f'{pv:.2f}'} | {i.get('open_s', '–')} | "
                       f"{end.get('closed_by_server', '–')} |")
        out.append("")
    big = pick(rows, kind="big")
    if big:
        out += ["## Scenario (c): 1 MiB responses", "",
                f"wrk -c{meta['conns']} for {meta['duration']} s, layout P, both upstreams serve the same "
                "1 MiB file. The plain reference nginx conf keeps `proxy_buffering on`, so nginx spools "
                "bodies beyond its memory buffers to its temp path; nginx as ingress-nginx "
                "(`proxy_buffering off`, ingress-nginx's default), HAProxy, Traefik and weir stream.", "",
                "| path | rps | throughput MiB/s | CPU µs/req | RSS end MB | RSS peak (VmHWM) MB | errors | verdict |",
                "|---|---|---|---|---|---|---|---|"]
        for r in big:
            bps = r.get("bytes_per_s")
            out.append(f"| {r['contender']} | {f_num(r.get('rps'))} | "
                       f"{'–' if bps is None else f'{bps / 2**20:.0f}'} | {f_num(r.get('cpu_us_per_req'))} | "
                       f"{f_mb(r['rss_kb']) if r['contender'] != 'direct' else '(upstream)'} | "
                       f"{f_mb(r['hwm_kb']) if r['contender'] != 'direct' else ''} | "
                       f"{errors_of([r])} | {'**VOID**' if r['void'] else 'ok'} |")
        out.append("")
    stall = pick(rows, kind="stall")
    if stall:
        out += ["## Scenario (d): CPU stalls", "",
                f"oha at {meta['rate']} req/s, {meta['conns']} connections, layout P, while a `SCHED_FIFO` "
                f"spinner pinned to CPU0 (`lib/stall.c`) takes the proxy's CPU for "
                f"{meta['stall_us'] / 1000:g} ms at the start of every {meta['stall_period_us'] / 1000:g} ms"
                + (f", walking {meta['stall_mib']} MiB of memory meanwhile (cold caches after each stall)"
                   if meta.get("stall_mib") else "")
                + f". {meta['stall_rounds']} slice(s) of {meta['lat_duration']} s per contender, interleaved, "
                "order rotated; medians over slices. The same stalls for every contender: what differs is how "
                "many requests each one's stall reaches and how fast it drains the backlog after it.", "",
                "| contender | valid slices | mean ms | p50 / p95 / p99 / p99.9 ms | CPU µs/req | errors |",
                "|---|---|---|---|---|---|"]
        by_who = {}
        for who in contenders(meta):
            rs = pick(rows, kind="stall", contender=who)
            if not rs:
                continue
            ok = [r for r in rs if not r["void"]]
            by_who[who] = {r["rep"]: r["p99_ms"] for r in ok if r.get("p99_ms") is not None}
            out.append(f"| {who} | {len(ok)}/{len(rs)} | {f_ms(med([r.get('mean_ms') for r in ok]))} | "
                       + " / ".join(f_ms(med([r.get(k) for r in ok])) for k in ("p50_ms", "p95_ms", "p99_ms", "p999_ms"))
                       + f" | {f_num(med([r.get('cpu_us_per_req') for r in ok]))} | {errors_of(rs)} |")
        out.append("")
        for who in others(meta):
            if "weir" in by_who and who in by_who:
                out += [f"weir / {who} p99: {ratio(med(list(by_who['weir'].values())), med(list(by_who[who].values())))}; "
                        f"weir's p99 lower in {p99_wins(by_who['weir'], by_who[who])} rounds.", ""]
    return out


def burst_section(rows, meta):
    burst = pick(rows, kind="burst")
    if not burst:
        return []
    out = ["## Scenario (e): a burst of connections", "",
           f"{meta.get('burst_conns', '')} client connections opened at once, one request each in flight "
           "together, then all closed (`lib/burst.py`), layout P, 1 worker. Before: after the warm-up; "
           "peak: every answer in, connections still open; after: once open files and RSS have been "
           "still for 2 s (at most 20 s). What stays open after is listed by kind. With `BURST_TRIM=1`, "
           "RSS once more after glibc's `malloc_trim(0)` run in the process by gdb: the part of what "
           "stays that is free heap the allocator kept (not for Traefik: Go has no malloc).", "",
           "| contender | answered | RSS MB before → peak → after | RSS MB after malloc_trim(0) | "
           "open files before → peak → after | threads before → after | after: open files by kind | settled after s |",
           "|---|---|---|---|---|---|---|---|"]
    for r in burst:
        b = r.get("burst") or {}
        pk = r.get("peak") or {}
        kinds = r.get("fd_kinds") or {}
        top = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
        out.append(f"| {r['contender']} | {b.get('answered', '–')} of {b.get('wanted', '–')}"
                   f"{'' if not b.get('failed') else ' (failed: ' + json.dumps(b['failed']) + ')'} | "
                   f"{f_mb(r['rss_before_kb'])} → {f_mb(pk.get('rss_kb'))} → {f_mb(r['rss_kb'])} | "
                   f"{f_mb(r.get('rss_after_trim_kb'))} | "
                   f"{r.get('fds_before', '–')} → {pk.get('fds', '–')} → {r.get('fds', '–')} | "
                   f"{r.get('threads_before', '–')} → {r.get('threads', '–')} | {top} | {r.get('settle_s', '–')} |")
    sm = [r for r in burst if r.get("smaps")]
    if sm:
        kinds = ["heap (brk)", "anon", "anon: thread stacks", "file-backed"]
        out += ["", "RSS MB by mapping kind (`/proc/PID/smaps`), before → peak → after; `anon` holds "
                "mmap'd allocator chunks and glibc's per-thread arenas:", "",
                "| contender | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
        for r in sm:
            b, p_, a = r.get("smaps_before") or {}, (r.get("peak") or {}).get("smaps") or {}, r["smaps"]
            out.append(f"| {r['contender']} | " + " | ".join(
                f"{f_mb(b.get(k, 0))} → {f_mb(p_.get(k, 0))} → {f_mb(a.get(k, 0))}" for k in kinds) + " |")
    return out + [""]


def void_section(rows):
    void = [r for r in rows if r.get("void")]
    if not void:
        return ["All measured runs were free of errors.", ""]
    out = ["## Void runs", "", "| layout | contender | kind | rep | non-2xx | socket errors | detail |",
           "|---|---|---|---|---|---|---|"]
    for r in void:
        detail = r.get("error_kinds") or ("tool failed" if r.get("tool_failed") else "")
        out.append(f"| {r.get('layout')} | {r.get('contender')} | {r.get('kind')} | {r.get('rep')} | "
                   f"{r.get('non2xx')} | {r.get('sock_errors')} | {detail} |")
    return out + [""]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True, help="the run's raw folder")
    args = ap.parse_args()
    meta, rows, routes = load(args.raw)
    out = header(meta, rows) + route_section(routes)
    if any(r.get("kind") in ("steady", "latency") for r in rows):
        out += steady_section(rows, meta)
    out += scenario_section(rows, meta) + burst_section(rows, meta) + void_section(rows)
    out.append(f"Raw outputs: `{os.path.relpath(args.raw, os.path.dirname(os.path.dirname(args.raw)))}` "
               "(wrk/oha outputs, /proc snapshots, one JSON row per step in results.jsonl).")
    print("\n".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""measure.py: snapshots of a proxy's CPU and memory, and one JSON line per measured step.

Subcommands (all read /proc only; no third-party packages):
  snap PID...           print a JSON snapshot: CPU ticks of each PID and all its descendants
                        (nginx master + workers), RSS/PSS/HWM summed, open files and threads
                        summed, what the open files are (fd_kinds), and /proc/stat counters.
  settle PID... [--quiet S] [--max S]
                        poll the tree until its open files and RSS have not changed for S
                        seconds (bounded by --max), then print a snapshot (with settle_s).
  record --before B --after A --tool wrk|oha|none --out FILE [--field k=v ...]
                        combine two snapshots and the load tool's output into one JSON line
                        (printed on stdout): requests, errors, rps, latency percentiles,
                        proxy CPU µs per request, memory at the end, busy % and steal %.

CPU time: utime+stime of /proc/PID/stat covers every thread of a process, alive or exited;
cutime+cstime add its children that have exited and been reaped.
Memory: VmRSS and VmHWM from /proc/PID/status, Pss from /proc/PID/smaps_rollup, in kB,
summed over the process tree (so nginx = master + workers).
"""
import argparse
import json
import os
import re
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")


def children_of(pid):
    """Direct children of pid, from /proc/PID/task/*/children (needs CONFIG_PROC_CHILDREN),
    falling back to a scan of /proc/*/stat."""
    kids = set()
    task_dir = f"/proc/{pid}/task"
    try:
        for tid in os.listdir(task_dir):
            with open(f"{task_dir}/{tid}/children") as f:
                kids.update(int(x) for x in f.read().split())
        return kids
    except OSError:
        pass
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st and st["ppid"] == pid:
                kids.add(int(name))
    return kids


def read_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rindex(")") + 2:].split()
    return {"ppid": int(rest[1]), "utime": int(rest[11]), "stime": int(rest[12]),
            "cutime": int(rest[13]), "cstime": int(rest[14])}


def read_kv(path, keys):
    out = {k: 0 for k in keys}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in out:
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def proc_tree(pids):
    seen, todo = [], list(pids)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(children_of(p))
    return seen


def cpu_counters():
    """Per-CPU and total jiffies from /proc/stat: (busy, steal, total)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *vals = line.split()
            v = [int(x) for x in vals]
            # user nice system idle iowait irq softirq steal guest guest_nice;
            # guest time is already counted in user, so only the first 8 add up to the total.
            total = sum(v[:8])
            idle = v[3] + v[4]
            steal = v[7] if len(v) > 7 else 0
            out[name] = {"busy": total - idle - steal, "steal": steal, "total": total}
    return out


# Processes whose presence means "someone is building": METHOD says a run then is void.
DISTURBERS = {"rustc", "cargo", "cc1", "cc1plus", "ld", "ld.lld", "ld.gold", "clang",
              "go", "javac", "node", "tsc"}


def disturbers():
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm in DISTURBERS:
                found.add(comm)
    return sorted(found)


TCP_STATES = {"01": "established", "06": "time_wait", "08": "close_wait", "0A": "listen"}
UPSTREAM_PORTS = {9001, 9002}


def tcp_table():
    """socket inode -> (local port, remote port, state) from /proc/net/tcp{,6}."""
    out = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    c = line.split()
                    out[c[9]] = (int(c[1].rsplit(":", 1)[1], 16), int(c[2].rsplit(":", 1)[1], 16),
                                 TCP_STATES.get(c[3], c[3]))
        except OSError:
            pass
    return out


def fd_kinds(tree):
    """What the tree's open files are: TCP sockets to the upstreams (ports 9001/9002) and
    from clients by state, listeners, other sockets, pipes, anon inodes (epoll, eventfd,
    timerfd), files."""
    tcp, kinds = None, {}
    for p in tree:
        try:
            names = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in names:
            try:
                target = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                if tcp is None:
                    tcp = tcp_table()
                t = tcp.get(target[8:-1])
                if t is None:
                    kind = "socket (other)"
                elif t[2] == "listen":
                    kind = "tcp listen"
                elif t[1] in UPSTREAM_PORTS:
                    kind = f"tcp to upstream, {t[2]}"
                else:
                    kind = f"tcp from client, {t[2]}"
            elif target.startswith("pipe:"):
                kind = "pipe"
            elif target.startswith("anon_inode:"):
                kind = target
            else:
                kind = "file"
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def smaps_summary(tree):
    """RSS (kB) of the tree's mappings by kind, from /proc/PID/smaps: the brk heap, anonymous
    mappings of a glibc arena's size (a multiple of 64 MiB reserved: per-thread malloc
    arenas), thread stacks (8 MiB + guard), other anonymous mappings (large mallocs,
    allocator chunks), and file-backed ones (binary, libraries)."""
    out = {}
    for p in tree:
        try:
            f = open(f"/proc/{p}/smaps")
        except OSError:
            continue
        cur, size = None, 0
        with f:
            for line in f:
                first = line.split(None, 6)
                if "-" in first[0] and len(first) >= 5 and ":" in first[3]:
                    lo, hi = (int(x, 16) for x in first[0].split("-"))
                    size = hi - lo
                    name = first[5].strip() if len(first) > 5 else ""
                    if name == "[heap]":
                        cur = "heap (brk)"
                    elif name.startswith("[stack"):
                        cur = "main stack"
                    elif name.startswith("["):
                        cur = "kernel ([vdso] ...)"
                    elif name:
                        cur = "file-backed"
                    elif size in (8 * 2**20, 8 * 2**20 + 4096, 2 * 2**20):
                        cur = "anon: thread stacks"
                    else:
                        cur = "anon"
                elif first[0] == "Rss:" and cur:
                    out[cur] = out.get(cur, 0) + int(first[1])
        # glibc arenas: their mappings are split by mprotect into rw- and --- parts, so
        # counted separately below from /proc/PID/maps
        try:
            arenas = 0
            with open(f"/proc/{p}/maps") as m:
                for line in m:
                    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                    # an arena heap is aligned to 64 MiB and starts a 64 MiB reservation
                    if lo % (64 * 2**20) == 0 and len(line.split()) == 5 and hi - lo <= 64 * 2**20:
                        arenas += 1
            out["arena-aligned anon mappings"] = out.get("arena-aligned anon mappings", 0) + arenas
        except OSError:
            pass
    return out


def snap(pids):
    tree = proc_tree(pids)
    ticks, rss, pss, hwm, fds, threads = 0, 0, 0, 0, 0, 0
    for p in tree:
        try:
            fds += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
        st = read_stat(p)
        if st:
            # c*time: children already reaped (nginx workers replaced by a reload), whose
            # CPU time would otherwise vanish from the tree.
            ticks += st["utime"] + st["stime"] + st["cutime"] + st["cstime"]
        s = read_kv(f"/proc/{p}/status", ["VmRSS", "VmHWM", "Threads"])
        threads += s["Threads"]
        rss += s["VmRSS"]
        hwm += s["VmHWM"]
        pss += read_kv(f"/proc/{p}/smaps_rollup", ["Pss"])["Pss"]
    return {"pids": tree, "ticks": ticks, "rss_kb": rss, "pss_kb": pss, "hwm_kb": hwm,
            "fds": fds, "threads": threads, "fd_kinds": fd_kinds(tree),
            "cpu": cpu_counters(), "disturbers": disturbers()}


def parse_wrk(text):
    r = {"requests": 0, "non2xx": 0, "sock_errors": 0, "rps": None, "bytes_per_s": None}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", text)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", text)
    if m:
        unit = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}.get(m.group(2), 1)
        r["bytes_per_s"] = float(m.group(1)) * unit
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["sock_errors"] = sum(int(x) for x in m.groups())
    if r["rps"] is None:
        r["tool_failed"] = True
    return r


def parse_oha(text):
    try:
        d = json.loads(text)
    except ValueError:
        return {"requests": 0, "non2xx": 0, "sock_errors": 0, "tool_failed": True}
    codes = d.get("statusCodeDistribution", {})
    ok = sum(n for c, n in codes.items() if c.startswith("2"))
    errs = {k: v for k, v in d.get("errorDistribution", {}).items()
            if "aborted due to deadline" not in k}
    pct = d.get("latencyPercentiles", {})
    ms = lambda k: None if pct.get(k) is None else pct[k] * 1000.0  # noqa: E731
    return {
        "requests": sum(codes.values()),
        "non2xx": sum(codes.values()) - ok,
        "sock_errors": sum(errs.values()),
        "error_kinds": errs,
        "rps": d.get("summary", {}).get("requestsPerSec"),
        "p50_ms": ms("p50"), "p95_ms": ms("p95"), "p99_ms": ms("p99"), "p999_ms": ms("p99.9"),
        "mean_ms": None if d.get("summary", {}).get("average") is None else d["summary"]["average"] * 1000.0,
    }


def record(args):
    with open(args.before) as f:
        b = json.load(f)
    with open(args.after) as f:
        a = json.load(f)
    text = open(args.out).read() if args.out and os.path.exists(args.out) else ""
    row = {"wrk": parse_wrk, "oha": parse_oha}.get(args.tool, lambda _t: {})(text)
    for kv in args.field:
        k, _, v = kv.partition("=")
        try:
            row[k] = json.loads(v)
        except ValueError:
            row[k] = v
    row["tool"] = args.tool
    cpu_s = (a["ticks"] - b["ticks"]) / CLK_TCK
    row["proxy_cpu_s"] = cpu_s
    if row.get("requests"):
        row["cpu_us_per_req"] = cpu_s * 1e6 / row["requests"]
    for k in ("rss_kb", "pss_kb", "hwm_kb"):
        row[k] = a[k]
        row[k.replace("_kb", "_before_kb")] = b[k]
    for k in ("fds", "threads", "fd_kinds", "smaps"):
        row[k] = a.get(k)
        row[k + "_before"] = b.get(k)
    row["disturbers"] = sorted(set(a.get("disturbers", [])) | set(b.get("disturbers", [])))
    row["proxy_procs"] = len(a["pids"])
    cpus = {}
    for name, av in a["cpu"].items():
        bv = b["cpu"].get(name)
        if not bv:
            continue
        tot = av["total"] - bv["total"]
        if tot > 0:
            cpus[name] = {"busy_pct": 100.0 * (av["busy"] - bv["busy"]) / tot,
                          "steal_pct": 100.0 * (av["steal"] - bv["steal"]) / tot}
    row["busy_pct"] = cpus.get("cpu", {}).get("busy_pct")
    row["steal_pct"] = cpus.get("cpu", {}).get("steal_pct")
    row["per_cpu"] = {k: round(v["busy_pct"], 1) for k, v in cpus.items() if k != "cpu"}
    row["void"] = bool(row.get("non2xx") or row.get("sock_errors") or row.get("tool_failed")
                       or row.get("extra_errors"))
    print(json.dumps(row, sort_keys=True))


def settle(pids, quiet, most):
    import time
    t0 = time.monotonic()
    last, since = None, t0
    while True:
        s = snap(pids)
        now = time.monotonic()
        key = (s["fds"], s["rss_kb"])
        if key != last:
            last, since = key, now
        if now - since >= quiet or now - t0 >= most:
            s["settle_s"] = round(now - t0, 1)
            return s
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snap")
    s.add_argument("pids", nargs="*", type=int)
    s.add_argument("--smaps", action="store_true", help="add smaps: RSS by mapping kind")
    t = sub.add_parser("settle")
    t.add_argument("pids", nargs="*", type=int)
    t.add_argument("--quiet", type=float, default=1.0)
    t.add_argument("--max", type=float, default=15.0)
    t.add_argument("--smaps", action="store_true", help="add smaps: RSS by mapping kind")
    r = sub.add_parser("record")
    r.add_argument("--before", required=True)
    r.add_argument("--after", required=True)
    r.add_argument("--tool", choices=["wrk", "oha", "none"], required=True)
    r.add_argument("--out", help="the load tool's output file")
    r.add_argument("--field", action="append", default=[], help="k=v added to the row")
    args = ap.parse_args()
    if args.cmd == "snap":
        out = snap(args.pids)
        if args.smaps:
            out["smaps"] = smaps_summary(out["pids"])
        json.dump(out, sys.stdout)
        print()
    elif args.cmd == "settle":
        out = settle(args.pids, args.quiet, args.max)
        if args.smaps:
            out["smaps"] = smaps_summary(out["pids"])
        json.dump(out, sys.stdout)
        print()
    else:
        record(args)


if __name__ == "__main__":
    main()

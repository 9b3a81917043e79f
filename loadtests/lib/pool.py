#!/usr/bin/env python3
"""pool.py: weir's added latency against nginx's, pooled over several run.sh runs.

One run measures latency in 15 interleaved rounds (direct path, nginx, weir), but rounds
within a run are not independent: whatever state a shared VM is in lasts minutes. So one
run's "added p99" ratio is about one sample, and runs of the same binary spread from 0.4 to
2.0. This pools the rounds of many runs and gives each figure a 95 % interval from a
bootstrap that resamples whole runs (a cluster bootstrap), so the interval reflects the
spread between runs, not the optimistic spread between rounds.

    python3 loadtests/lib/pool.py [--layout P] [--rate 20000] loadtests/results/raw/2026112*
    python3 loadtests/lib/pool.py loadtests/results/latency-rounds-2026-11-27.jsonl

Inputs are raw folders (which git ignores) or JSONL files of rounds that `--save` wrote
(one round per line: the run, its percentiles for direct, nginx and weir), which are small
enough to keep in the repository.

Per percentile (p50 … p99.9 from oha's JSON) it prints the median of the paired differences
weir − nginx (same round, ms) and in how many rounds weir was lower; for p99 also the ratio
of the median added p99 (proxy − direct of the same round), the figure run.sh reports per run,
and, for every contender measured in all pooled rounds (ingress-nginx, HAProxy, Traefik when
the runs had them), its added p99 and weir's ratio to it, each with its interval.
report.py uses cluster_interval() for the per-run interval of each contender's added p99.
"""
import argparse
import collections
import glob
import json
import os
import random
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import parse_oha  # noqa: E402  (run.sh's own rule for a void slice)

QUANTILES = ("p50", "p90", "p95", "p99", "p99.9")
SLICE = re.compile(r"(?P<layout>[A-Za-z0-9]+)-r(?P<rep>\d+)-s(?P<slice>\d+)-(?P<who>[a-z][a-z0-9-]*)-oha\.out$")


def cluster_interval(clusters, stat, draws=2000, seed=1, level=0.95):
    """The `level` interval of stat(items) from a bootstrap that resamples whole clusters
    (lists of items) with replacement: the spread between clusters (runs, repetitions), not
    the optimistic spread between items that share a cluster's state. None when there are
    fewer than 2 clusters or stat fails on a resample."""
    clusters = [c for c in clusters if c]
    if len(clusters) < 2:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(draws):
        items = [x for c in (rng.choice(clusters) for _ in clusters) for x in c]
        try:
            values.append(stat(items))
        except (ValueError, ZeroDivisionError, statistics.StatisticsError):
            return None
    values.sort()
    tail = (1 - level) / 2
    return values[int(tail * draws)], values[int((1 - tail) * draws) - 1]


def rounds_of(raw, layout, rate):
    """The complete rounds (all three slices valid) of one raw folder."""
    meta_path = os.path.join(raw, "meta.json")
    if os.path.exists(meta_path) and rate and json.load(open(meta_path)).get("rate") not in (None, rate):
        return []
    by_round = collections.defaultdict(dict)
    for path in glob.glob(os.path.join(raw, f"{layout}-r*-s*-*-oha.out")):
        m = SLICE.search(os.path.basename(path))
        if not m or m["layout"] != layout:
            continue
        text = open(path).read()
        parsed = parse_oha(text)
        if parsed.get("tool_failed") or parsed["non2xx"] or parsed["sock_errors"]:
            continue  # a void slice, as run.sh counts it
        out = json.loads(text)
        by_round[(m["rep"], m["slice"])][m["who"]] = {q: out["latencyPercentiles"][q] * 1e3 for q in QUANTILES}
    return [dict(r, run=os.path.basename(os.path.normpath(raw)), layout=layout, rep=int(k[0]), slice=int(k[1]))
            for k, r in sorted(by_round.items()) if {"direct", "nginx", "weir"} <= set(r)]


META_KEYS = {"run", "layout", "rep", "slice", "direct"}


def contenders_in(runs):
    """The proxies measured in every pooled round, weir and nginx first."""
    common = None
    for run in runs:
        for r in run:
            names = set(r) - META_KEYS
            common = names if common is None else common & names
    rest = sorted((common or set()) - {"weir", "nginx"})
    return ["nginx", "weir"] + rest


def saved_runs(path, layout):
    """The rounds in a JSONL file that --save wrote, grouped by run."""
    runs = collections.defaultdict(list)
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            if r.get("layout", layout) == layout:
                runs[r["run"]].append(r)
    return [runs[k] for k in sorted(runs)]


def figures(runs):
    rounds = [r for run in runs for r in run]
    fig = {}
    for q in QUANTILES:
        diffs = [r["weir"][q] - r["nginx"][q] for r in rounds]
        fig[q] = statistics.median(diffs)
        fig[q + " lower"] = sum(d < 0 for d in diffs)
    added = {who: statistics.median(r[who]["p99"] - r["direct"]["p99"] for r in rounds) for who in contenders_in(runs)}
    for who, v in added.items():
        fig["added p99 " + who] = v
        if who != "weir":
            fig["ratio " + who] = added["weir"] / v if v > 0 else float("nan")
    fig["ratio"] = fig["ratio nginx"]
    fig["rounds"] = len(rounds)
    return fig


def intervals(runs, draws, rng):
    """95 % intervals of every figure, from `draws` resamples of whole runs."""
    samples = [figures([rng.choice(runs) for _ in runs]) for _ in range(draws)]

    def interval(key):
        values = sorted(f[key] for f in samples)
        return values[int(0.025 * draws)], values[int(0.975 * draws) - 1]
    return interval


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw", nargs="+", help="raw folders written by run.sh (loadtests/results/raw/<stamp>)")
    ap.add_argument("--layout", default="P")
    ap.add_argument("--rate", type=int, default=20000, help="only runs at this open-loop rate (0: any)")
    ap.add_argument("--draws", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save", metavar="FILE", help="also write the pooled rounds to FILE (JSONL)")
    args = ap.parse_args()

    runs = []
    for raw in sorted(args.raw):
        if raw.endswith(".jsonl"):
            runs += saved_runs(raw, args.layout)
        else:
            runs.append(rounds_of(raw, args.layout, args.rate))
    runs = [r for r in runs if r]
    if args.save:
        with open(args.save, "w") as f:
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for run in runs for r in run)
    if len(runs) < 2:
        raise SystemExit(f"pool.py: need complete latency rounds of layout {args.layout} from at least 2 runs, found {len(runs)}")
    fig = figures(runs)
    interval = intervals(runs, args.draws, random.Random(args.seed))
    print(f"layout {args.layout}: {len(runs)} runs, {fig['rounds']} rounds; "
          f"95 % intervals from {args.draws} resamples of whole runs\n")
    print("| figure | weir − nginx, median over rounds (ms) | 95 % interval | rounds weir lower |")
    print("|---|---|---|---|")
    for q in QUANTILES:
        lo, hi = interval(q)
        print(f"| {q} | {fig[q]:+.3f} | {lo:+.3f} … {hi:+.3f} | {fig[q + ' lower']} of {fig['rounds']} |")
    lo, hi = interval("ratio")
    verdict = ("weir adds less" if hi < 1 else "weir adds more" if lo > 1 else "not resolved: the interval spans 1")
    print(f"\nadded p99 (median over rounds of proxy − direct): nginx {fig['added p99 nginx']:.3f} ms, "
          f"weir {fig['added p99 weir']:.3f} ms; weir / nginx {fig['ratio']:.2f} (95 % interval {lo:.2f} … {hi:.2f}): {verdict}")
    print("\n| contender | added p99 ms | 95 % interval | weir / contender | 95 % interval |")
    print("|---|---|---|---|---|")
    for who in contenders_in(runs):
        alo, ahi = interval("added p99 " + who)
        row = f"| {who} | {fig['added p99 ' + who]:.3f} | {alo:.3f} … {ahi:.3f} |"
        if who == "weir":
            row += " | |"
        else:
            rlo, rhi = interval("ratio " + who)
            row += f" {fig['ratio ' + who]:.2f} | {rlo:.2f} … {rhi:.2f} |"
        print(row)


if __name__ == "__main__":
    main()

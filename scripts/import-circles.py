#!/usr/bin/env python3
"""Import graph of a crate's src/ by file: an edge a -> b when a has `use crate::b...`,
`crate::b::` in a path, or `super::b` (resolved). Prints the strongly connected components
with more than one file (import circles), and exits 1 if there is one.

    python3 scripts/import-circles.py proxy/src      # scripts/test.sh runs it on every crate
    python3 scripts/import-circles.py proxy/src -v   # also the edges"""
import os, re, sys
root = sys.argv[1]
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)[:-3]
            mod = rel.replace(os.sep, '/')
            if mod.endswith('/mod'):
                mod = mod[:-4]
            if mod in ('lib', 'main'):
                mod = mod  # the crate roots keep their names
            files[mod] = p
mods = set(files)
def resolve(parts):
    # longest prefix that is a module file
    for n in range(len(parts), 0, -1):
        m = '/'.join(parts[:n])
        if m in mods:
            return m
    return None
edges = {m: set() for m in mods}
for m, p in files.items():
    src = open(p).read()
    src = re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', src, flags=re.S)  # inline unit tests
    parent = m.rsplit('/', 1)[0] if '/' in m else ''
    for path in re.findall(r'\bcrate::([A-Za-z_][\w:]*(?:::\{[^}]*\})?)', src):
        parts = [x for x in re.split(r'::', path.split('::{')[0]) if x]
        t = resolve(parts)
        if t is None and '::{' in path:
            inner = path.split('::{', 1)[1].rstrip('}')
            base = [x for x in path.split('::{')[0].split('::') if x]
            for item in inner.split(','):
                item = item.strip().split('::')[0]
                t2 = resolve(base + [item])
                if t2 and t2 != m:
                    edges[m].add(t2)
        if t is None and parts:
            t = 'lib'  # an item of the crate root
        if t and t != m:
            edges[m].add(t)
    # child modules named by a relative path (`encode::X` inside metrics.rs)
    here = '' if m in ('lib', 'main') else m + '/'
    for child in mods:
        if child.startswith(here) and '/' not in child[len(here):] and child != m:
            name = child[len(here):]
            if re.search(r'(?<![\w:])(?:self::)?' + re.escape(name) + r'::', src):
                edges[m].add(child)
    for inner in re.findall(r'\bsuper::\{([^}]*)\}', src):
        # `use super::{a, B}`: each item, a sibling module or an item of the parent
        base = parent.split('/') if parent else []
        for item in inner.split(','):
            item = item.strip().split('::')[0]
            if not item or item == 'self':
                continue
            t2 = resolve(base + [item]) or (parent or 'lib')
            if t2 != m:
                edges[m].add(t2)
    for path in re.findall(r'\bsuper::([A-Za-z_][\w:]*(?:::\{[^}]*\})?)', src):
        base = parent.split('/') if parent else []
        head = path.split('::{')[0]
        parts = base + [x for x in head.split('::') if x]
        t = resolve(parts)
        if '::{' in path:
            inner = path.split('::{', 1)[1].rstrip('}')
            for item in inner.split(','):
                item = item.strip().split('::')[0]
                t2 = resolve(base + [x for x in head.split('::') if x] + [item])
                if t2 and t2 != m:
                    edges[m].add(t2)
        if t is None:
            t = parent or None
        if t and t != m:
            edges[m].add(t)
# Tarjan
index = {}; low = {}; stack = []; on = set(); sccs = []; i = [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        sccs.append(c)
for v in sorted(mods):
    if v not in index:
        strong(v)
circles = [sorted(c) for c in sccs if len(c) > 1]
if '-v' in sys.argv:
    for m in sorted(edges):
        print(f"{m} -> {', '.join(sorted(edges[m]))}")
for c in circles:
    print(f"circle of {len(c)} files: {' '.join(c)}")
if not circles:
    print("no import circle")
sys.exit(1 if circles else 0)

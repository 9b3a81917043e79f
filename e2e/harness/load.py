"""Traffic through weir with every response counted: steady keep-alive load in threads
(each response recorded with its time, status and version), and one-off samples."""

import http.client
import threading
import time
from collections import Counter

WEIR_HOST, WEIR_PORT = "127.0.0.1", 8080


class Response:
    __slots__ = ("t", "status", "version", "error")

    def __init__(self, t, status, version, error=None):
        self.t, self.status, self.version, self.error = t, status, version, error

    @property
    def ok(self):
        return self.status == 200


def one(conn, host, headers, method="GET", path="/", key="X-Version"):
    conn.request(method, path, body=b"" if method == "POST" else None, headers={"Host": host, **headers})
    r = conn.getresponse()
    r.read()
    return r.status, r.getheader(key)


class Load:
    """`workers` connections, each sending one request at a time, `pause` s apart, until
    stopped or `max_seconds` passed (the bound on every run)."""

    def __init__(self, host, headers=None, workers=3, pause=0.01, max_seconds=600):
        self.host, self.headers = host, dict(headers or {})
        self.workers, self.pause, self.max_seconds = workers, pause, max_seconds
        self.records = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        for _ in range(self.workers):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        conn = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection(WEIR_HOST, WEIR_PORT, timeout=10)
            t = time.monotonic()
            try:
                status, version = one(conn, self.host, self.headers)
                rec = Response(t, status, version)
            except (OSError, http.client.HTTPException) as e:
                rec = Response(t, None, None, f"{type(e).__name__}: {e}")
                conn.close()
                conn = None
            with self._lock:
                self.records.append(rec)
            self._stop.wait(self.pause)
        if conn is not None:
            conn.close()

    def snapshot(self, since=0.0, until=float("inf")):
        with self._lock:
            return [r for r in self.records if since <= r.t < until]

    def failures(self, since=0.0, until=float("inf")):
        return [r for r in self.snapshot(since, until) if not r.ok]


def sample(host, n, headers=None, workers=4, method="GET", path="/", key="X-Version"):
    """Sends n requests (over `workers` connections); a Counter of versions (or of another
    response header, `key`: X-Pod names the pod), with failures counted under
    'failed:<status or error>'."""
    out = Counter()
    lock = threading.Lock()
    per = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]

    def run(k):
        conn = http.client.HTTPConnection(WEIR_HOST, WEIR_PORT, timeout=10)
        for _ in range(k):
            try:
                status, value = one(conn, host, dict(headers or {}), method, path, key)
                seen = value if status == 200 else f"failed:{status}"
            except (OSError, http.client.HTTPException) as e:
                seen = f"failed:{type(e).__name__}"
                conn.close()
                conn = http.client.HTTPConnection(WEIR_HOST, WEIR_PORT, timeout=10)
            with lock:
                out[seen] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def failed_summary(records):
    return dict(Counter(r.error or f"status {r.status}" for r in records if not r.ok))

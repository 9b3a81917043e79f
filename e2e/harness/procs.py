"""Processes the suite starts: each started with its log file, stopped by its PID (TERM,
then KILL after a bound), also when a scenario fails; readiness waits bounded in time."""

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request


class SuiteError(Exception):
    """A step of the suite failed; the message says which and why."""


class Proc:
    def __init__(self, name, argv, log_dir, env=None, cwd=None):
        self.name, self.argv = name, argv
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.env, self.cwd = env, cwd
        self.popen = None

    def start(self):
        log = open(self.log_path, "ab")
        try:
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, start_new_session=True)
        except OSError as e:
            raise SuiteError(f"{self.name}: cannot start {self.argv[0]}: {e}") from e
        finally:
            log.close()
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self):
        if not self.alive():
            raise SuiteError(f"{self.name} exited ({self.popen.returncode if self.popen else 'never started'}); "
                             f"last lines of {self.log_path}:\n{self.tail()}")

    def tail(self, n=25):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return "(no log)"

    def signal(self, sig):
        if self.alive():
            os.kill(self.popen.pid, sig)

    def stop(self, timeout=10.0):
        """TERM by PID, KILL after `timeout`; then the same for any process it started that
        outlived it (the Argo controller's plugin processes); returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            children = descendants(self.popen.pid)
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
            for pid in children:
                stop_pid(pid, timeout)
        return self.popen.returncode

    def kill(self):
        """SIGKILL by PID, as a crash would."""
        if self.alive():
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def descendants(pid):
    """The PIDs of the processes `pid` started, and theirs (from /proc), deepest last."""
    out, todo = [], [pid]
    while todo and len(out) < 1000:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def stop_pid(pid, timeout):
    """TERM, then KILL after `timeout`, a process that is not our child (polled by PID)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Supervisor:
    """Every process of the run; stop_all stops them newest first."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.procs = []

    def start(self, name, argv, env=None, cwd=None):
        p = Proc(name, argv, self.log_dir, env, cwd).start()
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                print(f"stopping {p.name} (pid {p.pid}) failed: {e}")


def wait_for(what, check, timeout, interval=0.05, proc=None):
    """Polls `check()` until it returns a truthy value (returned), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if proc is not None:
            proc.check_alive()
        try:
            v = check()
            if v:
                return v
        except Exception as e:  # the thing is not up yet; keep the reason for the error
            last = e
        if time.monotonic() >= deadline:
            raise SuiteError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})" if last else ""))
        time.sleep(interval)


def http_ok(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except urllib.error.URLError:
        return False

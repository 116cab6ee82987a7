"""Process plumbing for scripts/bench: pinned children, readiness waits, /proc CPU and RSS readings."""

import os
import signal
import socket
import subprocess
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Procs:
    """Children started by one row; `stop_all` ends them (and only them), newest first."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.children = []

    def start(self, name, core, argv, env=None, cwd=None):
        """Starts `argv` pinned to `core` with `taskset`, stdout+stderr to LOGDIR/NAME.log."""
        log = open(os.path.join(self.logdir, name + ".log"), "wb")
        full_env = dict(os.environ, **(env or {}))
        child = subprocess.Popen(["taskset", "-c", str(core)] + argv, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=full_env, cwd=cwd, start_new_session=True)
        child.bench_name = name
        self.children.append(child)
        return child

    def stop(self, child, sig=signal.SIGTERM, timeout=20):
        """Signals one child and waits for it; SIGKILL after `timeout` seconds. Returns its exit code."""
        if child.poll() is None:
            child.send_signal(sig)
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if child in self.children:
            self.children.remove(child)
        return child.returncode

    def stop_all(self):
        for child in reversed(list(self.children)):
            self.stop(child)


def wait_until(what, check, timeout=60, every=0.1):
    """Polls `check()` until it returns a truthy value; raises naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as err:  # not up yet: connection refused, bad status...
            last = err
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def free_port():
    """A free loopback port (bound, then released): other people's fixed ports are not ours."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def http_ok(url):
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def alive(child, what):
    """Raises if `child` has exited (so a wait does not run into its timeout for nothing)."""
    if child.poll() is not None:
        raise RuntimeError(f"{what} exited with {child.returncode}; see its log under target/bench/logs")
    return True


def children_of(pid):
    """Direct children of `pid` (nginx's workers), from /proc/PID/task/*/children."""
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            kids += [int(k) for k in f.read().split()]
    return kids


def cpu_seconds(pids):
    """utime + stime of every thread of `pids`, in seconds, from /proc/PID/stat."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            # The command name (field 2) may hold spaces: split after its closing parenthesis.
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / CLK_TCK


def peak_rss_kib(pids):
    """Sum of VmHWM (peak resident set) of `pids`, in KiB, from /proc/PID/status."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total

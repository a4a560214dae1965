#!/usr/bin/env python3
"""cryo benchmark of TCP connections (`make bench`; never part of `make test`).

A server (build/bench/tcpconns) holds N established TCP connections on
loopback from clients outside its tree (this script's sockets). It is
dumped with --tcp-established twice per run: once with --leave-running
(-R) and once killing it, then restored (-d); after each, every
connection must answer an echo on the same socket. The same is done with
no connection at all (the base); the cost per connection is
(time with N - base) / N, for the dump's wall time, its frozen time
(stats-dump) and the restore's wall time, and the CPU time of cryo for
each (its own, user + system). Each figure is the best of the
runs (the machine is shared: the fastest run is the one least disturbed).
Goal: under 50 us per connection. Reports and does not gate. Options:
--conns N, --repeat R, -v; CRYO=path overrides build/cryo.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRYO = os.environ.get("CRYO", os.path.join(ROOT, "build", "cryo"))
SERVER = os.path.join(ROOT, "build", "bench", "tcpconns")
GOAL_US = 50.0
TIMEOUT = 120.0


class StepFailed(Exception):
    pass


def cpu_of_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_timed(cmd):
    """run(cmd); its wall time and the CPU time cryo itself used (user +
    system, less disturbed than wall time on a shared machine; a
    restore's new processes are not counted)."""
    c0, t0 = cpu_of_children(), time.monotonic()
    run(cmd)
    return time.monotonic() - t0, cpu_of_children() - c0


def run(cmd):
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise StepFailed(f"timed out: {' '.join(cmd)}")
    if r.returncode != 0:
        raise StepFailed(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def wait_file(path, proc=None, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc is not None and proc.poll() is not None:
            raise StepFailed(f"server exited with {proc.returncode} before {path}")
        if time.monotonic() > deadline:
            raise StepFailed(f"no {path} after {timeout:.0f} s")
        time.sleep(0.005)


def frozen_us(imgdir):
    j = json.loads(run([CRYO, "show", "--json", imgdir]).stdout)
    return j["images"]["stats-dump"][0]["frozen_time_us"]


def echo_all(clients, tag):
    """Every connection answers on the same socket, byte for byte."""
    msg = tag.encode()
    for c in clients:
        c.sendall(msg)
    for i, c in enumerate(clients):
        got = b""
        while len(got) < len(msg):
            part = c.recv(len(msg) - len(got))
            if not part:
                raise StepFailed(f"connection {i} closed by the server ({tag})")
            got += part
        if got != msg:
            raise StepFailed(f"connection {i}: echo {got!r}, sent {msg!r}")


class Run:
    """One server with n connections, dumped -R, then dumped (killed) and restored."""

    def __init__(self, n, base):
        self.n = n
        self.work = tempfile.mkdtemp(prefix="tcpconns-", dir=base)
        self.clients = []
        self.pids = set()

    def start(self):
        out = open(os.path.join(self.work, "out.log"), "w")
        p = subprocess.Popen([SERVER, str(self.n)], cwd=self.work, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=out, start_new_session=True)
        out.close()
        self.proc = p
        self.pids.add(p.pid)
        port_file = os.path.join(self.work, "port")
        wait_file(port_file, p)
        with open(port_file) as f:
            port = int(f.read())
        for _ in range(self.n):
            c = socket.create_connection(("127.0.0.1", port))
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.clients.append(c)
        wait_file(os.path.join(self.work, "ready"), p)
        echo_all(self.clients, "before")

    def dump(self, name, *extra):
        img = os.path.join(self.work, name)
        wall, cpu = run_timed([CRYO, "dump", "-t", str(self.proc.pid), "-D", img,
                               "--tcp-established", *extra])
        return wall, frozen_us(img) / 1e6, cpu

    def measure(self):
        self.start()
        res = {}
        res["dump -R"], res["frozen -R"], res["dump -R cpu"] = self.dump("ck-r", "-R")
        echo_all(self.clients, "after -R")
        res["dump"], res["frozen"], res["dump cpu"] = self.dump("ck")
        if self.proc.wait(timeout=10) != -signal.SIGKILL:
            raise StepFailed(f"server ended with {self.proc.returncode}, expected SIGKILL")
        pidfile = os.path.join(self.work, "pid")
        res["restore"], res["restore cpu"] = run_timed(
            [CRYO, "restore", "-D", os.path.join(self.work, "ck"), "--tcp-established", "-d",
             "--pidfile", pidfile])
        with open(pidfile) as f:
            self.pids.add(int(f.read()))
        echo_all(self.clients, "after restore")
        return res

    def cleanup(self):
        for c in self.clients:
            c.close()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in self.pids:
            deadline = time.monotonic() + 10
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.002)
        shutil.rmtree(self.work, ignore_errors=True)


def best_run(n, repeat, base, verbose):
    runs = []
    for _ in range(repeat):
        r = Run(n, base)
        try:
            runs.append(r.measure())
        finally:
            r.cleanup()
        if verbose:
            print("    " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in runs[-1].items()))
    return {k: min(x[k] for x in runs) for k in runs[0]}


def main():
    ap = argparse.ArgumentParser(description="cryo TCP connections benchmark")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    for path in (CRYO, SERVER):
        if not os.access(path, os.X_OK):
            print(f"bench: {path} missing (run `make bench`)", file=sys.stderr)
            return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.conns + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    base = tempfile.mkdtemp(prefix="cryo-bench-tcp-", dir="/dev/shm")
    try:
        print(f"cryo bench, TCP: a server with {args.conns} established connections on "
              f"loopback, best of {args.repeat} runs")
        zero = best_run(0, args.repeat, base, args.verbose)
        full = best_run(args.conns, args.repeat, base, args.verbose)
    except StepFailed as e:
        print(f"bench: FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{'':12} {'base ms':>9} {f'{args.conns} conns ms':>14} {'per conn us':>12}  goal")
    for k in full:
        per = (full[k] - zero[k]) / args.conns * 1e6
        ok = "ok" if per < GOAL_US else "MISSED"
        print(f"{k:12} {zero[k] * 1e3:9.1f} {full[k] * 1e3:14.1f} {per:12.1f}  "
              f"< {GOAL_US:g} us {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

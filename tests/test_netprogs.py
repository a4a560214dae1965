"""Real network programs, run by tests/run.py (`make test`) as the tests
node-http/... and redis-tcp/...: a server with a client outside its tree that
keeps one TCP connection open across the checkpoint and goes on on it.

  node-http   `node tests/programs/keepalive_http.js PORT`; the client
              (tests/netprog_client.py http) sends a request on a keep-alive
              connection before the checkpoint and the next one after it:
              the answer must say "request 2" of that connection (the
              server's per-connection state and its socket kept).
  redis-tcp   `redis-server` on a TCP port (no persistence: the data set
              lives in its memory only); the client (netprog_client.py
              redis, RESP over a socket) sets keys and names its connection
              before, and after the checkpoint finds the name, the keys, and
              INCR goes on from its value.

Each runs in a network namespace of the test's own (lo only, the pid in its
name, removed on every path), cryo too; modes restore (dump kills, restore
-d) and leave-running (dump -R). After: the client reports ok, no reset
was sent in the namespace, no cryo table is left, the server still answers.

    python3 tests/run.py node-http/     (or redis-tcp/) only these
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import lib
from lib import Fail

NODE_SERVER = os.path.join(lib.ROOT, "tests", "programs", "keepalive_http.js")
CLIENT = os.path.join(lib.ROOT, "tests", "netprog_client.py")
PORT = 7300


def server_argv(kind, ctx):
    if kind == "node-http":
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            raise Fail("node is not installed (make deps: nodejs)")
        return [node, NODE_SERVER, str(PORT)]
    redis = shutil.which("redis-server")
    if not redis:
        raise Fail("redis-server is not installed (make deps: redis-server)")
    return [redis, "--port", str(PORT), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", ctx.dir,
            "--protected-mode", "no", "--loglevel", "warning"]


def listening(inns):
    r = subprocess.run(list(inns) + ["ss", "-Htln", "sport", "= :%d" % PORT],
                       capture_output=True, text=True)
    return bool(r.stdout.strip())


def checkpoint(ctx, inns, pid, mode):
    """dump (-R, or killing it, then restore -d), cryo run in the namespace."""
    args = ["dump", "-t", pid, "-D", ctx.path("images"), "--tcp-established", "-v4", "-o",
            ctx.path("dump.log")] + (["-R"] if mode == "leave-running" else [])
    r = ctx.cryo(inns[0], inns[1:] + [lib.CRYO] + args, "dump", limit=60)
    ctx.expect_ok(r, "cryo dump")
    ctx.notes.append("dump: %.0f ms" % r.ms)
    if mode == "leave-running":
        return
    st = lib.wait_pid(pid, 10, "waiting for the dumped server to end")
    if not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL):
        raise Fail("the dumped server ended with %s" % lib.describe_status(st))
    lib.tracked.add(pid)
    r = ctx.cryo(inns[0], inns[1:] + [lib.CRYO, "restore", "-D", ctx.path("images"), "-d",
                                      "--tcp-established", "-v4", "-o",
                                      ctx.path("restore.log")], "restore", limit=60)
    ctx.expect_ok(r, "cryo restore -d")


def new_client_works(ctx, inns, kind):
    """A second client, on a new connection, after the checkpoint."""
    ready, go = ctx.path("client-ready"), ctx.path("client-go")
    for p in (ready, go):
        if os.path.exists(p):
            os.unlink(p)
    if kind == "redis-tcp":
        r = subprocess.run(list(inns) + ["redis-cli", "-p", str(PORT), "GET", "greeting"],
                           capture_output=True, text=True, timeout=20)
        return r.stdout.strip() == "hello from cryo"
    r = subprocess.run(list(inns) + [sys.executable, "-c",
                                     "import urllib.request as u; print(u.urlopen("
                                     "'http://127.0.0.1:%d/', timeout=10).read().decode())"
                                     % PORT], capture_output=True, text=True, timeout=20)
    return "request 1 on port" in r.stdout and "3 in all" in r.stdout


def netprog_test(kind, mode):
    def fn(ctx):
        ns = "cryo-%s-%d-%s" % (kind, os.getpid(), mode)
        inns = [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", ns]
        subprocess.run(["ip", "netns", "add", ns], check=True)
        pid = client = None
        try:
            subprocess.run(inns + ["ip", "link", "set", "lo", "up"], check=True)
            pid = lib.spawn(inns + server_argv(kind, ctx), cwd=ctx.dir,
                            stdout=ctx.path("out.log"), stderr="stdout", session="setsid")
            lib.wait_until(lambda: listening(inns) or lib.poll_pid(pid) is not None, 30,
                           "waiting for the %s server to listen" % kind)
            if lib.poll_pid(pid) is not None:
                raise Fail("the server ended: %s" % lib.tail(ctx.path("out.log"), 3))
            proto = "http" if kind == "node-http" else "redis"
            client = lib.spawn(inns + [sys.executable, CLIENT, proto, str(PORT)],
                               cwd=ctx.dir, stdout=ctx.path("client.log"), stderr="stdout")
            lib.wait_until(lambda: os.path.exists(ctx.path("client-ready")) or
                           lib.poll_pid(client) is not None, 20, "the client's first exchange")
            if not os.path.exists(ctx.path("client-ready")):
                raise Fail("the client: %s" % lib.tail(ctx.path("client.log"), 3))
            time.sleep(0.2)
            before = lib.netns_tcp_counters(inns)
            checkpoint(ctx, inns, pid, mode)
            with open(ctx.path("client-go"), "w"):
                pass
            st = lib.wait_pid(client, 30, "waiting for the client")
            client = None
            if lib.exit_code(st) != 0:
                raise Fail("the client, after the %s: %s" % (
                    mode, lib.read_text(ctx.path("client.log")).strip()[-300:]))
            if lib.netns_tcp_counters(inns)["OutRsts"] != before["OutRsts"]:
                raise Fail("resets were sent in the namespace")
            left = lib.cryo_tables(inns) + lib.cryo_tables(pid=pid)
            if left:
                raise Fail("nftables tables left: %s" % left)
            if not lib.alive(pid) or not new_client_works(ctx, inns, kind):
                raise Fail("the server does not answer a new client after the " + mode)
        finally:
            for p in (client, pid):
                if p and lib.poll_pid(p) is None:
                    os.kill(p, signal.SIGKILL)
                    lib.wait_pid(p, 10)
            subprocess.run(["ip", "netns", "del", ns])
    return fn


def tests():
    return [("%s/%s" % (kind, mode), netprog_test(kind, mode), 90)
            for kind in ("node-http", "redis-tcp") for mode in ("restore", "leave-running")]

#!/usr/bin/env python3
"""cryo's test suite (`make test`): runs every workload of
tests/workloads/list.txt in its modes (restore, leave-running, restore-san),
the seed's counter demo on pseudo-terminals, a python3 process started by
hand, bad input (each must fail with one "cryo: " line and leave nothing
behind), the help/show/check commands, and the command line's options
(tests/test_cli.py: the cli/... tests), and tmux running vim
(tests/test_tmux.py: the tmux-vim/... tests).

    python3 tests/run.py [-v] [PATTERN]   only tests whose name contains
                                          PATTERN (or matches it, a glob);
                                          -v: also notes of passing tests

Prints `PASS name` or `FAIL name (reason)` per test, then `N passed, N failed`;
exits 1 if any failed. Must run as root. Never leaves a process behind: it is
a child subreaper and kills everything below it after each test.
"""
import fnmatch
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import test_cli  # noqa: E402
import test_tmux  # noqa: E402
import test_external  # noqa: E402
import test_files  # noqa: E402
import test_jvm  # noqa: E402
import test_netprogs  # noqa: E402
import test_options  # noqa: E402
import test_progress  # noqa: E402
import test_run  # noqa: E402
import test_incr  # noqa: E402
import test_snapshot  # noqa: E402
from lib import Fail  # noqa: E402

ROOT = lib.ROOT
# (the environment may point elsewhere, to try the harness on other workloads)
LIST = os.environ.get("CRYO_WL_LIST", os.path.join(ROOT, "tests", "workloads", "list.txt"))
WL_BIN = os.environ.get("CRYO_WL_BIN", os.path.join(ROOT, "build", "tests"))
BINARIES = (("cryo", lib.CRYO), ("san", lib.SAN_CRYO))

# A workload written in Python, following the workload protocol: it writes
# 0, 1, 2... to count.txt (kept open), creates `ready`, and once `go` exists
# checks that the file holds exactly 0..i-1 (nothing lost, nothing repeated).
PYWL = r"""
import os, sys, time
f = open("count.txt", "w")
i = 0
while True:
    f.write("%d\n" % i)
    f.flush()
    i += 1
    if i == 5:
        open("ready", "w").close()
    if i > 5 and os.path.exists("go"):
        break
    time.sleep(0.02)
f.close()
vals = [int(x) for x in open("count.txt").read().split()]
if vals == list(range(i)):
    print("wl: check count ok (%d values)" % i)
    sys.exit(0)
print("wl: FAIL count: count.txt holds %d values, expected 0..%d" % (len(vals), i - 1))
sys.exit(1)
"""


class Ctx:
    """One test: its work dir and the commands it ran (for the report)."""

    def __init__(self, name, workdir):
        self.name = name
        self.dir = workdir
        self.runs = []
        self.notes = []
        self.uncovered = []  # cases the workload could not test on this machine
        self.cleanups = []  # called once the test's processes are gone

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def cryo(self, binary, args, tag, limit=20, **kw):
        """Run cryo to its end; stderr goes to TAG.err, stdout to TAG.out."""
        return lib.run([binary] + [str(a) for a in args], limit, cwd=self.dir,
                       out=self.path(tag + ".out"), err=self.path(tag + ".err"),
                       log=self.runs, **kw)

    def expect_ok(self, r, what):
        if lib.exit_code(r.status) != 0:
            err = lib.read_text(r.err).strip().splitlines()
            raise Fail("%s: %s%s" % (what, lib.describe_status(r.status),
                                     (": " + err[-1]) if err else ""))


# ---------------------------------------------------------------- workloads

def read_list():
    """[(name, {key: value})] from list.txt."""
    out = []
    with open(LIST) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            words = line.split()
            opts = {}
            for w in words[1:]:
                k, _, v = w.partition("=")
                opts[k] = v
            out.append((words[0], opts))
    return out


def start_workload(ctx, argv, shell_job=False, session="setsid", stderr="stdout",
                   stdout="out.log", mode=None):
    """Start a workload by the protocol: cwd = work dir, stdin /dev/null (or
    the pty), stdout+stderr out.log, no other fds, a session of its own;
    WL_MODE in its environment names the mode (wl_restored())."""
    env = dict(os.environ, WL_MODE=mode) if mode else None
    if shell_job:
        master, slave = lib.open_pty()
        try:
            pid = lib.spawn(argv, cwd=ctx.dir, stdout=ctx.path(stdout),
                            stderr="stdout", ctty=slave, env=env)
        finally:
            os.close(slave)
        ctx.notes.append("workload on pseudo-terminal %s" % os.ttyname(master.fd))
    else:
        err = stderr if stderr == "stdout" else ctx.path(stderr)
        pid = lib.spawn(argv, cwd=ctx.dir, stdout=ctx.path(stdout), stderr=err,
                        session=session, env=env)
    ctx.runs.append(lib.Run(argv, pid))
    ctx.notes.append("workload pid %d" % pid)
    return pid


def wait_ready(ctx, pid, limit=1e6):
    def ready():
        st = lib.poll_pid(pid)
        if st is not None:
            set_status(ctx, pid, lib.wait_pid(pid, 1))
            raise Fail("workload ended before it was ready: %s" % lib.describe_status(st))
        return os.path.exists(ctx.path("ready"))
    lib.wait_until(ready, limit, "waiting for the workload's ready file")
    pause(0.2)


def pause(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        lib.check_deadline("pausing")
        lib.idle()


def touch(path):
    with open(path, "w"):
        pass


def check_running(pid, what):
    st = lib.proc_state(pid)
    if st is None or st in ("Z", "X"):
        raise Fail("%s: pid %d is not running (%s)" % (
            what, pid, "gone" if st is None else "zombie: " + lib.zombie_status(pid)))
    if st in ("T", "t"):
        raise Fail("%s: pid %d is left stopped (state %s)" % (what, pid, st))


def go_and_finish(ctx, pid, who):
    """Creates `go`; the workload pid (our child) must end with status 0 and
    no FAIL in out.log."""
    touch(ctx.path("go"))
    st = lib.wait_pid(pid, 1e6, "waiting for %s to finish" % who)
    if lib.exit_code(st) != 0:
        raise Fail("%s ended with %s" % (who, lib.describe_status(st)))
    check_outlog(ctx)


def check_outlog(ctx, name="out.log"):
    text = lib.read_text(ctx.path(name))
    fails = [l for l in text.splitlines() if "wl: FAIL" in l]
    if fails:
        raise Fail("%s: %s" % (name, fails[0].strip()))
    if not re.search(r"^wl: check ", text, re.M):
        raise Fail("%s has no 'wl: check' line" % name)
    ctx.uncovered += re.findall(r"^wl: not covered ([^\s:]+)", text, re.M)


def set_status(ctx, pid, st):
    for r in ctx.runs:
        if r.pid == pid and r.status is None:
            r.status = st


def outlog_fail(ctx):
    """' (out.log: first FAIL line)' or ''."""
    for line in lib.read_text(ctx.path("out.log")).splitlines():
        if "wl: FAIL" in line:
            return " (out.log: %s)" % line.strip()
    return ""


def wait_killed(pid, what, ctx=None):
    st = lib.wait_pid(pid, 10, "waiting for the dumped process to end")
    if ctx:
        set_status(ctx, pid, st)
    if not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL):
        raise Fail("%s: the dumped process ended with %s, expected SIGKILL" % (
            what, lib.describe_status(st)))
    if lib.proc_state(pid) is not None:
        raise Fail("%s: pid %d still exists after the dump" % (what, pid))


def restore_and_watch(ctx, binary, images, pid, orig_cmd, shell_job=False, tag="restore",
                      extra=(), wrap=()):
    """cryo restore (no -d) in the background, run under WRAP (ip netns exec
    NS); wait until pid runs again with the same cmdline; return the cryo pid."""
    args = list(wrap) + [binary, "restore", "-D", images, "-v4", "-o",
                         ctx.path(tag + ".log")] + list(extra)
    if shell_job:
        args.insert(len(wrap) + 4, "--shell-job")
        master, slave = lib.open_pty()
        try:
            rpid = lib.spawn(args, cwd=ctx.dir, stdout=ctx.path(tag + ".out"),
                             stderr=ctx.path(tag + ".err"), ctty=slave)
        finally:
            os.close(slave)
    else:
        rpid = lib.spawn(args, cwd=ctx.dir, stdout=ctx.path(tag + ".out"),
                         stderr=ctx.path(tag + ".err"))
    run = lib.Run(args, rpid, ctx.path(tag + ".err"))
    ctx.runs.append(run)
    lib.tracked.add(pid)

    def back():
        st = lib.poll_pid(rpid)
        if st is not None:
            run.status = lib.wait_pid(rpid, 1)
            err = lib.read_text(run.err).strip().splitlines()
            raise Fail("cryo restore ended (%s) before pid %d was seen running%s" % (
                lib.describe_status(st), pid, (": " + err[-1]) if err else ""))
        return lib.alive(pid) and lib.cmdline(pid) == orig_cmd
    try:
        lib.wait_until(back, 1e6, "waiting for the restored pid %d with the same cmdline" % pid)
    except Fail as e:
        now = lib.cmdline(pid)
        if lib.alive(pid) and now != orig_cmd:
            raise Fail("restored pid %d has cmdline %r, the original had %r (%s)" % (
                pid, now, orig_cmd, e))
        raise
    return run


WL_VETH = ("vcryo0", "vcryo1")  # the veth pair of a workload's own namespace (netns=1)


def wl_netns_add(ns):
    """A network namespace of the test's own: lo up, a veth pair up (both
    ends in it); the `ip netns exec` prefix that runs a program in it."""
    inns = [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (["link", "set", "lo", "up"],
                    ["link", "add", WL_VETH[0], "type", "veth", "peer", "name", WL_VETH[1]],
                    ["link", "set", WL_VETH[0], "up"], ["link", "set", WL_VETH[1], "up"]):
            subprocess.run(inns + ["ip"] + cmd, check=True, capture_output=True)
    except Exception:
        subprocess.run(["ip", "netns", "del", ns])
        raise
    return inns


def workload_test(name, opts, mode):
    """A workload in MODE; with netns=1 it and cryo run in a network namespace
    of the test's own (wl_netns_add), removed on every path."""
    if opts.get("netns") != "1":
        return workload_test_in(name, opts, mode, ())

    def fn(ctx):
        ns = "cryo-wl-%d-%s-%s" % (os.getpid(), name.replace(":", "-"), mode)
        inns = wl_netns_add(ns)
        try:
            workload_test_in(name, opts, mode, inns)(ctx)
        finally:
            subprocess.run(["ip", "netns", "del", ns])
    return fn


def workload_test_in(name, opts, mode, wrap):
    shell_job = opts.get("shell_job") == "1"
    binary = lib.SAN_CRYO if mode == "restore-san" else lib.CRYO
    jargs = ["--shell-job"] if shell_job else []
    # dump_args=A,B: extra arguments for cryo dump (e.g. --file-locks)
    jargs += [a for a in opts.get("dump_args", "").split(",") if a]
    # restore_args=A,B: extra arguments for cryo restore (e.g. --no-uffd)
    rargs = [a for a in opts.get("restore_args", "").split(",") if a]
    # hold_frozen_ms=N: the dump keeps the tree frozen N ms more (a test
    # hook), for a workload whose own clock must see the freeze
    denv = None
    if "hold_frozen_ms" in opts:
        denv = dict(os.environ, CRYO_TEST_HOLD_AT="dump-collected",
                    CRYO_TEST_HOLD_MS=opts["hold_frozen_ms"])
    name = name.partition(":")[0]  # NAME:VARIANT runs NAME with other options

    def fn(ctx):
        # script=FILE: a python workload in tests/workloads, run by this python
        if "script" in opts:
            argv = [sys.executable, os.path.join(ROOT, "tests", "workloads", opts["script"])]
        else:
            argv = [os.path.join(WL_BIN, name)]
        if not os.access(argv[-1], os.R_OK if "script" in opts else os.X_OK):
            raise Fail("%s is not built (make workloads)" % argv[-1])
        # args=A,B: the workload's own arguments
        argv += [a for a in opts.get("args", "").split(",") if a]
        if not os.access(binary, os.X_OK):
            raise Fail("%s is not built" % binary)
        images = ctx.path("images")
        pid = start_workload(ctx, list(wrap) + argv, shell_job=shell_job, mode=mode)
        wait_ready(ctx, pid)
        orig_cmd = lib.cmdline(pid)
        run0, run1 = (wrap[0], list(wrap[1:]) + [binary]) if wrap else (binary, [])
        if mode == "leave-running":
            r = ctx.cryo(run0, run1 + ["dump", "-t", pid, "-D", images, "-R"] + jargs +
                         ["-v4", "-o", ctx.path("dump.log")], "dump", env=denv)
            ctx.expect_ok(r, "cryo dump -R")
            check_running(pid, "after dump -R")
            touch(ctx.path("go"))
            st = lib.wait_pid(pid, 1e6, "waiting for the workload to finish")
            set_status(ctx, pid, st)
            if lib.exit_code(st) != 0:
                raise Fail("the workload left running ended with %s%s" % (
                    lib.describe_status(st), outlog_fail(ctx)))
        else:
            tree = lib.tree_of(pid)
            r = ctx.cryo(run0, run1 + ["dump", "-t", pid, "-D", images] + jargs +
                         ["-v4", "-o", ctx.path("dump.log")], "dump")
            ctx.expect_ok(r, "cryo dump")
            wait_killed(pid, "after dump", ctx)
            # the rest of the tree comes to the harness (the subreaper) to be reaped
            lib.wait_until(lambda: all(lib.proc_state(p) is None for p in tree), 10,
                           "waiting for the dumped tree to end")
            run = restore_and_watch(ctx, binary, images, pid, orig_cmd, shell_job,
                                    extra=rargs, wrap=wrap)
            touch(ctx.path("go"))
            run.status = lib.wait_pid(run.pid, 1e6, "waiting for cryo restore to end")
            if lib.exit_code(run.status) != 0:
                err = lib.read_text(run.err).strip().splitlines()
                raise Fail("cryo restore: %s%s%s" % (lib.describe_status(run.status),
                                                     (": " + err[-1]) if err else "",
                                                     outlog_fail(ctx)))
            if lib.proc_state(pid) is not None:
                raise Fail("pid %d still exists after cryo restore ended" % pid)
        check_outlog(ctx)
        check_log(ctx, "dump", opts.get("dump_log"))
        if mode != "leave-running":
            check_log(ctx, "restore", opts.get("restore_log"))
    return fn


def check_log(ctx, tag, words):
    """dump_log=A_B, restore_log=A_B: that log must say "A B" (the path taken)."""
    if not words:
        return
    want = words.replace("_", " ")
    if want not in lib.read_text(ctx.path(tag + ".log")):
        raise Fail("%s.log does not say %r" % (tag, want))


# ---------------------------------------------------------------- TCP

GAME = os.path.join(ROOT, "tests", "tcp_game.py")
GAME_CLIENTS = 100


def check_game_queues(ctx, images):
    """At the dump, some connection of the server had data it never sent in
    its send queue, and some had data it had not read in its receive queue."""
    r = ctx.cryo(lib.CRYO, ["show", images], "show")
    ctx.expect_ok(r, "cryo show")
    text = lib.read_text(ctx.path("show.out"))
    unsent = [int(n) for n in re.findall(r"^\s+unsent: (\d+)$", text, re.M)]
    unread = [int(m.group(2)) if m.group(2) else len(m.group(1)) // 2 for m in re.finditer(
        r"^\s+recv_queue: ([0-9a-f]*)(?:\.\.\. \((\d+) bytes\))?$", text, re.M)]
    q = list(zip(unsent, unread))
    if len(q) != GAME_CLIENTS:
        raise Fail("the checkpoint holds %d connections, expected %d" % (len(q), GAME_CLIENTS))
    if not any(u for u, _ in q) or not any(r for _, r in q):
        raise Fail("at the dump no connection had unsent data (%d) or unread data (%d)" % (
            sum(u for u, _ in q), sum(r for _, r in q)))
    ctx.notes.append("at the dump: %d bytes never sent, %d unread, over %d connections" % (
        sum(u for u, _ in q), sum(r for _, r in q), len(q)))


def game_dump(ctx, inns, pid, images, mode):
    args = ["dump", "-t", pid, "-D", images, "--tcp-established", "-v4", "-o",
            ctx.path("dump.log")] + (["-R"] if mode != "restore" else [])
    r = ctx.cryo(inns[0], inns[1:] + [lib.CRYO] + args, "dump", limit=60)
    if mode == "failed":
        if lib.exit_code(r.status) == 0 or not re.search(r"not supported", lib.read_text(r.err)):
            raise Fail("the dump of a server holding an unsupported fd did not fail as it "
                       "should: %s" % lib.read_text(r.err).strip()[:200])
        check_running(pid, "after the failed dump")
        return
    ctx.expect_ok(r, "cryo dump")
    check_game_queues(ctx, images)
    if mode == "leave-running":
        # the game may end as soon as it is released (on a loaded machine
        # what is left of it can take less than cryo's own exit): an ended
        # server's status and every byte are checked after
        if lib.proc_state(pid) != "Z":
            check_running(pid, "after dump -R")
        return
    wait_killed(pid, "after dump", ctx)
    time.sleep(1)  # the clients go on sending into the lock meanwhile
    lib.tracked.add(pid)
    r = ctx.cryo(inns[0], inns[1:] + [lib.CRYO, "restore", "-D", images, "-d",
                                      "--tcp-established", "-v4", "-o",
                                      ctx.path("restore.log")], "restore", limit=60)
    ctx.expect_ok(r, "cryo restore -d")


def game_test(family, mode):
    """A server with 100 clients in a process outside its tree, in a network
    namespace of the test's own, data in flight both ways; dumped (killed)
    and restored a second later, or left running, or a dump that fails: every
    client gets every byte once and in order, no connection is reset, no
    lock is left."""
    def fn(ctx):
        ns = "cryo-game-%d-%s-%s" % (os.getpid(), family, mode)
        inns = [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", ns]
        subprocess.run(["ip", "netns", "add", ns], check=True)
        clients = None
        try:
            subprocess.run(inns + ["ip", "link", "set", "lo", "up"], check=True)
            argv = inns + [sys.executable, GAME, "server", family, str(GAME_CLIENTS)]
            pid = start_workload(ctx, argv + (["bad"] if mode == "failed" else []))
            lib.wait_until(lambda: os.path.exists(ctx.path("port")), 20, "the server's port")
            port = lib.read_text(ctx.path("port")).strip()
            clients = lib.spawn(inns + [sys.executable, GAME, "clients", family, port,
                                        str(GAME_CLIENTS)], cwd=ctx.dir,
                                stdout=ctx.path("clients.log"), stderr=ctx.path("clients.log"))
            wait_ready(ctx, pid)
            before = lib.netns_tcp_counters(inns)
            game_dump(ctx, inns, pid, ctx.path("images"), mode)
            touch(ctx.path("dumped"))  # the game may end now
            # resets the checkpoint caused come with the next segments, which
            # the clients send every tick: counted over a second of traffic
            # after it, before any connection is closed (closing 100 busy
            # connections at the end may reset some, with no checkpoint at all)
            time.sleep(1)
            after = lib.netns_tcp_counters(inns)
            st = lib.wait_pid(clients, 120, "waiting for the clients to finish")
            if lib.exit_code(st) != 0:
                raise Fail("the clients: %s: %s" % (lib.describe_status(st),
                                                   lib.read_text(ctx.path("clients.log"))[:300]))
            clients = None
            st = lib.wait_pid(pid, 60, "waiting for the server to finish")
            if lib.exit_code(st) != 0:
                raise Fail("the server: %s%s" % (lib.describe_status(st), outlog_fail(ctx)))
            if after["OutRsts"] != before["OutRsts"]:
                raise Fail("%d resets were sent in the namespace" % (
                    after["OutRsts"] - before["OutRsts"]))
            left = lib.cryo_tables(inns) + lib.cryo_tables(pid=pid)
            if left:
                raise Fail("nftables tables left behind: %s" % left)
        finally:
            if clients and lib.poll_pid(clients) is None:
                os.kill(clients, signal.SIGKILL)
                lib.wait_pid(clients, 10)
            subprocess.run(["ip", "netns", "del", ns])
    return fn


def netns_workload_test(name, mode, san=False):
    """A workload of tests/workloads that needs a network namespace (ICMP
    ping sockets need net.ipv4.ping_group_range, raw sockets see every
    packet of their namespace): in one of the test's own, with lo up and
    ping allowed to every group, cryo run in it too; dumped and restored
    (or left running with -R), then the workload checks its state."""
    def fn(ctx):
        ns = "cryo-%s-%d-%s" % (name.replace("_", "-"), os.getpid(), mode)
        inns = [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", ns]
        cryo = lib.SAN_CRYO if san else lib.CRYO
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(inns + ["ip", "link", "set", "lo", "up"], check=True)
            subprocess.run(inns + ["sysctl", "-q", "-w",
                                   "net.ipv4.ping_group_range=0 2147483647"], check=True)
            pid = start_workload(ctx, inns + [os.path.join(WL_BIN, name)],
                                 mode="restore" if mode == "restore" else mode)
            wait_ready(ctx, pid)
            dump = [cryo, "dump", "-t", pid, "-D", ctx.path("images"), "-v4", "-o",
                    ctx.path("dump.log")] + (["-R"] if mode == "leave-running" else [])
            ctx.expect_ok(ctx.cryo(inns[0], inns[1:] + dump, "dump"), "cryo dump")
            if mode != "leave-running":
                wait_killed(pid, "after dump", ctx)
                lib.tracked.add(pid)
                r = ctx.cryo(inns[0], inns[1:] + [cryo, "restore", "-D", ctx.path("images"),
                                                  "-d", "-v4", "-o", ctx.path("restore.log")],
                             "restore")
                ctx.expect_ok(r, "cryo restore -d")
            with open(ctx.path("go"), "w"):
                pass
            st = lib.wait_pid(pid, 20, "waiting for the workload to finish")
            if lib.exit_code(st) != 0:
                raise Fail("the workload: %s%s" % (lib.describe_status(st), outlog_fail(ctx)))
        finally:
            subprocess.run(["ip", "netns", "del", ns])
    return fn


HTTP_GET = ("import sys, urllib.request\n"
            "print(urllib.request.urlopen('http://127.0.0.1:8000/hello.txt', timeout=10)"
            ".read().decode())\n")


def http_server_test(ctx):
    """python3 -m http.server, in a network namespace of the test's own:
    answers, is dumped (killed) and restored, and answers again."""
    ns = "cryo-http-%d" % os.getpid()
    inns = [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", ns]
    with open(ctx.path("hello.txt"), "w") as f:
        f.write("hello from cryo\n")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(inns + ["ip", "link", "set", "lo", "up"], check=True)
        pid = start_workload(ctx, inns + [sys.executable, "-m", "http.server", "8000",
                                          "--bind", "127.0.0.1"])

        def answers(tag):
            r = subprocess.run(inns + [sys.executable, "-c", HTTP_GET], capture_output=True,
                               text=True, timeout=20)
            return r.returncode == 0 and r.stdout == "hello from cryo\n\n"
        lib.wait_until(lambda: answers("before"), 20, "http.server answering")
        dump_and_restore_in(ctx, inns, pid)
        if not answers("after"):
            raise Fail("the restored http.server does not answer")
        os.kill(pid, signal.SIGTERM)
        lib.wait_pid(pid, 10, "waiting for http.server to end")
        if lib.cryo_tables(inns):
            raise Fail("nftables tables left behind: %s" % lib.cryo_tables(inns))
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def dump_and_restore_in(ctx, inns, pid):
    """cryo dump (which kills pid), then restore -d, both run by inns (a
    network namespace's `ip netns exec`)."""
    r = ctx.cryo(inns[0], inns[1:] + [lib.CRYO, "dump", "-t", pid, "-D", ctx.path("images"),
                                      "-v4", "-o", ctx.path("dump.log")], "dump")
    ctx.expect_ok(r, "cryo dump")
    wait_killed(pid, "after dump", ctx)
    lib.tracked.add(pid)
    r = ctx.cryo(inns[0], inns[1:] + [lib.CRYO, "restore", "-D", ctx.path("images"), "-d",
                                      "-v4", "-o", ctx.path("restore.log")], "restore")
    ctx.expect_ok(r, "cryo restore -d")


def ip_monitor_test(ctx):
    """`ip monitor link address` (iproute2), in a network namespace of the
    test's own: prints an event, is dumped (killed) and restored, and still
    prints the events that follow (its NETLINK_ROUTE socket with its groups)."""
    ns = "cryo-ipmon-%d" % os.getpid()
    inns = [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(inns + ["ip", "link", "set", "lo", "up"], check=True)
        pid = start_workload(ctx, inns + ["ip", "monitor", "link", "address"])

        def prints(what):
            return what in lib.read_text(ctx.path("out.log"))
        # ip monitor may not listen yet when it starts: an address added
        # before it joined its groups is never printed, so add more until one is
        added = iter(range(105, 200))

        def first_event():
            subprocess.run(inns + ["ip", "addr", "add", "127.0.0.%d/8" % next(added), "dev",
                                   "lo"], check=True)
            time.sleep(0.2)
            return prints("127.0.0.")
        lib.wait_until(first_event, 20, "ip monitor printing the first event")
        dump_and_restore_in(ctx, inns, pid)
        subprocess.run(inns + ["ip", "addr", "add", "127.0.0.6/8", "dev", "lo"], check=True)
        subprocess.run(inns + ["ip", "link", "set", "lo", "mtu", "1234"], check=True)
        lib.wait_until(lambda: prints("127.0.0.6") and prints("mtu 1234"), 20,
                       "the restored ip monitor printing the events after restore")
        os.kill(pid, signal.SIGTERM)
        lib.wait_pid(pid, 10, "waiting for ip monitor to end")
    finally:
        subprocess.run(["ip", "netns", "del", ns])


ECHO_SERVER = """
import os, socket, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
open("port.tmp", "w").write(str(l.getsockname()[1]))
os.rename("port.tmp", "port")
c, _ = l.accept()
while True:
    d = c.recv(100)
    if not d:
        break
    c.sendall(d.upper())
"""


NETNS_PEER = """
import os, socket, sys, time
# argv: server address, port; one connection, kept across the checkpoint
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
def echo(msg):
    c.sendall(msg)
    got = b""
    while len(got) < len(msg):
        part = c.recv(100)
        if not part:
            sys.exit("the server closed the connection after %r" % got)
        got += part
    if got != msg.upper():
        sys.exit("the server answered %r to %r" % (got, msg))
echo(b"before")
open("peer-ready", "w").close()
while not os.path.exists("peer-go"):
    echo(b"during")  # into the lock while the tree is frozen: answered later
    time.sleep(0.05)
echo(b"after the checkpoint")
print("peer: ok", flush=True)
"""

NETNS_ECHO = """
import os, socket
l = socket.socket()
l.bind(("10.213.%d.1", 7000))
l.listen(1)
c, _ = l.accept()
open("ready", "w").close()
while True:
    d = c.recv(100)
    if not d:
        break
    c.sendall(d.upper())
"""


def netns_pair(tag):
    """Two namespaces of the test's own, A (the tree's) and B (the peer's),
    joined by a veth pair, 10.213.N.1 in A and .2 in B; their names and the
    `ip netns exec` prefixes."""
    names = ["cryo-nl-%d-%s-%s" % (os.getpid(), tag, side) for side in "ab"]
    pre = [[shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", n] for n in names]
    net = os.getpid() % 250
    for n in names:
        subprocess.run(["ip", "netns", "add", n], check=True)
    try:
        for inns, ip in ((pre[0], 1), (pre[1], 2)):
            subprocess.run(inns + ["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(pre[0] + ["ip", "link", "add", "vnla", "type", "veth", "peer", "name",
                                 "vnlb", "netns", names[1]], check=True)
        for inns, dev, ip in ((pre[0], "vnla", 1), (pre[1], "vnlb", 2)):
            subprocess.run(inns + ["ip", "addr", "add", "10.213.%d.%d/24" % (net, ip), "dev",
                                   dev], check=True)
            subprocess.run(inns + ["ip", "link", "set", dev, "up"], check=True)
    except Exception:
        for n in names:
            subprocess.run(["ip", "netns", "del", n])
        raise
    return names, pre, net


def killed_dump_then_unlock(ctx, pre, dump, pid):
    """cryo SIGKILLed once it took the lock (blocked opening its pages
    image, a FIFO): the table is left in the tree's namespace A alone, and
    `cryo unlock -D DIR`, run in cryo's own namespace, finds A and removes
    it."""
    os.mkdir(ctx.path("images"))
    os.mkfifo(os.path.join(ctx.path("images"), ".pages-%d.img.part" % pid))
    d = lib.spawn(dump, cwd=ctx.dir, stdout=ctx.path("dump.out"), stderr=ctx.path("dump.err"))
    try:
        lib.wait_until(lambda: "in repair mode, read" in lib.read_text(ctx.path("dump.log")),
                       20, "the dump taking the lock")
        time.sleep(0.2)
    finally:
        os.kill(d, signal.SIGKILL)
        lib.wait_pid(d, 10, "waiting for the killed cryo")
    if (len(lib.cryo_tables(pre[0])) != 1 or lib.cryo_tables(pre[1]) or
            lib.cryo_tables(pid=pid)):
        raise Fail("the killed dump left %s in A, %s in B, %s here: expected one table in A" % (
            lib.cryo_tables(pre[0]), lib.cryo_tables(pre[1]), lib.cryo_tables(pid=pid)))
    ctx.expect_ok(ctx.cryo(lib.CRYO, ["unlock", "-D", ctx.path("images")], "unlock"),
                  "cryo unlock")
    if "network lock removed" not in lib.read_text(ctx.path("unlock.out")):
        raise Fail("cryo unlock: %s" % lib.read_text(ctx.path("unlock.out")).strip())
    check_running(pid, "after the killed dump and cryo unlock")


def failed_restore_unlocks(ctx, pre, pid):
    """The dumped (killed) tree restored in cryo's own namespace, where its
    address is not: the restore fails, naming it, and its undo removes the
    lock from namespace A, which it finds by the inode netlock.img
    records."""
    wait_killed(pid, "after dump", ctx)
    lib.tracked.add(pid)
    if len(lib.cryo_tables(pre[0])) != 1:
        raise Fail("after the dump namespace A holds %s, not the lock" % lib.cryo_tables(pre[0]))
    r = ctx.cryo(lib.CRYO, ["restore", "-D", ctx.path("images"), "-d", "--tcp-established",
                            "-v4", "-o", ctx.path("restore.log")], "restore")
    if lib.exit_code(r.status) == 0:
        raise Fail("a restore outside the tree's namespace succeeded")
    err = lib.read_text(r.err).strip()
    if "bind" not in err:
        raise Fail("the failed restore said: %s" % err[:200])
    left = lib.cryo_tables(pre[0]) + lib.cryo_tables(pre[1]) + lib.cryo_tables(pid=pid)
    if left:
        raise Fail("the failed restore left %s" % left)


def netns_lock_test(mode):
    """A server in a network namespace of its own (A), its one client in
    another (B) across a veth pair, talking all through the checkpoint;
    cryo runs in neither, so the dump locks namespace A whole (one table
    there, dropping everything in and out), and the restore, run in A,
    removes it (-R: the dump's end does; killed-dump: cryo dies after the
    lock and `cryo unlock` removes it; failed-restore: see
    failed_restore_unlocks): no reset in either namespace, the
    client gets every answer on its connection, no table left in A, B or
    cryo's own namespace."""
    def fn(ctx):
        names, pre, net = netns_pair(mode)
        peer = None
        try:
            pid = start_workload(ctx, pre[0] + [sys.executable, "-c", NETNS_ECHO % net])
            lib.wait_until(lambda: subprocess.run(
                pre[0] + ["ss", "-Htln", "sport", "= :7000"], capture_output=True,
                text=True).stdout.strip(), 20, "the server listening")
            peer = lib.spawn(pre[1] + [sys.executable, "-c", NETNS_PEER, "10.213.%d.1" % net,
                                       "7000"], cwd=ctx.dir, stdout=ctx.path("peer.log"),
                             stderr=ctx.path("peer.log"))
            lib.wait_until(lambda: os.path.exists(ctx.path("peer-ready")), 20,
                           "the client connected")
            wait_ready(ctx, pid)
            before = [lib.netns_tcp_counters(p) for p in pre]
            dump = [lib.CRYO, "dump", "-t", str(pid), "-D", ctx.path("images"),
                    "--tcp-established", "-v4", "-o", ctx.path("dump.log")]
            if mode == "killed-dump":
                killed_dump_then_unlock(ctx, pre, dump, pid)
            else:
                ctx.expect_ok(ctx.cryo(dump[0], dump[1:] + (["-R"] if mode == "leave-running"
                                                            else []), "dump"), "cryo dump")
            if "in the tree's network namespace" not in lib.read_text(ctx.path("dump.log")):
                raise Fail("the dump did not lock the tree's namespace whole (dump.log)")
            if mode == "failed-restore":
                failed_restore_unlocks(ctx, pre, pid)
                return
            if mode == "restore":
                wait_killed(pid, "after dump", ctx)
                lib.tracked.add(pid)
                time.sleep(1)  # the client goes on sending into the lock
                r = ctx.cryo(pre[0][0], pre[0][1:] + [lib.CRYO, "restore", "-D",
                                                      ctx.path("images"), "-d",
                                                      "--tcp-established", "-v4", "-o",
                                                      ctx.path("restore.log")], "restore")
                ctx.expect_ok(r, "cryo restore -d")
            else:
                check_running(pid, "after dump -R")
            time.sleep(0.5)
            touch(ctx.path("peer-go"))
            st = lib.wait_pid(peer, 30, "waiting for the client")
            peer = None
            if lib.exit_code(st) != 0:
                raise Fail("the client: %s: %s" % (lib.describe_status(st),
                                                  lib.read_text(ctx.path("peer.log"))[-300:]))
            after = [lib.netns_tcp_counters(p) for p in pre]
            for n, b, a in zip(names, before, after):
                if a["OutRsts"] != b["OutRsts"]:
                    raise Fail("%d resets were sent in %s" % (a["OutRsts"] - b["OutRsts"], n))
            left = (lib.cryo_tables(pre[0]) + lib.cryo_tables(pre[1]) +
                    lib.cryo_tables(pid=pid))
            if left:
                raise Fail("nftables tables left behind: %s" % left)
            # the client is gone: the server ends on its connection's EOF
            st = lib.wait_pid(pid, 10, "waiting for the server to end")
            if lib.exit_code(st) != 0:
                raise Fail("the server: %s%s" % (lib.describe_status(st), outlog_fail(ctx)))
        finally:
            if peer:
                os.kill(peer, signal.SIGKILL)
                lib.wait_pid(peer, 10)
            for n in names:
                subprocess.run(["ip", "netns", "del", n])
    return fn


def unlock_test(ctx):
    """cryo killed (SIGKILL) in the middle of a dump with --tcp-established,
    while it is blocked opening the pages image (a FIFO put in its place):
    the server goes on (injection leaves it as it was between calls, and its
    connection is out of repair mode once read), the lock it took is still
    there; `cryo unlock -D DIR` removes it, the server answers on the same
    connection again, and a second unlock finds nothing to remove."""
    pid = start_workload(ctx, [sys.executable, "-c", ECHO_SERVER])
    lib.wait_until(lambda: os.path.exists(ctx.path("port")), 20, "the server's port")
    images = ctx.path("images")
    dump = None
    try:
        client = socket.create_connection(("127.0.0.1", int(lib.read_text(ctx.path("port")))),
                                          timeout=10)
        client.sendall(b"a")
        if client.recv(10) != b"A":
            raise Fail("the echo server does not answer")
        os.mkdir(images)
        os.mkfifo(os.path.join(images, ".pages-%d.img.part" % pid))
        dump = lib.spawn([lib.CRYO, "dump", "-t", str(pid), "-D", images, "--tcp-established",
                          "-v4", "-o", ctx.path("dump.log")], cwd=ctx.dir,
                         stdout=ctx.path("dump.out"), stderr=ctx.path("dump.err"))
        lib.wait_until(lambda: "TCP connection in repair mode" in lib.read_text(
            ctx.path("dump.log")), 20, "the dump taking the lock")
        time.sleep(0.2)
        if not lib.alive(dump):
            raise Fail("the dump ended before it could be killed")
        os.kill(dump, signal.SIGKILL)
        lib.wait_pid(dump, 10, "waiting for the killed cryo")
        dump = None
        time.sleep(0.3)
        if not lib.alive(pid):
            raise Fail("the echo server died with the cryo that was dumping it (%s)" %
                       lib.describe_status(lib.wait_pid(pid, 5)))
        stale = [l for l in lib.cryo_tables() if "cryo-%d-" % pid in l]
        if len(stale) != 1:
            raise Fail("the killed dump left %s, not its one table" % stale)
        r = ctx.cryo(lib.CRYO, ["unlock", "-D", images], "unlock")
        ctx.expect_ok(r, "cryo unlock")
        if "network lock removed" not in lib.read_text(ctx.path("unlock.out")):
            raise Fail("cryo unlock: %s" % lib.read_text(ctx.path("unlock.out")).strip())
        if [l for l in lib.cryo_tables() if "cryo-%d-" % pid in l]:
            raise Fail("cryo unlock left the table: %s" % lib.cryo_tables())
        client.settimeout(10)
        client.sendall(b"after unlock")
        got = b""
        while len(got) < len(b"AFTER UNLOCK"):
            part = client.recv(100)
            if not part:
                break
            got += part
        if got != b"AFTER UNLOCK":
            raise Fail("after cryo unlock the server answered %r" % got)
        r = ctx.cryo(lib.CRYO, ["unlock", "-D", images], "unlock2")
        ctx.expect_ok(r, "cryo unlock, again")
        if "no lock left" not in lib.read_text(ctx.path("unlock2.out")):
            raise Fail("cryo unlock, again: %s" % lib.read_text(ctx.path("unlock2.out")).strip())
        client.close()
        # the server ends on its connection's EOF
        st = lib.wait_pid(pid, 10, "waiting for the echo server to end")
        if lib.exit_code(st) != 0:
            raise Fail("the echo server: %s%s" % (lib.describe_status(st), outlog_fail(ctx)))
    finally:
        if dump:
            os.kill(dump, signal.SIGKILL)
            lib.wait_pid(dump, 10)
        for line in lib.cryo_tables():
            if "cryo-%d-" % pid in line:
                subprocess.run(["nft", "delete"] + line.split()[:3])


# ---------------------------------------------------------------- demo & python

def counter_test(binary):
    def fn(ctx):
        lib.counter_demo(binary, ctx.dir, say=ctx.notes.append, log=ctx.runs)
    return fn


def library_install_test(ctx):
    """make install into a fresh prefix, then a program built against it with
    pkg-config alone (tests/library/uselib.c) runs its own checks: every file
    the header needs is installed and the error API works."""
    prefix = ctx.path("prefix")

    def step(argv, what, env=None):
        r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            out = (r.stdout + r.stderr).strip().splitlines()
            raise Fail("%s: exit %d%s" % (what, r.returncode,
                                          (": " + out[-1]) if out else ""))
        return r.stdout
    step(["make", "-s", "install", "PREFIX=" + prefix], "make install")
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    flags = step(["pkg-config", "--cflags", "--libs", "cryo"], "pkg-config cryo", env).split()
    if "-I%s/include" % prefix not in flags:
        raise Fail("pkg-config --cflags does not point into the prefix: %s" % flags)
    binary = ctx.path("uselib")
    step(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", binary,
          os.path.join(ROOT, "tests", "library", "uselib.c")] + flags, "building uselib")
    out = step([binary, ctx.path("no-such-checkpoint"), ctx.path("lib.log")], "uselib")
    if "uselib: ok" not in out:
        raise Fail("uselib did not finish its checks: %s" % out.strip())


def python_by_hand_test(ctx):
    """A python3 -c process in a process group of its own, stdout/stderr to
    files: dump, restore -d --pidfile, same pid, its file keeps growing with
    the right numbers, and it passes its own check when told to finish."""
    images = ctx.path("images")
    pid = start_workload(ctx, [sys.executable, "-c", PYWL], session="pgrp",
                         stdout="out.log", stderr="err.log")
    wait_ready(ctx, pid)
    orig_cmd = lib.cmdline(pid)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", images, "-v4", "-o",
                            ctx.path("dump.log")], "dump")
    ctx.expect_ok(r, "cryo dump")
    wait_killed(pid, "after dump", ctx)
    vals = [int(x) for x in lib.read_text(ctx.path("count.txt")).split()]
    last = vals[-1]
    pidfile = ctx.path("restored.pid")
    lib.tracked.add(pid)
    r = ctx.cryo(lib.CRYO, ["restore", "-D", images, "-d", "--pidfile", pidfile, "-v4",
                            "-o", ctx.path("restore.log")], "restore")
    ctx.expect_ok(r, "cryo restore -d")
    text = lib.read_text(pidfile).strip()
    if text != str(pid):
        raise Fail("--pidfile holds %r, expected %d" % (text, pid))
    check_running(pid, "after restore -d")
    if lib.cmdline(pid) != orig_cmd:
        raise Fail("restored cmdline %r, was %r" % (lib.cmdline(pid), orig_cmd))
    ppid = int(re.search(r"^PPid:\s*(\d+)", lib.read_text("/proc/%d/status" % pid),
                         re.M).group(1))
    if ppid != os.getpid():
        raise Fail("restored pid %d has parent %d, not the subreaper %d" % (
            pid, ppid, os.getpid()))

    def grown():
        return len(lib.read_text(ctx.path("count.txt")).split()) > len(vals) + 10
    lib.wait_until(grown, 10, "waiting for count.txt to grow after the restore")
    now = [int(x) for x in lib.read_text(ctx.path("count.txt")).split()]
    if now != list(range(len(now))):
        bad = next(i for i, v in enumerate(now) if v != i)
        raise Fail("count.txt is not 0,1,2...: around line %d: %r (last before dump: %d)" % (
            bad, now[max(0, bad - 2):bad + 3], last))
    ctx.notes.append("count before the dump ended at %d, now at %d" % (last, now[-1]))
    go_and_finish(ctx, pid, "the restored process (our child)")


# ---------------------------------------------------------------- real programs

BASH_PIPELINE = "seq 1 1000000 | while read n; do echo $n; sleep 0.001; done > out.txt"


def numbers(path):
    return [int(x) for x in lib.read_text(path).split()]


def check_sequence(nums, before):
    """1, 2, 3... with nothing missing or repeated across the checkpoint."""
    for i, v in enumerate(nums):
        if v != i + 1:
            raise Fail("out.txt breaks at line %d: %r (last line before the dump: %d)" % (
                i + 1, nums[max(0, i - 2):i + 3], before))


def bash_pipeline_test(mode):
    """bash -c 'seq | while read; do ...; sleep; done': a tree of three or four
    processes joined by a pipe with data in flight, and a sleep started for
    every line (the freeze races with fork and exec)."""
    def fn(ctx):
        images, out = ctx.path("images"), ctx.path("out.txt")
        pid = lib.spawn([shutil.which("bash") or "/bin/bash", "-c", BASH_PIPELINE], cwd=ctx.dir,
                        stdout=ctx.path("bash.log"), stderr="stdout", session="setsid")
        lib.tracked.add(pid)
        lib.wait_until(lambda: len(numbers(out)) > 100, 10, "waiting for the pipeline")
        tree = lib.tree_of(pid)
        args = ["dump", "-t", pid, "-D", images, "-v4", "-o", ctx.path("dump.log")]
        if mode == "leave-running":
            args.append("-R")
        ctx.expect_ok(ctx.cryo(lib.CRYO, args, "dump"), "cryo " + " ".join(map(str, args[:1])))
        if mode == "leave-running":
            check_running(pid, "after dump -R")
            before = len(numbers(out))
        else:
            wait_killed(pid, "after dump", ctx)
            lib.wait_until(lambda: all(lib.proc_state(p) is None for p in tree), 10,
                           "waiting for the dumped tree to end")
            before = len(numbers(out))
            pidfile = ctx.path("restored.pid")
            ctx.expect_ok(ctx.cryo(lib.CRYO, ["restore", "-D", images, "-d", "--pidfile",
                                              pidfile, "-v4", "-o", ctx.path("restore.log")],
                                   "restore"), "cryo restore -d")
            if lib.read_text(pidfile).strip() != str(pid):
                raise Fail("--pidfile holds %r, expected %d" % (lib.read_text(pidfile), pid))
            check_running(pid, "after restore -d")
        lib.wait_until(lambda: len(numbers(out)) > before + 200, 20,
                       "waiting for out.txt to grow after the checkpoint")
        os.killpg(pid, signal.SIGKILL)
        lib.wait_until(lambda: lib.proc_state(pid) is None, 10, "waiting for bash to end")
        nums = numbers(out)
        check_sequence(nums, before)
        ctx.notes.append("out.txt had %d lines at the checkpoint, %d at the end" % (
            before, len(nums)))
    return fn


REDIS_DATA = 500


def redis_cli(sock, *args):
    r = subprocess.run([shutil.which("redis-cli") or "redis-cli", "-s", sock] + list(args),
                       capture_output=True, text=True, timeout=10)
    return r.stdout.strip()


def redis_check(sock, pid, what):
    """Every value written before the checkpoint, then a write after it."""
    if redis_cli(sock, "GET", "greeting") != "hello":
        raise Fail("%s: GET greeting gives %r" % (what, redis_cli(sock, "GET", "greeting")))
    if redis_cli(sock, "LRANGE", "list", "0", "-1").split() != ["a", "b", "c"]:
        raise Fail("%s: the list is %r" % (what, redis_cli(sock, "LRANGE", "list", "0", "-1")))
    if redis_cli(sock, "HGET", "hash", "field") != "value":
        raise Fail("%s: HGET hash field gives %r" % (what, redis_cli(sock, "HGET", "hash", "field")))
    size = redis_cli(sock, "DBSIZE")
    if size != str(REDIS_DATA + 3):
        raise Fail("%s: DBSIZE is %s, expected %d" % (what, size, REDIS_DATA + 3))
    for i in (0, REDIS_DATA // 2, REDIS_DATA - 1):
        if redis_cli(sock, "GET", "key:%d" % i) != "value-%d" % i:
            raise Fail("%s: key:%d lost" % (what, i))
    info = redis_cli(sock, "INFO", "server")
    if "process_id:%d" % pid not in info:
        raise Fail("%s: INFO does not report process_id %d" % (what, pid))
    if redis_cli(sock, "SET", "after", "checkpoint") != "OK" or redis_cli(
            sock, "GET", "after") != "checkpoint":
        raise Fail("%s: cannot write after the checkpoint" % what)


def redis_test(mode):
    """redis-server (multi-threaded, epoll, eventfd-free pipes, a listening unix
    socket) holding data, with no client connected at the checkpoint."""
    def fn(ctx):
        server = shutil.which("redis-server")
        if not server or not shutil.which("redis-cli"):
            raise Fail("redis-server or redis-cli is not installed (make deps)")
        sock, images = ctx.path("redis.sock"), ctx.path("images")
        pid = lib.spawn([server, "--port", "0", "--unixsocket", sock, "--save", "",
                         "--appendonly", "no", "--dir", ctx.dir, "--daemonize", "no",
                         "--logfile", ctx.path("redis.log")], cwd=ctx.dir, session="setsid")
        lib.tracked.add(pid)
        lib.wait_until(lambda: os.path.exists(sock) and redis_cli(sock, "PING") == "PONG", 10,
                       "waiting for redis-server")
        redis_cli(sock, "SET", "greeting", "hello")
        redis_cli(sock, "RPUSH", "list", "a", "b", "c")
        redis_cli(sock, "HSET", "hash", "field", "value")
        pipe_in = "".join("SET key:%d value-%d\n" % (i, i) for i in range(REDIS_DATA))
        subprocess.run([shutil.which("redis-cli"), "-s", sock], input=pipe_in, text=True,
                       capture_output=True, timeout=20)
        tree = lib.tree_of(pid)
        args = ["dump", "-t", pid, "-D", images, "-v4", "-o", ctx.path("dump.log")]
        if mode == "leave-running":
            args.append("-R")
        ctx.expect_ok(ctx.cryo(lib.CRYO, args, "dump"), "cryo dump")
        if mode == "restore":
            wait_killed(pid, "after dump", ctx)
            lib.wait_until(lambda: all(lib.proc_state(p) is None for p in tree), 10,
                           "waiting for the dumped tree to end")
            ctx.expect_ok(ctx.cryo(lib.CRYO, ["restore", "-D", images, "-d", "-v4", "-o",
                                              ctx.path("restore.log")], "restore"),
                          "cryo restore -d")
        check_running(pid, "after the checkpoint")
        redis_check(sock, pid, "redis after " + ("restore" if mode == "restore" else "dump -R"))
        os.killpg(pid, signal.SIGKILL)
        lib.wait_until(lambda: lib.proc_state(pid) is None, 10, "waiting for redis to end")
    return fn


SQL_BEFORE = ("CREATE TABLE t(x INTEGER);\nINSERT INTO t VALUES(1),(2),(3);\nBEGIN;\n"
              "INSERT INTO t VALUES(4);\nSELECT 'before', count(*), sum(x) FROM t;\n")
def sleep6_test(mode):
    """coreutils' `sleep 6`, checkpointed 2 s in: restored 1.5 s after the dump
    it exits about 4 s after the restore (the time left, not 6 s again); left
    running (-R), 6 s after it started. Within 250 ms either way."""
    def fn(ctx):
        images = ctx.path("images")
        argv = [shutil.which("sleep") or "/bin/sleep", "6"]
        start = time.monotonic()
        pid = lib.spawn(argv, cwd=ctx.dir, session="setsid")
        ctx.runs.append(lib.Run(argv, pid))
        lib.tracked.add(pid)
        pause(2 - (time.monotonic() - start))
        orig_cmd = lib.cmdline(pid)
        args = ["dump", "-t", pid, "-D", images, "-v4", "-o", ctx.path("dump.log")]
        frozen = time.monotonic()
        if mode == "leave-running":
            ctx.expect_ok(ctx.cryo(lib.CRYO, args + ["-R"], "dump"), "cryo dump -R")
            st = lib.wait_pid(pid, 10, "waiting for sleep to end")
            set_status(ctx, pid, st)
            took, want, what = time.monotonic() - start, 6.0, "after it started"
        else:
            ctx.expect_ok(ctx.cryo(lib.CRYO, args, "dump"), "cryo dump")
            wait_killed(pid, "after dump", ctx)
            pause(1.5)
            run = restore_and_watch(ctx, lib.CRYO, images, pid, orig_cmd)
            restored = time.monotonic()
            st = run.status = lib.wait_pid(run.pid, 10, "waiting for the restored sleep")
            took, want = time.monotonic() - restored, 6 - (frozen - start)
            what = "after the restore"
        if lib.exit_code(st) != 0:
            raise Fail("sleep ended with %s" % lib.describe_status(st))
        if abs(took - want) > 0.25:
            raise Fail("sleep exited %.3f s %s, expected %.3f s" % (took, what, want))
        ctx.notes.append("sleep exited %.3f s %s (expected %.3f s)" % (took, what, want))
    return fn


SQL_AFTER = ("INSERT INTO t VALUES(5);\nCOMMIT;\nSELECT 'after', count(*), sum(x) FROM t;\n"
             ".quit\n")


def sqlite_test(ctx):
    """sqlite3 on a terminal in the middle of a session: a transaction open
    (its lock on the database held: --file-locks), checkpointed with
    --shell-job and restored on another terminal, where the session goes on
    and commits."""
    sqlite = shutil.which("sqlite3")
    if not sqlite:
        raise Fail("sqlite3 is not installed (make deps)")
    images, db = ctx.path("images"), ctx.path("test.db")
    old, slave = lib.open_pty()
    pid = lib.spawn([sqlite, db], cwd=ctx.dir, ctty=slave)
    os.close(slave)
    lib.tracked.add(pid)
    os.write(old.fd, SQL_BEFORE.encode())
    old.wait_for(lambda ls: any("before|4|10" in l for l in ls), 10,
                 "waiting for sqlite3 to answer")
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", images, "--shell-job", "--file-locks",
                            "-v4", "-o", ctx.path("dump.log")], "dump")
    ctx.expect_ok(r, "cryo dump --shell-job --file-locks")
    wait_killed(pid, "after dump", ctx)
    old.close()
    new, slave = lib.open_pty()
    rpid = lib.spawn([lib.CRYO, "restore", "-D", images, "--shell-job", "-v4", "-o",
                      ctx.path("restore.log")], cwd=ctx.dir, ctty=slave,
                     stderr=ctx.path("restore.err"))
    os.close(slave)
    lib.wait_until(lambda: lib.alive(pid) or lib.poll_pid(rpid) is not None, 10,
                   "waiting for the restored sqlite3")
    if not lib.alive(pid):
        raise Fail("cryo restore ended before sqlite3 came back: %s" %
                   lib.read_text(ctx.path("restore.err")).strip())
    os.write(new.fd, SQL_AFTER.encode())
    new.wait_for(lambda ls: any("after|5|15" in l for l in ls), 10,
                 "waiting for the restored sqlite3 to commit")
    st = lib.wait_pid(rpid, 10, "waiting for sqlite3 to quit")
    if lib.exit_code(st) != 0:
        raise Fail("cryo restore passed on %s after .quit" % lib.describe_status(st))
    new.close()
    check = subprocess.run([sqlite, db, "SELECT count(*), sum(x) FROM t;"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    if check != "5|15":
        raise Fail("the committed database holds %r, expected 5|15" % check)


# ---------------------------------------------------------------- commands

def command_test(args, expect=None, json_pid=False, make=None):
    def fn(ctx):
        argv = list(args)
        if make:
            ckpt, pid = make(ctx)
            argv = [a if a != "CKPT" else ckpt for a in argv]
        r = ctx.cryo(argv[0], argv[1:], "cmd")
        out = lib.read_text(ctx.path("cmd.out"))
        ctx.expect_ok(r, " ".join(os.path.basename(a) if a.startswith("/") else a
                                  for a in argv))
        if not out.strip():
            raise Fail("nothing on stdout")
        if expect and expect not in out:
            raise Fail("stdout lacks %r" % expect)
        if make and not json_pid and str(pid) not in out:
            raise Fail("the output does not mention pid %d" % pid)
        if json_pid:
            try:
                data = json.loads(out)
            except ValueError as e:
                raise Fail("show --json output does not parse: %s" % e)
            if not has_value(data, pid):
                raise Fail("show --json output does not contain pid %d" % pid)
    return fn


def has_value(data, v, key=""):
    """Some field whose name contains 'pid' holds v (or a list holding v)."""
    if isinstance(data, dict):
        return any(has_value(x, v, k) for k, x in data.items())
    if isinstance(data, list):
        return any(has_value(x, v, key) for x in data)
    return "pid" in key.lower() and (data == v or data == str(v))


_good = {}


def good_checkpoint(ctx):
    """A copy of a good checkpoint of the python workload (made once, with
    build/cryo; the process is killed by the dump). Returns (dir, pid)."""
    if "failed" in _good:
        raise Fail(_good["failed"])
    if "dir" not in _good:
        _good["failed"] = "could not make the good checkpoint (see the first test that used it)"
        src = os.path.join(TOP, "good-checkpoint")
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        sub = Ctx("good-checkpoint", src)
        pid = start_workload(sub, [sys.executable, "-c", PYWL])
        wait_ready(sub, pid)
        r = sub.cryo(lib.CRYO, ["dump", "-t", pid, "-D", os.path.join(src, "images"),
                                "-v4", "-o", os.path.join(src, "dump.log")], "dump")
        ctx.runs.extend(sub.runs)
        if lib.exit_code(r.status) != 0:
            raise Fail("cannot make a good checkpoint: %s" % r)
        wait_killed(pid, "good checkpoint")
        _good["dir"], _good["pid"] = os.path.join(src, "images"), pid
        del _good["failed"]
    dst = ctx.path("images")
    shutil.copytree(_good["dir"], dst)
    return dst, _good["pid"]


# ---------------------------------------------------------------- bad input

def expect_error(ctx, binary, args, mention=None, allowed=(), tag="bad"):
    """cryo must fail cleanly: non-zero exit below 128, exactly one line on
    stderr starting 'cryo: ', no sanitizer report, nothing left running
    (other than the pids in allowed). Returns the message."""
    r = ctx.cryo(binary, args, tag)
    err = lib.read_text(r.err)
    lines = err.splitlines()
    code = lib.exit_code(r.status)
    if "Sanitizer" in err or "runtime error:" in err:
        raise Fail("sanitizer report: %s" % " / ".join(lines[:3]))
    if os.WIFSIGNALED(r.status) or code >= 128:
        raise Fail("crashed: %s" % lib.describe_status(r.status))
    if code == 0:
        raise Fail("exit status 0 for bad input")
    if len(lines) != 1 or not lines[0].startswith("cryo: "):
        raise Fail("stderr should be one 'cryo: ' line, got %d line(s): %r" % (
            len(lines), err[:300]))
    if mention and not re.search(mention, lines[0], re.I):
        raise Fail("message does not mention %s: %r" % (mention, lines[0]))
    left = [p for p in lib.descendants() if p not in allowed]
    if left:
        raise Fail("left processes behind: %s" % ", ".join(
            "%d (%s)" % (p, (lib.cmdline(p) or b"").replace(b"\0", b" ").decode().strip())
            for p in left))
    ctx.notes.append("%s -> %s: %s" % (" ".join(args[:1]), lib.describe_status(r.status),
                                      lines[0]))
    return lines[0]


def bad_dump_pid(pid_fn, mention=None):
    def fn(ctx, binary):
        pid = pid_fn()
        before = lib.proc_state(pid)
        expect_error(ctx, binary, ["dump", "-t", pid, "-D", ctx.path("images")], mention)
        if before is not None and lib.proc_state(pid) in ("T", "t"):
            raise Fail("pid %d is left stopped" % pid)
    return fn


def bad_dump_dir(images_fn):
    """A dump into a dir that cannot be made fails and leaves the process as
    it was: still running, and it passes its own checks afterwards."""
    def fn(ctx, binary):
        pid = start_workload(ctx, [sys.executable, "-c", PYWL])
        wait_ready(ctx, pid)
        expect_error(ctx, binary, ["dump", "-t", pid, "-D", images_fn(ctx)], allowed=[pid])
        check_running(pid, "after the failed dump")
        pause(0.1)
        go_and_finish(ctx, pid, "after the failed dump the workload")
    return fn


def under_file(ctx):
    touch(ctx.path("afile"))
    return ctx.path("afile", "images")


def pages_file(images):
    names = sorted(n for n in os.listdir(images) if re.match(r"pages-.*\.img$", n))
    if not names:
        raise Fail("the checkpoint has no pages-*.img")
    return os.path.join(images, names[0])


def core_file(images):
    names = sorted(n for n in os.listdir(images) if re.match(r"core-.*\.img$", n))
    if not names:
        raise Fail("the checkpoint has no core-*.img")
    return os.path.join(images, names[0])


def truncate(path, by=3):
    os.truncate(path, os.path.getsize(path) - by)


def flip_page_bit(images):
    path = pages_file(images)
    size = os.path.getsize(path)
    if size <= 4096:
        raise Fail("%s has no page data" % path)
    off = 4096 + (size - 4096) // 2
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x10]))


def set_version(images, version=2):
    path = os.path.join(images, "inventory.img")
    with open(path, "r+b") as f:
        head = f.read(16)
        if head[:4] != b"CRYO":
            raise Fail("inventory.img does not start with CRYO: %r" % head)
        f.seek(8)
        f.write(version.to_bytes(4, "little"))


def bad_restore(damage, mention=None):
    def fn(ctx, binary):
        images, pid = good_checkpoint(ctx)
        if damage:
            damage(images)
        expect_error(ctx, binary, ["restore", "-D", images], mention)
        if lib.proc_state(pid) is not None:
            raise Fail("pid %d exists after the failed restore" % pid)
    return fn


def netlink_port_taken(ctx, binary):
    """A process whose netlink socket is bound to a port id of its own is
    dumped (killed); another socket takes that port id before the restore:
    the restore fails, naming the socket and the port id, and makes nothing."""
    port = 0x60000000 | os.getpid()
    setup = ("import socket\nk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)\n"
             "k.bind((%d, 0))\n" % port)
    pid = start_workload(ctx, [sys.executable, "-c", setup + PYWL])
    wait_ready(ctx, pid)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("images")], "dump")
    ctx.expect_ok(r, "cryo dump")
    wait_killed(pid, "after dump", ctx)
    taker = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)
    try:
        taker.bind((port, 0))
        expect_error(ctx, binary, ["restore", "-D", ctx.path("images")],
                     r"netlink socket:\[\d+\] \(usersock 2, port %d\): its port id %d is taken "
                     r"by socket:\[%d\]" % (port, port, os.fstat(taker.fileno()).st_ino))
    finally:
        taker.close()
    if lib.proc_state(pid) is not None:
        raise Fail("pid %d exists after the failed restore" % pid)


def bad_restore_dir(make_dir):
    def fn(ctx, binary):
        expect_error(ctx, binary, ["restore", "-D", make_dir(ctx)])
    return fn


def empty_dir(ctx):
    os.mkdir(ctx.path("empty"))
    return ctx.path("empty")


def pid_in_use(ctx, binary):
    """dump -R, then restore while the original still runs: refused, and the
    original goes on unharmed."""
    pid = start_workload(ctx, [sys.executable, "-c", PYWL])
    wait_ready(ctx, pid)
    r = ctx.cryo(binary, ["dump", "-t", pid, "-D", ctx.path("images"), "-R"], "dump")
    ctx.expect_ok(r, "cryo dump -R")
    expect_error(ctx, binary, ["restore", "-D", ctx.path("images")], allowed=[pid])
    check_running(pid, "after the refused restore")
    go_and_finish(ctx, pid, "the original")


def deleted_file(ctx, binary):
    """A file the process had open is deleted before the restore: the error
    names it, and no process with that pid is left."""
    pid = start_workload(ctx, [sys.executable, "-c", PYWL])
    wait_ready(ctx, pid)
    r = ctx.cryo(binary, ["dump", "-t", pid, "-D", ctx.path("images")], "dump")
    ctx.expect_ok(r, "cryo dump")
    wait_killed(pid, "after dump")
    os.unlink(ctx.path("count.txt"))
    expect_error(ctx, binary, ["restore", "-D", ctx.path("images")], mention=r"count\.txt")
    if lib.proc_state(pid) is not None:
        raise Fail("pid %d exists after the failed restore" % pid)


# What cryo does not support yet must be refused at dump time, clearly, and
# leave the process running unharmed. Each setup runs before PYWL's loop.
# an established connection, dumped without --tcp-established
REFUSE_TCP = ("import socket\nl = socket.socket()\nl.bind(('127.0.0.1', 0))\nl.listen()\n"
              "k = socket.create_connection(l.getsockname())\na = l.accept()[0]\n")
# a listener with a connection it has not accepted, without --skip-in-flight
REFUSE_TCP_PENDING = ("import socket\nl = socket.socket()\nl.bind(('127.0.0.1', 0))\n"
                      "l.listen()\nk = socket.create_connection(l.getsockname())\n")
# a connect() refused (the RST of a closed port), its ECONNREFUSED pending
REFUSE_TCP_REFUSED = ("import socket, select\nc = socket.socket()\nc.bind(('127.0.0.1', 0))\n"
                      "p = c.getsockname()[1]\nc.close()\nk = socket.socket()\n"
                      "k.setblocking(False)\nk.connect_ex(('127.0.0.1', p))\n"
                      "select.select([], [k], [], 10)\n")
# a packet socket (bound to no interface, receiving nothing) with a ring
REFUSE_PACKET_RING = ("import socket, struct\nk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)\n"
                      "k.setsockopt(263, 5, struct.pack('IIII', 4096, 1, 2048, 2))\n")
# a netlink socket whose RTM_GETLINK dump reply is still queued, unread
REFUSE_NETLINK = ("import socket, struct\nk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)\n"
                  "k.bind((0, 0))\nk.send(struct.pack('=IHHII', 32, 18, 0x301, 1, 0) + bytes(16))\n"
                  "while not socket.socket.recv(k, 1, socket.MSG_PEEK):\n    pass\n")
REFUSE_PEER = ("import socket\nk = socket.socket(socket.AF_UNIX)\n"
               "k.connect(b'\\0' + open('peer-name').read().encode())\n")
# A dump that fails after it took the connections waiting in a listener's
# backlog (a seqpacket end with ECONNRESET pending and a record queued is
# refused later): they are put back, in order, with their data, and each
# client still talks to its own server end (checked when the workload ends).
REFUSE_AFTER_BACKLOG = """
import atexit, os, socket
_name = b"\\0cryo-test-backlog-%d" % os.getpid()
_l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
_l.bind(_name)
_l.listen(4)
_clients = []
for _want in (b"first", b"second"):
    _c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _c.connect(_name)
    _c.send(_want)
    _clients.append((_want, _c))
_a, _b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
_a.send(b"unread")
_b.send(b"kept")
_b.close()

def _check_backlog():
    _l.settimeout(3)
    for want, c in _clients:
        try:
            c.settimeout(3)
            s = _l.accept()[0]
            got = s.recv(16)
            s.send(b"re-" + want)
            back = c.recv(16)
        except OSError as e:
            got = back = e
        ok = got == want and back == b"re-" + want
        print("wl: check backlog_%s ok" % want.decode() if ok else
              "wl: FAIL backlog_%s: got %r, reply %r" % (want.decode(), got, back))
        if not ok:
            os._exit(1)
atexit.register(_check_backlog)
"""
REFUSE_SYSV_PART = """
import ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
shmid = libc.shmget(0, 4 * 4096, 0o1600)
at = libc.shmat(shmid, None, 0)
libc.shmctl(shmid, 0, None)  # IPC_RMID: gone with the process
libc.munmap(at + 2 * 4096, 2 * 4096)  # only half of it stays attached
"""

# The same in a child of the workload: every process of the tree goes on.
REFUSE_IN_CHILD = """
import socket, time
if os.fork() == 0:
    k = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    open('child-ready', 'w').close()
    while not os.path.exists('go'):
        time.sleep(0.01)
    os._exit(0)
while not os.path.exists('child-ready'):
    time.sleep(0.01)
"""

# a child of the workload, itself with a kid made by clone(CLONE_VM) without
# CLONE_THREAD (tests/workloads/clone_vm.c)
REFUSE_CLONE_VM = """
import subprocess, time
subprocess.Popen([%r])
while not os.path.exists('child-ready'):
    time.sleep(0.01)
""" % os.path.join(WL_BIN, "clone_vm")

# an inotify watch on a file deleted while only a process outside the tree
# holds it: an orphan (the harness, a subreaper, adopts it) keeps it open
REFUSE_INOTIFY_HELD_OUTSIDE = """
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
open('held', 'w').close()
if os.fork() == 0:
    if os.fork() == 0:
        f = open('held')
        with open('holder-pid', 'w') as p:
            p.write(str(os.getpid()))
        os.rename('holder-pid', 'holder-ready')
        while not os.path.exists('go'):
            time.sleep(0.01)
        os._exit(0)
    os._exit(0)
os.wait()
while not os.path.exists('holder-ready'):
    time.sleep(0.01)
ino = libc.inotify_init1(0o4000)
if libc.inotify_add_watch(ino, b'held', 0xfff) != 1:
    raise SystemExit('inotify_add_watch failed')
os.unlink('held')
time.sleep(0.05)
try:
    while os.read(ino, 4096):
        pass
except BlockingIOError:
    pass
"""


def refused_dump(setup, mention, peer=False, outside=None):
    """The workload holds something cryo cannot checkpoint yet: dump fails
    with one line naming it, and the workload goes on and passes its checks.
    outside: a file where the workload wrote the pid of a process of its own
    that is outside its tree (an orphan), which may live on meanwhile."""
    def fn(ctx, binary):
        listener = conn = None
        if peer:  # a unix socket of the harness: a peer outside the checkpoint
            name = "cryo-test-peer-%d" % os.getpid()
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(b"\0" + name.encode())
            listener.listen()
            with open(ctx.path("peer-name"), "w") as f:
                f.write(name)
        try:
            pid = start_workload(ctx, [sys.executable, "-c", setup + PYWL])
            wait_ready(ctx, pid)
            if listener:
                listener.settimeout(10)
                conn = listener.accept()[0]
            tree = [pid] + lib.tree_of(pid)
            orphan = [int(lib.read_text(ctx.path(outside)))] if outside else []
            expect_error(ctx, binary, ["dump", "-t", pid, "-D", ctx.path("images")],
                         mention, allowed=tree + orphan)
            for p in tree:
                check_running(p, "after the refused dump")
            if os.path.exists(ctx.path("images")) and os.listdir(ctx.path("images")):
                raise Fail("the refused dump left files in %s" % ctx.path("images"))
            go_and_finish(ctx, pid, "after the refused dump the workload")
        finally:
            if conn:
                conn.close()
            if listener:
                listener.close()
    return fn


BAD = [
    ("dump-refuses-tcp-established",
     refused_dump(REFUSE_TCP, r"fd \d+ of pid \d+: established TCP connection "
                  r"127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ .*--tcp-established")),
    ("dump-refuses-tcp-pending",
     refused_dump(REFUSE_TCP_PENDING, r"TCP listener 127\.0\.0\.1:\d+ has 1 connection waiting "
                  r"to be accepted.*--skip-in-flight")),
    ("dump-refuses-tcp-refused-pending",
     refused_dump(REFUSE_TCP_REFUSED, r"fd \d+ of pid \d+: TCP socket 127\.0\.0\.1:\d+: a TCP "
                  r"connection that failed \(connect\(\) refused or unreachable\) with its error "
                  r"pending")),
    ("dump-refuses-packet-ring",
     refused_dump(REFUSE_PACKET_RING, r"fd \d+ of pid \d+: packet socket:\[\d+\] \(raw, any "
                  r"interface, protocol 0x0000\): a mapped ring \(PACKET_RX_RING\): not supported")),
    ("dump-refuses-netlink-queued",
     refused_dump(REFUSE_NETLINK, r"fd \d+ of pid \d+: netlink socket:\[\d+\] \(route 0, port "
                  r"\d+\): (\d+ bytes of messages are queued|a dump \(NLM_F_DUMP\) is running)")),
    ("dump-refuses-unix-peer-outside",
     refused_dump(REFUSE_PEER, r"peer .*outside the checkpoint", peer=True)),
    ("dump-refuses-sysv-part", refused_dump(REFUSE_SYSV_PART, r"part of System V")),
    ("dump-refused-puts-backlog-back",
     refused_dump(REFUSE_AFTER_BACKLOG, r"seqpacket socket with ECONNRESET pending and \d+ "
                  r"bytes queued: not supported")),
    ("dump-refuses-in-child", refused_dump("import os\n" + REFUSE_IN_CHILD,
                                           r"pid \d+ is a socket.*not supported")),
    ("dump-refuses-clone-vm",
     refused_dump("import os\n" + REFUSE_CLONE_VM,
                  r"pid \d+ shares its address space with pid \d+ \(clone CLONE_VM without "
                  r"CLONE_THREAD\): not supported")),
    ("dump-refuses-inotify-held-outside",
     refused_dump("import os\n" + REFUSE_INOTIFY_HELD_OUTSIDE,
                  r"fd \d+ of pid \d+ \(inotify\): wd 1 watches .*/held, which was deleted and "
                  r"no process of the checkpoint holds", outside="holder-ready")),
    ("dump-nonexistent-pid", bad_dump_pid(lib.free_pid)),
    ("dump-pid-1", bad_dump_pid(lambda: 1)),
    ("dump-kthreadd", bad_dump_pid(lambda: 2)),
    ("dump-dir-under-file", bad_dump_dir(under_file)),
    ("dump-dir-in-proc", bad_dump_dir(lambda ctx: "/proc/cryo-test")),
    ("restore-netlink-port-taken", netlink_port_taken),
    ("restore-missing-dir", bad_restore_dir(lambda ctx: ctx.path("missing"))),
    ("restore-empty-dir", bad_restore_dir(empty_dir)),
    ("restore-no-inventory",
     bad_restore(lambda d: os.unlink(os.path.join(d, "inventory.img")), "incomplete|inventory")),
    ("restore-truncated-pages", bad_restore(lambda d: truncate(pages_file(d)))),
    ("restore-truncated-core", bad_restore(lambda d: truncate(core_file(d)))),
    ("restore-page-bit-flip", bad_restore(flip_page_bit, "checksum")),
    ("restore-wrong-version", bad_restore(set_version, "version")),
    ("restore-pid-in-use", pid_in_use),
    ("restore-deleted-file", deleted_file),
]


# ---------------------------------------------------------------- runner

# ---------------------------------------------------------------- unit tests

UNIT_BIN = os.path.join(ROOT, "build", "unit")


def unit_test(binary):
    """A unit test binary: exit 0, at least one check, no FAIL line."""
    def fn(ctx):
        r = subprocess.run([binary], capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        fails = [l for l in out.splitlines() if "FAIL" in l]
        if r.returncode != 0 or fails:
            raise Fail("exit %d: %s" % (r.returncode, (fails or out.splitlines()[-1:] or [""])[0]))
        if "unit: check" not in out:
            raise Fail("no checks ran")
    return fn


def unit_tests():
    names = sorted(os.listdir(UNIT_BIN)) if os.path.isdir(UNIT_BIN) else []
    if not names:
        def missing(ctx):
            raise Fail("no unit test binaries in %s (make unit)" % UNIT_BIN)
        return [("unit", missing, 20)]
    return [("unit/" + n, unit_test(os.path.join(UNIT_BIN, n)), 60) for n in names]


def all_tests():
    """[(name, fn(ctx), timeout)]"""
    tests = unit_tests() + test_cli.tests() + test_tmux.tests()
    for args in (["--help"], ["dump", "--help"], ["restore", "--help"], ["show", "--help"]):
        tests.append(("help/" + "-".join(a.strip("-") for a in args),
                      command_test([lib.CRYO] + args), 20))
    tests.append(("check", command_test([lib.CRYO, "check"], expect="Looks good."), 20))
    for tag, binary in BINARIES:
        tests.append(("show/%s" % tag, command_test([binary, "show", "CKPT"],
                                                    make=good_checkpoint), 20))
        tests.append(("show-json/%s" % tag, command_test([binary, "show", "--json", "CKPT"],
                                                         json_pid=True,
                                                         make=good_checkpoint), 20))
    try:
        workloads = read_list()
    except OSError as e:
        def missing(ctx, e=e):
            raise Fail("cannot read %s: %s" % (LIST, e.strerror))
        tests.append(("workloads/list.txt", missing, 20))
        workloads = []
    for name, opts in workloads:
        modes = opts.get("modes", "restore,leave-running").split(",")
        timeout = float(opts.get("timeout", 20))
        for mode in modes:
            tests.append(("%s/%s" % (name, mode), workload_test(name, opts, mode), timeout))
        if "restore" in modes:  # the tool under the sanitizers, on the same restore
            tests.append(("%s/restore-san" % name, workload_test(name, opts, "restore-san"),
                          timeout))
    for tag, binary in BINARIES:
        tests.append(("counter-demo/%s" % tag, counter_test(binary), 30))
    tests.append(("python-by-hand", python_by_hand_test, 30))
    tests.append(("library/install", library_install_test, 120))
    for mode in ("restore", "leave-running"):
        tests.append(("bash-pipeline/" + mode, bash_pipeline_test(mode), 60))
        tests.append(("redis/" + mode, redis_test(mode), 60))
        tests.append(("sleep6/" + mode, sleep6_test(mode), 30))
    tests.append(("sqlite3/restore", sqlite_test, 60))
    tests += (test_files.tests() + test_jvm.tests() + test_netprogs.tests() +
              test_options.tests() + test_external.tests())
    tests += test_run.tests() + test_progress.tests()
    tests += test_incr.tests()
    tests += test_snapshot.tests()
    tests.append(("http-server/restore", http_server_test, 60))
    for name in ("sk_icmp", "sk_raw"):
        for mode in ("restore", "leave-running"):
            tests.append(("%s/netns/%s" % (name, mode), netns_workload_test(name, mode), 30))
        tests.append(("%s/netns/restore-san" % name,
                      netns_workload_test(name, "restore", san=True), 30))
    tests.append(("ip-monitor/restore", ip_monitor_test, 60))


    tests.append(("tcp-unlock/killed-dump", unlock_test, 60))
    for mode in ("restore", "leave-running", "killed-dump", "failed-restore"):
        tests.append(("tcp-netns-lock/%s" % mode, netns_lock_test(mode), 60))
    for family in ("4", "6"):
        for mode in ("restore", "leave-running", "failed"):
            tests.append(("tcp-game/v%s/%s" % (family, mode), game_test(family, mode), 90))
    for case, fn in BAD:
        for tag, binary in BINARIES:
            tests.append(("bad/%s/%s" % (case, tag),
                          (lambda ctx, fn=fn, binary=binary: fn(ctx, binary)), 20))
    return tests


def selected(name, pattern):
    if pattern is None:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatch(name, pattern)
    return pattern in name


def report(ctx):
    for r in ctx.runs:
        print("    $ %s" % r)
    for note in ctx.notes:
        print("    note: %s" % note)
    files = ["out.log", "err.log"] + sorted(
        n for n in os.listdir(ctx.dir) if n.endswith((".log", ".err")) and
        n not in ("out.log", "err.log"))
    for name in files:
        lines = lib.tail(ctx.path(name), 30)
        if lines:
            print("    --- last %d lines of %s:" % (len(lines), name))
            for line in lines:
                print("    | " + line)


def run_one(name, fn, timeout):
    workdir = os.path.join(TOP, re.sub(r"[^A-Za-z0-9_.-]", "_", name))
    os.makedirs(workdir)
    ctx = Ctx(name, workdir)
    lib.set_deadline(timeout)
    reason = None
    t0 = time.monotonic()
    try:
        fn(ctx)
    except Fail as e:
        reason = str(e)
    except Exception as e:
        reason = "harness error: %s: %s" % (type(e).__name__, e)
        ctx.notes.append(traceback.format_exc().replace("\n", "\n          "))
    finally:
        lib.set_deadline(None)
        left = [(p, (lib.cmdline(p) or b"").replace(b"\0", b" ").decode(errors="replace"))
                for p in lib.descendants() if lib.alive(p)]
        lib.kill_descendants()
        for undo in ctx.cleanups:
            try:
                undo()
            except OSError as e:
                reason = reason or "cleanup failed: %s" % e
    if left and reason is None:
        reason = "left processes running: %s" % ", ".join("%d (%s)" % x for x in left)
    if reason is None:
        print("PASS %s%s" % (name, " (not covered here: %s)" % ", ".join(ctx.uncovered)
                                 if ctx.uncovered else ""), flush=True)
        if VERBOSE:
            print("    took %.2f s" % (time.monotonic() - t0))
            for note in ctx.notes:
                print("    note: %s" % note)
        shutil.rmtree(workdir, ignore_errors=True)
        return True
    print("FAIL %s (%s)" % (name, reason))
    report(ctx)
    print("    work dir kept: %s" % workdir, flush=True)
    return False


def on_signal(sig, frame):
    raise KeyboardInterrupt("signal %d" % sig)


TOP = None
VERBOSE = False


def main():
    global TOP, VERBOSE
    args = sys.argv[1:]
    if args and args[0] == "-v":
        VERBOSE = True
        args = args[1:]
    pattern = args[0] if args else None
    if os.geteuid() != 0:
        print("run.py: the tests must run as root")
        print("0 passed, 1 failed")
        return 1
    lib.become_subreaper()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    TOP = tempfile.mkdtemp(prefix="cryo-test-")
    passed = failed = 0
    t0 = time.monotonic()
    try:
        tests = [t for t in all_tests() if selected(t[0], pattern)]
        print("cryo tests: %d to run, work dir %s" % (len(tests), TOP), flush=True)
        for name, fn, timeout in tests:
            if run_one(name, fn, timeout):
                passed += 1
            else:
                failed += 1
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        failed += 1
    finally:
        left = lib.kill_descendants()
        if left:
            print("killed leftover processes: %s" % left)
        if failed == 0:
            shutil.rmtree(TOP, ignore_errors=True)
    print("time: %.1f s" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

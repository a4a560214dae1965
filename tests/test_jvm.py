"""A JVM as a real program, run by tests/run.py (`make test`) as the tests
named jvm/...: `java JvmCounter.java count.txt` (tests/programs, default
options: some twenty threads, the JIT, a perf-data file in
/tmp/hsperfdata_USER that the JVM maps shared and holds an flock on through
the mapping alone, its fd closed), checkpointed with --file-locks while it
counts into a file, then restored (restore) or left running
(leave-running). Before and after, the flock must be the JVM's and held
through the mapping only; after, the count goes on, the JVM ends with 0
once `go` exists, having found its file holding every number once in
order, and removes its perf-data file as a JVM does on exit.

    python3 tests/run.py jvm/     only these
"""
import fcntl
import os
import re
import shutil
import signal
import time

import lib
from lib import Fail

COUNTER = os.path.join(lib.ROOT, "tests", "programs", "JvmCounter.java")


def perf_file(pid):
    user = os.environ.get("USER") or "root"
    return "/tmp/hsperfdata_%s/%d" % (user if os.getuid() else "root", pid)


def lock_lines(ino):
    """The /proc/locks holders' lines on inode ino."""
    out = []
    with open("/proc/locks") as f:
        for line in f:
            m = re.match(r"\d+: (\S+)\s+\S+\s+(\S+)\s+(-?\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+) ", line)
            if m and "->" not in line and int(m.group(4)) == ino:
                out.append((m.group(1), m.group(2), int(m.group(3))))
    return out


def check_perf_lock(pid, path, ino, what):
    """The JVM holds a write flock on its perf-data file through a shared
    mapping of it, with no fd of it open."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise Fail("%s: no perf-data file %s (%s)" % (what, path, e.strerror))
    if st.st_ino != ino:
        raise Fail("%s: %s is another file (inode %d, was %d)" % (what, path, st.st_ino, ino))
    held = lock_lines(ino)
    if held != [("FLOCK", "WRITE", pid)]:
        raise Fail("%s: the locks on %s are %r, expected the JVM's write flock" % (
            what, path, held))
    maps = lib.read_text("/proc/%d/maps" % pid)
    if not re.search(r"^\S+ rw-s \S+ \S+ %d\s+%s$" % (ino, re.escape(path)), maps, re.M):
        raise Fail("%s: pid %d does not map %s shared and writable" % (what, pid, path))
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == path:
                raise Fail("%s: pid %d has %s open on fd %s" % (what, pid, path, fd))
        except FileNotFoundError:
            pass
    # and it is a real lock: nobody else can take it
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        raise Fail("%s: another process could flock %s" % (what, path))
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


def count(path):
    try:
        return len(lib.read_text(path).splitlines())
    except OSError:
        return 0


def check_counting(ctx, pid, what):
    n = count(ctx.path("count.txt"))
    lib.wait_until(lambda: count(ctx.path("count.txt")) >= n + 20, 20,
                   "%s: waiting for the JVM to count on" % what)


def jvm_test(mode):
    def fn(ctx):
        java = shutil.which("java")
        if not java:
            raise Fail("java is not installed (make deps: default-jre-headless)")
        images = ctx.path("images")
        pid = lib.spawn([java, COUNTER, "count.txt"], cwd=ctx.dir, stdout=ctx.path("out.log"),
                        stderr="stdout", session="setsid")
        ctx.notes.append("JVM pid %d" % pid)
        lib.wait_until(lambda: os.path.exists(ctx.path("ready")) or lib.poll_pid(pid) is not None,
                       60, "waiting for the JVM to count")
        if lib.poll_pid(pid) is not None:
            raise Fail("the JVM ended before counting: %s" % lib.tail(ctx.path("out.log"), 3))
        path = perf_file(pid)
        ino = os.stat(path).st_ino
        check_perf_lock(pid, path, ino, "before the dump")
        tree = lib.tree_of(pid)
        ctx.notes.append("%d threads" % len(os.listdir("/proc/%d/task" % pid)))
        args = ["dump", "-t", pid, "-D", images, "--file-locks", "-v4", "-o",
                ctx.path("dump.log")]
        if mode == "leave-running":
            args.append("-R")
        r = ctx.cryo(lib.CRYO, args, "dump", limit=60)
        ctx.expect_ok(r, "cryo dump")
        ctx.notes.append("dump: %.0f ms" % r.ms)
        if mode == "restore":
            st = lib.wait_pid(pid, 10, "waiting for the dumped JVM to end")
            if not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL):
                raise Fail("the dumped JVM ended with %s" % lib.describe_status(st))
            lib.wait_until(lambda: all(lib.proc_state(p) is None for p in tree), 10,
                           "waiting for the dumped tree to end")
            if lock_lines(ino):
                raise Fail("the JVM's flock outlived it: %r" % lock_lines(ino))
            t0 = time.monotonic()
            r = ctx.cryo(lib.CRYO, ["restore", "-D", images, "-d", "-v4", "-o",
                                    ctx.path("restore.log")], "restore", limit=60)
            ctx.expect_ok(r, "cryo restore -d")
            ctx.notes.append("restore: %.0f ms" % ((time.monotonic() - t0) * 1000))
            lib.tracked.add(pid)
        if not lib.alive(pid):
            raise Fail("pid %d is not running after the checkpoint" % pid)
        check_perf_lock(pid, path, ino, "after the " + mode)
        check_counting(ctx, pid, "after the " + mode)
        with open(ctx.path("go"), "w"):
            pass
        st = lib.wait_pid(pid, 30, "waiting for the JVM to finish")
        text = lib.read_text(ctx.path("out.log"))
        if lib.exit_code(st) != 0 or "wl: check count ok" not in text:
            raise Fail("the JVM ended with %s: %s" % (lib.describe_status(st),
                                                        text.strip()[-300:]))
        ctx.notes.append(text.strip().splitlines()[-1])
        if os.path.exists(path):
            raise Fail("the JVM did not remove its perf-data file %s on exit" % path)
    return fn


def tests():
    return [("jvm/" + mode, jvm_test(mode), 120) for mode in ("restore", "leave-running")]

"""Tests of dump -R with a copy-on-write snapshot (src/snapshot.c), run by
tests/run.py as the tests named snapshot/...; the job is the workload
mem_stamp (tests/workloads/mem_stamp.c: a root of two writer threads and a
child process stamping 256 + 64 MiB of pages in order, about a million
pages a second, each checking the page holds the stamp of the pass before).

  snapshot/consistent   dump -R while it writes: the original goes on and
                        passes its checks, its own clock watcher's longest
                        gap (the frozen time as the job saw it) is under
                        1 s (load!), no snapshot child is left; then the images
                        are restored: the restored tree's writers find
                        every page as one instant left it, three passes.
  snapshot/incremental  pre-dump, then an incremental dump -R
                        --prev-images-dir --track-mem, while it writes:
                        both take a snapshot (pages written after the
                        release), the second refers to its parent; the
                        original passes its checks, and the incremental
                        checkpoint restores with every page of one instant.
  snapshot/cryo-killed  cryo SIGKILLed while it writes the pages (blocked on
                        a FIFO put where the root's pages image goes, after
                        the tree was released): the job goes on unharmed,
                        no snapshot child is left (running or zombie), and
                        nothing was committed.
  snapshot/flags-changed/ADVICE  a process madvises (DONTFORK, HUGEPAGE,
                        WIPEONFORK) a whole private mapping of its own in
                        the instant after cryo read its VMA flags and before
                        the freeze (a wait point of cryo's): the flags read
                        early were taken (the layout did not change), the
                        snapshot child shows otherwise, so the dump fails
                        with one line naming the pid and the mapping,
                        commits nothing, and the process goes on unharmed.
  snapshot/failed-after-release  the root's pages image cannot be created
                        (a directory in its place): the dump fails with
                        one line after the release, the job goes on
                        unharmed, no snapshot child is left, nothing
                        committed.

    python3 tests/run.py snapshot/     only these
"""
import os
import re
import signal
import sys
import time

import lib
from lib import Fail

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.join(ROOT, "build", "tests", "mem_stamp")
GAP_BOUND_MS = 1000  # 320 MiB of 4 KiB pages, 2 processes, 8 threads; 190-440 ms seen at load 10 on 2 cores
SNAPSHOT_COMM = "cryo-snapshot"


def start(ctx, args=()):
    if not os.access(WORKLOAD, os.X_OK):
        raise Fail("%s is not built (make workloads)" % WORKLOAD)
    pid = lib.spawn([WORKLOAD] + list(args), cwd=ctx.dir, stdout=ctx.path("out.log"), stderr="stdout",
                    session="setsid")
    ctx.runs.append(lib.Run([WORKLOAD], pid))

    def ready():
        if lib.poll_pid(pid) is not None:
            raise Fail("mem_stamp ended before it was ready: %s" % lib.tail(ctx.path("out.log")))
        return os.path.exists(ctx.path("ready"))
    lib.wait_until(ready, 60, "waiting for mem_stamp's ready file")
    time.sleep(0.3)
    return pid


def snapshot_children(pids):
    """Processes named SNAPSHOT_COMM whose parent is one of pids (zombies too)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = lib.read_text("/proc/%s/stat" % name)
        except OSError:
            continue
        m = re.match(r"\d+ \((.*)\) (\S) (\d+)", stat)
        if m and m.group(1) == SNAPSHOT_COMM and int(m.group(3)) in pids:
            found.append("%s (%s)" % (name, m.group(2)))
    return found


def no_snapshot_left(ctx, pids, what):
    try:
        lib.wait_until(lambda: not snapshot_children(pids), 15,
                       "waiting for the snapshot children to be reaped")
    except Fail:
        raise Fail("%s: snapshot children left: %s" % (what, snapshot_children(pids)))


def all_running(tree, what):
    """Every process of tree running: not gone, a zombie or stopped. The
    guardian holds one thread of a snapshot's parent in a trace stop for its
    injected wait4, and the reaped child leaves /proc before that thread is
    let go: a trace stop is waited out for 5 s, never longer."""
    def no_trace_stop():
        return all(lib.proc_state(p) != "t" for p in tree)
    try:
        lib.wait_until(no_trace_stop, 5, "waiting for the guardian to let go")
    except Fail:
        pass
    for p in tree:
        state = lib.proc_state(p)
        if state in (None, "Z", "X", "T", "t"):
            raise Fail("pid %d is not running %s (state %s)" % (p, what, state))


def check_out(ctx, want_checks=True):
    text = lib.read_text(ctx.path("out.log"))
    fails = [l for l in text.splitlines() if "wl: FAIL" in l]
    if fails:
        raise Fail("out.log: %s" % fails[0].strip())
    if want_checks and "wl: check root_writer0_consistent ok" not in text:
        raise Fail("out.log has no consistency check: %s" % lib.tail(ctx.path("out.log")))
    for line in text.splitlines():
        if "frozen gap" in line:
            ctx.notes.append(line.strip())


def finish(ctx, pid, who):
    with open(ctx.path("go"), "w"):
        pass
    st = lib.wait_pid(pid, 90, "waiting for %s to finish" % who)
    if lib.exit_code(st) != 0:
        raise Fail("%s ended with %s: %s" % (who, lib.describe_status(st),
                                              lib.tail(ctx.path("out.log"))))


def restore_checked(ctx, pid, kid, images):
    """The tree left running ends, then images restore it, its writers
    finding every page as one instant left it."""
    lib.wait_until(lambda: all(lib.proc_state(p) is None for p in [pid] + kid), 10,
                   "waiting for the original tree to end")
    r = ctx.cryo(lib.CRYO, ["restore", "-D", images, "-v4", "-o", ctx.path("restore.log")],
                 "restore", limit=90)
    ctx.expect_ok(r, "cryo restore (the restored mem_stamp's checks)")
    check_out(ctx)


def consistent_test(ctx):
    pid = start(ctx)
    kid = [p for p in lib.tree_of(pid) if p != pid]
    images = ctx.path("images")
    with open(ctx.path("gap-bound-ms"), "w") as f:
        f.write("%d\n" % GAP_BOUND_MS)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", images, "-R", "--display-stats", "-v4",
                            "-o", ctx.path("dump.log")], "dump", limit=120)
    ctx.expect_ok(r, "cryo dump -R")
    stats = lib.read_text(ctx.path("dump.out"))
    m = re.search(r"frozen_time_us: (\d+)", stats)
    ctx.notes.append("cryo's frozen_time_us: %s" % (m.group(1) if m else "?"))
    if "snapshot_time_us" not in stats:
        raise Fail("the dump took no snapshot: %s" % lib.tail(ctx.path("dump.log")))
    no_snapshot_left(ctx, set([pid] + kid), "after dump -R")
    all_running([pid] + kid, "after dump -R")
    finish(ctx, pid, "mem_stamp left running")
    check_out(ctx)
    with open(ctx.path("out-left-running.log"), "w") as f:
        f.write(lib.read_text(ctx.path("out.log")))
    time.sleep(1.0)  # the restored run's gap is longer than this
    # the restored tree: the bound is not for it (its gap is the time it was down)
    os.unlink(ctx.path("gap-bound-ms"))
    # the restored run writes out.log again from where it was at the dump
    restore_checked(ctx, pid, kid, images)
    m = re.search(r"frozen gap ([\d.]+) ms", lib.read_text(ctx.path("out.log")))
    if not m or float(m.group(1)) < 1000:
        raise Fail("out.log is not the restored run's (its gap would be the time it was "
                   "down): %s" % lib.tail(ctx.path("out.log")))


def incremental_test(ctx):
    pid = start(ctx, ["64"])
    kid = [p for p in lib.tree_of(pid) if p != pid]
    runs = (("pre-dump", "c0", []),
            ("dump", "c1", ["-R", "--prev-images-dir", "../c0", "--track-mem"]))
    for cmd, ck, extra in runs:
        r = ctx.cryo(lib.CRYO, [cmd, "-t", pid, "-D", ctx.path(ck), "--display-stats", "-v4",
                                "-o", ctx.path(ck + ".log")] + extra, ck, limit=120)
        ctx.expect_ok(r, "cryo %s %s" % (cmd, ck))
        stats = lib.read_text(ctx.path(ck + ".out"))
        if "written_after_release_us" not in stats:
            raise Fail("%s took no snapshot: %s" % (ck, lib.tail(ctx.path(ck + ".log"))))
        m = re.search(r"frozen_time_us: (\d+)", stats)
        ctx.notes.append("%s frozen_time_us: %s" % (ck, m.group(1) if m else "?"))
    if not os.path.islink(ctx.path("c1", "parent")):
        raise Fail("c1 has no parent link: not incremental")
    no_snapshot_left(ctx, set([pid] + kid), "after the incremental dump")
    all_running([pid] + kid, "after the incremental dump")
    finish(ctx, pid, "mem_stamp left running")
    check_out(ctx)
    restore_checked(ctx, pid, kid, ctx.path("c1"))


def unharmed_uncommitted(ctx, tree, images, what):
    """After a dump that did not end well: no snapshot child left, every
    process of the tree running, nothing committed, and the job then passes
    all its checks."""
    no_snapshot_left(ctx, set(tree), what)
    all_running(tree, what)
    if os.path.exists(os.path.join(images, "inventory.img")):
        raise Fail("a checkpoint was committed %s" % what)
    finish(ctx, tree[0], "mem_stamp")
    check_out(ctx)


def start_blocked(ctx, block):
    """mem_stamp, and an images directory where the root's pages image is
    taken by block(path) (a FIFO, a directory): (pid, its child, images)."""
    pid = start(ctx)
    kid = [p for p in lib.tree_of(pid) if p != pid]
    images = ctx.path("images")
    os.mkdir(images)
    block(os.path.join(images, ".pages-%d.img.part" % pid))
    return pid, kid, images


def cryo_killed_test(ctx):
    pid, kid, images = start_blocked(ctx, os.mkfifo)
    dump = lib.spawn([lib.CRYO, "dump", "-t", str(pid), "-D", images, "-R", "-v4", "-o",
                      ctx.path("dump.log")], cwd=ctx.dir, stdout=ctx.path("dump.out"),
                     stderr=ctx.path("dump.err"))
    try:
        lib.wait_until(lambda: "released the tree" in lib.read_text(ctx.path("dump.log")), 60,
                       "the dump releasing the tree")
        time.sleep(0.3)
        if lib.poll_pid(dump) is not None:
            raise Fail("the dump ended before it could be killed: %s" %
                       lib.tail(ctx.path("dump.err")))
        if not snapshot_children({pid}):
            raise Fail("no snapshot child while the pages are written")
        os.kill(dump, signal.SIGKILL)
        lib.wait_pid(dump, 10, "waiting for the killed cryo")
        dump = None
    finally:
        if dump:
            os.kill(dump, signal.SIGKILL)
            lib.wait_pid(dump, 10)
    unharmed_uncommitted(ctx, [pid] + kid, images, "after cryo was killed")


def failed_after_release_test(ctx):
    pid, kid, images = start_blocked(ctx, os.mkdir)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", images, "-R", "-v4", "-o",
                            ctx.path("dump.log")], "dump", limit=120)
    if lib.exit_code(r.status) == 0:
        raise Fail("the dump succeeded without its pages image")
    err = lib.read_text(ctx.path("dump.err")).strip().splitlines()
    if len(err) != 1 or "pages-%d.img" % pid not in err[0]:
        raise Fail("the failed dump said %r, not one line naming the pages image" % err)
    if "released the tree" not in lib.read_text(ctx.path("dump.log")):
        raise Fail("the dump failed before the release: %s" % lib.tail(ctx.path("dump.log")))
    unharmed_uncommitted(ctx, [pid] + kid, images, "after the failed dump")


FLIPPER = r"""
import mmap, os, sys, time
PROT = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC  # neighbours never merge with it
m = mmap.mmap(-1, 64 << 12, flags=mmap.MAP_PRIVATE, prot=PROT)
m.write(b"cryo" * (16 << 12))
import ctypes
base = ctypes.addressof(ctypes.c_char.from_buffer(m))
with open("addr.tmp", "w") as f:
    f.write("%x" % base)
os.rename("addr.tmp", "addr")
while not os.path.exists("flip"):
    time.sleep(0.005)
m.madvise(getattr(mmap, sys.argv[1], None) or {"MADV_WIPEONFORK": 18}[sys.argv[1]])
open("flipped", "w").close()
while not os.path.exists("done"):
    time.sleep(0.01)
ok = m[:4] == b"cryo" and m[-4:] == b"cryo"
print("mapping intact" if ok else "mapping changed")
sys.exit(0 if ok else 1)
"""


def vma_of(pid, addr):
    """The maps line of pid's VMA that starts at addr, or None."""
    for line in lib.read_text("/proc/%d/maps" % pid).splitlines():
        if int(line.split("-")[0], 16) == addr:
            return line
    return None


def flags_changed_test(advice):
    def fn(ctx):
        pid = lib.spawn([sys.executable, "-c", FLIPPER, advice], cwd=ctx.dir,
                        stdout=ctx.path("out.log"), stderr="stdout", session="setsid")
        ctx.runs.append(lib.Run([sys.executable, "-c", "FLIPPER", advice], pid))
        lib.wait_until(lambda: os.path.exists(ctx.path("addr")), 20, "the mapping's address")
        addr = int(lib.read_text(ctx.path("addr")), 16)
        if not vma_of(pid, addr) or not vma_of(pid, addr).split()[0].endswith(
                "%x" % (addr + (64 << 12))):
            raise Fail("the test mapping is not a VMA of its own: %s" % vma_of(pid, addr))
        images, go = ctx.path("images"), ctx.path("go")
        env = dict(os.environ, CRYO_TEST_WAIT_AT="dump-preread", CRYO_TEST_GO=go)
        dump = lib.spawn([lib.CRYO, "dump", "-t", str(pid), "-D", images, "-R", "-v4", "-o",
                          ctx.path("dump.log")], cwd=ctx.dir, stdout=ctx.path("dump.out"),
                         stderr=ctx.path("dump.err"), env=env)
        lib.wait_until(lambda: os.path.exists(go + ".waiting"), 20, "cryo at its wait point")
        touch(ctx.path("flip"))
        def flipped():
            if lib.poll_pid(pid) is not None:
                raise Fail("the process ended: %s" % lib.tail(ctx.path("out.log")))
            return os.path.exists(ctx.path("flipped"))
        lib.wait_until(flipped, 20, "the madvise")
        if advice != "MADV_DONTFORK" and vma_of(pid, addr) is None:
            raise Fail("the madvise changed the layout: the test cannot check the flags")
        touch(go)
        st = lib.wait_pid(dump, 60, "waiting for cryo dump")
        err = lib.read_text(ctx.path("dump.err")).strip().splitlines()
        log = lib.read_text(ctx.path("dump.log"))
        if "VMA flags as read before the freeze" not in log:
            raise Fail("the dump did not use the flags read before the freeze: %s" %
                       lib.tail(ctx.path("dump.log")))
        if lib.exit_code(st) == 0:
            raise Fail("the dump succeeded with flags read before %s" % advice)
        want = "pid %d changed the flags of its mapping at 0x%x" % (pid, addr)
        if len(err) != 1 or want not in err[0]:
            raise Fail("the failed dump said %r, not one line with %r" % (err, want))
        if os.path.exists(os.path.join(images, "inventory.img")):
            raise Fail("a checkpoint was committed")
        no_snapshot_left(ctx, {pid}, "after the failed dump")
        all_running([pid], "after the failed dump")
        touch(ctx.path("done"))
        st = lib.wait_pid(pid, 20, "waiting for the process to end")
        if lib.exit_code(st) != 0:
            raise Fail("the process: %s: %s" % (lib.describe_status(st),
                                                lib.tail(ctx.path("out.log"))))
    return fn


def touch(path):
    with open(path, "w"):
        pass


def tests():
    return [("snapshot/consistent", consistent_test, 180),
            ("snapshot/flags-changed/dontfork", flags_changed_test("MADV_DONTFORK"), 60),
            ("snapshot/flags-changed/hugepage", flags_changed_test("MADV_HUGEPAGE"), 60),
            ("snapshot/flags-changed/wipeonfork", flags_changed_test("MADV_WIPEONFORK"), 60),
            ("snapshot/incremental", incremental_test, 180),
            ("snapshot/cryo-killed", cryo_killed_test, 120),
            ("snapshot/failed-after-release", failed_after_release_test, 120)]

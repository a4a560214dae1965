"""Tests of CRIU's process options, run by tests/run.py (`make test`) as the
tests named options/...: each option's effect, not only its parsing.

  options/leave-stopped/dump      dump -s of a tree of processes with
                                  threads: once the dump exits, every
                                  thread of every process is stopped and
                                  stays so; SIGCONT lets the tree go on and
                                  pass its checks; then (for a workload
                                  whose files that run did not change) the
                                  checkpoint is restored and passes again.
  options/leave-stopped/restore   restore -s: the restored tree comes back
                                  stopped (every thread), and its parent
                                  (cryo) is told; SIGCONT resumes it at its
                                  saved instruction and it passes its checks.

    python3 tests/run.py options/     only these
"""
import os
import signal
import time

import lib
import test_files
from lib import Fail

WORKLOADS = ("threads", "tree_fdshare")  # five threads; a root with two children
# a workload that changed no file once it went on can be restored after
RESTORABLE_AFTER_RUN = ("threads",)


def thread_states(pid):
    """{tid: state letter} for every thread of pid and of its descendants."""
    states = {}
    for p in [pid] + lib.tree_of(pid):
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for tid in tids:
            st = lib.proc_state(int(tid))
            if st not in (None, "Z", "X"):
                states[int(tid)] = st
    return states


def expect_all_stopped(pid, what):
    states = thread_states(pid)
    if len(states) < 2:
        raise Fail("%s: pid %d has %d threads and children, expected several" % (
            what, pid, len(states)))
    running = {t: s for t, s in states.items() if s != "T"}
    if running:
        raise Fail("%s: not stopped: %r" % (what, running))
    return len(states)


def stays_stopped(pid, what, seconds=0.5):
    """Every thread is still stopped after a while: no SIGCONT came from cryo."""
    time.sleep(seconds)
    return expect_all_stopped(pid, what + " (%.1f s later)" % seconds)


def resume(pid):
    for p in [pid] + lib.tree_of(pid):
        os.kill(p, signal.SIGCONT)


def finish_restored(ctx, run, pid):
    """`go`; the restoring cryo (the tree's parent, without -d) exits with
    the root's status, which must be 0, and out.log has no FAIL."""
    with open(ctx.path("go"), "w"):
        pass
    st = lib.wait_pid(run.pid, 30, "waiting for the restored pid %d to finish" % pid)
    run.status = st
    text = lib.read_text(ctx.path("out.log"))
    if lib.exit_code(st) != 0 or "wl: FAIL" in text:
        raise Fail("restored pid %d ended with %s: %s" % (pid, lib.describe_status(st),
                                                          text.strip()[-300:]))


def leave_stopped_dump_test(ctx, workload):
    pid = test_files.start(ctx, workload)
    n = len(thread_states(pid))
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck"), "-s", "-v4", "-o",
                            ctx.path("dump.log")], "dump")
    ctx.expect_ok(r, "dump -s")
    if len(thread_states(pid)) != n:
        raise Fail("dump -s: the tree had %d threads, now %d" % (n, len(thread_states(pid))))
    stays_stopped(pid, "after dump -s")
    ctx.notes.append("%d threads left stopped" % n)
    resume(pid)
    test_files.finish(ctx, pid)
    if workload not in RESTORABLE_AFTER_RUN:
        return
    # the checkpoint made with -s restores like any other
    os.unlink(ctx.path("go"))
    run = restore(ctx, [], pid)
    finish_restored(ctx, run, pid)


def restore(ctx, extra, pid):
    args = [lib.CRYO, "restore", "-D", ctx.path("ck"), "-v4", "-o",
            ctx.path("restore.log")] + extra
    rpid = lib.spawn(args, cwd=ctx.dir, stdout=ctx.path("restore.out"),
                     stderr=ctx.path("restore.err"))
    run = lib.Run(args, rpid, ctx.path("restore.err"))
    ctx.runs.append(run)
    lib.tracked.add(pid)
    lib.wait_until(lambda: lib.alive(pid) or lib.poll_pid(rpid) is not None, 20,
                   "waiting for pid %d to be restored" % pid)
    if lib.poll_pid(rpid) is not None and not lib.alive(pid):
        raise Fail("cryo restore ended before pid %d was back: %s" % (
            pid, lib.tail(run.err, 2).strip()))
    return run


def leave_stopped_restore_test(ctx, workload):
    pid = test_files.start(ctx, workload)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck")], "dump")
    ctx.expect_ok(r, "dump")
    lib.wait_pid(pid, 10, "waiting for the dumped tree to end")
    run = restore(ctx, ["-s"], pid)
    lib.wait_until(lambda: len(thread_states(pid)) > 1 and
                   all(s == "T" for s in thread_states(pid).values()), 20,
                   "waiting for the restored tree to be stopped")
    n = stays_stopped(pid, "after restore -s")
    ctx.notes.append("%d threads restored stopped" % n)
    resume(pid)
    finish_restored(ctx, run, pid)


def tests():
    out = []
    for w in WORKLOADS:
        out.append(("options/leave-stopped/dump/" + w,
                    lambda ctx, w=w: leave_stopped_dump_test(ctx, w), 40))
        out.append(("options/leave-stopped/restore/" + w,
                    lambda ctx, w=w: leave_stopped_restore_test(ctx, w), 40))
    return out

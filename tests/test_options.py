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
  options/manage-cgroups/...      the threads workload in cgroups of the
                                  test's own, NAME/a in the v2 hierarchy
                                  and in the v1 pids one (pids.max 50),
                                  dumped, then restored by each mode: soft
                                  (the default; the cgroups removed: made
                                  again with pids.max 50; or existing with
                                  77: kept), full and props (77 set back to
                                  50), strict (made), none (left in cryo's
                                  cgroups); strict refuses existing ones
                                  and props missing ones, with one line and
                                  nothing left; dump --manage-cgroups=ignore
                                  records none; a thread alone in a v1
                                  cgroup of its own is refused by name.
  options/log-pid                 restore --log-pid -o restore.log of a
                                  tree: each restored process wrote its own
                                  restore.log.PID; without -o it is refused.
  options/evasive-devices         a process holding a /dev/null node it
                                  made and removed: dump --evasive-devices
                                  saves it as /dev/null (cryo show says so)
                                  and the restored fd reads /dev/null and
                                  takes writes; without it, the node is
                                  made again (fs_removed's case).
  options/file-validation         restore --file-validation=filesize of a
                                  process reading a file: refused, naming
                                  it, once the file is shorter; restored
                                  once it is whole again; =buildid is
                                  refused with one line.
  options/config                  dump --config FILE (CRIU's syntax: a
                                  comment, leave-running, a quoted log
                                  file name, verbosity 4): the tree goes on
                                  running and the log is at that name, in
                                  debug; --no-leave-running on the command
                                  line overrides the file (the tree is
                                  killed); a line with an unclosed quote or
                                  a missing file is refused with one line.

    python3 tests/run.py options/     only these
"""
import json
import os
import signal
import sys
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


def restore(ctx, extra, pid, ck="ck", binary=lib.CRYO):
    args = [binary, "restore", "-D", ctx.path(ck), "-v4", "-o",
            ctx.path("restore.log")] + extra
    rpid = lib.spawn(args, cwd=ctx.dir, stdout=ctx.path("restore.out"),
                     stderr=ctx.path("restore.err"))
    run = lib.Run(args, rpid, ctx.path("restore.err"))
    ctx.runs.append(run)
    lib.tracked.add(pid)
    done = "restored pid %d in " % pid

    def restored():
        return done in lib.read_text(ctx.path("restore.log")) or lib.poll_pid(rpid) is not None
    lib.wait_until(restored, 20, "waiting for pid %d to be restored" % pid)
    if done not in lib.read_text(ctx.path("restore.log")):
        raise Fail("cryo restore ended before pid %d was back (%s): %s" % (
            pid, lib.describe_status(lib.poll_pid(rpid)), " ".join(lib.tail(run.err, 2)).strip()))
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
    out += [("options/timeout", timeout_test, 40),
            ("options/display-stats", display_stats_test, 40),
            ("options/work-dir", work_dir_test, 40),
            ("options/log-pid", log_pid_test, 40),
            ("options/evasive-devices", evasive_devices_test, 40),
            ("options/file-validation", file_validation_test, 40),
            ("options/config", config_test, 40)]
    return out + cgroup_tests()


# ---- --manage-cgroups ----

CG_V2 = "/sys/fs/cgroup/unified"  # this machine's v2 hierarchy (hybrid layout)
CG_PIDS = "/sys/fs/cgroup/pids"   # a v1 hierarchy with a property to save


def cgroup_roots():
    """The v2 and v1-pids mounts, if this machine has them as the tests expect."""
    found = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, sup = left.split(), right.split()
            if fields[3] != "/":
                continue
            if sup[0] == "cgroup2":
                found.setdefault("v2", fields[4])
            elif sup[0] == "cgroup" and "pids" in sup[2].split(","):
                found["pids"] = fields[4]
    return found


class Cgroups:
    """The test's own cgroups, NAME/a in the v2 and the v1 pids hierarchy;
    all removed at the end, whatever happened."""

    def __init__(self, ctx):
        roots = cgroup_roots()
        if "v2" not in roots or "pids" not in roots:
            raise Fail("this machine has no cgroup2 mount or no v1 pids hierarchy (%r)" % roots)
        name = "cryo-test-%d" % os.getpid()
        self.v2 = os.path.join(roots["v2"], name)
        self.pids = os.path.join(roots["pids"], name)
        self.rel = "/%s/a" % name
        ctx.cleanups.append(self.remove)

    def make(self, pids_max):
        for d in (self.v2, self.pids):
            os.makedirs(os.path.join(d, "a"), exist_ok=True)
        with open(os.path.join(self.pids, "a", "pids.max"), "w") as f:
            f.write(str(pids_max))

    def pids_max(self):
        with open(os.path.join(self.pids, "a", "pids.max")) as f:
            return f.read().strip()

    def exists(self):
        return [d for d in (self.v2, self.pids) if os.path.isdir(os.path.join(d, "a"))]

    def enter(self, pid):
        for d in (self.v2, self.pids):
            with open(os.path.join(d, "a", "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def remove(self):
        for d in (self.v2, self.pids):
            for sub in (os.path.join(d, "a"), d):
                try:
                    os.rmdir(sub)
                except FileNotFoundError:
                    pass

    def unmake(self):
        self.remove()
        if self.exists():
            raise Fail("cannot remove the test's cgroups %r" % self.exists())


def cgroups_of(pid):
    """{hierarchy: path} of pid ("" for v2)."""
    out = {}
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, h, p = line.rstrip("\n").split(":", 2)
            out[h] = p
    return out


def expect_in(pid, cg, inside, what):
    now = cgroups_of(pid)
    for h in ("", "pids"):
        if (now.get(h) == cg.rel) != inside:
            raise Fail("%s: pid %d is in %s:%s, expected %s %s" % (
                what, pid, h or "v2", now.get(h), "" if inside else "not", cg.rel))
    for tid in os.listdir("/proc/%d/task" % pid):
        if cgroups_of(int(tid)) != now:
            raise Fail("%s: thread %s is in %r, its process in %r" % (
                what, tid, cgroups_of(int(tid)), now))


def dump_in_cgroups(ctx, cg, existing):
    """The threads workload in the test's cgroups (pids.max 50), dumped;
    then the cgroups are removed (existing None) or get pids.max existing."""
    pid = test_files.start(ctx, "threads")
    cg.make(50)
    cg.enter(pid)
    expect_in(pid, cg, True, "before the dump")
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck"), "-v4", "-o",
                            ctx.path("dump.log")], "dump")
    ctx.expect_ok(r, "dump")
    lib.wait_pid(pid, 10, "waiting for the dumped workload to end")
    if existing is None:
        cg.unmake()
    else:
        cg.make(existing)
    return pid


def restore_cg(ctx, pid, cg, mode, pids_max_now, want_max, inside):
    extra = ["--manage-cgroups=" + mode] if mode else []
    run = restore(ctx, extra, pid)
    what = "restore %s" % (extra or "(default mode)")
    expect_in(pid, cg, inside, what)
    if inside and cg.pids_max() != want_max:
        raise Fail("%s: pids.max is %s, expected %s (it was %s before the restore)" % (
            what, cg.pids_max(), want_max, pids_max_now))
    finish_restored(ctx, run, pid)


def cgroup_restore_test(mode, existing, want_max, inside=True):
    """mode: the restore's --manage-cgroups (None: not given); existing: the
    pids.max the cgroups have at the restore (None: they were removed)."""
    def fn(ctx):
        cg = Cgroups(ctx)
        pid = dump_in_cgroups(ctx, cg, existing)
        restore_cg(ctx, pid, cg, mode, existing, want_max, inside)
        ctx.notes.append("restored in %r" % (cgroups_of(os.getpid()) if not inside else cg.rel))
    return fn


def cgroup_refused_test(mode, existing, mention):
    def fn(ctx):
        cg = Cgroups(ctx)
        pid = dump_in_cgroups(ctx, cg, existing)
        r = ctx.cryo(lib.CRYO, ["restore", "-D", ctx.path("ck"), "--manage-cgroups=" + mode],
                     "restore")
        err = lib.read_text(r.err).strip().splitlines()
        if lib.exit_code(r.status) != 1 or len(err) != 1 or mention not in err[0]:
            raise Fail("restore --manage-cgroups=%s: %s, %r (expected one line with %r)" % (
                mode, lib.describe_status(r.status), err, mention))
        if lib.alive(pid):
            raise Fail("the refused restore left pid %d" % pid)
        if existing is None and cg.exists():
            raise Fail("the refused restore made %r" % cg.exists())
        ctx.notes.append("refused: " + err[0])
    return fn


def cgroup_ignore_test(ctx):
    cg = Cgroups(ctx)
    pid = test_files.start(ctx, "threads")
    cg.make(50)
    cg.enter(pid)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck"), "--manage-cgroups=ignore"],
                 "dump")
    ctx.expect_ok(r, "dump --manage-cgroups=ignore")
    lib.wait_pid(pid, 10, "waiting for the dumped workload to end")
    if os.path.exists(ctx.path("ck", "cgroup.img")):
        raise Fail("dump --manage-cgroups=ignore wrote cgroup.img")
    run = restore(ctx, [], pid)
    expect_in(pid, cg, False, "restore of a dump made with --manage-cgroups=ignore")
    finish_restored(ctx, run, pid)


def cgroup_thread_apart_test(ctx):
    """One thread moved alone into a v1 cgroup (its tasks file): refused by
    name, the workload left running untouched."""
    cg = Cgroups(ctx)
    pid = test_files.start(ctx, "threads")
    cg.make(50)
    tid = max(int(t) for t in os.listdir("/proc/%d/task" % pid))
    with open(os.path.join(cg.pids, "a", "tasks"), "w") as f:
        f.write(str(tid))
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck")], "dump")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "thread %d" % tid not in err[0]:
        raise Fail("dump of a thread in a cgroup of its own: %s, %r" % (
            lib.describe_status(r.status), err))
    ctx.notes.append("refused: " + err[0])
    with open(os.path.join(os.path.dirname(cg.pids), "cgroup.procs"), "w") as f:
        f.write(str(pid))  # all threads together again, then the workload's checks
    test_files.finish(ctx, pid)


def cgroup_tests():
    return [
        # soft (the default): missing cgroups made, with the saved limit
        ("options/manage-cgroups/default-missing", cgroup_restore_test(None, None, "50"), 40),
        # soft: existing cgroups keep their own limit
        ("options/manage-cgroups/soft-existing", cgroup_restore_test("soft", 77, "77"), 40),
        # full: existing cgroups get the saved limit
        ("options/manage-cgroups/full-existing", cgroup_restore_test("full", 77, "50"), 40),
        ("options/manage-cgroups/strict-missing", cgroup_restore_test("strict", None, "50"), 40),
        ("options/manage-cgroups/props-existing", cgroup_restore_test("props", 77, "50"), 40),
        # none: the processes stay in cryo's cgroups
        ("options/manage-cgroups/none", cgroup_restore_test("none", 77, "77", inside=False), 40),
        ("options/manage-cgroups/strict-refuses-existing",
         cgroup_refused_test("strict", 77, "exists already (--manage-cgroups=strict)"), 40),
        ("options/manage-cgroups/props-refuses-missing",
         cgroup_refused_test("props", None, "does not exist (--manage-cgroups=props"), 40),
        ("options/manage-cgroups/dump-ignore", cgroup_ignore_test, 40),
        ("options/manage-cgroups/dump-refuses-thread-apart", cgroup_thread_apart_test, 40),
    ]


# ---- --display-stats, -W/--work-dir ----

def printed_stats(path, title):
    """{field: int} of the block cryo printed under `title` in path."""
    lines = lib.read_text(path).splitlines()
    if title not in lines:
        raise Fail("%r not printed: %r" % (title, lines[:5]))
    out = {}
    for line in lines[lines.index(title) + 1:]:
        if not line.startswith("  "):
            break
        k, _, v = line.strip().partition(": ")
        out[k] = int(v)
    return out


def image_stats(ctx, images, name):
    r = ctx.cryo(lib.CRYO, ["show", "--json", images], "show")
    ctx.expect_ok(r, "show --json")
    with open(ctx.path("show.out")) as f:
        data = json.load(f)
    found = data["images"].get(name) or data.get(name)
    if not found:
        raise Fail("cryo show has no %s: %r" % (name, list(data["images"])))
    return found[0] if isinstance(found, list) else found


def display_stats_test(ctx):
    pid = test_files.start(ctx, "threads")
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck"), "--display-stats"], "dump")
    ctx.expect_ok(r, "dump --display-stats")
    lib.wait_pid(pid, 10, "waiting for the dumped workload to end")
    shown = printed_stats(ctx.path("dump.out"), "dump statistics:")
    saved = image_stats(ctx, ctx.path("ck"), "stats-dump")
    if shown != saved or not shown.get("pages_written"):
        raise Fail("dump --display-stats printed %r, the checkpoint's stats-dump is %r" % (
            shown, saved))
    run = restore(ctx, ["--display-stats"], pid)
    finish_restored(ctx, run, pid)
    shown = printed_stats(ctx.path("restore.out"), "restore statistics:")
    saved = image_stats(ctx, ctx.path("ck"), "stats-restore")
    if shown != saved or not shown.get("pages_restored"):
        raise Fail("restore --display-stats printed %r, stats-restore is %r" % (shown, saved))
    ctx.notes.append("pages written %d, restored %d" % (
        saved.get("pages_restored", 0), shown["pages_restored"]))


def work_dir_test(ctx):
    os.makedirs(ctx.path("wd"))
    pid = test_files.start(ctx, "threads")
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck2"), "-W", ctx.path("nowhere")],
                 "refused")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "nowhere" not in err[0]:
        raise Fail("dump -W of a missing dir: %s, %r" % (lib.describe_status(r.status), err))
    if os.path.exists(ctx.path("ck2")) or lib.proc_state(pid) in (None, "T", "t"):
        raise Fail("dump -W of a missing dir touched something")
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", "ck", "-W", "wd", "-o", "dump.log",
                            "-v4"], "dump")
    ctx.expect_ok(r, "dump -W wd -o dump.log")
    lib.wait_pid(pid, 10, "waiting for the dumped workload to end")
    if not os.path.exists(ctx.path("wd", "dump.log")) or os.path.exists(ctx.path("dump.log")):
        raise Fail("dump -W wd -o dump.log: %r in wd, %r here" % (
            os.listdir(ctx.path("wd")), sorted(os.listdir(ctx.dir))))
    if not os.path.exists(ctx.path("ck", "inventory.img")):
        raise Fail("dump -W wd -D ck: the images are not in ./ck")
    args = ["-W", "wd", "--pidfile", "root.pid", "-o", "restore.log", "-v4", "-d"]
    r = ctx.cryo(lib.CRYO, ["restore", "-D", ctx.path("ck")] + args, "restore-d")
    ctx.expect_ok(r, "restore " + " ".join(args))
    lib.tracked.add(pid)
    if lib.read_text(ctx.path("wd", "root.pid")).strip() != str(pid):
        raise Fail("restore -W wd --pidfile root.pid: wd/root.pid has %r, want %d" % (
            lib.read_text(ctx.path("wd", "root.pid")), pid))
    if "restored pid %d" % pid not in lib.read_text(ctx.path("wd", "restore.log")):
        raise Fail("wd/restore.log does not say the pid was restored")
    with open(ctx.path("go"), "w"):
        pass
    lib.wait_until(lambda: not lib.alive(pid), 20, "waiting for the restored workload")
    test_files_check = lib.read_text(ctx.path("out.log"))
    if "wl: FAIL" in test_files_check or "wl: done, 0 failure(s)" not in test_files_check:
        raise Fail("the restored workload: %s" % test_files_check.strip()[-300:])


# ---- --timeout ----

def timeout_test(ctx):
    """A parent held in vfork (state D, no signal wakes it): dump --timeout 1
    gives up after about a second with one line naming it and its state,
    and once its child ends the parent goes on, unharmed (not stopped, not
    killed)."""
    argv = [os.path.join(test_files.WL_BIN, "vfork_stuck")]
    pid = lib.spawn(argv, cwd=ctx.dir, stdout=ctx.path("out.log"), stderr="stdout",
                    session="setsid")
    lib.wait_until(lambda: os.path.exists(ctx.path("ready")), 20, "waiting for the vfork child")
    kids = lib.tree_of(pid)
    lib.wait_until(lambda: lib.proc_state(pid) == "D", 5, "waiting for the parent to be in D")
    t0 = time.monotonic()
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck"), "--timeout", "1"], "dump")
    took = time.monotonic() - t0
    err = lib.read_text(r.err).strip().splitlines()
    if (lib.exit_code(r.status) != 1 or len(err) != 1 or
            "pid %d did not stop within 1 s (state D" % pid not in err[0]):
        raise Fail("dump --timeout 1 of a vfork parent: %s after %.1f s, %r" % (
            lib.describe_status(r.status), took, err))
    if not 0.9 < took < 5:
        raise Fail("dump --timeout 1 gave up after %.1f s" % took)
    if os.path.exists(ctx.path("ck", "inventory.img")):
        raise Fail("the refused dump left a checkpoint")
    ctx.notes.append("%.2f s: %s" % (took, err[0]))
    for k in kids:
        os.kill(k, signal.SIGKILL)
    st = lib.wait_pid(pid, 10, "waiting for the parent to go on")
    if lib.exit_code(st) != 0 or not os.path.exists(ctx.path("resumed")):
        raise Fail("the vfork parent ended with %s after the refused dump" % (
            lib.describe_status(st)))


# ---- --log-pid ----

def log_pid_test(ctx):
    pid = test_files.start(ctx, "tree_fdshare")
    pids = [pid] + lib.tree_of(pid)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck")], "dump")
    ctx.expect_ok(r, "dump")
    lib.wait_pid(pid, 10, "waiting for the dumped tree to end")
    r = ctx.cryo(lib.CRYO, ["restore", "-D", ctx.path("ck"), "--log-pid"], "refused")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "--log-file" not in err[0]:
        raise Fail("restore --log-pid without -o: %s, %r" % (lib.describe_status(r.status), err))
    run = restore(ctx, ["--log-pid"], pid)
    finish_restored(ctx, run, pid)
    for p in pids:
        text = lib.read_text(ctx.path("restore.log.%d" % p))
        if "pid %d: its own part of the restore logs here" % p not in text:
            raise Fail("restore.log.%d does not hold pid %d's log: %r" % (p, p, text[:200]))
    if "its own part" in lib.read_text(ctx.path("restore.log")):
        raise Fail("a restored process logged into cryo's own restore.log")
    ctx.notes.append("%d per-process logs" % len(pids))


# ---- --evasive-devices ----

EVASIVE_WL = r"""
import os, sys, time
os.mknod("mynull", 0o20640, os.makedev(1, 3))
fd = os.open("mynull", os.O_RDWR)
os.unlink("mynull")
open("ready", "w").close()
while not os.path.exists("go"):
    time.sleep(0.01)
link = os.readlink("/proc/self/fd/%d" % fd)
n = os.write(fd, b"abc")
ok = link == "/dev/null" and n == 3 and os.read(fd, 8) == b""
print("wl: %s evasive: fd reads %s, wrote %d" % ("check" if ok else "FAIL", link, n))
sys.exit(0 if ok else 1)
"""


def evasive_devices_test(ctx):
    pid = start_script(ctx, EVASIVE_WL)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck"), "--evasive-devices"],
                 "dump")
    ctx.expect_ok(r, "dump --evasive-devices")
    lib.wait_pid(pid, 10, "waiting for the dumped workload to end")
    r = ctx.cryo(lib.CRYO, ["show", ctx.path("ck")], "show")
    shown = lib.read_text(ctx.path("show.out"))
    if "/dev/null" not in shown or "removed device node" in shown:
        raise Fail("the checkpoint does not hold the device as /dev/null: %s" % shown[-300:])
    run = restore(ctx, [], pid)
    finish_restored(ctx, run, pid)
    ctx.notes.append(lib.read_text(ctx.path("out.log")).strip().splitlines()[-1])


# ---- --file-validation ----

READER_WL = r"""
import os, sys, time
f = open("data", "rb")
first = f.read(10)
open("ready", "w").close()
while not os.path.exists("go"):
    time.sleep(0.01)
rest = f.read()
ok = first + rest == bytes(range(100))
print("wl: %s data: %d bytes read" % ("check" if ok else "FAIL", len(first + rest)))
sys.exit(0 if ok else 1)
"""


def start_script(ctx, text):
    with open(ctx.path("wl.py"), "w") as f:
        f.write(text)
    pid = lib.spawn([sys.executable, ctx.path("wl.py")], cwd=ctx.dir,
                    stdout=ctx.path("out.log"), stderr="stdout", session="setsid")
    lib.wait_until(lambda: os.path.exists(ctx.path("ready")) or lib.poll_pid(pid) is not None,
                   20, "waiting for the workload to be ready")
    return pid


def refused(ctx, args, tag, mention, pid):
    r = ctx.cryo(lib.CRYO, ["restore", "-D", ctx.path("ck")] + args, tag)
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or mention not in err[0]:
        raise Fail("restore %s: %s, %r" % (" ".join(args), lib.describe_status(r.status), err))
    if lib.alive(pid):
        raise Fail("restore %s was refused but pid %d exists" % (" ".join(args), pid))
    return err[0]


def file_validation_test(ctx):
    with open(ctx.path("data"), "wb") as f:
        f.write(bytes(range(100)))
    pid = start_script(ctx, READER_WL)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck"),
                            "--file-validation=filesize"], "dump")
    ctx.expect_ok(r, "dump --file-validation=filesize")
    lib.wait_pid(pid, 10, "waiting for the dumped workload to end")
    refused(ctx, ["--file-validation=buildid"], "buildid", "buildid", pid)
    os.truncate(ctx.path("data"), 50)
    line = refused(ctx, ["--file-validation=filesize"], "short", "shrank", pid)
    with open(ctx.path("data"), "wb") as f:
        f.write(bytes(range(100)))
    run = restore(ctx, ["--file-validation=filesize"], pid)
    finish_restored(ctx, run, pid)
    ctx.notes.append(line)


# ---- --config ----

def config_test(ctx):
    with open(ctx.path("good.conf"), "w") as f:
        f.write("# options for cryo, as for criu\nleave-running   # keep it\n"
                "log-file \"my dump.log\"\nverbosity 4\n")
    with open(ctx.path("bad.conf"), "w") as f:
        f.write("tcp-established\nlog-file \"unclosed\n")
    pid = test_files.start(ctx, "threads")
    for conf, mention in (("bad.conf", "bad.conf:2"), ("missing.conf", "missing.conf")):
        r = ctx.cryo(lib.CRYO, ["dump", "--config", ctx.path(conf), "-t", pid, "-D",
                                ctx.path("ck0")], "refused")
        err = lib.read_text(r.err).strip().splitlines()
        if lib.exit_code(r.status) != 1 or len(err) != 1 or mention not in err[0]:
            raise Fail("dump --config %s: %s, %r" % (conf, lib.describe_status(r.status), err))
    r = ctx.cryo(lib.CRYO, ["dump", "--config", ctx.path("good.conf"), "-t", pid, "-D",
                            ctx.path("ck")], "dump")
    ctx.expect_ok(r, "dump --config good.conf")
    log = lib.read_text(ctx.path("my dump.log"))
    if not lib.alive(pid) or "collected the state of pid %d" % pid not in log:
        raise Fail("dump --config: leave-running or the log file (%d bytes) not taken" % (
            len(log)))
    r = ctx.cryo(lib.CRYO, ["dump", "--config=" + ctx.path("good.conf"), "--no-leave-running",
                            "-t", pid, "-D", ctx.path("ck2")], "dump2")
    ctx.expect_ok(r, "dump --config good.conf --no-leave-running")
    lib.wait_pid(pid, 10, "waiting for the tree the second dump kills")
    run = restore(ctx, [], pid)
    finish_restored(ctx, run, pid)

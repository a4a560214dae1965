"""Tests of incremental checkpoints (pre-dump, --prev-images-dir,
--track-mem), run by tests/run.py (`make test`) as the tests named incr/...

  incr/chain            the mem_incr workload (a root with two threads, a
                        kid from the start and one forked at step 2; about
                        1% of each process's pages written per step, VMAs
                        made, grown, moved, shrunk and unmapped, pages
                        dropped with MADV_DONTNEED, a THP region, shared
                        memory written by the kid, a page filled by
                        read(2)): pre-dump, three steps each followed by an
                        incremental pre-dump, a fourth step and a dump that
                        kills the tree; every incremental checkpoint holds
                        a few % of the pages and refers to the rest; the
                        kid forked at step 2 is saved in full at step 2;
                        the final checkpoint restores with every page
                        right, and so does a pre-dump in the middle of the
                        chain; no cryo-track holder outlives the tree.
  incr/chain/san        the same with cryo built with ASan and UBSan.
  incr/refused          a chain whose parent is corrupted (a byte of its
                        pages), missing, or replaced since: the restore is
                        refused with one line naming it, and nothing is
                        created (the root's pid stays free).
  incr/tracking-gone    the holder of a pre-dump killed: the next dump
                        says so and writes a full image, which restores;
                        a dump -R without --track-mem armed nothing: its
                        child checkpoint says so and is full.
  incr/other-userfaultfd  a process holding a userfaultfd of its own is
                        refused by name and goes on; a second pre-dump
                        without parent (the first one's tracking still
                        held) warns, arms nothing, and its child dump is
                        full (and restores).
  incr/exec             a process calling execve between checkpoints: the
                        next one is full and says tracking starts again;
                        two later it is incremental again, and restores.
  incr/measure          a 256 MiB job, 1% of its pages written: bytes,
                        time and pages read of the incremental dump
                        against a full one (notes; the incremental must
                        write and read under 5% of the full one).

    python3 tests/run.py incr/     only these
"""
import os
import re
import sys
import time

import lib
import test_files
import test_options
from lib import Fail

STAT = re.compile(r"^\s+(\w+): (\d+)$", re.M)


def stats_of(out_path):
    return {k: int(v) for k, v in STAT.findall(lib.read_text(out_path))}


def checkpoint(ctx, cmd, pid, ck, parent=None, extra=(), binary=lib.CRYO):
    """cryo CMD -t PID -D CK [--prev-images-dir ../PARENT]: its statistics."""
    args = [cmd, "-t", pid, "-D", ctx.path(ck), "--display-stats", "-v2", "-o",
            ctx.path(ck + ".log")] + list(extra)
    if parent:
        args += ["--prev-images-dir", "../" + parent]
    r = ctx.cryo(binary, args, ck, limit=60)
    ctx.expect_ok(r, "%s %s" % (cmd, ck))
    return stats_of(ctx.path(ck + ".out"))


def holders():
    """The cryo-track processes among the test's descendants."""
    out = []
    for p in lib.descendants():
        try:
            with open("/proc/%d/comm" % p) as f:
                if f.read().strip() == "cryo-track" and lib.alive(p):
                    out.append(p)
        except OSError:
            pass
    return out


def step(ctx, s, roles):
    with open(ctx.path("step%d" % s), "w"):
        pass
    names = [ctx.path("done%d-%s" % (s, r)) for r in roles]
    lib.wait_until(lambda: all(os.path.exists(n) for n in names), 30,
                   "waiting for step %d of %s" % (s, ",".join(roles)))
    os.unlink(ctx.path("step%d" % s))


def expect_small(ctx, name, st, full):
    written = st.get("pages_written", 0)
    if not st.get("pages_in_parent"):
        raise Fail("%s: no page refers to the parent: %s" % (name, st))
    # what was not tracked (new VMAs, a kid forked since) is saved in full
    if (written - st.get("pages_untracked", 0)) * 10 > full:
        raise Fail("%s wrote %d pages; the full checkpoint %d" % (name, written, full))
    ctx.notes.append("%s: %d pages written, %d in the parent, %d read, %d untracked" % (
        name, written, st["pages_in_parent"], st.get("pages_read", 0),
        st.get("pages_untracked", 0)))


def expect_snapshot(name, st):
    """pre-dump (a dump -R) writes its pages from a copy-on-write snapshot
    once the tree runs again, incremental or not (snapshot.c)."""
    if "snapshot_time_us" not in st or "written_after_release_us" not in st:
        raise Fail("%s took no snapshot: its pages were written frozen: %s" % (name, st))


def restore_and_check(ctx, ck, pid, binary=lib.CRYO):
    for name in os.listdir(ctx.dir):
        if name == "go":
            os.unlink(ctx.path(name))
    run = test_options.restore(ctx, [], pid, ck=ck, binary=binary)
    test_options.finish_restored(ctx, run, pid)


def no_holder_left(what):
    lib.wait_until(lambda: not holders(), 10, "cryo-track holders to exit " + what)


def chain_test(ctx, binary=lib.CRYO):
    pid = test_files.start(ctx, "mem_incr")
    st = checkpoint(ctx, "pre-dump", pid, "c0", binary=binary)
    expect_snapshot("pre-dump c0", st)
    full = st["pages_written"]
    if len(holders()) != 1:
        raise Fail("pre-dump: %d cryo-track holders, expected 1" % len(holders()))
    roles = ["main", "kid1"]
    for s in (1, 2, 3):
        if s == 2:
            roles.append("kid2")
        step(ctx, s, roles)
        st = checkpoint(ctx, "pre-dump", pid, "c%d" % s, "c%d" % (s - 1), binary=binary)
        expect_small(ctx, "pre-dump c%d" % s, st, full)
        expect_snapshot("pre-dump c%d" % s, st)
        if s == 2 and st.get("pages_untracked", 0) < 2048:
            raise Fail("c2: the kid forked since c1 was not saved in full: %s" % st)
        if len(holders()) != 1:
            raise Fail("c%d: %d cryo-track holders, expected 1" % (s, len(holders())))
    step(ctx, 4, roles)
    st = checkpoint(ctx, "dump", pid, "c4", "c3", binary=binary)
    expect_small(ctx, "dump c4", st, full)
    lib.wait_pid(pid, 10, "the dumped tree to end")
    no_holder_left("after the tree was killed")
    if os.readlink(ctx.path("c4", "parent")) != "../c3":
        raise Fail("c4/parent is not a link to ../c3")
    r = ctx.cryo(lib.CRYO, ["show", ctx.path("c4")], "show", limit=60)
    ctx.expect_ok(r, "cryo show c4")
    if "in_parent: true" not in lib.read_text(ctx.path("show.out")) or "parent_dir" not in lib.read_text(ctx.path("show.out")):
        raise Fail("cryo show c4 shows no chain")
    restore_and_check(ctx, "c4", pid, binary)
    # any checkpoint of the chain restores, at its own moment
    restore_and_check(ctx, "c2", pid, binary)


def corrupt_page(path):
    with open(path, "r+b") as f:
        f.seek(4096 + 123)
        b = f.read(1)
        f.seek(4096 + 123)
        f.write(bytes([b[0] ^ 0x5A]))


def expect_refused(ctx, ck, pid, words, tag):
    r = ctx.cryo(lib.CRYO, ["restore", "-D", ctx.path(ck)], tag, limit=60)
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or not err or not all(w in err[-1] for w in words):
        raise Fail("restore of %s (%s): %s: %s" % (ck, tag, lib.describe_status(r.status),
                                                   err[-1:] if err else "no message"))
    if lib.proc_state(pid) is not None:
        raise Fail("restore of %s (%s) refused, but pid %d exists" % (ck, tag, pid))
    if len(err) != 1:
        raise Fail("restore of %s (%s): %d lines, expected one: %s" % (ck, tag, len(err), err))
    ctx.notes.append("%s: %s" % (tag, err[-1]))


def refused_test(ctx):
    pid = test_files.start(ctx, "mem_incr")
    checkpoint(ctx, "pre-dump", pid, "c0")
    step(ctx, 1, ["main", "kid1"])
    # another checkpoint of the same tree, of another moment, to put in c0's place
    checkpoint(ctx, "dump", pid, "other", extra=["-R"])
    checkpoint(ctx, "dump", pid, "c1", "c0")
    lib.wait_pid(pid, 10, "the dumped tree to end")
    no_holder_left("after the tree was killed")
    pages = ctx.path("c0", "pages-%d.img" % pid)
    saved = open(pages, "rb").read()
    corrupt_page(pages)
    expect_refused(ctx, "c1", pid, ["corrupted", "c0"], "corrupt")
    with open(pages, "wb") as f:
        f.write(saved)
    os.rename(ctx.path("c0"), ctx.path("c0.away"))
    expect_refused(ctx, "c1", pid, ["parent", "c0"], "missing")
    os.rename(ctx.path("other"), ctx.path("c0"))
    expect_refused(ctx, "c1", pid, ["c0", "has changed"], "changed")
    os.rename(ctx.path("c0"), ctx.path("other"))
    os.rename(ctx.path("c0.away"), ctx.path("c0"))
    restore_and_check(ctx, "c1", pid)


def tracking_gone_test(ctx):
    pid = test_files.start(ctx, "mem_incr")
    checkpoint(ctx, "pre-dump", pid, "c0")
    for h in holders():
        os.kill(h, 9)
    lib.reap()
    step(ctx, 1, ["main", "kid1"])
    st = checkpoint(ctx, "pre-dump", pid, "c1", "c0")
    log = lib.read_text(ctx.path("c1.log"))
    if "tracking" not in log or "gone" not in log or "saved in full" not in log:
        raise Fail("a dump whose parent's tracking is gone did not say so: %r" % log[-300:])
    if st.get("pages_in_parent"):
        raise Fail("tracking gone, but %d pages refer to the parent" % st["pages_in_parent"])
    # dump -R without --track-mem arms nothing
    step(ctx, 2, ["main", "kid1", "kid2"])
    checkpoint(ctx, "dump", pid, "c2", "c1", extra=["-R"])
    if holders():
        raise Fail("dump -R without --track-mem left a holder")
    step(ctx, 3, ["main", "kid1", "kid2"])
    st = checkpoint(ctx, "dump", pid, "c3", "c2")
    log = lib.read_text(ctx.path("c3.log"))
    if "armed no memory tracking" not in log or st.get("pages_in_parent"):
        raise Fail("a parent without tracking: %r, %s" % (log[-300:], st))
    lib.wait_pid(pid, 10, "the dumped tree to end")
    restore_and_check(ctx, "c3", pid)


OWN_UFFD_JOB = r"""
import ctypes, os, time
fd = ctypes.CDLL(None).syscall(323, os.O_CLOEXEC)  # userfaultfd(2), x86-64
assert fd >= 0
open("ready", "w").close()
while not os.path.exists("go"):
    time.sleep(0.01)
print("wl: check still running ok")
"""


def other_uffd_test(ctx):
    """A process holding a userfaultfd of its own is refused by name (and
    goes on); memory registered with another userfaultfd (an earlier
    pre-dump's, never taken) is saved in full with a warning."""
    with open(ctx.path("job.py"), "w") as f:
        f.write(OWN_UFFD_JOB)
    pid = lib.spawn([sys.executable, ctx.path("job.py")], cwd=ctx.dir,
                    stdout=ctx.path("out.log"), stderr="stdout", session="setsid")
    lib.wait_until(lambda: os.path.exists(ctx.path("ready")), 20, "the job")
    r = ctx.cryo(lib.CRYO, ["pre-dump", "-t", pid, "-D", ctx.path("u0")], "u0")
    err = lib.read_text(r.err).strip()
    if lib.exit_code(r.status) != 1 or "userfaultfd" not in err or not lib.alive(pid):
        raise Fail("a process with its own userfaultfd: %s: %s" % (
            lib.describe_status(r.status), err))
    ctx.notes.append(err)
    test_files.finish(ctx, pid)
    for name in ("go", "ready"):
        os.unlink(ctx.path(name))
    pid = test_files.start(ctx, "mem_incr")
    checkpoint(ctx, "pre-dump", pid, "c0")
    st = checkpoint(ctx, "pre-dump", pid, "c1")
    log = lib.read_text(ctx.path("c1.log"))
    if "registered with another userfaultfd" not in log:
        raise Fail("a second pre-dump without parent did not warn: %r" % log[-300:])
    show = ctx.cryo(lib.CRYO, ["show", ctx.path("c1")], "show1", limit=60)
    ctx.expect_ok(show, "cryo show c1")
    if "tracked {" in lib.read_text(ctx.path("show1.out")).split("chain.img:")[1].split("\n\n")[0]:
        raise Fail("c1 records tracking it could not arm")
    checkpoint(ctx, "dump", pid, "c2", "c1")
    lib.wait_pid(pid, 10, "the dumped tree to end")
    no_holder_left("after the tree was killed")
    restore_and_check(ctx, "c2", pid)
    ctx.notes.append("c1: %d pages written" % st["pages_written"])


EXEC_JOB = r"""
import mmap, os, sys, time
stage = int(sys.argv[1]) if len(sys.argv) > 1 else 1
n = 32 << 20
m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, n, 4096):
    m[i:i + 8] = (i + stage).to_bytes(8, "little")
open("ready" if stage == 1 else "stage2", "w").close()
while not os.path.exists("go"):
    if stage == 1 and os.path.exists("exec"):
        os.execv(sys.executable, [sys.executable, sys.argv[0], "2"])
    time.sleep(0.01)
bad = [i for i in range(0, n, 4096) if m[i:i + 8] != (i + stage).to_bytes(8, "little")]
print("wl: check pages ok" if not bad and stage == 2 else "wl: FAIL %d pages, stage %d"
      % (len(bad), stage))
"""


def exec_test(ctx):
    """A process that calls execve between two checkpoints: the next one is
    full and says the tracking starts again; the one after is incremental
    again and restores right."""
    with open(ctx.path("job.py"), "w") as f:
        f.write(EXEC_JOB)
    pid = lib.spawn([sys.executable, ctx.path("job.py")], cwd=ctx.dir,
                    stdout=ctx.path("out.log"), stderr="stdout", session="setsid")
    lib.wait_until(lambda: os.path.exists(ctx.path("ready")), 20, "the job")
    checkpoint(ctx, "pre-dump", pid, "c0")
    with open(ctx.path("exec"), "w"):
        pass
    lib.wait_until(lambda: os.path.exists(ctx.path("stage2")), 20, "the job's execve")
    st = checkpoint(ctx, "pre-dump", pid, "c1", "c0")
    if "new address space" not in lib.read_text(ctx.path("c1.log")) or st["pages_in_parent"]:
        raise Fail("after execve: %s, %r" % (st, lib.read_text(ctx.path("c1.log"))[-300:]))
    checkpoint(ctx, "pre-dump", pid, "c2", "c1")
    st = checkpoint(ctx, "dump", pid, "c3", "c2")
    if st["pages_in_parent"] < 8000:
        raise Fail("tracked again after execve: c3 has only %d pages in the parent: %s"
                   % (st["pages_in_parent"], st))
    lib.wait_pid(pid, 10, "the dumped job")
    no_holder_left("after the job was killed")
    run = test_options.restore(ctx, [], pid, ck="c3")
    test_options.finish_restored(ctx, run, pid)


MEASURE_JOB = r"""
import mmap, os, sys, time
n = 256 << 20
m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, n, 4096):
    m[i:i + 8] = (i + 1).to_bytes(8, "little")
open("ready", "w").close()
k = 0
while not os.path.exists("go"):
    if os.path.exists("dirty"):
        os.unlink("dirty")
        k += 1
        for i in range(0, n, 4096 * 100):
            m[i + 8:i + 16] = k.to_bytes(8, "little")
        open("dirtied", "w").close()
    time.sleep(0.01)
for i in range(0, n, 4096):
    want = (i + 1).to_bytes(8, "little")
    want2 = (k if i % (4096 * 100) == 0 else 0).to_bytes(8, "little")
    if m[i:i + 8] != want or m[i + 8:i + 16] != want2:
        print("wl: FAIL page %d" % (i // 4096))
        sys.exit(1)
print("wl: check pages ok")
"""


def measure_test(ctx):
    with open(ctx.path("job.py"), "w") as f:
        f.write(MEASURE_JOB)
    pid = lib.spawn([sys.executable, ctx.path("job.py")], cwd=ctx.dir,
                    stdout=ctx.path("out.log"), stderr="stdout", session="setsid")
    lib.wait_until(lambda: os.path.exists(ctx.path("ready")), 60, "the 256 MiB job")
    t = time.monotonic()
    full = checkpoint(ctx, "pre-dump", pid, "full", extra=["--no-sync"])
    t_full = time.monotonic() - t
    with open(ctx.path("dirty"), "w"):
        pass
    lib.wait_until(lambda: os.path.exists(ctx.path("dirtied")), 30, "the job's writes")
    t = time.monotonic()
    inc = checkpoint(ctx, "dump", pid, "incr", "full", extra=["--no-sync"])
    t_inc = time.monotonic() - t

    def size(ck):
        return sum(os.path.getsize(ctx.path(ck, f)) for f in os.listdir(ctx.path(ck))
                   if f.startswith("pages-"))
    b_full, b_inc = size("full"), size("incr")
    ctx.notes.append("256 MiB, 1%% dirty: full pre-dump %d bytes of pages in %.0f ms (frozen "
                     "%.1f ms, memdump %.1f ms, %d pages read); incremental dump %d bytes in "
                     "%.0f ms (frozen %.1f ms, memdump %.1f ms, %d pages read, %d in parent)" % (
                         b_full, t_full * 1000, full["frozen_time_us"] / 1000,
                         full["memdump_time_us"] / 1000, full["pages_read"], b_inc,
                         t_inc * 1000, inc["frozen_time_us"] / 1000,
                         inc["memdump_time_us"] / 1000, inc["pages_read"],
                         inc["pages_in_parent"]))
    if b_inc * 20 > b_full or inc["pages_read"] * 20 > full["pages_read"]:
        raise Fail("the incremental dump wrote %d bytes, read %d pages; the full %d, %d" % (
            b_inc, inc["pages_read"], b_full, full["pages_read"]))
    lib.wait_pid(pid, 10, "the dumped job")
    no_holder_left("after the job was killed")
    for name in ("go", "ready"):
        if os.path.exists(ctx.path(name)):
            os.unlink(ctx.path(name))
    run = test_options.restore(ctx, [], pid, ck="incr")
    m = re.search(r"restored pid \d+ in (\d+) us", lib.read_text(ctx.path("restore.log")))
    ctx.notes.append("restore of the incremental checkpoint (its 256 MiB merged from the "
                     "parent): %.0f ms" % (int(m.group(1)) / 1000 if m else -1))
    test_options.finish_restored(ctx, run, pid)


def tests():
    return [("incr/chain", chain_test, 120),
            ("incr/chain/san", lambda ctx: chain_test(ctx, lib.SAN_CRYO), 180),
            ("incr/refused", refused_test, 60),
            ("incr/tracking-gone", tracking_gone_test, 90),
            ("incr/other-userfaultfd", other_uffd_test, 60),
            ("incr/exec", exec_test, 60),
            ("incr/measure", measure_test, 120)]

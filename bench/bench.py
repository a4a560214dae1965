#!/usr/bin/env python3
"""cryo benchmarks (`make bench`; never part of `make test`).

Measures checkpoint and restore of two workloads against the targets of the
performance issue:
  memhog 1 GiB  (build/bench/memhog: 1 GiB of touched anonymous memory)
  py counter    (a python3 -c loop printing a counter every 0.1 s)
and of two workloads without targets:
  cowtree       (build/bench/cowtree: a root with 256 MiB of touched memory
                 and 19 forked children sharing it copy-on-write, each having
                 written 16 pages; the image should be close to 256 MiB, not
                 20 times that: its ratio to 256 MiB is shown, flagged
                 "not deduplicated" above 1.5)
  threads50     (build/bench/threads50: one process of 50 threads, 49 of them
                 blocked in pthread_cond_wait, and 64 MiB of touched memory)
These two run in a session of their own; after the dump every process of the
tree is reaped before the restore (their pids must be free again), and after
the restore the process count (cowtree) or thread count (threads50) is checked.
Each is dumped to a tmpfs directory (/dev/shm) and to disk (/var/tmp), the
latter with and without --no-sync. Every case runs REPEAT times; the table
shows medians. Figures: wall time of `cryo dump`, frozen and memory-dump
time from stats-dump (`cryo show --json`), image size (du), throughput, and
wall time of `cryo restore -d` (until cryo exits, the process running with
its original pid).

The snapshot section (dump -R, src/snapshot.c) runs memhog at each of
--snapshot-mib (default 256,1024,2048,4096 MiB; 4 KiB pages, and 1 GiB again
in transparent huge pages) and dumps it with -R to disk, synced: the frozen
time (stats-dump, against the issue's goal of 20 ms, 50 ms for 2 GiB), the
part of it spent forking the snapshot, and the durable write throughput
after the release (bytes of the pages image over the time from release to
commit) against `dd conv=fdatasync` of as many bytes to the same disk.

It reports and does not gate: exit 0 whether or not targets are met,
non-zero if a step fails. Images directories and processes are always
cleaned up. Options: --repeat N, --memhog-mib N, --cowtree-mib N,
--only memhog|counter|cowtree|threads50, -v (every run, with the restore
stats); CRYO=path overrides build/cryo.
"""
import argparse
import ctypes
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRYO = os.environ.get("CRYO", os.path.join(ROOT, "build", "cryo"))
MEMHOG = os.path.join(ROOT, "build", "bench", "memhog")
COWTREE = os.path.join(ROOT, "build", "bench", "cowtree")
THREADS50 = os.path.join(ROOT, "build", "bench", "threads50")
COWTREE_PROCS = 20       # the root and 19 children
THREADS50_THREADS = 50   # threads of the process, main thread included
THREADS50_MIB = 64
DEDUP_LIMIT = 1.5        # cowtree image / its memory above this: not deduplicated
TREE_KINDS = ("cowtree", "threads50")
PR_SET_CHILD_SUBREAPER = 36
READY_TIMEOUT = 60.0
STEP_TIMEOUT = 120.0

COUNTER_SRC = r"""
import sys, time
open('ready', 'w').close()
n = 0
while True:
    n += 1
    print(n, flush=True)
    time.sleep(0.1)
"""

# Targets from the issue, in seconds: (dump, restore).
TARGETS = {"memhog": (1.0, 0.7), "counter": (0.025, 0.015)}


class StepFailed(Exception):
    pass


class Bench:
    def __init__(self, args):
        self.args = args
        self.pids = set()        # processes we must kill and reap
        self.trees = set()       # roots (in a session of their own) of trees to kill and reap
        self.dirs = []           # directories we must remove
        self.shm_base = tempfile.mkdtemp(prefix="cryo-bench-", dir="/dev/shm")
        self.dirs.append(self.shm_base)
        self.disk_base = tempfile.mkdtemp(prefix="cryo-bench-", dir="/var/tmp")
        self.dirs.append(self.disk_base)

    # ---- process bookkeeping ----

    def kill_and_reap(self, pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            # Not our child (should not happen with the subreaper): wait for it to vanish.
            deadline = time.monotonic() + 5
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.01)
        self.pids.discard(pid)

    def reap_strays(self):
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def kill_tree(self, root, known=()):
        """SIGKILL root's process group, every descendant of root and the pids in
        known, then reap until none of them is left in /proc."""
        pids = {root} | descendants(root) | set(known)
        try:
            os.killpg(root, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        left = self.reap_until_gone(pids, 10)
        # Orphans of a root that died early are ours but not its descendants any
        # more: wait for its process group to empty as well.
        deadline = time.monotonic() + 10
        while not left and time.monotonic() < deadline:
            try:
                os.killpg(root, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                break
            self.reap_strays()
            time.sleep(0.002)
        else:
            if not left:
                left = {f"group {root}"}
        self.trees.discard(root)
        self.pids -= pids
        if left:
            raise StepFailed(f"{sorted(map(str, left))} still exist 10 s after SIGKILL")

    def reap_until_gone(self, pids, timeout):
        """Reap children (we are a subreaper: a dead tree's orphans are ours) until
        none of pids exists in /proc any more, or timeout; returns the pids left."""
        deadline = time.monotonic() + timeout
        while True:
            self.reap_strays()
            left = {p for p in pids if os.path.exists(f"/proc/{p}")}
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.002)

    def cleanup(self):
        for root in list(self.trees):
            try:
                self.kill_tree(root)
            except StepFailed as e:
                print(f"bench: cleanup: {e}", file=sys.stderr)
        for pid in list(self.pids):
            self.kill_and_reap(pid)
        self.reap_strays()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.dirs = []

    # ---- one measured run ----

    def start(self, kind, workdir):
        out = open(os.path.join(workdir, "out.log"), "w")
        if kind == "memhog":
            argv = [MEMHOG, str(self.args.memhog_mib)]
        elif kind == "cowtree":
            argv = [COWTREE, str(self.args.cowtree_mib), str(COWTREE_PROCS - 1)]
        elif kind == "threads50":
            argv = [THREADS50, str(THREADS50_THREADS), str(THREADS50_MIB)]
        else:
            argv = [sys.executable, "-c", COUNTER_SRC]
        tree = kind in TREE_KINDS
        try:
            # A tree gets a session (and process group) of its own so that
            # killpg(root) reaches all of it, the restored tree as well.
            p = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=out, close_fds=True,
                                 start_new_session=tree)
        finally:
            out.close()
        self.pids.add(p.pid)
        if tree:
            self.trees.add(p.pid)
        ready = os.path.join(workdir, "ready")
        deadline = time.monotonic() + READY_TIMEOUT
        while not os.path.exists(ready):
            if p.poll() is not None:
                self.pids.discard(p.pid)
                if tree:
                    self.kill_tree(p.pid)
                raise StepFailed(f"{kind} exited with {p.returncode} before ready: "
                                 + tail(os.path.join(workdir, "out.log")))
            if time.monotonic() > deadline:
                raise StepFailed(f"{kind} (pid {p.pid}) not ready after {READY_TIMEOUT:.0f} s")
            time.sleep(0.005)
        time.sleep(0.1)  # let it settle into its sleep
        return p

    def timed_dump(self, kind, pid, imgdir, no_sync):
        """cryo dump (which kills the process, or tree); its wall time."""
        cmd = [CRYO, "dump", "-t", str(pid), "-D", imgdir]
        if no_sync:
            cmd.append("--no-sync")
        t0 = time.monotonic()
        r = run(cmd)
        t_dump = time.monotonic() - t0
        if r.returncode != 0:
            raise StepFailed(f"dump of {kind} pid {pid} failed ({r.returncode}): "
                             + r.stderr.strip())
        return t_dump

    @staticmethod
    def expect_killed(kind, p):
        """The dumped process (our child) ended by SIGKILL: reap it."""
        try:
            status = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"{kind} pid {p.pid} still running after dump")
        if status != -signal.SIGKILL:
            raise StepFailed(f"{kind} pid {p.pid} ended with {status} after dump, "
                             "expected SIGKILL")

    @staticmethod
    def timed_restore(kind, imgdir, pidfile):
        """cryo restore -d --pidfile: (wall time, restored pid, cryo's result)."""
        t0 = time.monotonic()
        r = run([CRYO, "restore", "-D", imgdir, "-d", "--pidfile", pidfile])
        t_restore = time.monotonic() - t0
        rpid = 0
        if r.returncode == 0:
            try:
                with open(pidfile) as f:
                    rpid = int(f.read().strip())
            except (OSError, ValueError) as e:
                raise StepFailed(f"restore of {kind}: bad pidfile {pidfile}: {e}")
        return t_restore, rpid, r

    def result(self, imgdir, stats, size, t_dump, t_restore, extra=""):
        """The figures of one run (and, with -v, a line about it)."""
        res = {
            "dump": t_dump,
            "frozen": stats["frozen_time_us"] / 1e6,
            "memdump": stats["memdump_time_us"] / 1e6,
            "size": size,
            "restore": t_restore,
        }
        if self.args.verbose:
            rs = show_stats(imgdir, "stats-restore")
            print(f"\n    dump {t_dump * 1e3:.1f} ms (frozen {res['frozen'] * 1e3:.1f}, "
                  f"memdump {res['memdump'] * 1e3:.1f}), {size / (1 << 20):.1f} MiB; "
                  f"restore {t_restore * 1e3:.1f} ms (validate "
                  f"{rs['validate_time_us'] / 1e3:.1f}, fork {rs['fork_time_us'] / 1e3:.1f}, "
                  f"memrestore {rs['memrestore_time_us'] / 1e3:.1f}){extra}", end="")
        return res

    def run_once(self, kind, base, no_sync):
        workdir = tempfile.mkdtemp(prefix="wd-", dir=base)
        imgdir = os.path.join(base, os.path.basename(workdir) + "-img")
        pidfile = os.path.join(workdir, "restored.pid")
        try:
            p = self.start(kind, workdir)
            pid = p.pid
            t_dump = self.timed_dump(kind, pid, imgdir, no_sync)
            # The dump kills the process once committed: reap it, freeing its pid.
            self.pids.discard(pid)
            self.expect_killed(kind, p)

            stats = show_stats(imgdir, "stats-dump")
            size = du_bytes(imgdir)

            t_restore, rpid, r = self.timed_restore(kind, imgdir, pidfile)
            if r.returncode != 0:
                raise StepFailed(f"restore of {kind} pid {pid} failed ({r.returncode}): "
                                 + r.stderr.strip())
            if rpid > 0:
                self.pids.add(rpid)
            if rpid != pid:
                raise StepFailed(f"restore of {kind}: pid {rpid}, dumped pid {pid}")
            if not alive(rpid):
                raise StepFailed(f"restored {kind} pid {rpid} is not running")
            if kind == "counter":
                check_counter(os.path.join(workdir, "out.log"))
            if not alive(rpid):
                raise StepFailed(f"restored {kind} pid {rpid} died")
            self.kill_and_reap(rpid)
            return self.result(imgdir, stats, size, t_dump, t_restore)
        finally:
            shutil.rmtree(imgdir, ignore_errors=True)
            shutil.rmtree(workdir, ignore_errors=True)

    def check_shape(self, kind, root, when):
        """The tree has COWTREE_PROCS live processes / the process THREADS50_THREADS
        threads; returns the tree's pids."""
        pids = {root} | descendants(root)
        if kind == "cowtree":
            dead = sorted(p for p in pids if not alive(p))
            if len(pids) != COWTREE_PROCS or dead:
                raise StepFailed(f"{when}: cowtree root {root} has {len(pids)} processes "
                                 f"(expected {COWTREE_PROCS}), not running: {dead}")
        else:
            n = threads_of(root)
            if n != THREADS50_THREADS:
                raise StepFailed(f"{when}: threads50 pid {root} has {n} threads "
                                 f"(expected {THREADS50_THREADS})")
        return pids

    def run_once_tree(self, kind, base, no_sync):
        """cowtree / threads50: like run_once, but the whole tree must be gone and
        reaped before the restore, and its shape is checked after it."""
        workdir = tempfile.mkdtemp(prefix="wd-", dir=base)
        imgdir = os.path.join(base, os.path.basename(workdir) + "-img")
        pidfile = os.path.join(workdir, "restored.pid")
        root = None
        tree_pids = set()
        try:
            p = self.start(kind, workdir)
            root = p.pid
            tree_pids = self.check_shape(kind, root, "before dump")
            self.pids |= tree_pids
            pss_before = pss_bytes(tree_pids)

            t_dump = self.timed_dump(kind, root, imgdir, no_sync)
            # The dump kills the whole tree once committed. The root is our child;
            # its children become ours (subreaper) when it dies: reap them all,
            # or the restore finds their pids in use.
            self.expect_killed(kind, p)
            left = self.reap_until_gone(tree_pids, 10)
            if left:
                raise StepFailed(f"{kind}: pids {sorted(left)} of the dumped tree still "
                                 "exist 10 s after the dump")
            self.pids -= tree_pids
            self.trees.discard(root)

            stats = show_stats(imgdir, "stats-dump")
            size = du_bytes(imgdir)

            # Whatever happens, what may have been restored is ours to kill.
            self.trees.add(root)
            self.pids |= tree_pids
            t_restore, rpid, r = self.timed_restore(kind, imgdir, pidfile)
            if r.returncode != 0:
                raise StepFailed(f"restore of {kind} pid {root} failed ({r.returncode}): "
                                 + r.stderr.strip())
            if rpid != root:
                if rpid > 0:
                    self.trees.add(rpid)
                raise StepFailed(f"restore of {kind}: pid {rpid}, dumped pid {root}")
            if not alive(rpid):
                raise StepFailed(f"restored {kind} pid {rpid} is not running")
            restored = self.check_shape(kind, rpid, "after restore")
            if restored != tree_pids:
                raise StepFailed(f"restored {kind}: pids {sorted(restored)}, dumped "
                                 f"{sorted(tree_pids)}")
            try:
                pgid, sid = os.getpgid(rpid), os.getsid(rpid)
            except ProcessLookupError:
                pgid = sid = None
            if pgid != rpid or sid != rpid:
                raise StepFailed(f"restored {kind} pid {rpid}: pgid {pgid}, sid {sid}, "
                                 f"expected both {rpid}")
            pss_after = pss_bytes(restored)
            res = self.result(imgdir, stats, size, t_dump, t_restore,
                              f"; Pss {pss_before / (1 << 20):.0f} -> "
                              f"{pss_after / (1 << 20):.0f} MiB")
            self.kill_tree(rpid, tree_pids)
            res.update(pss_before=pss_before, pss_after=pss_after)
            return res
        finally:
            if root is not None and root in self.trees:
                try:
                    self.kill_tree(root, tree_pids)
                except StepFailed as e:
                    print(f"\nbench: {e}", file=sys.stderr)
            shutil.rmtree(imgdir, ignore_errors=True)
            shutil.rmtree(workdir, ignore_errors=True)

    def snapshot_once(self, mib, thp):
        """dump -R of memhog MIB to disk, synced: its stats and image bytes."""
        workdir = tempfile.mkdtemp(prefix="wd-", dir=self.shm_base)
        imgdir = tempfile.mkdtemp(prefix="img-", dir=self.disk_base)
        out = open(os.path.join(workdir, "out.log"), "w")
        try:
            p = subprocess.Popen([MEMHOG, str(mib)] + (["thp"] if thp else []), cwd=workdir,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 close_fds=True)
        finally:
            out.close()
        self.pids.add(p.pid)
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while not os.path.exists(os.path.join(workdir, "ready")):
                if p.poll() is not None or time.monotonic() > deadline:
                    raise StepFailed(f"memhog {mib} MiB not ready")
                time.sleep(0.01)
            time.sleep(0.1)
            r = run([CRYO, "dump", "-t", str(p.pid), "-D", imgdir, "-R"])
            if r.returncode != 0:
                raise StepFailed(f"dump -R of memhog {mib} MiB failed: {r.stderr.strip()}")
            if p.poll() is not None:
                raise StepFailed(f"memhog {mib} MiB did not survive dump -R")
            st = show_stats(imgdir, "stats-dump")
            size = du_bytes(imgdir)
        finally:
            self.kill_and_reap(p.pid)
            shutil.rmtree(imgdir, ignore_errors=True)
            shutil.rmtree(workdir, ignore_errors=True)
        return st, size

    def dd_rate(self, nbytes):
        """Bytes per second of dd conv=fdatasync writing nbytes to the disk."""
        path = os.path.join(self.disk_base, "dd.out")
        t0 = time.monotonic()
        r = run(["dd", "if=/dev/zero", f"of={path}", "bs=16M",
                 f"count={max(1, nbytes >> 24)}", "conv=fdatasync"])
        dt = time.monotonic() - t0
        os.unlink(path)
        if r.returncode != 0:
            raise StepFailed(f"dd failed: {r.stderr.strip()}")
        return (max(1, nbytes >> 24) << 24) / dt

    def run_case(self, kind, storage):
        base = self.shm_base if storage == "tmpfs" else self.disk_base
        no_sync = storage == "disk --no-sync"
        once = self.run_once_tree if kind in TREE_KINDS else self.run_once
        runs = [once(kind, base, no_sync) for _ in range(self.args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        return med


# ---- helpers ----

def run(cmd):
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise StepFailed(f"timed out after {STEP_TIMEOUT:.0f} s: {' '.join(cmd)}")


def tail(path, n=300):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:].strip()
    except OSError:
        return ""


def alive(pid):
    """Running (not a zombie)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def descendants(pid):
    """Every descendant of pid, from /proc/PID/task/*/children recursively."""
    found = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except (OSError, ValueError):
                continue
            for k in kids:
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


def pss_bytes(pids):
    """Sum of Pss over pids (smaps_rollup): the memory the tree really uses."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            pass
    return total


def threads_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def show_stats(imgdir, name):
    r = run([CRYO, "show", "--json", imgdir])
    if r.returncode != 0:
        raise StepFailed(f"cryo show --json {imgdir} failed ({r.returncode}): {r.stderr.strip()}")
    try:
        j = json.loads(r.stdout)
        # stats-dump is an image listed in the inventory (under "images");
        # stats-restore is written after it and printed at the top level.
        recs = j["images"][name] if name in j.get("images", {}) else j[name]
        return recs[0]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise StepFailed(f"cryo show --json {imgdir}: no {name} record ({e!r})")


def du_bytes(path):
    r = run(["du", "-s", "-B1", path])
    if r.returncode != 0:
        raise StepFailed(f"du {path} failed: {r.stderr.strip()}")
    return int(r.stdout.split()[0])


def check_counter(log):
    """The restored counter keeps counting, one by one, from where it was."""
    def numbers():
        with open(log) as f:
            return [int(x) for x in f.read().split()]
    before = numbers()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        now = numbers()
        if len(now) >= len(before) + 2:
            break
        time.sleep(0.05)
    else:
        raise StepFailed(f"restored counter did not continue ({log}: {len(before)} lines)")
    if now != list(range(1, len(now) + 1)):
        raise StepFailed(f"restored counter output is not 1..{len(now)}: {now[-10:]}")


def fmt_ms(s):
    return f"{s * 1000:.1f}" if s < 10 else f"{s * 1000:.0f}"


def fmt_target(s):
    return f"< {s:g} s" if s >= 1 else f"< {s * 1000:g} ms"


def verdict(value, target):
    return "ok" if value < target else "MISSED"


def print_columns(hdr, rows):
    widths = [max(len(r[i]) for r in [hdr] + rows) for i in range(len(hdr))]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    print(line(hdr))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))


def print_tree_table(results, args):
    """cowtree / threads50: no targets; the image against the memory it holds."""
    hdr = ["workload", "images", "dump ms", "frozen ms", "memdump ms", "image MiB",
           "restore ms", "restored", "image/memory", "Pss MiB dumped -> restored"]
    rows = []
    for (kind, storage), m in results:
        mib = m["size"] / (1 << 20)
        if kind == "cowtree":
            name = f"cowtree {COWTREE_PROCS} x {args.cowtree_mib} MiB"
            ratio = mib / args.cowtree_mib
            note = (f"{ratio:.2f}x of {args.cowtree_mib} MiB "
                    + ("not deduplicated" if ratio > DEDUP_LIMIT else "ok"))
            shape = f"{COWTREE_PROCS} procs"
        else:
            name = f"threads50 {THREADS50_MIB} MiB"
            ratio = mib / THREADS50_MIB
            note = f"{ratio:.2f}x of {THREADS50_MIB} MiB"
            shape = f"{THREADS50_THREADS} threads"
        before, after = m["pss_before"] / (1 << 20), m["pss_after"] / (1 << 20)
        pss = f"{before:.0f} -> {after:.0f}"
        if after > DEDUP_LIMIT * before:
            pss += " sharing lost"
        rows.append([name, storage, fmt_ms(m["dump"]), fmt_ms(m["frozen"]),
                     fmt_ms(m["memdump"]), f"{mib:.1f}", fmt_ms(m["restore"]), shape, note,
                     pss])
    print()
    print(f"cryo bench, trees and threads (no targets): median of {args.repeat} runs")
    print_columns(hdr, rows)
    print()
    print(f"restored = process count of the restored tree / thread count of the restored "
          f"process, checked every run; cowtree image/memory above {DEDUP_LIMIT}x means "
          "copy-on-write pages were saved more than once. Pss = proportional set size summed "
          "over the tree (smaps_rollup) before the dump and after the restore; \"sharing lost\": "
          f"the restored tree uses more than {DEDUP_LIMIT}x the memory of the dumped one "
          "(copy-on-write sharing not recreated).")


def print_table(results, args):
    tree_results = [r for r in results if r[0][0] in TREE_KINDS]
    results = [r for r in results if r[0][0] not in TREE_KINDS]
    if results:
        print_target_table(results, args)
    if tree_results:
        print_tree_table(tree_results, args)


def print_target_table(results, args):
    hdr = ["workload", "images", "dump ms", "frozen ms", "memdump ms", "image MiB",
           "dump MiB/s", "restore ms", "dump target", "restore target"]
    rows = []
    for (kind, storage), m in results:
        td, tr = TARGETS[kind]
        mib = m["size"] / (1 << 20)
        name = f"memhog {args.memhog_mib} MiB" if kind == "memhog" else "py counter"
        rows.append([
            name, storage, fmt_ms(m["dump"]), fmt_ms(m["frozen"]), fmt_ms(m["memdump"]),
            f"{mib:.1f}", f"{mib / m['dump']:.0f}" if m["dump"] > 0 else "-",
            fmt_ms(m["restore"]),
            f"{fmt_target(td)} {verdict(m['dump'], td)}",
            f"{fmt_target(tr)} {verdict(m['restore'], tr)}",
        ])
    widths = [max(len(r[i]) for r in [hdr] + rows) for i in range(len(hdr))]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    print()
    print(f"cryo bench: median of {args.repeat} runs; times are wall clock of the cryo "
          "command except frozen/memdump (stats-dump)")
    print(line(hdr))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    print()
    print("dump MiB/s = image size / dump wall time; restore = `cryo restore -d` until it "
          "exits; disk restores read from a warm page cache.")
    if args.memhog_mib != 1024 and any(k == "memhog" for (k, _), _m in results):
        print("note: targets are for the 1 GiB memhog")


def main():
    ap = argparse.ArgumentParser(description="cryo dump/restore benchmarks")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memhog-mib", type=int, default=1024)
    ap.add_argument("--cowtree-mib", type=int, default=256)
    ap.add_argument("--only", choices=["memhog", "counter", "cowtree", "threads50", "snapshot"])
    ap.add_argument("--snapshot-mib", default="256,1024,2048,4096",
                    help="memhog sizes of the dump -R section (MiB, comma-separated)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = ap.parse_args()
    if args.repeat < 1 or args.memhog_mib < 1 or args.cowtree_mib < 1:
        ap.error("--repeat, --memhog-mib and --cowtree-mib must be positive")

    for path in (CRYO, MEMHOG, COWTREE, THREADS50):
        if not os.access(path, os.X_OK):
            print(f"bench: {path} missing (run `make bench`)", file=sys.stderr)
            return 1
    if os.geteuid() != 0:
        print("bench: cryo must run as root", file=sys.stderr)
        return 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        print(f"bench: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}", file=sys.stderr)
        return 1
    # SIGTERM/SIGHUP unwind through the cleanup like ^C does.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    cases = []
    for kind in ("memhog", "counter") + TREE_KINDS:
        if args.only and kind != args.only:
            continue
        for storage in ("tmpfs", "disk", "disk --no-sync"):
            cases.append((kind, storage))
    snap_sizes = [] if args.only and args.only != "snapshot" else \
        [(int(m), False) for m in args.snapshot_mib.split(",") if m] + [(1024, True)]

    bench = Bench(args)
    results = []
    try:
        print(f"cryo bench: images on {bench.shm_base} (tmpfs) and {bench.disk_base} (disk)")
        for kind, storage in cases:
            print(f"  {kind} / {storage} ...", end="", flush=True)
            m = bench.run_case(kind, storage)
            print("" if args.verbose else " done")
            results.append(((kind, storage), m))
        snap = snapshot_section(bench, snap_sizes, args)
    except StepFailed as e:
        print(f"\nbench: FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        bench.cleanup()
    if results:
        print_table(results, args)
    print_snapshot_table(snap)
    return 0


def snapshot_section(bench, sizes, args):
    """[(label, medians)] of dump -R for each (MiB, thp)."""
    out = []
    for mib, thp in sizes:
        label = f"{mib} MiB" + (" THP" if thp else "")
        print(f"  dump -R memhog {label} ...", end="", flush=True)
        runs = [bench.snapshot_once(mib, thp) for _ in range(args.repeat)]
        size = statistics.median(s for _, s in runs)
        after = statistics.median(st.get("written_after_release_us", 0) for st, _ in runs)
        m = {"frozen": statistics.median(st["frozen_time_us"] for st, _ in runs) / 1e3,
             "fork": statistics.median(st.get("snapshot_time_us", 0) for st, _ in runs) / 1e3,
             "size": size, "rate": size / (after / 1e6) if after else 0,
             "dd": bench.dd_rate(int(size))}
        print(" done")
        out.append((label, m))
    return out


def print_snapshot_table(rows):
    if not rows:
        return
    print("\ndump -R (copy-on-write snapshot), images on disk, synced; medians")
    hdr = ["memory", "frozen", "goal", "of it fork", "image", "durable write", "dd fdatasync",
           "ratio"]
    table = []
    for label, m in rows:
        goal = 50.0 if label.startswith("2048 ") else 20.0
        table.append([label, f"{m['frozen']:.1f} ms", f"{goal:.0f} ms " +
                      ("ok" if m["frozen"] <= goal else "MISSED"), f"{m['fork']:.1f} ms",
                      f"{m['size'] / (1 << 20):.0f} MiB", f"{m['rate'] / (1 << 20):.0f} MiB/s",
                      f"{m['dd'] / (1 << 20):.0f} MiB/s",
                      f"{m['rate'] / m['dd']:.2f}" if m["dd"] else "-"])
    print_columns(hdr, table)


if __name__ == "__main__":
    sys.exit(main())

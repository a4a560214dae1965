"""Tests of `cryo run`, the supervisor, run by tests/run.py (`make test`) as
the tests named run/...; the job is tests/run_job.py (a counter that keeps
its state, and a hash of its whole sequence, in memory and rewrites its
output file from it after each step).

  run/restores        --every 1 --keep 2: the job SIGKILLed three times,
                      each time after a new checkpoint; cryo restores it
                      each time (one line each), the job ends with exactly
                      the output of an uninterrupted run, cryo exits 0, one
                      line per checkpoint (generation, pages, bytes, frozen
                      time, duration), only the newest 2 generations kept.
  run/resume          the supervisor and the job both SIGKILLed (a machine
                      restart): --resume restores the newest generation
                      and the job ends right, exit 0.
  run/take-over       only the supervisor SIGKILLed: --resume takes the
                      running job over (one line, no second copy: the job
                      started once), `cryo checkpoint` commits a new
                      generation of it; the job SIGKILLed is restored from
                      that one by the new supervisor and ends right, exit 0.
  run/checkpoint-command  `cryo checkpoint -D DIR` prints the generation it
                      made (committed, restorable: the job killed comes
                      back from it); a second supervisor of the same DIR is
                      refused naming the first; `cryo checkpoint` of a DIR
                      nobody supervises is one line and exit 1; a failed
                      checkpoint (the job stopped under a tracer) is
                      reported as failed with its reason.
  run/killed-mid-checkpoint  cryo and the job SIGKILLed while a 256 MiB
                      job's checkpoint is being written: the previous
                      generation is intact, --resume drops the partial one
                      and restores the previous; the job ends right.
  run/stdout-pipe     cryo run's stdout a pipe to `cat`: after the job is
                      SIGKILLed and restored it writes to the same pipe;
                      the log has every line in order, no gap, only the
                      lines after the newest generation twice.
  run/incremental     --full-every 3: incremental checkpoints between full
                      ones write far fewer pages, pruning keeps the chains
                      of the kept generations, the newest shows and
                      restores, the job ends right.
  run/terminal        cryo run on a terminal: the job is dumped and
                      restored as a shell job, printing on the same
                      terminal; the same checks as run/stdout-pipe.
  run/killed-at/POINT cryo SIGKILLed by its test hook (CRYO_TEST_KILL_AT)
                      at each point of its second checkpoint (frozen, state
                      collected, memory written, dump committed, generation
                      renamed): the job counts on unharmed; after the job
                      is killed too, --resume restores the newest committed
                      generation and the job ends right.
  run/max-restores    --max-restores 1: the second SIGKILL is not restored;
                      cryo exits 137 with a line saying why.
  run/sigusr1         --every 60: SIGUSR1 to cryo takes a checkpoint now;
                      the job killed is restored from it and ends right.
  run/sigterm         SIGTERM to cryo is passed on to the job, which ends
                      and is not restored: exit 143, a line says so.
  run/no-checkpoint   killed before any checkpoint: exit 137, a line says so.
  run/exit-status     the job's own exit status is cryo's; a command that
                      cannot be run is one line and exit 1.

    python3 tests/run.py run/     only these
"""
import os
import re
import signal
import sys
import time

import lib
from lib import Fail

JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_job.py")
CKPT_LINE = re.compile(r"run: checkpoint gen-(\d{6}): (\d+) pages written, (\d+) bytes, "
                       r"frozen ([\d.]+) ms, took ([\d.]+) ms")


def expected(target):
    h = 0
    for c in range(1, target + 1):
        h = (h * 1000003 + c) & 0xFFFFFFFFFFFFFFFF
    return "%012d %016x\n" % (target, h)


class Supervisor:
    """One `cryo run` started by the test: its pid, log and directory."""

    def __init__(self, ctx, args, tag="run", target=None, step=0.01, mib=0, command=None,
                 stdout=None, ctty=None, env=None):
        self.ctx, self.tag = ctx, tag
        self.dir = ctx.path("gens")
        self.log = ctx.path(tag + ".err")
        self.out = ctx.path("count.txt")
        argv = [lib.CRYO, "run", "-D", self.dir] + args
        if target is not None:
            command = [sys.executable, JOB, self.out, str(target), str(step), str(mib)]
        if command:
            argv += ["--"] + command
        if stdout is None and ctty is None:
            stdout = ctx.path(tag + ".out")
        self.pid = lib.spawn(argv, cwd=ctx.dir, stderr=self.log, stdout=stdout, ctty=ctty,
                             env=env)
        ctx.runs.append(" ".join(argv))

    def lines(self):
        return lib.read_text(self.log).splitlines()

    def count(self, word):
        return sum(word in line for line in self.lines())

    def job(self):
        """The job's root: cryo's only child but the tracking holder (which
        keeps the memory tracking between two checkpoints)."""
        kids = [k for k in children(self.pid) if lib.alive(k) and comm(k) != "cryo-track"]
        return kids[0] if len(kids) == 1 else None

    def wait_count(self, word, n, limit=30):
        lib.wait_until(lambda: self.count(word) >= n, limit,
                       "%s: %d lines with %r (log: %s)" % (self.tag, n, word,
                                                           " | ".join(self.lines()[-3:])))

    def kill_job(self):
        pid = lib.wait_until(self.job, 10, "the job as cryo's child")
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait(self, limit=90):
        return lib.wait_pid(self.pid, limit, "cryo run")

    def chain(self, gen):
        """gen and the generations it is incremental on, by their parent links."""
        out = []
        while gen:
            out.append(gen)
            link = os.path.join(self.dir, gen, "parent")
            gen = os.path.basename(os.readlink(link)) if os.path.islink(link) else None
        return out

    def gens(self):
        return sorted(n for n in os.listdir(self.dir) if n.startswith("gen-"))


def children(pid):
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(k) for k in f.read().split()]
        except OSError:
            pass
    return out


def comm(pid):
    return lib.read_text("/proc/%d/comm" % pid).strip() if os.path.exists("/proc/%d" % pid) else ""


def expect_exit(sup, st, code):
    if lib.exit_code(st) != code:
        raise Fail("cryo run: %s, expected exit %d; log: %s"
                   % (lib.describe_status(st), code, " | ".join(sup.lines()[-4:])))


def expect_result(sup, target):
    got = lib.read_text(sup.out)
    if got != expected(target):
        raise Fail("the job's output is %r, an uninterrupted run writes %r"
                   % (got, expected(target)))
    starts = lib.read_text(sup.out + ".starts").splitlines()
    if len(starts) != 1:
        raise Fail("the job started %d times (%s), not once and restored"
                   % (len(starts), starts))


def checkpoint_lines(ctx, sup):
    found = [CKPT_LINE.search(line) for line in sup.lines()]
    found = [m for m in found if m]
    if not found:
        raise Fail("no checkpoint line in the log")
    for m in found:
        if int(m.group(2)) == 0 or int(m.group(3)) == 0:
            raise Fail("a checkpoint line says nothing was written: %s" % m.group(0))
    took = sorted(float(m.group(5)) for m in found)
    frozen = sorted(float(m.group(4)) for m in found)
    ctx.notes.append("%d checkpoints: took median %.1f ms, frozen median %.1f ms"
                     % (len(found), took[len(took) // 2], frozen[len(frozen) // 2]))
    return found


def restores_test(ctx):
    target = 900
    sup = Supervisor(ctx, ["--every", "1", "--keep", "2"], target=target)
    for k in range(3):
        # a checkpoint taken after the last restore, then the kill
        sup.wait_count("run: checkpoint gen-", 2 * k + 1)
        sup.kill_job()
        sup.wait_count("restored pid", k + 1)
    expect_exit(sup, sup.wait(), 0)
    expect_result(sup, target)
    found = checkpoint_lines(ctx, sup)
    newest = max(int(m.group(1)) for m in found)
    want = set()
    for g in ("gen-%06u" % g for g in (newest - 1, newest)):
        want |= set(sup.chain(g))
    if sup.gens() != sorted(want):
        raise Fail("generations kept: %s, expected the newest two and their chains %s"
                   % (sup.gens(), sorted(want)))
    # the supervisor's record (its lock and last answer) stays; nothing else
    leftovers = [n for n in os.listdir(sup.dir)
                 if not n.startswith("gen-") and n not in ("supervisor", "checkpoint-status")]
    if leftovers:
        raise Fail("left in the directory: %s" % leftovers)
    if sup.count("restored pid") != 3:
        raise Fail("%d restore lines, expected 3" % sup.count("restored pid"))


def supervisor_killed(ctx, target, checkpoints):
    """A supervisor checkpointing every second, SIGKILLed after that many
    checkpoints; returns it and the pid of its job, still running."""
    sup = Supervisor(ctx, ["--every", "1"], target=target)
    sup.wait_count("run: checkpoint gen-", checkpoints)
    job = lib.wait_until(sup.job, 10, "the job as cryo's child")
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait(10)
    if not lib.alive(job):
        raise Fail("the job died with its supervisor")
    return sup, job


def resume_test(ctx):
    target = 700
    sup, job = supervisor_killed(ctx, target, 2)
    os.kill(job, signal.SIGKILL)  # a machine restart: the job goes too
    lib.wait_pid(job, 10, "the job")
    again = Supervisor(ctx, ["--resume"], tag="resume")
    expect_exit(again, again.wait(), 0)
    if again.count("run: resumed pid") != 1:
        raise Fail("no 'resumed' line: %s" % " | ".join(again.lines()))
    expect_result(again, target)


SEIZE_AND_SLEEP = ("import ctypes, sys, time\n"
                   "libc = ctypes.CDLL(None, use_errno=True)\n"
                   "if libc.ptrace(0x4206, int(sys.argv[1]), None, None):\n"  # PTRACE_SEIZE
                   "    sys.exit('seize: errno %d' % ctypes.get_errno())\n"
                   "time.sleep(float(sys.argv[2]))\n")


def tracer_of(pid):
    for line in lib.read_text("/proc/%d/status" % pid).splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    return None


def checkpoint_now(ctx, sup, tag):
    """`cryo checkpoint -D DIR`: the generation it printed, checked committed."""
    r = ctx.cryo(lib.CRYO, ["checkpoint", "-D", sup.dir], tag, limit=60)
    ctx.expect_ok(r, "cryo checkpoint")
    made = lib.read_text(ctx.path(tag + ".out")).strip()
    name = os.path.basename(made)
    if os.path.dirname(made) != sup.dir or name not in sup.gens():
        raise Fail("cryo checkpoint printed %r; generations: %s" % (made, sup.gens()))
    return name


def take_over_test(ctx):
    target = 900
    _, job = supervisor_killed(ctx, target, 1)
    again = Supervisor(ctx, ["--resume", "--every", "3600"], tag="takeover")
    again.wait_count("taken over", 1, 20)
    if not lib.alive(job) or again.count("restored") or again.count("resumed"):
        raise Fail("the running job was not taken over as it is: %s"
                   % " | ".join(again.lines()))
    made = checkpoint_now(ctx, again, "checkpoint")
    os.kill(job, signal.SIGKILL)
    again.wait_count("from %s" % made, 1, 30)
    expect_exit(again, again.wait(), 0)
    expect_result(again, target)


def checkpoint_command_test(ctx):
    target = 600
    sup = Supervisor(ctx, ["--every", "3600"], target=target)
    job = lib.wait_until(sup.job, 10, "the job as cryo's child")
    time.sleep(0.3)
    made = checkpoint_now(ctx, sup, "checkpoint")
    if made != "gen-000001":
        raise Fail("the first generation is %s" % made)
    second = Supervisor(ctx, ["--resume"], tag="second")
    st = second.wait(20)
    err = " | ".join(second.lines())
    if lib.exit_code(st) != 1 or ("supervised already, by cryo run pid %d" % sup.pid) not in err:
        raise Fail("a second supervisor of the same DIR: %s: %s" % (lib.describe_status(st), err))
    if sup.gens() != [made] or not lib.alive(job):
        raise Fail("the refused supervisor touched the first one's job or generations")
    r = ctx.cryo(lib.CRYO, ["checkpoint", "-D", ctx.dir], "nobody")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "no cryo run supervises" not in err[0]:
        raise Fail("cryo checkpoint of a DIR nobody supervises: %s: %s"
                   % (lib.describe_status(r.status), err))
    # a checkpoint that fails: the job is held by another tracer (seized, not stopped)
    tracer = lib.spawn([sys.executable, "-c", SEIZE_AND_SLEEP, str(job), "5"],
                       stdout=ctx.path("tracer.out"))
    lib.wait_until(lambda: tracer_of(job) == tracer, 10, "the other tracer seizing the job")
    r = ctx.cryo(lib.CRYO, ["checkpoint", "-D", sup.dir], "failing", limit=60)
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "failed" not in err[0]:
        raise Fail("a checkpoint that cannot be taken: %s: %s"
                   % (lib.describe_status(r.status), err))
    lib.wait_pid(tracer, 30, "the other tracer")
    sup.kill_job()
    sup.wait_count("from %s" % made, 1)
    expect_exit(sup, sup.wait(), 0)
    expect_result(sup, target)


def killed_mid_checkpoint_test(ctx):
    """cryo and the job SIGKILLed while a checkpoint is being written (its
    .tmp directory exists): the previous generation is intact, --resume
    removes the partial one and restores the previous, the job ends right."""
    target = 600
    sup = Supervisor(ctx, ["--every", "1"], target=target, mib=256)
    sup.wait_count("run: checkpoint gen-000001", 1, 60)
    job = lib.wait_until(sup.job, 10, "the job as cryo's child")

    def partial():
        try:
            return [n for n in os.listdir(sup.dir) if n.startswith(".gen-")]
        except OSError:
            return []
    lib.wait_until(partial, 30, "a checkpoint being written")
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait(10)
    checkpoint_lines(ctx, sup)
    # a machine restart: the job goes too
    try:
        os.kill(job, signal.SIGKILL)
    except ProcessLookupError:  # already reaped by the harness
        pass
    st = lib.wait_pid(job, 10, "the job")
    if not os.WIFSIGNALED(st) or os.WTERMSIG(st) != signal.SIGKILL:
        ctx.notes.append("the job ended by itself when cryo died mid-dump: %s"
                         % lib.describe_status(st))
    left = partial()
    if not left:
        ctx.uncovered.append("the checkpoint ended before cryo was killed")
    committed = sup.gens()
    r = ctx.cryo(lib.CRYO, ["show", os.path.join(sup.dir, committed[-1])], "show", limit=60)
    ctx.expect_ok(r, "cryo show of the newest committed generation")
    again = Supervisor(ctx, ["--resume", "--every", "60"], tag="resume")
    expect_exit(again, again.wait(), 0)
    if again.count("from %s" % committed[-1]) != 1:
        raise Fail("not resumed from %s: %s" % (committed[-1], " | ".join(again.lines())))
    if partial():
        raise Fail("the partial generation %s is still there" % partial())
    expect_result(again, target)
    ctx.notes.append("killed while writing %s; resumed from %s" % (left, committed[-1]))


def max_restores_test(ctx):
    sup = Supervisor(ctx, ["--every", "1", "--max-restores", "1"], target=100000)
    sup.wait_count("run: checkpoint gen-", 1)
    sup.kill_job()
    sup.wait_count("restored pid", 1)
    sup.kill_job()
    expect_exit(sup, sup.wait(30), 128 + signal.SIGKILL)
    if sup.count("giving up") != 1 or sup.count("--max-restores 1") != 1:
        raise Fail("no line saying why: %s" % " | ".join(sup.lines()[-2:]))


def sigusr1_test(ctx):
    target = 500
    sup = Supervisor(ctx, ["--every", "60"], target=target)
    lib.wait_until(sup.job, 10, "the job as cryo's child")
    time.sleep(0.5)
    os.kill(sup.pid, signal.SIGUSR1)
    sup.wait_count("run: checkpoint gen-000001", 1, 10)
    sup.kill_job()
    sup.wait_count("from gen-000001", 1)
    expect_exit(sup, sup.wait(), 0)
    expect_result(sup, target)


def sigterm_test(ctx):
    sup = Supervisor(ctx, ["--every", "1"], target=100000)
    sup.wait_count("run: checkpoint gen-", 1)
    os.kill(sup.pid, signal.SIGTERM)
    expect_exit(sup, sup.wait(20), 128 + signal.SIGTERM)
    if sup.count("passed on from cryo: not restored") != 1 or sup.count("restored pid"):
        raise Fail("the job stopped by SIGTERM: %s" % " | ".join(sup.lines()[-3:]))


def no_checkpoint_test(ctx):
    sup = Supervisor(ctx, ["--every", "60"], target=100000)
    sup.kill_job()
    expect_exit(sup, sup.wait(10), 128 + signal.SIGKILL)
    if sup.count("no checkpoint yet") != 1:
        raise Fail("no line saying why: %s" % " | ".join(sup.lines()))


def exit_status_test(ctx):
    r = ctx.cryo(lib.CRYO, ["run", "-D", ctx.path("g1"), "--", "sh", "-c", "exit 7"], "seven")
    if lib.exit_code(r.status) != 7:
        raise Fail("a job exiting 7: cryo run %s" % lib.describe_status(r.status))
    r = ctx.cryo(lib.CRYO, ["run", "-D", ctx.path("g2"), "--", ctx.path("nothing")], "enoent")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or not err or "cannot run" not in err[-1]:
        raise Fail("a command that does not exist: %s: %s" % (lib.describe_status(r.status), err))


PRINTER = ("import sys, time\n"
           "for i in range(int(sys.argv[1])):\n"
           "    print(i, flush=True)\n"
           "    time.sleep(0.01)\n")


def printed_once_restored(ctx, sup, lines, n):
    """The job printing 0..n-1, killed once and restored: every line in
    order, no gap, going back only once (the lines after the newest
    generation, printed again by the restored job)."""
    sup.wait_count("run: checkpoint gen-", 1)
    sup.kill_job()
    sup.wait_count("restored pid", 1)
    expect_exit(sup, sup.wait(), 0)
    lines = lines()
    if not all(x.isdigit() for x in lines):
        raise Fail("not the job's output: %r" % [x for x in lines if not x.isdigit()][:3])
    got = [int(x) for x in lines]
    steps = [b - a for a, b in zip(got, got[1:])]
    if not got or got[0] != 0 or got[-1] != n - 1 or any(d > 1 for d in steps):
        gaps = [(a, b) for a, b in zip(got, got[1:]) if b - a > 1]
        raise Fail("the output does not run from 0 to %d without a gap: %s ... %s, gaps %s"
                   % (n - 1, got[:3], got[-3:], gaps[:3]))
    if sum(d < 1 for d in steps) != 1:
        raise Fail("%d places where the output goes back, expected 1 (the restore)"
                   % sum(d < 1 for d in steps))
    ctx.notes.append("%d lines for %d: %d printed again after the restore"
                     % (len(got), n, len(got) - n))


def stdout_pipe_test(ctx):
    """cryo run's stdout a pipe to a reader outside (`cryo run ... | cat`):
    the restored job is given the same pipe again (no new one nobody
    reads), and the dump's endpoint lines stay out of the job's output."""
    n = 400
    r, w = os.pipe()
    log = ctx.path("log")
    cat = lib.spawn(["/bin/cat"], stdin=r, stdout=log)
    sup = Supervisor(ctx, ["--every", "1"], command=[sys.executable, "-c", PRINTER, str(n)],
                     stdout=w)
    os.close(r)
    os.close(w)

    def lines():
        lib.wait_pid(cat, 10, "cat")
        return lib.read_text(log).split()
    printed_once_restored(ctx, sup, lines, n)


def terminal_test(ctx):
    """cryo run on a terminal: the job is checkpointed and restored as a
    shell job, back on cryo's terminal."""
    n = 400
    master, slave = lib.open_pty()
    try:
        sup = Supervisor(ctx, ["--every", "1"], command=[sys.executable, "-c", PRINTER, str(n)],
                         ctty=slave)
    finally:
        os.close(slave)

    def lines():
        master.drain(1)
        return [x.strip() for x in master.lines if x.strip()]
    printed_once_restored(ctx, sup, lines, n)
    master.close()


KILL_POINTS = ("dump-frozen", "dump-collected", "dump-written", "dump-committed", "run-renamed")


def killed_at_test(point):
    """cryo SIGKILLed by its test hook at one point of its second
    checkpoint: the job goes on unharmed; after a machine restart (the job
    killed too) --resume restores the newest committed generation — the
    first, or the second once it was renamed — and the job ends right."""
    def fn(ctx):
        target = 600
        arm = ctx.path("arm")
        env = dict(os.environ, CRYO_TEST_KILL_AT=point, CRYO_TEST_ARM=arm)
        sup = Supervisor(ctx, ["--every", "1"], target=target, env=env)
        sup.wait_count("run: checkpoint gen-000001", 1)
        job = lib.wait_until(sup.job, 10, "the job as cryo's child")
        with open(arm, "w"):
            pass
        st = sup.wait(30)
        if not os.WIFSIGNALED(st) or os.WTERMSIG(st) != signal.SIGKILL:
            raise Fail("cryo run was not killed at %s: %s" % (point, lib.describe_status(st)))
        before = int(lib.read_text(sup.out).split()[0])
        lib.wait_until(lambda: int(lib.read_text(sup.out).split()[0]) > before + 20, 10,
                       "the job counting on after cryo was killed at %s" % point)
        os.kill(job, signal.SIGKILL)
        lib.wait_pid(job, 10, "the job")
        want = "gen-000002" if point == "run-renamed" else "gen-000001"
        if sup.gens()[-1] != want:
            raise Fail("killed at %s, the newest generation is %s, not %s"
                       % (point, sup.gens(), want))
        os.unlink(arm)
        again = Supervisor(ctx, ["--resume", "--every", "60"], tag="resume")
        expect_exit(again, again.wait(), 0)
        if again.count("from %s" % want) != 1:
            raise Fail("not resumed from %s: %s" % (want, " | ".join(again.lines())))
        expect_result(again, target)
    return fn


def ended_in_checkpoint_test(ctx):
    """The job exits (status 7) while a checkpoint is under way (held by
    the test hook before the freeze): cryo run exits with the job's status,
    and restores nothing (it took such a job as killed and restored it, or
    lost its status and waited for ever)."""
    go = ctx.path("go")
    env = dict(os.environ, CRYO_TEST_WAIT_AT="dump-preread", CRYO_TEST_GO=go)
    sup = Supervisor(ctx, ["--every", "1"], env=env,
                     command=[sys.executable, "-c", "import time; time.sleep(1.5); exit(7)"])
    lib.wait_until(lambda: os.path.exists(go + ".waiting"), 20, "the checkpoint at its hook")
    job = lib.wait_until(sup.job, 10, "the job as cryo's child")
    lib.wait_until(lambda: lib.proc_state(job) == "Z", 10, "the job ending")
    with open(go, "w"):
        pass
    expect_exit(sup, sup.wait(30), 7)
    if sup.count("restored pid") or sup.count("killed by signal"):
        raise Fail("a job that ended during a checkpoint: %s" % " | ".join(sup.lines()[-4:]))


def incremental_test(ctx):
    """--full-every 3 with a 64 MiB job: between full checkpoints each holds
    only what changed (incremental on the previous), pruning keeps the
    chains of the kept generations, the newest (incremental) one shows and
    restores, and the job ends with exactly the result of an uninterrupted run."""
    target = 1200
    sup = Supervisor(ctx, ["--every", "1", "--keep", "2", "--full-every", "3"], target=target,
                     mib=64)
    sup.wait_count("run: checkpoint gen-", 5, 60)
    found = [CKPT_LINE.search(line) for line in sup.lines()]
    found = [(m, line) for m, line in zip(found, sup.lines()) if m]
    full = [int(m.group(2)) for m, line in found if "incremental on" not in line]
    incr = [int(m.group(2)) for m, line in found if "incremental on" in line]
    if len(full) < 2 or len(incr) < 2:
        raise Fail("expected full checkpoints every 3 and incremental ones between: %s"
                   % [line for m, line in found])
    if max(incr) * 4 > min(full):
        raise Fail("incremental checkpoints wrote %s pages, full ones %s" % (incr, full))
    gens = sup.gens()
    newest = gens[-1]
    missing = [c for c in sup.chain(newest) if c not in gens]
    if missing:
        raise Fail("pruning removed %s, in the chain of %s" % (missing, newest))
    if len(gens) > 2 + 3 - 1:
        raise Fail("%d generations kept with --keep 2 --full-every 3: %s" % (len(gens), gens))
    ctx.expect_ok(ctx.cryo(lib.CRYO, ["show", os.path.join(sup.dir, newest)], "show", limit=60),
                  "cryo show of the newest generation")
    sup.kill_job()
    sup.wait_count("restored pid", 1, 30)
    expect_exit(sup, sup.wait(120), 0)
    expect_result(sup, target)
    ctx.notes.append("full checkpoints wrote %s pages, incremental ones %s" % (full, incr))


def tests():
    return [("run/restores", restores_test, 120),
            ("run/resume", resume_test, 90),
            ("run/take-over", take_over_test, 120),
            ("run/checkpoint-command", checkpoint_command_test, 120),
            ("run/stdout-pipe", stdout_pipe_test, 60),
            ("run/incremental", incremental_test, 120),
            ("run/terminal", terminal_test, 60),
            ("run/killed-mid-checkpoint", killed_mid_checkpoint_test, 120),
            ] + [("run/killed-at/" + p, killed_at_test(p), 60) for p in KILL_POINTS] + [
            ("run/max-restores", max_restores_test, 60),
            ("run/sigusr1", sigusr1_test, 60),
            ("run/no-checkpoint", no_checkpoint_test, 30),
            ("run/sigterm", sigterm_test, 30),
            ("run/exit-status", exit_status_test, 30),
            ("run/ended-in-checkpoint", ended_in_checkpoint_test, 60)]

"""Tests of the progress line, run by tests/run.py (`make test`) as the
tests named progress/...

  progress/terminal   a dump and a restore whose log goes to a terminal
                      show "cryo dump: N MiB of memory written (R MiB/s)"
                      and "cryo restore: N MiB of memory restored ...",
                      rewritten in place (\\r, erase line) and cleared at the
                      end; the same dump with stderr in a file, or with -v2
                      on the terminal, shows none. CRYO_PROGRESS_AFTER_MS=0
                      makes the line start at once instead of after a
                      second, so that a small job shows it.

    python3 tests/run.py progress/     only these
"""
import os
import re
import signal
import sys

import lib
from lib import Fail

HOG = ("import sys, time\n"
       "ballast = bytearray(b'\\x5a' * (64 << 20))\n"
       "print('ready', flush=True)\n"
       "time.sleep(600)\n")
LINE = re.compile(r"\r\x1b\[Kcryo (dump|restore): (\d+) MiB of memory (written|restored) "
                  r"\((\d+) MiB/s\)")


def on_terminal(ctx, args, tag):
    """Runs cryo with stderr (and stdout) on a new terminal; what it showed."""
    master, slave = lib.open_pty()
    env = dict(os.environ, CRYO_PROGRESS_AFTER_MS="0")
    try:
        pid = lib.spawn([lib.CRYO] + args, cwd=ctx.dir, ctty=slave, env=env)
    finally:
        os.close(slave)
    run = lib.Run([lib.CRYO] + args, pid)
    ctx.runs.append(run)
    run.status = lib.wait_pid(pid, 60, "cryo " + tag)
    master.drain(2)
    text = "\n".join(master.lines)
    master.close()
    if lib.exit_code(run.status) != 0:
        raise Fail("cryo %s on a terminal: %s: %r" % (tag, lib.describe_status(run.status),
                                                      text[-300:]))
    return text


def expect_progress(text, step):
    shown = [m for m in LINE.finditer(text) if m.group(1) == step]
    if not shown:
        raise Fail("no progress line of %s on the terminal: %r" % (step, text[-300:]))
    end = text[shown[-1].end():]
    if not end.startswith("\r\x1b[K"):
        raise Fail("the progress line of %s is not cleared at the end: %r" % (step, end[:80]))
    return max(int(m.group(2)) for m in shown)


def hog(ctx):
    out = ctx.path("hog.out")
    pid = lib.spawn([sys.executable, "-c", HOG], cwd=ctx.dir, stdout=out, session="setsid")
    lib.wait_until(lambda: "ready" in lib.read_text(out), 20, "the job's memory")
    return pid


def terminal_test(ctx):
    pid = hog(ctx)
    images = ctx.path("ck")
    quiet = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("ck0"), "-R"], "quiet",
                     env=dict(os.environ, CRYO_PROGRESS_AFTER_MS="0"))
    ctx.expect_ok(quiet, "cryo dump -R with stderr in a file")
    if "MiB of memory" in lib.read_text(quiet.err):
        raise Fail("a progress line in a log file: %r" % lib.read_text(quiet.err)[:200])
    verbose = on_terminal(ctx, ["dump", "-t", str(pid), "-D", ctx.path("ck1"), "-R", "-v2"],
                          "dump -v2")
    if LINE.search(verbose):
        raise Fail("a progress line among the log lines of -v2")
    mib = expect_progress(on_terminal(ctx, ["dump", "-t", str(pid), "-D", images], "dump"),
                          "dump")
    lib.wait_pid(pid, 10, "the dumped job")
    text = on_terminal(ctx, ["restore", "-D", images, "-d"], "restore")
    lib.tracked.add(pid)
    os.kill(pid, signal.SIGKILL)
    lib.wait_until(lambda: lib.proc_state(pid) is None, 10, "the restored job to end")
    restored = expect_progress(text, "restore")
    ctx.notes.append("progress shown up to %d MiB written, %d MiB restored" % (mib, restored))


def tests():
    return [("progress/terminal", terminal_test, 90)]

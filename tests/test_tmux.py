"""The tmux-vim/... tests (run by run.py): a real program on pseudo-terminals
of its own. A tmux server (private socket in the test's work dir, no client
attached) runs vim on a file that does not exist yet, with a line typed and
unsaved; the server is checkpointed (killed and restored, or left running
with -R); afterwards the server and vim keep their pids, `tmux capture-pane`
still shows the line, and `:wq` sent through tmux writes it to the file.
Only the pids this test started are killed (the harness, a subreaper, ends
whatever is left below it)."""
import os
import shutil
import time
import signal
import subprocess

import lib
from lib import Fail

TEXT = "hello from before the checkpoint"


def tmux(ctx, *args):
    env = dict(os.environ, TERM="xterm", TMUX_TMPDIR=ctx.dir)
    env.pop("TMUX", None)
    r = subprocess.run([shutil.which("tmux"), "-S", ctx.path("tmux.sock"), "-f", "/dev/null"] +
                       list(args), cwd=ctx.dir, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=10)
    if r.returncode:
        raise Fail("tmux %s: exit %d: %s" % (args[0], r.returncode, r.stderr.strip()))
    return r.stdout


def pane(ctx):
    return tmux(ctx, "capture-pane", "-p")


def start(ctx, note):
    tmux(ctx, "new-session", "-d", "-x", "80", "-y", "24",
         "vim -u NONE -N -n -i NONE %s" % note)
    server = int(tmux(ctx, "display-message", "-p", "#{pid}").strip())
    vim = int(tmux(ctx, "display-message", "-p", "#{pane_pid}").strip())
    lib.tracked.update((server, vim))
    ctx.notes.append("tmux server pid %d, vim pid %d" % (server, vim))
    lib.wait_until(lambda: "~" in pane(ctx), 10, "waiting for vim to draw")
    tmux(ctx, "send-keys", "i" + TEXT, "Escape")
    lib.wait_until(lambda: TEXT in pane(ctx), 10, "waiting for vim to show the line")
    return server, vim


def checkpoint(ctx, server, vim, mode):
    images = ctx.path("images")
    args = ["dump", "-t", server, "-D", images, "-v4", "-o", ctx.path("dump.log")]
    if mode == "leave-running":
        args.append("-R")
    ctx.expect_ok(ctx.cryo(lib.CRYO, args, "dump"), "cryo dump")
    if mode != "restore":
        return
    lib.wait_until(lambda: all(lib.proc_state(p) is None for p in (server, vim)), 10,
                   "waiting for the dumped tmux and vim to end")
    ctx.expect_ok(ctx.cryo(lib.CRYO, ["restore", "-D", images, "-d", "-v4", "-o",
                                      ctx.path("restore.log")], "restore"), "cryo restore -d")


def check_after(ctx, server, vim, note):
    for pid, what in ((server, "tmux server"), (vim, "vim")):
        st = lib.proc_state(pid)
        if st is None or st == "Z":
            raise Fail("%s (pid %d) is not running after the checkpoint" % (what, pid))
    if os.path.exists(note):
        raise Fail("%s exists before :wq (vim saved it on its own)" % note)
    shown = pane(ctx)
    if TEXT not in shown:
        raise Fail("capture-pane after the checkpoint lacks the line: %r" % shown[:200])
    tmux(ctx, "send-keys", ":wq", "Enter")
    lib.wait_until(lambda: os.path.exists(note) and lib.read_text(note) == TEXT + "\n", 10,
                   "waiting for :wq to write %s" % note)
    lib.wait_until(lambda: lib.proc_state(vim) in (None, "Z"), 10, "waiting for vim to exit")


def tmux_test(mode):
    def fn(ctx):
        if not shutil.which("tmux") or not shutil.which("vim"):
            raise Fail("tmux or vim is not installed (make deps)")
        note = ctx.path("note.txt")
        server, vim = start(ctx, note)
        try:
            checkpoint(ctx, server, vim, mode)
            check_after(ctx, server, vim, note)
        finally:
            for pid in (vim, server):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            # what the server forked (a client, a pane's process) ends with
            # it, not at once: give it time before the harness looks for
            # processes left running (which it still reports if any stays)
            end = time.monotonic() + 5
            while time.monotonic() < end and any(lib.alive(p) for p in lib.descendants()):
                lib.reap()
                time.sleep(0.05)
    return fn


def tests():
    return [("tmux-vim/" + mode, tmux_test(mode), 60) for mode in ("restore", "leave-running")]

"""Tests of the dump options about files, run by tests/run.py (`make test`)
as the tests named files/...: each option's effect on a workload of
tests/workloads (their own checks after the restore are the workload's).

  files/ghost-limit   --ghost-limit: a deleted sparse file with more data
                      than the limit (holes not counted) stops the dump
                      with one line naming the option, leaving the
                      workload running untouched; a limit above its data
                      (though far below its size) lets the dump pass.
  files/link-remap    --link-remap: without it, a file removed from the
                      path it was opened by but still linked elsewhere
                      stops the dump with one line naming the option and
                      no name is left behind; with it (and -R) the dump
                      links it back under one temporary name, and the
                      workload, left running, passes its checks.
  files/udp-queued    a UDP socket with a datagram waiting to be read
                      stops the dump with one line naming the fd; the
                      workload then reads the datagram, whole, once, from
                      its sender.

    python3 tests/run.py files/     only these
"""
import os

import lib
from lib import Fail

WL_BIN = os.path.join(lib.ROOT, "build", "tests")


def start(ctx, name):
    argv = [os.path.join(WL_BIN, name)]
    if not os.access(argv[0], os.X_OK):
        raise Fail("%s is not built (make workloads)" % argv[0])
    pid = lib.spawn(argv, cwd=ctx.dir, stdout=ctx.path("out.log"), stderr="stdout",
                    session="setsid")
    ctx.notes.append("workload pid %d" % pid)
    lib.wait_until(lambda: os.path.exists(ctx.path("ready")) or lib.poll_pid(pid) is not None,
                   20, "waiting for the workload to be ready")
    if lib.poll_pid(pid) is not None:
        raise Fail("the workload ended before it was ready: %s" % lib.tail(ctx.path("out.log"), 3))
    return pid


def finish(ctx, pid):
    with open(ctx.path("go"), "w"):
        pass
    st = lib.wait_pid(pid, 20, "waiting for the workload to finish")
    text = lib.read_text(ctx.path("out.log"))
    if lib.exit_code(st) != 0 or "wl: FAIL" in text:
        raise Fail("the workload ended with %s: %s" % (lib.describe_status(st),
                                                        text.strip()[-300:]))


def ghost_limit_test(ctx):
    pid = start(ctx, "fd_deleted_sparse")
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("small"), "-R",
                            "--ghost-limit=16K"], "small")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "--ghost-limit of 16384" not in err[0]:
        raise Fail("dump --ghost-limit=16K of 8 GiB holding ~50 KiB of data: %s, %r" % (
            lib.describe_status(r.status), err))
    if lib.proc_state(pid) not in ("S", "R"):
        raise Fail("after the refused dump the workload is %s" % lib.proc_state(pid))
    ctx.notes.append("refused: " + err[0])
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("big"), "-R",
                            "--ghost-limit=1M"], "big")
    ctx.expect_ok(r, "dump --ghost-limit=1M")
    finish(ctx, pid)


def remap_names(ctx):
    return [n for n in os.listdir(ctx.dir) if n.startswith(".cryo-link-remap.")]


def link_remap_test(ctx):
    pid = start(ctx, "fd_link_remap")
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("without"), "-R"], "without")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "--link-remap" not in err[0]:
        raise Fail("dump without --link-remap: %s, %r" % (lib.describe_status(r.status), err))
    if remap_names(ctx):
        raise Fail("the refused dump left %r" % remap_names(ctx))
    ctx.notes.append("refused: " + err[0])
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("with"), "-R", "--link-remap"],
                 "with")
    ctx.expect_ok(r, "dump --link-remap")
    if len(remap_names(ctx)) != 1:
        raise Fail("dump --link-remap made %r, expected one name" % remap_names(ctx))
    finish(ctx, pid)


def udp_queued_test(ctx):
    pid = start(ctx, "sk_udp_queued")
    r = ctx.cryo(lib.CRYO, ["dump", "-t", pid, "-D", ctx.path("images"), "-R"], "dump")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "datagrams waiting" not in err[0] \
            or "fd 3 of pid %d" % pid not in err[0]:
        raise Fail("dump of a UDP socket with a datagram queued: %s, %r" % (
            lib.describe_status(r.status), err))
    ctx.notes.append("refused: " + err[0])
    finish(ctx, pid)


def tests():
    return [("files/ghost-limit", ghost_limit_test, 30),
            ("files/link-remap", link_remap_test, 30),
            ("files/udp-queued", udp_queued_test, 30)]

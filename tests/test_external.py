"""Tests of endpoints outside the checkpoint (--inherit-fd), run by
tests/run.py (`make test`) as the tests named external/...:

  external/pipe-job/restore     a job (tests/workloads/ext_pipe_job.c) reads
                                its stdin from a pipe the test writes and
                                writes its stdout into a pipe read by `cat >>
                                LOG`, both outside the tree. 80 lines are
                                written, the last 30 still in the pipe when
                                cat is stopped; the dump (which kills) prints
                                the two --inherit-fd a restore needs; cat,
                                continued, drains the 30 lines. A restore
                                without them fails with one line naming fd 0,
                                fd 1 and the option, and creates no process;
                                `cryo restore -d --inherit-fd ... <&CTL | tee
                                -a LOG` then restores it: the 20 lines it
                                writes next reach LOG through tee. LOG holds
                                lines 0..99, each once, in order.
  external/pipe-job/leave-running  the same with -R: the original goes on
                                (its reader gets lines 0..99), then, once it
                                ended, the restored copy writes lines 80..99
                                to a new reader: exactly what came after the
                                dump.
  external/unix-stream/MODE     (MODE restore or leave-running: with -R the
                                original goes on, writes lines 80..99 to the
                                old peer and ends first) the job's stdout is a unix stream socket whose
                                peer the test holds: refused without
                                --external unix[INO] (named by the error),
                                dumped with it, restored with --inherit-fd
                                fd[1]:socket:[INO] onto a new pair: the new
                                peer reads lines 80..99, then the end.
  external/unix-dgram/MODE      (as above, -R: lines 5..7 to the old
                                socket first) the job's stdout is a datagram socket
                                connected to a path the test bound: refused
                                without --ext-unix-sk, dumped with it, and
                                connected to the path again at restore: the
                                test's socket gets lines 0..7 in order.
  external/bad-spec             a malformed --inherit-fd, one naming an fd
                                cryo does not hold, and one whose fd is not
                                a socket each fail with one line, exit 1 or 2.

    python3 tests/run.py external/     only these
"""
import os
import re
import signal
import subprocess
import time

import lib
from lib import Fail

JOB = os.path.join(lib.ROOT, "build", "tests", "ext_pipe_job")


def wait_lines(path, n, what):
    lib.wait_until(lambda: len(lib.read_text(path).splitlines()) >= n, 10, what)


def pipe_bytes(fd):
    """The bytes waiting in the pipe of fd (FIONREAD)."""
    import fcntl
    import struct
    import termios
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def start_job(ctx, log):
    """The job and its reader `cat >> log`; returns (job pid, cat pid, ctl fd)."""
    if not os.access(JOB, os.X_OK):
        raise Fail("%s is not built (make workloads)" % JOB)
    ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    cat = lib.spawn(["/bin/sh", "-c", "exec cat >> '%s'" % log], stdin=out_r, session="setsid")
    job = lib.spawn([JOB], stdin=ctl_r, stdout=out_w, stderr=ctx.path("job.err"),
                    session="setsid")
    os.close(ctl_r)
    os.close(out_r)
    ctx.notes.append("job pid %d, reader pid %d" % (job, cat))
    os.write(ctl_w, b"x" * 50)
    wait_lines(log, 50, "waiting for the first 50 lines in the log")
    os.kill(cat, signal.SIGSTOP)
    lib.wait_until(lambda: lib.proc_state(cat) == "T", 10, "waiting for the reader to stop")
    os.write(ctl_w, b"x" * 30)
    lib.wait_until(lambda: pipe_bytes(out_w) == sum(len("line %d\n" % i)
                                                    for i in range(50, 80)),
                   10, "waiting for 30 lines in the stopped reader's pipe")
    os.close(out_w)
    return job, cat, ctl_w


def check_lines(path, first, last, what):
    want = ["line %d" % i for i in range(first, last)]
    got = lib.read_text(path).splitlines()
    if got != want:
        raise Fail("%s: %d lines, from %r to %r; expected lines %d..%d once each, in order" % (
            what, len(got), got[:1], got[-1:], first, last - 1))


def restore_without(ctx, images, pid):
    """Without the --inherit-fd the dump printed: one line, nothing created."""
    before = set(lib.descendants())
    r = ctx.cryo(lib.CRYO, ["restore", "-D", images, "-d"], "refused")
    err = lib.read_text(r.err).strip().splitlines()
    if (lib.exit_code(r.status) != 1 or len(err) != 1 or "fd 0 of pid %d" % pid not in err[0]
            or "fd 1 of pid %d" % pid not in err[0] or "--inherit-fd 'fd[1]:pipe:[" not in err[0]):
        raise Fail("restore without --inherit-fd: %s, %r" % (lib.describe_status(r.status), err))
    if lib.alive(pid) or set(lib.descendants()) - before:
        raise Fail("the refused restore left processes: %r" % (set(lib.descendants()) - before))
    ctx.notes.append("refused: " + err[0])


def restore_into(ctx, images, specs, log, pid):
    """`cryo restore -d --inherit-fd ... <&CTL | tee -a LOG`; 20 more lines."""
    ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
    args = " ".join("--inherit-fd '%s'" % s for s in specs)
    cmd = "%s restore -D '%s' -d %s -v4 -o '%s' <&%d | tee -a '%s' >/dev/null" % (
        lib.CRYO, images, args, ctx.path("restore.log"), ctl_r, log)
    ctx.notes.append(cmd)
    sh = subprocess.Popen(["/bin/sh", "-c", cmd], pass_fds=[ctl_r], cwd=ctx.dir)
    os.close(ctl_r)
    lib.wait_until(lambda: lib.alive(pid) and "restored pid" in lib.read_text(
        ctx.path("restore.log")) or sh.poll() is not None, 20, "waiting for the restore")
    if not lib.alive(pid):
        raise Fail("restore: %s" % lib.tail(ctx.path("restore.log"), 2))
    os.write(ctl_w, b"y" * 20)
    os.close(ctl_w)  # the job's end of input: it exits, tee sees the end
    try:
        st = sh.wait(20)
    except subprocess.TimeoutExpired:
        raise Fail("the restored job and tee did not end")
    if st != 0:
        raise Fail("cryo restore | tee ended with %d: %s" % (st, lib.tail(
            ctx.path("restore.log"), 2)))
    lib.wait_until(lambda: not lib.alive(pid), 10, "waiting for the restored job to end")


def dump_job(ctx, job, images, extra):
    r = ctx.cryo(lib.CRYO, ["dump", "-t", job, "-D", images, "-v4", "-o",
                            ctx.path("dump.log")] + extra, "dump")
    ctx.expect_ok(r, "cryo dump")
    out = lib.read_text(ctx.path("dump.out"))
    specs = re.findall(r"--inherit-fd '([^']+)'", out)
    if len(specs) != 2 or not specs[0].startswith("fd[0]:pipe:[") or \
            not specs[1].startswith("fd[1]:pipe:["):
        raise Fail("the dump printed %r, expected the --inherit-fd of fd 0 and 1" % out)
    return specs


def pipe_job_test(mode):
    def fn(ctx):
        log, images = ctx.path("job.log"), ctx.path("images")
        open(log, "w").close()
        job, cat, ctl_w = start_job(ctx, log)
        specs = dump_job(ctx, job, images, ["-R"] if mode == "leave-running" else [])
        os.kill(cat, signal.SIGCONT)
        if mode == "leave-running":
            os.write(ctl_w, b"x" * 20)
        os.close(ctl_w)
        st = lib.wait_pid(job, 20, "waiting for the dumped job to end")
        lib.wait_pid(cat, 20, "waiting for the first reader to end")
        if mode == "leave-running":
            if lib.exit_code(st) != 0:
                raise Fail("the job left running ended with %s" % lib.describe_status(st))
            check_lines(log, 0, 100, "the first reader's log")
            log = ctx.path("new.log")
            open(log, "w").close()
        else:
            check_lines(log, 0, 80, "the log once the first reader drained the pipe")
            restore_without(ctx, images, job)
        restore_into(ctx, images, specs, log, job)
        check_lines(log, 80 if mode == "leave-running" else 0, 100, "the log after restore")
    return fn


def bad_spec_test(ctx):
    images = ctx.path("none")
    os.mkdir(images)
    for spec, want in (("fd[x]:pipe:[1]", "expected fd[N]:RESOURCE"),
                       ("fd[1]:pipe:[12", "expected pipe:[INODE]"),
                       ("fd[57]:pipe:[1]", "cryo has no fd 57"),
                       ("fd[0]:socket:[1]", "fd 0 is not a socket")):  # /dev/null
        r = ctx.cryo(lib.CRYO, ["restore", "-D", images, "--inherit-fd", spec], "bad",
                     )
        err = lib.read_text(r.err).strip().splitlines()
        if lib.exit_code(r.status) not in (1, 2) or len(err) != 1 or want not in err[0]:
            raise Fail("--inherit-fd %s: %s, %r (expected %r)" % (
                spec, lib.describe_status(r.status), err, want))
        ctx.notes.append(err[0])


def unix_stream_test(mode):
    return lambda ctx: unix_stream(ctx, ["-R"] if mode == "leave-running" else [])


def unix_dgram_test(mode):
    return lambda ctx: unix_dgram(ctx, ["-R"] if mode == "leave-running" else [])


def left_running(job, ctl_w, n, recv):
    """-R: the original writes n more lines (recv takes them), then ends."""
    os.write(ctl_w, b"z" * n)
    recv(n)
    os.close(ctl_w)
    st = lib.wait_pid(job, 20, "waiting for the job left running to end")
    if lib.exit_code(st) != 0:
        raise Fail("the job left running ended with %s" % lib.describe_status(st))


def unix_stream(ctx, dargs):
    """The job's stdout a unix stream socket whose peer the test holds."""
    import socket
    images = ctx.path("images")
    ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
    a, b = socket.socketpair()
    job = lib.spawn([JOB], stdin=ctl_r, stdout=b.fileno(), stderr=ctx.path("job.err"),
                    session="setsid")
    ino = os.fstat(b.fileno()).st_ino
    os.close(ctl_r)
    b.close()
    os.write(ctl_w, b"x" * 80)
    got = b""
    a.settimeout(10)
    while got.count(b"\n") < 80:
        got += a.recv(65536)
    r = ctx.cryo(lib.CRYO, ["dump", "-t", job, "-D", images, "-R"], "without")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "--external unix[%d]" % ino not in err[0]:
        raise Fail("dump without --external: %s, %r" % (lib.describe_status(r.status), err))
    r = ctx.cryo(lib.CRYO, ["dump", "-t", job, "-D", images, "--external", "unix[%d]" % ino]
                 + dargs, "dump")
    ctx.expect_ok(r, "cryo dump --external")
    specs = re.findall(r"--inherit-fd '([^']+)'", lib.read_text(ctx.path("dump.out")))
    if "fd[1]:socket:[%d]" % ino not in specs:
        raise Fail("the dump printed %r" % specs)
    if dargs:
        def recv(n):
            more = b""
            while more.count(b"\n") < n:
                more += a.recv(65536)
            if more != "".join("line %d\n" % i for i in range(80, 80 + n)).encode():
                raise Fail("the job left running wrote %r" % more[:200])
        left_running(job, ctl_w, 20, recv)
    else:
        os.close(ctl_w)
        lib.wait_pid(job, 20, "waiting for the dumped job to end")
    c, d = socket.socketpair()
    ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
    r = lib.run([lib.CRYO, "restore", "-D", images, "-d"] + sum(
            [["--inherit-fd", s] for s in specs], []), 20, cwd=ctx.dir, err=ctx.path(
            "restore.err"), log=ctx.runs, stdin=ctl_r, out=d.fileno())
    ctx.expect_ok(r, "cryo restore --inherit-fd")
    os.close(ctl_r)
    d.close()
    os.write(ctl_w, b"y" * 20)
    os.close(ctl_w)
    got = b""
    c.settimeout(10)
    while True:
        more = c.recv(65536)
        if not more:
            break
        got += more
    want = "".join("line %d\n" % i for i in range(80, 100)).encode()
    if got != want:
        raise Fail("the new peer got %r, expected lines 80..99" % got[:200])
    restored_job_ends(job)


def unix_dgram(ctx, dargs):
    """The job's stdout a datagram socket connected to a path the test bound."""
    import socket
    images, path = ctx.path("images"), ctx.path("srv.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(10)
    cl = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    cl.connect(path)
    ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
    job = lib.spawn([JOB], stdin=ctl_r, stdout=cl.fileno(), stderr=ctx.path("job.err"),
                    session="setsid")
    os.close(ctl_r)
    cl.close()
    os.write(ctl_w, b"x" * 5)
    got = [srv.recv(100) for _ in range(5)]
    r = ctx.cryo(lib.CRYO, ["dump", "-t", job, "-D", images, "-R"], "without")
    err = lib.read_text(r.err).strip().splitlines()
    if lib.exit_code(r.status) != 1 or len(err) != 1 or "--ext-unix-sk" not in err[0]:
        raise Fail("dump without --ext-unix-sk: %s, %r" % (lib.describe_status(r.status), err))
    r = ctx.cryo(lib.CRYO, ["dump", "-t", job, "-D", images, "--ext-unix-sk"] + dargs, "dump")
    ctx.expect_ok(r, "cryo dump --ext-unix-sk")
    specs = re.findall(r"--inherit-fd '([^']+)'", lib.read_text(ctx.path("dump.out")))
    if dargs:
        def recv(n):
            more = [srv.recv(100) for _ in range(n)]
            if more != [b"line %d\n" % i for i in range(5, 5 + n)]:
                raise Fail("the job left running sent %r" % more)
        left_running(job, ctl_w, 3, recv)
    else:
        os.close(ctl_w)
        lib.wait_pid(job, 20, "waiting for the dumped job to end")
    ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
    r = lib.run([lib.CRYO, "restore", "-D", images, "-d", "--ext-unix-sk"] + sum(
        [["--inherit-fd", s] for s in specs], []), 20, cwd=ctx.dir,
        err=ctx.path("restore.err"), log=ctx.runs, stdin=ctl_r)
    ctx.expect_ok(r, "cryo restore")
    os.close(ctl_r)
    os.write(ctl_w, b"y" * 3)
    os.close(ctl_w)
    got += [srv.recv(100) for _ in range(3)]
    want = [b"line %d\n" % i for i in range(8)]
    if got != want:
        raise Fail("the socket outside got %r, expected %r" % (got, want))
    restored_job_ends(job)


def restored_job_ends(job):
    """The restored job ends on the end of its input, with status 0 (its
    last line can arrive before it has exited)."""
    st = lib.wait_pid(job, 20, "waiting for the restored job to end")
    if lib.exit_code(st) != 0:
        raise Fail("the restored job ended with %s" % lib.describe_status(st))


def tests():
    return [("external/unix-dgram/restore", unix_dgram_test("restore"), 60),
            ("external/unix-dgram/leave-running", unix_dgram_test("leave-running"), 60),
            ("external/unix-stream/restore", unix_stream_test("restore"), 60),
            ("external/unix-stream/leave-running", unix_stream_test("leave-running"), 60),
            ("external/pipe-job/restore", pipe_job_test("restore"), 60),
            ("external/pipe-job/leave-running", pipe_job_test("leave-running"), 60),
            ("external/bad-spec", bad_spec_test, 30)]

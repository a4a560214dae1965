"""Shared helpers for tests/run.py and tests/demo.py.

Process handling without the subprocess module: every child is started with
spawn() (fork + exec, all other fds closed, default signal dispositions) and
reaped by reap(), which collects every exit status (this process is a child
subreaper, so orphans and restored processes come back to it) into one table
that wait_pid() reads. kill_descendants() ends everything this process
started, directly or not. Also: deadlines, pseudo-terminal readers, and the
seed's counter demo (counter.py on a pty, dump --shell-job, restore
--shell-job from another pty session), used by both the test and the demo.
"""
import ctypes
import errno
import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRYO = os.path.join(ROOT, "build", "cryo")
SAN_CRYO = os.path.join(ROOT, "build", "san", "cryo")
COUNTER = os.path.join(ROOT, "tests", "counter.py")
PR_SET_CHILD_SUBREAPER = 36


class Fail(Exception):
    """A test failed; the message is the reason."""


class Timeout(Fail):
    """The test ran out of time."""


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(e))


# ---------------------------------------------------------------- deadlines

_deadline = None  # (monotonic end, seconds) of the running test, or None


def set_deadline(seconds):
    global _deadline
    _deadline = None if seconds is None else (time.monotonic() + seconds, seconds)


def check_deadline(what):
    if _deadline and time.monotonic() > _deadline[0]:
        raise Timeout("timeout after %g s while %s" % (_deadline[1], what))


# ---------------------------------------------------------------- processes

_status = {}  # pid -> wait status, filled by reap()
tracked = set()  # every pid started or restored (killed at the end if ours)
_readers = []  # PtyReaders pumped while waiting


def reap():
    """Collect the exit status of every child that has ended."""
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _status[pid] = st


def idle(seconds=0.01):
    """Sleep a little while reading the active pseudo-terminals and reaping."""
    fds = [r.fd for r in _readers if not r.eof]
    if fds:
        try:
            ready, _, _ = select.select(fds, [], [], seconds)
        except InterruptedError:
            ready = []
        for r in list(_readers):
            if r.fd in ready:
                r.pump(0)
    else:
        time.sleep(seconds)
    reap()


def describe_status(st):
    if st is None:
        return "still running"
    if os.WIFEXITED(st):
        return "exit %d" % os.WEXITSTATUS(st)
    if os.WIFSIGNALED(st):
        sig = os.WTERMSIG(st)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return "killed by %s" % name
    return "status 0x%x" % st


def exit_code(st):
    """Shell-style exit code: 128+N for a signal."""
    if os.WIFEXITED(st):
        return os.WEXITSTATUS(st)
    if os.WIFSIGNALED(st):
        return 128 + os.WTERMSIG(st)
    return -1


def _ended(pid):
    """The status reap() collected for pid, unless the pid was reused since
    (a live process holds it again: pid_max is 32768 and a whole run of the
    suite wraps it), or None."""
    st = _status.get(pid)
    if st is not None and os.path.exists("/proc/%d" % pid):
        del _status[pid]
        st = None
    return st


def wait_pid(pid, limit, what=None):
    """Wait up to limit seconds for child pid to end; return its wait status.
    Raises Fail on timeout (Timeout if the test's deadline passed)."""
    end = time.monotonic() + limit
    while True:
        reap()
        if _ended(pid) is not None:
            return _status.pop(pid)
        check_deadline(what or "waiting for pid %d" % pid)
        if time.monotonic() > end:
            raise Fail("%s: not done after %g s" % (what or "pid %d" % pid, limit))
        idle()


def poll_pid(pid):
    """Exit status of child pid if it has ended, else None (keeps it for wait_pid)."""
    reap()
    return _ended(pid)


def wait_until(cond, limit, what):
    end = time.monotonic() + limit
    while True:
        v = cond()
        if v:
            return v
        check_deadline(what)
        if time.monotonic() > end:
            raise Fail("%s: not after %g s" % (what, limit))
        idle()


def _proc_table():
    """pid -> (state, ppid) for every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(")") + 2:].split()
        table[int(name)] = (rest[0], int(rest[1]))
    return table


def proc_state(pid):
    """State letter of pid (R, S, T, t, Z...) or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()[0]


def zombie_status(pid):
    """How a zombie ended, from field 52 of /proc/PID/stat (its wait status)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return describe_status(int(data[data.rfind(")") + 2:].split()[49]))
    except (OSError, IndexError, ValueError):
        return "status unknown"


def tree_of(pid):
    """Every process below pid (children of any of its threads), recursively."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/children" % (p, tid)) as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def free_pid():
    """The highest pid no process has now (for a pid that names nothing)."""
    with open("/proc/sys/kernel/pid_max") as f:
        p = int(f.read()) - 1
    while os.path.exists("/proc/%d" % p):
        p -= 1
    return p


def alive(pid):
    """pid exists and is not a zombie."""
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X")


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return None


def descendants():
    """Every process below this one (children first)."""
    table = _proc_table()
    kids = {}
    for pid, (_, ppid) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [os.getpid()]
    while todo:
        p = todo.pop(0)
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def is_ours(pid):
    return pid in descendants()


def kill_descendants(limit=5.0):
    """SIGKILL everything this process started (directly or not) and reap it.
    Returns the pids that were still alive (empty list: nothing was left)."""
    killed = []
    end = time.monotonic() + limit
    while True:
        reap()
        left = descendants()
        if not left:
            break
        for p in left:
            if alive(p) and p not in killed:
                killed.append(p)
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > end:
            break
        time.sleep(0.01)
    for p in list(tracked):
        if proc_state(p) is not None and not is_ours(p):
            tracked.discard(p)  # its pid was reused by someone else: leave it
    reap()
    for r in list(_readers):
        r.close()
    return killed


def spawn(argv, cwd=None, stdin="/dev/null", stdout=None, stderr=None,
          session=None, ctty=None, env=None):
    """Start argv; return its pid.

    stdin/stdout/stderr: a path (stdout/stderr are created/truncated), an
    int fd, or None for /dev/null; stderr="stdout" shares stdout's open file.
    session: None, "setsid" (own session) or "pgrp" (own process group).
    ctty: a pty slave fd: new session with it as controlling terminal, and
    it becomes stdin/stdout/stderr unless those are given explicitly."""
    to_close = []

    def opened(spec, flags):
        if spec is None:
            spec = "/dev/null"
        if isinstance(spec, int):
            return spec
        fd = os.open(spec, flags | os.O_CLOEXEC, 0o644)
        to_close.append(fd)
        return fd

    wflags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    if ctty is not None:
        fd0 = ctty if stdin == "/dev/null" else opened(stdin, os.O_RDONLY)
        fd1 = ctty if stdout is None else opened(stdout, wflags)
        fd2 = (ctty if stderr is None else fd1 if stderr == "stdout"
               else opened(stderr, wflags))
    else:
        fd0 = opened(stdin, os.O_RDONLY)
        fd1 = opened(stdout, wflags)
        fd2 = fd1 if stderr == "stdout" else opened(stderr, wflags)
    errr, errw = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM,
                      signal.SIGCHLD):
                signal.signal(s, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            if ctty is not None:
                os.setsid()
                fcntl.ioctl(ctty, termios.TIOCSCTTY, 0)
            elif session == "setsid":
                os.setsid()
            elif session == "pgrp":
                os.setpgid(0, 0)
            # move the three fds out of the way first, then into place
            hi = [os.dup(fd) for fd in (fd0, fd1, fd2)]
            for i, fd in enumerate(hi):
                os.dup2(fd, i, inheritable=True)
            keep = {0, 1, 2, errw}
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                if fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            if cwd:
                os.chdir(cwd)
            os.execve(argv[0], argv, os.environ if env is None else env)
        except BaseException as e:  # report to the parent, never return
            try:
                os.write(errw, ("%s: %s" % (argv[0], e)).encode())
            finally:
                os._exit(127)
    os.close(errw)
    for fd in to_close:
        os.close(fd)
    msg = b""
    while True:
        chunk = os.read(errr, 4096)
        if not chunk:
            break
        msg += chunk
    os.close(errr)
    tracked.add(pid)
    if msg:
        wait_pid(pid, 5)
        raise Fail("cannot start %s" % msg.decode(errors="replace"))
    return pid


class Run:
    """A command run to completion (or not): its argv, pid, status and files."""

    def __init__(self, argv, pid, err=None):
        self.argv, self.pid, self.err, self.status = argv, pid, err, None
        self.ms = None

    def __str__(self):
        return "%s -> %s" % (" ".join(self.argv), describe_status(self.status))


def run(argv, limit, cwd=None, err=None, out=None, log=None, **kw):
    """Run argv to its end (up to limit seconds); returns a Run with .status.
    log: a list the Run is appended to (for failure reports)."""
    t0 = time.monotonic()
    pid = spawn(argv, cwd=cwd, stdout=out, stderr=err, **kw)
    r = Run(argv, pid, err)
    if log is not None:
        log.append(r)
    try:
        r.status = wait_pid(pid, limit, "%s" % " ".join(argv))
    except Fail:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_pid(pid, 5)
        raise
    r.ms = (time.monotonic() - t0) * 1000
    return r


def netns_tcp_counters(inns):
    """The Tcp: counters of /proc/net/snmp in the namespace INNS (`ip netns
    exec NS`; () for this one)."""
    r = subprocess.run(list(inns) + ["cat", "/proc/net/snmp"], capture_output=True, text=True)
    lines = [l.split() for l in r.stdout.splitlines() if l.startswith("Tcp:")]
    return dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))


def cryo_tables(inns=(), pid=None):
    """cryo's nftables tables (`nft list tables` lines) in the namespace;
    with pid, only those of a checkpoint of that pid (cryo-PID-...: in a
    namespace others share, their tests' tables are not this one's)."""
    r = subprocess.run(list(inns) + ["nft", "list", "tables"], capture_output=True, text=True)
    mark = "cryo-%d-" % pid if pid else "cryo-"
    return [l for l in r.stdout.splitlines() if mark in l]


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def tail(path, n=30):
    lines = read_text(path).splitlines()
    return lines[-n:]


# ---------------------------------------------------------------- ptys

class PtyReader:
    """Reads everything a pseudo-terminal master delivers, as lines."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.lines = []
        self.eof = False
        _readers.append(self)

    def pump(self, timeout):
        """Read what is there (waiting up to timeout s); False at EOF."""
        if self.eof:
            return False
        try:
            ready, _, _ = select.select([self.fd], [], [], timeout)
        except InterruptedError:
            return True
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: every slave fd is closed
                raise
            data = b""
        if not data:
            self.eof = True
            if self.buf:
                self.lines.append(self.buf.decode(errors="replace").rstrip("\r"))
                self.buf = b""
            return False
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append(line.decode(errors="replace").rstrip("\r"))
        return True

    def wait_for(self, pred, limit, what):
        """Pump until pred(lines) is true; return its value."""
        end = time.monotonic() + limit
        while True:
            v = pred(self.lines)
            if v:
                return v
            check_deadline(what)
            if self.eof:
                raise Fail("%s: the terminal was closed" % what)
            if time.monotonic() > end:
                raise Fail("%s: not after %g s" % (what, limit))
            self.pump(0.05)
            reap()

    def drain(self, limit):
        """Read until every slave is closed (or limit s); True if EOF seen."""
        end = time.monotonic() + limit
        while not self.eof and time.monotonic() < end:
            self.pump(0.05)
        return self.eof

    def close(self):
        if self in _readers:
            _readers.remove(self)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.eof = True


def open_pty():
    """A new pseudo-terminal: (master PtyReader, slave fd)."""
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    os.set_inheritable(slave, False)
    # no output processing surprises: keep the line discipline default (ONLCR)
    return PtyReader(master), slave


# ---------------------------------------------------------------- counter demo

COUNT_RE = re.compile(r"^Counter: (\d+)$")
START_RE = re.compile(r"^Counter started with PID: (\d+)$")


def counts(lines):
    return [int(m.group(1)) for m in map(COUNT_RE.match, lines) if m]


def counter_demo(cryo, workdir, say=None, log=None):
    """The seed's demo: counter.py on a terminal, dumped with --shell-job,
    restored with --shell-job in another terminal session; the count goes on
    with the next number and the pid is the same. Raises Fail; returns facts.
    say(text) narrates (demo.py); log collects the cryo Runs."""
    say = say or (lambda text: None)
    log = log if log is not None else []
    images = os.path.join(workdir, "images")
    facts = {}

    old, slave = open_pty()
    pid = spawn([sys.executable, COUNTER], cwd=workdir, ctty=slave)
    os.close(slave)
    facts["pid"] = pid
    say("started %s on a new pseudo-terminal: pid %d" % (COUNTER, pid))
    first = old.wait_for(lambda ls: [m for m in map(START_RE.match, ls) if m], 10,
                         "waiting for counter.py's first line")
    printed = int(first[0].group(1))
    if printed != pid:
        raise Fail("counter.py says its pid is %d, but it was started as %d" % (printed, pid))
    old.wait_for(lambda ls: len(counts(ls)) >= 4, 10, "waiting for counter.py to count")
    orig_cmd = cmdline(pid)
    for line in old.lines:
        say("  | " + line)
    shown = len(old.lines)

    say("checkpointing pid %d: %s dump -t %d -D %s --shell-job" % (pid, cryo, pid, images))
    r = run([cryo, "dump", "-t", str(pid), "-D", images, "--shell-job", "-v4",
             "-o", os.path.join(workdir, "dump.log")], 20,
            err=os.path.join(workdir, "dump.err"), log=log)
    if exit_code(r.status) != 0:
        raise Fail("cryo dump: %s: %s" % (describe_status(r.status),
                                          read_text(r.err).strip()))
    facts["dump_ms"] = r.ms
    say("dumped in %.0f ms (cryo dump exit status 0)" % r.ms)
    st = wait_pid(pid, 5, "waiting for the dumped counter to be killed")
    if not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL):
        raise Fail("the dumped counter ended with %s, expected SIGKILL" % describe_status(st))
    if proc_state(pid) is not None:
        raise Fail("pid %d still exists after the dump" % pid)
    say("the original process is gone (%s); pid %d no longer exists" % (describe_status(st), pid))
    if not old.drain(5):
        raise Fail("the old terminal still has a writer after the dump")
    for line in old.lines[shown:]:
        say("  | " + line + "    (printed before the dump, read after it)")
    before = counts(old.lines)
    last = before[-1]
    facts["last_before"] = last
    old.close()
    say("last count printed before the dump: %d" % last)

    new, slave = open_pty()
    say("restoring from another terminal session: %s restore -D %s --shell-job" % (cryo, images))
    t0 = time.monotonic()
    rpid = spawn([cryo, "restore", "-D", images, "--shell-job", "-v4",
                  "-o", os.path.join(workdir, "restore.log")], cwd=workdir, ctty=slave)
    os.close(slave)
    tracked.add(pid)
    rrun = Run([cryo, "restore", "-D", images, "--shell-job", "-v4", "-o",
                os.path.join(workdir, "restore.log")], rpid)
    log.append(rrun)

    def first_count(lines):
        st = poll_pid(rpid)
        if st is not None:
            rrun.status = st
            new.drain(1)
            raise Fail("cryo restore ended (%s) before the counter printed; its terminal "
                       "said: %s" % (describe_status(st), " / ".join(new.lines)[-500:]))
        return counts(lines)

    after = new.wait_for(first_count, 10, "waiting for the restored counter's output")
    facts["restore_ms"] = (time.monotonic() - t0) * 1000
    got = after[0]
    facts["first_after"] = got
    if not alive(pid):
        raise Fail("the restored counter prints, but pid %d does not exist" % pid)
    if cmdline(pid) != orig_cmd:
        raise Fail("/proc/%d/cmdline is %r, was %r" % (pid, cmdline(pid), orig_cmd))
    say("restored: pid %d exists again, /proc/%d/cmdline = %s" % (
        pid, pid, orig_cmd.replace(b"\0", b" ").decode().strip()))
    new.wait_for(lambda ls: len(counts(ls)) >= 3, 10, "waiting for the counter to go on")
    for line in new.lines:
        say("  | " + line)
    if any(START_RE.match(l) for l in new.lines):
        raise Fail("the restored counter started over: %r" % new.lines)
    if got != last + 1:
        raise Fail("the count goes on with %d after %d (expected %d)" % (got, last, last + 1))
    seq = counts(new.lines)
    if seq != list(range(got, got + len(seq))):
        raise Fail("restored counter output is not consecutive: %r" % seq)
    say("same pid %d; the count continues: %d before the dump, %d after the restore" % (
        pid, last, got))

    os.kill(pid, signal.SIGKILL)
    rrun.status = wait_pid(rpid, 10, "waiting for cryo restore to end")
    tracked.discard(pid)
    new.drain(1)
    new.close()
    if exit_code(rrun.status) != 128 + signal.SIGKILL:
        raise Fail("cryo restore: %s after its counter was killed by SIGKILL "
                   "(expected exit 137)" % describe_status(rrun.status))
    say("stopped the restored counter; cryo restore passed on its status (exit %d)"
        % exit_code(rrun.status))
    return facts

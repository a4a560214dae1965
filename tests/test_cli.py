"""Tests of cryo's command line, run by tests/run.py (`make test`) as the
tests named cli/...: the table of options (read from `cryo --list-options`)
against CRIU's own list, every command's --help, the refusal of CRIU's
options cryo does not support yet, options given to the wrong command,
bad usage (one "cryo: " line, non-zero exit), that every implemented option
is accepted, and that man/cryo.8 and README.md document exactly the table's
options.

    python3 tests/run.py cli/     only these
"""
import os
import re
import subprocess

import lib
from lib import Fail

MAN = os.path.join(lib.ROOT, "man", "cryo.8")
README = os.path.join(lib.ROOT, "README.md")

# criu(8)'s options per command (the man page of CRIU 3.17, the options its
# usage text lists, and those CRIU 4 added): each must be a row of the table
# for that command, implemented or refused as not supported yet.
CRIU_COMMON = """verbosity config no-default-config log-file display-stats images-dir
    stream work-dir close libdir enable-fs action-script help log-pid unprivileged
    allow-uprobes ext-unix-sk ext-mount-map external""".split()
CRIU = {
    "dump": CRIU_COMMON + """tree leave-running leave-stopped freeze-cgroup manage-cgroups
        cgroup-props cgroup-props-file cgroup-dump-controller cgroup-yard tcp-established
        tcp-close skip-in-flight evasive-devices page-server address port force-irmap
        irmap-scan-path auto-dedup file-locks link-remap timeout ghost-limit ghost-fiemap
        shell-job cpu-cap cgroup-root lazy-pages file-validation network-lock skip-mnt
        enable-external-sharing enable-external-masters prev-images-dir track-mem""".split(),
    "pre-dump": """tree images-dir work-dir verbosity log-file help track-mem pre-dump-mode
        prev-images-dir page-server address port""".split(),
    "restore": CRIU_COMMON + """pidfile inherit-fd restore-detached leave-stopped
        restore-sibling root join-ns manage-cgroups cgroup-yard cgroup-root tcp-established
        tcp-close veth-pair file-locks lsm-profile lsm-mount-context auto-dedup shell-job
        cpu-cap weak-sysctls lazy-pages file-validation empty-ns mntns-compat-mode
        skip-file-rwx-check exec-cmd""".split(),
    "check": "verbosity log-file help extra experimental all feature".split(),
}
CRIU_SHORT = {"tree": "t", "leave-running": "R", "leave-stopped": "s", "file-locks": "l",
              "shell-job": "j", "restore-detached": "d", "restore-sibling": "S", "root": "r",
              "join-ns": "J", "images-dir": "D", "work-dir": "W", "libdir": "L",
              "log-file": "o", "verbosity": "v", "help": "h", "ext-unix-sk": "x",
              "ext-mount-map": "M"}
# What cryo had before the table, with its exact spelling: (short, argument).
KEEP = {
    "dump": {"tree": ("t", "required"), "images-dir": ("D", "required"),
             "leave-running": ("R", "none"), "shell-job": ("j", "none"),
             "file-locks": ("l", "none"), "no-sync": ("", "none"),
             "verbosity": ("v", "optional"), "log-file": ("o", "required")},
    "restore": {"images-dir": ("D", "required"), "restore-detached": ("d", "none"),
                "shell-job": ("j", "none"), "pidfile": ("", "required"),
                "verbosity": ("v", "optional"), "log-file": ("o", "required"),
                "file-locks": ("l", "none"), "no-uffd": ("", "none")},
    "show": {"images-dir": ("D", "required"), "json": ("", "none")},
    "check": {"verbosity": ("v", "optional"), "log-file": ("o", "required")},
}


def cryo(args, binary=None, timeout=20):
    return subprocess.run([binary or lib.CRYO] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


_tables = {}


def table():
    """(commands {name: implemented}, options [dict]) from cryo --list-options."""
    if "t" not in _tables:
        r = cryo(["--list-options"])
        if r.returncode != 0:
            raise Fail("cryo --list-options: exit %d: %s" % (r.returncode, r.stderr.strip()))
        cmds, opts = {}, []
        for line in r.stdout.splitlines():
            f = line.split("\t")
            if f[0] == "command" and len(f) == 3:
                cmds[f[1]] = f[2] == "yes"
            elif f[0] == "option" and len(f) == 8:
                opts.append(dict(cmd=f[1], name=f[2], short=f[3].lstrip("-"), arg=f[4],
                                 state=f[5], metavar=f[6], help=f[7]))
            else:
                raise Fail("cryo --list-options: bad line %r" % line)
        _tables["t"] = (cmds, opts)
    return _tables["t"]


def options(cmd, states=("yes", "help", "todo")):
    return [o for o in table()[1] if o["cmd"] == cmd and o["state"] in states]


def one_line(r, what):
    """stderr must be one line starting 'cryo: '; returns it."""
    lines = r.stderr.splitlines()
    if len(lines) != 1 or not lines[0].startswith("cryo: "):
        raise Fail("%s: stderr should be one 'cryo: ' line, got %r" % (what, r.stderr[:300]))
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        raise Fail("%s: sanitizer report: %s" % (what, lines[0]))
    return lines[0]


# ---------------------------------------------------------------- the table

def table_test(ctx):
    """The table holds every CRIU option for its commands, keeps cryo's old
    options as they were, and is consistent: one row per command and name
    or letter, a help text each."""
    cmds, opts = table()
    problems = []
    for cmd in ("dump", "pre-dump", "restore", "show", "check"):
        if cmd not in cmds:
            problems.append("command %s missing" % cmd)
        names = [o["name"] for o in options(cmd)]
        shorts = [o["short"] for o in options(cmd) if o["short"]]
        problems += ["%s: two rows for --%s" % (cmd, n) for n in set(names) if names.count(n) > 1]
        problems += ["%s: two rows for -%s" % (cmd, s) for s in set(shorts) if shorts.count(s) > 1]
        problems += ["%s: --%s is not in the table" % (cmd, n) for n in CRIU.get(cmd, [])
                     if n not in names]
        for o in options(cmd):
            want = CRIU_SHORT.get(o["name"])
            if want and o["short"] != want:
                problems.append("%s: --%s has -%s, CRIU's is -%s" % (cmd, o["name"], o["short"], want))
            if not o["help"].strip():
                problems.append("%s: --%s has no help" % (cmd, o["name"]))
        for name, (short, arg) in KEEP.get(cmd, {}).items():
            row = [o for o in options(cmd, ("yes",)) if o["name"] == name]
            if not row:
                problems.append("%s: --%s is no longer implemented" % (cmd, name))
            elif (row[0]["short"], row[0]["arg"]) != (short, arg):
                problems.append("%s: --%s is now -%s/%s, was -%s/%s" % (
                    cmd, name, row[0]["short"], row[0]["arg"], short, arg))
    if not cmds.get("dump") or not cmds.get("pre-dump"):
        problems.append("dump and pre-dump should be implemented: %r" % cmds)
    if problems:
        raise Fail("; ".join(problems[:8]) + (" (and %d more)" % (len(problems) - 8)
                                               if len(problems) > 8 else ""))
    ctx.notes.append("%d rows over %d commands" % (len(opts), len(cmds)))


# ---------------------------------------------------------------- help

def help_test(cmd):
    """cryo CMD --help and cryo help CMD: the same text, exit 0, a synopsis,
    an example, each implemented option (with its letter) under Options and
    each refused one in the list of those not supported yet."""
    def fn(ctx):
        r = cryo([cmd, "--help"])
        r2 = cryo(["help", cmd])
        r3 = cryo([cmd, "-h"])
        if r.returncode or r2.returncode or r3.returncode:
            raise Fail("exit %d / %d / %d" % (r.returncode, r2.returncode, r3.returncode))
        if r.stdout != r2.stdout or r.stdout != r3.stdout or r.stderr:
            raise Fail("--help, -h and 'cryo help %s' differ (or wrote to stderr)" % cmd)
        text = r.stdout
        if not text.startswith("usage: cryo %s" % cmd) or "\nExample:\n  cryo %s" % cmd not in text:
            raise Fail("no 'usage: cryo %s' line or no example" % cmd)
        listed, _, refused = text.partition("\nOptions:\n")[2].partition("not support yet")
        for o in options(cmd, ("yes", "help")):
            short = r"-%s(\[%s\])?, " % (o["short"], re.escape(o["metavar"])) if o["short"] else " +"
            if not re.search(r"^  %s--%s\b" % (short, re.escape(o["name"])), listed, re.M):
                raise Fail("--help does not list %s--%s under Options" % (
                    "-%s, " % o["short"] if o["short"] else "", o["name"]))
        for o in options(cmd, ("todo",)):
            if not re.search(r"(^|\s)--%s(\s|$)" % re.escape(o["name"]), refused):
                raise Fail("--help does not list --%s as not supported yet" % o["name"])
            if re.search(r"--%s\b" % re.escape(o["name"]), listed):
                raise Fail("--help lists --%s, not supported yet, under Options" % o["name"])
        if max(len(line) for line in text.splitlines()) > 80:
            raise Fail("a line of --help is longer than 80 columns")
    return fn


def top_help_test(ctx):
    r = cryo(["--help"])
    if r.returncode or not r.stdout.startswith("usage: cryo COMMAND"):
        raise Fail("cryo --help: exit %d, %r" % (r.returncode, r.stdout[:80]))
    for cmd in table()[0]:
        if not re.search(r"^  %s\s" % re.escape(cmd), r.stdout, re.M):
            raise Fail("cryo --help does not list the command %s" % cmd)


# ---------------------------------------------------------------- refusals

def unsupported_test(cmd):
    """Each of CRIU's options cryo does not implement, given to a command
    CRIU takes it on: one line 'option --X is not supported yet', exit 1 (as
    --X, as --X=ARG or --X ARG, and as its letter)."""
    def fn(ctx):
        bad = []
        for o in options(cmd, ("todo",)):
            forms = [["--" + o["name"]]]
            if o["arg"] != "none":
                forms.append(["--%s=x" % o["name"]])
            if o["arg"] == "required":
                forms.append(["--" + o["name"], "x"])
            if o["short"]:
                forms.append(["-" + o["short"]])
            for form in forms:
                r = cryo([cmd] + form)
                err = r.stderr.strip()
                want = "cryo: %s: option %s%s is not supported yet" % (
                    cmd, form[0].split("=")[0], " (--%s)" % o["name"] if len(form[0]) == 2 else "")
                if r.returncode != 1 or err != want:
                    bad.append("%s: exit %d, %r" % (" ".join(form), r.returncode, err[:100]))
        if bad:
            raise Fail("; ".join(bad[:5]) + (" (%d in all)" % len(bad) if len(bad) > 5 else ""))
        ctx.notes.append("%d options refused" % len(options(cmd, ("todo",))))
    return fn


def wrong_command_test(cmd):
    """An option only other commands take: one line naming them, exit 2."""
    def fn(ctx):
        mine = {o["name"] for o in options(cmd)}
        others = {o["name"]: o for o in table()[1] if o["name"] not in mine}
        bad = []
        for name, o in sorted(others.items()):
            for form in (["--" + name], ["-" + o["short"]] if o["short"] else None):
                if not form or any(x["short"] == o["short"] for x in options(cmd)):
                    continue
                r = cryo([cmd] + form)
                lines = r.stderr.splitlines()
                if (r.returncode != 2 or len(lines) != 1 or
                        not re.match(r"cryo: %s: option %s.* is for .*, not %s \(see cryo %s --help\)$"
                                     % (re.escape(cmd), re.escape(form[0]), re.escape(cmd),
                                        re.escape(cmd)), lines[0])):
                    bad.append("%s: exit %d, %r" % (form[0], r.returncode, r.stderr[:100]))
        if bad:
            raise Fail("; ".join(bad[:5]) + (" (%d in all)" % len(bad) if len(bad) > 5 else ""))
    return fn


# (args, exit status, what the line must say); DIR is replaced by a work dir.
ERRORS = [
    ([], 2, r"no command"),
    (["frobnicate"], 2, r"unknown command 'frobnicate'"),
    (["help", "frobnicate"], 2, r"unknown command 'frobnicate'"),
    (["dump", "--foo"], 2, r"^cryo: dump: unknown option --foo \(see cryo dump --help\)$"),
    (["dump", "--no-foo"], 2, r"unknown option --no-foo"),
    (["restore", "-z"], 2, r"^cryo: restore: unknown option -z "),
    (["dump", "-t"], 2, r"option -t \(--tree\) needs an argument \(PID\)"),
    (["dump", "-t", "1", "-D"], 2, r"needs an argument \(DIR\)"),
    (["dump", "-t", "1", "-D", "DIR", "-o"], 2, r"needs an argument \(FILE\)"),
    (["restore", "-D", "DIR", "--pidfile"], 2, r"--pidfile needs an argument"),
    (["dump", "-t", "abc", "-D", "DIR"], 2, r"'abc' is not a pid"),
    (["dump", "-t", "0", "-D", "DIR"], 2, r"'0' is not a pid"),
    (["dump", "--tree=-5", "-D", "DIR"], 2, r"'-5' is not a pid"),
    (["dump", "-t", "99999999999999999999", "-D", "DIR"], 2, r"is not a pid"),
    (["dump", "-t", "", "-D", "DIR"], 2, r"empty argument"),
    (["dump", "-D", "DIR"], 2, r"^cryo: dump: -t PID is required"),
    (["dump", "-t", "1"], 2, r"^cryo: dump: -D DIR is required"),
    (["restore"], 2, r"^cryo: restore: -D DIR is required"),
    (["show"], 2, r"^cryo: show: -D DIR is required"),
    (["show", "DIR", "DIR"], 2, r"unexpected argument"),
    (["show", "-D", "DIR", "DIR"], 2, r"either with -D or as the argument"),
    (["restore", "-D", "DIR", "extra"], 2, r"unexpected argument 'extra'"),
    (["run", "-D", "DIR"], 2, r"^cryo: run: give the command to run after --"),
    (["run", "-D", "DIR", "--resume", "--", "true"], 2, r"--resume takes no command"),
    (["run", "--", "true"], 2, r"^cryo: run: -D DIR is required"),
    (["dump", "-t", "1", "-D", "DIR", "-vx"], 2, r"bad verbosity 'x'"),
    (["check", "--verbosity=10"], 2, r"bad verbosity '10'"),
    (["dump", "--leave-running=yes"], 2, r"--leave-running takes no argument"),
    (["restore", "-D", "DIR", "--no-pidfile"], 2, r"unknown option --no-pidfile"),
    (["dump", "-jRq"], 2, r"unknown option -q"),
    (["pre-dump", "-t", "1", "-D", "DIR"], 1, r"^cryo: pid 1 is the init process"),
    (["pre-dump", "-t", "1", "-D", "DIR", "--page-server"], 1,
     r"^cryo: pre-dump: option --page-server is not supported yet$"),
    (["dump", "-t", "1", "-D", "DIR", "--stream"], 1,
     r"^cryo: dump: option --stream is not supported yet$"),
]


def errors_test(binary):
    def fn(ctx):
        for args, status, pattern in ERRORS:
            args = [ctx.dir if a == "DIR" else a for a in args]
            r = cryo(args, binary)
            line = one_line(r, "cryo " + " ".join(args))
            if r.returncode != status:
                raise Fail("cryo %s: exit %d, expected %d (%s)" % (
                    " ".join(args), r.returncode, status, line))
            if not re.search(pattern, line):
                raise Fail("cryo %s: %r does not match %r" % (" ".join(args), line, pattern))
    return fn


# ---------------------------------------------------------------- accepted

def accepted_test(cmd):
    """Every option cryo implements for CMD, alone with what CMD needs, is
    accepted: the command runs (and fails for want of a process or a
    checkpoint), it is no usage error. Long and short forms."""
    def fn(ctx):
        empty = ctx.path("empty")
        os.makedirs(empty, exist_ok=True)
        pid = str(lib.free_pid())
        base = {"dump": ["-t", pid, "-D", ctx.path("images")], "restore": ["-D", empty],
                "show": [empty], "check": [], "run": ["-D", ctx.path("gens")]}.get(cmd)
        if base is None:
            return
        sample = {"PID": pid, "DIR": empty, "FILE": ctx.path("file"), "N": "0", "SIZE": "1M",
                  "METHOD": "skip", "MODE": "soft", "SECONDS": "5",
                  "CHECK": "filesize", "CONF": ctx.path("empty.conf")}
        open(ctx.path("empty.conf"), "w").close()
        for o in options(cmd, ("yes",)):
            arg = sample.get(o["metavar"], "x")
            forms = [["--%s=%s" % (o["name"], arg)] if o["arg"] == "optional" else
                     ["--" + o["name"]] + ([arg] if o["arg"] == "required" else [])]
            if o["short"]:
                forms.append(["-" + o["short"] + (arg if o["arg"] != "none" else "")])
            for form in forms:
                args = list(base)
                if o["name"] == "images-dir" and cmd == "show":
                    args = []
                if cmd == "run" and o["name"] != "resume":  # the command comes last
                    form = form + ["--", "true"]
                r = cryo([cmd] + args + form)
                if r.returncode == 2 or "option --" in r.stderr or "usage" in r.stderr:
                    raise Fail("cryo %s %s: exit %d: %s" % (cmd, " ".join(form), r.returncode,
                                                            r.stderr.strip()[:200]))
    return fn


def verbosity_test(ctx):
    """-v raises the level to 2 (check then lists every feature), -v0 and the
    default (1) do not; -vN, --verbosity, --verbosity=N and -vv as CRIU."""
    def lines(*args):
        r = cryo(["check"] + list(args))
        if r.returncode:
            raise Fail("cryo check %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return len(r.stdout.splitlines())
    quiet = lines()
    if lines("-v0") != quiet or lines("-v1") != quiet:
        raise Fail("cryo check -v0 / -v1 differ from cryo check")
    loud = lines("-v")
    if loud <= quiet:
        raise Fail("cryo check -v lists no more than cryo check (%d lines)" % quiet)
    for args in (["-v2"], ["-vv"], ["--verbosity"], ["--verbosity=2"], ["-v", "-v"]):
        if lines(*args) != loud:
            raise Fail("cryo check %s does not list what -v lists" % " ".join(args))


# ---------------------------------------------------------------- documentation

def man_sections():
    """{command: (set of long options, set of letters)} from man/cryo.8's
    COMMANDS section (the tag lines after .TP), and {command: set of long
    options} from its CRIU OPTIONS section."""
    text = open(MAN).read()
    documented, refused, section, cmd = {}, {}, None, None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            section, cmd = line[3:].strip().strip('"'), None
        elif line.startswith(".SS"):
            cmd = line[3:].strip().strip('"').replace("\\-", "-")
            documented.setdefault(cmd, (set(), set()))
        elif section == "COMMANDS" and cmd and i and lines[i - 1] == ".TP":
            longs, shorts = documented[cmd]
            longs.update(m.replace("\\-", "-") for m in re.findall(r"\\-\\-((?:[a-z]|\\-)+)", line))
            shorts.update(re.findall(r"(?<![\\a-z-])\\-([a-zA-Z])(?![a-zA-Z]|\\-)", line))
        elif section == "CRIU OPTIONS" and line.startswith(".TP"):
            pass
        elif section == "CRIU OPTIONS" and i and lines[i - 1] == ".TP":
            cmd = re.sub(r"^\.B\s+", "", line).strip().replace("\\-", "-")
            refused.setdefault(cmd, set())
        elif section == "CRIU OPTIONS" and cmd in refused:
            refused[cmd].update(m.replace("\\-", "-")
                                for m in re.findall(r"\\-\\-((?:[a-z]|\\-)+)", line))
    return documented, refused


def man_test(ctx):
    """man/cryo.8 documents, under each command of COMMANDS, exactly the
    options the table implements for it (long names and letters), and lists
    under CRIU OPTIONS exactly those refused as not supported yet."""
    documented, refused = man_sections()
    problems = []
    for cmd, implemented in table()[0].items():
        rows = options(cmd, ("yes", "help"))
        longs, shorts = documented.get(cmd, (set(), set()))
        if implemented:
            want = {o["name"] for o in rows}
            problems += ["%s: --%s is not in the man page" % (cmd, n) for n in sorted(want - longs)]
            problems += ["%s: the man page has --%s, the table does not" % (cmd, n)
                         for n in sorted(longs - want)]
            want_s = {o["short"] for o in rows if o["short"]}
            problems += ["%s: -%s is not in the man page" % (cmd, s) for s in sorted(want_s - shorts)]
            problems += ["%s: the man page has -%s, the table does not" % (cmd, s)
                         for s in sorted(shorts - want_s)]
        todo = {o["name"] for o in options(cmd, ("todo",))}
        got = refused.get(cmd, set())
        problems += ["%s: --%s (not supported yet) is not under CRIU OPTIONS" % (cmd, n)
                     for n in sorted(todo - got)]
        problems += ["%s: CRIU OPTIONS lists --%s, which the table does not refuse" % (cmd, n)
                     for n in sorted(got - todo)]
    if problems:
        raise Fail("; ".join(problems[:6]) + (" (%d in all)" % len(problems)
                                               if len(problems) > 6 else ""))


def readme_test(ctx):
    """README.md's paragraphs "`dump` options:" and "`restore` options:" name
    exactly the options the table implements for those commands."""
    text = open(README).read()
    problems = []
    for cmd in ("dump", "restore", "run"):
        m = re.search(r"^`%s` options:(.*?)(?:\n\n|\Z)" % cmd, text, re.M | re.S)
        if not m:
            problems.append("no paragraph '`%s` options:'" % cmd)
            continue
        got = set(re.findall(r"--([a-z][a-z-]*)", m.group(1)))
        want = {o["name"] for o in options(cmd, ("yes",))}
        problems += ["%s: --%s is not in README.md" % (cmd, n) for n in sorted(want - got)]
        problems += ["%s: README.md has --%s, the table does not" % (cmd, n)
                     for n in sorted(got - want)]
    if problems:
        raise Fail("; ".join(problems))


def tests():
    """[(name, fn(ctx), timeout)] for run.py."""
    out = [("cli/table", table_test, 20), ("cli/help", top_help_test, 20),
           ("cli/verbosity", verbosity_test, 20)]
    for cmd in ("dump", "pre-dump", "restore", "show", "check", "run"):
        out.append(("cli/help/" + cmd, help_test(cmd), 20))
    for cmd in ("dump", "pre-dump", "restore", "check"):
        out.append(("cli/unsupported/" + cmd, unsupported_test(cmd), 60))
    for cmd in ("dump", "pre-dump", "restore", "show", "check", "run"):
        out.append(("cli/wrong-command/" + cmd, wrong_command_test(cmd), 60))
    for cmd in ("dump", "restore", "show", "check", "run"):
        out.append(("cli/accepted/" + cmd, accepted_test(cmd), 30))
    for tag, binary in (("cryo", lib.CRYO), ("san", lib.SAN_CRYO)):
        out.append(("cli/errors/" + tag, errors_test(binary), 60))
    out += [("cli/man-page", man_test, 20), ("cli/readme", readme_test, 20)]
    return out

#!/usr/bin/env python3
"""`make demo`: the seed's counter demo, narrated. counter.py runs on a
pseudo-terminal, cryo checkpoints it (--shell-job, the process is killed),
then restores it from another terminal session: same pid, and the count goes
on from where it stopped. Makes its own pseudo-terminals, so it needs none."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402


def main():
    if os.geteuid() != 0:
        print("demo: cryo must run as root (try: sudo make demo)")
        return 1
    if not os.access(lib.CRYO, os.X_OK):
        print("demo: %s is missing; run make first" % lib.CRYO)
        return 1
    lib.become_subreaper()
    work = tempfile.mkdtemp(prefix="cryo-demo-")
    log = []
    ok = False
    try:
        print("== cryo demo: a counter on a terminal, checkpointed and restored ==")
        lib.set_deadline(60)
        facts = lib.counter_demo(lib.CRYO, work, say=lambda t: print(t, flush=True), log=log)
        print("== done: pid %d restored, count %d -> %d, dump %.0f ms, restore to first "
              "output %.0f ms ==" % (facts["pid"], facts["last_before"], facts["first_after"],
                                     facts["dump_ms"], facts["restore_ms"]))
        ok = True
    except lib.Fail as e:
        print("demo FAILED: %s" % e)
        for r in log:
            print("  command: %s" % r)
        for name in ("dump.err", "dump.log", "restore.log"):
            lines = lib.tail(os.path.join(work, name))
            if lines:
                print("  --- last lines of %s:" % name)
                for line in lines:
                    print("  " + line)
    finally:
        left = lib.kill_descendants()
        if left:
            print("demo: killed leftover processes %s" % left)
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("demo: files kept in %s" % work)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

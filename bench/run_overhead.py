#!/usr/bin/env python3
"""`make bench`: the cost of `cryo run` to the job it supervises.

build/bench/worker writes one word into every page of 256 MiB round and
round for SECONDS and reports its throughput (pages written per second) and
the longest time it was kept from running. It runs once alone, then under
`cryo run --every 10`; the table shows both throughputs, their ratio (the
issue's goal: at least 95 %), the checkpoints taken with their median and
longest frozen time as cryo measured it, and the longest gap the job itself
saw. Reports, never gates; images go to /var/tmp (disk). Options:
--seconds N (default 60), --mib N (default 256), --every N (default 10).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRYO = os.environ.get("CRYO", os.path.join(ROOT, "build", "cryo"))
WORKER = os.path.join(ROOT, "build", "bench", "worker")
CKPT = re.compile(r"run: checkpoint gen-\d+: .* frozen ([\d.]+) ms")


def run_worker(argv, out, limit):
    """Runs argv (ending with the worker's command) to its end; its report."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=limit)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (argv[0], r.returncode, r.stderr[-300:]))
    pages, secs, gap = open(out).read().split()
    return int(pages) / float(secs), int(gap) / 1000.0, r.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--every", type=int, default=10)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cryo-bench-run-", dir="/var/tmp")
    try:
        out = os.path.join(work, "out")
        job = [WORKER, str(args.mib), str(args.seconds), out]
        alone, alone_gap, _ = run_worker(job, out, args.seconds + 60)
        sup = [CRYO, "run", "-D", os.path.join(work, "gens"), "--every", str(args.every),
               "--keep", "2", "--"] + job
        under, under_gap, log = run_worker(sup, out, args.seconds * 3 + 120)
        frozen = [float(m.group(1)) for m in CKPT.finditer(log)]
        print("cryo run overhead: %d MiB job, %d s, --every %d" % (args.mib, args.seconds,
                                                                  args.every))
        print("  alone:          %12.0f pages/s   longest gap %7.1f ms" % (alone, alone_gap))
        print("  under cryo run: %12.0f pages/s   longest gap %7.1f ms   %.1f %% of alone "
              "(goal >= 95 %%)" % (under, under_gap, 100.0 * under / alone))
        if frozen:
            print("  %d checkpoints: frozen median %.1f ms, longest %.1f ms (cryo's own figure)"
                  % (len(frozen), statistics.median(frozen), max(frozen)))
        else:
            print("  no checkpoint line in cryo run's log: %s" % log[-300:])
            return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

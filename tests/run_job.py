"""The job of tests/test_run.py: counts from 1 to TARGET, a step every
STEP seconds, and keeps a hash of the whole sequence in its own memory.
After each step it rewrites OUT at offset 0 (pwrite, fsync) with
"COUNT HASH\n" at a fixed width, so whatever the restores, the file ends
holding exactly what an uninterrupted run writes last. It appends one
line to OUT.starts when it starts: a restored job does not start again.

    python3 run_job.py OUT TARGET STEP [MIB]

MIB: that much memory more, written (so that a checkpoint takes longer).
"""
import os
import sys
import time

out, target, step = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
# first, unbuffered: a checkpoint taken before this line would write it again
starts = os.open(out + ".starts", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(starts, b"start %d\n" % os.getpid())
os.close(starts)
ballast = bytearray(b"\x5a" * (int(sys.argv[4]) << 20 if len(sys.argv) > 4 else 0))
fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o644)
count, h = 0, 0
while count < target:
    count += 1
    h = (h * 1000003 + count) & 0xFFFFFFFFFFFFFFFF
    os.pwrite(fd, b"%012d %016x\n" % (count, h), 0)
    os.fsync(fd)
    time.sleep(step)
os.close(fd)
sys.exit(0)

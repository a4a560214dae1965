"""py_multiprocessing.py: python's multiprocessing, a real program's way of
using a process tree: a Pool of 3 worker processes (task and result pipes,
helper threads in the parent), a Queue to a child Process (a pipe, a feeder
thread, a POSIX semaphore), a duplex Pipe (a unix socketpair) to the same
child, a shared Value and a Lock (memory and a semaphore in /dev/shm files
that are unlinked at once: mapped, open nowhere). Before `ready`: tasks are
submitted and their results left unread, messages are left in flight in
the queue and the pipe. After `go` every result and message must arrive,
in order, the child must see the shared counter the parent set and add to
it under the lock, and a new batch of tasks must run on the same workers.
Follows the workload protocol of tests/workloads (ready, go, wl: lines)."""
import multiprocessing as mp
import os
import sys
import time

fails = 0


def check(name, cond, detail=""):
    global fails
    if cond:
        print("wl: check %s ok" % name, flush=True)
    else:
        fails += 1
        print("wl: FAIL %s: %s" % (name, detail), flush=True)


def square(x):
    return x * x, os.getpid()


def child(q, conn, counter, lock, out):
    """Waits for `go`, then reads what was in flight."""
    wait_go()
    got = [q.get(timeout=20) for _ in range(50)]
    ok = got == list(range(50))
    msgs = [conn.recv() for _ in range(3)]
    ok = ok and msgs == ["a", {"b": 2}, b"c" * 100000]
    with lock:
        ok = ok and counter.value == 1000
        counter.value += 1
    conn.send(("child", ok))
    out.put("bye")


def wait_go():
    while not os.path.exists("go"):
        time.sleep(0.005)


def main():
    mp.set_start_method("fork")
    pool = mp.Pool(3)
    pool.map(square, range(30))
    workers = sorted(p.pid for p in pool._pool)  # the pool's own processes
    pending = [pool.apply_async(square, (i,)) for i in range(100)]
    q, out = mp.Queue(), mp.Queue()
    here, there = mp.Pipe()
    counter, lock = mp.Value("i", 0), mp.Lock()
    proc = mp.Process(target=child, args=(q, there, counter, lock, out))
    for i in range(50):
        q.put(i)
    here.send("a")
    here.send({"b": 2})
    here.send(b"c" * 100000)
    with lock:
        counter.value = 1000
    time.sleep(0.3)  # let the feeder thread and the workers settle
    proc.start()
    open("ready", "w").close()
    wait_go()

    results = [r.get(timeout=20) for r in pending]
    check("pool_results", [v for v, _ in results] == [i * i for i in range(100)],
          "results differ")
    check("child_message", here.poll(20) and here.recv() == ("child", True),
          "the child did not see what was in flight")
    check("child_bye", out.get(timeout=20) == "bye", "no goodbye on the queue")
    proc.join(20)
    check("child_exit", proc.exitcode == 0, "exit code %r" % proc.exitcode)
    with lock:
        check("shared_counter", counter.value == 1001, "counter %d" % counter.value)
    more = pool.map(square, range(200, 260))
    check("pool_after", [v for v, _ in more] == [i * i for i in range(200, 260)],
          "the second batch differs")
    check("same_workers", {pid for _, pid in more} <= set(workers),
          "workers %s, before %s" % (sorted({pid for _, pid in more}), workers))
    pool.close()
    pool.join()
    print("wl: done, %d failure(s)" % fails, flush=True)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()

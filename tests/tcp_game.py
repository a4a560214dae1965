"""The game server of tests/run.py's tcp-game tests: a TCP server with N
clients, the clients in one process outside the server's tree.

  tcp_game.py server FAMILY N        listens on loopback, writes its port to
                                     `port`, accepts N clients, `ready` once
                                     all are connected and data flows
  tcp_game.py clients FAMILY PORT N  connects N clients

Each side holds back the last HOLD bytes of every connection until the
harness has created `dumped` in the working directory, so the game cannot
end before the checkpoint however slowly the harness gets to it.

Each side sends TOTAL bytes on every connection (pattern seeded by the
connection's number and the direction) and checks every byte it receives,
in order. The server reads slower than the clients send, and the clients
read slower than the server sends, so that both queues of the server hold
data at any moment (unread in its receive queue, never sent in its send
queue). Both exit 0 only if every connection carried all its bytes both
ways, none was reset or closed early; they print what went wrong otherwise.
"""
import os
import selectors
import socket
import struct
import sys
import time

TOTAL = 1024 * 1024  # about 7 s a connection: the game outlasts a slow dump
TICK = 0.02
READ_SERVER = 3 * 1024   # per connection and tick
WRITE_CLIENT = 6 * 1024
READ_CLIENT = 3 * 1024
WRITE_SERVER = 16 * 1024
HOLD = 4096
PERIOD = 251
BASE = bytes(range(PERIOD)) * (2 + 64 * 1024 // PERIOD)


def pattern(seed, off, n):
    """n bytes of stream `seed` from offset off (period 251, shifted by seed)."""
    start = (off + seed * 7) % PERIOD
    out = bytearray()
    while len(out) < n:
        take = min(n - len(out), len(BASE) - start)
        out += BASE[start:start + take]
        start = 0
    return bytes(out)


def may_finish():
    return os.path.exists("dumped")


class Conn:
    def __init__(self, sk, idx, send_seed, recv_seed):
        self.sk, self.idx = sk, idx
        self.send_seed, self.recv_seed = send_seed, recv_seed
        self.sent = self.got = 0
        self.error = None

    def done(self):
        return self.sent == TOTAL and self.got == TOTAL

    def send_some(self, limit):
        end = TOTAL if may_finish() else TOTAL - HOLD
        n = min(limit, end - self.sent)
        if n <= 0 or self.error:
            return
        try:
            self.sent += self.sk.send(pattern(self.send_seed, self.sent, n))
        except BlockingIOError:
            pass
        except OSError as e:
            self.error = "send: %s" % e

    def recv_some(self, limit):
        if self.got == TOTAL or self.error:
            return
        try:
            data = self.sk.recv(limit)
        except BlockingIOError:
            return
        except OSError as e:
            self.error = "recv after %d bytes: %s" % (self.got, e)
            return
        if not data:
            self.error = "closed by the peer after %d bytes" % self.got
            return
        if data != pattern(self.recv_seed, self.got, len(data)):
            self.error = "wrong data at byte %d" % self.got
        self.got += len(data)


def run(conns, read_limit, write_limit, on_tick=None, deadline=120):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        t = time.monotonic()
        for c in conns:
            c.recv_some(read_limit)
            c.send_some(write_limit)
        if on_tick:
            on_tick()
        if all(c.done() or c.error for c in conns):
            break
        time.sleep(max(0, TICK - (time.monotonic() - t)))
    bad = [c for c in conns if not c.done()]
    for c in bad[:5]:
        print("connection %d: %s (sent %d, got %d of %d)" % (
            c.idx, c.error or "not finished", c.sent, c.got, TOTAL), flush=True)
    return 1 if bad else 0


def loopback(family):
    return "127.0.0.1" if family == "4" else "::1"


def server(family, n, bad):
    fam = socket.AF_INET if family == "4" else socket.AF_INET6
    if bad:  # an fd cryo does not support: the dump must fail, harmlessly
        unsupported = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    lsn = socket.socket(fam, socket.SOCK_STREAM)
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsn.bind((loopback(family), 0))
    lsn.listen(128)
    with open("port.tmp", "w") as f:
        f.write(str(lsn.getsockname()[1]))
    os.rename("port.tmp", "port")
    conns = []
    for _ in range(n):
        sk, _ = lsn.accept()
        idx = struct.unpack("!I", sk.recv(4, socket.MSG_WAITALL))[0]
        sk.setblocking(False)
        conns.append(Conn(sk, idx, 1000 + idx, idx))
    state = {"ticks": 0}

    def tick():
        state["ticks"] += 1
        if state["ticks"] == 15:  # data flows both ways, queues filled
            open("ready", "w").close()
    ret = run(conns, READ_SERVER, WRITE_SERVER, tick)
    if bad:
        unsupported.close()
    return ret


def clients(family, port, n):
    fam = socket.AF_INET if family == "4" else socket.AF_INET6
    conns = []
    for i in range(n):
        sk = socket.socket(fam, socket.SOCK_STREAM)
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sk.connect((loopback(family), port))
        sk.sendall(struct.pack("!I", i))
        sk.setblocking(False)
        conns.append(Conn(sk, i, i, 1000 + i))
    return run(conns, READ_CLIENT, WRITE_CLIENT)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        sys.exit(server(sys.argv[2], int(sys.argv[3]), sys.argv[4:] == ["bad"]))
    sys.exit(clients(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))

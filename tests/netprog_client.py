"""A client outside the checkpointed tree for tests/test_netprogs.py: one
TCP connection, kept open across the checkpoint. argv: http|redis PORT.

It talks once, creates `client-ready`, waits for `client-go` (the test
creates it after the dump, and the restore), talks again on the same
socket and checks every answer; exit 0 and "client: ok" if all is right.
"""
import os
import socket
import sys
import time


def recv_until(sock, pred):
    data = b""
    while not pred(data):
        part = sock.recv(4096)
        if not part:
            sys.exit("client: the server closed the connection after %r" % data)
        data += part
    return data


def http_get(sock, path):
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
                 % path.encode())

    def whole(d):
        head, sep, body = d.partition(b"\r\n\r\n")
        if not sep:
            return False
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                return len(body) >= int(line.split(b":")[1])
        return False
    head, _, body = recv_until(sock, whole).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit("client: %r" % head)
    return body.decode()


def resp(sock, *words):
    """One RESP command; its reply as text (simple, integer or bulk)."""
    sock.sendall(b"*%d\r\n" % len(words) + b"".join(
        b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words))

    def whole(d):
        if not d.endswith(b"\r\n"):
            return False
        if d[:1] == b"$" and not d.startswith(b"$-1"):
            n = int(d[1:d.index(b"\r\n")])
            return len(d) >= d.index(b"\r\n") + 2 + n + 2
        return True
    d = recv_until(sock, whole)
    if d[:1] == b"$":
        return None if d.startswith(b"$-1") else d[d.index(b"\r\n") + 2:-2].decode()
    if d[:1] == b"-":
        sys.exit("client: redis error %r" % d)
    return d[1:-2].decode()


def expect(got, want):
    if got != want:
        sys.exit("client: got %r, expected %r" % (got, want))


def main():
    kind, port = sys.argv[1], int(sys.argv[2])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    me = sock.getsockname()[1]
    if kind == "http":
        expect(http_get(sock, "/one"), "request 1 on port %d, 1 in all\n" % me)
    else:
        expect(resp(sock, "SET", "greeting", "hello from cryo"), "OK")
        expect(resp(sock, "RPUSH", "list", "a", "b", "c"), "3")
        expect(resp(sock, "INCR", "counter"), "1")
        expect(resp(sock, "CLIENT", "SETNAME", "kept"), "OK")
    open("client-ready", "w").close()
    while not os.path.exists("client-go"):
        time.sleep(0.02)
    if kind == "http":
        expect(http_get(sock, "/two"), "request 2 on port %d, 2 in all\n" % me)
    else:
        # the same connection (its name), the same data set
        expect(resp(sock, "CLIENT", "GETNAME"), "kept")
        expect(resp(sock, "GET", "greeting"), "hello from cryo")
        expect(resp(sock, "LLEN", "list"), "3")
        expect(resp(sock, "INCR", "counter"), "2")
        expect(resp(sock, "DBSIZE"), "3")
    if sock.getsockname()[1] != me:
        sys.exit("client: the socket changed port")
    sock.close()
    print("client: ok", flush=True)


main()

#!/usr/bin/env python3
"""redis_loss.py - acknowledged-write loss for the redis durability use case.

  write PORT [READY]       SET k:00000000, k:00000001, ... one at a time, each
                           waiting for its +OK, until the server goes away;
                           prints the index of the last acknowledged write.
                           Creates the file READY at the first +OK, so the
                           caller kills the server mid-stream, not before
                           a slow interpreter has even connected.
  unsynced AOF SYNCED WRITTEN LAST
                           given the AOF file, the offset up to which the last
                           completed real fdatasync made it durable, the bytes
                           write() had returned for it (both from the
                           extension's map) and the last acknowledged index:
                           prints how many acknowledged SETs end past that
                           offset, i.e. would be lost on a power failure now.
  missing PORT LAST        after a restart: how many of k:0..k:LAST are gone.
"""
import socket
import sys


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def write(port, ready=None):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    last = -1
    i = 0
    try:
        while True:
            s.sendall(resp("SET", "k:%08d" % i, "v%08d" % i))
            r = s.recv(64)
            if not r.startswith(b"+OK"):
                break
            last = i
            i += 1
            if ready:
                open(ready, "w").close()
                ready = None
    except OSError:
        pass
    print(last)


def parse_aof(data):
    """Yield (end_offset, args) for every RESP command in data."""
    pos = 0
    while pos < len(data) and data[pos:pos + 1] == b"*":
        eol = data.index(b"\r\n", pos)
        n = int(data[pos + 1:eol])
        pos = eol + 2
        args = []
        for _ in range(n):
            eol = data.index(b"\r\n", pos)
            ln = int(data[pos + 1:eol])
            pos = eol + 2
            args.append(data[pos:pos + ln])
            pos += ln + 2
        if pos > len(data):
            return
        yield pos, args


def unsynced(aof, synced_end, written, last):
    data = open(aof, "rb").read()
    # The file holds every byte a returned write() counted, and at most one
    # write more (one whose return the kill pre-empted): anything else means
    # the extension's accounting is wrong and the figure would be too.
    if not synced_end <= written <= len(data):
        sys.exit("redis_loss: inconsistent counts: synced %d, written %d, file %d bytes"
                 % (synced_end, written, len(data)))
    lost = 0
    for end, args in parse_aof(data):
        if end > synced_end and args and args[0].upper() == b"SET":
            if int(args[1][2:]) <= last:
                lost += 1
    print(lost)


def missing(port, last):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    gone = 0
    for base in range(0, last + 1, 1000):
        idx = range(base, min(base + 1000, last + 1))
        s.sendall(b"".join(resp("EXISTS", "k:%08d" % i) for i in idx))
        for _ in idx:
            if f.readline().strip() != b":1":
                gone += 1
    print(gone)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "write":
        write(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    elif cmd == "unsynced":
        unsynced(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "missing":
        missing(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit("usage: redis_loss.py write|unsynced|missing ...")

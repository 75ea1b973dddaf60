#!/usr/bin/env python3
"""A userspace delay line between two TUN devices (this kernel has no sch_netem).

    delayline.py run --dev-a NAME --dev-b NAME --delay-ms 5 --ready FILE --stats FILE
    delayline.py echo-server --host ADDR --port PORT      # for `probe`
    delayline.py probe --host ADDR --port PORT            # prints JSON: rtt and throughput

`run` creates two TUN devices (IFF_TUN | IFF_NO_PI) in the current network namespace and
writes FILE when they exist; the caller then moves each into its own namespace and gives it
an address (the open file descriptors follow the devices). Every IP packet read from one
device is queued with its arrival time and written to the other device `delay` later: one
FIFO per direction (the delay is constant, so FIFO order is release order) and one select()
loop whose timeout is the time until the earliest release, so packets in flight overlap and
nothing sleeps per packet. With a large MTU (65000) a bulk transfer is a few thousand packets
per second, which Python moves easily (`probe` reports the throughput reached). SIGTERM
writes packet/byte counts, the deepest queue and the process's CPU time to the stats file.
"""

import argparse
import collections
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    return fd


def run(args):
    delay = args.delay_ms / 1000.0
    a = open_tun(args.dev_a)
    b = open_tun(args.dev_b)
    other = {a: b, b: a}
    queues = {a: collections.deque(), b: collections.deque()}  # keyed by destination fd
    stats = {"packets": 0, "bytes": 0, "max_queue": 0, "delay_ms": args.delay_ms}
    class Stop(Exception):
        pass

    def on_signal(*_):
        raise Stop

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with open(args.ready, "w") as f:
        f.write(f"{os.getpid()}\n")
    try:
        loop(a, b, other, queues, stats, delay)
    except (Stop, OSError):  # stopped, or a device went away with its namespace
        pass
    r = os.times()
    stats["cpu_s"] = round(r.user + r.system, 3)
    with open(args.stats, "w") as f:
        json.dump(stats, f)
    return 0


def loop(a, b, other, queues, stats, delay):
    now = time.monotonic
    read, write = os.read, os.write
    while True:
        due = None
        for q in queues.values():
            if q and (due is None or q[0][0] < due):
                due = q[0][0]
        timeout = None if due is None else max(0.0, due - now())
        ready, _, _ = select.select((a, b), (), (), timeout)
        t = now()
        for fd in ready:
            q = queues[other[fd]]
            while True:
                try:
                    pkt = read(fd, 65536)
                except BlockingIOError:
                    break
                q.append((t + delay, pkt))
            if len(q) > stats["max_queue"]:
                stats["max_queue"] = len(q)
        t = now()
        for dst, q in queues.items():
            while q and q[0][0] <= t:
                _, pkt = q.popleft()
                try:
                    write(dst, pkt)
                except (BlockingIOError, OSError):
                    pass  # a full device queue drops the packet, as a link would
                stats["packets"] += 1
                stats["bytes"] += len(pkt)


def echo_server(args):
    srv = socket.create_server((args.host, args.port), reuse_port=False)
    while True:
        conn, _ = srv.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            mode = conn.recv(1)
            if mode == b"e":  # echo 64-byte messages until EOF
                while True:
                    data = conn.recv(64, socket.MSG_WAITALL)
                    if len(data) < 64:
                        break
                    conn.sendall(data)
            elif mode == b"s":  # sink: read until EOF, then report the byte count
                n = 0
                buf = bytearray(1 << 20)
                while True:
                    k = conn.recv_into(buf)
                    if not k:
                        break
                    n += k
                conn.sendall(str(n).encode())


def probe(args):
    # Connect time is one round trip (SYN, SYN-ACK).
    connects = []
    for _ in range(5):
        t = time.perf_counter()
        s = socket.create_connection((args.host, args.port), timeout=10)
        connects.append(time.perf_counter() - t)
        s.close()
    s = socket.create_connection((args.host, args.port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"e")
    rtts = []
    msg = b"x" * 64
    for _ in range(args.rounds):
        t = time.perf_counter()
        s.sendall(msg)
        got = s.recv(64, socket.MSG_WAITALL)
        rtts.append(time.perf_counter() - t)
        assert got == msg
    s.close()
    # Bulk: send args.megabytes MiB, wait for the receiver's byte count.
    s = socket.create_connection((args.host, args.port), timeout=30)
    s.sendall(b"s")
    chunk = b"\xab" * (1 << 20)
    t = time.perf_counter()
    for _ in range(args.megabytes):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    reply = s.recv(64)
    dt = time.perf_counter() - t
    s.close()
    rtts.sort()
    connects.sort()
    out = {
        "rtt_ms_median": round(rtts[len(rtts) // 2] * 1000, 2),
        "rtt_ms_min": round(rtts[0] * 1000, 2),
        "rtt_ms_max": round(rtts[-1] * 1000, 2),
        "connect_ms_median": round(connects[len(connects) // 2] * 1000, 2),
        "bulk_mib": args.megabytes,
        "bulk_received": int(reply or 0),
        "bulk_s": round(dt, 3),
        "bulk_mib_per_s": round(args.megabytes / dt, 1),
    }
    print(json.dumps(out))
    return 0 if out["bulk_received"] == args.megabytes << 20 else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dev-a", required=True)
    r.add_argument("--dev-b", required=True)
    r.add_argument("--delay-ms", type=float, default=5.0)
    r.add_argument("--ready", required=True)
    r.add_argument("--stats", required=True)
    e = sub.add_parser("echo-server")
    e.add_argument("--host", required=True)
    e.add_argument("--port", type=int, required=True)
    p = sub.add_parser("probe")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--megabytes", type=int, default=200)
    a = ap.parse_args()
    return {"run": run, "echo-server": echo_server, "probe": probe}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

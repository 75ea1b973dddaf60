#!/usr/bin/env python3
"""Fetch speed from Dovecot over TLS: popwire.Client against a native Rust loop and stdlib poplib.

Scenarios: 1000 x 5 KB and 100 x 1 MB. Each client logs in over implicit TLS, retrieves every
message (nothing is deleted, so every run sees the same mailbox), and quits; the time is taken
inside the client's process from connect to QUIT, so process start-up is not counted.

Clients:
  native          the Rust BlockingClient::retr_many loop (examples/native_fetch.rs)
  Client.retr_many popwire.Client, pipelined
  Client.retr     popwire.Client, one RETR per round trip
  AsyncClient     popwire.AsyncClient.retr_many on asyncio
  poplib          the standard library's poplib.POP3_SSL, one RETR per round trip

Usage: python bench/bench_fetch.py [--runs N] [--json FILE]
Uses the Dovecot named by $POPWIRE_DOVECOT, or starts one (tests/dovecot.py).
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from corpus import sized  # noqa: E402
from dovecot import ROOT, from_env_or_start  # noqa: E402

RUNNER = r'''
import asyncio, json, ssl, sys, time
mode, host, port, ca, user, password = sys.argv[1:7]
port = int(port)
if mode == "poplib":
    import poplib
else:
    import popwire
    if mode == "AsyncClient":
        popwire.AsyncClient  # load it before the clock starts
start = time.perf_counter()
cpu = time.process_time()
n = octets = 0
if mode == "poplib":
    ctx = ssl.create_default_context(cafile=ca)
    pop = poplib.POP3_SSL(host, port, context=ctx)
    pop.user(user); pop.pass_(password)
    count, _ = pop.stat()
    for i in range(1, count + 1):
        _, lines, size = pop.retr(i)
        n += 1; octets += size
    pop.quit()
elif mode == "AsyncClient":
    async def main():
        global n, octets
        async with popwire.AsyncClient(host, port, ca_file=ca) as pop:
            await pop.login(user, password)
            nums = [num for num, _ in await pop.list()]
            async for _, data in pop.retr_many(nums):
                n += 1; octets += len(data)
    asyncio.run(main())
else:
    with popwire.Client(host, port, ca_file=ca) as pop:
        pop.login(user, password)
        nums = [num for num, _ in pop.list()]
        if mode == "Client.retr_many":
            for _, data in pop.retr_many(nums):
                n += 1; octets += len(data)
        else:
            for num in nums:
                data = pop.retr(num)
                n += 1; octets += len(data)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "messages": n, "octets": octets}))
'''

CLIENTS = ["native", "Client.retr_many", "Client.retr", "AsyncClient", "poplib"]


def run_client(client: str, native: Path, d, user: str) -> dict:
    args = [d.host, str(d.tls_port), d.ca_file, user, d.password]
    cmd = [str(native), *args] if client == "native" else [sys.executable, "-c", RUNNER, client, *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out.stdout)
    if "cpu" not in result:  # the native binary: its whole process (start-up is ~1 ms)
        result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "popwire-python", "--example", "native_fetch"], cwd=ROOT, check=True)
    native = ROOT / "target" / "release" / "examples" / "native_fetch"

    results = {}
    for dovecot in from_env_or_start():
        if dovecot is None:
            print("no Dovecot: install it with tests/install-deps.sh", file=sys.stderr)
            return 1
        scenarios = {"1000 x 5 KB": sized(1000, 5 * 1024, seed=5), "100 x 1 MB": sized(100, 1024 * 1024, seed=6)}
        for name, messages in scenarios.items():
            user = dovecot.new_user("bench")
            dovecot.seed(user, messages)
            expected = (len(messages), sum(len(m) + m.count(b"\n") - m.count(b"\r\n") for m in messages))
            times = {c: [] for c in CLIENTS}
            cpus = {c: [] for c in CLIENTS}
            for c in CLIENTS:  # warm-up (page cache, Dovecot's index)
                run_client(c, native, dovecot, user)
            for _ in range(opts.runs):
                for c in CLIENTS:
                    r = run_client(c, native, dovecot, user)
                    got = (r["messages"], r["octets"] if c != "poplib" else r["octets"])
                    assert got[0] == expected[0], (c, got, expected)
                    times[c].append(r["seconds"])
                    cpus[c].append(r["cpu"])
            results[name] = {c: statistics.median(t) for c, t in times.items()}
            results[name + " (client CPU)"] = {c: statistics.median(t) for c, t in cpus.items()}

    print(f"median of {opts.runs} runs: wall seconds from connect to QUIT, and the client's CPU seconds")
    print("(implicit TLS to a loopback Dovecot, which shares the machine's cores)\n")
    header = f"{'scenario':<26}" + "".join(f"{c:>18}" for c in CLIENTS)
    print(header)
    for name, row in results.items():
        print(f"{name:<26}" + "".join(f"{row[c]:>18.3f}" for c in CLIENTS))
    print()
    for name, row in results.items():
        if "CPU" in name:
            print(f"{name}: poplib / Client.retr_many = {row['poplib'] / row['Client.retr_many']:.1f}x")
            continue
        print(
            f"{name}: Client.retr_many / native = {row['Client.retr_many'] / row['native']:.2f}x (target <= 1.3), "
            f"poplib / Client.retr_many = {row['poplib'] / row['Client.retr_many']:.1f}x (target >= 3), "
            f"poplib / Client.retr = {row['poplib'] / row['Client.retr']:.1f}x"
        )
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

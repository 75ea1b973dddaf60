#!/usr/bin/env python3
"""The poplib drop-in against the standard library's poplib, on the same script.

One script (RUNNER below: POP3_SSL with a verifying context, USER/PASS, STAT, RETR of every
message one by one, QUIT) runs in fresh processes with ``import poplib`` resolving either to the
standard library or to ``popwire.poplib`` (the ``sys.modules`` swap). Scenarios: 1000 x 5 KB and
100 x 1 MB, over implicit TLS from the loopback Dovecot; nothing is deleted, so every run sees the
same mailbox. Runs alternate between the two modules; the medians and their ratio are printed.
Also: the size of the wheels in python/dist and the import time of ``popwire`` (and of
``popwire.poplib``) in a fresh interpreter.

    python bench/bench_poplib.py [--runs 7]

Uses the Dovecot named by $POPWIRE_DOVECOT, or starts one (tests/dovecot.py).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from corpus import sized  # noqa: E402
from dovecot import from_env_or_start  # noqa: E402

RUNNER = r"""
import json, ssl, sys, time
which, host, port, ca, user, password = sys.argv[1:7]
if which == "Client.retr":
    # The floor for one RETR per round trip: the Rust client, no Python per message but the call.
    import popwire
    start = time.perf_counter()
    cpu = time.process_time()
    octets = 0
    with popwire.Client(host, int(port), ca_file=ca) as pop:
        pop.auth("user", user, password)
        count, _ = pop.stat()
        for i in range(1, count + 1):
            octets += len(pop.retr(i))
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                      "messages": count, "octets": octets, "lines": 0}))
    sys.exit(0)
if which == "popwire":
    import popwire.poplib
    sys.modules["poplib"] = popwire.poplib
import poplib
assert poplib.__name__ == ("popwire.poplib" if which == "popwire" else "poplib")
start = time.perf_counter()
cpu = time.process_time()
pop = poplib.POP3_SSL(host, int(port), context=ssl.create_default_context(cafile=ca))
pop.user(user)
pop.pass_(password)
count, _ = pop.stat()
octets = 0
lines = 0
for i in range(1, count + 1):
    resp, body, size = pop.retr(i)
    octets += size
    lines += len(body)
pop.quit()
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                  "messages": count, "octets": octets, "lines": lines}))
"""

MODULES = ["stdlib", "popwire"]
CLIENTS = MODULES + ["Client.retr"]


def run(which: str, d, user: str) -> dict:
    args = [which, d.host, str(d.tls_port), d.ca_file, user, d.password]
    out = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def import_time(statement: str, runs: int = 15) -> float:
    """Median wall time of ``python -c statement`` minus that of ``python -c pass``."""

    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    base = statistics.median(once("pass") for _ in range(runs))
    return statistics.median(once(statement) for _ in range(runs)) - base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    opts = parser.parse_args()

    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    for dovecot in from_env_or_start():
        if dovecot is None:
            print("no Dovecot: install it with tests/install-deps.sh", file=sys.stderr)
            return 1
        scenarios = {"1000 x 5 KB": sized(1000, 5 * 1024, seed=5), "100 x 1 MB": sized(100, 1024 * 1024, seed=6)}
        for name, messages in scenarios.items():
            user = dovecot.new_user("bench-poplib")
            dovecot.seed(user, messages)
            seconds: Dict[str, List[float]] = {m: [] for m in CLIENTS}
            cpus: Dict[str, List[float]] = {m: [] for m in CLIENTS}
            first = {m: run(m, dovecot, user) for m in MODULES}  # warm-up; both must agree
            assert first["stdlib"]["octets"] == first["popwire"]["octets"], first
            assert first["stdlib"]["lines"] == first["popwire"]["lines"], first
            assert first["stdlib"]["messages"] == len(messages)
            for k in range(opts.runs):
                for m in CLIENTS[k % 3 :] + CLIENTS[: k % 3]:  # rotated: no client always goes first
                    r = run(m, dovecot, user)
                    seconds[m].append(r["seconds"])
                    cpus[m].append(r["cpu"])
            results[name] = {
                m: {
                    "wall": statistics.median(seconds[m]),
                    "wall_min": min(seconds[m]),
                    "wall_max": max(seconds[m]),
                    "cpu": statistics.median(cpus[m]),
                }
                for m in CLIENTS
            }

    print(f"median of {opts.runs} runs, connect to QUIT, implicit TLS to a loopback Dovecot")
    print(f"{'scenario':<14}{'stdlib wall':>14}{'popwire wall':>14}{'ratio':>8}{'stdlib CPU':>13}{'popwire CPU':>13}{'ratio':>8}")
    for name, row in results.items():
        s, p = row["stdlib"], row["popwire"]
        print(
            f"{name:<14}{s['wall']:>13.3f}s{p['wall']:>13.3f}s{s['wall'] / p['wall']:>7.2f}x"
            f"{s['cpu']:>12.3f}s{p['cpu']:>12.3f}s{s['cpu'] / p['cpu']:>7.2f}x"
        )
        print(f"{'':<14}range stdlib {s['wall_min']:.3f}-{s['wall_max']:.3f} s, popwire {p['wall_min']:.3f}-{p['wall_max']:.3f} s")
        f = row["Client.retr"]
        print(f"{'':<14}floor (popwire.Client.retr, one RETR per round trip in Rust): {f['wall']:.3f} s wall, "
              f"{f['cpu']:.3f} s CPU; the drop-in is {p['wall'] / f['wall']:.2f}x of it")

    print()
    for wheel in sorted((HERE.parent / "dist").glob("popwire-*")):
        print(f"{wheel.name}: {wheel.stat().st_size / 1024:.0f} KiB")
    print(f"import popwire: {import_time('import popwire') * 1000:.1f} ms over a bare interpreter")
    print(f"import popwire.poplib: {import_time('import popwire.poplib') * 1000:.1f} ms")
    print(f"import poplib (stdlib): {import_time('import poplib') * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

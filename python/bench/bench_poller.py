#!/usr/bin/env python3
"""The Poller's cost over the fetch job: 1000 x 5 KB from Dovecot over implicit TLS, deleted.

  fetch          popwire.fetch into a Maildir (the commit protocol, fdatasync per batch)
  Poller         popwire.Poller.poll_once, a handler that only takes len(message.data)
  Poller+sqlite  the handler of examples/ticket_intake.py: parse, one sqlite3 commit per message

Each run gets a freshly seeded mailbox and state directory; the time is from the call to its
return, in this process (so the GIL hand-off per message is counted). Medians of --runs.
Usage: python bench/bench_poller.py [--runs N]   (Dovecot from $POPWIRE_DOVECOT, or started)
"""

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import popwire  # noqa: E402
from corpus import sized  # noqa: E402
from dovecot import from_env_or_start  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    messages = sized(1000, 5 * 1024, seed=5)
    for dovecot in from_env_or_start():
        if dovecot is None:
            print("no Dovecot", file=sys.stderr)
            return 1

        def fetch(user: str, tmp: Path) -> None:
            account = popwire.Account(user, email=f"{user}@example.com", username=user, server=dovecot.host,
                                      port=dovecot.tls_port, ca_file=dovecot.ca_file, password=dovecot.password,
                                      maildir=tmp / "Mail")
            popwire.fetch(accounts=[account], state_dir=tmp / "state").raise_for_errors()

        def poll(user: str, tmp: Path, handler) -> None:  # type: ignore[no-untyped-def]
            p = popwire.Poller(dovecot.host, user, dovecot.password, port=dovecot.tls_port,
                               ca_file=dovecot.ca_file, state_dir=tmp / "state")
            report = p.poll_once(handler)
            assert len(report.handled) == len(messages), report

        def sqlite_poll(user: str, tmp: Path) -> None:
            db = sqlite3.connect(tmp / "t.db")
            db.execute("CREATE TABLE t (uid TEXT PRIMARY KEY, sender TEXT, subject TEXT, date TEXT)")

            def handler(m: popwire.Message) -> None:
                mail = m.email()
                with db:
                    db.execute("INSERT OR IGNORE INTO t VALUES (?, ?, ?, ?)",
                               (m.uid, str(mail["From"]), str(mail["Subject"]), str(mail["Date"])))
            poll(user, tmp, handler)

        cases = {
            "fetch": fetch,
            "Poller": lambda user, tmp: poll(user, tmp, lambda m: len(m.data)),
            "Poller+sqlite": sqlite_poll,
        }
        for name, case in cases.items():
            times = []
            for _ in range(args.runs):
                user = dovecot.new_user("pbench")
                dovecot.seed(user, messages)
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.perf_counter()
                    case(user, Path(tmp))
                    times.append(time.perf_counter() - start)
            print(f"{name:14} median {statistics.median(times) * 1000:7.1f} ms  "
                  f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, {args.runs} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

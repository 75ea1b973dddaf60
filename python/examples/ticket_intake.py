"""Ticket intake: each new e-mail becomes a row in a sqlite3 table, and is deleted from the
POP3 server only after the row is committed. The UID is the table's key, so a message handed
over twice (after a crash between our commit and popwire's record) makes one ticket.

    POP_HOST=pop.example.com POP_USER=help@example.com POP_PASSWORD=... \\
        python ticket_intake.py tickets.db [--once]

Optional: POP_PORT, POP_CA_FILE (a test CA), POP_STATE_DIR (the UID journal's directory).
"""

import os
import sqlite3
import sys

import popwire


def main() -> None:
    db = sqlite3.connect(sys.argv[1])
    db.execute("CREATE TABLE IF NOT EXISTS tickets (uid TEXT PRIMARY KEY, sender TEXT, subject TEXT, date TEXT)")

    def open_ticket(message: popwire.Message) -> None:
        mail = message.email()
        with db:  # commits, or rolls back and raises: then the message stays on the server
            db.execute("INSERT OR IGNORE INTO tickets VALUES (?, ?, ?, ?)",
                       (message.uid, str(mail["From"] or ""), str(mail["Subject"] or ""), str(mail["Date"] or "")))

    env = os.environ
    poller = popwire.Poller(env["POP_HOST"], env["POP_USER"], env["POP_PASSWORD"],
                            port=int(env["POP_PORT"]) if "POP_PORT" in env else None,
                            ca_file=env.get("POP_CA_FILE"), state_dir=env.get("POP_STATE_DIR"))
    if "--once" in sys.argv:
        report = poller.poll_once(open_ticket)
        print(f"{len(report.handled)} new tickets, {len(report.failed)} failed")
        report.raise_for_failures()
    else:
        poller.run(open_ticket, interval=60)  # Ctrl-C stops it cleanly


if __name__ == "__main__":
    main()

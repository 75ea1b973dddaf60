"""popwire.Poller and popwire.AsyncPoller against Dovecot, and examples/ticket_intake.py run for
one poll."""

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import popwire

from corpus import sized, tricky, wire_form

pytestmark = pytest.mark.dovecot

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def poller(dovecot, user, tmp_path, cls=popwire.Poller, **kw):
    return cls(dovecot.host, user, dovecot.password, port=dovecot.tls_port, ca_file=dovecot.ca_file,
               state_dir=tmp_path / "state", **kw)


def test_each_message_is_handed_over_once_then_deleted(dovecot, tmp_path):
    user = dovecot.new_user("poll")
    messages = tricky()
    dovecot.seed(user, messages)
    seen = []
    p = poller(dovecot, user, tmp_path)
    report = p.poll_once(seen.append)
    assert report.ok and len(report.handled) == len(messages) and report.deleted == len(messages)
    assert sorted(m.data for m in seen) == sorted(wire_form(m) for m in messages)
    assert {m.uid for m in seen} == set(report.handled)
    assert all(m.size > 0 for m in seen)
    assert dovecot.server_messages(user) == []
    again = p.poll_once(seen.append)
    assert again.fetched == 0 and len(seen) == len(messages)


def test_the_email_helper_parses_the_message(dovecot, tmp_path):
    user = dovecot.new_user("pollmail")
    dovecot.seed(user, [b"From: Ann <ann@example.com>\nSubject: =?utf-8?q?caf=C3=A9?=\n\nhello\n"])
    subjects = []
    poller(dovecot, user, tmp_path).poll_once(lambda m: subjects.append((m.email()["Subject"], m.email().get_content())))
    assert subjects == [("café", "hello\n")]


def test_a_handler_exception_keeps_the_message_and_is_reported(dovecot, tmp_path):
    user = dovecot.new_user("pollerr")
    messages = sized(4, 1200, seed=3)
    dovecot.seed(user, messages)
    bad = wire_form(messages[1])

    class TicketSystemDown(Exception):
        pass

    def handler(m):
        if m.data == bad:
            raise TicketSystemDown("503 from the ticket system")

    p = poller(dovecot, user, tmp_path, retry_base=0, retry_max=0)
    report = p.poll_once(handler)
    assert len(report.handled) == 3 and len(report.failed) == 1 and not report.ok
    failure = report.failed[0]
    assert isinstance(failure.error, TicketSystemDown) and failure.attempts == 1
    assert failure.error.__traceback__ is not None
    assert len(dovecot.server_messages(user)) == 1
    with pytest.raises(TicketSystemDown):
        report.raise_for_failures()
    # Retried at the next poll (no backoff here), and taken this time.
    report = p.poll_once(lambda m: None)
    assert len(report.handled) == 1 and dovecot.server_messages(user) == []


def test_backoff_defers_a_failed_message(dovecot, tmp_path):
    user = dovecot.new_user("pollback")
    dovecot.seed(user, sized(1, 800))
    p = poller(dovecot, user, tmp_path)
    first = p.poll_once(lambda m: 1 / 0)
    assert isinstance(first.failed[0].error, ZeroDivisionError) and first.failed[0].retry_after == 60
    second = p.poll_once(lambda m: None)
    assert (second.deferred, second.fetched) == (1, 0)


def test_keep_mode(dovecot, tmp_path):
    user = dovecot.new_user("pollkeep")
    dovecot.seed(user, sized(3, 900))
    seen = []
    p = poller(dovecot, user, tmp_path, keep=True)
    assert len(p.poll_once(seen.append).handled) == 3
    again = p.poll_once(seen.append)
    assert (again.fetched, again.kept, again.deleted) == (0, 3, 0)
    assert len(seen) == 3 and len(dovecot.server_messages(user)) == 3


def test_keyboard_interrupt_stops_cleanly_and_keeps_what_was_handled(dovecot, tmp_path):
    user = dovecot.new_user("pollint")
    dovecot.seed(user, sized(5, 700))
    seen = []

    def handler(m):
        if len(seen) == 2:
            raise KeyboardInterrupt
        seen.append(m.uid)

    p = poller(dovecot, user, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        p.poll_once(handler)
    # The two handled are recorded: the next poll deletes them without handing them over.
    rest = []
    report = p.poll_once(lambda m: rest.append(m.uid))
    assert len(rest) == 3 and not set(rest) & set(seen)
    assert report.deleted == 5 and dovecot.server_messages(user) == []


def test_run_until_stopped_from_another_thread(dovecot, tmp_path):
    user = dovecot.new_user("pollrun")
    dovecot.seed(user, sized(2, 700))
    seen = []
    reports = []
    p = poller(dovecot, user, tmp_path)
    done = threading.Event()

    def handler(m):
        seen.append(m.uid)
        if len(seen) == 2:
            done.set()

    t = threading.Thread(target=p.run, args=(handler,), kwargs={"interval": 0.05, "on_report": reports.append})
    t.start()
    done.wait()
    p.stop()
    t.join()
    assert len(seen) == 2 and reports and dovecot.server_messages(user) == []


def test_a_wrong_password_is_raised(dovecot, tmp_path):
    user = dovecot.new_user("pollauth")
    p = popwire.Poller(dovecot.host, user, "wrong", port=dovecot.tls_port, ca_file=dovecot.ca_file,
                       state_dir=tmp_path / "state")
    with pytest.raises(popwire.AuthError):
        p.run(lambda m: None)


def test_bad_arguments_are_value_errors(tmp_path):
    with pytest.raises(ValueError):
        popwire.Poller("h", "u", "p", security="smoke", state_dir=tmp_path)
    with pytest.raises(ValueError):
        popwire.Poller("h", "u", "p", keep="soon", state_dir=tmp_path)


def test_async_poller_with_an_async_handler(dovecot, tmp_path):
    user = dovecot.new_user("pollaio")
    messages = sized(4, 1000, seed=9)
    dovecot.seed(user, messages)
    bad = wire_form(messages[0])

    async def main():
        loop_thread = threading.get_ident()
        seen = []

        async def handler(m):
            assert threading.get_ident() == loop_thread, "the coroutine runs on the loop"
            await asyncio.sleep(0)
            if m.data == bad:
                raise ValueError("not a ticket")
            seen.append(m.data)

        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        tick = asyncio.ensure_future(ticker())
        p = poller(dovecot, user, tmp_path, cls=popwire.AsyncPoller)
        report = await p.poll_once(handler)
        tick.cancel()
        return report, seen, ticks

    report, seen, ticks = asyncio.run(main())
    assert len(report.handled) == 3 and isinstance(report.failed[0].error, ValueError)
    assert sorted(seen) == sorted(wire_form(m) for m in messages[1:])
    assert ticks > 0, "the loop kept running during the poll"
    assert len(dovecot.server_messages(user)) == 1


def test_ticket_intake_example_runs_one_poll(dovecot, tmp_path):
    user = dovecot.new_user("tickets")
    dovecot.seed(user, [
        b"From: Ann <ann@example.com>\nSubject: Printer on fire\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nhelp\n",
        b"From: Bob <bob@example.com>\nSubject: VPN down\nDate: Mon, 1 Jan 2024 11:00:00 +0000\n\nagain\n",
    ])
    db = tmp_path / "tickets.db"
    env = dict(os.environ, POP_HOST=dovecot.host, POP_USER=user, POP_PASSWORD=dovecot.password,
               POP_PORT=str(dovecot.tls_port), POP_CA_FILE=dovecot.ca_file, POP_STATE_DIR=str(tmp_path / "state"))
    out = subprocess.run([sys.executable, str(EXAMPLES / "ticket_intake.py"), str(db), "--once"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2 new tickets, 0 failed" in out.stdout
    rows = sqlite3.connect(db).execute("SELECT sender, subject, date FROM tickets ORDER BY subject").fetchall()
    assert rows == [
        ("Ann <ann@example.com>", "Printer on fire", "Mon, 01 Jan 2024 10:00:00 +0000"),
        ("Bob <bob@example.com>", "VPN down", "Mon, 01 Jan 2024 11:00:00 +0000"),
    ]
    assert dovecot.server_messages(user) == []


CRASHING_POLL = """
import os, signal, sys
import popwire
host, user, password, port, ca, state, log = sys.argv[1:]
def handler(m):
    with open(log, "a") as f:
        f.write(m.uid + "\\n")
    if sum(1 for _ in open(log)) == 3:
        os.kill(os.getpid(), signal.SIGKILL)   # after its work, before returning
popwire.Poller(host, user, password, port=int(port), ca_file=ca, state_dir=state).poll_once(handler)
"""


def test_sigkill_inside_the_handler_hands_that_message_over_again(dovecot, tmp_path):
    """At least once, and only the message in flight twice: the ones before it were journaled
    (lines that survive SIGKILL), the ones after it were never handed over."""
    user = dovecot.new_user("pollkill")
    dovecot.seed(user, sized(5, 900, seed=4))
    log = tmp_path / "handled.log"
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_POLL)
    run = subprocess.run([sys.executable, str(script), dovecot.host, user, dovecot.password, str(dovecot.tls_port),
                          dovecot.ca_file, str(tmp_path / "state"), str(log)], capture_output=True, timeout=120)
    assert run.returncode == -9, run.stderr
    first = log.read_text().split()
    assert len(first) == 3
    again = []
    report = poller(dovecot, user, tmp_path).poll_once(lambda m: again.append(m.uid))
    assert again[0] == first[2], "the message in flight is handed over again"
    assert len(again) == 3 and not set(again) & set(first[:2])
    assert report.deleted == 5 and dovecot.server_messages(user) == []


RUN_UNTIL_CTRL_C = """
import sys
import popwire
host, user, password, port, ca, state = sys.argv[1:]
def report(r):
    print("polled", len(r.handled), flush=True)
popwire.Poller(host, user, password, port=int(port), ca_file=ca, state_dir=state).run(
    lambda m: None, interval=3600, on_report=report)
print("stopped", flush=True)
"""


def test_ctrl_c_stops_run_cleanly_while_it_waits(dovecot, tmp_path):
    import signal

    user = dovecot.new_user("pollsigint")
    dovecot.seed(user, sized(2, 600))
    script = tmp_path / "run.py"
    script.write_text(RUN_UNTIL_CTRL_C)
    proc = subprocess.Popen([sys.executable, str(script), dovecot.host, user, dovecot.password,
                             str(dovecot.tls_port), dovecot.ca_file, str(tmp_path / "state")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "polled 2\n"
    proc.send_signal(signal.SIGINT)   # now waiting for the next poll, an hour away
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "stopped\n" and "Traceback" not in err
    assert dovecot.server_messages(user) == []


def test_cancelling_an_async_poll_keeps_what_was_handled(dovecot, tmp_path):
    user = dovecot.new_user("pollcancel")
    dovecot.seed(user, sized(6, 600, seed=2))

    async def main():
        seen = []
        second = asyncio.Event()

        async def handler(m):
            seen.append(m.uid)
            if len(seen) == 2:
                second.set()
                await asyncio.sleep(3600)   # cancelled with the poll

        p = poller(dovecot, user, tmp_path, cls=popwire.AsyncPoller)
        task = asyncio.ensure_future(p.poll_once(handler))
        await second.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rest = []

        async def take(m):
            rest.append(m.uid)

        report = await p.poll_once(take)
        return seen, rest, report

    seen, rest, report = asyncio.run(main())
    assert len(seen) == 2 and len(rest) == 5 and seen[0] not in rest
    assert report.deleted == 6 and dovecot.server_messages(user) == []

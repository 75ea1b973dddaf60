"""popwire.Client against popwire.testing: every method, byte-exact bodies, errors."""

import io

import pytest

import popwire
from popwire.testing import Server

from corpus import sized, tricky, wire_form

USERS = {"alice": "wonderland"}


@pytest.fixture
def server():
    with Server(tricky(), USERS, apop=True) as s:
        yield s


def test_every_method_and_byte_exact_bodies(server):
    messages = tricky()
    with server.client() as pop:
        assert pop.greeting.startswith("popwire POP3 server ready <")
        assert not pop.is_tls
        assert "SASL" in pop.capabilities
        pop.login("alice", "wonderland")
        caps = pop.capa()
        assert {"TOP", "UIDL", "PIPELINING", "USER"} <= set(caps)
        assert caps["SASL"] == ["PLAIN", "SCRAM-SHA-256"]

        count, size = pop.stat()
        assert count == len(messages)
        listing = pop.list()
        assert [n for n, _ in listing] == list(range(1, len(messages) + 1))
        assert [s for _, s in listing] == [len(wire_form(m)) for m in messages]
        assert size == sum(s for _, s in listing)
        assert pop.list(3) == listing[2]

        uids = pop.uidl()
        assert [u for _, u in uids] == server.uids
        assert pop.uidl(2) == (2, server.uids[1])

        for num, msg in enumerate(messages, start=1):
            assert pop.retr(num) == wire_form(msg), num
            sink = io.BytesIO()
            assert pop.retr_to(num, sink) == len(wire_form(msg))
            assert sink.getvalue() == wire_form(msg)
            assert b"".join(pop.iter_retr(num)) == wire_form(msg)
        assert list(pop.retr_many([3, 1, 2])) == [(3, wire_form(messages[2])), (1, wire_form(messages[0])), (2, wire_form(messages[1]))]

        top = pop.top(1, 2)
        head, _, body = wire_form(messages[0]).partition(b"\r\n\r\n")
        assert top == head + b"\r\n\r\n" + b"\r\n".join(body.split(b"\r\n")[:2]) + b"\r\n"
        assert pop.top(1, 0) == head + b"\r\n\r\n"

        pop.noop()
        pop.dele(1)
        pop.dele(2)
        pop.rset()
        pop.dele(3)
        assert pop.quit().startswith("Bye") or True
        assert pop.closed
    assert server.deleted == [messages[2]]
    assert len(server.messages) == len(messages) - 1


def test_context_manager_quits_or_forgets(server):
    with server.client() as pop:
        pop.login("alice", "wonderland")
        pop.dele(1)
    assert len(server.deleted) == 1
    with pytest.raises(RuntimeError):
        with server.client() as pop:
            pop.login("alice", "wonderland")
            pop.dele(1)
            raise RuntimeError("boom")
    assert len(server.deleted) == 1, "a failed block must not commit deletions"


def test_auth_mechanisms(server):
    for mechanism, kwargs in [
        ("user", {}),
        ("PLAIN", {}),
        ("SCRAM-SHA-256", {}),
        ("auto", {}),
        ("apop", {}),
    ]:
        with server.client() as pop:
            pop.auth(mechanism, "alice", "wonderland", **kwargs)
            assert pop.stat()[0] == len(tricky())
    assert server.logins == ["alice"] * 5


def test_scram_is_chosen_without_cleartext():
    with Server([b"x\n"], USERS, allow_cleartext=False) as s:
        with s.client() as pop:
            pop.login("alice", "wonderland")  # SCRAM-SHA-256: no cleartext needed
            assert pop.retr(1) == b"x\r\n"
    with Server([b"x\n"], USERS, allow_cleartext=False, mechanisms=[]) as s:
        with s.client(allow_cleartext=False) as pop:
            with pytest.raises(popwire.ConfigError) as e:
                pop.login("alice", "wonderland")
            assert e.value.kind == "policy:cleartext-forbidden"


def test_retr_to_writes_in_bounded_chunks():
    big = b"Subject: big\r\n\r\n" + b"y" * 78 + b"\r\n"
    msg = big * 40000  # ~3.2 MB
    chunks = []

    class Sink:
        def write(self, b):
            chunks.append(len(b))
            return len(b)

    with Server([msg], USERS) as s, s.client() as pop:
        pop.login("alice", "wonderland")
        assert pop.retr_to(1, Sink()) == len(msg)
    assert sum(chunks) == len(msg)
    assert max(chunks) <= 256 * 1024
    assert len(chunks) > 10


def test_retr_to_propagates_the_sinks_exception_and_session_survives():
    msgs = sized(3, 200_000)

    class Broken:
        def write(self, b):
            raise ValueError("disk full")

    with Server(msgs, USERS) as s, s.client() as pop:
        pop.login("alice", "wonderland")
        with pytest.raises(ValueError, match="disk full"):
            pop.retr_to(1, Broken())
        assert pop.retr(2) == wire_form(msgs[1])


def test_abandoned_iterators_leave_the_session_usable():
    msgs = sized(4, 300_000)
    with Server(msgs, USERS) as s, s.client() as pop:
        pop.login("alice", "wonderland")
        it = pop.iter_retr(1)
        next(it)
        with pytest.raises(popwire.Error) as e:
            pop.stat()
        assert e.value.kind == "usage:streaming"
        it.close()
        assert pop.retr(2) == wire_form(msgs[1])
        for num, data in pop.retr_many([1, 2, 3, 4]):
            assert data == wire_form(msgs[num - 1])
            break
        assert pop.stat()[0] == 4
        assert pop.retr(4) == wire_form(msgs[3])


def test_server_errors_carry_code_and_text():
    with Server([b"x\n"], USERS) as s, s.client() as pop:
        pop.login("alice", "wonderland")
        with pytest.raises(popwire.ServerError) as e:
            pop.retr(7)
        assert e.value.kind == "server:refused"
        assert e.value.command == "RETR"
        assert e.value.text
        assert pop.retr(1) == b"x\r\n"


def test_retr_many_reports_a_refused_message_and_goes_on():
    msgs = sized(2, 1000)
    with Server(msgs, USERS) as s, s.client() as pop:
        pop.login("alice", "wonderland")
        it = pop.retr_many([1, 9, 2])
        assert next(it) == (1, wire_form(msgs[0]))
        with pytest.raises(popwire.ServerError) as e:
            next(it)
        assert e.value.number == 9
        assert next(it) == (2, wire_form(msgs[1]))
        assert list(it) == []


def test_closed_client():
    with Server([b"x\n"], USERS) as s:
        pop = s.client()
        pop.close()
        assert pop.closed
        with pytest.raises(popwire.Error) as e:
            pop.stat()
        assert e.value.kind == "usage:closed"
        assert pop.quit() is None

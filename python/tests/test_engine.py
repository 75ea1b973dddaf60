"""popwire.Engine, the sans-IO engine, used directly."""

import pytest

import popwire
from popwire import Body, Completed, Greeting, Ready, TlsReady


def events(engine):
    out = []
    ev = engine.next_event()
    while ev is not None:
        out.append(ev)
        ev = engine.next_event()
    return out


def test_a_session_by_hand():
    e = popwire.Engine("none", negotiate=False, allow_cleartext=True)
    assert e.phase == "greeting"
    e.receive_data(b"+OK ready <1.2@host>\r\n")
    (greeting,) = events(e)
    assert isinstance(greeting, Greeting)
    assert greeting.apop_timestamp == "<1.2@host>"
    assert e.greeting.text == "ready <1.2@host>"
    user = e.user("bob")
    password = e.pass_("secret")
    assert e.data_to_send() == b"USER bob\r\n"
    e.receive_data(b"+OK\r\n")
    assert events(e)[0].id == user
    assert e.data_to_send() == b"PASS secret\r\n"
    e.receive_data(b"+OK in\r\n")
    (done,) = events(e)
    assert (done.id, done.kind, done.value, done.error) == (password, "authenticated", None, None)
    assert e.phase == "transaction"
    retr = e.retr(1)
    stat = e.stat()
    assert e.data_to_send() == b"RETR 1\r\n"  # no PIPELINING advertised: one at a time
    e.receive_data(b"+OK\r\n..dot\r\nline\r\n.\r\n")
    got = events(e)
    assert [type(x) for x in got][-1] is Completed
    body = b"".join(x.data for x in got if isinstance(x, Body))
    assert body == b".dot\r\nline\r\n"
    assert got[-1].result() == 12
    assert e.data_to_send() == b"STAT\r\n"
    e.receive_data(b"+OK 1 12\r\n")
    (st,) = events(e)
    assert st.id == stat and st.result() == (1, 12)
    dele = e.dele(7)
    e.data_to_send()
    e.receive_data(b"-ERR [SYS/TEMP] busy\r\n")
    (refused,) = events(e)
    assert refused.id == dele and refused.kind == "error"
    with pytest.raises(popwire.ServerError) as exc:
        refused.result()
    assert exc.value.code == "SYS/TEMP" and exc.value.temporary
    assert Completed.__match_args__ == ("id", "kind", "value", "error")


def test_negotiation_and_stls_injection():
    e = popwire.Engine("starttls")
    e.receive_data(b"+OK hi\r\n")
    events(e)
    assert e.data_to_send() == b"CAPA\r\n"
    e.receive_data(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n")
    events(e)
    assert e.data_to_send() == b"STLS\r\n"
    with pytest.raises(popwire.ProtocolError) as exc:
        e.receive_data(b"+OK go\r\n+OK injected\r\n")
        events(e)
    assert exc.value.kind == "protocol:injection-after-stls"
    assert e.phase == "failed"
    assert e.failure.kind == "protocol:injection-after-stls"


def test_stls_upgrade_forgets_capabilities():
    e = popwire.Engine("starttls")
    e.receive_data(b"+OK hi\r\n")
    events(e)
    e.data_to_send()
    e.receive_data(b"+OK\r\nSTLS\r\nSASL PLAIN\r\n.\r\n")
    events(e)
    e.data_to_send()
    e.receive_data(b"+OK go\r\n")
    assert isinstance(events(e)[-1], TlsReady)
    assert e.phase == "awaiting-tls"
    e.tls_established()
    assert e.is_tls and e.capabilities == {}
    assert e.data_to_send() == b"CAPA\r\n"
    e.receive_data(b"+OK\r\nSASL PLAIN SCRAM-SHA-256\r\nPIPELINING\r\n.\r\n")
    (ready,) = events(e)
    assert isinstance(ready, Ready)
    assert ready.capabilities == {"SASL": ["PLAIN", "SCRAM-SHA-256"], "PIPELINING": []}
    e.auth("auto", "bob", "pw", nonce="abcdefghijklmnopqrstuvwx")
    assert e.data_to_send().startswith(b"AUTH SCRAM-SHA-256 ")


def test_refusals_raise_at_once():
    e = popwire.Engine("none", negotiate=False)
    e.receive_data(b"+OK hi\r\n")
    events(e)
    with pytest.raises(popwire.ConfigError) as exc:
        e.user("bob")
    assert exc.value.kind == "policy:cleartext-forbidden"
    with pytest.raises(popwire.Error) as exc:
        e.stat()
    assert exc.value.kind == "usage:wrong-state"
    with pytest.raises(ValueError):
        e.auth("no-such-mechanism", "bob", "pw")
    with pytest.raises(ValueError):
        e.auth("PLAIN", "bob", "pw", token="t")


def test_limits_are_options():
    e = popwire.Engine("none", negotiate=False, status_line_limit=16)
    with pytest.raises(popwire.ProtocolError) as exc:
        e.receive_data(b"+OK " + b"x" * 40 + b"\r\n")
        events(e)
    assert exc.value.kind == "protocol:status-line-too-long"
    assert repr(popwire.Engine()).startswith("<popwire.Engine phase=greeting")

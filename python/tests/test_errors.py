"""Every failure becomes the popwire exception that says what to do next."""

import asyncio
import builtins
import socket
import threading

import pytest

import popwire
from popwire.testing import Server

USERS = {"alice": "wonderland"}


def fake_server(reply: bytes):
    """A one-shot TCP server that sends ``reply`` and waits; returns (port, stop)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.sendall(reply)
            try:
                conn.recv(4096)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop() -> None:
        listener.close()
        thread.join(timeout=2)

    return port, stop


def test_hierarchy():
    for cls in (popwire.ServerError, popwire.AuthError, popwire.TlsError, popwire.ProtocolError,
                popwire.ConfigError, popwire.TimeoutError, popwire.NetworkError, popwire.StorageError,
                popwire.Cancelled):
        assert issubclass(cls, popwire.Error)
    assert issubclass(popwire.TimeoutError, builtins.TimeoutError)
    assert issubclass(popwire.NetworkError, ConnectionError)
    assert issubclass(popwire.NetworkError, OSError)
    assert popwire.Error.__module__ == "popwire"


def test_wrong_password_is_auth_error():
    with Server([], USERS) as s, s.client() as pop:
        with pytest.raises(popwire.AuthError) as e:
            pop.login("alice", "wrong")
        assert e.value.code == "AUTH"
        assert e.value.text
        assert e.value.kind == "server:refused"
        assert e.value.error_class == "auth"
        assert not e.value.temporary


def test_in_use_is_a_temporary_server_error():
    with Server([b"x\n"], USERS, lock_maildrop=True) as s:
        with s.client() as first:
            first.login("alice", "wonderland")
            with s.client() as second:
                with pytest.raises(popwire.ServerError) as e:
                    second.auth("user", "alice", "wonderland")
        assert not isinstance(e.value, popwire.AuthError)
        assert e.value.code == "IN-USE"
        assert e.value.error_class == "server"
        assert e.value.temporary
        assert e.value.command == "PASS"


def test_timeout_is_both_timeout_errors():
    # The server answers CAPA (sent while connecting) after 2 s; the client waits 0.3 s.
    with Server([], USERS, latency=2.0) as s:
        with pytest.raises(TimeoutError) as e:
            s.client(timeout=0.3)
        assert isinstance(e.value, popwire.TimeoutError)
        assert e.value.kind == "net:timeout"
        assert e.value.temporary


def test_connection_refused_and_unknown_host_are_network_errors():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(OSError) as e:
        popwire.Client("127.0.0.1", port, security="none", timeout=5)
    assert isinstance(e.value, popwire.NetworkError)
    assert e.value.kind == "net:connect"
    with pytest.raises(popwire.NetworkError) as e:
        popwire.Client("no-such-host.invalid", 995, timeout=5)
    assert e.value.kind == "net:resolve"


def test_tls_to_a_plain_server_is_tls_error():
    with Server([], USERS) as s:
        with pytest.raises(popwire.TlsError) as e:
            popwire.Client(s.host, s.port, security="tls", timeout=5)
        assert e.value.kind.startswith("tls:")


def test_starttls_without_stls_is_tls_error():
    with Server([], USERS) as s:
        with pytest.raises(popwire.TlsError) as e:
            popwire.Client(s.host, s.port, security="starttls", timeout=5)
        assert e.value.kind == "policy:tls-unavailable"


def test_bad_ca_file_is_config_error(tmp_path):
    with Server([], USERS) as s, pytest.raises(popwire.ConfigError) as e:
        popwire.Client(s.host, s.port, ca_file=tmp_path / "missing.pem")
    assert e.value.kind == "config:ca-file"


def test_bad_greeting_is_protocol_error():
    port, stop = fake_server(b"HELLO there\r\n")
    try:
        with pytest.raises(popwire.ProtocolError) as e:
            popwire.Client("127.0.0.1", port, security="none", timeout=5)
        assert e.value.kind == "protocol:bad-greeting"
    finally:
        stop()


def test_misuse_is_a_config_error():
    with Server([], USERS) as s, s.client() as pop:
        with pytest.raises(popwire.ConfigError) as e:
            pop.stat()
        assert type(e.value) is popwire.ConfigError
        assert e.value.error_class == "config"
        assert e.value.kind == "usage:wrong-state"
        with pytest.raises(popwire.Error) as e:
            pop.auth("user", "alice\r\nDELE 1", "x")
        assert e.value.kind == "usage:forbidden-byte"
    with pytest.raises(ValueError):
        popwire.Client("127.0.0.1", 1, security="smoke-signals")


def test_async_client_maps_the_same_way():
    async def main() -> None:
        with Server([], USERS) as s:
            async with s.async_client() as pop:
                with pytest.raises(popwire.AuthError) as e:
                    await pop.login("alice", "wrong")
                assert e.value.code == "AUTH"
            with pytest.raises(popwire.TlsError):
                await popwire.AsyncClient(s.host, s.port, security="starttls", timeout=5).connect()
            with pytest.raises(popwire.TlsError):
                await popwire.AsyncClient(s.host, s.port, security="tls", timeout=5).connect()
        with Server([], USERS, latency=2.0) as s:
            with pytest.raises(TimeoutError) as e:
                await s.async_client(timeout=0.3).connect()
            assert isinstance(e.value, popwire.TimeoutError)
        port, stop = fake_server(b"+OK hi\r\n+OK unsolicited\r\n")
        try:
            with pytest.raises(popwire.ProtocolError) as e:
                pop = await popwire.AsyncClient("127.0.0.1", port, security="none", timeout=5).connect()
                await pop.noop()
        finally:
            stop()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        with pytest.raises(popwire.NetworkError):
            await popwire.AsyncClient("127.0.0.1", port, security="none").connect()

    asyncio.run(main())


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_adapter_situations_live():
    """The live rows of tests/vectors/classes/adapter-situations.txt, both clients."""
    port = _closed_port()
    with pytest.raises(popwire.NetworkError) as e:
        popwire.Client("127.0.0.1", port, security="none", timeout=5)
    assert (e.value.error_class, e.value.temporary, e.value.kind) == ("network", False, "net:connect")

    async def refused() -> popwire.Error:
        with pytest.raises(popwire.NetworkError) as e:
            await popwire.AsyncClient("127.0.0.1", port, security="none", timeout=5).connect()
        return e.value

    err = asyncio.run(refused())
    assert (err.error_class, err.temporary, err.kind) == ("network", False, "net:connect")

    with Server([], USERS, latency=2.0) as s:
        with pytest.raises(popwire.TimeoutError) as e:
            s.client(timeout=0.3)
    assert (e.value.error_class, e.value.temporary, e.value.kind) == ("timeout", True, "net:timeout")

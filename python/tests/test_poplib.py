"""popwire.poplib against the behaviours CPython's test_poplib checks. Most tests run against
both the standard library's poplib and popwire.poplib, to show they behave the same; the known,
deliberate differences have tests of their own at the end."""

import poplib as stdlib_poplib
import socket
import ssl
import sys
import threading
from pathlib import Path
from typing import Iterator, Optional

import pytest

from popwire import poplib as popwire_poplib
import popwire

LIST_RESP = b"1 1\r\n2 2\r\n3 3\r\n4 4\r\n5 5\r\n.\r\n"
RETR_RESP = (
    b"From: postmaster@python.org\r\nContent-Type: text/plain\r\nMIME-Version: 1.0\r\n"
    b"Subject: Dummy\r\n\r\nline1\r\nline2\r\nline3\r\n.\r\n"
)
RETR_LINES = [b"From: postmaster@python.org", b"Content-Type: text/plain", b"MIME-Version: 1.0",
              b"Subject: Dummy", b"", b"line1", b"line2", b"line3"]
LONG_LINE = b"x" * 100_000
WELCOME = b"+OK dummy pop3 server ready. <1896.697170952@dbc.mtview.ca.us>"


class DummyServer:
    """test_poplib's DummyPOP3Server, on threads and blocking sockets: one session at a time,
    optional implicit TLS, STLS when it has a certificate."""

    def __init__(self, cert: Optional[Path] = None, key: Optional[Path] = None, implicit_tls: bool = False):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self.listener.getsockname()[:2]
        self.tls_context = None
        if cert is not None:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(cert, key)
        self.implicit_tls = implicit_tls
        self.enable_utf8 = False
        self.commands = []
        self.live = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        for sock in (self.listener, *self.live):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() or recv()
            except OSError:
                pass
        self.listener.close()
        self.thread.join(timeout=5)

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.live = [conn]
            try:
                self.session(conn)
            except (OSError, ValueError):
                pass
            finally:
                conn.close()

    def session(self, conn: socket.socket) -> None:
        tls = False
        if self.implicit_tls:
            conn = self.tls_context.wrap_socket(conn, server_side=True)
            tls = True
        f = conn.makefile("rb")

        def push(line: bytes) -> None:
            conn.sendall(line + b"\r\n")

        push(WELCOME)
        while True:
            raw = f.readline()
            if not raw:
                return
            line = raw.rstrip(b"\r\n").decode("latin-1")
            self.commands.append(line)
            cmd, _, arg = line.partition(" ")
            cmd = cmd.lower()
            if cmd == "user":
                push(b"+OK password required" if arg == "guido" else b"-ERR no such user")
            elif cmd == "pass":
                push(b"+OK 10 messages" if arg == "python" else b"-ERR [AUTH] wrong password")
            elif cmd == "apop":
                push(b"+OK done nothing.")
            elif cmd == "stat":
                push(b"+OK 10 100")
            elif cmd in ("list", "uidl"):
                if arg:
                    push(b"+OK %s %s" % (arg.encode(), arg.encode()))
                else:
                    push(b"+OK")
                    conn.sendall(LIST_RESP)
            elif cmd in ("retr", "top"):
                push(b"+OK %d bytes" % len(RETR_RESP))
                body = RETR_RESP if arg.split()[0] != "9" else b"long\r\n" + LONG_LINE + b"\r\n.\r\n"
                conn.sendall(body)
            elif cmd == "dele":
                push(b"-ERR [SYS/TEMP] cannot delete now" if arg == "99" else b"+OK message marked for deletion.")
            elif cmd == "noop":
                push(b"+OK done nothing.")
            elif cmd == "rset":
                push(b"+OK " + b"r" * 4000)  # a status line longer than poplib's 2048 limit
            elif cmd == "quit":
                push(b"+OK closing.")
                return
            elif cmd == "capa":
                push(b"+OK Capability list follows")
                push(b"UIDL")
                push(b"IMPLEMENTATION python-testlib-pop-server")
                if self.enable_utf8:
                    push(b"UTF8")
                if not tls and self.tls_context is not None:
                    push(b"STLS")
                push(b".")
            elif cmd == "utf8":
                push(b"+OK I know RFC6856" if self.enable_utf8 else b"-ERR What is UTF8?!")
            elif cmd == "stls" and not tls and self.tls_context is not None:
                push(b"+OK Begin TLS negotiation")
                conn = self.tls_context.wrap_socket(conn, server_side=True)
                f = conn.makefile("rb")
                tls = True
            else:
                push(b"-ERR unrecognized POP3 command")


@pytest.fixture(params=["stdlib", "popwire"])
def poplib(request):
    return stdlib_poplib if request.param == "stdlib" else popwire_poplib


@pytest.fixture
def certs(dovecot) -> Path:
    """The Dovecot fixture's test CA directory (ca.pem, server.pem/.key for localhost)."""
    return Path(dovecot.ca_dir)


@pytest.fixture
def server() -> Iterator[DummyServer]:
    s = DummyServer()
    yield s
    s.stop()


@pytest.fixture
def tls_server(certs) -> Iterator[DummyServer]:
    s = DummyServer(certs / "server.pem", certs / "server.key")
    yield s
    s.stop()


def client_context(certs: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs / "ca.pem")
    return ctx


def assert_ok(resp: bytes) -> None:
    assert resp.startswith(b"+OK"), resp


# -- TestPOP3Class ---------------------------------------------------------------------------


def test_names(poplib):
    for name in ("POP3", "POP3_SSL", "error_proto", "POP3_PORT", "POP3_SSL_PORT"):
        assert hasattr(popwire_poplib, name)
        assert name in popwire_poplib.__all__ or name.endswith("PORT")
    assert (popwire_poplib.POP3_PORT, popwire_poplib.POP3_SSL_PORT) == (stdlib_poplib.POP3_PORT, stdlib_poplib.POP3_SSL_PORT)
    assert issubclass(popwire_poplib.error_proto, stdlib_poplib.error_proto)
    assert issubclass(popwire_poplib.error_proto, popwire.Error)


def test_session(poplib, server):
    client = poplib.POP3(server.host, server.port, timeout=3)
    assert client.getwelcome() == WELCOME
    assert_ok(client.user("guido"))
    assert_ok(client.pass_("python"))
    assert client.stat() == (10, 100)
    assert client.list()[1:] == ([b"1 1", b"2 2", b"3 3", b"4 4", b"5 5"], 25)
    assert client.list("1").endswith(b"OK 1 1")
    resp, lines, octets = client.retr(1)
    assert_ok(resp)
    assert (lines, octets) == (RETR_LINES, 113)
    resp, lines, octets = client.top(1, 1)
    assert (lines, octets) == (RETR_LINES, 113)
    assert client.uidl()[1:] == ([b"1 1", b"2 2", b"3 3", b"4 4", b"5 5"], 25)
    assert client.uidl(3) == b"+OK 3 3"
    assert client.dele(1) == b"+OK message marked for deletion."
    assert client.noop() == b"+OK done nothing."
    assert "IMPLEMENTATION" in client.capa()
    assert client.capa()["IMPLEMENTATION"] == ["python-testlib-pop-server"]
    resp = client.quit()
    assert resp == b"+OK closing."
    assert client.sock is None
    assert client.file is None


def test_error_proto_on_err(poplib, server):
    client = poplib.POP3(server.host, server.port, timeout=3)
    with pytest.raises(poplib.error_proto) as e:
        client.user("invalid")
    assert e.value.args[0] == b"-ERR no such user"
    with pytest.raises(poplib.error_proto) as e:
        client.pass_("wrong")
    assert e.value.args[0] == b"-ERR [AUTH] wrong password"
    client.pass_("python")
    with pytest.raises(poplib.error_proto) as e:
        client.dele(99)
    assert e.value.args[0] == b"-ERR [SYS/TEMP] cannot delete now"
    client.noop()  # the session goes on
    client.quit()


def test_apop(poplib, server):
    client = poplib.POP3(server.host, server.port, timeout=3)
    assert_ok(client.apop("foo", "dummypassword"))
    digest = server.commands[-1].split()[2]
    import hashlib
    assert digest == hashlib.md5(b"<1896.697170952@dbc.mtview.ca.us>dummypassword").hexdigest()
    client.close()


def test_utf8(poplib, server):
    client = poplib.POP3(server.host, server.port, timeout=3)
    with pytest.raises(poplib.error_proto):
        client.utf8()
    client.close()
    server.enable_utf8 = True
    client = poplib.POP3(server.host, server.port, timeout=3)
    assert client.utf8() == b"+OK I know RFC6856"
    client.close()


def test_no_2048_byte_line_limit(server):
    client = popwire_poplib.POP3(server.host, server.port, timeout=3)
    client.pass_("python")
    resp, lines, octets = client.retr(9)
    assert lines == [b"long", LONG_LINE]
    assert octets == len(LONG_LINE) + 8
    assert client.rset() == b"+OK " + b"r" * 4000
    client.quit()
    with pytest.raises(stdlib_poplib.error_proto):  # what popwire.poplib lifts
        stdlib_poplib.POP3(server.host, server.port, timeout=3).retr(9)


def test_debuglevel_prints_commands(server, capsys):
    client = popwire_poplib.POP3(server.host, server.port, timeout=3)
    client.set_debuglevel(1)
    client.user("guido")
    client.pass_("python")
    out = capsys.readouterr().out
    assert "*cmd* 'USER guido'" in out
    assert "*resp* b'+OK password required'" in out
    assert "python" not in out.replace("python-testlib", "")
    client.close()


# -- STLS (TestPOP3_TLSClass) ------------------------------------------------------------------


def test_stls(poplib, tls_server, certs):
    client = poplib.POP3("localhost", tls_server.port, timeout=3)
    assert "STLS" in client.capa()
    resp = client.stls(context=client_context(certs))
    assert_ok(resp)
    assert isinstance(client.sock, ssl.SSLSocket)
    assert "STLS" not in client.capa()
    with pytest.raises(poplib.error_proto):
        client.stls()
    assert_ok(client.user("guido"))
    assert_ok(client.pass_("python"))
    assert client.retr(1)[1:] == (RETR_LINES, 113)
    client.quit()


def test_stls_context_checks_the_certificate(poplib, tls_server, certs):
    wrong = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    wrong.load_verify_locations(certs / "wrong-ca.pem")
    client = poplib.POP3("localhost", tls_server.port, timeout=3)
    with pytest.raises(ssl.CertificateError):
        client.stls(context=wrong)


def test_stls_not_offered(poplib, server):
    client = poplib.POP3(server.host, server.port, timeout=3)
    with pytest.raises(poplib.error_proto):
        client.stls()
    client.close()


# -- POP3_SSL (TestPOP3_SSLClass) --------------------------------------------------------------


def test_pop3_ssl_context(poplib, certs):
    server = DummyServer(certs / "server.pem", certs / "server.key", implicit_tls=True)
    try:
        ctx = client_context(certs)
        client = poplib.POP3_SSL("localhost", server.port, context=ctx)
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.context is ctx
        assert client.getwelcome() == WELCOME
        client.pass_("python")
        assert client.noop().startswith(b"+OK")
        assert "STLS" not in client.capa()
        with pytest.raises(poplib.error_proto):
            client.stls()
        assert client.retr(2)[1:] == (RETR_LINES, 113)
        client.quit()
        if "keyfile" in poplib.POP3_SSL.__init__.__code__.co_varnames:
            for kw in ({"keyfile": certs / "server.key"}, {"certfile": certs / "server.pem"}):
                with pytest.raises(ValueError):
                    poplib.POP3_SSL("localhost", server.port, context=ctx, **kw)
    finally:
        server.stop()


def test_pop3_ssl_verifies_by_default(certs):
    """A deliberate difference: the standard library does not verify certificates by default."""
    server = DummyServer(certs / "server.pem", certs / "server.key", implicit_tls=True)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            popwire_poplib.POP3_SSL("localhost", server.port, timeout=3)
    finally:
        server.stop()


def test_against_dovecot(poplib, dovecot, certs):
    user = dovecot.new_user("poplib")
    dovecot.seed(user, [b"Subject: one\n\n.dot\nbody\n", b"Subject: two\n\nx\n"])
    client = poplib.POP3_SSL(dovecot.host, dovecot.tls_port, context=client_context(certs))
    client.user(user)
    client.pass_(dovecot.password)
    assert client.stat() == (2, 47)
    assert client.retr(1)[1:] == ([b"Subject: one", b"", b".dot", b"body"], 28)
    assert [line.split()[0] for line in client.uidl()[1]] == [b"1", b"2"]
    client.dele(2)
    assert client.quit().startswith(b"+OK")
    assert len(dovecot.server_messages(user)) == 1
    plain = poplib.POP3(dovecot.host, dovecot.plain_port, timeout=5)
    plain.stls(context=client_context(certs))
    plain.apop(user, dovecot.password)
    assert plain.stat()[0] == 1
    plain.quit()


# -- TestTimeouts ----------------------------------------------------------------------------


@pytest.fixture
def hola():
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        try:
            while True:
                conn, _ = listener.accept()
                conn.sendall(b"+OK Hola mundo\r\n")
                conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(timeout=5)


def test_timeouts(poplib, hola):
    assert socket.getdefaulttimeout() is None
    socket.setdefaulttimeout(30)
    try:
        pop = poplib.POP3("127.0.0.1", hola)
    finally:
        socket.setdefaulttimeout(None)
    assert pop.sock.gettimeout() == 30
    pop.close()
    socket.setdefaulttimeout(30)
    try:
        pop = poplib.POP3("127.0.0.1", hola, timeout=None)
    finally:
        socket.setdefaulttimeout(None)
    assert pop.sock.gettimeout() is None
    pop.close()
    pop = poplib.POP3("127.0.0.1", hola, timeout=5)
    assert pop.sock.gettimeout() == 5
    pop.close()
    if poplib is popwire_poplib or sys.version_info >= (3, 9):  # stdlib's check came in 3.9
        with pytest.raises(ValueError):
            poplib.POP3("127.0.0.1", hola, timeout=0)


def test_a_stalled_server_times_out(poplib):
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(socket.timeout):  # TimeoutError since Python 3.10
            poplib.POP3("127.0.0.1", listener.getsockname()[1], timeout=0.3)
    finally:
        listener.close()


# -- the deliberate differences -----------------------------------------------------------------


def test_differences_from_the_standard_library(server):
    client = popwire_poplib.POP3(server.host, server.port, timeout=3)
    with pytest.raises(popwire_poplib.error_proto):
        client.rpop("foo")
    assert client.pass_("python") == b"+OK 10 messages"
    # Response lines are the server's own, as in the standard library.
    assert client.retr(1)[0] == b"+OK %d bytes" % len(RETR_RESP)
    assert client.top(1, 1)[0] == b"+OK %d bytes" % len(RETR_RESP)
    assert client.list(1) == b"+OK 1 1"
    assert client.uidl(1) == b"+OK 1 1"
    assert client.list()[0] == b"+OK"
    with pytest.raises(popwire_poplib.error_proto):
        client.retr("foo")
    client.quit()
    # Commands are checked against RFC 1939's states before anything is sent.
    client = popwire_poplib.POP3(server.host, server.port, timeout=3)
    with pytest.raises(popwire_poplib.error_proto):
        client.noop()
    client.close()

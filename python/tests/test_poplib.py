"""popwire.poplib against the standard library's poplib. Most tests run against both modules, to
show they behave the same; the multi-line decoder is compared with the standard library's at every
split of tricky replies; the deliberate differences (line limits, masked debug output, the
certificate switch) have tests of their own. CPython's own test_poplib runs in
run_cpython_test_poplib.py."""

import poplib as stdlib_poplib
import socket
import ssl
import io
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


def test_debuglevel_prints_commands_but_no_secret(server, capsys):
    client = popwire_poplib.POP3(server.host, server.port, timeout=3)
    client.set_debuglevel(2)
    client.user("guido")
    client.pass_("python")
    client.apop("guido", "python")
    out = capsys.readouterr().out
    assert "*cmd* 'USER guido'" in out
    assert "*put* b'USER guido'" in out
    assert "*resp* b'+OK password required'" in out
    assert "*cmd* 'PASS ****'" in out and "*put* b'PASS ****'" in out
    assert "*cmd* 'APOP guido ****'" in out
    assert "python" not in out.replace("python-testlib", "")
    assert server.commands[1] == "PASS python"  # masked in the output only
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


def test_pop3_ssl_without_context_does_not_verify(poplib, certs):
    """As in the standard library: a self-signed test CA is accepted without a context."""
    server = DummyServer(certs / "server.pem", certs / "server.key", implicit_tls=True)
    try:
        client = poplib.POP3_SSL("localhost", server.port, timeout=3)
        assert client.getwelcome() == WELCOME
        assert client.sock.context.verify_mode == ssl.CERT_NONE
        client.quit()
    finally:
        server.stop()


@pytest.fixture
def verifying(monkeypatch):
    monkeypatch.setattr(popwire_poplib, "verify_certificates", True)


def test_the_switch_verifies_every_pop3_ssl_and_stls(certs, tls_server, verifying, monkeypatch):
    server = DummyServer(certs / "server.pem", certs / "server.key", implicit_tls=True)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            popwire_poplib.POP3_SSL("localhost", server.port, timeout=3)
        plain = popwire_poplib.POP3("localhost", tls_server.port, timeout=3)
        with pytest.raises(ssl.SSLCertVerificationError):
            plain.stls()
        # Trusting the test CA (system roots are replaced by SSL_CERT_FILE), both verify and work.
        monkeypatch.setenv("SSL_CERT_FILE", str(certs / "ca.pem"))
        client = popwire_poplib.POP3_SSL("localhost", server.port, timeout=3)
        assert client.sock.context.verify_mode == ssl.CERT_REQUIRED
        assert client.sock.context.check_hostname
        client.quit()
        plain = popwire_poplib.POP3("localhost", tls_server.port, timeout=3)
        assert_ok(plain.stls())
        assert plain.sock.context.verify_mode == ssl.CERT_REQUIRED
        plain.quit()
        # An explicit context is used as given, switch or not.
        client = popwire_poplib.POP3_SSL("localhost", server.port, context=ssl._create_unverified_context())
        assert client.sock.context.verify_mode == ssl.CERT_NONE
        client.quit()
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


# -- the same as the standard library where popwire.Client is strict ---------------------------


def test_commands_are_sent_in_any_state(poplib, server):
    client = poplib.POP3(server.host, server.port, timeout=3)
    assert client.noop() == b"+OK done nothing."  # before login: the server decides
    assert client.stat() == (10, 100)
    assert client.list()[1] == [b"1 1", b"2 2", b"3 3", b"4 4", b"5 5"]
    assert client.top(1, 0)[1] == RETR_LINES
    with pytest.raises(poplib.error_proto) as e:
        client.rpop("foo")  # sent; this server does not know it
    assert e.value.args[0] == b"-ERR unrecognized POP3 command"
    assert client.retr("foo")[1] == RETR_LINES  # sent as given: the server decides
    assert server.commands[-1] == "RETR foo"
    assert client._shortcmd("LIST 7") == b"+OK 7 7"
    assert client._longcmd("UIDL")[1][0] == b"1 1"
    client._putcmd("NOOP")
    assert client._getresp() == b"+OK done nothing."
    client.quit()


@pytest.fixture
def greeter():
    """A server that greets with ``+ Hola mundo`` and answers every command with ``+ ok``."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        try:
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.sendall(b"+ Hola mundo <x>\n")
                    f = conn.makefile("rb")
                    while f.readline():
                        conn.sendall(b"+ ok\r\n")
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(timeout=5)


def test_any_plus_reply_is_accepted(poplib, greeter):
    client = poplib.POP3("127.0.0.1", greeter, timeout=3)
    assert client.getwelcome() == b"+ Hola mundo <x>"
    assert client.user("u") == b"+ ok"
    with pytest.raises(poplib.error_proto):  # the stdlib's timestamp regex wants "+OK"
        client.apop("u", "p")
    client.welcome = b"+OK <1.2@x"  # no closing '>'
    with pytest.raises(poplib.error_proto):
        client.apop("u", "p")
    client.welcome = b"+OK hello <not an RFC 1939 stamp>"
    assert client.apop("u", "p") == b"+ ok"
    client.close()


# -- the multi-line decoder against the standard library's, at every split ---------------------

TRICKY = [
    b".\r\n",
    b"one\r\n.\r\n",
    b"..dot\r\n...two\r\n.x\r\n\r\n.\r\n",
    b"\rcr first\r\nmid\rcr\r\n\r.\r\n.\r\n",
    b"bare\nlf\r\n.\n",
    b"mixed\r\n..\nstuffed\r\n.\r\n",
    b"cr-dot\r\n\r.\n",
    b"a\r\n.\r\n+OK next reply\r\n",
    b"x" * 70000 + b"\r\n..y\r\n.\r\n",
]


class FakeSocket:
    def __init__(self, chunks):
        self.chunks = list(chunks)

    def recv(self, size):
        return self.chunks.pop(0) if self.chunks else b""


def stdlib_decode(data: bytes):
    client = stdlib_poplib.POP3.__new__(stdlib_poplib.POP3)
    client.file = io.BufferedReader(io.BytesIO(b"+OK\r\n" + data))
    client._debugging = 0
    try:
        return client._getlongresp(), client.file.read()
    except stdlib_poplib.error_proto as e:
        return ("error", e.args[0]), b""


def popwire_decode(chunks, maxline=None):
    client = popwire_poplib.POP3.__new__(popwire_poplib.POP3)
    client.file = popwire_poplib._Reader(FakeSocket([b"+OK\r\n"] + chunks))
    client._debugging = 0
    try:
        resp = client._getlongresp()
    except popwire_poplib.error_proto as e:
        return ("error", e.args[0]), b""
    rest = b""
    while True:
        line = client.file.readline()
        if not line:
            return resp, rest
        rest += line


@pytest.mark.parametrize("data", TRICKY, ids=range(len(TRICKY)))
def test_multiline_decoding_matches_the_stdlib_at_every_split(data, monkeypatch):
    if len(data) > 1000:
        monkeypatch.setattr(stdlib_poplib, "_MAXLINE", 1 << 20)
        splits = [1, 69999, 70000, 70001, 70002, 70003, len(data) - 3]
    else:
        splits = range(1, len(data))
    expected = stdlib_decode(data)
    assert popwire_decode([data]) == expected
    for at in splits:
        assert popwire_decode([data[:at], data[at:]]) == expected, at
    assert popwire_decode([data[i : i + 1] for i in range(min(len(data), 2000))] + [data[2000:]]) == expected


class EndlessSocket(FakeSocket):
    def recv(self, size):
        if not self.chunks:
            raise AssertionError("read past the reply")
        return self.chunks.pop(0)


@pytest.mark.parametrize("data", [d for d in TRICKY if b"\r\n.\r\n" in d or d == b".\r\n"][:4])
def test_crlf_replies_end_at_their_dot_line(data):
    """A live socket never says EOF: the whole-buffer path must stop at the "." line itself."""
    for at in range(1, len(data)):
        client = popwire_poplib.POP3.__new__(popwire_poplib.POP3)
        client.file = popwire_poplib._Reader(EndlessSocket([b"+OK\r\n", data[:at], data[at:]]))
        client._debugging = 0
        assert client._getlongresp() == stdlib_decode(data)[0]


def test_multiline_line_limit_and_eof():
    long = b"y" * (popwire_poplib._MAXDATALINE + 1)
    assert popwire_decode([long + b"\r\n.\r\n"])[0] == ("error", "line too long")
    assert popwire_decode([b"a\r\nb\r\n"])[0] == ("error", "-ERR EOF")
    assert popwire_decode([b"+" * 9000 + b"\r\n.\r\n"])[0][1][0] == b"+" * 9000  # data lines > _MAXLINE


# -- the deliberate differences -----------------------------------------------------------------


def test_differences_from_the_standard_library(server):
    assert popwire_poplib._MAXLINE > stdlib_poplib._MAXLINE
    client = popwire_poplib.POP3(server.host, server.port, timeout=3)
    assert client.rset() == b"+OK " + b"r" * 4000  # a status line over the stdlib's 2048
    with pytest.raises(stdlib_poplib.error_proto) as e:  # either module's except clause works
        client.dele(99)
    assert isinstance(e.value, popwire.Error)
    client.quit()

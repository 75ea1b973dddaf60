"""A drop-in for the standard library's :mod:`poplib`, on popwire's engine.

Change ``import poplib`` to ``from popwire import poplib``: the names (``POP3``, ``POP3_SSL``,
``error_proto``, ``POP3_PORT``, ``POP3_SSL_PORT``), the methods and their return shapes are the
standard library's — response lines as ``bytes`` (``b'+OK ...'``), ``(resp, [lines], octets)``
for multi-line replies, ``error_proto`` on ``-ERR``, the socket's own ``TimeoutError``.

The differences, each on purpose:

- No 2048-byte line limit: message lines may be up to 4 MiB, status and listing lines 64 KiB.
- Commands are checked against RFC 1939's session states before anything is sent (``NOOP``
  before login raises ``error_proto``, as a conforming server's ``-ERR`` would), and the
  greeting must be ``+OK``.
- ``apop()`` needs an RFC 1939 timestamp (``<...@...>``) in the greeting; ``utf8()`` needs the
  server to advertise ``UTF8`` in ``CAPA`` (it asks with ``CAPA`` first when needed).
- Certificates are verified by default (``ssl.create_default_context()``); the standard library
  does not verify. Pass your own ``context`` to choose otherwise.
- Every response line is the server's own ``+OK`` line, as the stdlib returns it.
- ``rpop()`` raises ``error_proto``: RPOP (RFC 1081) is obsolete and the engine does not send it.
- ``error_proto`` is also a subclass of the standard library's ``poplib.error_proto`` and of
  :class:`popwire.Error`, so existing ``except`` clauses of either kind keep working.
"""

import poplib as _stdlib_poplib
import re
import socket
import ssl
import sys
from typing import Any, Dict, List, Optional, Tuple, Union

from ._errors import Error as _Error
from ._popwire import Body, Completed, Engine, Greeting

__all__ = ["POP3", "POP3_SSL", "error_proto", "POP3_PORT", "POP3_SSL_PORT"]

POP3_PORT = 110
POP3_SSL_PORT = 995
HAVE_SSL = True

CR = b"\r"
LF = b"\n"
CRLF = CR + LF

_READ_SIZE = 64 * 1024
# Status and listing lines: poplib allowed 2048 octets, RFC 2449 says 512; be generous but bounded.
_STATUS_LIMIT = 64 * 1024


class error_proto(_stdlib_poplib.error_proto, _Error):  # noqa: N801 - the stdlib's name
    """A ``-ERR`` reply or a protocol failure. ``args[0]`` is the response line, as in poplib."""


def _arg(which: Any) -> int:
    """A message number from what poplib accepts (int, or its text)."""
    try:
        if isinstance(which, bytes):
            which = which.decode("ascii")
        number = int(which)
    except (TypeError, ValueError, UnicodeDecodeError):
        raise error_proto(f"-ERR invalid message number: {which!r}") from None
    if not 0 < number < 2**32:
        raise error_proto(f"-ERR invalid message number: {which!r}")
    return number


def _status(text: Optional[str]) -> bytes:
    return b"+OK " + text.encode("utf-8", "surrogateescape") if text else b"+OK"


def _lines(body: bytes) -> Tuple[List[bytes], int]:
    """poplib's shape of a multi-line body: lines without their line ends, and the octets."""
    if not body:
        return [], 0
    parts = body.split(LF)
    if parts[-1] == b"":
        parts.pop()
    return [p[:-1] if p.endswith(CR) else p for p in parts], len(body)


def _to_proto(exc: _Error) -> error_proto:
    """poplib's exception for a popwire error: the ``-ERR`` line for a refusal."""
    if exc.kind == "server:refused" and exc.text is not None:
        code = f"[{exc.code}] " if exc.code else ""
        line = f"-ERR {code}{exc.text}".rstrip().encode("utf-8", "surrogateescape")
        new = error_proto(line)
    elif exc.kind == "protocol:unexpected-eof":
        new = error_proto("-ERR EOF")
    else:
        new = error_proto(str(exc))
    for name in ("kind", "code", "text", "command", "temporary"):
        setattr(new, name, getattr(exc, name))
    return new


class POP3:
    """A POP3 client over plain TCP (port 110), with the standard library's interface."""

    encoding = "UTF-8"
    timestamp = re.compile(rb"\+OK.[^<]*(<.*>)")

    def __init__(self, host: str, port: int = POP3_PORT, timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT) -> None:  # type: ignore[attr-defined]
        self.host = host
        self.port = port
        self._tls_established = False
        sys.audit("poplib.connect", self, host, port)
        self.sock = self._create_socket(timeout)
        self.file = None
        self._debugging = 0
        self._engine = self._new_engine()
        self.welcome = self._read_greeting()

    # -- plumbing -----------------------------------------------------------------------------

    def _new_engine(self) -> Engine:
        return Engine("none", negotiate=False, allow_cleartext=True, pipelining=False, status_line_limit=_STATUS_LIMIT)

    def _create_socket(self, timeout: Any) -> socket.socket:
        if timeout is not None and not timeout:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        return socket.create_connection((self.host, self.port), timeout)

    def _transmit(self) -> None:
        data = self._engine.data_to_send()
        if data:
            if self.sock is None:
                raise error_proto("-ERR connection closed")
            if self._debugging > 1:
                print("*put*", repr(data if not data.startswith((b"PASS ", b"APOP ")) else data[:5] + b"****"))
            sys.audit("poplib.putline", self, data)
            self.sock.sendall(data)

    def _feed(self) -> None:
        if self.sock is None:
            raise error_proto("-ERR connection closed")
        data = self.sock.recv(_READ_SIZE)
        try:
            if data:
                self._engine.receive_data(data)
            else:
                self._engine.receive_eof()
        except _Error as exc:
            raise _to_proto(exc) from exc

    def _next_event(self) -> Any:
        try:
            return self._engine.next_event()
        except _Error as exc:
            raise _to_proto(exc) from exc

    def _read_greeting(self) -> bytes:
        while True:
            event = self._next_event()
            if isinstance(event, Greeting):
                welcome = _status(event.text)
                if self._debugging:
                    print("*welcome*", repr(welcome))
                return welcome
            if event is None:
                self._feed()

    def _issue(self, command: Any, *args: Any) -> int:
        try:
            return command(*args)  # type: ignore[no-any-return]
        except _Error as exc:
            raise _to_proto(exc) from exc

    def _run(self, cid: int, body: Optional[List[bytes]] = None) -> Completed:
        """Sends what is due and reads until command ``cid`` completes; ``-ERR`` raises."""
        while True:
            self._transmit()
            event = self._next_event()
            while event is not None:
                if isinstance(event, Body):
                    if body is not None and event.id == cid:
                        body.append(event.data)
                elif isinstance(event, Completed) and event.id == cid:
                    if event.error is not None:
                        raise _to_proto(event.error)
                    return event
                event = self._next_event()
            self._transmit()
            self._feed()

    def _short(self, label: str, command: Any, *args: Any) -> Completed:
        if self._debugging:
            print("*cmd*", repr(label))
        done = self._run(self._issue(command, *args))
        return done

    def _resp(self, resp: bytes) -> bytes:
        if self._debugging:
            print("*resp*", repr(resp))
        return resp

    def _long_body(self, label: str, command: Any, *args: Any) -> Tuple[bytes, List[bytes], int]:
        if self._debugging:
            print("*cmd*", repr(label))
        parts: List[bytes] = []
        done = self._run(self._issue(command, *args), parts)
        lines, octets = _lines(b"".join(parts))
        return self._resp(_status(done.text)), lines, octets

    # -- the poplib interface -----------------------------------------------------------------

    def getwelcome(self) -> bytes:
        return self.welcome

    def set_debuglevel(self, level: int) -> None:
        self._debugging = level

    def user(self, user: str) -> bytes:
        """Send user name, return response."""
        done = self._short(f"USER {user}", self._engine.user, user)
        return self._resp(_status(done.value))

    def pass_(self, pswd: str) -> bytes:
        """Send password, return response."""
        return self._resp(_status(self._short("PASS ****", self._engine.pass_, pswd).text))

    def stat(self) -> Tuple[int, int]:
        """Get mailbox status: ``(message count, mailbox size)``."""
        done = self._short("STAT", self._engine.stat)
        count, size = done.value
        return count, size

    def list(self, which: Any = None) -> Union[bytes, Tuple[bytes, List[bytes], int]]:
        """``LIST``: ``(resp, [b'num size', ...], octets)``; with ``which``, the response line."""
        if which is not None:
            num = _arg(which)
            return self._resp(_status(self._short(f"LIST {num}", self._engine.list, num).text))
        done = self._short("LIST", self._engine.list)
        lines = [b"%d %d" % (n, size) for n, size in done.value]
        return self._resp(_status(done.text)), lines, sum(len(line) + 2 for line in lines)

    def retr(self, which: Any) -> Tuple[bytes, List[bytes], int]:
        """``RETR``: ``(resp, lines, octets)``."""
        num = _arg(which)
        return self._long_body(f"RETR {num}", self._engine.retr, num)

    def dele(self, which: Any) -> bytes:
        """``DELE``: the server deletes the message at QUIT."""
        num = _arg(which)
        return self._resp(_status(self._short(f"DELE {num}", self._engine.dele, num).value))

    def noop(self) -> bytes:
        return self._resp(_status(self._short("NOOP", self._engine.noop).value))

    def rset(self) -> bytes:
        """Unmark all messages marked for deletion."""
        return self._resp(_status(self._short("RSET", self._engine.rset).value))

    def quit(self) -> bytes:
        """Signoff: commit changes on server, unlock mailbox, close connection."""
        done = self._short("QUIT", self._engine.quit)
        resp = self._resp(_status(done.value))
        self.close()
        return resp

    def close(self) -> None:
        """Close the connection without assuming anything about it."""
        try:
            file = self.file
            self.file = None
            if file is not None:
                file.close()
        finally:
            sock = self.sock
            self.sock = None  # type: ignore[assignment]
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError as exc:
                    import errno

                    # The server may already have closed the connection.
                    if exc.errno != errno.ENOTCONN and getattr(exc, "winerror", 0) != 10022:
                        raise
                finally:
                    sock.close()

    def rpop(self, user: str) -> bytes:
        """RPOP (RFC 1081) is obsolete; popwire's engine does not send it."""
        raise error_proto("-ERR RPOP is not supported (obsolete, RFC 1081)")

    def apop(self, user: str, password: str) -> bytes:
        """Authorisation with APOP (MD5 of the greeting's timestamp and the password)."""
        if not self.timestamp.match(self.welcome):
            raise error_proto("-ERR APOP not supported by server")
        return self._resp(_status(self._short(f"APOP {user} ****", self._engine.apop, user, password).text))

    def top(self, which: Any, howmuch: int) -> Tuple[bytes, List[bytes], int]:
        """``TOP``: the headers and ``howmuch`` lines of the body, as ``(resp, lines, octets)``."""
        num = _arg(which)
        return self._long_body(f"TOP {num} {howmuch}", self._engine.top, num, int(howmuch))

    def uidl(self, which: Any = None) -> Union[bytes, Tuple[bytes, List[bytes], int]]:
        """``UIDL``: ``(resp, [b'num uid', ...], octets)``; with ``which``, the response line."""
        if which is not None:
            num = _arg(which)
            return self._resp(_status(self._short(f"UIDL {num}", self._engine.uidl, num).text))
        done = self._short("UIDL", self._engine.uidl)
        lines = [b"%d %s" % (n, uid.encode("ascii", "surrogateescape")) for n, uid in done.value]
        return self._resp(_status(done.text)), lines, sum(len(line) + 2 for line in lines)

    def utf8(self) -> bytes:
        """Try to enter UTF-8 mode (RFC 6856)."""
        if "UTF8" not in self._engine.capabilities:
            # The engine sends UTF8 only to a server that advertised it; learn that first.
            try:
                self.capa()
            except error_proto:
                pass
        if "UTF8" not in self._engine.capabilities:
            raise error_proto("-ERR UTF8 not supported by server")
        return self._resp(_status(self._short("UTF8", self._engine.utf8).value))

    def capa(self) -> Dict[str, List[str]]:
        """``CAPA``: ``{name: [args]}``; ``error_proto`` if the server has no CAPA."""
        try:
            caps = self._short("CAPA", self._engine.capa).value
        except error_proto:
            raise error_proto("-ERR CAPA not supported by server") from None
        return dict(caps)

    def stls(self, context: Optional[ssl.SSLContext] = None) -> bytes:
        """Start a TLS session on the active connection (RFC 2595)."""
        if self._tls_established:
            raise error_proto("-ERR TLS session already established")
        caps = self.capa()
        if "STLS" not in caps:
            raise error_proto("-ERR STLS not supported by server")
        if context is None:
            context = ssl.create_default_context()
        resp = _status(self._short("STLS", self._engine.stls).text)
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
        try:
            self._engine.tls_established()
        except _Error as exc:
            raise _to_proto(exc) from exc
        self._tls_established = True
        return self._resp(resp)


class POP3_SSL(POP3):  # noqa: N801 - the stdlib's name
    """POP3 over implicit TLS (port 995). ``keyfile``/``certfile`` are accepted for old callers."""

    def __init__(
        self,
        host: str,
        port: int = POP3_SSL_PORT,
        keyfile: Optional[str] = None,
        certfile: Optional[str] = None,
        timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
        context: Optional[ssl.SSLContext] = None,
    ) -> None:
        if context is not None and keyfile is not None:
            raise ValueError("context and keyfile arguments are mutually exclusive")
        if context is not None and certfile is not None:
            raise ValueError("context and certfile arguments are mutually exclusive")
        self.keyfile = keyfile
        self.certfile = certfile
        if context is None:
            context = ssl.create_default_context()
            if certfile is not None:
                context.load_cert_chain(certfile, keyfile)
        self.context = context
        super().__init__(host, port, timeout)

    def _new_engine(self) -> Engine:
        return Engine("tls", negotiate=False, allow_cleartext=True, pipelining=False, status_line_limit=_STATUS_LIMIT)

    def _create_socket(self, timeout: Any) -> socket.socket:
        sock = super()._create_socket(timeout)
        return self.context.wrap_socket(sock, server_hostname=self.host)

    def stls(self, context: Optional[ssl.SSLContext] = None) -> bytes:
        """The session is already TLS."""
        raise error_proto("-ERR TLS session already established")

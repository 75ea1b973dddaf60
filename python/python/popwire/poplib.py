"""A drop-in for the standard library's :mod:`poplib`.

Change ``import poplib`` to ``from popwire import poplib`` (or put this module in
``sys.modules['poplib']``) and nothing else: the names, methods, private helpers (``_shortcmd``,
``_longcmd``, ``_putcmd``, ``_putline``, ``_getline``, ``_getresp``, ``_getlongresp``), return
shapes, exceptions and wire conversation are the standard library's. CPython's own
``Lib/test/test_poplib.py`` passes against it on 3.8 to 3.13 (``tests/run_cpython_test_poplib.py``).
Like the standard library, it sends every command the caller asks for, in any session state,
and accepts any reply starting with ``+``.

What it does better:

- No 2048-byte line limit on messages: a line of a multi-line reply may be up to
  ``_MAXDATALINE`` = 4 MiB (the engine's data-line cap); a response line up to ``_MAXLINE`` =
  8 KiB (RFC 2449 allows 512). Scripts that raise ``poplib._MAXLINE`` can set this module's the
  same way: data lines may always be as long as ``_MAXLINE``.
- Speed: replies are read in large chunks, and a multi-line reply (``RETR``, ``TOP``, ``LIST``,
  ``UIDL``, ``CAPA``) is found, split and dot-unstuffed with whole-buffer operations instead of a
  Python loop per line. Bodies that are not plain CRLF text take the standard library's
  line-by-line path, so every reply decodes exactly as ``poplib`` decodes it.
- Debug output (``set_debuglevel``) masks the ``PASS`` password and the ``APOP`` digest.
- ``error_proto`` is also a subclass of the standard library's ``poplib.error_proto`` and of
  :class:`popwire.Error`, so ``except`` clauses of either kind keep working.

Certificates: as in the standard library, ``POP3_SSL`` and ``stls()`` without a ``context`` do
**not** verify the server's certificate. Set the one switch::

    from popwire import poplib
    poplib.verify_certificates = True     # every later POP3_SSL() and stls() without a context

and they use ``ssl.create_default_context()`` (system roots, or ``SSL_CERT_FILE``; hostname
checked). An explicit ``context`` is always used as given.

:class:`popwire.Client` is the safe client: it verifies certificates unless told otherwise, checks
commands against the session state, never sends a password in cleartext unless allowed, never
chooses APOP, and treats bytes injected after ``STLS`` as an attack.
"""

import errno
import poplib as _stdlib_poplib
import re
import socket
import sys
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ._errors import Error as _Error

try:
    import ssl

    HAVE_SSL = True
except ImportError:  # pragma: no cover - CPython without ssl
    HAVE_SSL = False

__all__ = ["POP3", "error_proto"]

POP3_PORT = 110
POP3_SSL_PORT = 995

CR = b"\r"
LF = b"\n"
CRLF = CR + LF

# The longest response line, line end included (the stdlib's 2048 bounds every line). Kept
# within one TLS record: test_poplib's asyncore TLS server fails on larger echoes.
_MAXLINE = 8 * 1024
# The longest line of a multi-line reply (the engine's data-line cap). Both are read at each call.
_MAXDATALINE = 4 * 1024 * 1024

# The one switch: verify certificates in POP3_SSL() and stls() when no context is given.
verify_certificates = False

_READ_SIZE = 64 * 1024
_TERMINATOR = b"\r\n.\r\n"

_LongResp = Tuple[bytes, List[bytes], int]


class error_proto(_stdlib_poplib.error_proto, _Error):  # noqa: N801 - the stdlib's name
    """A ``-ERR`` reply or a protocol failure. ``args[0]`` is the response line, as in poplib."""


def _default_context(certfile: Optional[str] = None, keyfile: Optional[str] = None) -> "ssl.SSLContext":
    """The context ``POP3_SSL``/``stls()`` use when given none: the stdlib's unless switched."""
    if verify_certificates:
        context = ssl.create_default_context()
        if certfile is not None:
            context.load_cert_chain(certfile, keyfile)
        return context
    unverified: ssl.SSLContext = ssl._create_stdlib_context(certfile=certfile, keyfile=keyfile)  # type: ignore[attr-defined]
    return unverified


class _Reader:
    """The socket's input, buffered: ``readline`` as ``sock.makefile('rb')`` gives it, plus
    :meth:`read_dot_body`, which takes a whole multi-line reply at once."""

    __slots__ = ("_sock", "_buf", "_pos")

    def __init__(self, sock: socket.socket) -> None:
        self._sock: Optional[socket.socket] = sock
        self._buf = b""
        self._pos = 0

    def close(self) -> None:
        self._sock = None
        self._buf = b""
        self._pos = 0

    def _recv(self) -> bytes:
        if self._sock is None:
            raise ValueError("I/O operation on closed file.")
        return self._sock.recv(_READ_SIZE)

    def readline(self, limit: int = -1) -> bytes:
        """Up to and including the next LF, at most ``limit`` bytes; short only at EOF."""
        buf, pos = self._buf, self._pos
        end = buf.find(LF, pos)
        if end >= 0 and (limit < 0 or end - pos < limit):
            self._pos = end + 1
            return buf[pos : end + 1]
        if limit < 0:
            limit = sys.maxsize
        parts: List[bytes] = []
        size = 0
        while True:
            buf, pos = self._buf, self._pos
            end = buf.find(LF, pos)
            stop = len(buf) if end < 0 else end + 1
            if size + stop - pos >= limit:
                stop = pos + limit - size
                end = stop  # the line is cut at the limit: done
            parts.append(buf[pos:stop])
            size += stop - pos
            self._pos = stop
            if end >= 0:
                return b"".join(parts)
            data = self._recv()
            if not data:
                return b"".join(parts)
            self._buf, self._pos = data, 0

    def read_dot_body(self, limit: int) -> Optional[Tuple[List[bytes], int]]:
        """A multi-line reply's lines (dot-unstuffed, line ends removed) and octets, read up to
        and including its ``.`` line, when every line ends in CRLF and none exceeds ``limit``.
        Otherwise ``None``, with nothing consumed: the caller reads line by line instead."""
        buf, pos = self._buf, self._pos
        parts = [buf[pos:]] if pos < len(buf) else []
        scanned = 0  # stream bytes before parts[i]
        tail = CRLF  # the 4 stream bytes before parts[i]; a virtual line end before the body
        end: Optional[int] = None  # stream offset of the terminator's CRLF (-2: an empty body)
        i = 0
        try:
            while end is None:
                if i == len(parts):
                    data = self._recv()
                    if not data:
                        break
                    parts.append(data)
                chunk = parts[i]
                lfs = chunk.count(LF)
                if lfs:
                    crlfs = chunk.count(CRLF) + (chunk[:1] == LF and tail[-1:] == CR)
                    if lfs != crlfs:
                        break  # a bare LF: the stdlib's line rules apply
                    seam = (tail + chunk[:4]).find(_TERMINATOR)
                    if seam >= 0:
                        end = scanned - len(tail) + seam
                    else:
                        inner = chunk.find(_TERMINATOR)
                        if inner >= 0:
                            end = scanned + inner
                scanned += len(chunk)
                tail = chunk[-4:] if len(chunk) >= 4 else (tail + chunk)[-4:]
                i += 1
        except BaseException:
            self._buf, self._pos = b"".join(parts), 0
            raise
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if end is None:
            self._buf, self._pos = data, 0
            return None
        # The body and its ".\r\n": "a\r\nb\r\n.\r\n".split(CRLF) is [a, b, ".", ""].
        reply = data if end + 5 == len(data) else data[: end + 5]
        octets = end + 2
        if octets > limit:  # a line may be too long: measure lines as sent, before unstuffing
            lines = reply.split(CRLF)
            if max(map(len, lines)) + 2 > limit:
                self._buf, self._pos = data, 0
                return None
        stuffed = reply.count(b"\r\n..") + (reply[:2] == b"..")
        if stuffed:
            # One dot off each line that starts with two: "\r\n..." becomes "\r\n.." once.
            octets -= stuffed
            reply = reply.replace(b"\r\n..", b"\r\n.")
            if reply[:2] == b"..":
                reply = reply[1:]
        lines = reply.split(CRLF)
        del lines[-2:]
        self._buf, self._pos = data[end + 5 :], 0
        return lines, octets


def _masked(line: Any) -> Any:
    """A command line for debug output, without the password or APOP digest in it."""
    text = line.decode("latin-1") if isinstance(line, (bytes, bytearray)) else str(line)
    word = text[:5].upper()
    if word == "PASS ":
        masked = text[:5] + "****"
    elif word == "APOP ":
        masked = text.rsplit(" ", 1)[0] + " ****"
    else:
        return line
    return masked.encode("latin-1") if isinstance(line, (bytes, bytearray)) else masked


class POP3:
    """A POP3 client over plain TCP (port 110), with the standard library's interface.

    Arguments can be strings or integers where appropriate (``retr(1)`` and ``retr('1')``).
    Raises one exception: ``error_proto``.
    """

    encoding = "UTF-8"
    timestamp = re.compile(rb"\+OK.[^<]*(<.*>)")

    def __init__(self, host: str, port: int = POP3_PORT, timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT) -> None:  # type: ignore[attr-defined]
        self.host = host
        self.port = port
        self._tls_established = False
        sys.audit("poplib.connect", self, host, port)
        self.sock = self._create_socket(timeout)
        self.file: Any = _Reader(self.sock)
        self._debugging = 0
        self.welcome = self._getresp()

    def _create_socket(self, timeout: Any) -> socket.socket:
        if timeout is not None and not timeout:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        return socket.create_connection((self.host, self.port), timeout)

    def _putline(self, line: bytes) -> None:
        if self._debugging > 1:
            print("*put*", repr(_masked(line)))
        sys.audit("poplib.putline", self, line)
        self.sock.sendall(line + CRLF)

    def _putcmd(self, line: str) -> None:
        """Send one command (through ``_putline``)."""
        if self._debugging:
            print("*cmd*", repr(_masked(line)))
        self._putline(bytes(line, self.encoding))

    def _getline(self) -> Tuple[bytes, int]:
        """One line without its line end, and its octets; ``error_proto`` at EOF."""
        return self._readline(_MAXLINE)

    def _readline(self, limit: int) -> Tuple[bytes, int]:
        line = self.file.readline(limit + 1)
        if len(line) > limit:
            raise error_proto("line too long")
        if self._debugging > 1:
            print("*get*", repr(line))
        if not line:
            raise error_proto("-ERR EOF")
        octets = len(line)
        # readline() ends lines at LF, so: ...CRLF, ...LF, or CR...LF.
        if line[-2:] == CRLF:
            return line[:-2], octets
        if line[:1] == CR:
            return line[1:-1], octets
        return line[:-1], octets

    def _getresp(self) -> bytes:
        """A response line; ``error_proto`` unless it starts with ``+``."""
        resp, _ = self._getline()
        if self._debugging > 1:
            print("*resp*", repr(resp))
        if not resp.startswith(b"+"):
            raise error_proto(resp)
        return resp

    def _getlongresp(self) -> _LongResp:
        """A response line, then the lines up to ``.``: ``(resp, lines, octets)``."""
        resp = self._getresp()
        # The whole-buffer path gives what the loop below gives; it is skipped when a subclass
        # reads lines its own way or debug output wants every line.
        own = type(self)._getline is POP3._getline
        limit = max(_MAXLINE, _MAXDATALINE)
        if own and self._debugging <= 1 and isinstance(self.file, _Reader):
            body = self.file.read_dot_body(limit)
            if body is not None:
                return resp, body[0], body[1]
        getline: Callable[[], Tuple[bytes, int]] = (lambda: self._readline(limit)) if own else self._getline
        lines = []
        octets = 0
        line, o = getline()
        while line != b".":
            if line.startswith(b".."):
                o = o - 1
                line = line[1:]
            octets = octets + o
            lines.append(line)
            line, o = getline()
        return resp, lines, octets

    def _shortcmd(self, line: str) -> bytes:
        self._putcmd(line)
        return self._getresp()

    def _longcmd(self, line: str) -> _LongResp:
        self._putcmd(line)
        return self._getlongresp()

    # -- the poplib interface -----------------------------------------------------------------

    def getwelcome(self) -> bytes:
        return self.welcome

    def set_debuglevel(self, level: int) -> None:
        self._debugging = level

    def user(self, user: str) -> bytes:
        """Send user name, return response (should indicate password required)."""
        return self._shortcmd("USER %s" % user)

    def pass_(self, pswd: str) -> bytes:
        """Send password, return response (message count, mailbox size)."""
        return self._shortcmd("PASS %s" % pswd)

    def stat(self) -> Tuple[int, int]:
        """Get mailbox status: ``(message count, mailbox size)``."""
        retval = self._shortcmd("STAT")
        rets = retval.split()
        if self._debugging:
            print("*stat*", repr(rets))
        return int(rets[1]), int(rets[2])

    def list(self, which: Any = None) -> Union[bytes, _LongResp]:
        """``LIST``: ``(resp, [b'num size', ...], octets)``; with ``which``, the response line."""
        if which is not None:
            return self._shortcmd("LIST %s" % which)
        return self._longcmd("LIST")

    def retr(self, which: Any) -> _LongResp:
        """Retrieve message ``which``: ``(resp, lines, octets)``."""
        return self._longcmd("RETR %s" % which)

    def dele(self, which: Any) -> bytes:
        """Mark message ``which`` for deletion (done at QUIT)."""
        return self._shortcmd("DELE %s" % which)

    def noop(self) -> bytes:
        """Does nothing; the response shows the server is alive."""
        return self._shortcmd("NOOP")

    def rset(self) -> bytes:
        """Unmark all messages marked for deletion."""
        return self._shortcmd("RSET")

    def quit(self) -> bytes:
        """Signoff: commit changes on server, unlock mailbox, close connection."""
        resp = self._shortcmd("QUIT")
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
                    # The server may have closed already (on Windows: WSAEINVAL, 10022).
                    if exc.errno != errno.ENOTCONN and getattr(exc, "winerror", 0) != 10022:
                        raise
                finally:
                    sock.close()

    def rpop(self, user: str) -> bytes:
        """RPOP (RFC 1081)."""
        return self._shortcmd("RPOP %s" % user)

    def apop(self, user: str, password: str) -> bytes:
        """Log in with APOP: only if the greeting has a timestamp. APOP is MD5-based and broken;
        prefer ``user``/``pass_`` over TLS."""
        secret = bytes(password, self.encoding)
        m = self.timestamp.match(self.welcome)
        if not m:
            raise error_proto("-ERR APOP not supported by server")
        import hashlib

        digest = hashlib.md5(m.group(1) + secret).hexdigest()
        return self._shortcmd("APOP %s %s" % (user, digest))

    def top(self, which: Any, howmuch: Any) -> _LongResp:
        """The headers and ``howmuch`` body lines of message ``which``: ``(resp, lines, octets)``."""
        return self._longcmd("TOP %s %s" % (which, howmuch))

    def uidl(self, which: Any = None) -> Union[bytes, _LongResp]:
        """``UIDL``: ``(resp, [b'num uid', ...], octets)``; with ``which``, the response line."""
        if which is not None:
            return self._shortcmd("UIDL %s" % which)
        return self._longcmd("UIDL")

    def utf8(self) -> bytes:
        """Try to enter UTF-8 mode (RFC 6856). Returns the server's response."""
        return self._shortcmd("UTF8")

    def capa(self) -> Dict[str, List[str]]:
        """``CAPA`` (RFC 2449) as ``{name: [args]}``; ``error_proto`` if the server has none."""

        def _parsecap(line: bytes) -> Tuple[str, List[str]]:
            lst = line.decode("ascii").split()
            return lst[0], lst[1:]

        caps = {}
        try:
            resp = self._longcmd("CAPA")
            for capline in resp[1]:
                capnm, capargs = _parsecap(capline)
                caps[capnm] = capargs
        except error_proto:
            raise error_proto("-ERR CAPA not supported by server") from None
        return caps

    def stls(self, context: "Optional[ssl.SSLContext]" = None) -> bytes:
        """Start TLS on the connection (RFC 2595). Without ``context``, the certificate is not
        verified (as in the standard library) unless ``verify_certificates`` is set."""
        if not HAVE_SSL:
            raise error_proto("-ERR TLS support missing")
        if self._tls_established:
            raise error_proto("-ERR TLS session already established")
        caps = self.capa()
        if "STLS" not in caps:
            raise error_proto("-ERR STLS not supported by server")
        if context is None:
            context = _default_context()
        resp = self._shortcmd("STLS")
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
        self.file = _Reader(self.sock)
        self._tls_established = True
        return resp


if HAVE_SSL:

    class POP3_SSL(POP3):  # noqa: N801 - the stdlib's name
        """POP3 over implicit TLS (port 995): ``POP3_SSL(host, port=995, *, timeout, context)``.

        Without ``context`` the certificate is not verified (as in the standard library) unless
        ``verify_certificates`` is set. ``keyfile``/``certfile`` (removed in Python 3.12) are
        still accepted, with the ``DeprecationWarning`` Python 3.8-3.11 gave.
        """

        def __init__(
            self,
            host: str,
            port: int = POP3_SSL_PORT,
            keyfile: Optional[str] = None,
            certfile: Optional[str] = None,
            timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
            context: "Optional[ssl.SSLContext]" = None,
        ) -> None:
            if context is not None and keyfile is not None:
                raise ValueError("context and keyfile arguments are mutually exclusive")
            if context is not None and certfile is not None:
                raise ValueError("context and certfile arguments are mutually exclusive")
            if keyfile is not None or certfile is not None:
                warnings.warn("keyfile and certfile are deprecated, use a custom context instead", DeprecationWarning, 2)
            self.keyfile = keyfile
            self.certfile = certfile
            if context is None:
                context = _default_context(certfile, keyfile)
            self.context = context
            POP3.__init__(self, host, port, timeout)

        def _create_socket(self, timeout: Any) -> socket.socket:
            sock = POP3._create_socket(self, timeout)
            return self.context.wrap_socket(sock, server_hostname=self.host)

        def stls(self, context: "Optional[ssl.SSLContext]" = None, *args: Any, **kwargs: Any) -> bytes:
            """STLS makes no sense on a TLS session: always ``error_proto``."""
            raise error_proto("-ERR TLS session already established")

    __all__.append("POP3_SSL")

"""popwire.AsyncClient: asyncio's own transports and ssl driving the sans-IO :class:`Engine`.

Every POP3 decision is the engine's; this module only moves bytes between an asyncio transport
and the engine, and runs the TLS handshake when the engine asks for it (implicit TLS at
connect, or after ``+OK`` to STLS, via ``loop.start_tls``). Engine calls are short and never
wait, so the event loop is never blocked.
"""

import asyncio
import inspect
import os
import socket
import ssl
from collections import deque
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Deque,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

from . import _errors
from ._popwire import Body, Completed, Engine, Ready, TlsReady

__all__ = ["AsyncClient"]

_READ_SIZE = 256 * 1024
_HIGH_WATER = 1024 * 1024

PathLike = Union[str, "os.PathLike[str]"]


class _Stream(asyncio.Protocol):
    """Received bytes with flow control. Knows nothing of POP3; reads only what arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._chunks: Deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._error: Optional[BaseException] = None
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: Optional["asyncio.Future[None]"] = None
        self.transport: Optional[asyncio.Transport] = None

    # -- protocol callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> Optional[bool]:
        self._eof = True
        self._wake()
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._eof = True
        self._error = exc
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- for the client ------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return self._size

    async def read(self) -> bytes:
        """Whatever has arrived (up to about 256 KiB), waiting for at least one byte; b"" at EOF."""
        while not self._chunks and not self._eof:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if not self._chunks:
            if self._error is not None:
                raise self._error
            return b""
        parts = []
        taken = 0
        while self._chunks and taken < _READ_SIZE:
            chunk = self._chunks.popleft()
            parts.append(chunk)
            taken += len(chunk)
        self._size -= taken
        if self._reading_paused and self._size < _HIGH_WATER // 4 and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.transport.write(data)
        if self._writing_paused:
            self._drain_waiter = self._loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None


def _dropped(exc: BaseException) -> bool:
    """A connection that broke mid-session is worth retrying (`temporary`), as the Rust
    adapters decide (tests/vectors/classes/adapter-situations.txt); other I/O errors are not."""
    return isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, EOFError))


def _tls_error(exc: BaseException, host: str) -> _errors.Error:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        return _errors._new(
            _errors.TlsError,
            "tls:certificate",
            f"TLS certificate of {host} rejected: {reason}; check the server name and the CA (ca_file)",
        )
    return _errors._new(_errors.TlsError, "tls:failed", f"TLS with {host} failed: {exc}")


class AsyncClient:
    """An asyncio POP3 client with the methods of :class:`popwire.Client`, as coroutines.

    Connect with ``async with AsyncClient(host) as pop:`` (QUIT on a clean exit, a plain close
    when the block raises, so the server forgets the deletions), or ``await client.connect()``.
    Calls on one client run one at a time; open several clients for parallel sessions.
    """

    def __init__(
        self,
        host: str,
        port: Optional[int] = None,
        *,
        security: str = "tls",
        ca_file: Optional[PathLike] = None,
        timeout: Optional[float] = 60.0,
        allow_cleartext: bool = False,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        security = security.lower()
        if security not in ("tls", "starttls", "none"):
            raise ValueError(f'security must be "tls", "starttls" or "none", not {security!r}')
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.host = host
        self.port = port if port is not None else (995 if security == "tls" else 110)
        self.security = security
        self.timeout = timeout
        self._ca_file = os.fspath(ca_file) if ca_file is not None else None
        self._ssl_context = ssl_context
        self._engine = Engine(security, allow_cleartext=allow_cleartext)
        self._stream: Optional[_Stream] = None
        self._lock = asyncio.Lock()
        self._done: Dict[int, Completed] = {}
        self._ready = False
        self._closed = False

    # -- connection ---------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is not None:
            return self._ssl_context
        context = ssl.create_default_context()
        if self._ca_file is not None:
            try:
                context.load_verify_locations(cafile=self._ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise _errors._new(
                    _errors.ConfigError, "config:ca-file", f"cannot use CA file {self._ca_file}: {exc}"
                ) from exc
        return context

    async def connect(self) -> "AsyncClient":
        """Connects, runs TLS, and negotiates; returns the client, ready to log in."""
        async with self._lock:
            if self._stream is not None:
                return self
            loop = asyncio.get_running_loop()
            context = self._context() if self.security == "tls" else None
            stream = _Stream(loop)
            try:
                await self._timed(
                    loop.create_connection(
                        lambda: stream,
                        self.host,
                        self.port,
                        ssl=context,
                        server_hostname=self.host if context is not None else None,
                    ),
                    "connecting",
                )
            except socket.gaierror as exc:
                raise _errors._new(
                    _errors.NetworkError, "net:resolve", f"cannot resolve {self.host}: {exc}; check the server name"
                ) from exc
            except ssl.SSLError as exc:
                raise _tls_error(exc, self.host) from exc
            except OSError as exc:
                if isinstance(exc, _errors.Error):
                    raise
                raise _errors._new(
                    _errors.NetworkError,
                    "net:connect",
                    f"cannot connect to {self.host} port {self.port}: {exc}; check the server name, port and network",
                ) from exc
            self._stream = stream
            await self._wait(None)
            return self

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            await self.quit()
        else:
            self.close()

    def close(self) -> None:
        """Closes the connection without QUIT: the server forgets the deletions."""
        self._closed = True
        if self._stream is not None and self._stream.transport is not None:
            self._stream.transport.close()

    @property
    def closed(self) -> bool:
        """True once ``quit()`` or ``close()`` ended the session."""
        return self._closed

    @property
    def capabilities(self) -> Dict[str, List[str]]:
        """The capabilities learnt so far (after TLS, when TLS was negotiated)."""
        return self._engine.capabilities

    @property
    def greeting(self) -> Optional[str]:
        """The greeting text (after ``+OK``)."""
        g = self._engine.greeting
        return g.text if g is not None else None

    @property
    def is_tls(self) -> bool:
        """True when the connection is TLS."""
        return self._engine.is_tls

    # -- the loop -----------------------------------------------------------------------------

    async def _timed(self, awaitable: Any, doing: str) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except asyncio.TimeoutError as exc:
            if isinstance(exc, _errors.Error):
                raise
            self.close()
            raise _errors._new(
                _errors.TimeoutError,
                "net:timeout",
                f"timed out {doing}; the server stalled or the network is down, try again later",
            ) from exc

    def _live_stream(self) -> _Stream:
        if self._closed or self._stream is None:
            raise _errors._new(_errors.ConfigError, "usage:closed", "the client is closed (or not connected)")
        return self._stream

    async def _send(self) -> None:
        data = self._engine.data_to_send()
        if data:
            try:
                await self._live_stream().write(data)
            except OSError as exc:
                self.close()
                raise _errors._new(_errors.NetworkError, "net:io", f"connection error while sending a command: {exc}", temporary=_dropped(exc)) from exc

    async def _receive(self) -> None:
        stream = self._live_stream()
        try:
            data = await self._timed(stream.read(), "waiting for the server")
        except ssl.SSLError as exc:
            self.close()
            raise _tls_error(exc, self.host) from exc
        except OSError as exc:
            if isinstance(exc, _errors.Error):
                raise
            self.close()
            raise _errors._new(_errors.NetworkError, "net:io", f"connection error while waiting for the server: {exc}", temporary=_dropped(exc)) from exc
        try:
            if data:
                self._engine.receive_data(data)
            else:
                self._engine.receive_eof()
        except _errors.Error:
            self.close()
            raise

    def _pump(self, bodies: Optional[List[Tuple[int, bytes]]]) -> bool:
        """Handles every event the engine has; True when it asks for the TLS handshake."""
        engine = self._engine
        while True:
            try:
                event = engine.next_event()
            except _errors.Error:
                self.close()
                raise
            if event is None:
                return False
            kind = type(event)
            if kind is Body:
                if bodies is not None:
                    bodies.append((event.id, event.data))
            elif kind is Completed:
                self._done[event.id] = event
                if event.kind == "tls-ready":
                    return True
            elif kind is TlsReady:
                return True
            elif kind is Ready:
                self._ready = True

    async def _start_tls(self) -> None:
        stream = self._live_stream()
        # Bytes buffered now arrived after +OK to STLS and before TLS: hand them to the engine,
        # which rejects them as an injection.
        if stream.buffered:
            await self._receive()
        loop = asyncio.get_running_loop()
        assert stream.transport is not None
        try:
            transport = await self._timed(
                loop.start_tls(stream.transport, stream, self._context(), server_hostname=self.host),
                "negotiating TLS",
            )
        except ssl.SSLError as exc:
            self.close()
            raise _tls_error(exc, self.host) from exc
        except (OSError, ConnectionError) as exc:
            if isinstance(exc, _errors.Error):
                raise
            self.close()
            raise _errors._new(_errors.NetworkError, "net:io", f"connection error while negotiating TLS: {exc}", temporary=_dropped(exc)) from exc
        stream.transport = transport
        self._engine.tls_established()

    async def _step(self, bodies: Optional[List[Tuple[int, bytes]]]) -> None:
        """Sends what is due and handles every event, without reading."""
        while True:
            await self._send()
            if not self._pump(bodies):
                break
            await self._start_tls()
        await self._send()

    async def _wait(self, cid: Optional[int], sink: Optional[Callable[[bytes], Any]] = None) -> Any:
        """Drives the engine until command ``cid`` completes (``None``: until ready)."""
        bodies: List[Tuple[int, bytes]] = []
        while True:
            await self._step(bodies)
            for body_id, data in bodies:
                if body_id == cid and sink is not None:
                    result = sink(data)
                    if inspect.isawaitable(result):
                        await result
            bodies.clear()
            if cid is None:
                if self._ready:
                    self._ready = False
                    return None
            elif cid in self._done:
                done = self._done.pop(cid)
                for stale in [i for i in self._done if i < cid]:
                    del self._done[stale]
                return done.result()
            await self._receive()

    async def _call(self, issue: Callable[[], int], sink: Optional[Callable[[bytes], Any]] = None) -> Any:
        async with self._lock:
            self._live_stream()
            return await self._wait(issue(), sink)

    # -- commands -----------------------------------------------------------------------------

    async def login(self, user: str, password: str) -> None:
        """Logs in with the strongest mechanism the server offers for a password (never APOP)."""
        await self._call(lambda: self._engine.auth("auto", user, password, host=self.host, port=self.port))

    async def auth(
        self, mechanism: str, user: str, password: Optional[str] = None, *, token: Optional[str] = None
    ) -> None:
        """Logs in with a chosen method: "auto", "user", "apop", or a SASL mechanism name."""
        await self._call(
            lambda: self._engine.auth(mechanism, user, password, token=token, host=self.host, port=self.port)
        )

    async def capa(self) -> Dict[str, List[str]]:
        """``CAPA``: ``{NAME: [args]}``."""
        return await self._call(self._engine.capa)  # type: ignore[no-any-return]

    async def stat(self) -> Tuple[int, int]:
        """``STAT``: ``(count, size)``."""
        return await self._call(self._engine.stat)  # type: ignore[no-any-return]

    @overload
    async def list(self) -> List[Tuple[int, int]]: ...
    @overload
    async def list(self, num: int) -> Tuple[int, int]: ...
    async def list(self, num: Optional[int] = None) -> Any:
        """``LIST``: ``[(num, size), ...]``; with ``num``, that message's ``(num, size)``."""
        return await self._call(lambda: self._engine.list(num))

    @overload
    async def uidl(self) -> List[Tuple[int, str]]: ...
    @overload
    async def uidl(self, num: int) -> Tuple[int, str]: ...
    async def uidl(self, num: Optional[int] = None) -> Any:
        """``UIDL``: ``[(num, uid), ...]``; with ``num``, that message's ``(num, uid)``."""
        return await self._call(lambda: self._engine.uidl(num))

    async def retr(self, num: int) -> bytes:
        """``RETR num``: the message, dot-unstuffed, with CRLF line ends."""
        parts: List[bytes] = []
        await self._call(lambda: self._engine.retr(num), parts.append)
        return b"".join(parts)

    async def retr_to(self, num: int, fileobj: Any) -> int:
        """``RETR num`` streamed into ``fileobj.write`` (plain or coroutine); returns the octets."""
        return await self._call(lambda: self._engine.retr(num), fileobj.write)  # type: ignore[no-any-return]

    async def iter_retr(self, num: int) -> AsyncIterator[bytes]:
        """``RETR num`` as an async iterator of ``bytes`` chunks."""
        async with self._lock:
            self._live_stream()
            cid = self._engine.retr(num)
            bodies: List[Tuple[int, bytes]] = []
            while True:
                await self._step(bodies)
                for body_id, data in bodies:
                    if body_id == cid:
                        yield data
                bodies.clear()
                if cid in self._done:
                    self._done.pop(cid).result()
                    return
                await self._receive()

    async def retr_many(self, nums: Sequence[int]) -> AsyncIterator[Tuple[int, bytes]]:
        """Retrieves many messages, pipelined when the server allows: ``(num, bytes)`` in order.
        A message the server refuses raises :class:`ServerError`."""
        async with self._lock:
            self._live_stream()
            pending = deque((self._engine.retr(n), n) for n in nums)
            parts: Dict[int, List[bytes]] = {}
            bodies: List[Tuple[int, bytes]] = []
            while pending:
                await self._step(bodies)
                for body_id, data in bodies:
                    parts.setdefault(body_id, []).append(data)
                bodies.clear()
                while pending and pending[0][0] in self._done:
                    cid, num = pending.popleft()
                    self._done.pop(cid).result()
                    yield num, b"".join(parts.pop(cid, ()))
                if pending:
                    await self._receive()

    async def top(self, num: int, lines: int) -> bytes:
        """``TOP num lines``: the headers and the first ``lines`` lines of the body."""
        parts: List[bytes] = []
        await self._call(lambda: self._engine.top(num, lines), parts.append)
        return b"".join(parts)

    async def dele(self, num: int) -> None:
        """``DELE num``: marks the message; the server deletes it at ``quit()``."""
        await self._call(lambda: self._engine.dele(num))

    async def rset(self) -> None:
        """``RSET``: unmarks every deletion."""
        await self._call(self._engine.rset)

    async def noop(self) -> None:
        """``NOOP``."""
        await self._call(self._engine.noop)

    async def quit(self) -> Optional[str]:
        """``QUIT``: the server commits the deletions; returns its goodbye text."""
        if self._closed or self._stream is None:
            return None
        text = await self._call(self._engine.quit)
        self.close()
        return text  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._stream is not None else "not connected")
        return f"<popwire.AsyncClient {self.host}:{self.port} {state}>"

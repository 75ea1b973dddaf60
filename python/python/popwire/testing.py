"""An in-process POP3 server for tests: the engine's server role on a loopback port.

::

    from popwire.testing import Server

    with Server([b"Subject: one\\r\\n\\r\\nhello\\r\\n"], users={"alice": "secret"}) as server:
        with server.client() as pop:               # a popwire.Client for this server
            pop.login("alice", "secret")
            assert pop.retr(1) == b"Subject: one\\r\\n\\r\\nhello\\r\\n"
            pop.dele(1)
        assert server.deleted == [b"Subject: one\\r\\n\\r\\nhello\\r\\n"]

The server speaks plain TCP (no TLS); USER/PASS and SASL PLAIN are allowed in clear by default,
SCRAM-SHA-256 is offered too, APOP on request. Each connection runs on its own thread, outside
the GIL. Every session shares one maildrop: a QUIT removes the messages it deleted, which
``deleted`` and ``deleted_uids`` then list.

With pytest, ``pytest_plugins = ["popwire.testing"]`` in a ``conftest.py`` adds the
``pop3_server`` fixture: a factory taking this class's arguments, stopping every server at the end
of the test.
"""

from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._aio import AsyncClient
from ._popwire import Client, TestServer

__all__ = ["Server", "pop3_server"]

Message = Union[bytes, bytearray, memoryview, str]


def _as_bytes(message: Message) -> bytes:
    return message.encode("utf-8") if isinstance(message, str) else bytes(message)


class Server:
    """A POP3 server on ``host:port`` serving ``messages`` to ``users`` (name -> password).

    Options: ``apop`` (greet with an APOP timestamp), ``pipelining`` (advertise PIPELINING),
    ``allow_cleartext`` (USER/PASS and PLAIN without TLS), ``mechanisms`` (SASL names to offer,
    e.g. ``["PLAIN", "SCRAM-SHA-256"]``), ``latency`` (seconds to wait before answering each
    batch of commands, to imitate a slow network), ``lock_maildrop`` (a second session gets
    ``-ERR [IN-USE]`` until the first one ends), ``greeting``, ``implementation``,
    ``login_delay`` and ``expire_days`` (capabilities to announce).
    """

    def __init__(
        self,
        messages: Iterable[Message] = (),
        users: Optional[Mapping[str, str]] = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        apop: bool = False,
        pipelining: bool = True,
        allow_cleartext: bool = True,
        mechanisms: Optional[Sequence[str]] = None,
        latency: float = 0.0,
        lock_maildrop: bool = False,
        greeting: Optional[str] = None,
        implementation: Optional[str] = None,
        login_delay: Optional[int] = None,
        expire_days: Optional[int] = None,
        scram_iterations: int = 4096,
    ) -> None:
        self.users = dict(users) if users is not None else {"user": "password"}
        self._server = TestServer(
            [_as_bytes(m) for m in messages],
            list(self.users.items()),
            host=host,
            port=port,
            apop=apop,
            pipelining=pipelining,
            allow_cleartext=allow_cleartext,
            mechanisms=list(mechanisms) if mechanisms is not None else None,
            latency=latency,
            lock_maildrop=lock_maildrop,
            greeting=greeting,
            implementation=implementation,
            login_delay=login_delay,
            expire_days=expire_days,
            scram_iterations=scram_iterations,
        )

    @property
    def host(self) -> str:
        """The address to connect to."""
        return self._server.host  # type: ignore[no-any-return]

    @property
    def port(self) -> int:
        """The port to connect to."""
        return self._server.port  # type: ignore[no-any-return]

    @property
    def address(self) -> Tuple[str, int]:
        """``(host, port)``."""
        return self.host, self.port

    @property
    def messages(self) -> List[bytes]:
        """The messages still in the maildrop, as stored."""
        return self._server.messages  # type: ignore[no-any-return]

    @property
    def uids(self) -> List[str]:
        """Their unique-ids (what UIDL reports)."""
        return self._server.uids  # type: ignore[no-any-return]

    @property
    def deleted(self) -> List[bytes]:
        """Messages removed by a QUIT, in the order they were removed."""
        return [m for _, m in self._server.deleted]

    @property
    def deleted_uids(self) -> List[str]:
        """The unique-ids of ``deleted``."""
        return [u for u, _ in self._server.deleted]

    @property
    def logins(self) -> List[str]:
        """The user of each successful login, in order."""
        return self._server.logins  # type: ignore[no-any-return]

    @property
    def auth_failures(self) -> int:
        """Failed login attempts."""
        return self._server.auth_failures  # type: ignore[no-any-return]

    @property
    def sessions(self) -> int:
        """Connections accepted."""
        return self._server.sessions  # type: ignore[no-any-return]

    def add_message(self, message: Message, uid: Optional[str] = None) -> str:
        """Adds a message (seen by sessions that log in afterwards); returns its unique-id."""
        return self._server.add_message(_as_bytes(message), uid)  # type: ignore[no-any-return]

    def add_user(self, user: str, password: str) -> None:
        """Adds or replaces a user."""
        self.users[user] = password
        self._server.add_user(user, password)

    def client(self, **options: Any) -> Client:
        """A connected :class:`popwire.Client` for this server (plain TCP, cleartext allowed)."""
        options.setdefault("security", "none")
        options.setdefault("allow_cleartext", True)
        return Client(self.host, self.port, **options)

    def async_client(self, **options: Any) -> AsyncClient:
        """An :class:`popwire.AsyncClient` for this server (not yet connected)."""
        options.setdefault("security", "none")
        options.setdefault("allow_cleartext", True)
        return AsyncClient(self.host, self.port, **options)

    def stop(self) -> None:
        """Stops accepting, closes every connection, and waits for the server threads."""
        self._server.stop()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<popwire.testing.Server {self.host}:{self.port}>"


try:
    import pytest as _pytest
except ImportError:  # pragma: no cover - pytest is optional
    _pytest = None

if _pytest is not None:

    @_pytest.fixture
    def pop3_server() -> Iterator[Callable[..., Server]]:
        """A factory for :class:`Server` instances, all stopped when the test ends."""
        servers: List[Server] = []

        def start(messages: Iterable[Message] = (), users: Optional[Mapping[str, str]] = None, **options: Any) -> Server:
            server = Server(messages, users, **options)
            servers.append(server)
            return server

        yield start
        for server in servers:
            server.stop()

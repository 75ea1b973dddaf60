"""popwire: POP3 mail retrieval, with the protocol engine written once in Rust.

- :class:`Client`: a synchronous client (a context manager). Network I/O releases the GIL.
- :class:`AsyncClient`: the same methods as coroutines, for asyncio; never blocks the loop.
- :class:`Engine`: the sans-IO engine itself, for drivers of your own.
- :mod:`popwire.poplib`: a drop-in for the standard library's ``poplib``.
- :mod:`popwire.testing`: an in-process POP3 server for tests.
- :func:`fetch` and :class:`Account`: the mail-client job (download, store, delete).
- :class:`Poller` and :class:`AsyncPoller`: your handler for each new message, deleted from the
  server only after it returned.

Example::

    import popwire

    with popwire.Client("pop.example.com") as pop:      # implicit TLS on port 995
        pop.login("me@example.com", "app-password")
        for num, size in pop.list():
            with open(f"{num}.eml", "wb") as f:
                pop.retr_to(num, f)
"""

from ._errors import (
    AuthError,
    Cancelled,
    ConfigError,
    Error,
    NetworkError,
    ProtocolError,
    ServerError,
    StorageError,
    TimeoutError,
    TlsError,
)
from ._popwire import (
    Body,
    Client,
    Completed,
    Engine,
    Greeting,
    Ready,
    TlsReady,
    __version__,
)
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._aio import AsyncClient
    from ._fetch import Account, AccountResult, FetchProgress, FetchSummary, fetch
    from ._poller import AsyncPoller, HandlerFailure, Message, PollReport, Poller

# AsyncClient (asyncio) and the fetch job load on first use: `import popwire` stays quick.
_LAZY = {
    "AsyncClient": "_aio",
    "Account": "_fetch",
    "AccountResult": "_fetch",
    "FetchProgress": "_fetch",
    "FetchSummary": "_fetch",
    "fetch": "_fetch",
    "AsyncPoller": "_poller",
    "HandlerFailure": "_poller",
    "Message": "_poller",
    "PollReport": "_poller",
    "Poller": "_poller",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'popwire' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "Account",
    "AccountResult",
    "AsyncClient",
    "AsyncPoller",
    "AuthError",
    "Body",
    "Cancelled",
    "Client",
    "Completed",
    "ConfigError",
    "Engine",
    "Error",
    "FetchProgress",
    "FetchSummary",
    "Greeting",
    "HandlerFailure",
    "Message",
    "NetworkError",
    "PollReport",
    "Poller",
    "ProtocolError",
    "Ready",
    "ServerError",
    "StorageError",
    "TimeoutError",
    "TlsError",
    "TlsReady",
    "__version__",
    "fetch",
]

"""popwire's exceptions.

Every exception popwire raises is a :class:`Error`. The core classifies every failure into one
class (``auth``, ``tls``, ``protocol``, ``server``, ``network``, ``timeout``, ``config``,
``storage``, ``cancelled``); each class is one exception here, mechanically:

=============  ======================  ==================================================
class          exception               what to do
=============  ======================  ==================================================
``auth``       :class:`AuthError`      fix the credentials (or suspect an impostor)
``tls``        :class:`TlsError`       check the host name and the CA; never fall back
``protocol``   :class:`ProtocolError`  the server broke POP3: report a server bug
``server``     :class:`ServerError`    ``temporary`` (by ``code``): retry later; else give up
``network``    :class:`NetworkError`   check the network (a dropped connection: retry)
``timeout``    :class:`TimeoutError`   retry later
``config``     :class:`ConfigError`    fix the configuration or the calling code
``storage``    :class:`StorageError`   fix the local side (sink, mail store, journal)
``cancelled``  :class:`Cancelled`      nothing: the caller cancelled
=============  ======================  ==================================================

Each instance carries:

- ``error_class``: the class's stable name above;
- ``kind``: the core's stable ``family:kind`` name, e.g. ``"server:refused"``,
  ``"protocol:injection-after-stls"``, ``"net:timeout"``, ``"tls:certificate"``;
- ``code`` and ``text``: for a server's ``-ERR``, its RFC 2449/3206 response code
  (``"IN-USE"``, ``"AUTH"``, ``"SYS/TEMP"``, ... or ``None``) and its text;
- ``command``: the POP3 command refused, when there is one;
- ``temporary``: true when trying again later may work without any change.

:class:`Cancelled` is not named ``CancelledError`` on purpose: :class:`asyncio.CancelledError`
is a :class:`BaseException` that unwinds a task and must not be swallowed, while popwire's
``cancelled`` is an ordinary outcome (a fetch stopped by its caller, reported in its results)
that ``except popwire.Error`` is meant to catch. Cancelling an asyncio task that runs a popwire
coroutine still raises :class:`asyncio.CancelledError`, untouched.
"""

from __future__ import annotations

import builtins

__all__ = [
    "Error",
    "ServerError",
    "AuthError",
    "TlsError",
    "ProtocolError",
    "ConfigError",
    "TimeoutError",
    "NetworkError",
    "StorageError",
    "Cancelled",
]


class Error(Exception):
    """Base class of every popwire exception."""

    kind: str = "error"
    #: The core's class name (see the module's table); each subclass sets its own.
    error_class: str = "error"
    code: str | None = None
    text: str | None = None
    command: str | None = None
    temporary: bool = False


class ServerError(Error):
    """The server refused a command with ``-ERR``; ``code`` and ``text`` say why."""

    error_class = "server"


class AuthError(Error):
    """The server refused the credentials, or could not prove it knows the password (SCRAM).
    Fix the credentials (or suspect an impostor). No usable mechanism is a :class:`ConfigError`."""

    error_class = "auth"


class TlsError(Error):
    """The certificate was rejected, the TLS handshake failed, or TLS was required but the
    server did not offer it. Nothing secret was sent."""

    error_class = "tls"


class ProtocolError(Error):
    """The server broke the POP3 protocol (or an attacker tampered with the connection)."""

    error_class = "protocol"


class ConfigError(Error):
    """The configuration or the calling code cannot work: a bad CA file, cleartext login not
    allowed, no usable login mechanism, APOP not allowed, a command in the wrong state or on a
    closed client, a mistake in a fetch config file (``path``, ``line``, ``key`` and ``fix`` say
    where and what to do). Retrying will not help."""

    error_class = "config"

    path: str | None = None
    line: int | None = None
    key: str | None = None
    fix: str | None = None


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - the name is the API
    """The server did not answer in time. Also the builtin :class:`TimeoutError`."""

    error_class = "timeout"
    temporary = True


class NetworkError(Error, ConnectionError):
    """The host did not resolve, refused the connection, or the connection broke.
    Also a :class:`ConnectionError` (so an :class:`OSError`)."""

    error_class = "network"


class StorageError(Error):
    """Writing a message where it goes failed: the mail store, the fetch journal, or the
    caller's sink. Not the server's fault and not a network problem."""

    error_class = "storage"


class Cancelled(Error):
    """The operation was cancelled by its caller (e.g. a fetch stopped midway). An ordinary
    :class:`Error`, not :class:`asyncio.CancelledError` (see the module's docstring)."""

    error_class = "cancelled"


def _new(cls: type, kind: str, message: str, **attrs: object) -> Error:
    """An instance with its attributes set, as the compiled module builds them."""
    exc = cls(message)
    exc.kind = kind
    for name, value in attrs.items():
        setattr(exc, name, value)
    return exc


for _cls in (
    Error, ServerError, AuthError, TlsError, ProtocolError, ConfigError, TimeoutError, NetworkError,
    StorageError, Cancelled,
):
    _cls.__module__ = "popwire"
del _cls

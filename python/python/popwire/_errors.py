"""popwire's exceptions.

Every exception popwire raises is a :class:`Error`. Each carries:

- ``kind``: a stable ``family:kind`` name, e.g. ``"server:refused"``,
  ``"protocol:injection-after-stls"``, ``"net:timeout"``, ``"tls:certificate"``;
- ``code`` and ``text``: for a server's ``-ERR``, its RFC 2449/3206 response code
  (``"IN-USE"``, ``"AUTH"``, ``"SYS/TEMP"``, ... or ``None``) and its text;
- ``command``: the POP3 command refused, when there is one;
- ``temporary``: true when trying again later may work without any change.

The class says what to do next: fix the credentials (:class:`AuthError`), check the certificate
or the server's TLS (:class:`TlsError`), fix the configuration (:class:`ConfigError`), retry later
(:class:`TimeoutError`, or ``temporary``), or report a server bug (:class:`ProtocolError`).
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
]


class Error(Exception):
    """Base class of every popwire exception."""

    kind: str = "error"
    code: str | None = None
    text: str | None = None
    command: str | None = None
    temporary: bool = False


class ServerError(Error):
    """The server refused a command with ``-ERR``; ``code`` and ``text`` say why."""


class AuthError(Error):
    """Logging in failed: wrong credentials, or no acceptable mechanism. Fix the credentials."""


class TlsError(Error):
    """The certificate was rejected, the TLS handshake failed, or TLS was required but the
    server did not offer it. Nothing secret was sent."""


class ProtocolError(Error):
    """The server broke the POP3 protocol (or an attacker tampered with the connection)."""


class ConfigError(Error):
    """The configuration cannot work: a bad CA file, cleartext login not allowed, a mistake in
    a fetch config file (``path``, ``line``, ``key`` and ``fix`` say where and what to do)."""

    path: str | None = None
    line: int | None = None
    key: str | None = None
    fix: str | None = None


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - the name is the API
    """The server did not answer in time. Also the builtin :class:`TimeoutError`."""

    temporary = True


class NetworkError(Error, OSError):
    """The host did not resolve, refused the connection, or the connection broke.
    Also an :class:`OSError`."""


def _new(cls: type, kind: str, message: str, **attrs: object) -> Error:
    """An instance with its attributes set, as the compiled module builds them."""
    exc = cls(message)
    exc.kind = kind
    for name, value in attrs.items():
        setattr(exc, name, value)
    return exc


for _cls in (Error, ServerError, AuthError, TlsError, ProtocolError, ConfigError, TimeoutError, NetworkError):
    _cls.__module__ = "popwire"
del _cls

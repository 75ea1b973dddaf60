"""popwire.fetch and popwire.Account: the mail-client job (download, store, record, delete).

The job itself is the Rust ``popwire::fetch``; this module turns :class:`Account` objects into
the configuration file's TOML form, so an account built in code is checked by exactly the same
rules (and gets the same error messages) as one read from a file.
"""

import json
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from ._popwire import AccountResult, FetchProgress, run_fetch

__all__ = ["Account", "AccountResult", "FetchProgress", "FetchSummary", "fetch"]

PathLike = Union[str, "os.PathLike[str]"]
Command = Union[str, Sequence[str]]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (str, os.PathLike)):
        # A JSON string without \\u escapes of astral characters is a valid TOML basic string.
        return json.dumps(os.fspath(value), ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot put {type(value).__name__} in an account: {value!r}")


class Account:
    """One mail account, built in code; the keyword names are the config file's keys.

    Exactly one credential (``password``, ``password_command``, ``password_env`` or
    ``token_command``) and at most one destination (``maildir``, ``mbox`` or ``mda``). Commands
    are a string (run with ``sh -c``) or an argument list. ``keep`` is ``False`` (delete after
    storing), ``True``, or a duration such as ``"30d"``; ``timeout`` is seconds or ``"60s"``;
    ``max_message_size`` is octets or ``"10M"``.
    """

    _KEYS = (
        "email", "username", "password", "password_command", "password_env", "token_command",
        "server", "port", "security", "ca_file", "auth", "keep", "maildir", "mbox", "mda",
        "max_message_size", "timeout",
    )

    def __init__(
        self,
        name: str,
        *,
        email: str,
        server: str,
        password: Optional[str] = None,
        password_command: Optional[Command] = None,
        password_env: Optional[str] = None,
        token_command: Optional[Command] = None,
        username: Optional[str] = None,
        port: Optional[int] = None,
        security: Optional[str] = None,
        ca_file: Optional[PathLike] = None,
        auth: Optional[str] = None,
        keep: Union[bool, str, None] = None,
        maildir: Optional[PathLike] = None,
        mbox: Optional[PathLike] = None,
        mda: Optional[Command] = None,
        max_message_size: Union[int, str, None] = None,
        timeout: Union[int, float, str, None] = None,
    ) -> None:
        if isinstance(timeout, float):
            timeout = max(1, int(timeout + 0.999))
        self.name = name
        self._values: Dict[str, Any] = {
            k: v for k, v in dict(
                email=email, username=username, password=password, password_command=password_command,
                password_env=password_env, token_command=token_command, server=server, port=port,
                security=security, ca_file=ca_file, auth=auth, keep=keep, maildir=maildir, mbox=mbox,
                mda=mda, max_message_size=max_message_size, timeout=timeout,
            ).items() if v is not None
        }

    def __getattr__(self, key: str) -> Any:
        if key in Account._KEYS and key != "password":
            return self.__dict__["_values"].get(key)
        raise AttributeError(key)

    def to_toml(self) -> str:
        """The account as the config file's ``[accounts.NAME]`` table (holds the password)."""
        lines = [f"[accounts.{_toml(self.name)}]"]
        lines += [f"{key} = {_toml(value)}" for key, value in self._values.items()]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"Account({self.name!r}, email={self.email!r}, server={self.server!r})"


class FetchSummary:
    """What a fetch run did: one :class:`AccountResult` per account, in order."""

    def __init__(self, accounts: List[AccountResult], warnings: List[str]) -> None:
        self.accounts = accounts
        self.warnings = warnings

    @property
    def ok(self) -> bool:
        """True when every account was fetched without error."""
        return all(a.ok for a in self.accounts)

    @property
    def fetched(self) -> int:
        """Messages downloaded and stored, over all accounts."""
        return sum(a.fetched for a in self.accounts)

    @property
    def bytes(self) -> int:
        """Their octets."""
        return sum(a.bytes for a in self.accounts)

    @property
    def deleted(self) -> int:
        """Messages deleted from the servers."""
        return sum(a.deleted for a in self.accounts)

    @property
    def errors(self) -> Dict[str, BaseException]:
        """The failed accounts and their :class:`popwire.Error`."""
        return {a.account: a.error for a in self.accounts if a.error is not None}

    @property
    def exit_code(self) -> int:
        """The ``popwire`` command's exit status for this run: 0, or the first failure's."""
        return next((a.exit_code for a in self.accounts if a.exit_code), 0)

    def raise_for_errors(self) -> None:
        """Raises the first account's error, if any account failed."""
        for a in self.accounts:
            if a.error is not None:
                raise a.error

    def __getitem__(self, name: str) -> AccountResult:
        for a in self.accounts:
            if a.account == name:
                return a
        raise KeyError(name)

    def __iter__(self) -> Any:
        return iter(self.accounts)

    def __len__(self) -> int:
        return len(self.accounts)

    def __repr__(self) -> str:
        return f"<FetchSummary accounts={len(self.accounts)} fetched={self.fetched} ok={self.ok}>"


def fetch(
    config_path: Optional[PathLike] = None,
    accounts: Optional[Iterable[Union[str, Account]]] = None,
    progress: Optional[Callable[[FetchProgress], Any]] = None,
    *,
    state_dir: Optional[PathLike] = None,
    batch: Optional[int] = None,
) -> FetchSummary:
    """Runs the fetch job: for each account, download what is new, store it durably, record
    it, delete it on the server (unless ``keep``), and QUIT.

    ``config_path``: the TOML config (default ``~/.config/popwire/config.toml``, unless
    ``accounts`` holds only :class:`Account` objects). ``accounts``: names of accounts in the
    config to fetch (default: all), and/or :class:`Account` objects. ``progress``: called with
    a :class:`FetchProgress` as things happen; an exception it raises (or Ctrl-C) stops the run
    between messages, keeping what was stored, and is re-raised. ``state_dir``: where UID
    journals live (default ``$XDG_STATE_HOME/popwire``).

    Raises :class:`popwire.ConfigError` for a bad config; an account that fails does not stop
    the others: see :attr:`FetchSummary.errors` or call :meth:`FetchSummary.raise_for_errors`.
    """
    names: List[str] = []
    built: List[Account] = []
    for item in accounts or ():
        if isinstance(item, Account):
            built.append(item)
            names.append(item.name)
        elif isinstance(item, str):
            names.append(item)
        else:
            raise TypeError(f"accounts must hold names or popwire.Account objects, not {type(item).__name__}")
    if config_path is None and built and len(built) != len(names):
        raise ValueError("account names need a config_path to look them up in")
    toml = "".join(a.to_toml() for a in built) if built else None
    results, warnings = run_fetch(
        os.fspath(config_path) if config_path is not None else None,
        toml,
        names,
        progress,
        os.fspath(state_dir) if state_dir is not None else None,
        batch,
    )
    return FetchSummary(results, warnings)

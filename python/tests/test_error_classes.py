"""The shared error-class vectors (tests/vectors/classes/*.class, described in its README),
replayed through popwire.Engine: the first error each session produces must carry the core's
class, response code and temporariness, and be raised as the one Python exception its class
maps to (the table in popwire/_errors.py)."""

import asyncio
from pathlib import Path
from typing import List, Optional

import pytest

import popwire
from test_transcripts import VECTORS, Run, engine, parse, replay

CLASS_FILES = sorted((VECTORS / "classes").glob("*.class"))

EXCEPTION = {
    "auth": popwire.AuthError,
    "tls": popwire.TlsError,
    "protocol": popwire.ProtocolError,
    "server": popwire.ServerError,
    "network": popwire.NetworkError,
    "timeout": popwire.TimeoutError,
    "config": popwire.ConfigError,
    "storage": popwire.StorageError,
    "cancelled": popwire.Cancelled,
}


class FirstError(Run):
    def __init__(self, client: popwire.Engine) -> None:
        super().__init__(client)
        self.errors: List[popwire.Error] = []

    def failed(self, e: popwire.Error) -> None:
        self.errors.append(e)


def test_every_class_has_one_exception() -> None:
    assert len(set(EXCEPTION.values())) == len(EXCEPTION)
    for name, cls in EXCEPTION.items():
        assert issubclass(cls, popwire.Error)
        assert cls.error_class == name
        assert cls.__module__ == "popwire" and getattr(popwire, cls.__name__) is cls
    assert issubclass(popwire.NetworkError, ConnectionError)
    assert issubclass(popwire.TimeoutError, TimeoutError)
    # popwire's `cancelled` is an ordinary error, not asyncio's BaseException.
    assert issubclass(popwire.Cancelled, Exception)
    assert not issubclass(popwire.Cancelled, asyncio.CancelledError)


def test_the_class_vectors_are_there() -> None:
    names = {p.stem.split("-")[0] for p in CLASS_FILES}
    assert len(CLASS_FILES) >= 20 and {"auth", "tls", "protocol", "server", "network", "config"} <= names


@pytest.mark.parametrize("path", CLASS_FILES, ids=[p.stem for p in CLASS_FILES])
def test_class_vector(path: Path) -> None:
    source = path.read_text().rstrip("\n").splitlines()
    last = source[-1].split()
    assert last[0] == "class" and len(last) == 4, f"{path.name}: no class line"
    _, name, code, temporariness = last
    want_code: Optional[str] = None if code == "-" else code
    lines = parse("\n".join(source[:-1]))
    assert not [p for k, p in lines if k == "event"], f"{path.name}: class vectors have no E: lines"

    run = FirstError(engine(lines))
    _, written, expected = replay(lines, 0, run)
    assert written == expected, f"{path.name}: the client sent something else"
    assert run.errors, f"{path.name}: the session produced no error"
    e = run.errors[0]
    assert (e.error_class, e.code if e.error_class == "server" else None, e.temporary) == (
        name,
        want_code,
        temporariness == "temporary",
    ), f"{path.name}: {e.kind}: {e}"
    assert type(e) is EXCEPTION[name], f"{path.name}: {type(e).__name__} for class {name}"
    assert e.kind

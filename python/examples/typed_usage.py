"""Every public surface of popwire, used with full annotations: `mypy --strict` checks this file
against the installed package's stubs (python/run-tests.sh --wheel), so a wrong or missing stub
fails the build. Runs too: `python examples/typed_usage.py` fetches from an in-process server."""

import asyncio
import io
from typing import Dict, List, Optional, Tuple

import popwire
from popwire import poplib
from popwire.testing import Server

MESSAGE = b"Subject: hi\r\n\r\nhello\r\n"


def with_client(host: str, port: int) -> List[bytes]:
    with popwire.Client(host, port, security="none", allow_cleartext=True, timeout=5.0) as pop:
        pop.login("alice", "pw")
        count, size = pop.stat()
        listing: List[Tuple[int, int]] = pop.list()
        uids: List[Tuple[int, str]] = pop.uidl()
        caps: Dict[str, List[str]] = pop.capa()
        assert count == len(listing) == len(uids) and size > 0 and caps is not None
        sink = io.BytesIO()
        written: int = pop.retr_to(1, sink)
        chunks = list(pop.iter_retr(1))
        whole = [data for _, data in pop.retr_many([num for num, _ in listing])]
        assert written == len(b"".join(chunks))
        return whole


async def with_async_client(host: str, port: int) -> int:
    async with popwire.AsyncClient(host, port, security="none", allow_cleartext=True) as pop:
        await pop.login("alice", "pw")
        total = 0
        async for _num, data in pop.retr_many([1]):
            total += len(data)
        return total


def with_engine() -> Optional[str]:
    engine = popwire.Engine("none", negotiate=False, allow_cleartext=True)
    engine.receive_data(b"+OK ready <1.2@host>\r\n")
    event = engine.next_event()
    if isinstance(event, popwire.Greeting):
        return event.apop_timestamp
    return None


def with_poplib(host: str, port: int) -> Tuple[bytes, List[bytes], int]:
    pop = poplib.POP3(host, port, timeout=5)
    pop.user("alice")
    pop.pass_("pw")
    resp, lines, octets = pop.retr(1)
    pop.quit()
    return resp, lines, octets


def main() -> None:
    with Server([MESSAGE], users={"alice": "pw"}) as server:
        assert with_client(server.host, server.port) == [MESSAGE]
        assert asyncio.run(with_async_client(server.host, server.port)) == len(MESSAGE)
        assert with_poplib(server.host, server.port)[1] == [b"Subject: hi", b"", b"hello"]
    assert with_engine() == "<1.2@host>"
    try:
        popwire.Client("127.0.0.1", 1, security="none", timeout=1.0)
    except popwire.Error as exc:
        kind: str = exc.kind
        print("expected:", kind)
    print("ok")


if __name__ == "__main__":
    main()

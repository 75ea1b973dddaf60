"""popwire.AsyncClient: every method, concurrent sessions, and a loop that never blocks."""

import asyncio
import io
import time
import types

import pytest

import popwire
from popwire.testing import Server

from corpus import sized, tricky, wire_form

USERS = {"alice": "wonderland"}


def run(coro):
    return asyncio.run(coro)


def test_every_method():
    messages = tricky()

    async def main() -> None:
        with Server(messages, USERS) as s:
            async with s.async_client() as pop:
                assert pop.greeting.startswith("popwire")
                assert "SASL" in pop.capabilities
                await pop.login("alice", "wonderland")
                assert "PIPELINING" in await pop.capa()
                count, size = await pop.stat()
                assert count == len(messages)
                listing = await pop.list()
                assert [sz for _, sz in listing] == [len(wire_form(m)) for m in messages]
                assert await pop.list(2) == listing[1]
                assert [u for _, u in await pop.uidl()] == s.uids
                assert await pop.uidl(1) == (1, s.uids[0])
                for num, msg in enumerate(messages, start=1):
                    assert await pop.retr(num) == wire_form(msg)
                    sink = io.BytesIO()
                    assert await pop.retr_to(num, sink) == len(wire_form(msg))
                    assert sink.getvalue() == wire_form(msg)
                    chunks = [c async for c in pop.iter_retr(num)]
                    assert b"".join(chunks) == wire_form(msg)
                got = [(n, d) async for n, d in pop.retr_many([2, 1])]
                assert got == [(2, wire_form(messages[1])), (1, wire_form(messages[0]))]
                assert (await pop.top(1, 0)).endswith(b"\r\n\r\n")
                await pop.noop()
                await pop.dele(1)
                await pop.rset()
                await pop.dele(2)
                with pytest.raises(popwire.ServerError):
                    await pop.retr(99)
            assert pop.closed
            assert s.deleted == [messages[1]]

    run(main())


def test_async_sinks_and_auth_methods():
    async def main() -> None:
        with Server([b"hello\n"], USERS, apop=True) as s:
            for mechanism in ("user", "PLAIN", "SCRAM-SHA-256", "apop"):
                async with s.async_client() as pop:
                    await pop.auth(mechanism, "alice", "wonderland")
                    got = []

                    async def write(data: bytes) -> None:
                        await asyncio.sleep(0)
                        got.append(data)

                    assert await pop.retr_to(1, types.SimpleNamespace(write=write)) == 7
                    assert b"".join(got) == b"hello\r\n"

    run(main())


def test_concurrent_sessions():
    msgs = sized(20, 20_000)

    async def session(server: Server, k: int) -> list:
        async with server.async_client() as pop:
            await pop.login("alice", "wonderland")
            return [d async for _, d in pop.retr_many([n for n, _ in await pop.list()])]

    async def main() -> None:
        with Server(msgs, USERS, latency=0.05) as s:
            start = time.perf_counter()
            results = await asyncio.gather(*(session(s, k) for k in range(12)))
            elapsed = time.perf_counter() - start
            assert s.sessions == 12
        for r in results:
            assert r == [wire_form(m) for m in msgs]
        # Twelve sessions of several round trips each, overlapping: far less than 12x one.
        assert elapsed < 3.0, elapsed

    run(main())


def test_the_event_loop_never_blocks():
    big = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 20_000  # 20 MB

    async def main() -> float:
        worst = 0.0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal worst
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                worst = max(worst, now - last)
                last = now

        with Server([big], USERS, latency=0.2) as s:
            tick = asyncio.create_task(ticker())
            async with s.async_client() as pop:
                await pop.login("alice", "wonderland")
                total = 0
                async for chunk in pop.iter_retr(1):
                    total += len(chunk)
                assert total == len(big)
            stop.set()
            await tick
        return worst

    worst = run(main())
    # Round trips take 0.2 s each; a blocking client would stall the ticker that long.
    assert worst < 0.1, f"the event loop stalled for {worst:.3f}s"


def test_abandoned_iteration_leaves_the_session_usable():
    msgs = sized(3, 400_000)

    async def main() -> None:
        with Server(msgs, USERS) as s:
            async with s.async_client() as pop:
                await pop.login("alice", "wonderland")
                it = pop.iter_retr(1)
                async for _ in it:
                    break
                await it.aclose()
                assert await pop.retr(2) == wire_form(msgs[1])
                many = pop.retr_many([1, 2, 3])
                async for _ in many:
                    break
                await many.aclose()
                assert await pop.stat() == (3, sum(len(wire_form(m)) for m in msgs))
                assert await pop.retr(3) == wire_form(msgs[2])

    run(main())

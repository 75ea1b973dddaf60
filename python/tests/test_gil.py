"""Network I/O releases the GIL: threads fetching in parallel really run in parallel."""

import threading
import time

from popwire.testing import Server

from corpus import sized, wire_form

USERS = {"alice": "wonderland"}


def fetch_all(server: Server) -> list:
    with server.client() as pop:
        pop.login("alice", "wonderland")
        return [pop.retr(n) for n, _ in pop.list()]


def test_threads_fetch_in_parallel():
    # Every reply waits 0.15 s, like a slow network: CAPA, USER, PASS, LIST and 2 RETR.
    msgs = sized(2, 2000)
    with Server(msgs, USERS, latency=0.15, pipelining=False) as server:
        start = time.perf_counter()
        assert fetch_all(server) == [wire_form(m) for m in msgs]
        one = time.perf_counter() - start

        results = [None] * 6
        def work(i: int) -> None:
            results[i] = fetch_all(server)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        six = time.perf_counter() - start
    assert all(r == [wire_form(m) for m in msgs] for r in results)
    # Serialized by the GIL, six sessions would take about 6x one; in parallel, about 1x.
    assert six < 2.5 * one, f"one session {one:.2f}s, six in parallel {six:.2f}s"


def test_python_threads_run_while_a_call_waits():
    with Server([b"x\n"], USERS, latency=0.8) as server:
        pop = server.client()
        ticks = 0
        done = threading.Event()

        def blocked() -> None:
            pop.login("alice", "wonderland")
            done.set()

        t = threading.Thread(target=blocked)
        t.start()
        time.sleep(0.05)
        deadline = time.perf_counter() + 0.4
        while time.perf_counter() < deadline and not done.is_set():
            ticks += 1
        t.join()
        pop.close()
    assert ticks > 10_000, f"the main thread only ran {ticks} loop iterations while the client waited"


def test_two_threads_sharing_a_client_take_turns():
    """One thread streams into a Python sink (which needs the GIL per chunk) while another uses
    the same client: the second waits its turn, nothing deadlocks."""
    msg = b"Subject: s\r\n\r\n" + b"q" * 998 + b"\r\n"
    msgs = [msg * 500] * 3
    with Server(msgs, USERS) as server, server.client() as pop:
        pop.login("alice", "wonderland")
        got = []

        class SlowSink:
            def write(self, b: bytes) -> None:
                time.sleep(0.002)
                got.append(b)

        t = threading.Thread(target=pop.retr_to, args=(1, SlowSink()))
        t.start()
        seen = []
        for _ in range(20):
            seen.append((repr(pop), pop.closed, pop.stat()[0]))
        t.join(timeout=30)
        assert not t.is_alive()
        assert b"".join(got) == msgs[0]
        assert all(s[2] == 3 for s in seen)

"""Against a real server: Dovecot over implicit TLS and STLS."""

import asyncio
import io
import json
import subprocess
import sys
import textwrap

import pytest

import popwire

from corpus import sized, tricky, wire_form

pytestmark = pytest.mark.dovecot


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_every_method_byte_exact(dovecot, security):
    user = dovecot.new_user("every")
    messages = tricky()
    uids = dovecot.seed(user, messages)
    with dovecot.client(security) as pop:
        assert pop.is_tls
        assert "STLS" not in pop.capabilities  # re-read after TLS
        pop.login(user, dovecot.password)
        assert "UIDL" in pop.capa()
        count, size = pop.stat()
        assert count == len(messages)
        # Dovecot's LIST size is the stored size with bare LFs counted as CRLF (W=...).
        sizes = [len(m) + m.count(b"\n") - m.count(b"\r\n") for m in messages]
        assert pop.list() == list(enumerate(sizes, 1))
        assert pop.list(2) == (2, sizes[1])
        assert pop.uidl() == list(enumerate(uids, 1))
        assert pop.uidl(3) == (3, uids[2])
        for num, msg in enumerate(messages, 1):
            assert pop.retr(num) == wire_form(msg), num
        sink = io.BytesIO()
        assert pop.retr_to(10, sink) == len(wire_form(messages[9]))
        assert sink.getvalue() == wire_form(messages[9])
        assert b"".join(pop.iter_retr(1)) == wire_form(messages[0])
        got = dict(pop.retr_many(list(range(1, len(messages) + 1))))
        assert got == {n: wire_form(m) for n, m in enumerate(messages, 1)}
        assert pop.top(1, 0) == wire_form(messages[0]).partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        pop.noop()
        pop.dele(1)
        pop.dele(2)
        pop.rset()
        pop.dele(3)
        pop.quit()
    assert dovecot.server_messages(user) == sorted(u for i, u in enumerate(uids) if i != 2)


@pytest.mark.parametrize("mechanism", ["auto", "user", "apop", "PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_mechanisms(dovecot, mechanism):
    user = dovecot.new_user("auth")
    dovecot.seed(user, [b"Subject: x\n\nbody\n"])
    with dovecot.client("tls") as pop:
        pop.auth(mechanism, user, dovecot.password)
        assert pop.retr(1) == b"Subject: x\r\n\r\nbody\r\n"
    with dovecot.client("tls") as pop:
        with pytest.raises(popwire.AuthError) as e:
            pop.auth(mechanism, user, "wrong")
        assert e.value.code in ("AUTH", None)


def test_certificate_is_checked(dovecot):
    with pytest.raises(popwire.TlsError) as e:
        popwire.Client(dovecot.host, dovecot.tls_port, timeout=10)
    assert e.value.kind == "tls:certificate"
    with pytest.raises(popwire.TlsError) as e:
        popwire.Client(dovecot.host, dovecot.plain_port, security="starttls", timeout=10)
    assert e.value.kind == "tls:certificate"


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_async_client(dovecot, security):
    users = [dovecot.new_user("async") for _ in range(6)]
    msgs = sized(15, 4000)
    for u in users:
        dovecot.seed(u, msgs)

    async def session(user: str) -> list:
        port = dovecot.tls_port if security == "tls" else dovecot.plain_port
        async with popwire.AsyncClient(dovecot.host, port, security=security, ca_file=dovecot.ca_file) as pop:
            assert pop.is_tls
            await pop.login(user, dovecot.password)
            bodies = [d async for _, d in pop.retr_many(list(range(1, 16)))]
            assert await pop.retr(3) == wire_form(msgs[2])
            await pop.dele(1)
            return bodies

    async def main() -> list:
        return await asyncio.gather(*(session(u) for u in users))

    for bodies in asyncio.run(main()):
        assert bodies == [wire_form(m) for m in msgs]
    for u in users:
        assert len(dovecot.server_messages(u)) == 14


def test_async_certificate_is_checked(dovecot):
    async def main() -> None:
        with pytest.raises(popwire.TlsError) as e:
            await popwire.AsyncClient(dovecot.host, dovecot.tls_port, timeout=10).connect()
        assert e.value.kind == "tls:certificate"
        with pytest.raises(popwire.TlsError):
            await popwire.AsyncClient(dovecot.host, dovecot.plain_port, security="starttls", timeout=10).connect()

    asyncio.run(main())


STREAM_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, resource, sys
    import popwire
    mode, host, port, security, ca, user, password = sys.argv[1:8]
    port = int(port)
    ca = ca or None

    def peak_kib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    class Count:
        n = 0
        def write(self, b):
            self.n += len(b)

    if mode == "async":
        async def main():
            async with popwire.AsyncClient(host, port, security=security, ca_file=ca, allow_cleartext=True) as pop:
                await pop.login(user, password)
                before = peak_kib()
                n = 0
                async for chunk in pop.iter_retr(1):
                    n += len(chunk)
                return before, n
        before, n = asyncio.run(main())
    else:
        with popwire.Client(host, port, security=security, ca_file=ca, allow_cleartext=True) as pop:
            pop.login(user, password)
            before = peak_kib()
            if mode == "retr_to":
                sink = Count()
                n = pop.retr_to(1, sink)
                assert n == sink.n
            else:
                n = sum(len(c) for c in pop.iter_retr(1))
    print(json.dumps({"before_kib": before, "after_kib": peak_kib(), "octets": n}))
    """
)


def stream_in_subprocess(mode: str, host: str, port: int, security: str, ca: str, user: str, password: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", STREAM_SCRIPT, mode, host, str(port), security, ca, user, password],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["retr_to", "iter_retr", "async"])
def test_100_mb_message_streams_in_bounded_memory(dovecot, mode):
    user = dovecot.new_user("big")
    _, size = dovecot.seed_large(user, 100 * 1024 * 1024)
    result = stream_in_subprocess(mode, dovecot.host, dovecot.tls_port, "tls", dovecot.ca_file, user, dovecot.password)
    assert result["octets"] == size
    grown_mib = (result["after_kib"] - result["before_kib"]) / 1024
    assert grown_mib < 32, f"peak memory grew by {grown_mib:.1f} MiB while streaming 100 MiB"


@pytest.mark.slow
def test_100_mb_message_from_popwire_testing_streams_in_bounded_memory():
    server_script = textwrap.dedent(
        """
        import sys
        from popwire.testing import Server
        line = b"0123456789" * 7 + b"\\r\\n"
        body = b"Subject: large\\r\\n\\r\\n" + line * (100 * 1024 * 1024 // len(line))
        with Server([body], {"big": "pw"}) as s:
            print(s.port, len(body), flush=True)
            sys.stdin.read()
        """
    )
    server = subprocess.Popen([sys.executable, "-c", server_script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port, size = map(int, server.stdout.readline().split())
        for mode in ("retr_to", "iter_retr", "async"):
            result = stream_in_subprocess(mode, "127.0.0.1", port, "none", "", "big", "pw")
            assert result["octets"] == size
            grown_mib = (result["after_kib"] - result["before_kib"]) / 1024
            assert grown_mib < 32, f"{mode}: peak memory grew by {grown_mib:.1f} MiB"
    finally:
        server.stdin.close()
        server.wait(timeout=30)

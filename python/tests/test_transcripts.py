"""The shared transcripts in tests/vectors/, replayed through popwire.Engine at every split
point of the server's bytes and fed one byte at a time (a port of core/tests/transcripts.rs;
the format is in tests/vectors/README.md)."""

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

import popwire
from popwire import Body, Completed, Greeting, Ready, TlsReady

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors"
FILES = sorted(VECTORS.glob("*.pop3"))


def unescape(text: str) -> bytes:
    out = bytearray()
    raw = text.encode("utf-8")
    i, crlf = 0, True
    while i < len(raw):
        c = raw[i]
        if c == 0x5C:  # backslash
            nxt = raw[i + 1 : i + 2]
            if not nxt:
                crlf = False
                break
            if nxt == b"x":
                out.append(int(raw[i + 2 : i + 4], 16))
                i += 4
                continue
            out += {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"\\": b"\\"}[nxt]
            i += 2
        else:
            out.append(c)
            i += 1
    if crlf:
        out += b"\r\n"
    return bytes(out)


def escape(data: bytes) -> str:
    parts = []
    for b in data:
        if b == 0x0D:
            parts.append("\\r")
        elif b == 0x0A:
            parts.append("\\n")
        elif b == 0x09:
            parts.append("\\t")
        elif b == 0x5C:
            parts.append("\\\\")
        elif 0x20 <= b <= 0x7E:
            parts.append(chr(b))
        else:
            parts.append(f"\\x{b:02x}")
    return "".join(parts)


def text(s: str) -> str:
    return escape(s.encode("utf-8"))


def caps_line(caps: Dict[str, List[str]]) -> str:
    names = []
    for name, args in caps.items():
        if name == "SASL":
            names.append("SASL:" + ",".join(args))
        elif name in ("LOGIN-DELAY", "EXPIRE") and args:
            names.append(f"{name}:{args[0]}")
        elif name == "IMPLEMENTATION":
            names.append("IMPLEMENTATION:" + "_".join(args))
        else:
            names.append(name)
    return " ".join(names)


def reply_line(kind: str, value: object) -> str:
    if kind == "ok":
        return f"text {text(value)}"
    if kind == "authenticated":
        return "authenticated"
    if kind == "stat":
        return "stat %d %d" % value
    if kind == "list":
        return "list " + " ".join(f"{n}:{s}" for n, s in value)
    if kind == "list-one":
        return "list-one %d:%d" % value
    if kind == "uidl":
        return "uidl " + " ".join(f"{n}:{text(u)}" for n, u in value)
    if kind == "uidl-one":
        return f"uidl-one {value[0]}:{text(value[1])}"
    if kind == "capa":
        return "capa " + caps_line(value)
    if kind == "lang":
        return "lang " + " ".join(f"{t}:{text(d)}" for t, d in value)
    if kind == "retrieved":
        return f"retrieved {value}"
    if kind == "tls-ready":
        return "tls-ready"
    if kind == "closed":
        return f"closed {text(value)}"
    raise AssertionError(kind)


def error_line(e: popwire.Error) -> str:
    if e.kind == "server:refused":
        return f"server {e.code or '-'} {text(e.text)}"
    return e.kind.replace(":", " ", 1)


Line = Tuple[str, object]


def parse(source: str) -> List[Line]:
    lines: List[Line] = []
    for raw in source.splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        if raw.startswith("option "):
            key, _, value = raw[len("option ") :].partition(" ")
            lines.append(("option", (key, value.strip())))
        elif raw.startswith("A: "):
            lines.append(("action", raw[3:].strip()))
        elif raw.startswith("C: "):
            lines.append(("client", unescape(raw[3:])))
        elif raw.startswith("S: "):
            lines.append(("server", unescape(raw[3:])))
        elif raw.startswith("E: "):
            lines.append(("event", raw[3:].rstrip()))
        elif raw == "S:":
            lines.append(("server", b"\r\n"))
        elif raw == "C:":
            lines.append(("client", b"\r\n"))
        else:
            raise AssertionError(f"unknown transcript line: {raw}")
    return lines


def engine(lines: List[Line]) -> popwire.Engine:
    kw: Dict[str, object] = {}
    security = "tls"
    names = {"negotiate": "negotiate", "allow-cleartext": "allow_cleartext", "pipelining": "pipelining", "lenient-uids": "lenient_uids"}
    limits = {"status-line": "status_line_limit", "data-line": "data_line_limit", "listing": "listing_limit"}
    for kind, payload in lines:
        if kind != "option":
            continue
        key, value = payload  # type: ignore[misc]
        if key == "security":
            security = value
        elif key in names:
            kw[names[key]] = value == "on"
        elif key in limits:
            kw[limits[key]] = int(value)
        else:
            raise AssertionError(f"unknown option {key}")
    return popwire.Engine(security, **kw)  # type: ignore[arg-type]


class Run:
    def __init__(self, client: popwire.Engine) -> None:
        self.client = client
        self.log: List[str] = []
        self.bodies: Dict[int, bytearray] = {}
        self.written = bytearray()
        self.dead = False

    def push(self, line: str) -> None:
        self.log.append(line.rstrip())

    def failed(self, e: popwire.Error) -> None:
        """Every error the session produces passes here, in order (a hook for the class vectors)."""

    def die(self, e: popwire.Error) -> None:
        self.failed(e)
        self.push(f"fatal {e.kind}")
        self.dead = True

    def drain_events(self) -> None:
        while not self.dead:
            try:
                ev = self.client.next_event()
            except popwire.Error as e:
                self.die(e)
                return
            if ev is None:
                return
            if isinstance(ev, Greeting):
                self.push(f"greeting {text(ev.text)}")
            elif isinstance(ev, Ready):
                self.push(f"ready {caps_line(ev.capabilities)}")
            elif isinstance(ev, TlsReady):
                self.push("tls-ready")
            elif isinstance(ev, Body):
                self.bodies.setdefault(ev.id, bytearray()).extend(ev.data)
            elif isinstance(ev, Completed):
                if ev.kind == "retrieved":
                    self.push(f"body {ev.id} {escape(bytes(self.bodies.pop(ev.id, b'')))}")
                if ev.error is not None:
                    self.failed(ev.error)
                    self.push(f"err {ev.id} {error_line(ev.error)}")
                else:
                    self.push(f"ok {ev.id} {reply_line(ev.kind, ev.value)}")
            else:
                raise AssertionError(ev)

    def flush(self) -> None:
        self.written += self.client.data_to_send()

    def pump(self) -> None:
        while True:
            before = (len(self.written), len(self.log))
            self.flush()
            self.drain_events()
            if (len(self.written), len(self.log)) == before or self.dead:
                return

    def act(self, action: str) -> None:
        w = action.split()
        c = self.client
        try:
            name = w[0]
            if name == "tls-established":
                c.tls_established()
            elif name == "eof":
                try:
                    c.receive_eof()
                except popwire.Error as e:
                    self.die(e)
            elif name == "auth":
                secret = w[3]
                password: Optional[str] = None if secret.startswith("token:") else secret
                token = secret[len("token:") :] if secret.startswith("token:") else None
                nonce = w[4] if len(w) > 4 else "0123456789abcdefghij"
                c.auth(w[1], w[2], password, token=token, nonce=nonce)
            elif name in ("capa", "stls", "stat", "noop", "rset", "quit", "utf8"):
                getattr(c, name)()
            elif name == "user":
                c.user(w[1])
            elif name == "pass":
                c.pass_(w[1])
            elif name == "apop":
                c.apop(w[1], w[2])
            elif name in ("list", "uidl"):
                getattr(c, name)(int(w[1]) if len(w) > 1 else None)
            elif name in ("retr", "dele"):
                getattr(c, name)(int(w[1]))
            elif name == "top":
                c.top(int(w[1]), int(w[2]))
            elif name == "lang":
                c.lang(w[1] if len(w) > 1 else None)
            else:
                raise AssertionError(f"unknown action {name}")
        except popwire.Error as e:
            self.failed(e)
            self.push(f"refused {e.kind}")


def replay(lines: List[Line], cut: Optional[int], run: Optional[Run] = None) -> Tuple[List[str], bytes, bytes]:
    """One run with the server stream cut at ``cut`` (None: one byte per read; 0: each block
    whole), on ``run`` if given (an engine built from the lines' options)."""
    if run is None:
        run = Run(engine(lines))
    expected_written = bytearray()
    fed = 0
    i = 0
    while i < len(lines):
        kind, payload = lines[i]
        if kind in ("option", "event"):
            i += 1
        elif kind == "action":
            if not run.dead:
                run.act(payload)  # type: ignore[arg-type]
                run.pump()
            i += 1
        elif kind == "client":
            expected_written += payload  # type: ignore[operator]
            i += 1
        else:
            run.flush()
            if run.written != expected_written:
                return run.log, bytes(run.written), bytes(expected_written)
            block = bytearray()
            while i < len(lines) and lines[i][0] == "server":
                block += lines[i][1]  # type: ignore[operator]
                i += 1
            if cut is None:
                pieces = [block[k : k + 1] for k in range(len(block))]
            elif fed < cut < fed + len(block):
                pieces = [block[: cut - fed], block[cut - fed :]]
            else:
                pieces = [block]
            fed += len(block)
            for piece in pieces:
                if run.dead:
                    break
                try:
                    run.client.receive_data(bytes(piece))
                except popwire.Error as e:
                    run.die(e)
                    break
                run.pump()
    run.pump()
    return run.log, bytes(run.written), bytes(expected_written)


def test_the_full_vector_set_is_there():
    assert len(FILES) >= 20, f"expected the shared vectors in {VECTORS}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector_at_every_split(path: Path) -> None:
    lines = parse(path.read_text())
    expected = [p for k, p in lines if k == "event"]
    server_len = sum(len(p) for k, p in lines if k == "server")  # type: ignore[arg-type]
    for cut in [*range(server_len + 1), None]:
        log, written, want = replay(lines, cut)
        assert (log, escape(written)) == (expected, escape(want)), f"{path.name} cut {cut}"

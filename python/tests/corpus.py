"""Test mail for the binding's tests: edge cases, bulk messages, and the form a client must
see after RETR. Mirrors tests/src/corpus.rs in spirit: no NUL bytes, no bare CRs."""

import random
from typing import List

_HEADERS = (
    "Return-Path: <sender@example.com>\n"
    "From: Popwire Sender <sender@example.com>\n"
    "To: Popwire Test <test@example.com>\n"
    "Subject: {subject}\n"
    "Date: Mon, 01 Jan 2024 12:00:00 +0000\n"
    "Message-ID: <{id}@popwire.test>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
)


def message(id: str, subject: str, body: bytes) -> bytes:
    return _HEADERS.format(id=id, subject=subject).encode() + body


def wire_form(msg: bytes) -> bytes:
    """What RETR delivers for a stored message: bare LFs become CRLF, and a last line without
    a newline gets one (the server ends it before the terminating dot)."""
    out = msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def tricky() -> List[bytes]:
    """Dot lines, 8-bit bytes, CRLF and mixed line ends, a long line, an empty body, no final
    newline, a lone dot last, and a 1.2 MB message."""
    rng = random.Random(0x706F7077)
    big = bytearray()
    i = 0
    while len(big) < 1_200_000:
        if i % 97 == 0:
            big += b".\n"
        elif i % 97 == 1:
            big += b"..dot-stuffed on the wire\n"
        else:
            big += bytes(rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(72)) + b"\n"
        i += 1
    return [
        message("t0", "dot lines", b"first\n.leading dot\n..two dots\n...\n.\nafter a lone dot\n. dot space\nlast\n"),
        b"Subject: 8-bit \xc3\xa9t\xc3\xa9 \xe9t\xe9\nFrom: s@example.com\n\nUTF-8: gr\xc3\xbc\xc3\x9fe \xf0\x9f\x93\xa7\nLatin-1: \xe9\xe8\xfc\xff\n\x80\x81\xfe bytes\n",
        wire_form(message("t2", "stored with CRLF", b"crlf line\n.dot line\n.\n\nend\n")),
        message("t3", "mixed endings", b"lf line\ncrlf line\r\n.dot crlf\r\n.dot lf\n\r\nend\n"),
        message("t4", "a 25 KB line", b"before\n" + (b"abcdefghijklmnopqrstuvwxyz0123456789" * 700)[:25_000] + b"\nafter\n"),
        message("t5", "empty body", b""),
        message("t6", "no final newline", b"line one\nlast line without newline"),
        message("t7", "ends with a lone dot", b"text\n.\n"),
        message("t8", "dot first, blank lines last", b".starts with a dot\nbody\n\n\n"),
        message("t9", "a 1.2 MB message", bytes(big)),
    ]


def sized(n: int, size: int, seed: int = 1) -> List[bytes]:
    """``n`` deterministic messages of exactly ``size`` bytes (LF line ends, some dot lines)."""
    rng = random.Random(seed)
    words = [b"the", b"mail", b"server", b"message", b"octets", b"caf\xc3\xa9", b".dot", b"pipeline", b"quit"]
    out = []
    for k in range(n):
        head = message(f"s{seed}-{k}", f"sized {k}", b"")
        body = bytearray()
        while len(head) + len(body) < size:
            line = b" ".join(rng.choice(words) for _ in range(rng.randint(3, 14)))
            body += line + b"\n"
        msg = (head + bytes(body))[:size]
        if not msg.endswith(b"\n"):
            msg = msg[:-1] + b"\n"
        out.append(msg)
    return out

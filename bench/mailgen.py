"""Deterministic test mailboxes for bench/suite.py.

Every message is LF-terminated (as Dovecot stores them; it serves CRLF on the wire), exactly
`size` bytes long, ASCII headers, and a body that mixes ordinary prose with the lines that
break naive POP3 clients:

* dot lines: ".", "..", "...", ".leading dot", ". ", ".\\t" (dot-stuffed on the wire);
* 8-bit bytes: UTF-8 text and raw 0x80-0xFF bytes that are not valid UTF-8;
* long lines: 999 to 6000 bytes (over SMTP's 998 limit);
* mbox-sensitive "From " lines, empty lines and trailing white space.

No NUL and no CR bytes (a bare CR has no defined CRLF/LF mapping), and every message ends
with a line feed, so "stored as LF" has exactly one meaning.
"""

import hashlib
import os
import random

PROSE_WORDS = (
    "the quick brown fox jumps over lazy dog mail server client fetch pipeline octets "
    "message delete retrieve maildir header body line feed carriage return dot stuffing "
    "benchmark latency throughput popwire mpop fetchmail getmail poplib dovecot"
).split()


def _pool(rng):
    """Distinct body lines, each ending in LF."""
    lines = []
    for _ in range(3000):
        n = rng.randint(4, 13)
        line = " ".join(rng.choice(PROSE_WORDS) for _ in range(n))
        lines.append(line.capitalize().encode() + b".\n")
    dots = [b".\n", b"..\n", b"...\n", b".leading dot line\n", b". \n", b".\t\n",
            b"..double dot\n", b". trailing space \n"]
    lines += dots * 20
    eight = [
        "Grüße aus Köln — ½ € · naïve café ☃ 日本語のテキスト".encode(),
        bytes(range(0x80, 0x100)),
        "Ünïcödé at the end of a line ß".encode("latin-1"),
    ]
    for _ in range(200):
        raw = bytes(rng.choice(range(0x80, 0x100)) for _ in range(rng.randint(10, 70)))
        eight.append(raw)
    lines += [e + b"\n" for e in eight]
    lines += [b"From the desk of the benchmark\n", b">From quoted\n", b"\n", b"\n",
              b"trailing white space   \n", b"tab\tseparated\tvalues\t\n"]
    return lines


def _long_line(rng, length):
    chunk = bytes(rng.choice(range(0x21, 0x7f)) for _ in range(97)) + "é".encode()
    body = (chunk * (length // len(chunk) + 1))[:length]
    if body.startswith(b"."):
        body = b"x" + body[1:]
    return body + b"\n"


def message(kind, n, size, rng, pool):
    """Message number `n` of mailbox `kind`, exactly `size` bytes (LF)."""
    hdr = (
        f"From: Bench Sender <sender@example.com>\n"
        f"To: bench@example.com\n"
        f"Subject: popwire bench {kind} message {n}\n"
        f"Message-ID: <{n}.{kind}@bench.popwire.invalid>\n"
        f"Date: Thu, 26 Nov 2026 12:00:00 +0000\n"
        f"MIME-Version: 1.0\n"
        f"Content-Type: text/plain; charset=utf-8\n"
        f"Content-Transfer-Encoding: 8bit\n\n"
    ).encode()
    # Every message has each kind of awkward line near its start.
    parts = [hdr, b".\n", b"..\n", b".leading dot\n", pool[3000 + 160], pool[3000 + 161],
             _long_line(rng, rng.randint(999, min(6000, max(999, size // 3))))]
    used = sum(len(p) for p in parts)
    budget = size - used - 1
    if budget < 0:
        raise ValueError(f"size {size} too small")
    # Fill with pool lines; the last line is cut to fit, as ASCII filler.
    body = []
    total = 0
    while total < budget:
        batch = rng.choices(pool, k=max(16, (budget - total) // 40))
        for line in batch:
            if total + len(line) > budget:
                break
            body.append(line)
            total += len(line)
        else:
            continue
        break
    rest = budget - total
    msg = b"".join(parts) + b"".join(body) + b"z" * rest + b"\n"
    assert len(msg) == size, (len(msg), size)
    return msg


def maildir_name(n, msg, tag):
    """Dovecot Maildir name with S= (stored size) and W= (CRLF size), so Dovecot does not stat."""
    lf = msg.count(b"\n")
    return f"1700000000.M{n}P1Q{n}.{tag},S={len(msg)},W={len(msg) + lf}"


def generate(directory, kind, count, size, seed=20261127):
    """Writes the mailbox into `directory` (created), returns sorted sha256 hex digests."""
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(f"{seed}:{kind}:{count}:{size}")
    pool = _pool(rng)
    digests = []
    names = []
    for n in range(count):
        msg = message(kind, n, size, rng, pool)
        name = maildir_name(n, msg, kind)
        with open(os.path.join(directory, name), "wb") as f:
            f.write(msg)
        os.chmod(os.path.join(directory, name), 0o644)
        digests.append(hashlib.sha256(msg).hexdigest())
        names.append(name)
    with open(os.path.join(directory, "MANIFEST"), "w") as f:
        for name, d in zip(names, digests):
            f.write(f"{d} {name}\n")
    return sorted(digests)


if __name__ == "__main__":
    import sys
    d, kind, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(len(generate(d, kind, count, size)))

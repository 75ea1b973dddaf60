#!/usr/bin/env python3
"""The stdlib peer of bench/suite.py: fetch a POP3 mailbox into a Maildir with poplib.

    poplib_fetch.py --host H --port P --user U --password PW --maildir DIR
                    [--security none|starttls|tls] [--ca-file CA] [--fsync]

What a careful small script would do: log in (USER/PASS), STAT, then for each message RETR it,
write it as LF to Maildir/tmp, (with --fsync: fsync the file), rename it into new/ and DELE it;
with --fsync, fsync new/ before QUIT commits the deletions. No pipelining (poplib has none).
poplib's 2048-byte line limit is raised to 1 MiB (as getmail6 does), since the bench mailboxes
have lines longer than that.
"""

import argparse
import os
import poplib
import socket
import ssl
import sys
import time

poplib._MAXLINE = 1 << 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--security", choices=("none", "starttls", "tls"), default="none")
    ap.add_argument("--ca-file")
    ap.add_argument("--fsync", action="store_true")
    a = ap.parse_args()

    ctx = None
    if a.security != "none":
        ctx = ssl.create_default_context(cafile=a.ca_file)
    if a.security == "tls":
        pop = poplib.POP3_SSL(a.host, a.port, context=ctx, timeout=120)
    else:
        pop = poplib.POP3(a.host, a.port, timeout=120)
        if a.security == "starttls":
            pop.stls(context=ctx)
    pop.user(a.user)
    pop.pass_(a.password)
    count, _size = pop.stat()

    tmp = os.path.join(a.maildir, "tmp")
    new = os.path.join(a.maildir, "new")
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    pid = os.getpid()
    secs = int(time.time())
    for i in range(1, count + 1):
        _resp, lines, _octets = pop.retr(i)
        name = f"{secs}.P{pid}Q{i}.{host}"
        path = os.path.join(tmp, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            data = b"\n".join(lines)
            data += b"\n"
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if a.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(path, os.path.join(new, name))
        pop.dele(i)
    if a.fsync and count:
        dfd = os.open(new, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    pop.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())

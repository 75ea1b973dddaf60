#!/usr/bin/env python3
"""The baseline's MDA for bench/imap-rtt.sh: APPENDs the message on stdin to an IMAP folder.

    imap_append_mda.py --host H --port P --user U --ca-file CA [--folder INBOX]
    (password from the environment variable IMAP_MDA_PASSWORD)

What an MDA behind fetchmail (or getmail's external MDA) has to do for an IMAP destination:
one process per message, so one connection, TLS handshake, LOGIN, APPEND and LOGOUT per
message, with the standard library's imaplib (no third-party code). The certificate is
checked against the test CA and the name `localhost`. Exit 0 only after the server's OK to
the APPEND; anything else exits 75 (EX_TEMPFAIL), so the fetcher keeps the message.
"""

import argparse
import imaplib
import os
import ssl
import sys

EX_TEMPFAIL = 75


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=993)
    ap.add_argument("--user", required=True)
    ap.add_argument("--ca-file", required=True)
    ap.add_argument("--folder", default="INBOX")
    a = ap.parse_args()
    password = os.environ.get("IMAP_MDA_PASSWORD")
    if not password:
        print("imap_append_mda: IMAP_MDA_PASSWORD is not set", file=sys.stderr)
        return EX_TEMPFAIL
    message = sys.stdin.buffer.read()
    ctx = ssl.create_default_context(cafile=a.ca_file)
    try:
        imap = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=ctx, timeout=300)
        try:
            imap.login(a.user, password)
            # imaplib turns bare LF into CRLF for the literal.
            typ, data = imap.append(a.folder, None, None, message)
            if typ != "OK":
                print(f"imap_append_mda: APPEND refused: {data!r}", file=sys.stderr)
                return EX_TEMPFAIL
        finally:
            try:
                imap.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
    except (imaplib.IMAP4.error, OSError) as e:
        print(f"imap_append_mda: {type(e).__name__}: {e}", file=sys.stderr)
        return EX_TEMPFAIL
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The private Dovecot for tests and benchmarks: reads a popwire-fixture env file, starts a
fixture when none is given, and seeds mailboxes (see tests/dovecot/README.md)."""

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import popwire

ROOT = Path(__file__).resolve().parents[2]
_users = itertools.count()


def read_env(path: Path) -> Dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, _, value = line.partition("=")
        env[key.replace("POPWIRE_DOVECOT_", "")] = value
    return env


class Dovecot:
    """The private Dovecot: addresses, the CA, and mailbox seeding (see tests/dovecot/README.md)."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.env = env
        self.host = env["HOST"]
        self.plain_port = int(env["PLAIN_PORT"])
        self.tls_port = int(env["TLS_PORT"])
        self.ca_file = env["CA_FILE"]
        self.ca_dir = env["CA_DIR"]
        self.password = env["PASSWORD"]
        self.home = Path(env["HOME"])
        self.mail_uid = int(env.get("MAIL_UID") or -1)
        self.mail_gid = int(env.get("MAIL_GID") or -1)
        self._serial = 0

    def new_user(self, prefix: str = "py") -> str:
        """A user name no other test uses, with an empty Maildir."""
        user = f"py-{prefix}-{os.getpid()}-{next(_users)}-{int(time.time() * 1000) % 100000}"
        self._maildir(user)
        return user

    def _maildir(self, user: str) -> Path:
        md = self.home / user / "Maildir"
        for d in ("cur", "new", "tmp"):
            (md / d).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0 and self.mail_uid >= 0:
            for p in (self.home / user, md, md / "cur", md / "new", md / "tmp"):
                os.chown(p, self.mail_uid, self.mail_gid)
        return md

    def _name(self, n: int, size: int, wire: int) -> str:
        us = max(time.time_ns() // 1000, self._serial + 1)
        self._serial = us
        return f"{us // 10**6}.M{us % 10**6}P{os.getpid()}Q{n}.py,S={size},W={wire}"

    def seed(self, user: str, messages: List[bytes]) -> List[str]:
        """Stores messages in the user's Maildir, in POP3 order; returns their UIDLs."""
        md = self._maildir(user)
        names = []
        for n, msg in enumerate(messages):
            bare_lf = msg.count(b"\n") - msg.count(b"\r\n")
            name = self._name(n, len(msg), len(msg) + bare_lf)
            tmp = md / "tmp" / name
            tmp.write_bytes(msg)
            os.chmod(tmp, 0o644)
            os.rename(tmp, md / "new" / name)
            names.append(name)
        return names

    def seed_large(self, user: str, size: int) -> Tuple[str, int]:
        """One message of about ``size`` bytes (CRLF lines), written in pieces without holding
        it in memory; returns its UIDL and its exact size."""
        md = self._maildir(user)
        head = b"Subject: large\r\n\r\n"
        line = b"0123456789" * 7 + b"\r\n"
        count = (size - len(head)) // len(line)
        actual = len(head) + count * len(line)
        name = self._name(0, actual, actual)
        tmp = md / "tmp" / name
        block = line * 16384
        per_block = 16384
        with open(tmp, "wb") as f:
            f.write(head)
            left = count
            while left > 0:
                n = min(per_block, left)
                f.write(block if n == per_block else line * n)
                left -= n
        os.chmod(tmp, 0o644)
        os.rename(tmp, md / "new" / name)
        return name, actual

    def server_messages(self, user: str) -> List[str]:
        """UIDLs still on the server (files in new/ and cur/)."""
        md = self.home / user / "Maildir"
        names = [p.name.split(":")[0] for d in ("new", "cur") for p in (md / d).iterdir()]
        return sorted(names)

    def client(self, security: str = "tls", **options: object) -> popwire.Client:
        port = self.tls_port if security == "tls" else self.plain_port
        return popwire.Client(self.host, port, security=security, ca_file=self.ca_file, **options)


def start_fixture() -> Iterator[Optional[Dovecot]]:
    if not shutil.which("cargo") or not (shutil.which("dovecot") or Path("/usr/sbin/dovecot").exists()):
        yield None
        return
    directory = tempfile.mkdtemp(prefix="pwpy", dir="/tmp")
    cmd = ["cargo", "run", "-q", "-p", "popwire-tests", "--bin", "popwire-fixture", "--"]
    started = subprocess.run(cmd + ["start", "--dir", directory], cwd=ROOT, capture_output=True, text=True)
    if started.returncode != 0:
        print(started.stdout, started.stderr)
        yield None
        return
    try:
        yield Dovecot(read_env(Path(directory) / "env"))
    finally:
        subprocess.run(cmd + ["stop", "--dir", directory], cwd=ROOT, capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)




def from_env_or_start() -> Iterator[Optional[Dovecot]]:
    """The instance named by $POPWIRE_DOVECOT, else a fresh fixture (stopped afterwards)."""
    env_file = os.environ.get("POPWIRE_DOVECOT")
    if env_file:
        yield Dovecot(read_env(Path(env_file)))
        return
    yield from start_fixture()

#!/usr/bin/env python3
"""The end-to-end benchmark suite (run it through bench/run.sh, which installs and builds first).

    suite.py [--runs N] [--quick] [--clients a,b] [--out CSV] [SCENARIO-FILTER...]

For every scenario and client: one warm-up, then N measured runs. Every run gets a new
Dovecot user with a freshly seeded mailbox (hard links to a pristine, deterministic copy made
by mailgen.py) and a fresh destination; clients delete what they fetch. The client runs under
GNU time (peak RSS of the client's process tree, %M); wall time is taken around it with
perf_counter, CPU (user + sys of the client and its children) from wait4. Afterwards the run is
checked: exit status 0, the server mailbox empty, and the sorted SHA-256 digests of the stored
messages (after removing exactly the header each peer is known to add) equal to those of the
seeded messages. A failed check is recorded in the CSV and makes the suite exit non-zero.

SCENARIO-FILTERs are shell globs over scenario names (e.g. 'small-*' '*-rtt10'); clients:
floor, popwire, mpop, fetchmail, getmail, poplib.
"""

import argparse
import csv
import ctypes
import datetime
import fnmatch
import hashlib
import json
import os
import platform
import pwd
import select
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import mailgen  # noqa: E402

WORK = os.environ.get("POPWIRE_BENCH_WORK", "/dev/shm/popwire-bench")   # tmpfs
DISK = os.environ.get("POPWIRE_BENCH_DISK", "/var/tmp/popwire-bench")   # real disk
NS_SRV, NS_CLI = "pwb-srv", "pwb-cli"
DEV_SRV, DEV_CLI = "pwb-s", "pwb-c"
ADDR_SRV, ADDR_CLI = "198.18.0.1", "198.18.0.2"  # RFC 2544 benchmarking range, own namespaces only
TUN_MTU = 65000
ONE_WAY_DELAY_MS = 5.0
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TIMEOUT_S = 900

MAILBOXES = {  # name: (count, size in bytes, LF)
    "small": (1000, 5 * 1024),
    "large": (100, 1024 * 1024),
    "huge": (1, 200 * 1024 * 1024),
}
CLIENTS = ["floor", "popwire", "mpop", "fetchmail", "getmail", "poplib"]


class Scenario:
    def __init__(self, name, mailbox, security, dest, net="loopback", warm=None, clients=None,
                 skip=None):
        self.name, self.mailbox, self.security, self.dest, self.net = (
            name, mailbox, security, dest, net)
        # The warm-up fetches a tenth of the mailbox (at least one message): enough to load
        # binaries and libraries, start Dovecot's login and auth processes and fill its caches.
        self.warm = warm or (mailbox, max(1, MAILBOXES[mailbox][0] // 10))  # (mailbox, count)
        self.clients = clients or CLIENTS
        self.skip = dict(skip or {})  # client -> reason

    @property
    def fsync(self):
        return self.dest == "disk"


NO_STLS = {"getmail": "getmail6 6.18 has no STLS for POP3 (only plain and POP3-over-TLS retrievers)"}


def scenarios():
    out = []
    for mb in ("small", "large"):
        for sec in ("plain", "stls", "tls"):
            out.append(Scenario(f"{mb}-{sec}-tmpfs", mb, sec, "tmpfs",
                                skip=NO_STLS if sec == "stls" else None))
    for mb in ("small", "large"):
        out.append(Scenario(f"{mb}-plain-disk", mb, "plain", "disk"))
    out.append(Scenario("huge-tls-tmpfs", "huge", "tls", "tmpfs", warm=("large", 10)))
    out.append(Scenario("small-plain-rtt10", "small", "plain", "tmpfs", net="rtt"))
    return out


# ---------------------------------------------------------------------------------------------
# helpers


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, check=True, **kw):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {cmd}\n{r.stdout}{r.stderr}")
    return r.stdout.strip()


def read_env(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = v
    return env


def rmtree(p):
    shutil.rmtree(p, ignore_errors=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


# ---------------------------------------------------------------------------------------------
# the server(s) and the delay line


class Servers:
    def __init__(self, fixture):
        self.fixture = fixture
        self.envs = {}
        self.netns_up = False
        self.delay_proc = None
        self.echo_proc = None
        self.delay_stats = None
        self.probe = None

    def start_loopback(self):
        d = os.path.join(WORK, "dovecot")
        if os.path.exists(os.path.join(d, "env")):  # left by an interrupted run
            sh([self.fixture, "stop", "--dir", d], check=False)
        sh([self.fixture, "start", "--dir", d])
        self.envs["loopback"] = read_env(os.path.join(d, "env"))
        self.envs["loopback"]["CONNECT"] = "127.0.0.1"

    def start_rtt(self):
        """Two namespaces joined by the delay line; a Dovecot in the server namespace."""
        self.stop_rtt()  # leftovers of an interrupted run
        sh(["ip", "netns", "add", NS_SRV])
        sh(["ip", "netns", "add", NS_CLI])
        self.netns_up = True
        for ns in (NS_SRV, NS_CLI):
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        ready = os.path.join(WORK, "delayline.ready")
        self.delay_stats = os.path.join(WORK, "delayline.stats")
        for p in (ready, self.delay_stats):
            if os.path.exists(p):
                os.unlink(p)
        self.delay_proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "delayline.py"), "run", "--dev-a", DEV_SRV, "--dev-b", DEV_CLI,
             "--delay-ms", str(ONE_WAY_DELAY_MS), "--ready", ready, "--stats", self.delay_stats])
        deadline = time.time() + 10
        while not os.path.exists(ready):
            if time.time() > deadline or self.delay_proc.poll() is not None:
                raise RuntimeError("delay line did not start")
            time.sleep(0.02)
        for ns, dev, addr, peer in ((NS_SRV, DEV_SRV, ADDR_SRV, ADDR_CLI),
                                    (NS_CLI, DEV_CLI, ADDR_CLI, ADDR_SRV)):
            sh(["ip", "link", "set", dev, "netns", ns])
            sh(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"])
            sh(["ip", "-n", ns, "addr", "add", addr, "peer", peer, "dev", dev])
            sh(["ip", "-n", ns, "link", "set", dev, "mtu", str(TUN_MTU), "up"])
        # Measure what the delay line does: RTT and bulk throughput through it.
        self.echo_proc = subprocess.Popen(
            ["ip", "netns", "exec", NS_SRV, PYTHON, os.path.join(HERE, "delayline.py"),
             "echo-server", "--host", ADDR_SRV, "--port", "7000"])
        time.sleep(0.3)
        out = sh(["ip", "netns", "exec", NS_CLI, PYTHON, os.path.join(HERE, "delayline.py"),
                  "probe", "--host", ADDR_SRV, "--port", "7000"], timeout=120)
        self.probe = json.loads(out)
        self.echo_proc.terminate()
        self.echo_proc.wait()
        self.echo_proc = None
        log(f"delay line: {self.probe}")
        d = os.path.join(WORK, "dovecot-ns")
        sh(["ip", "netns", "exec", NS_SRV, "env", f"POPWIRE_DOVECOT_LISTEN={ADDR_SRV}",
            self.fixture, "start", "--dir", d])
        self.envs["rtt"] = read_env(os.path.join(d, "env"))
        self.envs["rtt"]["CONNECT"] = ADDR_SRV

    def stop_rtt(self):
        d = os.path.join(WORK, "dovecot-ns")
        if os.path.exists(os.path.join(d, "env")):
            sh([self.fixture, "stop", "--dir", d], check=False)
        for p in (self.echo_proc, self.delay_proc):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.delay_proc = self.echo_proc = None
        for ns in (NS_SRV, NS_CLI):
            if os.path.exists(f"/run/netns/{ns}"):
                sh(["ip", "netns", "del", ns], check=False)
        self.netns_up = False

    def delay_line_cpu(self):
        """User + system CPU seconds the delay line has used so far."""
        fields = open(f"/proc/{self.delay_proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def delay_line_stats(self):
        try:
            return json.load(open(self.delay_stats))
        except (OSError, ValueError, TypeError):
            return None

    def stop(self):
        self.stop_rtt()
        d = os.path.join(WORK, "dovecot")
        if os.path.exists(os.path.join(d, "env")):
            sh([self.fixture, "stop", "--dir", d], check=False)


# ---------------------------------------------------------------------------------------------
# mailboxes


class Pristine:
    """Generated mailboxes on the Dovecot homes' file system, for hard-link seeding."""

    def __init__(self):
        self.dir = os.path.join(WORK, "pristine")
        self.names = {}
        self.digests = {}

    def ensure(self, mailbox):
        if mailbox in self.names:
            return
        count, size = MAILBOXES[mailbox]
        d = os.path.join(self.dir, mailbox)
        manifest = os.path.join(d, "MANIFEST")
        if not os.path.exists(manifest):
            rmtree(d)
            t = time.time()
            mailgen.generate(d, mailbox, count, size)
            log(f"generated mailbox {mailbox} ({count} x {size} B) in {time.time() - t:.1f} s")
        entries = [line.split() for line in open(manifest)]
        self.names[mailbox] = [n for _, n in entries]
        self.digests[mailbox] = [h for h, _ in entries]

    def seed(self, env, user, mailbox, count):
        home = env["POPWIRE_DOVECOT_HOME"]
        uid, gid = int(env["POPWIRE_DOVECOT_MAIL_UID"]), int(env["POPWIRE_DOVECOT_MAIL_GID"])
        md = os.path.join(home, user, "Maildir")
        for sub in ("", "cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        for p in (os.path.dirname(md), md, *(os.path.join(md, s) for s in ("cur", "new", "tmp"))):
            os.chown(p, uid, gid)
        src = os.path.join(self.dir, mailbox)
        names = self.names[mailbox][:count]
        for n in names:
            os.link(os.path.join(src, n), os.path.join(md, "new", n))
        total = sum(MAILBOXES[mailbox][1] for _ in names)
        return sorted(self.digests[mailbox][:count]), total


# ---------------------------------------------------------------------------------------------
# clients


class Run:
    """One client run: its directories, user and expected result."""

    def __init__(self, scen, client, env, user, dest_root, count):
        self.scen, self.client, self.env, self.user, self.count = scen, client, env, user, count
        self.dir = os.path.join(dest_root, user)
        self.md = os.path.join(self.dir, "md")
        self.state = os.path.join(self.dir, "state")
        rmtree(self.dir)
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.md, sub))
        os.makedirs(self.state)

    @property
    def host(self):
        return self.env["CONNECT"]

    @property
    def port(self):
        key = "TLS_PORT" if self.scen.security == "tls" else "PLAIN_PORT"
        return int(self.env[f"POPWIRE_DOVECOT_{key}"])

    @property
    def password(self):
        return self.env["POPWIRE_DOVECOT_PASSWORD"]

    @property
    def ca(self):
        return self.env["POPWIRE_DOVECOT_CA_FILE"]

    def write(self, name, text, mode=0o600):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p


def cmd_floor(r, bins):
    sec = {"plain": "none", "stls": "starttls", "tls": "tls"}[r.scen.security]
    return [bins["floor"], "--host", r.host, "--port", str(r.port), "--user", r.user,
            "--pass", r.password, "--count", str(r.count), "--security", sec,
            "--ca-file", r.ca, "--server-name", "127.0.0.1" if r.host == "127.0.0.1" else "localhost",
            "--dele"]


def cmd_popwire(r, bins):
    sec = {"plain": "none", "stls": "starttls", "tls": "tls"}[r.scen.security]
    cfg = r.write("config.toml", f"""[accounts.b]
email = "{r.user}@example.com"
username = "{r.user}"
server = "{r.host}"
port = {r.port}
security = "{sec}"
ca_file = "{r.ca}"
password = "{r.password}"
auth = "user"
maildir = "{r.md}"
keep = false
""")
    return [bins["popwire"], "fetch", "--config", cfg, "--state-dir", r.state, "-q"]


def cmd_mpop(r, bins):
    tls = "off" if r.scen.security == "plain" else "on"
    starttls = "on" if r.scen.security == "stls" else "off"
    rc = r.write("mpoprc", f"""account b
host {r.host}
port {r.port}
tls {tls}
tls_starttls {starttls}
tls_trust_file {r.ca}
auth user
user {r.user}
password {r.password}
delivery maildir {r.md}
keep off
received_header off
uidls_file {r.state}/uidls
""")
    return ["mpop", "-C", rc, "-q", "b"]


def cmd_fetchmail(r, bins):
    tls = {"plain": "sslproto ''",
           "stls": f"sslproto 'TLS1.2+' sslcertck sslcertfile {r.ca} sslcommonname localhost",
           "tls": f"ssl sslcertck sslcertfile {r.ca} sslcommonname localhost"}[r.scen.security]
    # (fetchmail checks only DNS names, so it verifies the certificate's name "localhost"
    # while connecting to 127.0.0.1 like the other clients.)
    procmailrc = r.write("procmailrc", f"MAILDIR={r.md}/\nDEFAULT={r.md}/\nLOGFILE=/dev/null\n")
    rc = r.write("fetchmailrc", f"""set no syslog
set invisible
poll {r.host} port {r.port} proto pop3 auth password timeout 300
  user "{r.user}" password "{r.password}" is root here
  fetchall nokeep norewrite {tls}
  mda "/usr/bin/procmail -m {procmailrc}"
""")
    return ["fetchmail", "-f", rc, "--idfile", os.path.join(r.state, "fetchids"),
            "--pidfile", os.path.join(r.state, "pid"), "-s"]


def cmd_getmail(r, bins):
    if r.scen.security == "tls":
        retr = f"type = SimplePOP3SSLRetriever\nca_certs = {r.ca}\n"
    else:
        retr = "type = SimplePOP3Retriever\n"
    # getmail refuses to deliver as root: its delivery child runs as nobody.
    nobody = pwd.getpwnam("nobody")
    if os.geteuid() == 0:
        for root, dirs, _ in os.walk(r.md):
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
        user_line = "user = nobody\n"
    else:
        user_line = ""
    r.write(os.path.join("state", "getmailrc"), f"""[retriever]
{retr}server = {r.host}
port = {r.port}
username = {r.user}
password = {r.password}

[destination]
type = Maildir
path = {r.md}/
{user_line}
[options]
delete = true
read_all = true
delivered_to = false
received = false
verbose = 0
""")
    return [PYTHON, os.path.join(HERE, "getmail_run.py"), "--getmaildir", r.state,
            "--rcfile", "getmailrc"]


def cmd_poplib(r, bins):
    sec = {"plain": "none", "stls": "starttls", "tls": "tls"}[r.scen.security]
    c = [PYTHON, os.path.join(HERE, "poplib_fetch.py"), "--host", r.host, "--port", str(r.port),
         "--user", r.user, "--password", r.password, "--maildir", r.md, "--security", sec,
         "--ca-file", r.ca]
    if r.scen.fsync:
        c.append("--fsync")
    return c


COMMANDS = {"floor": cmd_floor, "popwire": cmd_popwire, "mpop": cmd_mpop,
            "fetchmail": cmd_fetchmail, "getmail": cmd_getmail, "poplib": cmd_poplib}

# Exactly what each peer adds at the top of a stored message (it is removed before hashing).
ADDED_PREFIX = {"getmail": b"Return-Path: <unknown>\n"}

# How each client makes a delivery durable (for the report).
DURABILITY = {
    "popwire": "fdatasync of every message file (as written where syncs are free, else from 8 "
               "threads per batch of 1024), fsync of tmp/, journal fsync, renames, fsync of new/",
    "mpop": "fsync of each message file (then link + unlink into new/)",
    "fetchmail": "procmail (the MDA) fsyncs each message file, then link + unlink into new/",
    "getmail": "fsync of each message file (always, also on tmpfs)",
    "poplib": "with --fsync (disk scenarios): fsync of each file, fsync of new/ before QUIT",
    "floor": "stores nothing",
}


def spawn_measured(argv, out_path, env, netns=None):
    """Runs argv under GNU time; returns (rc, wall_s, cpu_s, maxrss_kib)."""
    time_out = out_path + ".time"
    full = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", time_out] + argv
    fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
          (os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
          (os.POSIX_SPAWN_DUP2, 1, 2)]
    nsfd = None
    if netns:
        # Enter the client namespace for the spawn only: the child inherits it.
        nsfd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        home_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        if _libc.setns(nsfd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawnp(full[0], full, env, file_actions=fa)
    finally:
        if netns:
            if _libc.setns(home_ns, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
            os.close(home_ns)
            os.close(nsfd)
    pidfd = os.pidfd_open(pid)
    p = select.poll()
    p.register(pidfd, select.POLLIN)
    if not p.poll(TIMEOUT_S * 1000):
        os.kill(pid, signal.SIGKILL)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    os.close(pidfd)
    rc = os.waitstatus_to_exitcode(status)
    maxrss = 0
    try:
        last = open(time_out).read().split("\n")
        fields = [ln for ln in last if ln.strip()][-1].split()
        maxrss = int(fields[3])
        # GNU time reports a killed or failed child's status on an extra line; its exit
        # status is the child's.
    except (OSError, IndexError, ValueError):
        pass
    return rc, wall, ru.ru_utime + ru.ru_stime, ru.ru_utime, ru.ru_stime, maxrss


def stored_digests(r):
    prefix = ADDED_PREFIX.get(r.client)
    out = []
    bad_prefix = 0
    for sub in ("new", "cur"):
        d = os.path.join(r.md, sub)
        for name in os.listdir(d):
            path = os.path.join(d, name)
            if prefix is None:
                out.append(sha256_file(path))
                continue
            with open(path, "rb") as f:
                data = f.read()
            if data.startswith(prefix):
                data = data[len(prefix):]
            else:
                bad_prefix += 1
            out.append(hashlib.sha256(data).hexdigest())
    return sorted(out), bad_prefix


def verify(r, rc, expected, output):
    problems = []
    if rc != 0:
        problems.append(f"exit status {rc}")
    home = r.env["POPWIRE_DOVECOT_HOME"]
    left = sum(len(os.listdir(os.path.join(home, r.user, "Maildir", s))) for s in ("new", "cur"))
    if left:
        problems.append(f"{left} messages left on the server")
    if r.client == "floor":
        got = None
        for word in output.split():
            if word.startswith("responses="):
                got = int(word.split("=", 1)[1])
        if got != r.count:
            problems.append(f"floor counted {got} responses, expected {r.count}")
    else:
        digests, bad_prefix = stored_digests(r)
        if bad_prefix:
            problems.append(f"{bad_prefix} messages without the expected added header")
        if digests != expected:
            missing = len(set(expected) - set(digests))
            extra = len(set(digests) - set(expected))
            problems.append(f"content mismatch: stored {len(digests)} of {len(expected)}, "
                            f"{missing} seeded messages not found byte-exact, {extra} unexpected")
    return "ok" if not problems else "FAIL: " + "; ".join(problems)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="1 measured run, loopback tmpfs scenarios of the small and large mailboxes")
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--out", help="CSV to write (default bench/results/runs.csv, "
                                  "or bench/results/quick.csv with --quick)")
    ap.add_argument("--list", action="store_true", help="list scenarios and exit")
    ap.add_argument("--keep", action="store_true",
                    help=f"keep the run directories of failed runs and the Dovecot logs in {WORK}")
    ap.add_argument("filters", nargs="*")
    a = ap.parse_args()

    all_scen = scenarios()
    if a.list:
        for s in all_scen:
            print(s.name)
        return 0
    sel = all_scen
    if a.quick:
        a.runs = 1
        sel = [s for s in sel if s.name in ("small-plain-tmpfs", "small-tls-tmpfs", "large-plain-tmpfs",
                                            "small-plain-disk")]
    if a.filters:
        sel = [s for s in sel if any(fnmatch.fnmatch(s.name, f) for f in a.filters)]
    if not sel:
        log("no scenario matches")
        return 2
    clients = [c.strip() for c in a.clients.split(",") if c.strip()]
    for c in clients:
        if c not in CLIENTS:
            log(f"unknown client {c} (known: {', '.join(CLIENTS)})")
            return 2
    out = a.out or os.path.join(HERE, "results", "quick.csv" if a.quick else "runs.csv")
    if any(s.net == "rtt" for s in sel) and os.geteuid() != 0:
        log("the rtt scenario needs root (network namespaces, TUN): skipped")
        sel = [s for s in sel if s.net != "rtt"]

    os.makedirs(WORK, exist_ok=True)
    os.makedirs(DISK, exist_ok=True)
    # Run a private copy of the binaries: another build may replace target/release under us.
    bins = {}
    bindir = os.path.join(WORK, "bin")
    os.makedirs(bindir, exist_ok=True)
    for name, src in (("popwire", "popwire"), ("floor", "popwire-floor"), ("fixture", "popwire-fixture")):
        dst = os.path.join(bindir, src)
        shutil.copy2(os.path.join(ROOT, "target", "release", src), dst)
        bins[name] = dst

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = {
        "started": started,
        "runs": a.runs,
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                         if ln.startswith("model name")), "?"),
            "kernel": platform.release(),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "tmpfs": WORK,
            "disk": DISK + " (" + sh(["findmnt", "-no", "FSTYPE,SOURCE,OPTIONS", "-T", DISK], check=False) + ")",
        },
        "versions": {
            "popwire": sh([bins["popwire"], "--version"], check=False),
            "popwire_git": sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=False)
            + (" (+ uncommitted changes in core/)"
               if sh(["git", "-C", ROOT, "status", "--porcelain", "--", "core"], check=False) else ""),
            "popwire_sha256": sha256_file(bins["popwire"])[:16],
            "mpop": sh("mpop --version | head -1", check=False),
            "fetchmail": sh("fetchmail --version 2>/dev/null | grep -m1 release", check=False),
            "procmail": sh("dpkg-query -W -f='${Version}' procmail", check=False),
            "getmail": sh("getmail --version", check=False),
            "python": sh([PYTHON, "--version"], check=False),
            "dovecot": sh("dovecot --version", check=False),
        },
        "durability": DURABILITY,
        "skipped": {},
    }
    log(f"popwire {meta['versions']['popwire']} ({meta['versions']['popwire_git']}), "
        f"{len(sel)} scenarios, {a.runs} runs each, clients: {', '.join(clients)}")

    servers = Servers(bins["fixture"])

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    rows = []
    failures = 0
    t_start = time.time()
    pristine = Pristine()
    try:
        servers.start_loopback()
        if any(s.net == "rtt" for s in sel):
            servers.start_rtt()
            meta["delay_line"] = {"one_way_ms": ONE_WAY_DELAY_MS, "mtu": TUN_MTU, "probe": servers.probe}
        env_base = dict(os.environ)
        env_base.pop("POPWIRE_DOVECOT", None)
        seq = 0
        for scen in sel:
            t_scen = time.time()
            dl_cpu0 = servers.delay_line_cpu() if scen.net == "rtt" else None
            env = servers.envs[scen.net]
            pristine.ensure(scen.mailbox)
            pristine.ensure(scen.warm[0])
            dest_root = os.path.join(DISK if scen.dest == "disk" else WORK, "dst")
            os.makedirs(dest_root, exist_ok=True)
            todo = []
            for c in clients:
                if c not in scen.clients:
                    continue
                if c in scen.skip:
                    meta["skipped"][f"{scen.name}/{c}"] = scen.skip[c]
                    log(f"{scen.name} {c}: skipped: {scen.skip[c]}")
                    continue
                todo.append(c)
            for rnd in range(a.runs + 1):
                phase = "warm" if rnd == 0 else str(rnd)
                order = todo[rnd % len(todo):] + todo[:rnd % len(todo)]  # rotate: nobody always first
                for client in order:
                    seq += 1
                    user = f"r{seq}-{client}"
                    mailbox, count = (scen.warm if phase == "warm" else (scen.mailbox, MAILBOXES[scen.mailbox][0]))
                    expected, nbytes = pristine.seed(env, user, mailbox, count)
                    r = Run(scen, client, env, user, dest_root, count)
                    argv = COMMANDS[client](r, bins)
                    cenv = dict(env_base, HOME=r.dir)
                    outp = os.path.join(r.dir, "output")
                    if scen.dest == "disk":
                        # Start from a quiet disk: the previous run's deleted files (discards on
                        # this ext4) and dirty pages would otherwise land in this client's fsyncs.
                        os.sync()
                    rc, wall, cpu, utime, stime, rss = spawn_measured(
                        argv, outp, cenv, netns=NS_CLI if scen.net == "rtt" else None)
                    output = open(outp, errors="replace").read()
                    check = verify(r, rc, expected, output)
                    if check != "ok":
                        failures += 1
                        log(f"!! {scen.name} {client} {phase}: {check}\n   output: {output[-800:]}")
                    row = {"scenario": scen.name, "client": client, "run": phase,
                           "messages": count, "bytes": nbytes,
                           "wall_s": f"{wall:.4f}", "cpu_s": f"{cpu:.4f}", "user_s": f"{utime:.4f}",
                           "sys_s": f"{stime:.4f}", "maxrss_kib": rss, "check": check}
                    rows.append(row)
                    log(f"{scen.name:20} {client:9} {phase:4} wall {wall:7.3f} s  cpu {cpu:6.3f} s  "
                        f"rss {rss / 1024:6.1f} MiB  {check}")
                    if check == "ok" or not a.keep:
                        rmtree(r.dir)
                    rmtree(os.path.join(env["POPWIRE_DOVECOT_HOME"], user))
            if dl_cpu0 is not None:
                # CPU the delay line used while this scenario ran, against the scenario's wall time.
                dl = meta.setdefault("delay_line", {})
                dl["scenario_cpu_s"] = round(servers.delay_line_cpu() - dl_cpu0, 3)
                dl["scenario_wall_s"] = round(time.time() - t_scen, 1)
            log(f"-- {scen.name}: {time.time() - t_scen:.0f} s")
        if servers.delay_proc:
            servers.stop_rtt()
            meta.setdefault("delay_line", {})["stats"] = servers.delay_line_stats()
    finally:
        servers.stop()
        rmtree(os.path.join(DISK, "dst"))
        try:
            os.rmdir(DISK)
        except OSError:
            pass
        if failures or a.keep:  # keep the Dovecot logs (and with --keep, failed runs' dirs)
            rmtree(os.path.join(WORK, "pristine"))
            log(f"left {WORK} for inspection")
        else:
            rmtree(WORK)
        meta["duration_s"] = round(time.time() - t_start)
        meta["failures"] = failures
        if rows:
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
            with open(os.path.splitext(out)[0] + ".meta.json", "w") as f:
                json.dump(meta, f, indent=1)
            log(f"wrote {out} ({len(rows)} runs, {failures} failed checks) in {meta['duration_s']} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

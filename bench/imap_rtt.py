#!/usr/bin/env python3
"""POP -> IMAP at 10 ms RTT and on loopback: popwire against fetchmail + an IMAP-appending MDA.

    imap_rtt.py [--runs 3] [--count 1000] [--out CSV]     (run it through bench/imap-rtt.sh)
                [--scenarios loopback,rtt10] [--clients popwire,fetchmail]
                [--capability "IMAP4rev1 ... LITERAL-"] [--base-popwire BIN]

--capability makes Dovecot announce that list after login instead of its own (imap_capability):
Gmail's LITERAL- without LITERAL+, for example. --base-popwire adds the client `popwire-base`,
the same config run by another build, to compare two versions side by side in one run.

One Dovecot serves POP3 and IMAP inside a server network namespace; bench/delayline.py joins
it to a client namespace with 5 ms each way (suite.py's code, imported, with this script's own
namespace and device names so it never collides with a running bench/run.sh). The RTT is
measured with delayline.py's probe before anything runs. Scenarios:

* loopback: the clients run in the server namespace and connect to 127.0.0.1 (no delay line);
* rtt10: the clients run in the client namespace; there `localhost` resolves to the server's
  address through the delay line (/etc/netns/<ns>/hosts, which `ip netns exec` mounts), so
  both sides verify the test certificate's name `localhost` in both scenarios.

Clients, both over TLS on both sides (pop3s in, imaps out), deleting what they deliver:

* popwire: `popwire fetch` with an `[accounts.b.imap]` destination (release build);
* fetchmail: fetchmail 6 (`fetchall nokeep`, `set invisible`, `norewrite`) with
  `mda "python3 bench/imap_append_mda.py ..."`: per message one process doing connect, TLS,
  LOGIN, APPEND, LOGOUT with the standard library's imaplib.

Per scenario and client: a warm-up (a tenth of the mailbox), then N measured rounds, the order
of the clients rotating each round. Every run has a fresh POP user seeded with the deterministic
1000 x 5 KB mailbox (suite.py's `Pristine`: hard links) and a fresh IMAP user. Wall time is
taken around the client; CPU (user + sys of the client and the children it waited for, e.g.
the MDA processes) and peak RSS from GNU time. Each run is checked: exit status 0, the POP
mailbox empty, and the sorted SHA-256 digests of the IMAP user's stored messages (CRLF -> LF)
equal to those of the seeded messages. A failed check makes the script exit non-zero.
"""

import argparse
import csv
import datetime
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("POPWIRE_BENCH_WORK", "/dev/shm/popwire-imaprtt")
sys.path.insert(0, HERE)
import suite  # noqa: E402

# Own namespaces and devices (suite.py reads these module globals when it runs).
suite.NS_SRV, suite.NS_CLI = "pwi-srv", "pwi-cli"
suite.DEV_SRV, suite.DEV_CLI = "pwi-s", "pwi-c"
WORK = suite.WORK
IMAP_PORT, IMAPS_PORT = 1143, 1993  # inside the private server namespace: nothing else there
HOSTS_DIR = f"/etc/netns/{suite.NS_CLI}"
PYTHON = suite.PYTHON
TIMEOUT_S = 1800
CLIENTS = ["popwire", "fetchmail"]
log, sh, read_env, rmtree = suite.log, suite.sh, suite.read_env, suite.rmtree


def add_imap(env, capability=None):
    """Restarts the fixture's Dovecot with IMAP added (what tests/src/dovecot_imap.rs does)."""
    d = env["POPWIRE_DOVECOT_DIR"]
    env_text = open(os.path.join(d, "env")).read()
    conf_path = os.path.join(d, "dovecot.conf")
    conf = open(conf_path).read()
    if "protocols = pop3\n" not in conf:
        raise RuntimeError("tests/dovecot/dovecot.conf.in changed: no `protocols = pop3` line")
    conf = conf.replace("protocols = pop3\n", "protocols = pop3 imap\n", 1)
    # One login process per connection, as the tests run it (Dovecot's default, too).
    conf += (f"\nservice imap-login {{\n  chroot =\n  service_count = 1\n"
             f"  inet_listener imap {{\n    port = {IMAP_PORT}\n  }}\n"
             f"  inet_listener imaps {{\n    port = {IMAPS_PORT}\n    ssl = yes\n  }}\n}}\n"
             f"service imap {{\n  process_limit = 1000\n}}\n")
    if capability:
        conf += f"protocol imap {{\n  imap_capability = {capability}\n}}\n"
    sh([SERVERS.fixture, "stop", "--dir", d])
    with open(conf_path, "w") as f:
        f.write(conf)
    # Dovecot daemonizes; its output goes to a file, since a pipe held open by the daemon
    # would never reach EOF.
    with open(os.path.join(d, "dovecot.stderr"), "ab") as out:
        subprocess.run(["ip", "netns", "exec", suite.NS_SRV, "/usr/sbin/dovecot", "-c", conf_path],
                       stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True, timeout=60)
    with open(os.path.join(d, "env"), "w") as f:  # `popwire-fixture stop` finds it again
        f.write(env_text)
    probe = (f"import socket,ssl,sys,time\n"
             f"end=time.time()+20\n"
             f"for host in ('127.0.0.1','{suite.ADDR_SRV}'):\n"
             f"  for port in ({env['POPWIRE_DOVECOT_PLAIN_PORT']},{IMAP_PORT}):\n"
             f"    while True:\n"
             f"      try:\n"
             f"        s=socket.create_connection((host,port),2); l=s.makefile('rb').readline()\n"
             f"        assert l.startswith((b'+OK',b'* OK')), l; s.close(); break\n"
             f"      except Exception as e:\n"
             f"        if time.time()>end: sys.exit(f'{{host}}:{{port}}: {{e}}')\n"
             f"        time.sleep(0.05)\n")
    sh(["ip", "netns", "exec", suite.NS_SRV, PYTHON, "-c", probe], timeout=60)


class Run:
    def __init__(self, scen, client, env, seq):
        self.scen, self.client, self.env = scen, client, env
        self.user = f"r{seq}-{client}"
        self.dst = f"{self.user}-in"
        self.dir = os.path.join(WORK, "dst", self.user)
        self.state = os.path.join(self.dir, "state")
        rmtree(self.dir)
        os.makedirs(self.state)

    def write(self, name, text):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o600)
        return p

    def home(self, user):
        return os.path.join(self.env["POPWIRE_DOVECOT_HOME"], user, "Maildir")


def cmd_popwire(r, bins):
    e = r.env
    cfg = r.write("config.toml", f"""[accounts.b]
email = "{r.user}@example.com"
username = "{r.user}"
server = "localhost"
port = {e['POPWIRE_DOVECOT_TLS_PORT']}
security = "tls"
ca_file = "{e['POPWIRE_DOVECOT_CA_FILE']}"
password = "{e['POPWIRE_DOVECOT_PASSWORD']}"
auth = "user"
keep = false

[accounts.b.imap]
server = "localhost"
port = {IMAPS_PORT}
username = "{r.dst}"
password = "{e['POPWIRE_DOVECOT_PASSWORD']}"
ca_file = "{e['POPWIRE_DOVECOT_CA_FILE']}"
""")
    return [bins[r.client], "fetch", "--config", cfg, "--state-dir", r.state, "-q"], {}


def cmd_fetchmail(r, bins):
    e = r.env
    ca = e["POPWIRE_DOVECOT_CA_FILE"]
    mda = (f"{PYTHON} {os.path.join(HERE, 'imap_append_mda.py')} --host localhost "
           f"--port {IMAPS_PORT} --user {r.dst} --ca-file {ca}")
    rc = r.write("fetchmailrc", f"""set no syslog
set invisible
poll localhost port {e['POPWIRE_DOVECOT_TLS_PORT']} proto pop3 auth password timeout 300
  user "{r.user}" password "{e['POPWIRE_DOVECOT_PASSWORD']}" is root here
  fetchall nokeep norewrite ssl sslcertck sslcertfile {ca} sslcommonname localhost
  mda "{mda}"
""")
    argv = ["fetchmail", "-f", rc, "--idfile", os.path.join(r.state, "fetchids"),
            "--pidfile", os.path.join(r.state, "pid"), "-s"]
    return argv, {"IMAP_MDA_PASSWORD": e["POPWIRE_DOVECOT_PASSWORD"]}


COMMANDS = {"popwire": cmd_popwire, "popwire-base": cmd_popwire, "fetchmail": cmd_fetchmail}


def spawn_measured(ns, argv, out_path, env):
    """Runs argv in namespace ns under GNU time: (rc, wall_s, user_s, sys_s, maxrss_kib)."""
    tf = out_path + ".time"
    full = ["ip", "netns", "exec", ns, "/usr/bin/time", "-f", "%e %U %S %M", "-o", tf] + argv
    with open(out_path, "wb") as out:
        t0 = time.perf_counter()
        try:
            p = subprocess.run(full, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                               env=env, timeout=TIMEOUT_S)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = -9
        wall = time.perf_counter() - t0
    user = sys_ = 0.0
    rss = 0
    try:
        # A failed child's status comes on an extra first line.
        fields = [ln for ln in open(tf).read().split("\n") if ln.strip()][-1].split()
        user, sys_, rss = float(fields[1]), float(fields[2]), int(fields[3])
    except (OSError, IndexError, ValueError):
        pass
    return rc, wall, user, sys_, rss


def folder_digests(maildir):
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                out.append(hashlib.sha256(f.read().replace(b"\r\n", b"\n")).hexdigest())
    return sorted(out)


def verify(r, rc, expected):
    problems = []
    if rc != 0:
        problems.append(f"exit status {rc}")
    pop = r.home(r.user)
    left = sum(len(os.listdir(os.path.join(pop, s))) for s in ("new", "cur"))
    if left:
        problems.append(f"{left} messages left on the POP server")
    got = folder_digests(r.home(r.dst))
    if got != expected:
        missing = len(set(expected) - set(got))
        extra = len(got) - (len(expected) - missing)
        problems.append(f"IMAP folder holds {len(got)} messages, {len(expected)} expected: "
                        f"{missing} seeded messages not found byte-exact, {extra} unexpected")
    return "ok" if not problems else "FAIL: " + "; ".join(problems)


def summarize(rows, scenarios):
    """Medians of the measured rounds and the fetchmail/popwire ratios, as Markdown."""
    lines = ["| scenario | client | wall median (s) | min-max (s) | CPU median (s) | peak RSS (MiB) | checks |",
             "|---|---|---:|---:|---:|---:|---|"]
    ratios = {}
    for scen in scenarios:
        med = {}
        for client in CLIENTS:
            rs = [r for r in rows if r["scenario"] == scen and r["client"] == client
                  and r["run"] != "warm"]
            if not rs:
                continue
            walls = [float(r["wall_s"]) for r in rs]
            cpus = [float(r["cpu_s"]) for r in rs]
            rss = max(int(r["maxrss_kib"]) for r in rs) / 1024
            ok = sum(r["check"] == "ok" for r in rs)
            med[client] = (statistics.median(walls), statistics.median(cpus))
            lines.append(f"| {scen} | {client} | {med[client][0]:.2f} | {min(walls):.2f}-{max(walls):.2f} | "
                         f"{med[client][1]:.2f} | {rss:.1f} | {ok}/{len(rs)} ok |")
        if "popwire" in med and "popwire-base" in med:
            base_wall, base_cpu = med["popwire-base"]
            pw_wall, pw_cpu = med["popwire"]
            ratios[f"{scen} base"] = (base_wall / pw_wall if pw_wall else float("inf"),
                                      base_cpu / pw_cpu if pw_cpu else float("inf"))
        if "popwire" in med and "fetchmail" in med:
            pw_wall, pw_cpu = med["popwire"]
            # GNU time counts CPU in hundredths: a tiny smoke run can show 0.
            ratios[scen] = (med["fetchmail"][0] / pw_wall if pw_wall else float("inf"),
                            med["fetchmail"][1] / pw_cpu if pw_cpu else float("inf"))
    lines.append("")
    for scen, (w, c) in ratios.items():
        if scen.endswith(" base"):
            lines.append(f"- {scen[:-5]}: popwire-base/popwire wall {w:.2f}x, CPU {c:.2f}x")
        else:
            lines.append(f"- {scen}: fetchmail/popwire wall {w:.1f}x, CPU {c:.1f}x")
    return "\n".join(lines), ratios


SERVERS = None


def main():
    global SERVERS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=1000, help="messages per run (at most 1000)")
    ap.add_argument("--scenarios", default="loopback,rtt10")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "imap-rtt.csv"))
    ap.add_argument("--clients", default="popwire,fetchmail")
    ap.add_argument("--capability", default=None, help="Dovecot's imap_capability (after login)")
    ap.add_argument("--base-popwire", default=None, help="another popwire build, run as popwire-base")
    a = ap.parse_args()
    global CLIENTS
    CLIENTS = [c.strip() for c in a.clients.split(",") if c.strip()]
    if a.base_popwire and "popwire-base" not in CLIENTS:
        CLIENTS.append("popwire-base")
    unknown = [c for c in CLIENTS if c not in COMMANDS or (c == "popwire-base" and not a.base_popwire)]
    if unknown:
        log(f"unknown clients {unknown} (popwire-base needs --base-popwire)")
        return 2
    if os.geteuid() != 0:
        log("needs root (network namespaces, TUN)")
        return 2
    count = min(a.count, suite.MAILBOXES["small"][0])
    scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    ns_of = {"loopback": suite.NS_SRV, "rtt10": suite.NS_CLI}

    os.makedirs(WORK, exist_ok=True)
    bins = {}
    bindir = os.path.join(WORK, "bin")
    os.makedirs(bindir, exist_ok=True)
    for name, src in (("popwire", "popwire"), ("fixture", "popwire-fixture")):
        dst = os.path.join(bindir, src)
        shutil.copy2(os.path.join(ROOT, "target", "release", src), dst)
        bins[name] = dst
    if a.base_popwire:
        dst = os.path.join(bindir, "popwire-base")
        shutil.copy2(a.base_popwire, dst)
        bins["popwire-base"] = dst

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = {
        "started": started,
        "runs": a.runs,
        "messages": count,
        "message_bytes": suite.MAILBOXES["small"][1],
        "loadavg_before": open("/proc/loadavg").read().split()[:3],
        "nproc": os.cpu_count(),
        "versions": {
            "popwire": sh([bins["popwire"], "--version"], check=False),
            "popwire_git": sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=False),
            "fetchmail": sh("fetchmail --version 2>/dev/null | grep -m1 release", check=False),
            "python": sh([PYTHON, "--version"], check=False),
            "dovecot": sh("dovecot --version", check=False),
        },
        "clients": CLIENTS,
        "imap_capability": a.capability,
        "base_popwire": a.base_popwire and sh([bins.get("popwire-base", a.base_popwire), "--version"], check=False),
        "baseline": "fetchmail (fetchall nokeep, pop3s) with mda bench/imap_append_mda.py "
                    "(python3 imaplib: connect, TLS, LOGIN, APPEND, LOGOUT per message)",
    }

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    SERVERS = suite.Servers(bins["fixture"])
    rows, failures = [], 0
    pristine = suite.Pristine()
    try:
        SERVERS.stop_rtt()  # a killed run's Dovecot and namespaces, then its users' homes
        for stale in ("dovecot-ns", "dst"):
            rmtree(os.path.join(WORK, stale))
        SERVERS.start_rtt()  # namespaces, delay line, RTT probe, Dovecot in the server namespace
        meta["delay_line"] = {"one_way_ms": suite.ONE_WAY_DELAY_MS, "probe": SERVERS.probe}
        env = SERVERS.envs["rtt"]
        add_imap(env, a.capability)
        os.makedirs(HOSTS_DIR, exist_ok=True)
        with open(os.path.join(HOSTS_DIR, "hosts"), "w") as f:
            f.write(f"{suite.ADDR_SRV} localhost\n")
        pristine.ensure("small")
        env_base = {k: v for k, v in os.environ.items() if k != "POPWIRE_DOVECOT"}
        seq = 0
        for scen in scenarios:
            t_scen = time.time()
            dl0 = SERVERS.delay_line_cpu()
            for rnd in range(a.runs + 1):
                phase = "warm" if rnd == 0 else str(rnd)
                n = max(1, count // 10) if phase == "warm" else count
                order = CLIENTS[rnd % len(CLIENTS):] + CLIENTS[:rnd % len(CLIENTS)]
                for client in order:
                    seq += 1
                    r = Run(scen, client, env, seq)
                    expected, nbytes = pristine.seed(env, r.user, "small", n)
                    argv, extra_env = COMMANDS[client](r, bins)
                    cenv = dict(env_base, HOME=r.dir, **extra_env)
                    outp = os.path.join(r.dir, "output")
                    rc, wall, user, sys_, rss = spawn_measured(ns_of[scen], argv, outp, cenv)
                    check = verify(r, rc, expected)
                    if check != "ok":
                        failures += 1
                        output = open(outp, errors="replace").read()
                        log(f"!! {scen} {client} {phase}: {check}\n   output: {output[-800:]}")
                    rows.append({"scenario": scen, "client": client, "run": phase, "messages": n,
                                 "bytes": nbytes, "wall_s": f"{wall:.4f}", "cpu_s": f"{user + sys_:.4f}",
                                 "user_s": f"{user:.4f}", "sys_s": f"{sys_:.4f}", "maxrss_kib": rss,
                                 "loadavg": open("/proc/loadavg").read().split()[0], "check": check})
                    log(f"{scen:8} {client:9} {phase:4} wall {wall:8.3f} s  cpu {user + sys_:7.3f} s  "
                        f"rss {rss / 1024:6.1f} MiB  {check}")
                    rmtree(r.dir)
                    for u in (r.user, r.dst):
                        rmtree(os.path.join(env["POPWIRE_DOVECOT_HOME"], u))
            meta.setdefault("delay_line_cpu_s", {})[scen] = round(SERVERS.delay_line_cpu() - dl0, 2)
            log(f"-- {scen}: {time.time() - t_scen:.0f} s")
        SERVERS.stop_rtt()
        meta["delay_line"]["stats"] = SERVERS.delay_line_stats()
    finally:
        SERVERS.stop()
        rmtree(HOSTS_DIR)
        rmtree(WORK)
        meta["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
        meta["failures"] = failures
        if rows:
            os.makedirs(os.path.dirname(a.out), exist_ok=True)
            with open(a.out, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
            table, ratios = summarize(rows, scenarios)
            meta["ratios_wall_cpu"] = {k: [round(x, 2) for x in v] for k, v in ratios.items()}
            with open(os.path.splitext(a.out)[0] + ".meta.json", "w") as f:
                json.dump(meta, f, indent=1)
            print(table)
            log(f"wrote {a.out} ({len(rows)} runs, {failures} failed checks)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

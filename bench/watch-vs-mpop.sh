#!/usr/bin/env bash
# One cycle of `popwire watch` over USERS accounts against USERS `mpop` runs (one config per
# user, CONCURRENCY at once through xargs -P), against a private Dovecot (tests/src/dovecot.rs
# via popwire-fixture, like bench/fetch-vs-mpop.sh). Every user has one new 5 KB message; both
# store into Maildirs on tmpfs and delete from the server; SECURITY is the same for both.
#
#   bash bench/watch-vs-mpop.sh [USERS] [CONCURRENCY] [SECURITY]   # defaults: 1000 64 plain
#   SECURITY: plain (USER/PASS in the clear) or tls (implicit TLS, the fixture's CA)
#
# popwire: wall time from starting watch until its metrics say USERS messages were stored; CPU
# time (user + system) of the watch process at that moment, from /proc/PID/stat. mpop: wall
# time of the whole xargs run and the CPU time of all its children (GNU time on xargs). Then
# both Maildir sets are counted and every Dovecot mailbox must be empty. A benchmark, not part
# of tests/run-all.sh. KEY=VALUE lines on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-1000}"
conc="${2:-64}"
security="${3:-plain}"
fix="${FIX_DIR:-/tmp/pwvsmpop}"
work="${WORKDIR:-/dev/shm/popwire-watch-vs-mpop}"
metrics_port="${POPWIRE_VSMPOP_METRICS:-9189}"

sh tests/install-deps.sh dovecot bench > /dev/null
# The same popwire build as bench/watch-scale.sh (same packages, so the same features); the
# fixture on its own.
cargo build --release -q -p popwire-cli -p popwire-bench-manyusers
cargo build --release -q -p popwire-tests --bin popwire-fixture
bin=$PWD/target/release
rm -rf "$work"
mkdir -p "$work"

if [ ! -f "$fix/env" ]; then "$bin/popwire-fixture" start --dir "$fix" > /dev/null; fi
# shellcheck disable=SC1090,SC1091
. "$fix/env"
watch=""
cleanup() {
    [ -n "$watch" ] && kill "$watch" 2> /dev/null
    "$bin/popwire-fixture" stop --dir "$fix" > /dev/null 2>&1 || true
}
trap cleanup EXIT
case $security in
    plain) port=$POPWIRE_DOVECOT_PLAIN_PORT pw_security=none mpop_tls=off ;;
    tls) port=$POPWIRE_DOVECOT_TLS_PORT pw_security=tls mpop_tls=on ;;
    *) echo "SECURITY is plain or tls" >&2; exit 2 ;;
esac

seed() { # PREFIX: one 5 KB message for each of PREFIX0 .. PREFIX{USERS-1}
    python3 - "$1" "$users" << 'PY'
import os, sys, time
prefix, users = sys.argv[1], int(sys.argv[2])
home = os.environ["POPWIRE_DOVECOT_HOME"]
uid = int(os.environ.get("POPWIRE_DOVECOT_MAIL_UID") or -1)
gid = int(os.environ.get("POPWIRE_DOVECOT_MAIL_GID") or -1)
line = (b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_+=abcdef" * 2)[:75] + b"\n"
for n in range(users):
    user = f"{prefix}{n}"
    md = os.path.join(home, user, "Maildir")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, d), exist_ok=True)
    if os.geteuid() == 0 and uid >= 0:
        for p in (os.path.dirname(md), md, *(os.path.join(md, d) for d in ("cur", "new", "tmp"))):
            os.chown(p, uid, gid)
    hdr = (f"From: bench@example.com\nTo: {user}@example.com\n"
           f"Subject: bench message\nMessage-ID: <{user}@bench>\n\n").encode()
    body = line * ((5120 - len(hdr)) // len(line))
    msg = hdr + body + b"x" * (5120 - len(hdr) - len(body) - 1) + b"\n"
    us = time.time_ns() // 1000
    wire = len(msg) + msg.count(b"\n")
    name = f"{us // 10**6}.M{us % 10**6}P{os.getpid()}Q{n}.b,S={len(msg)},W={wire}"
    tmp = os.path.join(md, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(msg)
    os.chmod(tmp, 0o644)
    if uid >= 0 and os.geteuid() == 0:
        os.chown(tmp, uid, gid)
    os.rename(tmp, os.path.join(md, "new", name))
PY
}
left_on_server() { # PREFIX
    find "$POPWIRE_DOVECOT_HOME" -maxdepth 4 -path "$POPWIRE_DOVECOT_HOME/$1*/Maildir/*" \
        \( -path '*/new/*' -o -path '*/cur/*' \) -type f | wc -l
}
stored() { find "$1" \( -path '*/new/*' -o -path '*/cur/*' \) -type f | wc -l; }
delivered() {
    curl -s "http://127.0.0.1:$metrics_port/metrics" 2> /dev/null |
        awk '/^popwire_messages_total/ { s += $2 } END { print s + 0 }'
}
ticks=$(getconf CLK_TCK)
cpu_seconds() { # PID: user + system of the process (all threads)
    awk -v t="$ticks" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / t }' "/proc/$1/stat"
}

# popwire watch: one cycle.
seed w
{
    printf '[watch]\nmax_sessions = %s\nmax_per_host = %s\npoll = "1h"\nlog_format = "json"\nmetrics = "127.0.0.1:%s"\nalert_after = "1d"\n\n' \
        "$conc" "$conc" "$metrics_port"
    for ((i = 0; i < users; i++)); do
        printf '[accounts.w%d]\nemail = "w%d@example.com"\nusername = "w%d"\npassword = "%s"\nserver = "localhost"\nport = %s\nsecurity = "%s"\nca_file = "%s"\nauth = "user"\nmaildir = "%s/watch/w%d"\n' \
            "$i" "$i" "$i" "$POPWIRE_DOVECOT_PASSWORD" "$port" "$pw_security" "$POPWIRE_DOVECOT_CA_FILE" "$work" "$i"
    done
} > "$work/watch.toml"
chmod 600 "$work/watch.toml"
start=$(date +%s.%N)
"$bin/popwire" watch --config "$work/watch.toml" --state-dir "$work/state" 2> "$work/watch.log" &
watch=$!
until [ "$(delivered)" -ge "$users" ]; do
    kill -0 $watch || { echo "watch died" >&2; tail "$work/watch.log" >&2; exit 1; }
    sleep 0.1
done
end=$(date +%s.%N)
watch_cpu=$(cpu_seconds $watch)
watch_hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$watch/status")
watch_wall=$(echo "$end - $start" | bc)
kill -TERM $watch
wait $watch || true
watch=""
watch_stored=$(stored "$work/watch")
watch_left=$(left_on_server w)

# mpop: one run per user, CONCURRENCY at once.
seed m
for ((i = 0; i < users; i++)); do
    d="$work/mpop/m$i"
    mkdir -p "$d/md/new" "$d/md/cur" "$d/md/tmp"
    cat > "$d/mpoprc" << CONF
account b
host localhost
port $port
tls $mpop_tls
tls_starttls off
tls_trust_file $POPWIRE_DOVECOT_CA_FILE
auth user
user m$i
password $POPWIRE_DOVECOT_PASSWORD
delivery maildir $d/md
keep off
received_header off
uidls_file $d/uidls
CONF
    chmod 600 "$d/mpoprc"
done
mpop_rc=0
seq 0 $((users - 1)) |
    /usr/bin/time -f "%e %U %S" -o "$work/mpop.time" \
        xargs -P "$conc" -I{} mpop -C "$work/mpop/m{}/mpoprc" -q b > "$work/mpop.log" 2>&1 ||
    mpop_rc=$?
read -r mpop_wall mpop_user mpop_sys < <(tail -1 "$work/mpop.time")
mpop_cpu=$(echo "$mpop_user + $mpop_sys" | bc)
mpop_stored=$(stored "$work/mpop")
mpop_left=$(left_on_server m)

echo "users=$users"
echo "concurrency=$conc"
echo "security=$security"
echo "message_bytes=5120"
echo "maildirs=$work (tmpfs)"
echo "popwire_watch_wall_seconds=$watch_wall"
echo "popwire_watch_cpu_seconds=$watch_cpu"
echo "popwire_watch_peak_rss_kib=$watch_hwm"
echo "popwire_stored=$watch_stored"
echo "popwire_left_on_server=$watch_left"
echo "mpop_wall_seconds=$mpop_wall"
echo "mpop_cpu_seconds=$mpop_cpu"
echo "mpop_exit_status=$mpop_rc"
echo "mpop_stored=$mpop_stored"
echo "mpop_left_on_server=$mpop_left"
echo "wall_ratio_popwire_over_mpop=$(echo "scale=3; $watch_wall / $mpop_wall" | bc)"
echo "cpu_ratio_popwire_over_mpop=$(echo "scale=3; $watch_cpu / $mpop_cpu" | bc)"
rm -rf "${POPWIRE_DOVECOT_HOME:?}"/w[0-9]* "${POPWIRE_DOVECOT_HOME:?}"/m[0-9]*
if [ "$watch_stored" -ne "$users" ] || [ "$mpop_stored" -ne "$users" ] ||
    [ "$watch_left" -ne 0 ] || [ "$mpop_left" -ne 0 ] || [ "$mpop_rc" -ne 0 ]; then
    echo "check=FAILED" && exit 1
fi
echo "check=ok"

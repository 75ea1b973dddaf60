#!/usr/bin/env bash
# End-to-end fetch benchmark: popwire vs mpop against a private Dovecot.
#
#   bench/fetch-vs-mpop.sh [RUNS] [SCENARIO...]
#
# RUNS (default 3) measured runs after one warm-up per scenario and client.
# SCENARIOs (default all four): small-plain small-tls large-plain large-tls
#   small = 1000 x 5 KB, large = 100 x 1 MB. Extra scenario: huge-tls
#   (1 x 200 MB, popwire only, for peak RSS).
# Every run: fresh user + freshly seeded mailbox, client fetches in delete mode
# into a fresh Maildir under $BENCH_DIR (default /tmp/pwbench-dst), measured with
# /usr/bin/time -f "%e %U %S %M" (wall s, user s, sys s, max RSS KiB); then the
# Maildir is checked for the exact message count and total byte size (messages
# are seeded with LF endings; both clients store LF, so stored bytes == seeded bytes)
# and the server mailbox is checked to be empty. mpop runs with `received_header off`
# (popwire adds no header), everything else at mpop's defaults (pipelining auto).
# Output: one CSV line per run to $OUT (default /tmp/pwbench-results.csv) and a
# median table on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-3}; shift || true
SCENARIOS=("$@"); [ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(small-plain small-tls large-plain large-tls)
FIX=${FIX_DIR:-/tmp/pwbench}
DST=${BENCH_DIR:-/tmp/pwbench-dst}
OUT=${OUT:-/tmp/pwbench-results.csv}
KEEP_SERVER=${KEEP_SERVER:-0}   # 1: leave Dovecot running at the end
# WRAP: command prefix for the client, e.g. WRAP="strace -f -c -o /tmp/st.%c" (%c -> client name)
read -r -a WRAP_ARGS <<< "${WRAP:-}"

cd "$ROOT"
cargo build -q --release -p popwire-cli --bin popwire
cargo build -q --release -p popwire-tests --bin popwire-fixture
POPWIRE=$ROOT/target/release/popwire
FIXTURE=$ROOT/target/release/popwire-fixture

if [ ! -f "$FIX/env" ]; then "$FIXTURE" start --dir "$FIX" >/dev/null; fi
# shellcheck disable=SC1090,SC1091
. "$FIX/env"
stop_server() { [ "$KEEP_SERVER" = 1 ] || "$FIXTURE" stop --dir "$FIX" >/dev/null 2>&1 || true; }
trap stop_server EXIT

mkdir -p "$DST"
: > "$OUT.tmp"
SEQ=0

# seed USER COUNT SIZE -> prints total bytes
seed() {
    python3 - "$1" "$2" "$3" <<'PY'
import os, sys, time
user, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
home = os.environ["POPWIRE_DOVECOT_HOME"]
md = os.path.join(home, user, "Maildir")
uid = int(os.environ.get("POPWIRE_DOVECOT_MAIL_UID") or -1)
gid = int(os.environ.get("POPWIRE_DOVECOT_MAIL_GID") or -1)
for d in ("", "cur", "new", "tmp"):
    os.makedirs(os.path.join(md, d), exist_ok=True)
if os.geteuid() == 0 and uid >= 0:
    for p in (os.path.dirname(md), md, *(os.path.join(md, d) for d in ("cur", "new", "tmp"))):
        os.chown(p, uid, gid)
line = (b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_+=abcdef" * 2)[:75] + b"\n"
total = 0
base = time.time_ns() // 1000
for n in range(count):
    hdr = (f"From: bench@example.com\nTo: {user}@example.com\n"
           f"Subject: bench message {n}\nMessage-ID: <{user}.{n}@bench>\n\n").encode()
    body_len = max(0, size - len(hdr))
    body = line * (body_len // len(line))
    rest = body_len - len(body)
    if rest:
        body += b"x" * (rest - 1) + b"\n"
    msg = hdr + body
    lf = msg.count(b"\n") - msg.count(b"\r\n")
    us = base + n
    name = f"{us // 10**6}.M{us % 10**6}P{os.getpid()}Q{n}.b,S={len(msg)},W={len(msg) + lf}"
    tmp = os.path.join(md, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(msg)
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(md, "new", name))
    total += len(msg)
print(total)
PY
}

# run CLIENT SCENARIO PHASE(warm|N)
run() {
    local client=$1 scen=$2 phase=$3 count size port sec
    case $scen in
        small-*) count=1000 size=5120 ;;
        large-*) count=100 size=1048576 ;;
        huge-*) count=1 size=209715200 ;;
    esac
    case $scen in
        *-plain) port=$POPWIRE_DOVECOT_PLAIN_PORT sec=plain ;;
        *-tls) port=$POPWIRE_DOVECOT_TLS_PORT sec=tls ;;
    esac
    SEQ=$((SEQ + 1))
    local user="b$$-$SEQ-$client-$scen"
    local expect; expect=$(seed "$user" "$count" "$size")
    local w="$DST/$user"; rm -rf "$w"; mkdir -p "$w/md/new" "$w/md/cur" "$w/md/tmp" "$w/state"
    local cmd
    if [ "$client" = popwire ]; then
        local security=none; [ $sec = tls ] && security=tls
        cat > "$w/config.toml" <<EOF
[accounts.b]
email = "$user@example.com"
username = "$user"
server = "localhost"
port = $port
security = "$security"
ca_file = "$POPWIRE_DOVECOT_CA_FILE"
password = "$POPWIRE_DOVECOT_PASSWORD"
auth = "user"
maildir = "$w/md"
EOF
        cmd=("$POPWIRE" fetch --config "$w/config.toml" --state-dir "$w/state" -q)
    else
        local tls=off; [ $sec = tls ] && tls=on
        cat > "$w/mpoprc" <<EOF
account b
host localhost
port $port
tls $tls
tls_starttls off
tls_trust_file $POPWIRE_DOVECOT_CA_FILE
auth user
user $user
password $POPWIRE_DOVECOT_PASSWORD
delivery maildir $w/md
keep off
received_header off
uidls_file $w/state/uidls
EOF
        chmod 600 "$w/mpoprc"
        cmd=(mpop -C "$w/mpoprc" -q b)
    fi
    local wrap=("${WRAP_ARGS[@]/\%c/$client}")
    local rc=0
    /usr/bin/time -f "%e %U %S %M" -o "$w/time" ${wrap[@]+"${wrap[@]}"} "${cmd[@]}" > "$w/out" 2>&1 || rc=$?
    local got_n got_b left
    got_n=$(find "$w/md/new" "$w/md/cur" -type f | wc -l)
    got_b=$(find "$w/md/new" "$w/md/cur" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    left=$(find "$POPWIRE_DOVECOT_HOME/$user/Maildir/new" "$POPWIRE_DOVECOT_HOME/$user/Maildir/cur" -type f | wc -l)
    local ok=ok
    if [ $rc -ne 0 ] || [ "$got_n" -ne "$count" ] || [ "$got_b" -ne "$expect" ] || [ "$left" -ne 0 ]; then
        ok="FAIL(rc=$rc n=$got_n/$count bytes=$got_b/$expect left=$left)"
        echo "!! $client $scen $phase: $ok; output:" >&2; head -5 "$w/out" >&2
    fi
    read -r wall usr sys rss < <(tail -1 "$w/time")
    echo "$client,$scen,$phase,$wall,$usr,$sys,$rss,$ok" | tee -a "$OUT.tmp"
    rm -rf "$w" "${POPWIRE_DOVECOT_HOME:?}/$user"
}

echo "client,scenario,run,wall_s,user_s,sys_s,maxrss_kib,check"
for scen in "${SCENARIOS[@]}"; do
    clients=(popwire mpop); [[ $scen == huge-* ]] && clients=(popwire)
    for c in "${clients[@]}"; do run "$c" "$scen" warm; done
    for i in $(seq 1 "$RUNS"); do
        # alternate order so neither client always runs first
        if [ $((i % 2)) -eq 1 ]; then order=("${clients[@]}"); else order=($(printf '%s\n' "${clients[@]}" | tac)); fi
        for c in "${order[@]}"; do run "$c" "$scen" "$i"; done
    done
done
mv "$OUT.tmp" "$OUT"

echo
echo "medians of $RUNS runs (wall s / cpu s = user+sys / max RSS MiB); ratio = popwire/mpop"
python3 - "$OUT" <<'PY'
import csv, sys, statistics as st
rows = [r for r in csv.reader(open(sys.argv[1])) if r[2] != "warm"]
med = {}
for c, s in {(r[0], r[1]) for r in rows}:
    rs = [r for r in rows if r[0] == c and r[1] == s]
    med[(c, s)] = (st.median(float(r[3]) for r in rs),
                   st.median(float(r[4]) + float(r[5]) for r in rs),
                   st.median(int(r[6]) for r in rs) / 1024,
                   all(r[7] == "ok" for r in rs))
print("| scenario | popwire wall | mpop wall | wall ratio | popwire CPU | mpop CPU | CPU ratio | popwire RSS | mpop RSS | checks |")
print("|---|---|---|---|---|---|---|---|---|---|")
for s in sorted({s for _, s in med}):
    p, m = med.get(("popwire", s)), med.get(("mpop", s))
    if not m:
        print(f"| {s} | {p[0]:.2f} s | - | - | {p[1]:.2f} s | - | - | {p[2]:.1f} MiB | - | {'ok' if p[3] else 'FAIL'} |")
        continue
    print(f"| {s} | {p[0]:.2f} s | {m[0]:.2f} s | {p[0]/m[0]:.2f} | {p[1]:.2f} s | {m[1]:.2f} s | "
          f"{p[1]/m[1] if m[1] else float('nan'):.2f} | {p[2]:.1f} MiB | {m[2]:.1f} MiB | {'ok' if p[3] and m[3] else 'FAIL'} |")
PY

#!/usr/bin/env bash
# popwire watch under faults for DURATION seconds: bench/manyusers serves ACCOUNTS users and drops
# DROP % of the sessions at a random point (mid-greeting, at PASS, mid-RETR, at QUIT before or
# after the commit) and stalls STALL % (stops answering; watch's read timeout must end them).
# Afterwards: every message the server removed is stored exactly once, every other message it
# handed out is still on the server or stored once, no duplicates, no truncated message; watch's
# fds and threads at the end against after the first cycle; the server's open sessions once
# watch has exited (must be 0).
#
#   bash bench/watch-soak.sh [DURATION] [ACCOUNTS] [WORKDIR]  # defaults: 600 1000 /dev/shm/...
#   env: SOAK_DROP=5 SOAK_STALL=5 SOAK_SEED=1 SOAK_POLL=10s SOAK_TIMEOUT=5s SOAK_SESSIONS=64
#
# A benchmark, not part of tests/run-all.sh. KEY=VALUE summary on stdout; exits 1 if a check
# fails.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-600}"
accounts="${2:-1000}"
work="${3:-/dev/shm/popwire-watch-soak}"
drop="${SOAK_DROP:-5}"
stall="${SOAK_STALL:-5}"
seed="${SOAK_SEED:-1}"
poll="${SOAK_POLL:-10s}"
timeout="${SOAK_TIMEOUT:-5s}"
sessions="${SOAK_SESSIONS:-64}"
port="${POPWIRE_SOAK_PORT:-11120}"
control_port="${POPWIRE_SOAK_CONTROL:-11121}"
metrics_port="${POPWIRE_SOAK_METRICS:-9188}"

# The same build as bench/watch-scale.sh (same packages, so the same features: no rebuild).
cargo build --release -q -p popwire-cli -p popwire-bench-manyusers
bin=target/release
rm -rf "$work"
mkdir -p "$work"

{
    printf '[watch]\nmax_sessions = %s\nmax_per_host = %s\npoll = "%s"\nlog_format = "json"\nmetrics = "127.0.0.1:%s"\nalert_after = "1d"\n\n' \
        "$sessions" "$sessions" "$poll" "$metrics_port"
    for ((i = 0; i < accounts; i++)); do
        printf '[accounts.u%d]\nemail = "u%d@example.com"\nusername = "u%d"\npassword = "pw"\nserver = "127.0.0.1"\nport = %s\nsecurity = "none"\nauth = "user"\ntimeout = "%s"\nmaildir = "%s/mail/u%d"\n' \
            "$i" "$i" "$i" "$port" "$timeout" "$work" "$i"
    done
} > "$work/config.toml"
chmod 600 "$work/config.toml"

dump() { # -> the server's control dump on stdout
    exec 3<> "/dev/tcp/127.0.0.1/$control_port"
    cat <&3
    exec 3<&-
}
field() { dump | awk -v k="$1" '$1 == k { print $2 }'; }
metric() { # NAME -> the sum over accounts
    curl -s "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null |
        awk -v m="$1" 'index($0, m "{") == 1 || index($0, m " ") == 1 { s += $NF } END { print s + 0 }'
}
fds() { ls "/proc/$1/fd" | wc -l; }
threads() { awk '/^Threads/ { print $2 }' "/proc/$1/status"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

"$bin/popwire-manyusers" "127.0.0.1:$port" "$accounts" --drop-percent "$drop" \
    --stall-percent "$stall" --seed "$seed" --control "127.0.0.1:$control_port" > "$work/server.out" &
server=$!
watch=""
trap 'kill $server 2>/dev/null || true; [ -n "$watch" ] && kill $watch 2>/dev/null || true' EXIT
until grep -q ready "$work/server.out"; do sleep 0.1; done

start=$(date +%s)
"$bin/popwire" watch --config "$work/config.toml" --state-dir "$work/state" 2> "$work/watch.log" &
watch=$!

# After the first cycle: the server has seen as many sessions as there are accounts.
until [ "$(field sessions_total)" -ge "$accounts" ]; do
    kill -0 $watch || { echo "watch died" >&2; tail "$work/watch.log" >&2; exit 1; }
    sleep 0.5
done
sleep 2
first_fds=$(fds $watch)
first_threads=$(threads $watch)
first_rss=$(rss_kib $watch)
first_at=$(($(date +%s) - start))
echo "# t=${first_at}s first cycle: fds=$first_fds threads=$first_threads rss_kib=$first_rss" >&2

next=60
while (($(date +%s) - start < duration)); do
    kill -0 $watch || { echo "watch died" >&2; tail "$work/watch.log" >&2; exit 1; }
    if (($(date +%s) - start >= next)); then
        echo "# t=${next}s fds=$(fds $watch) threads=$(threads $watch) rss_kib=$(rss_kib $watch) running=$(metric popwire_running_sessions) messages=$(metric popwire_messages_total) server_sessions=$(field sessions_total)" >&2
        next=$((next + 60))
    fi
    sleep 1
done
end_fds=$(fds $watch)
end_threads=$(threads $watch)
end_rss=$(rss_kib $watch)
end_hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$watch/status")
end_running=$(metric popwire_running_sessions)
watch_messages=$(metric popwire_messages_total)
watch_failures=$(metric popwire_failures_total)
stop_start=$(date +%s.%N)
kill -TERM $watch
watch_status=0
wait $watch || watch_status=$?
stop_s=$(echo "$(date +%s.%N) - $stop_start" | bc)
watch=""
# The kernel closed watch's sockets; give the server's tasks a moment to see the EOFs.
for _ in $(seq 50); do
    [ "$(field sessions_open)" -eq 0 ] && break
    sleep 0.1
done
dump > "$work/server.dump"

echo "duration_seconds=$duration"
echo "accounts=$accounts"
echo "poll=$poll"
echo "timeout=$timeout"
echo "max_sessions=$sessions"
echo "drop_percent=$drop"
echo "stall_percent=$stall"
echo "seed=$seed"
echo "workdir=$work"
echo "first_cycle_after_seconds=$first_at"
echo "watch_fds_after_first_cycle=$first_fds"
echo "watch_fds_at_end=$end_fds"
echo "watch_threads_after_first_cycle=$first_threads"
echo "watch_threads_at_end=$end_threads"
echo "watch_sessions_running_at_end=$end_running"
echo "watch_rss_kib_after_first_cycle=$first_rss"
echo "watch_rss_kib_at_end=$end_rss"
echo "watch_peak_rss_kib=$end_hwm"
echo "watch_messages_metric=$watch_messages"
echo "watch_failures_metric=$watch_failures"
echo "watch_exit_status=$watch_status"
echo "watch_stop_seconds=$stop_s"
python3 bench/soak_check.py "$work/server.dump" "$work/mail"

#!/usr/bin/env bash
# popwire watch over many mailboxes: one full cycle's wall time, the process's RSS, RSS per
# in-flight session and per idle account. The server is bench/manyusers (the engine's server
# role on smol: every user has one new message at each login), on loopback.
#
#   bash bench/watch-scale.sh [USERS] [MAX_SESSIONS] [WORKDIR]   # defaults: 10000 64 /dev/shm/...
#
# WORKDIR holds the Maildirs, journals and state: on tmpfs by default, so the figure is popwire's
# own cost and not this machine's disk (every account's batch is fsynced: Maildir file, journal,
# new/). Pass a disk path to include that. Results go to stdout as KEY=VALUE lines.
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-10000}"
sessions="${2:-64}"
work="${3:-/dev/shm/popwire-watch-scale}"
port="${POPWIRE_SCALE_PORT:-11110}"
metrics_port="${POPWIRE_SCALE_METRICS:-9187}"

cargo build --release -q -p popwire-cli -p popwire-bench-manyusers
bin=target/release
rm -rf "$work"
mkdir -p "$work"

write_config() { # N [POLL]
    {
        printf '[watch]\nmax_sessions = %s\nmax_per_host = %s\npoll = "%s"\nlog_format = "json"\nmetrics = "127.0.0.1:%s"\nalert_after = "1d"\n\n' \
            "$sessions" "$sessions" "${2:-1h}" "$metrics_port"
        for ((i = 0; i < $1; i++)); do
            printf '[accounts.u%d]\nemail = "u%d@example.com"\nusername = "u%d"\npassword = "pw"\nserver = "127.0.0.1"\nport = %s\nsecurity = "none"\nauth = "user"\nmaildir = "%s/mail/u%d"\n' \
                "$i" "$i" "$i" "$port" "$work" "$i"
        done
    } > "$work/config.toml"
    chmod 600 "$work/config.toml"
}

delivered() {
    curl -s "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null |
        awk '/^popwire_messages_total/ { s += $2 } END { print s + 0 }'
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

"$bin/popwire-manyusers" "127.0.0.1:$port" "$users" > "$work/server.out" &
server=$!
trap 'kill $server 2>/dev/null || true; [ -n "${watch:-}" ] && kill $watch 2>/dev/null || true' EXIT
until grep -q ready "$work/server.out"; do sleep 0.1; done

run() { # N -> sets cycle_s, peak_kib, idle_kib
    local n=$1
    rm -rf "$work/state" "$work/mail"
    write_config "$n"
    local start end
    start=$(date +%s.%N)
    "$bin/popwire" watch --config "$work/config.toml" --state-dir "$work/state" 2> "$work/watch-$n.log" &
    watch=$!
    until [ "$(delivered)" -ge "$n" ]; do
        kill -0 $watch || { echo "watch died" >&2; tail "$work/watch-$n.log" >&2; exit 1; }
        sleep 0.2
    done
    end=$(date +%s.%N)
    cycle_s=$(echo "$end - $start" | bc)
    sleep 3
    peak_kib=$(hwm_kib $watch)
    idle_kib=$(rss_kib $watch)
    kill -TERM $watch
    wait $watch || true
    watch=""
}

# Steady state: every account due again 1 s after its last poll, so sessions never stop; the
# time from the N-th to the 2N-th message is one more poll of every account, with the Maildirs
# and journals already there.
steady() { # N -> sets steady_s, steady_rss_kib
    local n=$1
    rm -rf "$work/state" "$work/mail"
    write_config "$n" 1s
    "$bin/popwire" watch --config "$work/config.toml" --state-dir "$work/state" 2> "$work/watch-steady.log" &
    watch=$!
    until [ "$(delivered)" -ge "$n" ]; do sleep 0.2; done
    local t1 t2
    t1=$(date +%s.%N)
    until [ "$(delivered)" -ge $((2 * n)) ]; do sleep 0.2; done
    t2=$(date +%s.%N)
    steady_s=$(echo "$t2 - $t1" | bc)
    steady_rss_kib=$(rss_kib $watch)
    kill -TERM $watch
    wait $watch || true
    watch=""
}

run 1
base_idle=$idle_kib
base_cycle=$cycle_s
run "$users"
echo "users=$users"
echo "max_sessions=$sessions"
echo "workdir=$work"
echo "cycle_seconds=$cycle_s"
echo "one_account_cycle_seconds=$base_cycle"
echo "peak_rss_kib=$peak_kib"
echo "idle_rss_kib=$idle_kib"
echo "one_account_idle_rss_kib=$base_idle"
# Upper bounds: the idle figure includes what the allocator kept from the sessions' threads,
# the per-session one includes every account's state.
echo "rss_per_idle_account_bytes_at_most=$(( (idle_kib - base_idle) * 1024 / users ))"
echo "rss_per_in_flight_session_kib_at_most=$(( (peak_kib - base_idle) / sessions ))"
echo "messages_stored=$(find "$work/mail" -path '*/new/*' -type f | wc -l)"
steady "$users"
echo "steady_state_cycle_seconds=$steady_s"
echo "steady_state_rss_kib=$steady_rss_kib"

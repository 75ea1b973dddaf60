#!/usr/bin/env bash
# POP -> IMAP, 1000 x 5 KB, on loopback and at 10 ms RTT: popwire against fetchmail delivering
# through an IMAP-appending MDA (bench/imap_append_mda.py). See BENCHMARKS.md,
# "POP -> IMAP at 10 ms RTT", and bench/imap_rtt.py for what each run does and checks.
#
#   bench/imap-rtt.sh                        # 3 rounds after a warm-up -> bench/results/imap-rtt.csv
#   bench/imap-rtt.sh --runs 1 --count 50    # smoke (writes the same CSV unless --out is given)
#
# Needs root (network namespaces, TUN devices) and Debian/apt for the peers
# (tests/install-deps.sh bench). Prints the Markdown table of medians and ratios.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export POPWIRE_BENCH_WORK=${POPWIRE_BENCH_WORK:-/dev/shm/popwire-imaprtt}
NS_SRV=pwi-srv NS_CLI=pwi-cli  # as in bench/imap_rtt.py

# The driver cleans up itself; this is for when it is killed outright.
cleanup() {
    local ready=$POPWIRE_BENCH_WORK/delayline.ready pidf=$POPWIRE_BENCH_WORK/dovecot-ns/run/master.pid
    if [ -f "$pidf" ]; then kill "$(cat "$pidf")" 2>/dev/null || true; fi
    if [ -f "$ready" ]; then kill "$(cat "$ready")" 2>/dev/null || true; fi
    for ns in $NS_SRV $NS_CLI; do
        if [ -e "/run/netns/$ns" ]; then ip netns del "$ns" 2>/dev/null || true; fi
    done
    rm -rf "/etc/netns/$NS_CLI"
    if [ -f "$pidf" ]; then sleep 1; fi  # let Dovecot go before its files
    rm -rf "$POPWIRE_BENCH_WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then
    echo "bench/imap-rtt.sh: needs root (network namespaces, TUN devices)" >&2
    exit 2
fi
sh tests/install-deps.sh bench
echo "imap-rtt: building release binaries" >&2
cargo build -q --release -p popwire-cli --bin popwire -p popwire-tests --bin popwire-fixture
python3 bench/imap_rtt.py "$@"

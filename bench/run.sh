#!/usr/bin/env bash
# The end-to-end benchmark suite: popwire vs mpop, fetchmail+procmail, getmail6, a stdlib
# poplib script and the floor (one pipelined blast that reads and discards), against a private
# Dovecot. See BENCHMARKS.md, "End-to-end suite".
#
#   bench/run.sh                    # everything: 3 measured runs (~20 min); updates
#                                   #   bench/results/runs.csv, chart.png and BENCHMARKS.md
#   bench/run.sh --quick            # smoke: 1 run of 4 small scenarios -> results/quick.csv
#   bench/run.sh --runs 5 'small-*' # a subset -> results/partial.csv (BENCHMARKS.md untouched)
#   bench/run.sh --clients popwire,mpop,floor
#   bench/run.sh --list             # scenario names
#
# Needs root for the 10 ms RTT scenario (network namespaces, TUN devices); Debian/apt for
# installing the peers (tests/install-deps.sh bench; cached, fast when present).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${POPWIRE_BENCH_VENV:-/var/cache/popwire-bench/venv}
export POPWIRE_BENCH_VENV=$VENV

quick=0 filtered=0 out="" list=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    a=${args[$i]}
    case $a in
        --quick) quick=1 ;;
        --list|-h|--help) list=1 ;;
        --out) out=${args[$((i + 1))]:-}; i=$((i + 1)) ;;
        --out=*) out=${a#--out=} ;;
        --runs|--clients) i=$((i + 1)); [ "$a" = --clients ] && filtered=1 ;;
        --runs=*|--keep) ;;
        --clients=*) filtered=1 ;;
        -*) ;;
        *) filtered=1 ;;
    esac
done
if [ $list = 1 ]; then
    exec python3 bench/suite.py "$@"
fi
if [ -z "$out" ]; then
    if [ $quick = 1 ]; then out=bench/results/quick.csv
    elif [ $filtered = 1 ]; then out=bench/results/partial.csv
    else out=bench/results/runs.csv; fi
    args+=(--out "$out")
fi

sh tests/install-deps.sh bench
echo "bench: building release binaries"
cargo build -q --release -p popwire-cli --bin popwire -p popwire-tests --bin popwire-fixture \
    -p popwire-bench-floor --bin popwire-floor

rc=0
python3 bench/suite.py "${args[@]}" || rc=$?

report=(bench/report.py --csv "$out")
if [ "$out" = bench/results/runs.csv ]; then
    report+=(--markdown BENCHMARKS.md --chart bench/results/chart.png)
fi
if [ -f "$out" ]; then
    "$VENV/bin/python" "${report[@]}" || rc=$?
fi
exit $rc

#!/usr/bin/env bash
# CI smoke test: builds every fuzz target (`cargo fuzz list`: decoder, client_session,
# command_parse, server_session, config, journal) and runs each for ~20 seconds on the
# checked-in corpus. Exits non-zero if a build fails or a target finds a crash (the crashing
# input is left in fuzz/artifacts/<target>/). The journal target writes its scratch files
# under /dev/shm (else $TMPDIR) and removes those of earlier runs.
#
#   fuzz/smoke.sh            # all targets, 20 s each
#   SECONDS_PER_TARGET=60 fuzz/smoke.sh decoder
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain, RUSTC_BOOTSTRAP=1 lets
# cargo fuzz pass its nightly-only flags; on nightly it is harmless.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1
seconds="${SECONDS_PER_TARGET:-20}"
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo fuzz list)
fi

# -a: debug assertions, so integer overflow panics. -s none: the engine forbids unsafe code,
# so AddressSanitizer finds little and halves the speed.
flags=(-O -a -s none)
cargo fuzz build "${flags[@]}"

failed=()
for target in "${targets[@]}"; do
    # New inputs go to a scratch directory; the checked-in corpus is only read.
    scratch="$(mktemp -d)"
    echo "== $target (${seconds}s)"
    if ! cargo fuzz run "${flags[@]}" "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
        2>&1 | tail -n 12; then
        failed+=("$target")
    fi
    rm -rf "$scratch"
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all ${#targets[@]} targets ran ${seconds}s without a crash"

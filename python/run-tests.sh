#!/bin/sh
# Builds the popwire Python package into python/.venv and runs its pytest suite.
#
#   python/run-tests.sh              # everything (Dovecot is required)
#   python/run-tests.sh -k poplib    # pytest arguments pass through
#
# Idempotent: installs what is missing (tests/install-deps.sh), rebuilds the extension with
# `maturin develop --release` (incremental), then runs pytest. Uses the Dovecot named by
# $POPWIRE_DOVECOT if set, else starts a private one for the run.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

"$root/tests/install-deps.sh" dovecot openssl python
if [ ! -x "$here/.venv/bin/python" ]; then
    # The first pass installed python3-venv; now the venv can be made.
    "$root/tests/install-deps.sh" python
fi

. "$here/.venv/bin/activate"
cd "$here"
# Put cargo's output where the workspace keeps it, whoever calls this script.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
maturin develop --release --quiet
POPWIRE_REQUIRE_DOVECOT="${POPWIRE_REQUIRE_DOVECOT:-1}" exec python -m pytest "$@"

#!/bin/sh
# Tests the popwire Python package.
#
#   python/run-tests.sh              # dev loop: `maturin develop` into python/.venv, then pytest
#   python/run-tests.sh -k poplib    # pytest arguments pass through
#   python/run-tests.sh --wheel      # what CI runs (tests/run-all.sh), from the built wheel:
#       1. the manylinux x86_64 abi3 wheel, built with zig, its tag checked by auditwheel;
#       2. the wheel installed into fresh venvs of the oldest and newest CPython (3.8, 3.13 from
#          pyenv), with no Rust toolchain on PATH, and the pytest suite run against it; mypy
#          --strict on examples/typed_usage.py against the wheel installed in the 3.13 venv;
#       3. CPython's own test_poplib, stdlib vs popwire.poplib, on 3.8 to 3.13.
#
# Idempotent: installs what is missing (tests/install-deps.sh), builds incrementally. Uses the
# Dovecot named by $POPWIRE_DOVECOT if set, else starts a private one for each pytest run.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

"$root/tests/install-deps.sh" dovecot openssl python
if [ ! -x "$here/.venv/bin/python" ]; then
    # The first pass installed python3-venv; now the venv can be made.
    "$root/tests/install-deps.sh" python
fi
# Put cargo's output where the workspace keeps it, whoever calls this script.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export POPWIRE_REQUIRE_DOVECOT="${POPWIRE_REQUIRE_DOVECOT:-1}"

if [ "${1:-}" != "--wheel" ]; then
    . "$here/.venv/bin/activate"
    cd "$here"
    maturin develop --release --quiet
    exec python -m pytest "$@"
fi

if [ -z "${POPWIRE_DOVECOT:-}" ]; then
    # One Dovecot for both pytest runs, started while cargo is still on PATH.
    fixture=$(mktemp -d /tmp/pw-pyw.XXXXXX)
    (cd "$root" && cargo build -q -p popwire-tests --bin popwire-fixture)
    "$CARGO_TARGET_DIR/debug/popwire-fixture" start --dir "$fixture" >/dev/null
    trap '"$CARGO_TARGET_DIR/debug/popwire-fixture" stop --dir "$fixture" >/dev/null 2>&1 || true; rm -rf "$fixture"' EXIT
    export POPWIRE_DOVECOT="$fixture/env"
fi

echo "-- python: the manylinux x86_64 wheel (maturin + zig), tag checked by auditwheel"
sh "$here/wheels.sh" manylinux-x86_64
wheel=$(ls "$here"/dist/popwire-*-cp38-abi3-*manylinux_2_17_x86_64*.whl)

# A PATH without cargo, rustc or rustup: the wheel must install and run with no Rust toolchain.
no_rust_path=""
old_ifs=$IFS
IFS=:
for dir in $PATH; do
    if [ -x "$dir/cargo" ] || [ -x "$dir/rustc" ] || [ -x "$dir/rustup" ]; then
        continue
    fi
    no_rust_path="${no_rust_path:+$no_rust_path:}$dir"
done
IFS=$old_ifs

pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
for minor in 3.8 3.13; do
    py=$(ls -d "$pyenv_root"/versions/"$minor".*/bin/python"$minor" 2>/dev/null | sort -V | tail -1)
    if [ -z "$py" ]; then
        echo "run-tests.sh: MISSING CPython $minor under $pyenv_root/versions (pyenv install $minor)" >&2
        exit 1
    fi
    echo "-- python: the wheel in a fresh venv of $("$py" -V), pytest against the installed package"
    venv=$(mktemp -d /tmp/pw-wheel-venv.XXXXXX)
    "$py" -m venv "$venv"
    # --no-index: pytest from the cached wheelhouse, popwire only from the wheel (never built).
    PATH="$no_rust_path" "$venv/bin/python" -m pip install -q --no-index --only-binary=:all: \
        --find-links "$here/.wheelhouse" pytest "$wheel"
    if [ "$minor" = 3.13 ]; then
        # As a user's checker sees the package: py.typed and the stubs from site-packages.
        echo "-- python: mypy --strict on examples/typed_usage.py and ticket_intake.py against the installed wheel"
        (cd "$here" && "$here/.venv/bin/python" -m mypy --strict --no-incremental \
            --python-executable "$venv/bin/python" examples/typed_usage.py examples/ticket_intake.py)
    fi
    # From outside the source tree, so `import popwire` can only find the installed wheel.
    (cd "$venv" && PATH="$venv/bin:$no_rust_path" POPWIRE_EXPECT_INSTALLED="$venv" \
        "$venv/bin/python" -m pytest -p no:cacheprovider --rootdir "$here" -c "$here/pyproject.toml" "$here/tests")
    rm -rf "$venv"
done

echo "-- python: CPython's own test_poplib with the standard library, then with popwire.poplib"
"$here/.venv/bin/python" "$here/tests/run_cpython_test_poplib.py" --wheel "$wheel"

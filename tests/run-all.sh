#!/usr/bin/env bash
# The one test command (README "Run every test"): installs what the tests need, then runs every
# suite against a private Dovecot it starts and stops. Safe to run again: installs are cached.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== install"
bash tests/install-deps.sh
rustup component add clippy rustfmt >/dev/null 2>&1 || true
rustup target add wasm32-unknown-unknown >/dev/null

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== a blocking-only user compiles no async, CLI or config crates"
blocking_only=$(cargo tree -p popwire --no-default-features --features net -e normal --prefix none)
if echo "$blocking_only" | grep -qiE '^(futures|clap|indicatif|serde|toml)'; then
    echo "popwire with features = [\"net\"] pulls in:"; echo "$blocking_only" | grep -iE '^(futures|clap|indicatif|serde|toml)'
    exit 1
fi
echo "popwire with only the blocking adapter: $(echo "$blocking_only" | sort -u | wc -l) crates, none of them async or CLI"
# OAuth (feature `oauth`: oauth2, ureq, tiny_http and their HTTP crates) stays out of it too.
if echo "$blocking_only" | grep -qE '^(oauth2|ureq|tiny_http|http|url|chrono) '; then
    echo "popwire with features = [\"net\"] pulls in OAuth crates:"; echo "$blocking_only" | grep -E '^(oauth2|ureq|tiny_http|http|url|chrono) '
    exit 1
fi

# The IMAP destination (feature `imap`, the CLI's) is not compiled by the library's defaults.
default_tree=$(cargo tree -p popwire -e normal --prefix none)
if echo "$default_tree" | grep -qE '^(imap-codec|imap-types) '; then
    echo "popwire's default features pull in the IMAP destination's crates"; exit 1
fi

echo "== the engine alone: no_std + alloc for wasm32, and its own tests without std"
cargo build -p popwire --no-default-features --target wasm32-unknown-unknown
cargo test -p popwire --no-default-features --lib

echo "== Dovecot for every suite"
# Short path: Dovecot's socket paths must stay under 70 bytes.
fixture=$(mktemp -d /tmp/pw-ci.XXXXXX)
cargo build -q -p popwire-tests --bin popwire-fixture
fixture_bin=target/debug/popwire-fixture
"$fixture_bin" start --dir "$fixture"
trap '"$fixture_bin" stop --dir "$fixture" || true; rm -rf "$fixture"' EXIT
export POPWIRE_DOVECOT="$fixture/env"

echo "== Rust: unit, transcript, property, Dovecot and CLI tests"
cargo test --workspace

echo "== JavaScript: the wasm crate under wasm-bindgen-test, then the npm package with node --test"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p popwire-wasm --target wasm32-unknown-unknown
bash wasm/build.sh
(cd wasm && npm test)

echo "== JavaScript runtimes: Deno, Bun and workerd (the package imported by name), the example Worker"
bash wasm/runtimes/run-tests.sh

echo "== Python: the manylinux abi3 wheel (maturin + zig, auditwheel), pytest against it installed in"
echo "   fresh CPython 3.8 and 3.13 venvs without Rust, mypy --strict, CPython's test_poplib on 3.8-3.13"
bash python/run-tests.sh --wheel

echo "== Kotlin (JVM, JNA) and Swift (swiftc in a cached Debian trixie chroot) over uniffi"
bash bindings/run-tests.sh

echo "== Fuzzing smoke pass: every target, 20 s each, on the checked-in corpus"
bash fuzz/smoke.sh

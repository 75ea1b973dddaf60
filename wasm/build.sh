#!/bin/sh
# Builds the npm package's WebAssembly: cargo (wasm32, size-tuned release), wasm-bindgen
# (ESM "web" glue into pkg/), then wasm-opt -Oz from npm's binaryen. Idempotent: rerun at will.
#
#   wasm/build.sh           # release: pkg/popwire_wasm_bg.wasm, size-optimised
#   wasm/build.sh --debug   # dev profile, no wasm-opt (fast, with names for stack traces)
#
# Needs the wasm32-unknown-unknown target, wasm-bindgen-cli 0.2.130 and node/npm:
# `tests/install-deps.sh wasm` installs them.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

profile=release
if [ "${1:-}" = "--debug" ]; then
    profile=debug
fi

for tool in cargo wasm-bindgen npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "build.sh: $tool not found; run tests/install-deps.sh wasm" >&2
        exit 1
    fi
done
version=$(wasm-bindgen --version | awk '{print $2}')
if [ "$version" != "0.2.130" ]; then
    echo "build.sh: wasm-bindgen-cli is $version, the crate pins 0.2.130; run tests/install-deps.sh wasm" >&2
    exit 1
fi

if [ ! -x node_modules/.bin/wasm-opt ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

# build FEATURE NAME TARGET_DIR: one module with one role, into pkg/NAME.js + pkg/NAME_bg.wasm.
build() {
    if [ "$profile" = release ]; then
        # The workspace's release profile is tuned for native speed; these overrides apply to
        # this build only. `strip = "debuginfo"`, not `true`: wasm-opt needs the
        # target_features section.
        CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
        CARGO_PROFILE_RELEASE_LTO=fat \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
        CARGO_PROFILE_RELEASE_PANIC=abort \
        CARGO_PROFILE_RELEASE_DEBUG=false \
        CARGO_PROFILE_RELEASE_STRIP=debuginfo \
            cargo build -q -p popwire-wasm --no-default-features --features "$1" \
                --target wasm32-unknown-unknown --release --target-dir "$3"
    else
        cargo build -q -p popwire-wasm --no-default-features --features "$1" \
            --target wasm32-unknown-unknown --target-dir "$3"
    fi
    wasm-bindgen --target web --no-typescript --out-dir pkg --out-name "$2" \
        "$3/wasm32-unknown-unknown/$profile/popwire_wasm.wasm"
    if [ "$profile" = release ]; then
        node_modules/.bin/wasm-opt -Oz --converge --strip-debug --strip-producers \
            "pkg/$2_bg.wasm" -o "pkg/$2_bg.wasm"
    fi
    size=$(wc -c <"pkg/$2_bg.wasm")
    gz=$(gzip -9 -c "pkg/$2_bg.wasm" | wc -c)
    echo "build.sh: pkg/$2_bg.wasm ($profile): $size bytes, $gz gzipped"
}

# The client module is what `popwire` loads; the server role is a module of its own (for
# tests and demos, `popwire/server`) so the client module carries none of it. Separate target
# directories: the two feature sets would otherwise overwrite each other's cdylib.
build client popwire_wasm "$target_dir"
build server popwire_server "$target_dir/wasm-server"

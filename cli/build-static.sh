#!/usr/bin/env bash
# Builds the popwire command as one static Linux binary (musl, static-pie, stripped), which runs
# on any x86_64 Linux without Rust or a C library of a particular version:
#   bash cli/build-static.sh        # -> target/x86_64-unknown-linux-musl/dist/popwire
# Installs the musl target (rustup) and musl-gcc (Debian's musl-tools, for ring's C parts) once.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
if ! command -v musl-gcc >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq musl-tools >/dev/null
fi
cargo build --profile dist -p popwire-cli --target "$target"
binary="target/$target/dist/popwire"
"$binary" --version
ls -l "$binary"

#!/bin/sh
# Builds popwire's abi3 wheels (one per platform serves CPython 3.8 and later) and its sdist with
# maturin, cross-compiling with zig (the `ziglang` package from PyPI) so that the wheels link
# against an old glibc or musl, and checks each wheel's platform tag with auditwheel.
#
#   python/wheels.sh                  # manylinux x86_64 only (what the test command installs)
#   python/wheels.sh all              # + manylinux aarch64, musllinux x86_64, the sdist
#   python/wheels.sh manylinux-x86_64 musllinux-x86_64 ...   # named ones
#
# Output: python/dist/. Needs python/.venv with maturin, ziglang and auditwheel
# (tests/install-deps.sh python). Rust targets are added with rustup when missing.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
venv="$here/.venv"
dist="$here/dist"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export PATH="$venv/bin:$PATH"

targets="${*:-manylinux-x86_64}"
if [ "$targets" = all ]; then
    targets="manylinux-x86_64 manylinux-aarch64 musllinux-x86_64 sdist"
fi
mkdir -p "$dist"

# maturin build with zig for one platform; then auditwheel must agree with the tag.
build() {
    rust_target=$1 compat=$2 tag=$3
    if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$rust_target"; then
        rustup target add "$rust_target"
    fi
    # The host target builds into target/release, where `maturin develop` already built.
    target_arg="--target $rust_target"
    if [ "$rust_target" = x86_64-unknown-linux-gnu ] && [ "$(uname -m)" = x86_64 ]; then
        target_arg=""
    fi
    rm -f "$dist"/popwire-*-"$tag"*.whl
    # shellcheck disable=SC2086 # target_arg is empty or two words
    (cd "$here" && maturin build --release --quiet --zig --compatibility "$compat" $target_arg -o "$dist")
    wheel=$(ls "$dist"/popwire-*-cp38-abi3-*"$tag"*.whl)
    case $tag in musllinux*) musl_soname "$wheel" ;; esac
    auditwheel show "$wheel" >"$dist/auditwheel.txt" 2>&1 || { cat "$dist/auditwheel.txt"; exit 1; }
    if ! tr '\n' ' ' <"$dist/auditwheel.txt" | grep -q "consistent with the following platform tag: *\"$tag\""; then
        echo "wheels.sh: auditwheel does not confirm $tag for $wheel:" >&2
        cat "$dist/auditwheel.txt" >&2
        exit 1
    fi
    echo "wheels.sh: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB), auditwheel: $tag"
}

# zig links a musl module against "libc.so". musl's loader takes that name as itself, but the
# soname Alpine's toolchain records (and auditwheel looks for) is libc.musl-<arch>.so.1: record
# that one, and repack so that RECORD has the new hash.
musl_soname() {
    unpacked=$(mktemp -d /tmp/pw-musl.XXXXXX)
    wheel unpack -d "$unpacked" "$1" >/dev/null
    for so in "$unpacked"/*/popwire/*.so; do
        if patchelf --print-needed "$so" | grep -qx libc.so; then
            patchelf --replace-needed libc.so libc.musl-x86_64.so.1 "$so"
        fi
    done
    rm "$1"
    wheel pack -d "$dist" "$unpacked"/* >/dev/null
    rm -rf "$unpacked"
}

for t in $targets; do
    case $t in
        manylinux-x86_64) build x86_64-unknown-linux-gnu manylinux2014 manylinux_2_17_x86_64 ;;
        manylinux-aarch64) build aarch64-unknown-linux-gnu manylinux2014 manylinux_2_17_aarch64 ;;
        musllinux-x86_64) build x86_64-unknown-linux-musl musllinux_1_2 musllinux_1_2_x86_64 ;;
        sdist)
            rm -f "$dist"/popwire-*.tar.gz
            (cd "$here" && maturin sdist -o "$dist")
            echo "wheels.sh: $(basename "$(ls "$dist"/popwire-*.tar.gz)")"
            ;;
        *) echo "wheels.sh: unknown target '$t'" >&2; exit 2 ;;
    esac
done

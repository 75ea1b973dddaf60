#!/bin/sh
# Builds the popwire uniffi library, generates the Kotlin and Swift bindings, and runs the Kotlin
# (JVM) and Swift tests against the test Dovecot.
#
#   bindings/run-tests.sh
#
# Dovecot: the instance named by $POPWIRE_DOVECOT (an env file, see tests/dovecot/README.md), else
# one started here and stopped at exit. Tools: `tests/install-deps.sh bindings` (JNA, the npm
# Kotlin compiler, the cached Swift chroot). Prints `kotlin: N passed, 0 failed` and
# `swift: N passed, 0 failed`; exits non-zero on any failure.
#
# Env: POPWIRE_BINDINGS_PROFILE=release|debug (default release: the SCRAM transcripts replay
# thousands of PBKDF2 rounds, 10x slower unoptimised); POPWIRE_SWIFT_CHROOT (default
# /var/cache/popwire-swift-chroot); POPWIRE_SKIP_SWIFT=1 runs Kotlin only.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
profile="${POPWIRE_BINDINGS_PROFILE:-release}"
chroot_dir="${POPWIRE_SWIFT_CHROOT:-/var/cache/popwire-swift-chroot}"
target="${CARGO_TARGET_DIR:-$repo/target}"
libdir="$target/$profile"
gen="$here/generated"
build="$here/build"
kotlin_home="$here/kotlin/node_modules/kotlin-compiler"
jna=/usr/share/java/jna.jar
mkdir -p "$build"

sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi

# ---- Dovecot --------------------------------------------------------------------------------
fixture_dir=""
mounted=""
serve_pid=""
stall_pid=""
stall_session_pid=""
serve_dir=""
cleanup() {
    for pid in $serve_pid $stall_pid $stall_session_pid; do
        kill "$pid" 2>/dev/null || true
    done
    if [ -n "$serve_dir" ]; then
        rm -rf "$serve_dir"
    fi
    for m in $mounted; do
        $sudo umount "$m" 2>/dev/null || $sudo umount -l "$m" 2>/dev/null || true
    done
    if [ -n "$fixture_dir" ]; then
        (cd "$repo" && cargo run -q -p popwire-tests --bin popwire-fixture -- stop --dir "$fixture_dir") >/dev/null 2>&1 || true
        rm -rf "$fixture_dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${POPWIRE_DOVECOT:-}" ]; then
    fixture_dir="$(mktemp -d /tmp/pwb.XXXXXX)"
    (cd "$repo" && cargo run -q -p popwire-tests --bin popwire-fixture -- start --dir "$fixture_dir") >/dev/null
    POPWIRE_DOVECOT="$fixture_dir/env"
fi
export POPWIRE_DOVECOT

# ---- popwire serve: the engine's server role over a Maildir, on a free loopback port ----------
(cd "$repo" && cargo build -q -p popwire-cli --bin popwire)
serve_dir="$(mktemp -d /tmp/pws.XXXXXX)"
mkdir -p "$serve_dir/md/new" "$serve_dir/md/cur" "$serve_dir/md/tmp"
for i in 1 2 3; do
    printf 'From: a@example.com\r\nSubject: served %s\r\n\r\nbody %s\r\n.dot line\r\n' "$i" "$i" \
        >"$serve_dir/md/new/100000000$i.M$i.serve"
done
POPWIRE_SERVE_PASSWORD=popwire-serve-pw "$target/debug/popwire" serve --maildir "$serve_dir/md" \
    --listen 127.0.0.1:0 2>"$serve_dir/log" &
serve_pid=$!
i=0
while ! grep -q ' on 127.0.0.1:' "$serve_dir/log" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then
        echo "bindings: popwire serve did not start:" >&2
        cat "$serve_dir/log" >&2
        exit 1
    fi
    sleep 0.1
done
POPWIRE_SERVE="$(sed -n 's/.* on \(127\.0\.0\.1:[0-9]*\) .*/\1/p' "$serve_dir/log")"
POPWIRE_SERVE_MAILDIR="$serve_dir/md"
export POPWIRE_SERVE POPWIRE_SERVE_MAILDIR

# A server that accepts and never answers, for the timeout tests.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])
' >"$serve_dir/stall-port" &
stall_pid=$!
i=0
while [ ! -s "$serve_dir/stall-port" ]; do
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then
        echo "bindings: the stalling server did not start" >&2
        exit 1
    fi
    sleep 0.1
done
POPWIRE_STALL="127.0.0.1:$(cat "$serve_dir/stall-port")"
export POPWIRE_STALL

# A server that greets, answers the first command (the client's CAPA) with an empty list, and
# then never answers again: a call stalled in the middle of a session, for the cancel tests.
python3 -c '
import socket, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
def serve(c):
    c.sendall(b"+OK stalling server ready\r\n")
    f = c.makefile("rb")
    f.readline()
    c.sendall(b"+OK\r\n.\r\n")
    while c.recv(4096):
        pass
held = []
while True:
    c = s.accept()[0]
    held.append(c)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
' >"$serve_dir/stall-session-port" &
stall_session_pid=$!
i=0
while [ ! -s "$serve_dir/stall-session-port" ]; do
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then
        echo "bindings: the session-stalling server did not start" >&2
        exit 1
    fi
    sleep 0.1
done
POPWIRE_STALL_SESSION="127.0.0.1:$(cat "$serve_dir/stall-session-port")"
export POPWIRE_STALL_SESSION

# ---- library and bindings -------------------------------------------------------------------
echo "bindings: building the library ($profile) and uniffi-bindgen"
if [ "$profile" = release ]; then
    (cd "$repo" && cargo build -q --release -p popwire-bindings --lib)
else
    (cd "$repo" && cargo build -q -p popwire-bindings --lib)
fi
(cd "$repo" && cargo build -q -p popwire-bindings --features bindgen --bin uniffi-bindgen)
rm -rf "$gen"
(cd "$here" && "$target/debug/uniffi-bindgen" generate --no-format "$libdir/libpopwire_ffi.so" \
    --language kotlin --language swift --out-dir "$gen" >/dev/null)

# Recompiles only when an input changed (kotlinc alone takes ~25 s).
stamp_ok() { # NAME FILES...
    name="$1"; shift
    sum="$(cat "$@" | sha256sum | cut -d' ' -f1)"
    [ -f "$build/$name.stamp" ] && [ "$(cat "$build/$name.stamp")" = "$sum" ]
}
stamp_write() { # NAME FILES...
    name="$1"; shift
    cat "$@" | sha256sum | cut -d' ' -f1 >"$build/$name.stamp"
}

status=0

# ---- Kotlin ---------------------------------------------------------------------------------
if [ ! -x "$kotlin_home/bin/kotlinc" ] || [ ! -f "$jna" ]; then
    echo "bindings: the Kotlin compiler or JNA is missing: run tests/install-deps.sh bindings" >&2
    echo "kotlin: 0 passed, 1 failed"
    exit 1
fi
kt_sources="$gen/dev/popwire/popwire.kt $here/kotlin/src/dev/popwire/Extensions.kt $here/kotlin/test/Main.kt"
kt_cp="$kotlin_home/lib/kotlin-stdlib.jar:$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar:$jna"
# shellcheck disable=SC2086 # the source list is split on purpose
if ! stamp_ok kotlin $kt_sources || [ ! -f "$build/kotlin-tests.jar" ]; then
    echo "bindings: compiling the Kotlin tests"
    # shellcheck disable=SC2086
    "$kotlin_home/bin/kotlinc" -nowarn -cp "$kt_cp" $kt_sources -d "$build/kotlin-tests.jar"
    # shellcheck disable=SC2086
    stamp_write kotlin $kt_sources
fi
echo "bindings: running the Kotlin tests"
java -Djna.library.path="$libdir" -cp "$build/kotlin-tests.jar:$kt_cp" MainKt "$repo/tests/vectors" \
    >"$build/kotlin.log" 2>&1 || status=1
grep -v -e '^ok ' -e '^kotlin: ' "$build/kotlin.log" || true
kotlin_line="$(tail -n 1 "$build/kotlin.log")"

# ---- Swift ----------------------------------------------------------------------------------
swift_line=""
if [ "${POPWIRE_SKIP_SWIFT:-}" = 1 ]; then
    swift_line="swift: skipped (POPWIRE_SKIP_SWIFT=1)"
elif [ ! -x "$chroot_dir/usr/bin/swiftc" ]; then
    echo "bindings: no Swift chroot in $chroot_dir: run tests/install-deps.sh bindings" >&2
    swift_line="swift: 0 passed, 1 failed"
    status=1
else
    # The chroot sees the repository, the target dir and the Dovecot instance at the same paths.
    dovecot_dir="$(dirname "$(readlink -f "$POPWIRE_DOVECOT")")"
    dovecot_home="$(sed -n 's/^export POPWIRE_DOVECOT_HOME=//p' "$POPWIRE_DOVECOT")"
    for dir in proc "$repo" "$target" "$dovecot_dir" "$dovecot_home" "$serve_dir"; do
        case "$dir" in
            proc) src=proc; dst="$chroot_dir/proc" ;;
            *) src="$dir"; dst="$chroot_dir$dir" ;;
        esac
        if mountpoint -q "$dst" 2>/dev/null; then
            continue
        fi
        $sudo mkdir -p "$dst"
        if [ "$src" = proc ]; then
            $sudo mount -t proc proc "$dst"
        else
            $sudo mount --bind "$src" "$dst"
        fi
        mounted="$dst $mounted"
    done
    sw_sources="$gen/Popwire.swift $here/swift/Sources/Popwire/Extensions.swift $here/swift/Tests/main.swift"
    # shellcheck disable=SC2086
    if ! stamp_ok swift $sw_sources "$gen/PopwireFFI.h" || [ ! -x "$build/swift-tests" ]; then
        echo "bindings: compiling the Swift tests (swiftc in $chroot_dir)"
        # shellcheck disable=SC2086
        $sudo chroot "$chroot_dir" /usr/bin/swiftc -swift-version 5 -O \
            -Xcc -fmodule-map-file="$gen/PopwireFFI.modulemap" -I "$gen" \
            -L "$libdir" -lpopwire_ffi -module-name PopwireTests \
            $sw_sources -o "$build/swift-tests"
        # shellcheck disable=SC2086
        stamp_write swift $sw_sources "$gen/PopwireFFI.h"
    fi
    echo "bindings: running the Swift tests"
    $sudo chroot "$chroot_dir" /usr/bin/env LD_LIBRARY_PATH="$libdir" POPWIRE_DOVECOT="$POPWIRE_DOVECOT" \
        POPWIRE_SERVE="$POPWIRE_SERVE" POPWIRE_SERVE_MAILDIR="$POPWIRE_SERVE_MAILDIR" \
        POPWIRE_STALL="$POPWIRE_STALL" POPWIRE_STALL_SESSION="$POPWIRE_STALL_SESSION" TMPDIR=/tmp/ "$build/swift-tests" "$repo/tests/vectors" >"$build/swift.log" 2>&1 || status=1
    grep -v -e '^ok ' -e '^swift: ' "$build/swift.log" || true
    swift_line="$(tail -n 1 "$build/swift.log")"
fi

echo "$kotlin_line"
echo "$swift_line"
exit "$status"

#!/bin/sh
# Installs the system programs popwire's tests need (Debian/Ubuntu, apt).
#
#   tests/install-deps.sh            # every group
#   tests/install-deps.sh dovecot    # only the named groups
#
# Idempotent and fast when everything is present: packages are checked with
# `command -v` / `dpkg -s` first, and `apt-get update` runs only when
# something is missing. Uses sudo when not run as root.
#
# To add a dependency group NAME: write `deps_NAME` (calling `need PACKAGE`
# for each missing package) and add NAME to ALL_GROUPS.
set -eu

ALL_GROUPS="dovecot openssl"
MISSING=""

# Queue a package for installation unless dpkg says it is installed.
need() {
    for pkg in "$@"; do
        if ! dpkg -s "$pkg" >/dev/null 2>&1; then
            MISSING="$MISSING $pkg"
        fi
    done
}

# Dovecot 2.3 with POP3: the test server (popwire-tests, popwire-fixture).
# (A `dovecot` binary alone is not enough: POP3 lives in dovecot-pop3d.)
deps_dovecot() {
    need dovecot-core dovecot-pop3d
}

# openssl: makes the test CA and certificates; s_client for TLS checks.
deps_openssl() {
    command -v openssl >/dev/null 2>&1 || need openssl
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
        case " $ALL_GROUPS " in
            *" $group "*) "deps_$group" ;;
            *) echo "install-deps: unknown group '$group' (known: $ALL_GROUPS)" >&2; exit 2 ;;
        esac
    done
    install_missing
}

main "$@"

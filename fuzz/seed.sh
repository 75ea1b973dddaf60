#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the transcript vectors in tests/vectors/*.pop3.
#
#   fuzz/seed.sh            # from anywhere; writes seed-* files, leaves other corpus files alone
#
# S: lines (the server's bytes) feed the client targets, C: lines (the client's) feed the
# command parser and the server. Escapes (\r \n \t \\ \xHH) are decoded and a line ending in a
# lone backslash gets no CRLF, as tests/vectors/README.md describes. Each client seed starts
# with the option bytes its target reads first (see src/lib.rs, Plan::choose).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
vectors="$here/../tests/vectors"
corpus="$here/corpus"
mkdir -p "$corpus"/{decoder,client_session,command_parse,server_session}

# Prints one C:/S: line's bytes: escapes decoded, CRLF unless it ends in a lone backslash.
line_bytes() {
    local text="$1"
    if [[ "$text" =~ (^|[^\\])(\\\\)*\\$ ]]; then
        printf '%b' "${text%\\}"
    else
        printf '%b\r\n' "$text"
    fi
}

# Prints every line of $1 with prefix $2 ("S" or "C"); a bare "S:" is an empty line.
stream() {
    local file="$1" prefix="$2" line
    while IFS= read -r line || [[ -n "$line" ]]; do
        case "$line" in
            "$prefix: "*) line_bytes "${line#"$prefix: "}" ;;
            "$prefix:") printf '\r\n' ;;
        esac
    done < "$file"
}

option() { # option FILE NAME DEFAULT
    local v
    v="$(sed -n "s/^option $2 //p" "$1" | head -n1)"
    printf '%s' "${v:-$3}"
}

for file in "$vectors"/*.pop3; do
    name="$(basename "$file" .pop3)"
    case "$(option "$file" security tls)" in tls) sec=0 ;; starttls) sec=1 ;; *) sec=2 ;; esac
    [[ "$(option "$file" allow-cleartext off)" == on ]] && clear=1 || clear=0
    [[ "$(option "$file" negotiate on)" == on ]] && nego=1 || nego=0
    [[ "$(option "$file" lenient-uids off)" == on ]] && lenient=1 || lenient=0
    server="$(mktemp)"
    stream "$file" S > "$server"

    # decoder: one selector byte (0 RETR, 4 UIDL, 11 RETR+UIDL+TOP), then the server's bytes.
    for sel in 00 04 0b; do
        { printf "\\x$sel"; cat "$server"; } > "$corpus/decoder/seed-$name-$sel"
    done

    # client_session: security, default limits, cleartext, negotiate, pipelining, 8 in flight,
    # lenient, AUTH auto, UIDL, password, no CAPA, fetch 3, RETR, DELE, QUIT; 8-octet reads.
    {
        printf "\\x0$sec\\x00\\x00\\x00\\x0$clear\\x0$nego\\x01\\x07\\x00\\x0$lenient"
        printf '\x00\x00\x00\x00\x03\x00\x00\x01\x01'
        printf '\x00\x00\x01\x07\x00'
        cat "$server"
    } > "$corpus/client_session/seed-$name"
    rm -f "$server"

    # command_parse: each client line without its CRLF.
    i=0
    while IFS= read -r line; do
        [[ "$line" == "C: "* ]] || continue
        line_bytes "${line#C: }" | sed 's/\r$//' | head -c -1 > "$corpus/command_parse/seed-$name-$i"
        i=$((i + 1))
    done < "$file"

    # server_session: every mechanism, APOP, no STLS, cleartext allowed, pipelining, 512-octet
    # lines, 4 KiB chunks, 64 KiB input, 4 messages, 4 KiB reads; then the client's bytes.
    {
        printf '\xff\x01\x00\x00\x01\x01\x00\x00\x00\x00\xf8\x01\x00\x10\xf0\xff\x04'
        printf '\x00\x00\xff\x0f'
        stream "$file" C
    } > "$corpus/server_session/seed-$name"
done

# A session the server's MemoryMaildrop (alice/wonderland) accepts, once with USER/PASS and once
# with AUTH PLAIN.
session='CAPA\r\nUSER alice\r\nPASS wonderland\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nLIST 2\r\nUIDL 3\r\nDELE 1\r\nRSET\r\nNOOP\r\nRETR 4\r\nDELE 2\r\nQUIT\r\n'
header='\xff\x01\x00\x00\x01\x01\x00\x00\x00\x00\xf8\x01\x00\x10\xf0\xff\x04\x00\x00\xff\x0f'
printf "$header$session" > "$corpus/server_session/seed-alice-user-pass"
printf "${header}AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\nUIDL\r\nRETR 2\r\nQUIT\r\n" > "$corpus/server_session/seed-alice-plain"
printf "${header}AUTH SCRAM-SHA-256\r\nbj0sbj1hbGljZSxyPWZ5a28rZDJsYmJGZ09OUnY5cWt4ZGF3TA==\r\n*\r\nQUIT\r\n" > "$corpus/server_session/seed-alice-scram"

for target in decoder client_session command_parse server_session; do
    echo "$target: $(find "$corpus/$target" -name 'seed-*' | wc -l) seeds"
done

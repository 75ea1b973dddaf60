#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the transcript vectors in tests/vectors/*.pop3, and the
# config and journal targets from the README's config example and the cases the unit tests use.
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
mkdir -p "$corpus"/{decoder,client_session,command_parse,server_session,config,journal}

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
    # lines, 4 KiB chunks, 64 KiB input, the 4 fixed messages, 4 KiB reads, handshake at once,
    # 1 KiB chunks for the reference run; then the client's bytes.
    {
        printf '\xff\x01\x00\x00\x01\x01\x00\x00\x00\x00\xf8\x01\x00\x10\xf0\xff\x04'
        printf '\x00\x00\xff\x0f\x00\xff\x03'
        stream "$file" C
    } > "$corpus/server_session/seed-$name"
done

# A session the server's MemoryMaildrop (alice/wonderland) accepts, once with USER/PASS and once
# with AUTH PLAIN.
session='CAPA\r\nUSER alice\r\nPASS wonderland\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nLIST 2\r\nUIDL 3\r\nDELE 1\r\nRSET\r\nNOOP\r\nRETR 4\r\nDELE 2\r\nQUIT\r\n'
header='\xff\x01\x00\x00\x01\x01\x00\x00\x00\x00\xf8\x01\x00\x10\xf0\xff\x04\x00\x00\xff\x0f\x00\xff\x03'
printf "$header$session" > "$corpus/server_session/seed-alice-user-pass"
printf "${header}AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\nUIDL\r\nRETR 2\r\nQUIT\r\n" > "$corpus/server_session/seed-alice-plain"
printf "${header}AUTH SCRAM-SHA-256\r\nbj0sbj1hbGljZSxyPWZ5a28rZDJsYmJGZ09OUnY5cWt4ZGF3TA==\r\n*\r\nQUIT\r\n" > "$corpus/server_session/seed-alice-scram"

# The same session with STLS offered (the handshake two reads late, then TLS), and with two
# messages and their unique-ids cut from the input (maildrop byte 0xc2: bit 6 messages, bit 7
# uids; each message a u16 length then its bytes, each uid a u16 length - 1 then its bytes).
stls_header='\xff\x01\x01\x00\x01\x01\x00\x00\x00\x00\xf8\x01\x00\x10\xf0\xff\x04\x00\x00\x10\x00\x06\xff\x03'
printf "${stls_header}CAPA\r\nUSER alice\r\nSTLS\r\nUSER injected\r\nCAPA\r\nUSER alice\r\nPASS wonderland\r\nSTAT\r\nQUIT\r\n" \
    > "$corpus/server_session/seed-alice-stls"
{
    printf '\xff\x01\x00\x00\x01\x01\x00\x00\x00\x00\xf8\x01\x00\x10\xf0\xff\xc2'
    printf '\x1b\x00Subject: a\n\n.dot\r\nlast line'      # 27 octets
    printf '\x04\x00uid-1'                                 # 1 + 4 octets
    printf '\x0a\x00\r\n.\r\n..\r\n\n'                    # 10 octets
    printf '\x04\x00uid-1'                                 # a duplicate unique-id
    printf '\x00\x00\xff\x0f\x00\xff\x03'
    printf "USER alice\r\nPASS wonderland\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\nRETR 2\r\nTOP 2 1\r\nDELE 2\r\nQUIT\r\n"
} > "$corpus/server_session/seed-alice-own-messages"

# config: one origin byte (0: an absolute path), then the file. The README's example first.
config_seed() { # config_seed NAME TEXT
    { printf '\x00'; printf '%s' "$2"; } > "$corpus/config/seed-$1"
}
config_seed readme "$(sed -n '/^```toml$/,/^```$/{/^```/d;p}' "$here/../README.md")"
account='[accounts.work]
email = "me@example.com"
server = "pop.example.com"
'
config_seed minimal "${account}password = \"hunter2\"
maildir = \"~/Mail/work\""
config_seed every-key "${account}username = \"me\"
password_command = [\"pass\", \"show\", \"mail\"]
port = 1995
security = \"StartTLS\"
ca_file = \"certs/ca.pem\"
auth = \"scram-sha-256\"
keep = \"1d12h\"
mbox = \"/var/mail/me\"
max_message_size = \"10MiB\"
timeout = 90"
config_seed token "${account}token_command = \"oauth2-token work\"
auth = \"xoauth2\"
mda = [\"procmail\", \"-d\", \"me\"]
keep = true"
config_seed cleartext "[accounts.\"local box\"]
email = \"u@localhost\"
server = \"[::1]\"
security = \"none\"
password_env = \"MAIL_PW\"
mda = \"maildrop\"

[accounts.remote]
email = \"u@example.org\"
server = \"192.0.2.7\"
security = \"none\"
password = \"pw\"
maildir = \"Mail\"
keep = false"
config_seed dotted-inline '[accounts]
home = { email = "h@x.org", server = "pop.x.org", password_env = "PW", mbox = "/mb" }
work.email = "me@example.com"
work.server = "pop.example.com"
work.password = "pw"
work.maildir = "/m"'
config_seed implied-table-error 'accounts.work.email = "me@example.com"
accounts.work.server = "s"
accounts.work.password = "pw"
accounts.work.port = "x"'
config_seed typo "${account}securty = \"tls\"
pasword = \"x\"
maildir = \"/m\""
config_seed conflicts "${account}password = \"a\"
password_env = \"B\"
maildir = \"/m\"
mbox = \"/b\""
config_seed bad-values "${account}password = \"pw\"
maildir = \"~bob/Mail\"
port = 70000
keep = \"3 months\"
max_message_size = \"0K\"
timeout = 0
auth = \"gssapi\""
config_seed types "${account}password = 5
maildir = 1979-05-27T07:32:00Z
keep = 1.5
mda = [\"procmail\", 5]"
config_seed array-of-tables '[[accounts]]
email = "me@example.com"
server = "pop.example.com:995"'
config_seed top-level-keys 'email = "me@example.com"
server = "pop.example.com"
[acounts.x]'
config_seed syntax "${account}password = \"unterminated
maildir = '/m'"
config_seed control-key '[accounts."a	b\u001b[31m"]
port = 1
port = 2'                 # the fuzzer's first find: toml quotes the key raw in its message
config_seed control-server "${account/pop.example.com/pop\\u001b[2J.example.com}password = \"pw\"
maildir = \"/m\"
security = \"none\""
config_seed bad-names '[accounts.".hidden"]
email = "a@b"
[accounts."a/b"]
email = "a@b"'

# journal: the file popwire-uid-journal writes, and the ways it can be damaged.
journal_seed() { # journal_seed NAME PRINTF-FORMAT
    printf "$2" > "$corpus/journal/seed-$1"
}
journal_seed clean 'popwire-uid-journal 2\n1a2b3c\t1732696740\nuid-2\t1732696741\n'
journal_seed version-1 'popwire-uid-journal 1\n1a2b3c\t1732696740\nuid-2\t1732696741\n'
journal_seed receipts 'popwire-uid-journal 2\na\t1\ts=5175\tr=1732696741.M5P7Q0.host,S=5120\n+\nb\t2\ts=17\tr=1732696742.M6P7Q1.host,S=17\nc\t3\n'
journal_seed receipt-oddities 'popwire-uid-journal 2\nx\t1\tr=..%%2F..%%2Fetc%%2Fpasswd\nx\t0\tr=other\ny\t2\tr=\n+\n+\nz\t3\tq=future\tr=a\ts=9\n'
journal_seed reused-uid 'popwire-uid-journal 2\na\t5\ts=100\na\t7\ts=200\na\t1\ts=100\ndup\t3\ns=x\t1\n'
journal_seed bad-size 'popwire-uid-journal 2\na\t5\ts=-1\n'
journal_seed escaped 'popwire-uid-journal 2\nwith%%20space\t1\n50%%25\t2\n%%C3%%BCn%%C3%%AF\t3\ntab%%09x\t4\n'
journal_seed torn 'popwire-uid-journal 2\na\t1\nb\t2\nc\t17'
journal_seed duplicates 'popwire-uid-journal 2\na\t5\nb\t2\na\t3\n'
journal_seed empty-header 'popwire-uid-journal 2\n'
journal_seed torn-header 'popwire-uid-jour'
journal_seed newer 'popwire-uid-journal 3\nx\ty\n'
journal_seed not-a-journal 'uid\t1\n'
journal_seed bad-lines 'popwire-uid-journal 2\nno-tab\n%%4\t1\nx\t-1\n\xff\t1\n%%FF\t2\n'
journal_seed crlf 'popwire-uid-journal 2\r\na\t1\r\n'

for target in decoder client_session command_parse server_session config journal; do
    echo "$target: $(find "$corpus/$target" -name 'seed-*' | wc -l) seeds"
done

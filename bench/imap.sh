#!/bin/sh
# POP -> IMAP on loopback: 1000 x 5 KB from the test Dovecot's POP3 into its IMAP (imaps),
# median wall time of `popwire fetch` over 5 runs; and the peak RSS of one 200 MB message.
# Figures go to BENCHMARKS.md ("IMAP destination"). Needs: tests/install-deps.sh dovecot.
# POPWIRE_IMAPD_NO_FSYNC=1 runs Dovecot with mail_fsync = never (the server's share of the time).
set -eu
cd "$(dirname "$0")/.."
cargo test --release -p popwire-cli --test imap_dovecot -- --ignored --nocapture \
    bench_pop_to_imap_1000_small_messages rss_of_one_200_megabyte_message 2>&1 |
    grep -E "POP -> IMAP|200 MB message|test result"

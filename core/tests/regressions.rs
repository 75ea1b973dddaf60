//! Inputs that found bugs, kept as plain tests with their bytes inline.
//!
//! Each was found by the property tests or the fuzzers and is fixed; the test keeps it fixed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use popwire::proto::ResponseCode;
use popwire::proto::codec::status::write_status;
use popwire::proto::codec::{Command, StatusLine};
use popwire::proto::{Secret, UsageError};

fn encode(command: &Command) -> Result<Vec<u8>, UsageError> {
    let mut wire = Vec::new();
    command.encode(&mut wire).map(|()| wire)
}

/// An empty word vanishes on the wire: `APOP  digest` reads back as a missing argument,
/// `AUTH  x` as mechanism `X`, `AUTH PLAIN ` as no initial response, `LANG ` as a language
/// listing. `Command::validate` must refuse empty words wherever POP3 has no way to write them
/// (found by `command_parse_inverts_encode`). An empty SASL continuation *is* an empty line
/// (RFC 5034 section 4), so that one stays allowed.
#[test]
fn empty_arguments_are_refused() {
    let empty = [
        Command::Apop {
            name: String::new(),
            digest: "c4c9334bac560ecc979e58001b3e22fb".into(),
        },
        Command::Apop {
            name: "mrose".into(),
            digest: String::new(),
        },
        Command::Auth {
            mechanism: String::new(),
            initial_response: Some(Secret::new("dGVzdA==")),
        },
        // RFC 5034 writes an empty initial response as `=`.
        Command::Auth {
            mechanism: "PLAIN".into(),
            initial_response: Some(Secret::new("")),
        },
        Command::Lang(Some(String::new())),
    ];
    for command in empty {
        let wire = encode(&command);
        assert!(
            matches!(wire, Err(UsageError::InvalidArgument { .. })),
            "{command:?} encoded as {:?}",
            wire.map(|w| String::from_utf8_lossy(&w).into_owned())
        );
    }
}

/// What the client may send, the server must read: a PASS argument is octets (RFC 1939), and
/// a Latin-1 password is not UTF-8.
#[test]
fn pass_with_non_utf8_octets_parses() {
    let command = Command::Pass(Secret::new(b"gr\xfcn".to_vec()));
    let wire = encode(&command).unwrap();
    assert_eq!(
        Command::parse(wire.strip_suffix(b"\r\n").unwrap()),
        Ok(command)
    );
}

/// `write_status` without a code, given text that starts like one, writes a line the parser
/// reads as carrying that code (found by `status_line_reads_back_what_was_written`). A server
/// echoing a maildrop error such as `[AUTH] ...` would tell the client its credentials are wrong.
#[test]
fn status_text_is_never_read_as_a_code() {
    let mut wire = Vec::new();
    write_status(&mut wire, false, None, "[AUTH] backend said so");
    let line = StatusLine::parse(wire.strip_suffix(b"\r\n").unwrap()).unwrap();
    assert_eq!(line.code, None::<ResponseCode>);
}

/// A UIDL listing of tiny entries (`1 a`) is five octets a line on the wire but a `String` and
/// a `Vec` slot in memory: counted by octets alone, a 64 MiB listing cost 620 MB to 1.3 GB
/// (found by the fuzzing notes in SECURITY.md). Each entry now also counts
/// `LISTING_ENTRY_COST` against the cap.
#[test]
fn tiny_listing_entries_count_their_memory_against_the_cap() {
    use popwire::proto::{Client, ClientOptions, Error, Limits, ProtocolError, Security};
    let entries = 1000;
    let mut client = Client::new(ClientOptions {
        security: Security::None,
        negotiate: false,
        allow_cleartext_password: true,
        limits: Limits {
            // Room for the octets of 1000 `n a` lines, not for their parsed entries.
            listing: entries * 16,
            ..Limits::default()
        },
        ..ClientOptions::default()
    });
    client.handle_input(b"+OK ready\r\n").unwrap();
    while client.poll_event().unwrap().is_some() {}
    let mut listing = b"+OK\r\n".to_vec();
    for n in 1..=entries {
        listing.extend_from_slice(format!("{n} a\r\n").as_bytes());
    }
    listing.extend_from_slice(b".\r\n");
    // UIDL is a transaction command: log in first.
    client.user("u").unwrap();
    let _ = client.poll_transmit();
    client.handle_input(b"+OK\r\n").unwrap();
    while client.poll_event().unwrap().is_some() {}
    client.pass(popwire::proto::Secret::new("p")).unwrap();
    let _ = client.poll_transmit();
    client.handle_input(b"+OK\r\n").unwrap();
    while client.poll_event().unwrap().is_some() {}
    client.uidl(None).unwrap();
    let _ = client.poll_transmit();
    client.handle_input(&listing).unwrap();
    let mut outcome = Ok(());
    loop {
        match client.poll_event() {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    assert!(
        matches!(
            outcome,
            Err(Error::Protocol(ProtocolError::ReplyTooLarge { .. }))
        ),
        "{outcome:?}"
    );
}

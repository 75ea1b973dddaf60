//! The server role fed arbitrary client bytes.
//!
//! The first bytes choose the server options, the maildrop's contents (the fixed messages below,
//! or messages and unique-ids cut from the input), the read sizes and when the transport
//! finishes a TLS handshake after STLS; the rest is what the client sends. Checks:
//! - no panic; every `poll_transmit` stays within a few chunk sizes; the unprocessed input
//!   never passes `max_input`; a closed session stays silent;
//! - STLS: `tls_established` succeeds exactly when a STLS was accepted and not yet followed by
//!   it, and a refused call changes nothing; between the `+OK` and the handshake the server
//!   writes nothing and reports nothing, whatever the client sends (the transport may finish
//!   the handshake at once, a few reads later, or never);
//! - without STLS (which discards what shares a read with it, by design) the bytes written and
//!   the events depend neither on how the client's bytes are cut into reads nor on
//!   `chunk_size`: the reference run reads one octet at a time with another chunk size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popwire::proto::server::{MemoryMaildrop, Server, ServerEvent, ServerOptions};
use popwire::proto::{Expire, Mechanism};
use popwire_fuzz::{Choices, reads};

const MESSAGES: &[&[u8]] = &[
    b"From: a@example.com\r\nSubject: one\r\n\r\nbody\r\n.\r\n..two dots\r\n",
    b"Subject: bare LF\n\n.leading dot\nno final newline",
    b"",
    b"\r\n\r\n.\r",
];

fn options(c: &mut Choices<'_>) -> ServerOptions {
    let mask = c.byte();
    let mechanisms = Mechanism::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, m)| m)
        .collect();
    ServerOptions {
        greeting: "fuzz ready".into(),
        apop_timestamp: c.flag().then(|| "<1896.697170952@dbc.mtview.ca.us>".into()),
        offer_stls: c.flag(),
        tls_active: c.flag(),
        allow_cleartext_password: c.flag(),
        pipelining: c.flag(),
        mechanisms,
        // Real iteration counts make every SCRAM login cost milliseconds; the logic is the same.
        scram_iterations: 1 + u32::from(c.byte() % 16),
        implementation: c.flag().then(|| "popwire fuzz".into()),
        expire: match c.byte() % 3 {
            0 => None,
            1 => Some(Expire::Never),
            _ => Some(Expire::Days(30)),
        },
        login_delay: c.flag().then_some(900),
        max_line: c.range(8, 1024),
        chunk_size: c.range(1, 8192),
        max_input: c.range(16, 1 << 16),
    }
}

/// The maildrop. The choice byte: bits 0-2 the number of messages (0 to 7), bit 6 messages
/// cut from the input (a little-endian length up to 4 KiB, then the bytes) instead of the fixed
/// ones, bit 7 unique-ids from the input (a length byte, then bytes folded into 0x21..=0x7E)
/// instead of `<serial>-<hash>`.
fn maildrop(c: &mut Choices<'_>) -> MemoryMaildrop {
    let mut drop = MemoryMaildrop::new()
        .with_user("alice", "wonderland")
        .with_user("bob", "pass word");
    let mode = c.byte();
    let count = usize::from(mode & 7);
    for i in 0..count {
        let message = if mode & 0x40 != 0 {
            let len = c.range(0, 4096);
            c.take(len).to_vec()
        } else {
            MESSAGES
                .get(i % MESSAGES.len())
                .copied()
                .unwrap_or(b"")
                .to_vec()
        };
        if mode & 0x80 != 0 {
            let len = c.range(1, 70);
            let uid: String = c
                .take(len)
                .iter()
                .map(|b| char::from(0x21 + b % 94))
                .collect();
            drop.add_message_with_uid(if uid.is_empty() { "x".into() } else { uid }, message);
        } else {
            drop.add_message(message);
        }
    }
    drop
}

/// When the transport calls `tls_established` after `StlsRequested`.
#[derive(Debug, Clone, Copy)]
enum Handshake {
    /// Straight away, before reading on.
    AtOnce,
    /// Before handing over the n-th read after the request (the reads in between are discarded).
    AfterReads(usize),
    /// Never (the handshake failed and the transport keeps reading).
    Never,
}

fn handshake(c: &mut Choices<'_>) -> Handshake {
    let b = c.byte();
    match b % 4 {
        0 | 1 => Handshake::AtOnce,
        2 => Handshake::AfterReads(usize::from(b >> 2) % 4 + 1),
        _ => Handshake::Never,
    }
}

/// Unprocessed input, read off the server's `Debug` (there is no accessor for it).
fn pending_input(server: &Server<MemoryMaildrop>) -> usize {
    let state = format!("{server:?}");
    state
        .split("pending_input: ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Everything the server wrote, and what it reported.
fn run(
    options: &ServerOptions,
    drop: &MemoryMaildrop,
    input: &[u8],
    sizes: &[usize],
    handshake: Handshake,
) -> (Vec<u8>, Vec<String>) {
    let mut server = Server::new(options.clone(), drop.clone());
    let mut written = Vec::new();
    let mut events = Vec::new();
    // Some(n): STLS accepted, handshake due before the n-th read from now (None: never).
    let mut awaiting: Option<Option<usize>> = None;
    let budget = options.chunk_size.max(1);
    let check_pending = |server: &Server<MemoryMaildrop>| {
        let pending = pending_input(server);
        assert!(
            pending <= options.max_input,
            "{pending} octets pending over max_input {}",
            options.max_input
        );
    };
    let establish = |server: &mut Server<MemoryMaildrop>, events: &mut Vec<String>| {
        server
            .tls_established()
            .expect("tls_established after an accepted STLS");
        assert!(server.is_tls(), "TLS established but is_tls is false");
        events.push("tls_established".into());
    };
    let drain = |server: &mut Server<MemoryMaildrop>,
                 written: &mut Vec<u8>,
                 events: &mut Vec<String>,
                 awaiting: &mut Option<Option<usize>>| loop {
        let mut idle = true;
        if let Some(bytes) = server.poll_transmit() {
            idle = false;
            assert!(!bytes.is_empty(), "poll_transmit returned an empty buffer");
            assert!(
                awaiting.is_none(),
                "wrote {:?} while waiting for the TLS handshake",
                String::from_utf8_lossy(&bytes)
            );
            // A chunk's worth, then at most one more step: a status line or listing, or a
            // dot-stuffed chunk of a message (at worst twice its size).
            assert!(
                bytes.len() <= 3 * budget + 2048,
                "poll_transmit handed out {} octets with chunk_size {budget}",
                bytes.len()
            );
            written.extend_from_slice(&bytes);
        }
        while let Some(event) = server.poll_event() {
            idle = false;
            assert!(
                awaiting.is_none(),
                "event {event:?} while waiting for the TLS handshake"
            );
            let stls = matches!(event, ServerEvent::StlsRequested { .. });
            events.push(format!("{event:?}"));
            if stls {
                assert!(!server.is_tls(), "STLS accepted on a TLS connection");
                match handshake {
                    Handshake::AtOnce => establish(server, events),
                    Handshake::AfterReads(n) => *awaiting = Some(Some(n)),
                    Handshake::Never => *awaiting = Some(None),
                }
            }
        }
        if idle {
            break;
        }
    };
    drain(&mut server, &mut written, &mut events, &mut awaiting);
    for read in reads(input, sizes) {
        if let Some(Some(n)) = &mut awaiting {
            *n -= 1;
            if *n == 0 {
                awaiting = None;
                establish(&mut server, &mut events);
                drain(&mut server, &mut written, &mut events, &mut awaiting);
            }
        }
        if awaiting.is_none() {
            // A transport's mistake: refused, and nothing changes.
            let (tls, closed) = (server.is_tls(), server.is_closed());
            assert!(
                server.tls_established().is_err(),
                "tls_established accepted without a STLS"
            );
            assert_eq!((server.is_tls(), server.is_closed()), (tls, closed));
        }
        let closed = server.is_closed();
        let before = written.len();
        server.handle_input(read);
        check_pending(&server);
        drain(&mut server, &mut written, &mut events, &mut awaiting);
        check_pending(&server);
        if closed {
            assert_eq!(written.len(), before, "a closed session wrote more");
        }
    }
    (written, events)
}

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let options = options(&mut c);
    let drop = maildrop(&mut c);
    // Reads that fit beside one partial line, so none is refused for size.
    let room = options.max_input.saturating_sub(options.max_line).max(1);
    let sizes: Vec<usize> = (0..c.range(1, 4))
        .map(|_| c.range(1, 4096).min(room))
        .collect();
    let handshake = handshake(&mut c);
    let reference_chunk = c.range(1, 8192);
    let input = c.rest();
    let (written, events) = run(&options, &drop, input, &sizes, handshake);
    let stls_possible = options.offer_stls && !options.tls_active;
    if !stls_possible && options.max_input > options.max_line {
        let reference_options = ServerOptions {
            chunk_size: reference_chunk,
            ..options.clone()
        };
        let (reference, reference_events) = run(&reference_options, &drop, input, &[1], handshake);
        assert_eq!(
            events, reference_events,
            "server events depend on the read sizes or the chunk size"
        );
        assert_eq!(
            written, reference,
            "server output depends on the read sizes or the chunk size"
        );
    }
});

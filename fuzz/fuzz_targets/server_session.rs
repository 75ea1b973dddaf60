//! The server role fed arbitrary client bytes.
//!
//! The first bytes choose the server options, the maildrop's contents and the read sizes; the
//! rest is what the client sends. Checks: no panic; every `poll_transmit` stays within a few
//! chunk sizes; the unprocessed input never passes `max_input`; a closed session stays silent;
//! and (without STLS, which discards what shares a read with it by design) the bytes written
//! do not depend on how the client's bytes are cut into reads.
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

fn maildrop(c: &mut Choices<'_>) -> MemoryMaildrop {
    let mut drop = MemoryMaildrop::new()
        .with_user("alice", "wonderland")
        .with_user("bob", "pass word");
    let count = c.byte() % 6;
    for i in 0..count {
        let message = MESSAGES
            .get(usize::from(i) % MESSAGES.len())
            .copied()
            .unwrap_or(b"");
        drop.add_message(message.to_vec());
    }
    drop
}

/// Everything the server wrote, and how it ended.
fn run(
    options: &ServerOptions,
    drop: &MemoryMaildrop,
    input: &[u8],
    sizes: &[usize],
) -> (Vec<u8>, Vec<String>) {
    let mut server = Server::new(options.clone(), drop.clone());
    let mut written = Vec::new();
    let mut events = Vec::new();
    let budget = options.chunk_size.max(1);
    let drain = |server: &mut Server<MemoryMaildrop>,
                 written: &mut Vec<u8>,
                 events: &mut Vec<String>| loop {
        let mut idle = true;
        if let Some(bytes) = server.poll_transmit() {
            idle = false;
            assert!(!bytes.is_empty(), "poll_transmit returned an empty buffer");
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
            if let ServerEvent::StlsRequested { .. } = event {
                server.tls_established().expect("STLS was accepted");
            }
            events.push(format!("{event:?}"));
        }
        let state = format!("{server:?}");
        let pending: usize = state
            .split("pending_input: ")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            pending <= options.max_input,
            "{pending} octets pending over max_input {}",
            options.max_input
        );
        if idle {
            break;
        }
    };
    drain(&mut server, &mut written, &mut events);
    for read in reads(input, sizes) {
        let closed = server.is_closed();
        let before = written.len();
        server.handle_input(read);
        drain(&mut server, &mut written, &mut events);
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
    let input = c.rest();
    let (written, events) = run(&options, &drop, input, &sizes);
    let stls_possible = options.offer_stls && !options.tls_active;
    if !stls_possible && options.max_input > options.max_line {
        let (reference, reference_events) = run(&options, &drop, input, &[1]);
        assert_eq!(
            events, reference_events,
            "server events depend on the read sizes"
        );
        assert_eq!(
            written, reference,
            "server output depends on the read sizes"
        );
    }
});

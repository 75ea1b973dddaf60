//! The reply decoders: status lines, line framing, dot-unstuffing, and listing parsing.
//!
//! The first byte picks the command a logged-in client issues (RETR, TOP, LIST, UIDL, CAPA,
//! STAT, LANG, ...); the rest is the server's reply stream. Checks:
//! - `StatusLine::parse` and `find_line` never panic and return sub-slices of their input;
//! - `BodyDecoder` gives the same body fed whole or one octet at a time, accounts its octets,
//!   and `DotStuffer` then `BodyDecoder` gives back the CRLF form of any body it decoded;
//! - the client, after a canned login, never panics and logs the same fed whole or octet-wise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popwire::proto::codec::{BodyDecoder, Decoded, DotStuffer, StatusLine, find_line};
use popwire::proto::{Client, ClientOptions, Event, Security};

/// What decoding a stream gave: the body so far, and how it ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    End { body: Vec<u8>, consumed: usize },
    Incomplete { body: Vec<u8> },
    Error,
}

fn decode(stream: &[u8], step: usize, max_line: usize) -> Outcome {
    let mut decoder = BodyDecoder::new(max_line);
    let mut buf = Vec::new();
    let mut body = Vec::new();
    let mut consumed_total = 0;
    for piece in stream.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&buf) {
                Ok(Decoded::Chunk { data, consumed }) => {
                    assert!(
                        data.start <= data.end && data.end <= consumed && consumed <= buf.len()
                    );
                    assert!(consumed > 0, "a chunk that consumes nothing loops forever");
                    body.extend_from_slice(&buf[data]);
                    buf.drain(..consumed);
                    consumed_total += consumed;
                }
                Ok(Decoded::End { consumed }) => {
                    assert!(consumed <= buf.len());
                    assert_eq!(decoder.octets(), body.len() as u64);
                    return Outcome::End {
                        body,
                        consumed: consumed_total + consumed,
                    };
                }
                Ok(Decoded::NeedMore) => break,
                Err(_) => return Outcome::Error,
            }
        }
    }
    assert_eq!(decoder.octets(), body.len() as u64);
    assert!(buf.len() <= 2, "the decoder held back {} octets", buf.len());
    Outcome::Incomplete { body }
}

/// Bare LF to CRLF, a final line completed: what `DotStuffer` promises to send.
fn crlf_form(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    match message.last() {
        None | Some(b'\n') => {}
        Some(b'\r') => out.push(b'\n'),
        Some(_) => out.extend_from_slice(b"\r\n"),
    }
    out
}

fn check_lines(stream: &[u8]) {
    let mut rest = stream;
    while let Ok(Some(line)) = find_line(rest, 512) {
        assert!(line.content_len < line.consumed && line.consumed <= rest.len());
        assert_eq!(rest[line.consumed - 1], b'\n');
        let content = &rest[..line.content_len];
        if let Some(status) = StatusLine::parse(content) {
            let range = content.as_ptr_range();
            assert!(range.contains(&status.text.as_ptr()) || status.text.is_empty());
            assert!(status.text.len() <= content.len());
        }
        rest = &rest[line.consumed..];
    }
}

fn check_body(stream: &[u8]) {
    let max_line = 1000;
    let whole = decode(stream, stream.len(), max_line);
    let octetwise = decode(stream, 1, max_line);
    match (&whole, &octetwise) {
        // A too-long line fails both ways, though not after the same partial output.
        (Outcome::Error, Outcome::Error) => {}
        _ => assert_eq!(whole, octetwise),
    }
    if let Outcome::End { body, .. } = whole {
        let mut stuffer = DotStuffer::new();
        let mut wire = Vec::new();
        stuffer.push(&body, &mut wire);
        stuffer.finish(&mut wire);
        let again = decode(&wire, 7, usize::MAX);
        let expected = crlf_form(&body);
        assert_eq!(
            again,
            Outcome::End {
                body: expected.clone(),
                consumed: wire.len()
            }
        );
        assert_eq!(DotStuffer::wire_size(&body), expected.len() as u64);
    }
}

/// A client logged in with USER/PASS and told about LANG; `lenient` for unique-ids.
fn logged_in(lenient: bool) -> Option<Client> {
    let mut client = Client::new(ClientOptions {
        security: Security::Tls,
        negotiate: false,
        lenient_uids: lenient,
        ..Default::default()
    });
    let feed = |client: &mut Client, bytes: &[u8]| -> Option<()> {
        while client.poll_transmit().is_some() {}
        client.handle_input(bytes).ok()?;
        while client.poll_event().ok()?.is_some() {}
        while client.poll_transmit().is_some() {}
        Some(())
    };
    feed(&mut client, b"+OK ready <1.2@host>\r\n")?;
    client.capa().ok()?;
    feed(&mut client, b"+OK\r\nLANG\r\nUTF8\r\nTOP\r\nUIDL\r\n.\r\n")?;
    client.user("user").ok()?;
    client.pass("pass".into()).ok()?;
    // USER is a barrier: PASS goes out only after its reply.
    feed(&mut client, b"+OK\r\n")?;
    feed(&mut client, b"+OK\r\n")?;
    while client.poll_transmit().is_some() {}
    if client.phase() != popwire::proto::Phase::Transaction {
        return None;
    }
    Some(client)
}

fn client_log(command: u8, stream: &[u8], step: usize) -> Vec<String> {
    let Some(mut client) = logged_in(command & 0x10 != 0) else {
        panic!("the canned login failed");
    };
    let issued = match command % 12 {
        0 => client.retr(1),
        1 => client.top(1, 5),
        2 => client.list(None),
        3 => client.list(Some(1)),
        4 => client.uidl(None),
        5 => client.uidl(Some(1)),
        6 => client.capa(),
        7 => client.stat(),
        8 => client.lang(None),
        9 => client.noop(),
        10 => client.quit(),
        _ => client
            .retr(1)
            .and_then(|_| client.uidl(None))
            .and_then(|_| client.top(2, 0)),
    };
    issued.expect("the command is valid after login");
    let mut log = Vec::new();
    let mut bodies = Vec::new();
    'feed: for piece in stream.chunks(step.max(1)) {
        while client.poll_transmit().is_some() {}
        if let Err(e) = client.handle_input(piece) {
            log.push(format!("fatal {e:?}"));
            break;
        }
        loop {
            // Write out commands that waited for a reply before reading on, as a transport does.
            while client.poll_transmit().is_some() {}
            match client.poll_event() {
                Ok(Some(Event::Body { data, .. })) => bodies.extend_from_slice(data),
                Ok(Some(other)) => {
                    log.push(format!("{other:?} body {bodies:?}"));
                    bodies.clear();
                }
                Ok(None) => break,
                Err(e) => {
                    log.push(format!("fatal {e:?}"));
                    break 'feed;
                }
            }
        }
    }
    log
}

fuzz_target!(|data: &[u8]| {
    let Some((&command, stream)) = data.split_first() else {
        return;
    };
    check_lines(stream);
    check_body(stream);
    let whole = client_log(command, stream, stream.len());
    let octetwise = client_log(command, stream, 1);
    assert_eq!(
        whole, octetwise,
        "the reply decodes differently depending on the reads"
    );
});

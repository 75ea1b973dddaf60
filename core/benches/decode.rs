//! Decoding throughput: multi-line bodies and listings, fed in 64 KiB reads as a socket would.
//!
//! - `body/body_decoder`: a 1 MiB dot-stuffed body through `BodyDecoder` alone.
//! - `body/client_retr`: the same body as a RETR reply through the whole `Client`, every
//!   `Event::Body` consumed.
//! - `body/memchr_baseline`: counting the LFs of the same bytes with `memchr`, the floor any
//!   line-aware decoder pays.
//! - `listing/client_uidl_10k`: a 10,000-entry UIDL listing through the `Client`.
//!
//! Run with `cargo bench -p popwire --no-default-features --bench decode`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use popwire::proto::codec::{BodyDecoder, Decoded};
use popwire::proto::{Client, ClientOptions, Event, Reply, Security};

const READ: usize = 64 * 1024;
const BODY: usize = 1 << 20;

/// A small deterministic generator, so every run decodes the same bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// About 1 MiB of wire body: 76-character lines with CRLF, about 10% starting with a stuffed
/// dot, then the terminating `.CRLF`.
fn stuffed_body() -> Vec<u8> {
    const TEXT: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;:-=+/";
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let mut wire = Vec::with_capacity(BODY + 1024);
    while wire.len() < BODY {
        let dotted = rng.next().is_multiple_of(10);
        if dotted {
            // The line starts with a dot in the message, so it is doubled on the wire.
            wire.extend_from_slice(b"..");
        }
        let start = wire.len();
        while wire.len() - start < if dotted { 75 } else { 76 } {
            wire.push(TEXT[(rng.next() % TEXT.len() as u64) as usize]);
        }
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

/// A 10,000-entry UIDL listing, `+OK` and terminator included.
fn uidl_listing() -> Vec<u8> {
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let mut wire = b"+OK 10000 messages\r\n".to_vec();
    for n in 1..=10_000u32 {
        let uid = format!("{:016x}{:016x}", rng.next(), rng.next());
        wire.extend_from_slice(format!("{n} {uid}\r\n").as_bytes());
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

/// Decodes `wire` with a `BodyDecoder` that sees 64 KiB more each time it needs more input.
/// The window slides over `wire` itself, so this times the decoder and not a copy into a read
/// buffer (`client_retr` pays that copy, as a socket read does). Returns the body octets.
fn decode_body(wire: &[u8]) -> u64 {
    let mut decoder = BodyDecoder::new(4 << 20);
    let (mut pos, mut end, mut sum) = (0, 0, 0u64);
    loop {
        match decoder.decode(&wire[pos..end]).unwrap() {
            Decoded::Chunk { data, consumed } => {
                sum += black_box(&wire[pos + data.start..pos + data.end]).len() as u64;
                pos += consumed;
            }
            Decoded::End { .. } => return sum,
            Decoded::NeedMore => {
                assert!(end < wire.len(), "unterminated body");
                end = (end + READ).min(wire.len());
            }
        }
    }
}

/// A client in the transaction state (USER/PASS over implicit TLS, no negotiation).
fn logged_in() -> Client {
    let mut client = Client::new(ClientOptions {
        security: Security::Tls,
        negotiate: false,
        ..Default::default()
    });
    let step = |client: &mut Client, reply: &[u8]| {
        while client.poll_transmit().is_some() {}
        client.handle_input(reply).unwrap();
        while client.poll_event().unwrap().is_some() {}
    };
    step(&mut client, b"+OK ready\r\n");
    client.user("user").unwrap();
    step(&mut client, b"+OK\r\n");
    client.pass("pass".into()).unwrap();
    step(&mut client, b"+OK\r\n");
    while client.poll_transmit().is_some() {}
    client
}

/// Feeds a reply to `client` in 64 KiB reads; returns body octets seen and the completion.
fn run_reply(client: &mut Client, wire: &[u8]) -> (u64, Option<Reply>) {
    while client.poll_transmit().is_some() {}
    let mut octets = 0u64;
    for read in wire.chunks(READ) {
        client.handle_input(read).unwrap();
        loop {
            match client.poll_event().unwrap() {
                Some(Event::Body { data, .. }) => octets += black_box(data).len() as u64,
                Some(Event::Completed { result, .. }) => return (octets, Some(result.unwrap())),
                Some(_) => {}
                None => break,
            }
        }
    }
    (octets, None)
}

fn body(c: &mut Criterion) {
    let wire = stuffed_body();
    let mut reply = b"+OK 1048576 octets\r\n".to_vec();
    reply.extend_from_slice(&wire);

    // The same body every way, so the three figures compare.
    let expected = decode_body(&wire);
    let mut client = logged_in();
    client.retr(1).unwrap();
    assert_eq!(run_reply(&mut client, &reply).0, expected);

    let mut group = c.benchmark_group("body");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("body_decoder", |b| b.iter(|| decode_body(black_box(&wire))));
    group.bench_function("client_retr", |b| {
        b.iter_batched(
            || {
                let mut client = logged_in();
                client.retr(1).unwrap();
                client
            },
            |mut client| run_reply(&mut client, black_box(&reply)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("memchr_baseline", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(&wire)).count());
    });
    group.finish();
}

fn listing(c: &mut Criterion) {
    let wire = uidl_listing();
    let mut client = logged_in();
    client.uidl(None).unwrap();
    match run_reply(&mut client, &wire).1 {
        Some(Reply::Uidl(entries)) => assert_eq!(entries.len(), 10_000),
        other => panic!("{other:?}"),
    }

    let mut group = c.benchmark_group("listing");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("client_uidl_10k", |b| {
        b.iter_batched(
            || {
                let mut client = logged_in();
                client.uidl(None).unwrap();
                client
            },
            |mut client| run_reply(&mut client, black_box(&wire)),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, body, listing);
criterion_main!(benches);

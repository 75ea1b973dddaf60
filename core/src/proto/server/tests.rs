#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::*;
use crate::proto::codec::{BodyDecoder, Decoded};
use crate::proto::sasl::apop_digest;
use crate::proto::secret::Secret;

const M1: &[u8] = b"From: alice@example.org\nSubject: one\n\nHello\n.dotted line\n..two dots\n";
const M2: &[u8] = b"Subject: two\r\n\r\nline1\r\nline2\r\nline3";

fn maildrop() -> (MemoryMaildrop, String, String) {
    let mut drop = MemoryMaildrop::new().with_user("alice", "wonderland");
    let u1 = drop.add_message(M1);
    let u2 = drop.add_message(M2);
    (drop, u1, u2)
}

fn cleartext() -> ServerOptions {
    ServerOptions {
        allow_cleartext_password: true,
        implementation: Some("popwire-test".into()),
        ..Default::default()
    }
}

fn drain<M: Maildrop>(server: &mut Server<M>) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = server.poll_transmit() {
        out.extend_from_slice(&bytes);
    }
    out
}

fn events<M: Maildrop>(server: &mut Server<M>) -> Vec<ServerEvent> {
    core::iter::from_fn(|| server.poll_event()).collect()
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Feeds each client line and checks the server's reply byte for byte.
fn converse<M: Maildrop>(server: &mut Server<M>, script: &[(&str, &str)]) {
    for (client, reply) in script {
        server.handle_input(client.as_bytes());
        assert_eq!(show(&drain(server)), *reply, "after {client:?}");
    }
}

/// The whole-session transcript, with the unique-ids filled in.
fn session(u1: &str, u2: &str) -> Vec<(String, String)> {
    let script: Vec<(&str, String)> = vec![
        (
            "CAPA\r\n",
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\n\
             SASL PLAIN SCRAM-SHA-256\r\nIMPLEMENTATION popwire-test\r\n.\r\n"
                .into(),
        ),
        ("STAT\r\n", "-ERR command not valid in the authorization state\r\n".into()),
        ("USER alice\r\n", "+OK\r\n".into()),
        ("PASS wrong\r\n", "-ERR [AUTH] authentication failed\r\n".into()),
        ("PASS wonderland\r\n", "-ERR no USER given\r\n".into()),
        ("USER alice\r\n", "+OK\r\n".into()),
        ("PASS wonderland\r\n", "+OK Logged in\r\n".into()),
        ("STAT\r\n", "+OK 2 111\r\n".into()),
        ("LIST\r\n", "+OK 2 messages (111 octets)\r\n1 74\r\n2 37\r\n.\r\n".into()),
        ("list 2\r\n", "+OK 2 37\r\n".into()),
        ("LIST 3\r\n", "-ERR no such message\r\n".into()),
        ("UIDL\r\n", format!("+OK\r\n1 {u1}\r\n2 {u2}\r\n.\r\n")),
        ("UIDL 1\r\n", format!("+OK 1 {u1}\r\n")),
        (
            "TOP 1 1\r\n",
            "+OK\r\nFrom: alice@example.org\r\nSubject: one\r\n\r\nHello\r\n.\r\n".into(),
        ),
        (
            "RETR 1\r\n",
            "+OK 74 octets\r\nFrom: alice@example.org\r\nSubject: one\r\n\r\nHello\r\n..dotted line\r\n\
             ...two dots\r\n.\r\n"
                .into(),
        ),
        (
            "RETR 2\n",
            "+OK 37 octets\r\nSubject: two\r\n\r\nline1\r\nline2\r\nline3\r\n.\r\n".into(),
        ),
        ("DELE 1\r\n", "+OK message 1 deleted\r\n".into()),
        ("DELE 1\r\n", "-ERR message already deleted\r\n".into()),
        ("RETR 1\r\n", "-ERR message already deleted\r\n".into()),
        ("TOP 1 0\r\n", "-ERR message already deleted\r\n".into()),
        ("UIDL 1\r\n", "-ERR message already deleted\r\n".into()),
        ("LIST\r\n", "+OK 1 messages (37 octets)\r\n2 37\r\n.\r\n".into()),
        ("STAT\r\n", "+OK 1 37\r\n".into()),
        ("RSET\r\n", "+OK maildrop has 2 messages (111 octets)\r\n".into()),
        ("DELE 2\r\n", "+OK message 2 deleted\r\n".into()),
        ("NOOP\r\n", "+OK\r\n".into()),
        ("USER bob\r\n", "-ERR command not valid in the transaction state\r\n".into()),
        ("FOO\r\n", "-ERR unknown command\r\n".into()),
        ("RETR x\r\n", "-ERR invalid number\r\n".into()),
        ("QUIT\r\n", "+OK Bye\r\n".into()),
    ];
    script.into_iter().map(|(c, s)| (c.to_owned(), s)).collect()
}

const GREETING: &[u8] = b"+OK popwire POP3 server ready\r\n";

fn check_committed(drop: &MemoryMaildrop, events: &[ServerEvent]) {
    assert_eq!(
        events,
        [
            ServerEvent::AuthFailed {
                user: Some("alice".into()),
                method: LoginMethod::UserPass
            },
            ServerEvent::LoggedIn {
                user: "alice".into(),
                method: LoginMethod::UserPass
            },
            ServerEvent::Committed { deleted: vec![1] },
            ServerEvent::Closed(CloseReason::Quit),
        ]
    );
    assert_eq!(drop.messages().collect::<Vec<_>>(), [M1]);
}

#[test]
fn whole_session_byte_exact() {
    let (mut drop, u1, u2) = maildrop();
    let mut server = Server::new(cleartext(), &mut drop);
    assert_eq!(drain(&mut server), GREETING);
    let script = session(&u1, &u2);
    let pairs: Vec<(&str, &str)> = script
        .iter()
        .map(|(c, s)| (c.as_str(), s.as_str()))
        .collect();
    converse(&mut server, &pairs);
    assert!(server.is_closed());
    // Input after QUIT is ignored.
    server.handle_input(b"NOOP\r\n");
    assert_eq!(drain(&mut server), b"");
    let events = events(&mut server);
    check_committed(&drop, &events);
}

#[test]
fn pipelined_input_in_one_buffer_and_split_at_every_byte() {
    let (_, u1, u2) = maildrop();
    let script = session(&u1, &u2);
    let input: Vec<u8> = script.iter().flat_map(|(c, _)| c.bytes()).collect();
    let mut want = GREETING.to_vec();
    want.extend(script.iter().flat_map(|(_, s)| s.bytes()));

    let (mut drop, ..) = maildrop();
    let mut server = Server::new(cleartext(), &mut drop);
    server.handle_input(&input);
    assert_eq!(show(&drain(&mut server)), show(&want));
    let events = events(&mut server);
    check_committed(&drop, &events);

    // One byte at a time.
    let (mut drop, ..) = maildrop();
    let mut server = Server::new(cleartext(), &mut drop);
    let mut got = drain(&mut server);
    for b in &input {
        server.handle_input(core::slice::from_ref(b));
        got.extend(drain(&mut server));
    }
    assert_eq!(show(&got), show(&want));

    // Two pieces, split at every offset.
    for cut in 0..=input.len() {
        let (mut drop, ..) = maildrop();
        let mut server = Server::new(cleartext(), &mut drop);
        server.handle_input(&input[..cut]);
        let mut got = drain(&mut server);
        server.handle_input(&input[cut..]);
        got.extend(drain(&mut server));
        assert_eq!(got, want, "cut at {cut}");
        assert_eq!(drop.len(), 1);
    }
}

#[test]
fn tiny_chunks_change_nothing_but_the_chunking() {
    let (_, u1, u2) = maildrop();
    let script = session(&u1, &u2);
    let input: Vec<u8> = script.iter().flat_map(|(c, _)| c.bytes()).collect();
    let mut want = GREETING.to_vec();
    want.extend(script.iter().flat_map(|(_, s)| s.bytes()));
    for chunk_size in [1, 2, 7, 64] {
        let (mut drop, ..) = maildrop();
        let options = ServerOptions {
            chunk_size,
            ..cleartext()
        };
        let mut server = Server::new(options, &mut drop);
        server.handle_input(&input);
        let mut got = Vec::new();
        while let Some(bytes) = server.poll_transmit() {
            // One reply we compose whole (a status line, CAPA) may overshoot the budget; a body
            // chunk at most doubles under dot-stuffing.
            assert!(
                bytes.len() < 2 * chunk_size + 256,
                "{} > budget {chunk_size}",
                bytes.len()
            );
            got.extend(bytes);
        }
        assert_eq!(show(&got), show(&want), "chunk size {chunk_size}");
    }
}

#[test]
fn stls_discards_pipelined_bytes_and_forgets_state() {
    let (mut drop, ..) = maildrop();
    let options = ServerOptions {
        offer_stls: true,
        ..Default::default()
    };
    let mut server = Server::new(options, &mut drop);
    drain(&mut server);
    // Cleartext passwords are refused before TLS, and USER/PLAIN are not advertised.
    converse(
        &mut server,
        &[
            (
                "CAPA\r\n",
                "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\n\
                 SASL SCRAM-SHA-256\r\n.\r\n",
            ),
            (
                "USER alice\r\n",
                "-ERR plaintext authentication disallowed without TLS\r\n",
            ),
            (
                "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n",
                "-ERR plaintext authentication disallowed without TLS\r\n",
            ),
        ],
    );
    server.handle_input(b"NOOP\r\nSTLS\r\nUSER alice\r\nPASS wonderland\r\n");
    assert_eq!(
        show(&drain(&mut server)),
        "-ERR command not valid in the authorization state\r\n+OK Begin TLS negotiation\r\n"
    );
    assert_eq!(
        events(&mut server),
        [ServerEvent::StlsRequested { discarded: 29 }]
    );
    // Still nothing: input before the handshake is dropped too.
    server.handle_input(b"PASS wonderland\r\n");
    assert_eq!(server.poll_transmit(), None);
    assert!(!server.is_tls());
    server.tls_established().unwrap();
    assert!(server.tls_established().is_err());
    assert!(server.is_tls());
    converse(
        &mut server,
        &[
            (
                "CAPA\r\n",
                "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\n\
                 SASL PLAIN SCRAM-SHA-256\r\n.\r\n",
            ),
            ("PASS wonderland\r\n", "-ERR no USER given\r\n"),
            ("STLS\r\n", "-ERR STLS not available\r\n"),
            (
                "USER alice\r\nPASS wonderland\r\n",
                "+OK\r\n+OK Logged in\r\n",
            ),
            (
                "STLS\r\n",
                "-ERR command not valid in the transaction state\r\n",
            ),
        ],
    );
}

#[test]
fn auth_plain_both_forms_cancel_and_failures() {
    let plain = |s: &str| BASE64.encode(s);
    let good = plain("\0alice\0wonderland");
    let (mut drop, ..) = maildrop();
    let mut server = Server::new(
        ServerOptions {
            tls_active: true,
            ..Default::default()
        },
        &mut drop,
    );
    drain(&mut server);
    converse(
        &mut server,
        &[
            ("AUTH\r\n", "+OK\r\nPLAIN\r\nSCRAM-SHA-256\r\n.\r\n"),
            (
                "AUTH CRAM-MD5\r\n",
                "-ERR unsupported authentication mechanism\r\n",
            ),
            ("AUTH PLAIN\r\n", "+ \r\n"),
            ("*\r\n", "-ERR authentication cancelled\r\n"),
            ("AUTH PLAIN\r\n", "+ \r\n"),
            (
                "!!notbase64\r\n",
                "-ERR invalid base64 in the SASL response\r\n",
            ),
            (
                &format!("AUTH PLAIN {}\r\n", plain("\0alice\0wrong")),
                "-ERR [AUTH] authentication failed\r\n",
            ),
            (
                &format!("AUTH PLAIN {}\r\n", plain("\0nobody\0wonderland")),
                "-ERR [AUTH] authentication failed\r\n",
            ),
            (
                &format!("AUTH PLAIN {}\r\n", plain("bob\0alice\0wonderland")),
                "-ERR [AUTH] authentication failed\r\n",
            ),
            ("AUTH PLAIN =\r\n", "-ERR malformed SASL response\r\n"),
            ("AUTH PLAIN\r\n", "+ \r\n"),
            (&format!("{good}\r\n"), "+OK Logged in\r\n"),
            ("STAT\r\n", "+OK 2 111\r\n"),
        ],
    );
    let ev = events(&mut server);
    assert_eq!(ev.len(), 5, "{ev:?}");
    assert_eq!(
        ev[4],
        ServerEvent::LoggedIn {
            user: "alice".into(),
            method: LoginMethod::Sasl(Mechanism::Plain)
        }
    );

    // The initial-response form, pipelined with what follows.
    let (mut drop, ..) = maildrop();
    let mut server = Server::new(
        ServerOptions {
            tls_active: true,
            ..Default::default()
        },
        &mut drop,
    );
    server.handle_input(format!("AUTH PLAIN {good}\r\nSTAT\r\nQUIT\r\n").as_bytes());
    assert_eq!(
        show(&drain(&mut server)),
        "+OK popwire POP3 server ready\r\n+OK Logged in\r\n+OK 2 111\r\n+OK Bye\r\n"
    );
}

#[test]
fn apop() {
    let stamp = "<1896.697170952@dbc.mtview.ca.us>";
    let (mut drop, ..) = maildrop();
    let options = ServerOptions {
        apop_timestamp: Some(stamp.into()),
        ..Default::default()
    };
    let mut server = Server::new(options, &mut drop);
    assert_eq!(
        show(&drain(&mut server)),
        format!("+OK popwire POP3 server ready {stamp}\r\n")
    );
    let digest = apop_digest(stamp, &Secret::new("wonderland"));
    converse(
        &mut server,
        &[
            (
                "APOP alice 0123456789abcdef0123456789abcdef\r\n",
                "-ERR [AUTH] authentication failed\r\n",
            ),
            (
                &format!("APOP alice {}\r\n", digest.to_ascii_uppercase()),
                "+OK Logged in\r\n",
            ),
        ],
    );
    let (mut drop, ..) = maildrop();
    let mut server = Server::new(ServerOptions::default(), &mut drop);
    drain(&mut server);
    converse(
        &mut server,
        &[(
            &format!("APOP alice {digest}\r\n"),
            "-ERR APOP not available\r\n",
        )],
    );
}

#[test]
fn long_lines_close_the_session() {
    let (mut drop, ..) = maildrop();
    let mut server = Server::new(cleartext(), &mut drop);
    drain(&mut server);
    // Exactly 512 octets with CRLF is still a line.
    let mut line = vec![b'X'; 510];
    line.extend_from_slice(b"\r\n");
    server.handle_input(&line);
    assert_eq!(drain(&mut server), b"-ERR unknown command\r\n");
    assert!(!server.is_closed());
    // One more, even split across reads and without any LF yet, is too long.
    server.handle_input(&[b'Y'; 300]);
    assert_eq!(server.poll_transmit(), None);
    server.handle_input(&[b'Y'; 300]);
    assert_eq!(drain(&mut server), b"-ERR line too long\r\n");
    assert!(server.is_closed());
    assert_eq!(
        events(&mut server),
        [ServerEvent::Closed(CloseReason::LineTooLong)]
    );

    let (mut drop, ..) = maildrop();
    let options = ServerOptions {
        max_input: 1000,
        ..cleartext()
    };
    let mut server = Server::new(options, &mut drop);
    drain(&mut server);
    server.handle_input(&b"NOOP\r\n".repeat(100));
    server.handle_input(&b"NOOP\r\n".repeat(100));
    assert_eq!(drain(&mut server), b"-ERR too much unprocessed input\r\n");
    assert_eq!(
        events(&mut server),
        [ServerEvent::Closed(CloseReason::InputOverflow)]
    );
}

#[test]
fn quit_in_authorization_and_listing_order() {
    let (mut drop, ..) = maildrop();
    let mut server = Server::new(cleartext(), &mut drop);
    server.handle_input(b"QUIT\r\nUSER alice\r\n");
    assert_eq!(
        show(&drain(&mut server)),
        "+OK popwire POP3 server ready\r\n+OK Bye\r\n"
    );
    assert_eq!(
        events(&mut server),
        [ServerEvent::Closed(CloseReason::Quit)]
    );
    assert_eq!(drop.len(), 2);

    // Many messages: the listing is streamed in order with a small chunk size.
    let mut drop = MemoryMaildrop::new().with_user("u", "p");
    for i in 0..500 {
        drop.add_message_with_uid(format!("uid{i}"), format!("Subject: {i}\n\nbody\n"));
    }
    let options = ServerOptions {
        chunk_size: 100,
        ..cleartext()
    };
    let mut server = Server::new(options, &mut drop);
    server.handle_input(b"USER u\r\nPASS p\r\nDELE 7\r\nUIDL\r\n");
    let out = show(&drain(&mut server));
    let mut want = String::from(
        "+OK popwire POP3 server ready\r\n+OK\r\n+OK Logged in\r\n+OK message 7 deleted\r\n+OK\r\n",
    );
    for i in (1..=500).filter(|i| *i != 7) {
        want.push_str(&format!("{i} uid{}\r\n", i - 1));
    }
    want.push_str(".\r\n");
    assert_eq!(out, want);
}

/// A maildrop that fails on demand, around a [`MemoryMaildrop`].
struct Faulty {
    inner: MemoryMaildrop,
    open: Option<MaildropError>,
    read_from: Option<u64>,
    commit: Option<MaildropError>,
}

impl Maildrop for Faulty {
    fn password(&mut self, user: &str) -> Option<Secret> {
        self.inner.password(user)
    }
    fn open(&mut self, user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        match self.open.take() {
            Some(e) => Err(e),
            None => self.inner.open(user),
        }
    }
    fn read(&mut self, index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError> {
        if self.read_from.is_some_and(|from| offset >= from) {
            return Err(MaildropError::Permanent("message vanished".into()));
        }
        let limit = buf.len().min(4);
        self.inner.read(index, offset, &mut buf[..limit])
    }
    fn commit(&mut self, deleted: &[usize]) -> Result<(), MaildropError> {
        match self.commit.take() {
            Some(e) => Err(e),
            None => self.inner.commit(deleted),
        }
    }
    fn scram_nonce(&mut self) -> String {
        self.inner.scram_nonce()
    }
}

#[test]
fn maildrop_failures_map_to_response_codes() {
    let faulty = Faulty {
        inner: maildrop().0,
        open: Some(MaildropError::InUse),
        read_from: Some(0),
        commit: Some(MaildropError::Temporary("disk full".into())),
    };
    let mut server = Server::new(cleartext(), faulty);
    drain(&mut server);
    converse(
        &mut server,
        &[
            (
                "USER alice\r\nPASS wonderland\r\n",
                "+OK\r\n-ERR [IN-USE] maildrop already locked by another session\r\n",
            ),
            (
                "USER alice\r\nPASS wonderland\r\n",
                "+OK\r\n+OK Logged in\r\n",
            ),
            ("RETR 1\r\n", "-ERR [SYS/PERM] message vanished\r\n"),
        ],
    );
    // Failing in the middle of a body: the reply is cut short and the session closes.
    server.maildrop_mut().read_from = Some(10);
    server.handle_input(b"RETR 1\r\nDELE 2\r\nQUIT\r\n");
    assert_eq!(show(&drain(&mut server)), "+OK 74 octets\r\nFrom: alice@");
    assert!(server.is_closed());
    let ev = events(&mut server);
    assert_eq!(
        ev.last(),
        Some(&ServerEvent::Closed(CloseReason::ReadFailed(
            MaildropError::Permanent("message vanished".into())
        )))
    );

    let faulty = Faulty {
        inner: maildrop().0,
        open: None,
        read_from: None,
        commit: Some(MaildropError::Temporary("disk full".into())),
    };
    let mut server = Server::new(cleartext(), faulty);
    server.handle_input(b"USER alice\r\nPASS wonderland\r\nTOP 2 1\r\nDELE 1\r\nQUIT\r\n");
    assert_eq!(
        show(&drain(&mut server)),
        "+OK popwire POP3 server ready\r\n+OK\r\n+OK Logged in\r\n+OK\r\nSubject: two\r\n\r\nline1\r\n.\r\n\
         +OK message 1 deleted\r\n-ERR [SYS/TEMP] some deleted messages not removed\r\n"
    );
    assert!(server.is_closed());
    assert_eq!(server.into_maildrop().inner.len(), 2);
}

/// A maildrop holding one synthetic message of `size` octets that is never in memory.
struct Huge {
    size: u64,
    block: Vec<u8>,
    read_since_poll: usize,
    largest_read: usize,
}

impl Huge {
    fn new(size: u64) -> Self {
        // 64 lines of 63 characters and LF: 4096 octets, no line starting with a dot.
        let line: Vec<u8> = (0..63u8).map(|i| b'a' + i % 26).chain([b'\n']).collect();
        Self {
            size,
            block: line.repeat(64),
            read_since_poll: 0,
            largest_read: 0,
        }
    }
}

impl Maildrop for Huge {
    fn password(&mut self, _user: &str) -> Option<Secret> {
        Some(Secret::new("pw"))
    }
    fn open(&mut self, _user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        // Every LF counts two on the wire; the block-aligned size ends with a LF.
        Ok(vec![MessageInfo {
            size: self.size + self.size / 64,
            uid: "huge".into(),
        }])
    }
    fn read(&mut self, _index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError> {
        let left = usize::try_from(self.size.saturating_sub(offset)).unwrap_or(usize::MAX);
        let n = buf.len().min(left);
        let mut at = (offset % self.block.len() as u64) as usize;
        let mut done = 0;
        while done < n {
            let take = (self.block.len() - at).min(n - done);
            buf[done..done + take].copy_from_slice(&self.block[at..at + take]);
            done += take;
            at = 0;
        }
        self.read_since_poll += n;
        self.largest_read = self.largest_read.max(buf.len());
        Ok(n)
    }
    fn commit(&mut self, _deleted: &[usize]) -> Result<(), MaildropError> {
        Ok(())
    }
    fn scram_nonce(&mut self) -> String {
        "0123456789abcdef".into()
    }
}

#[test]
fn a_200_mb_message_streams_in_bounded_chunks() {
    const SIZE: u64 = 200 << 20;
    let mut server = Server::new(cleartext(), Huge::new(SIZE));
    server.handle_input(b"USER me\r\nPASS pw\r\nRETR 1\r\nQUIT\r\n");
    let chunk = server.options().chunk_size;
    let mut total = 0u64;
    let mut calls = 0;
    let mut decoder = BodyDecoder::new(1000);
    let mut body = 0u64;
    let mut pending = Vec::new();
    let mut after_body: Option<Vec<u8>> = None;
    let head = format!(
        "+OK popwire POP3 server ready\r\n+OK\r\n+OK Logged in\r\n+OK {} octets\r\n",
        SIZE + SIZE / 64
    );
    while let Some(bytes) = server.poll_transmit() {
        assert!(server.maildrop().read_since_poll <= chunk);
        assert!(bytes.len() <= 2 * chunk + 512, "{}", bytes.len());
        server.maildrop_mut().read_since_poll = 0;
        total += bytes.len() as u64;
        calls += 1;
        if let Some(rest) = after_body.as_mut() {
            rest.extend_from_slice(&bytes);
            continue;
        }
        if calls == 1 {
            assert!(bytes.starts_with(head.as_bytes()));
            pending.extend_from_slice(&bytes[head.len()..]);
        } else {
            pending.extend_from_slice(&bytes);
        }
        // Decode as a client would, without keeping the body.
        loop {
            match decoder.decode(&pending).unwrap() {
                Decoded::Chunk { data, consumed } => {
                    body += (data.end - data.start) as u64;
                    pending.drain(..consumed);
                }
                Decoded::End { consumed } => {
                    pending.drain(..consumed);
                    after_body = Some(core::mem::take(&mut pending));
                    break;
                }
                Decoded::NeedMore => break,
            }
        }
        assert!(pending.len() < 1000);
    }
    assert_eq!(body, SIZE + SIZE / 64);
    assert_eq!(after_body.as_deref(), Some(&b"+OK Bye\r\n"[..]));
    assert!(calls > 3000, "{calls} calls");
    assert!(server.maildrop().largest_read <= chunk);
    assert!(total > SIZE);
    assert!(server.is_closed());
}

// ---- against the client engine -------------------------------------------------------------

mod pair {
    use super::*;
    use crate::proto::{
        AuthMethod, AuthRequest, Client, ClientOptions, CommandId, Credential, Error, Event, Reply,
        Security,
    };

    #[derive(Default)]
    struct Log {
        ready: bool,
        bodies: BTreeMap<CommandId, Vec<u8>>,
        done: BTreeMap<CommandId, Result<Reply, Error>>,
    }

    fn drain_client(client: &mut Client, log: &mut Log) {
        loop {
            match client.poll_event().unwrap() {
                None => return,
                Some(Event::Ready(_)) => log.ready = true,
                Some(Event::Greeting(_) | Event::TlsReady) => {}
                Some(Event::Body { id, data }) => {
                    log.bodies.entry(id).or_default().extend_from_slice(data)
                }
                Some(Event::Completed { id, result }) => {
                    log.done.insert(id, result);
                }
            }
        }
    }

    /// Moves bytes both ways until neither side has anything to say. With `step`, the server's
    /// output reaches the client `step` bytes at a time.
    fn pump<M: Maildrop>(client: &mut Client, server: &mut Server<M>, log: &mut Log, step: usize) {
        loop {
            let mut moved = false;
            while let Some(bytes) = server.poll_transmit() {
                moved = true;
                for piece in bytes.chunks(step) {
                    client.handle_input(piece).unwrap();
                    drain_client(client, log);
                }
            }
            drain_client(client, log);
            while let Some(bytes) = client.poll_transmit() {
                moved = true;
                server.handle_input(&bytes);
            }
            if !moved {
                return;
            }
        }
    }

    /// Runs a whole session; returns the client's log, the maildrop afterwards, the command ids
    /// and the server's events.
    fn session(
        method: AuthMethod,
        pipelining: bool,
        password: &str,
        step: usize,
    ) -> (Log, MemoryMaildrop, Vec<CommandId>, Vec<ServerEvent>) {
        let (mut drop, u1, u2) = maildrop();
        let options = ServerOptions {
            pipelining,
            mechanisms: vec![
                Mechanism::Plain,
                Mechanism::ScramSha1,
                Mechanism::ScramSha256,
            ],
            ..cleartext()
        };
        let mut server = Server::new(options, &mut drop);
        let mut client = Client::new(ClientOptions {
            security: Security::None,
            allow_cleartext_password: true,
            pipelining,
            ..Default::default()
        });
        let mut log = Log::default();
        let ids = vec![
            client
                .authenticate(AuthRequest {
                    username: "alice".into(),
                    credential: Credential::Password(Secret::new(password)),
                    method,
                    authzid: None,
                    nonce: "fyko+d2lbbFgONRv9qkxdawL".into(),
                    host: None,
                    port: None,
                })
                .unwrap(),
            client.stat().unwrap(),
            client.uidl(None).unwrap(),
            client.retr(1).unwrap(),
            client.top(2, 1).unwrap(),
            client.retr(2).unwrap(),
            client.dele(1).unwrap(),
            client.list(None).unwrap(),
            client.quit().unwrap(),
        ];
        pump(&mut client, &mut server, &mut log, step);
        assert!(log.ready);
        if password == "wonderland" {
            assert!(server.is_closed(), "{server:?}");
            let uids: Vec<String> = match &log.done[&ids[2]] {
                Ok(Reply::Uidl(entries)) => entries.iter().map(|e| e.uid.clone()).collect(),
                other => panic!("{other:?}"),
            };
            assert_eq!(uids, [u1, u2]);
        }
        let events = events(&mut server);
        core::mem::drop(server);
        (log, drop, ids, events)
    }

    fn check_full_session(method: AuthMethod, pipelining: bool, step: usize) {
        let (log, drop, ids, events) = session(method, pipelining, "wonderland", step);
        let used = match method {
            AuthMethod::UserPass => LoginMethod::UserPass,
            AuthMethod::Sasl(m) => LoginMethod::Sasl(m),
            _ => LoginMethod::Sasl(Mechanism::ScramSha256),
        };
        assert_eq!(
            events[0],
            ServerEvent::LoggedIn {
                user: "alice".into(),
                method: used
            }
        );
        let reply = |i: usize| {
            log.done
                .get(&ids[i])
                .unwrap_or_else(|| panic!("command {i} not done"))
        };
        assert_eq!(reply(0), &Ok(Reply::Authenticated), "{method:?}");
        assert_eq!(
            reply(1),
            &Ok(Reply::Stat {
                count: 2,
                size: 111
            })
        );
        assert_eq!(
            show(&log.bodies[&ids[3]]),
            "From: alice@example.org\r\nSubject: one\r\n\r\nHello\r\n.dotted line\r\n..two dots\r\n"
        );
        assert_eq!(show(&log.bodies[&ids[4]]), "Subject: two\r\n\r\nline1\r\n");
        assert_eq!(
            log.bodies[&ids[5]],
            b"Subject: two\r\n\r\nline1\r\nline2\r\nline3\r\n"
        );
        assert_eq!(reply(5), &Ok(Reply::Retrieved { octets: 37 }));
        match reply(7) {
            Ok(Reply::List(entries)) => assert_eq!(
                entries
                    .iter()
                    .map(|e| (e.number, e.size))
                    .collect::<Vec<_>>(),
                [(2, 37)]
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(reply(8), Ok(Reply::Closed(_))));
        assert_eq!(drop.messages().collect::<Vec<_>>(), [M2]);
    }

    #[test]
    fn client_and_server_engines_agree() {
        for method in [
            AuthMethod::UserPass,
            AuthMethod::Sasl(Mechanism::ScramSha256),
            AuthMethod::Sasl(Mechanism::ScramSha1),
            AuthMethod::Sasl(Mechanism::Plain),
            AuthMethod::Auto,
        ] {
            for pipelining in [true, false] {
                check_full_session(method, pipelining, usize::MAX);
            }
        }
        // The server's output split into single bytes on the way to the client.
        check_full_session(AuthMethod::Sasl(Mechanism::ScramSha256), true, 1);
    }

    #[test]
    fn wrong_password_is_an_auth_error_for_every_method() {
        for method in [
            AuthMethod::UserPass,
            AuthMethod::Sasl(Mechanism::ScramSha256),
            AuthMethod::Sasl(Mechanism::Plain),
        ] {
            let (log, drop, ids, events) = session(method, true, "mad hatter", usize::MAX);
            assert!(
                matches!(events[0], ServerEvent::AuthFailed { .. }),
                "{events:?}"
            );
            match &log.done[&ids[0]] {
                Err(Error::Server(e)) => assert_eq!(e.code, Some(ResponseCode::Auth), "{method:?}"),
                other => panic!("{method:?}: {other:?}"),
            }
            assert_eq!(drop.len(), 2);
        }
    }
}

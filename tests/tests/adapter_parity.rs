//! The async adapter has the blocking adapter's methods with the same meaning: the same session
//! through both, against Dovecot, gives the same results. Both run the engine's one pull
//! interface (`Session::next`); this checks that nothing drifted between the two.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::Write;
use std::time::Duration;

use popwire::net::async_io::AsyncClient;
use popwire::net::blocking::BlockingClient;
use popwire::net::{BodyRead, ConnectOptions, NetError};
use popwire::proto::{ErrorClass, Secret, Security};
use popwire_tests::{Dovecot, corpus};

fn options(d: &Dovecot, security: Security) -> ConnectOptions {
    let mut o = ConnectOptions::new("localhost");
    o.security = security;
    o.port = Some(match security {
        Security::Tls => d.tls_port,
        _ => d.plain_port,
    });
    o.ca_file = Some(d.ca_file.clone());
    o.timeout = Duration::from_secs(20);
    o
}

/// A sink that fails once `limit` octets are written.
struct FailingSink {
    limit: usize,
}

impl Write for FailingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.limit {
            return Err(std::io::Error::other("disk full"));
        }
        self.limit -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl futures_io::AsyncWrite for FailingSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(self.get_mut().write(buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// What a session saw, for comparing the adapters.
#[derive(Debug, PartialEq, Eq, Default)]
struct Seen {
    capabilities: usize,
    listing: Vec<u64>,
    uids: usize,
    /// `retr_each`: message 2 ignored, message 3 into a failing sink (session goes on).
    bodies: Vec<Vec<u8>>,
    sink_error: String,
    top: Vec<u8>,
    /// `retr_stream` of message 4 pulled in 4 KiB pieces: the body, the pieces, the octets.
    pulled: (Vec<u8>, usize, u64),
    /// `retr_stream` of message 5 left after one piece; then STAT, then the stale stream.
    abandoned: (u32, String),
    /// `retr_stream` of a message that does not exist.
    refused: String,
    deleted: usize,
}

fn blocking_run(d: &Dovecot, user: &str, security: Security) -> Seen {
    let mut seen = Seen::default();
    let mut pop = BlockingClient::connect(options(d, security)).unwrap();
    pop.login(user, Secret::new(d.password.as_bytes())).unwrap();
    pop.set_max_in_flight(2);
    seen.capabilities = pop.capa().unwrap().list.len();
    let (listing, uids) = pop.list_and_uidl().unwrap();
    seen.listing = listing.iter().map(|e| e.size).collect();
    seen.uids = uids.unwrap().len();
    let numbers: Vec<u32> = (1..=listing.len() as u32).collect();
    let mut sink_error = None;
    pop.retr_each(&numbers, &mut |body| -> Result<(), NetError> {
        match body.number() {
            2 => {}
            3 => {
                let err = body.copy_to(&mut FailingSink { limit: 100 }).unwrap_err();
                sink_error = Some(err);
            }
            _ => {
                let mut out = Vec::new();
                body.copy_to(&mut out)?.unwrap();
                seen.bodies.push(out);
            }
        }
        Ok(())
    })
    .unwrap();
    let err = sink_error.unwrap();
    assert_eq!(err.class(), ErrorClass::Storage, "{err}");
    seen.sink_error = err.to_string();
    let mut stream = pop.retr_stream(4).unwrap();
    loop {
        let mut piece = Vec::new();
        match pop.read_body(&mut stream, &mut piece, 4096).unwrap() {
            BodyRead::More => {}
            BodyRead::End { octets } => {
                seen.pulled.2 = octets;
                seen.pulled.0.extend(piece);
                seen.pulled.1 += 1;
                break;
            }
            BodyRead::Refused(e) => panic!("{e}"),
        }
        seen.pulled.0.extend(piece);
        seen.pulled.1 += 1;
    }
    let mut stale = pop.retr_stream(5).unwrap();
    let mut piece = Vec::new();
    assert_eq!(
        pop.read_body(&mut stale, &mut piece, 1).unwrap(),
        BodyRead::More
    );
    seen.abandoned.0 = pop.stat().unwrap().0;
    seen.abandoned.1 = pop
        .read_body(&mut stale, &mut piece, 1)
        .unwrap_err()
        .to_string();
    let mut missing = pop.retr_stream(99).unwrap();
    match pop.read_body(&mut missing, &mut Vec::new(), 1).unwrap() {
        BodyRead::Refused(e) => seen.refused = e.text,
        other => panic!("{other:?}"),
    }
    pop.top_to(1, 0, &mut seen.top).unwrap();
    let (outcomes, _) = pop.dele_many_and_quit(&[1, 3]).unwrap();
    seen.deleted = outcomes.iter().filter(|o| o.is_ok()).count();
    seen
}

async fn async_run(d: &Dovecot, user: &str, security: Security) -> Seen {
    let mut seen = Seen::default();
    let o = options(d, security);
    let tcp = async_net::TcpStream::connect(("127.0.0.1", o.port()))
        .await
        .unwrap();
    let mut pop = AsyncClient::connect_with(tcp, o).await.unwrap();
    pop.login(user, Secret::new(d.password.as_bytes()))
        .await
        .unwrap();
    pop.set_max_in_flight(2);
    seen.capabilities = pop.capa().await.unwrap().list.len();
    let (listing, uids) = pop.list_and_uidl().await.unwrap();
    seen.listing = listing.iter().map(|e| e.size).collect();
    seen.uids = uids.unwrap().len();
    let numbers: Vec<u32> = (1..=listing.len() as u32).collect();
    let mut sink_error = None;
    let mut bodies = Vec::new();
    pop.retr_each(&numbers, &mut async |body| -> Result<(), NetError> {
        match body.number() {
            2 => {}
            3 => {
                let err = body
                    .copy_to(&mut FailingSink { limit: 100 })
                    .await
                    .unwrap_err();
                sink_error = Some(err);
            }
            _ => {
                let mut out = Vec::new();
                body.copy_to(&mut out).await?.unwrap();
                bodies.push(out);
            }
        }
        Ok(())
    })
    .await
    .unwrap();
    seen.bodies = bodies;
    let err = sink_error.unwrap();
    assert_eq!(err.class(), ErrorClass::Storage, "{err}");
    seen.sink_error = err.to_string();
    let mut stream = pop.retr_stream(4).await.unwrap();
    loop {
        let mut piece = Vec::new();
        match pop.read_body(&mut stream, &mut piece, 4096).await.unwrap() {
            BodyRead::More => {}
            BodyRead::End { octets } => {
                seen.pulled.2 = octets;
                seen.pulled.0.extend(piece);
                seen.pulled.1 += 1;
                break;
            }
            BodyRead::Refused(e) => panic!("{e}"),
        }
        seen.pulled.0.extend(piece);
        seen.pulled.1 += 1;
    }
    let mut stale = pop.retr_stream(5).await.unwrap();
    let mut piece = Vec::new();
    assert_eq!(
        pop.read_body(&mut stale, &mut piece, 1).await.unwrap(),
        BodyRead::More
    );
    seen.abandoned.0 = pop.stat().await.unwrap().0;
    seen.abandoned.1 = pop
        .read_body(&mut stale, &mut piece, 1)
        .await
        .unwrap_err()
        .to_string();
    let mut missing = pop.retr_stream(99).await.unwrap();
    match pop
        .read_body(&mut missing, &mut Vec::new(), 1)
        .await
        .unwrap()
    {
        BodyRead::Refused(e) => seen.refused = e.text,
        other => panic!("{other:?}"),
    }
    pop.top_to(1, 0, &mut seen.top).await.unwrap();
    let (outcomes, _) = pop.dele_many_and_quit(&[1, 3]).await.unwrap();
    seen.deleted = outcomes.iter().filter(|o| o.is_ok()).count();
    seen
}

#[test]
fn async_and_blocking_agree_on_the_whole_api() {
    let d = Dovecot::shared();
    let messages = corpus::sized(5, 30_000, 11);
    for security in [Security::Tls, Security::StartTls] {
        let (b, a) = (d.new_user("par-b"), d.new_user("par-a"));
        d.seed(&b, &messages).unwrap();
        d.seed(&a, &messages).unwrap();
        let blocking = blocking_run(d, &b, security);
        let async_seen = smol::block_on(async_run(d, &a, security));
        assert_eq!(blocking.bodies.len(), 3);
        assert_eq!(blocking.bodies[0], corpus::wire_form(&messages[0]));
        assert_eq!(blocking.bodies[2], corpus::wire_form(&messages[4]));
        assert_eq!(blocking.deleted, 2);
        assert_eq!(blocking.pulled.0, corpus::wire_form(&messages[3]));
        assert_eq!(blocking.pulled.2, blocking.pulled.0.len() as u64);
        assert!(blocking.pulled.1 > 1, "pulled in one piece");
        assert_eq!(blocking.abandoned.0, 5);
        assert!(
            blocking.abandoned.1.contains("abandoned"),
            "{}",
            blocking.abandoned.1
        );
        assert!(!blocking.refused.is_empty());
        assert_eq!(blocking, async_seen, "{security:?}");
        assert_eq!(d.server_messages(&b).unwrap().len(), 3);
        assert_eq!(d.server_messages(&a).unwrap().len(), 3);
    }
}

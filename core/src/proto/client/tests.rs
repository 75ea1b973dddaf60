//! Engine tests that need its internals; the protocol's behaviour is in the transcripts.

use super::*;
use crate::proto::Secret;

fn completed(client: &mut Client) -> (CommandId, Result<Reply, Error>) {
    loop {
        match client.poll_event() {
            Ok(Some(Event::Completed { id, result })) => return (id, result),
            Ok(Some(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn status_text_belongs_to_the_command_just_completed() {
    let mut c = Client::new(ClientOptions {
        negotiate: false,
        ..Default::default()
    });
    c.handle_input(b"+OK hi\r\n").unwrap();
    c.poll_event().unwrap();
    c.user("u").unwrap();
    c.pass(Secret::new("p")).unwrap();
    let _ = c.poll_transmit();
    c.handle_input(b"+OK send PASS\r\n").unwrap();
    assert_eq!(completed(&mut c).1, Ok(Reply::Ok("send PASS".into())));
    assert_eq!(c.status_text(), "send PASS");
    let _ = c.poll_transmit();
    c.handle_input(b"+OK maildrop has 1 message (3 octets)\r\n")
        .unwrap();
    assert_eq!(completed(&mut c).1, Ok(Reply::Authenticated));
    assert_eq!(c.status_text(), "maildrop has 1 message (3 octets)");
    c.retr(1).unwrap();
    let _ = c.poll_transmit();
    c.handle_input(b"+OK 3 octets\r\nab\r\n.\r\n").unwrap();
    assert_eq!(completed(&mut c).1, Ok(Reply::Retrieved { octets: 4 }));
    assert_eq!(c.status_text(), "3 octets");
}

#[test]
fn bytes_in_the_same_read_as_the_stls_ok_are_an_injection() {
    let mut c = Client::new(ClientOptions {
        security: Security::StartTls,
        ..Default::default()
    });
    c.handle_input(b"+OK hi\r\n").unwrap();
    c.poll_event().unwrap();
    let _ = c.poll_transmit();
    c.handle_input(b"+OK\r\nSTLS\r\n.\r\n").unwrap();
    assert_eq!(c.poll_event(), Ok(None));
    assert_eq!(&c.poll_transmit().unwrap()[..], b"STLS\r\n");
    c.handle_input(b"+OK begin\r\n+OK injected\r\n").unwrap();
    assert_eq!(
        c.poll_event().unwrap_err(),
        Error::Protocol(ProtocolError::InjectionAfterStls(14))
    );
    assert!(c.poll_transmit().is_none());
}

#[test]
fn names_round_trip() {
    for s in [Security::Tls, Security::StartTls, Security::None] {
        assert_eq!(s.as_str().parse(), Ok(s));
    }
    assert_eq!("STLS".parse(), Ok(Security::StartTls));
    for p in Phase::ALL {
        assert_eq!(p.as_str().parse(), Ok(p));
    }
    let methods = [AuthMethod::Auto, AuthMethod::UserPass, AuthMethod::Apop]
        .into_iter()
        .chain(crate::proto::Mechanism::ALL.map(AuthMethod::Sasl));
    for m in methods {
        assert_eq!(m.as_str().parse(), Ok(m));
    }
    assert!("nope".parse::<AuthMethod>().is_err());
    assert!("nope".parse::<Security>().is_err());
}

//! The client against scripted servers on loopback: STARTTLS stripping and injection stop the
//! connection before any credential is sent; APPEND replies that come early or refuse (quota,
//! TRYCREATE) are matched to their messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::ImapError;
use super::client::Connection;
use crate::fetch::config::{CredentialSource, ImapAuth, ImapConfig};
use crate::proto::{Secret, Security};

/// Runs `serve` on a thread for the one connection a loopback listener accepts, after the
/// greeting: `serve` gets the reader and a writer of that connection.
fn one_connection<T: Send + 'static>(
    serve: impl FnOnce(BufReader<TcpStream>, TcpStream) -> T + Send + 'static,
) -> (u16, std::thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        writer.write_all(b"* OK scripted server ready\r\n").unwrap();
        serve(BufReader::new(stream), writer)
    });
    (port, handle)
}

/// Serves one connection: the greeting, then for each line received, the reply `script`
/// gives for it. Returns every line the client sent.
fn scripted(script: fn(&str) -> String) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    one_connection(move |input, mut writer| {
        let mut lines = Vec::new();
        for line in input.lines() {
            let Ok(line) = line else { break };
            let reply = script(&line);
            lines.push(line);
            if writer.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
        lines
    })
}

fn config(port: u16) -> ImapConfig {
    ImapConfig {
        server: "127.0.0.1".into(),
        port,
        security: Security::StartTls,
        username: "me".into(),
        credential: CredentialSource::Password(Secret::from("imap-secret")),
        auth: ImapAuth::Auto,
        ca_file: None,
        folder: "INBOX".into(),
        create_folder: true,
        flags: Vec::new(),
        timeout: Duration::from_secs(10),
    }
}

#[test]
fn stripped_starttls_stops_before_login() {
    let (port, server) = scripted(|line| {
        let tag = line.split(' ').next().unwrap_or("*");
        format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n")
    });
    let error = Connection::open(&config(port)).err().unwrap();
    assert!(matches!(error, ImapError::Unsupported { .. }), "{error}");
    let lines = server.join().unwrap();
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("imap-secret") && !l.contains("LOGIN")),
        "{lines:?}"
    );
}

#[test]
fn bytes_after_the_starttls_ok_are_an_injection() {
    let (port, server) = scripted(|line| {
        let tag = line.split(' ').next().unwrap_or("*");
        if line.ends_with("STARTTLS") {
            format!("{tag} OK begin TLS\r\n* OK [ALERT] injected\r\n")
        } else {
            format!("* CAPABILITY IMAP4rev1 STARTTLS\r\n{tag} OK done\r\n")
        }
    });
    let error = Connection::open(&config(port)).err().unwrap();
    assert!(matches!(error, ImapError::Protocol { .. }), "{error}");
    assert!(error.to_string().contains("injection"), "{error}");
    let lines = server.join().unwrap();
    assert!(
        lines.iter().all(|l| !l.contains("imap-secret")),
        "{lines:?}"
    );
}

#[test]
fn where_a_message_landed_is_an_rfc_5092_url() {
    let mut c = config(993);
    c.server = "imap.example.com".into();
    c.username = "me@example.com".into();
    c.folder = "Privé/Old mail".into();
    let store = super::ImapStore::new(c.clone(), std::env::temp_dir());
    assert_eq!(
        store.url_base(),
        "imap://me%40example.com@imap.example.com:993/Priv%C3%A9/Old%20mail"
    );
    c.server = "::1".into();
    c.folder = "INBOX".into();
    let store = super::ImapStore::new(c, std::env::temp_dir());
    assert_eq!(store.url_base(), "imap://me%40example.com@[::1]:993/INBOX");
}

/// How [`append_server`] answers APPENDs (synchronizing literals only: no LITERAL+).
#[derive(Clone, Copy)]
enum Answer {
    /// Each APPEND's tagged reply comes just before the next one's `+` (the last's after its
    /// literal), as a server that reads ahead may send them; the first is NO [OVERQUOTA] when
    /// `refuse_first`.
    Late { refuse_first: bool },
    /// The first APPEND is refused before its literal: NO [TRYCREATE].
    TryCreate,
    /// As `Late` without refusals, announcing `APPENDLIMIT=100`.
    Limit100,
}

/// A one-connection IMAP server that reads APPEND literals by their length. Returns the port
/// and the number of APPENDs whose literal it received.
fn append_server(answer: Answer) -> (u16, std::thread::JoinHandle<usize>) {
    use std::io::Read;
    one_connection(move |mut input, mut out| {
        let caps = match answer {
            Answer::Limit100 => "IMAP4rev1 UIDPLUS APPENDLIMIT=100",
            _ => "IMAP4rev1 UIDPLUS",
        };
        let (mut appends, mut received) = (0usize, 0usize);
        let mut previous: Option<String> = None;
        let reply = |n: usize, tag: &str| match answer {
            Answer::Late { refuse_first: true } if n == 1 => {
                format!("{tag} NO [OVERQUOTA] quota exceeded\r\n")
            }
            _ => format!("{tag} OK [APPENDUID 7 {n}] done\r\n"),
        };
        loop {
            let mut line = Vec::new();
            if input.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            let tag = text.split(' ').next().unwrap_or("*").to_owned();
            let verb = text.split(' ').nth(1).unwrap_or("").to_ascii_uppercase();
            let response = match verb.as_str() {
                "CAPABILITY" => format!("* CAPABILITY {caps}\r\n{tag} OK done\r\n"),
                "LOGIN" => format!("{tag} OK [CAPABILITY {caps}] logged in\r\n"),
                "STATUS" => {
                    format!("* STATUS INBOX (UIDVALIDITY 7 UIDNEXT 1)\r\n{tag} OK done\r\n")
                }
                "LOGOUT" => {
                    let _ = out.write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes());
                    break;
                }
                "APPEND" => {
                    appends += 1;
                    let size: usize = text
                        .rsplit('{')
                        .next()
                        .unwrap()
                        .trim_end_matches('}')
                        .parse()
                        .unwrap();
                    if matches!(answer, Answer::TryCreate) && appends == 1 {
                        out.write_all(
                            format!("{tag} NO [TRYCREATE] no such mailbox\r\n").as_bytes(),
                        )
                        .unwrap();
                        continue;
                    }
                    let mut early = String::new();
                    if let Some(p) = previous.take() {
                        early = reply(appends - 1, &p);
                    }
                    out.write_all(format!("{early}+ go on\r\n").as_bytes())
                        .unwrap();
                    let mut literal = vec![0u8; size + 2];
                    input.read_exact(&mut literal).unwrap();
                    received += 1;
                    previous = Some(tag);
                    // Sent only when no further APPEND comes (the client then waits for it).
                    String::new()
                }
                "" => String::new(),
                _ => format!("{tag} OK done\r\n"),
            };
            out.write_all(response.as_bytes()).unwrap();
            // The last APPEND: its reply once the client has nothing more to send.
            if verb == "APPEND" && previous.is_some() {
                let mut peek = [0u8; 1];
                let stream = input.get_ref();
                stream.set_nonblocking(true).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                let more = !input.buffer().is_empty() || stream.peek(&mut peek).is_ok();
                stream.set_nonblocking(false).unwrap();
                if !more && let Some(p) = previous.take() {
                    out.write_all(reply(appends, &p).as_bytes()).unwrap();
                }
            }
        }
        received
    })
}

fn plain_store(port: u16, spool: &std::path::Path) -> super::ImapStore {
    let mut c = config(port);
    c.security = Security::None;
    c.auth = ImapAuth::Login;
    super::ImapStore::new(c, spool.to_owned())
}

/// Stages `count` messages through the MailStore calls a fetch makes.
fn stage(store: &mut super::ImapStore, count: usize) {
    use crate::fetch::store::MailStore;
    for i in 0..count {
        store.label(&format!("uid-{i}"));
        let mut draft = store.draft().unwrap();
        draft
            .write_all(format!("Subject: {i}\r\n\r\nbody {i}\r\n").as_bytes())
            .unwrap();
        assert!(matches!(
            draft.finish().unwrap(),
            crate::fetch::store::Finished::Staged
        ));
    }
    assert_eq!(store.prepare().unwrap().len(), count);
}

#[test]
fn replies_to_earlier_appends_read_while_waiting_for_a_continuation_are_kept() {
    use crate::fetch::store::MailStore;
    let spool = tempfile::tempdir().unwrap();
    let (port, server) = append_server(Answer::Late {
        refuse_first: false,
    });
    let mut store = plain_store(port, spool.path());
    stage(&mut store, 3);
    assert_eq!(store.publish().unwrap(), 3);
    let places = store.take_places();
    assert_eq!(places.len(), 3);
    for (i, place) in places.iter().enumerate() {
        let place = place.as_deref().unwrap();
        assert!(
            place.ends_with(&format!("/INBOX;UIDVALIDITY=7/;UID={}", i + 1)),
            "{place}"
        );
    }
    drop(store);
    assert_eq!(server.join().unwrap(), 3);
}

#[test]
fn an_early_refusal_of_an_earlier_append_fails_the_batch_naming_that_message() {
    use crate::fetch::store::{MailStore, StoreError};
    let spool = tempfile::tempdir().unwrap();
    let (port, server) = append_server(Answer::Late { refuse_first: true });
    let mut store = plain_store(port, spool.path());
    stage(&mut store, 3);
    let error = store.publish().unwrap_err();
    let StoreError::Imap(imap) = &error else {
        panic!("{error}");
    };
    let ImapError::Refused {
        message, reason, ..
    } = &**imap
    else {
        panic!("{error}");
    };
    assert_eq!(message, "uid-0");
    assert!(reason.contains("OVERQUOTA"), "{reason}");
    assert!(store.take_places().is_empty());
    drop(store);
    // The rest of the batch was still sent (recovery finds what landed).
    assert_eq!(server.join().unwrap(), 3);
}

#[test]
fn trycreate_names_the_folder_and_says_what_to_do() {
    use crate::fetch::store::{MailStore, StoreError};
    let spool = tempfile::tempdir().unwrap();
    let (port, server) = append_server(Answer::TryCreate);
    let mut store = plain_store(port, spool.path());
    stage(&mut store, 1);
    let error = store.publish().unwrap_err();
    assert!(
        matches!(&error, StoreError::Imap(e) if matches!(&**e, ImapError::Folder { folder, .. } if folder == "INBOX")),
        "{error}"
    );
    assert!(
        error.to_string().contains("run again to create it"),
        "{error}"
    );
    drop(store);
    assert_eq!(server.join().unwrap(), 0, "no literal after the refusal");
}

#[test]
fn a_message_over_appendlimit_is_refused_alone_before_anything_is_sent() {
    use crate::fetch::store::MailStore;
    let spool = tempfile::tempdir().unwrap();
    let (port, server) = append_server(Answer::Limit100);
    let mut store = plain_store(port, spool.path());
    store.label("big");
    let mut draft = store.draft().unwrap();
    draft
        .write_all(format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(200)).as_bytes())
        .unwrap();
    let error = draft.finish().unwrap_err();
    assert!(error.is_message_refused(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("APPENDLIMIT") && text.contains("big"),
        "{text}"
    );
    // The spool file went with the draft; the next message goes through as usual.
    stage(&mut store, 1);
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 1);
    assert_eq!(store.publish().unwrap(), 1);
    drop(store);
    assert_eq!(server.join().unwrap(), 1);
}

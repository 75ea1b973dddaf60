//! The client against a scripted server on loopback: STARTTLS stripping and injection stop the
//! connection before any credential is sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use super::ImapError;
use super::client::Connection;
use crate::fetch::config::{CredentialSource, ImapAuth, ImapConfig};
use crate::proto::{Secret, Security};

/// Serves one connection: the greeting, then for each line received, the reply `script`
/// gives for it. Returns every line the client sent.
fn scripted(script: fn(&str) -> String) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        writer.write_all(b"* OK scripted server ready\r\n").unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let reply = script(&line);
            lines.push(line);
            if writer.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
        lines
    });
    (port, handle)
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

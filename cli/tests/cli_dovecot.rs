//! The `popwire` command against a real Dovecot: every message stored once and byte-exact, the
//! server emptied (or kept), and the exit codes a script relies on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use popwire_tests::{Dovecot, corpus};

struct Setup {
    dir: tempfile::TempDir,
    user: String,
}

impl Setup {
    fn new(prefix: &str) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            user: Dovecot::shared().new_user(prefix),
        }
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    fn config(&self, security: &str, extra: &str) -> PathBuf {
        let d = Dovecot::shared();
        let port = if security == "tls" {
            d.tls_port
        } else {
            d.plain_port
        };
        let path = self.dir.path().join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[accounts.test]\nemail = \"{0}@example.com\"\nusername = \"{0}\"\nserver = \"localhost\"\nport = {port}\nsecurity = \"{security}\"\n\
                 ca_file = \"{1}\"\npassword_env = \"POPWIRE_TEST_PW\"\nmaildir = \"{2}\"\n{extra}\n",
                self.user,
                d.ca_file.display(),
                self.maildir().display()
            ),
        )
        .unwrap();
        path
    }

    fn run(&self, args: &[&str], config: &Path) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_popwire"))
            .args(args)
            .arg("--config")
            .arg(config)
            .env("POPWIRE_TEST_PW", &Dovecot::shared().password)
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn stored(&self) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir().join(sub)) {
                for e in entries {
                    all.push(std::fs::read(e.unwrap().path()).unwrap());
                }
            }
        }
        all.sort();
        all
    }
}

/// What a message looks like once stored: the wire form with CRLF turned back into LF.
fn stored_form(msg: &[u8]) -> Vec<u8> {
    let wire = corpus::wire_form(msg);
    let mut out = Vec::with_capacity(wire.len());
    let mut i = 0;
    while i < wire.len() {
        if wire[i] == b'\r' && wire.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(wire[i]);
        i += 1;
    }
    out
}

fn expected(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = messages.iter().map(|m| stored_form(m)).collect();
    v.sort();
    v
}

#[test]
fn fetch_deletes_and_stores_every_message_once_over_each_security() {
    let d = Dovecot::shared();
    for security in ["tls", "starttls", "none"] {
        let s = Setup::new("clifetch");
        let mut messages = corpus::tricky_messages();
        messages.extend(corpus::sized(40, 3000, 11));
        d.seed(&s.user, &messages).unwrap();
        let config = s.config(security, "");
        let (code, out, err) = s.run(&["fetch"], &config);
        assert_eq!(code, 0, "{security}: {out}\n{err}");
        assert!(
            out.contains(&format!("fetched {} messages", messages.len())),
            "{out}"
        );
        assert_eq!(s.stored(), expected(&messages), "{security}");
        assert!(
            d.server_messages(&s.user).unwrap().is_empty(),
            "{security}: server not emptied"
        );
        let (code, out, _) = s.run(&["fetch"], &config);
        assert_eq!(code, 0);
        assert!(out.contains("fetched 0 messages"), "{out}");
    }
}

#[test]
fn keep_mode_never_fetches_twice() {
    let d = Dovecot::shared();
    let s = Setup::new("clikeep");
    let messages = corpus::sized(20, 2000, 5);
    d.seed(&s.user, &messages).unwrap();
    let config = s.config("tls", "keep = true");
    let (code, out, err) = s.run(&["fetch"], &config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("fetched 20 messages"), "{out}");
    let (code, out, _) = s.run(&["fetch"], &config);
    assert_eq!(code, 0);
    assert!(out.contains("fetched 0 messages"), "{out}");
    assert_eq!(s.stored(), expected(&messages));
    assert_eq!(d.server_messages(&s.user).unwrap().len(), 20);
    // A new message arrives: only it is fetched.
    d.seed(&s.user, &[b"Subject: late\n\nlate arrival\n".to_vec()])
        .unwrap();
    let (_, out, _) = s.run(&["fetch"], &config);
    assert!(out.contains("fetched 1 message "), "{out}");
}

#[test]
fn big_messages_and_size_limit() {
    let d = Dovecot::shared();
    let s = Setup::new("clibig");
    let messages = corpus::sized(3, 1_500_000, 9);
    let small = b"Subject: small\n\nsmall\n".to_vec();
    let mut all = messages.clone();
    all.push(small.clone());
    d.seed(&s.user, &all).unwrap();
    let config = s.config("tls", "max_message_size = \"1M\"");
    let (code, out, err) = s.run(&["fetch"], &config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("skipped 3 too large"), "{out}");
    assert_eq!(s.stored(), expected(&[small]));
    assert_eq!(d.server_messages(&s.user).unwrap().len(), 3);
    let config = s.config("tls", "");
    let (code, _, _) = s.run(&["fetch"], &config);
    assert_eq!(code, 0);
    let mut want = all.clone();
    want.sort();
    assert_eq!(s.stored().len(), 4);
}

#[test]
fn check_and_list() {
    let d = Dovecot::shared();
    let s = Setup::new("clicheck");
    d.seed(&s.user, &corpus::sized(3, 1000, 1)).unwrap();
    let config = s.config("tls", "");
    let (code, out, _) = s.run(&["check"], &config);
    assert_eq!(code, 0);
    assert!(out.contains("test: 3 messages"), "{out}");
    let (code, out, _) = s.run(&["list", "--json"], &config);
    assert_eq!(code, 0);
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("\"event\":\"message\""))
            .count(),
        3,
        "{out}"
    );
}

#[test]
fn exit_codes_name_the_account_server_and_fix() {
    let d = Dovecot::shared();
    let s = Setup::new("clierr");
    // Wrong password: 77.
    let config = s.config("tls", "");
    let out = Command::new(env!("CARGO_BIN_EXE_popwire"))
        .args(["fetch", "--config"])
        .arg(&config)
        .env("POPWIRE_TEST_PW", "wrong-password")
        .env("XDG_STATE_HOME", s.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains("test") && err.contains("localhost"), "{err}");
    assert!(!err.contains("wrong-password"));
    // Wrong CA: a TLS error, 69, and no credential sent.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &d.ca_file.display().to_string(),
        &d.ca().wrong_ca_cert.display().to_string(),
    );
    std::fs::write(&config, text).unwrap();
    let (code, _, err) = s.run(&["fetch"], &config);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("certificate"), "{err}");
    // No server: 69.
    let text = format!(
        "[accounts.test]\nemail = \"x@example.com\"\nserver = \"127.0.0.1\"\nport = 1\npassword = \"p\"\nmaildir = \"{}\"\n",
        s.maildir().display()
    );
    std::fs::write(&config, text).unwrap();
    let (code, _, err) = s.run(&["fetch"], &config);
    assert_eq!(code, 69, "{err}");
    // A config mistake: 78, naming file, line and key.
    std::fs::write(
        &config,
        "[accounts.test]\nemail = \"x@example.com\"\nserver = \"h\"\nsecurty = \"tls\"\n",
    )
    .unwrap();
    let (code, _, err) = s.run(&["fetch"], &config);
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("config.toml:4") && err.contains("security"),
        "{err}"
    );
}

#[test]
fn demo_runs_with_nothing_installed() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_popwire"))
        .args(["demo", "--messages", "7", "--maildir"])
        .arg(dir.path().join("M"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("fetched 7 messages"), "{text}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("M/new")).unwrap().count(),
        7
    );
}

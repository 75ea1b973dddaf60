//! `popwire fetch` from a real Dovecot into the Gmail API **stand-in**
//! (tests/src/gmail_server.rs, which checks each request as Google documents it), with tokens
//! from the OAuth authorization stand-in: every message imported once and byte-exact, DELE only
//! after Google's 200, and each failure leaving the message on the POP server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use popwire_tests::gmail_server::{Fault, GmailServer};
use popwire_tests::oauth_server::{CLIENT_ID, OAuthServer};
use popwire_tests::{Dovecot, corpus};

struct Setup {
    dir: tempfile::TempDir,
    user: String,
    oauth: OAuthServer,
    gmail: GmailServer,
}

impl Setup {
    fn new(prefix: &str) -> Self {
        let oauth = OAuthServer::start().unwrap();
        let gmail = GmailServer::start(oauth.token_checker()).unwrap();
        let setup = Self {
            dir: tempfile::tempdir().unwrap(),
            user: Dovecot::shared().new_user(prefix),
            oauth,
            gmail,
        };
        setup.log_in();
        setup
    }

    /// What `popwire auth login` would leave: tokens the authorization stand-in issued.
    fn log_in(&self) {
        let (access, refresh) = self.oauth.issue(&self.user);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let file = self.dir.path().join("data/popwire/oauth/mail-gmail.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let tokens = serde_json::json!({
            "format": 1,
            "access_token": access,
            "refresh_token": refresh,
            "expires_at": now + 3600,
            "scopes": ["https://www.googleapis.com/auth/gmail.modify"],
            "token_endpoint": format!("{}/token", self.oauth.base),
            "obtained_at": now,
        });
        std::fs::write(&file, tokens.to_string()).unwrap();
    }

    fn config(&self, account_extra: &str, gmail_extra: &str) -> PathBuf {
        let d = Dovecot::shared();
        let path = self.dir.path().join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[accounts.mail]\nemail = \"{user}@example.com\"\nusername = \"{user}\"\nserver = \"localhost\"\n\
                 port = {port}\nca_file = \"{ca}\"\npassword_env = \"POPWIRE_TEST_PW\"\n{account_extra}\n\n\
                 [accounts.mail.gmail]\nendpoint = \"{endpoint}\"\n{gmail_extra}\n\n\
                 [accounts.mail.gmail.oauth]\ntoken_endpoint = \"{base}/token\"\nclient_id = \"{CLIENT_ID}\"\n",
                user = self.user,
                port = d.tls_port,
                ca = d.ca_file.display(),
                endpoint = self.gmail.base,
                base = self.oauth.base,
            ),
        )
        .unwrap();
        path
    }

    fn fetch(&self, config: &PathBuf) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_popwire"))
            .arg("fetch")
            .arg("--config")
            .arg(config)
            .env("POPWIRE_TEST_PW", &Dovecot::shared().password)
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn seed(&self, messages: &[Vec<u8>]) {
        Dovecot::shared().seed(&self.user, messages).unwrap();
    }

    fn on_server(&self) -> usize {
        Dovecot::shared().server_messages(&self.user).unwrap().len()
    }

    /// The raw messages Gmail holds, sorted.
    fn imported(&self) -> Vec<Vec<u8>> {
        let mut raw: Vec<Vec<u8>> = self.gmail.imported().into_iter().map(|m| m.raw).collect();
        raw.sort();
        raw
    }

    fn no_violations(&self) {
        assert_eq!(self.gmail.violations(), Vec::<String>::new());
        assert_eq!(self.oauth.violations(), Vec::<String>::new());
    }
}

/// Messages with a Message-ID each (what recovery searches for).
fn messages(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!(
                "From: a@example.com\nTo: b@example.com\nSubject: {tag} {i}\nMessage-ID: <{tag}.{i}@example.com>\n\n\
                 body {i}\n.leading dot\n\nFrom here on\n"
            )
            .into_bytes()
        })
        .collect()
}

fn wire(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = messages.iter().map(|m| corpus::wire_form(m)).collect();
    v.sort();
    v
}

#[test]
fn imports_every_message_byte_exact_then_deletes() {
    let s = Setup::new("gm-del");
    let mut mail = messages(4, "del");
    mail.extend(corpus::tricky_messages());
    s.seed(&mail);
    let config = s.config("", "");
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.imported(), wire(&mail));
    assert_eq!(s.on_server(), 0);
    for m in s.gmail.imported() {
        assert_eq!(m.labels, ["INBOX", "UNREAD"]);
        assert_eq!(
            m.switches,
            ("dateHeader".into(), "false".into(), "false".into())
        );
    }
    // Nothing left to do, nothing imported twice.
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.imported().len(), mail.len());
    s.no_violations();
}

#[test]
fn keep_mode_imports_once_and_leaves_the_server_alone() {
    let s = Setup::new("gm-keep");
    let mail = messages(3, "keep");
    s.seed(&mail);
    let config = s.config(
        "keep = true",
        "internal_date_source = \"receivedTime\"\nnever_mark_spam = true\nprocess_for_calendar = true",
    );
    for _ in 0..2 {
        let (code, out) = s.fetch(&config);
        assert_eq!(code, 0, "{out}");
    }
    assert_eq!(s.imported(), wire(&mail));
    assert_eq!(s.on_server(), 3);
    assert_eq!(
        s.gmail.imported()[0].switches,
        ("receivedTime".into(), "true".into(), "true".into())
    );
    s.no_violations();
}

#[test]
fn labels_are_resolved_by_name_and_created_when_asked() {
    let s = Setup::new("gm-lab");
    let existing = s.gmail.add_label("Existing");
    s.seed(&messages(2, "lab"));
    // A missing label without create_labels: a config error, nothing imported or deleted.
    let config = s.config("", "labels = [\"INBOX\", \"existing\", \"From POP\"]");
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 78, "{out}");
    assert!(out.contains("no label \"From POP\""), "{out}");
    assert!(out.contains("create_labels = true"), "{out}");
    assert!(s.gmail.imported().is_empty());
    assert_eq!(s.on_server(), 2);
    let config = s.config(
        "",
        "labels = [\"INBOX\", \"existing\", \"From POP\"]\ncreate_labels = true",
    );
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    let created = s
        .gmail
        .labels()
        .into_iter()
        .find(|(_, name)| name == "From POP")
        .map(|(id, _)| id)
        .unwrap();
    for m in s.gmail.imported() {
        assert_eq!(
            m.labels,
            ["INBOX".to_owned(), existing.clone(), created.clone()]
        );
    }
    // Resolved once per run: one list, one create.
    let log = s.gmail.log();
    let lists = log
        .iter()
        .filter(|l| l.starts_with("GET") && l.ends_with("/labels -> 200"));
    assert_eq!(lists.count(), 2, "{log:?}");
    s.no_violations();
}

#[test]
fn a_refused_message_stays_on_the_server_and_the_rest_goes() {
    let s = Setup::new("gm-400");
    s.seed(&messages(3, "bad"));
    s.gmail.fail_imports(&[Fault::BadRequest, Fault::TooLarge]);
    let config = s.config("", "");
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 65, "{out}");
    assert!(
        out.contains("HTTP 400") && out.contains("HTTP 413"),
        "{out}"
    );
    assert_eq!(s.imported().len(), 1);
    assert_eq!(s.on_server(), 2);
    // The next run imports it (the stand-in takes it now).
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.imported().len(), 3);
    assert_eq!(s.on_server(), 0);
    s.no_violations();
}

#[test]
fn over_the_import_cap_is_reported_and_never_sent() {
    let s = Setup::new("gm-cap");
    let mut mail = messages(2, "cap");
    let mut big = b"Subject: big\nMessage-ID: <big@example.com>\n\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 4000));
    big.push(b'\n');
    mail.push(big);
    s.seed(&mail);
    let config = s.config("", "max_import_size = \"2K\"");
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 65, "{out}");
    assert!(
        out.contains("over the destination's cap of 2048 octets") && out.contains("account mail"),
        "{out}"
    );
    assert_eq!(s.imported().len(), 2);
    assert_eq!(s.on_server(), 1);
    s.no_violations();
}

#[test]
fn rate_limits_and_server_errors_are_retried_then_stop_without_dele() {
    let s = Setup::new("gm-429");
    let mail = messages(3, "busy");
    s.seed(&mail);
    let config = s.config("", "");
    // One 429 and one 500: retried within the run (the 500 after a search finds nothing).
    s.gmail.fail_imports(&[
        Fault::TooManyRequests,
        Fault::UserRateLimit,
        Fault::ServerError,
    ]);
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.imported(), wire(&mail));
    assert_eq!(s.on_server(), 0);

    let s = Setup::new("gm-429b");
    s.seed(&mail);
    let config = s.config("", "");
    s.gmail.fail_imports(&[Fault::TooManyRequests; 4]);
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 75, "{out}");
    assert!(out.contains("HTTP 429, 4 attempts"), "{out}");
    assert!(s.gmail.imported().is_empty());
    assert_eq!(s.on_server(), 3);
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.imported(), wire(&mail));
    assert_eq!(s.on_server(), 0);
    s.no_violations();
}

#[test]
fn an_expired_token_is_refreshed_once_and_a_revoked_one_asks_for_a_login() {
    let s = Setup::new("gm-401");
    s.seed(&messages(2, "tok"));
    let config = s.config("", "");
    s.gmail.fail_imports(&[Fault::Unauthorized]);
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.imported().len(), 2);
    assert!(
        s.oauth.log().iter().any(|l| l.contains("refresh_token")),
        "{:?}",
        s.oauth.log()
    );

    s.seed(&messages(1, "tok2"));
    s.oauth.revoke(&s.user);
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 77, "{out}");
    assert!(out.contains("popwire auth login mail"), "{out}");
    let file = s.dir.path().join("data/popwire/oauth/mail-gmail.json");
    let tokens: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    for key in ["access_token", "refresh_token"] {
        let token = tokens[key].as_str().unwrap();
        assert!(!out.contains(token), "{key} in the output: {out}");
    }
    assert!(!out.contains("Bearer"), "{out}");
    assert_eq!(s.on_server(), 1);
    s.no_violations();
}

#[test]
fn an_answer_lost_after_the_import_is_found_again_not_imported_twice() {
    // Within the run: the search before the retry finds it.
    let s = Setup::new("gm-drop");
    let mail = messages(3, "drop");
    s.seed(&mail);
    // A short timeout: the cut-off answer is given up on sooner.
    let config = s.config("timeout = \"2s\"", "");
    s.gmail.fail_imports(&[Fault::DropAfterImport]);
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert!(s.gmail.log().iter().any(|l| l.contains("/messages -> 200")));
    assert_eq!(s.imported(), wire(&mail));
    assert_eq!(s.on_server(), 0);
    s.no_violations();
}

#[test]
fn the_crash_between_import_and_journal_is_recovered_at_the_next_start() {
    let s = Setup::new("gm-crash");
    let mail = messages(3, "crash");
    s.seed(&mail);
    let config = s.config("timeout = \"2s\"", "");
    // The answer is lost and Gmail cannot be searched during this run: the run stops, the
    // write-ahead intent stays, nothing is deleted.
    s.gmail.fail_imports(&[Fault::DropAfterImport]);
    s.gmail.fail_searches(&[Fault::ServerError; 4]);
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 75, "{out}");
    assert_eq!(s.gmail.imported().len(), 1);
    assert_eq!(s.on_server(), 3);
    // The next start finds the message by its Message-ID and records it: no second import.
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.imported(), wire(&mail));
    assert_eq!(s.on_server(), 0);
    s.no_violations();
}

#[test]
fn sigkill_between_the_import_and_its_journal_line_is_recovered() {
    let s = Setup::new("gm-kill");
    let mail = messages(3, "kill");
    s.seed(&mail);
    let config = s.config("", "");
    // The second import is carried out, and its answer never completes: popwire is killed
    // while it waits, before it can journal the id.
    s.gmail
        .fail_imports(&[Fault::BadRequest, Fault::DropAfterImport]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_popwire"))
        .arg("fetch")
        .arg("--config")
        .arg(&config)
        .env("POPWIRE_TEST_PW", &Dovecot::shared().password)
        .env("HOME", s.dir.path())
        .env("XDG_DATA_HOME", s.dir.path().join("data"))
        .env("XDG_STATE_HOME", s.dir.path().join("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while s.gmail.imported().is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "popwire ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(s.on_server(), 3);
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.imported(), wire(&mail));
    assert_eq!(s.on_server(), 0);
    s.no_violations();
}

#[test]
fn a_hundred_mebibyte_message_is_streamed_not_held_in_memory() {
    let s = Setup::new("gm-big");
    let mut big =
        b"From: a@example.com\nSubject: big\nMessage-ID: <big.100m@example.com>\n\n".to_vec();
    let line = [b'x'; 99];
    while big.len() < 100 << 20 {
        big.extend_from_slice(&line);
        big.push(b'\n');
    }
    s.seed(std::slice::from_ref(&big));
    let config = s.config("", "");
    let mut command = Command::new(env!("CARGO_BIN_EXE_popwire"));
    command
        .arg("fetch")
        .arg("--config")
        .arg(&config)
        .env("POPWIRE_TEST_PW", &Dovecot::shared().password)
        .env("HOME", s.dir.path())
        .env("XDG_DATA_HOME", s.dir.path().join("data"))
        .env("XDG_STATE_HOME", s.dir.path().join("state"));
    let (out, kib) = popwire_tests::process::run_with_peak_rss(&mut command).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("peak RSS importing one 100 MiB message: {kib} KiB");
    let imported = s.gmail.imported();
    assert_eq!(imported.len(), 1);
    assert!(imported[0].raw == corpus::wire_form(&big), "not byte-exact");
    // A memory bound, not a time: the body goes through a temporary file.
    assert!(kib < 32 * 1024, "peak RSS {kib} KiB");
    assert_eq!(s.on_server(), 0);
    s.no_violations();
}

#[test]
fn without_a_message_id_a_lost_answer_means_a_second_import_never_a_loss() {
    // The documented limit: Gmail cannot be searched for a message without a Message-ID, so
    // after an answer lost with the import done, the retry imports it again (at least once).
    let s = Setup::new("gm-noid");
    let mail = vec![b"From: a@example.com\nSubject: no id\n\nbody\n".to_vec()];
    s.seed(&mail);
    let config = s.config("timeout = \"2s\"", "");
    s.gmail.fail_imports(&[Fault::DropAfterImport]);
    let (code, out) = s.fetch(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        s.imported(),
        [wire(&mail)[0].clone(), wire(&mail)[0].clone()]
    );
    assert_eq!(s.on_server(), 0);
    // No search was possible, none was made.
    assert!(!s.gmail.log().iter().any(|l| l.contains("/messages ->")));
    s.no_violations();
}

#[test]
fn auth_status_shows_the_gmail_login_when_pop_uses_a_password() {
    let s = Setup::new("gm-auth");
    let config = s.config("", "");
    let out = Command::new(env!("CARGO_BIN_EXE_popwire"))
        .args(["auth", "status", "mail", "--config"])
        .arg(&config)
        .env("HOME", s.dir.path())
        .env("XDG_DATA_HOME", s.dir.path().join("data"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("gmail.modify"), "{text}");
}

/// A benchmark, not a check (no time is asserted): `cargo test -p popwire-cli --test cli_gmail
/// -- --ignored --nocapture import_rate`. Figures go to BENCHMARKS.md.
#[test]
#[ignore]
fn import_rate() {
    let s = Setup::new("gm-rate");
    let mail: Vec<Vec<u8>> = messages(1000, "rate")
        .into_iter()
        .map(|mut m| {
            m.extend(std::iter::repeat_n(b'y', 5000));
            m.push(b'\n');
            m
        })
        .collect();
    s.seed(&mail);
    let config = s.config("", "");
    let start = std::time::Instant::now();
    let (code, out) = s.fetch(&config);
    let elapsed = start.elapsed();
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.imported().len(), 1000);
    println!(
        "1000 x 5 KiB from Dovecot (TLS) into the stand-in: {:.2} s, {:.0} messages/s",
        elapsed.as_secs_f64(),
        1000.0 / elapsed.as_secs_f64()
    );
}

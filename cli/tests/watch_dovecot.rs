//! `popwire watch` against the test Dovecot: new mail over several cycles stored exactly once,
//! SIGHUP adding and removing an account, a bad config on reload kept out, SIGTERM ending it cleanly, a
//! concurrent `popwire fetch` never duplicating, quarantine after N MDA refusals with the rest
//! flowing, the metrics endpoint and `popwire status`; and, against the scripted fault server,
//! SIGTERM with a session stalled mid-RETR (cancelled after `stop_grace`, nothing lost) and a
//! server announcing EXPIRE shorter than `keep` (one warning).
//!
//! Waits have generous deadlines only so that a broken build fails instead of hanging; nothing
//! asserts how fast anything is.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use popwire_tests::Dovecot;

const DEADLINE: Duration = Duration::from_secs(180);

fn message(tag: &str, i: usize) -> Vec<u8> {
    format!(
        "From: sender@example.com\r\nTo: rcpt@example.com\r\nSubject: {tag}-{i}\r\nMessage-ID: <{tag}-{i}@example.com>\r\n\r\nbody of {tag} {i}\r\n"
    )
    .into_bytes()
}

/// Subjects of every file under `dir` (recursively), counted.
fn subjects(dir: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.parent().is_some_and(|p| p.ends_with("tmp")) {
                continue;
            }
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for line in text.lines() {
                if let Some(s) = line.strip_prefix("Subject: ") {
                    *counts.entry(s.to_owned()).or_default() += 1;
                }
            }
        }
    }
    counts
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Account {
    name: String,
    user: String,
}

impl Account {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            user: Dovecot::shared().new_user(&format!("watch{name}")),
        }
    }

    fn table(&self, destination: &str) -> String {
        let d = Dovecot::shared();
        format!(
            "[accounts.{}]\nemail = \"{1}@example.com\"\nusername = \"{1}\"\nserver = \"localhost\"\nport = {2}\nsecurity = \"tls\"\nca_file = \"{3}\"\npassword_env = \"POPWIRE_TEST_PW\"\npoll = \"1s\"\n{destination}\n",
            self.name,
            self.user,
            d.tls_port,
            d.ca_file.display(),
        )
    }
}

struct Watch {
    dir: tempfile::TempDir,
    child: Option<Child>,
    log: PathBuf,
}

impl Watch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("watch.log");
        Self {
            dir,
            child: None,
            log,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("config.toml")
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.config(), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_popwire"));
        c.args(args)
            .env("POPWIRE_TEST_PW", &Dovecot::shared().password)
            .env("XDG_STATE_HOME", self.path("xdg"));
        c
    }

    fn start(&mut self) {
        self.start_with(&[]);
    }

    fn start_with(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self
            .command(&["watch", "--config"])
            .arg(self.config())
            .arg("--state-dir")
            .arg(self.state())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn events(&self) -> Vec<serde_json::Value> {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            f.read_to_string(&mut text).unwrap();
        }
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn wait_event(&self, event: &str, account: Option<&str>) -> serde_json::Value {
        let mut found = None;
        wait_until(&format!("event {event}"), || {
            found = self
                .events()
                .into_iter()
                .rev()
                .find(|e| e["event"] == event && account.is_none_or(|a| e["account"] == a));
            found.is_some()
        });
        found.unwrap()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// SIGTERM, then the exit status (waiting at most the deadline).
    fn stop(&mut self) -> i32 {
        self.signal("TERM");
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!("watch did not exit after SIGTERM:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The metrics endpoint's samples, `name{labels}` to value.
    fn scrape(&self) -> HashMap<String, f64> {
        let address = self.wait_event("metrics", None)["address"]
            .as_str()
            .unwrap()
            .to_owned();
        let body = ureq::get(&format!("http://{address}/metrics"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let mut samples = HashMap::new();
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            let (key, value) = line.rsplit_once(' ').unwrap();
            samples.insert(key.to_owned(), value.parse::<f64>().unwrap());
        }
        samples
    }

    fn status(&self) -> Vec<serde_json::Value> {
        let out = self
            .command(&["status", "--json", "--state-dir"])
            .arg(self.state())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const HEAD: &str =
    "[watch]\nlog_format = \"json\"\nmetrics = \"127.0.0.1:0\"\nstop_grace = \"20s\"\n";

#[test]
fn new_mail_over_several_cycles_is_stored_exactly_once_with_metrics_and_status() {
    let d = Dovecot::shared();
    let mut w = Watch::new();
    let a = Account::new("cycles");
    let maildir = w.path("Maildir");
    w.write_config(&format!(
        "{HEAD}\n{}",
        a.table(&format!("maildir = \"{}\"", maildir.display()))
    ));
    w.start();
    let mut sent = 0;
    for cycle in 0..3 {
        let batch: Vec<Vec<u8>> = (0..4).map(|i| message("cyc", cycle * 4 + i)).collect();
        d.seed(&a.user, &batch).unwrap();
        sent += batch.len();
        wait_until("the cycle's mail", || {
            subjects(&maildir).values().sum::<usize>() >= sent
        });
    }
    wait_until("the server emptied", || {
        d.server_messages(&a.user).unwrap().is_empty()
    });
    let got = subjects(&maildir);
    assert_eq!(got.len(), sent, "{got:?}");
    assert!(got.values().all(|&n| n == 1), "{got:?}");

    // The files are there before the session reports back: wait for the report.
    wait_until("the metrics", || {
        w.scrape().get("popwire_messages_total{account=\"cycles\"}") == Some(&(sent as f64))
    });
    let samples = w.scrape();
    assert_eq!(
        samples.get("popwire_messages_total{account=\"cycles\"}"),
        Some(&(sent as f64)),
        "{samples:?}"
    );
    assert!(samples["popwire_sessions_total{account=\"cycles\"}"] >= 3.0);
    assert!(samples["popwire_bytes_total{account=\"cycles\"}"] > 0.0);
    assert_eq!(
        samples["popwire_quarantined_messages{account=\"cycles\"}"],
        0.0
    );
    assert_eq!(samples["popwire_alert{account=\"cycles\"}"], 0.0);
    assert!(samples.contains_key("popwire_seconds_since_success{account=\"cycles\"}"));

    wait_until("the state file", || {
        w.status()
            .iter()
            .any(|s| s["account"] == "cycles" && s["messages"] == sent)
    });
    let status = w.status();
    assert!(status[0]["last_success"].as_u64().is_some(), "{status:?}");
    assert_eq!(status[0]["quarantined"], 0);
    let text = w
        .command(&["status", "--state-dir"])
        .arg(w.state())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("cycles: last success "), "{text}");

    // SIGTERM: a clean stop, exit 0, and the log says every session finished.
    assert_eq!(w.stop(), 0, "{}", w.log_text());
    let stopped = w.wait_event("stopped", None);
    assert_eq!(stopped["abandoned"], 0, "{stopped}");
    // No secret in anything watch wrote.
    let password = &d.password;
    assert!(!w.log_text().contains(password.as_str()));
    let state = std::fs::read_to_string(w.state().join("watch-state.json")).unwrap();
    assert!(!state.contains(password.as_str()));
}

#[test]
fn sighup_adds_and_removes_accounts_and_a_bad_config_on_reload_keeps_the_old_one() {
    let d = Dovecot::shared();
    let mut w = Watch::new();
    let a = Account::new("first");
    let b = Account::new("second");
    let (ma, mb) = (w.path("A"), w.path("B"));
    let table_a = a.table(&format!("maildir = \"{}\"", ma.display()));
    let table_b = b.table(&format!("maildir = \"{}\"", mb.display()));
    w.write_config(&format!("{HEAD}\n{table_a}"));
    d.seed(&a.user, &[message("a", 0)]).unwrap();
    d.seed(&b.user, &[message("b", 0)]).unwrap();
    w.start();
    wait_until("a's mail", || subjects(&ma).len() == 1);
    assert!(subjects(&mb).is_empty());

    w.write_config(&format!("{HEAD}\n{table_a}\n{table_b}"));
    w.signal("HUP");
    let reloaded = w.wait_event("reloaded", None);
    assert_eq!(reloaded["added"], 1, "{reloaded}");
    wait_until("b's mail after the reload", || subjects(&mb).len() == 1);

    // A mistake in the file: logged with file, line, key and fix; the old config stays.
    w.write_config(&format!(
        "{HEAD}\n{table_a}\n{table_b}\nsecurty = \"tls\"\n"
    ));
    w.signal("HUP");
    let failed = w.wait_event("reload_failed", None);
    let text = failed["message"].as_str().unwrap();
    assert!(
        text.contains(&w.config().display().to_string())
            && text.contains("accounts.second.securty: unknown key")
            && text.contains("did you mean \"security\"")
            && text.contains("keeping the previous config"),
        "{text}"
    );
    assert_eq!(failed["level"], "error");
    d.seed(&a.user, &[message("a", 1)]).unwrap();
    d.seed(&b.user, &[message("b", 1)]).unwrap();
    wait_until("both accounts still polled", || {
        subjects(&ma).len() == 2 && subjects(&mb).len() == 2
    });

    // Removing an account: it is no longer polled, reported or measured; the other goes on.
    w.write_config(&format!("{HEAD}\n{table_b}"));
    w.signal("HUP");
    wait_until("the removal", || {
        w.events()
            .iter()
            .any(|e| e["event"] == "reloaded" && e["removed"] == 1)
    });
    wait_until("the status without it", || {
        let status = w.status();
        status.len() == 1 && status[0]["account"] == "second"
    });
    assert!(
        !w.scrape().keys().any(|k| k.contains("account=\"first\"")),
        "series of a removed account"
    );
    d.seed(&a.user, &[message("a", 2)]).unwrap();
    d.seed(&b.user, &[message("b", 2)]).unwrap();
    wait_until("b's next message", || subjects(&mb).len() == 3);
    assert_eq!(subjects(&ma).len(), 2, "a removed account is not fetched");
    assert_eq!(w.stop(), 0);
}

#[test]
fn a_concurrent_fetch_of_the_same_account_never_duplicates() {
    let d = Dovecot::shared();
    let mut w = Watch::new();
    let a = Account::new("shared");
    let maildir = w.path("Maildir");
    w.write_config(&format!(
        "{HEAD}\n{}",
        a.table(&format!("maildir = \"{}\"", maildir.display()))
    ));
    w.start();
    let mut sent = 0;
    let mut skipped = 0;
    for round in 0..8 {
        let batch: Vec<Vec<u8>> = (0..5).map(|i| message("race", round * 5 + i)).collect();
        d.seed(&a.user, &batch).unwrap();
        sent += batch.len();
        // `popwire fetch` on the same journal (same state dir), racing watch's sessions.
        let out = w
            .command(&["fetch", "--quiet", "--state-dir"])
            .arg(w.state())
            .arg("--config")
            .arg(w.config())
            .output()
            .unwrap();
        // 0 when it got the lock, 75 when watch had it: never anything else.
        let code = out.status.code().unwrap();
        skipped += usize::from(code == 75);
        // Spread the rounds over several of watch's polls (1 s), so that both sides meet.
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            code == 0 || code == 75,
            "{code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Whatever is left, a waiting fetch drains it.
    let out = w
        .command(&["fetch", "--quiet", "--wait", "2m", "--state-dir"])
        .arg(w.state())
        .arg("--config")
        .arg(w.config())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    wait_until("every message", || {
        subjects(&maildir).values().sum::<usize>() >= sent
    });
    let got = subjects(&maildir);
    assert_eq!(got.len(), sent, "{got:?}");
    assert!(got.values().all(|&n| n == 1), "duplicates: {got:?}");
    assert_eq!(w.stop(), 0);
    // How often the two met (varies from run to run; the test holds either way).
    let busy = w.events().iter().filter(|e| e["event"] == "busy").count();
    eprintln!(
        "fetch runs that found watch fetching: {skipped}; watch sessions that found a fetch: {busy}"
    );
}

#[test]
fn a_message_the_mda_refuses_is_quarantined_after_n_tries_and_the_rest_flows() {
    let d = Dovecot::shared();
    let mut w = Watch::new();
    let a = Account::new("poison");
    let out = w.path("delivered");
    let tmp = w.path("mdatmp");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let refusals = w.path("refusals");
    let script = w.path("mda.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nf=$(mktemp \"{2}/in.XXXXXX\")\ncat > \"$f\"\nif grep -q POISON \"$f\"; then echo refused >> \"{1}\"; rm -f \"$f\"; exit 65; fi\nmv \"$f\" \"{0}/\"\n",
            out.display(),
            refusals.display(),
            tmp.display()
        ),
    )
    .unwrap();
    let refused = || {
        std::fs::read_to_string(&refusals)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let config = format!(
        "{HEAD}quarantine_after = 2\n\n{}",
        a.table(&format!("mda = [\"sh\", \"{}\"]", script.display()))
    );
    w.write_config(&config);
    let mut poison = message("poison", 0);
    poison.extend_from_slice(b"POISON\r\n");
    d.seed(&a.user, &[message("ok", 0), poison, message("ok", 1)])
        .unwrap();
    w.start();
    let q = w.wait_event("quarantined", Some("poison"));
    assert_eq!(q["level"], "warn");
    assert!(q["uid"].as_str().is_some_and(|u| !u.is_empty()), "{q}");
    assert_eq!(refused(), 2);
    // More mail keeps flowing while the poisoned message stays on the server, untouched.
    d.seed(&a.user, &[message("ok", 2)]).unwrap();
    wait_until("the rest", || subjects(&out).len() == 3);
    let sessions = |w: &Watch| w.scrape()["popwire_sessions_total{account=\"poison\"}"];
    let before = sessions(&w);
    wait_until("three more sessions", || sessions(&w) >= before + 3.0);
    assert_eq!(refused(), 2, "a quarantined message is not offered again");
    assert_eq!(d.server_messages(&a.user).unwrap().len(), 1);
    assert_eq!(
        w.scrape()["popwire_quarantined_messages{account=\"poison\"}"],
        1.0
    );
    wait_until("the status", || {
        w.status()
            .iter()
            .any(|s| s["account"] == "poison" && s["quarantined"] == 1)
    });
    let reported = w
        .events()
        .iter()
        .filter(|e| e["event"] == "quarantined")
        .count();
    assert_eq!(reported, 1, "reported once");
    assert_eq!(w.stop(), 0);

    // Persisted: a new watch process does not try it again either.
    w.start();
    wait_until("sessions of the second run", || {
        w.events()
            .iter()
            .filter(|e| e["event"] == "started")
            .count()
            == 2
    });
    let before = sessions(&w);
    wait_until("two sessions", || sessions(&w) >= before + 2.0);
    assert_eq!(refused(), 2);
    assert_eq!(w.stop(), 0);
    let got = subjects(&out);
    assert!(got.values().all(|&n| n == 1), "{got:?}");
}

#[test]
fn an_account_without_success_for_alert_after_raises_one_loud_alert() {
    let mut w = Watch::new();
    // Nothing listens on this port: every session fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    w.write_config(&format!(
        "{HEAD}alert_after = \"1s\"\n\n[accounts.down]\nemail = \"x@example.com\"\nserver = \"127.0.0.1\"\nport = {port}\nsecurity = \"tls\"\npassword = \"secret-canary-77\"\nmaildir = \"{}\"\npoll = \"1s\"\n",
        w.path("M").display()
    ));
    w.start();
    let alert = w.wait_event("alert", Some("down"));
    assert_eq!(alert["level"], "warn");
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("last error (network)"),
        "{alert}"
    );
    assert_eq!(w.scrape()["popwire_alert{account=\"down\"}"], 1.0);
    assert!(w.scrape()["popwire_failures_total{account=\"down\",class=\"network\"}"] >= 1.0);
    wait_until("the alert in the state file", || {
        w.status().iter().any(|s| s["alert"] == true)
    });
    let out = w
        .command(&["status", "--state-dir"])
        .arg(w.state())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("down [ALERT]: last success never"),
        "{text}"
    );
    assert_eq!(w.stop(), 0);
    let alerts = w.events().iter().filter(|e| e["event"] == "alert").count();
    assert_eq!(alerts, 1, "reported once");
    assert!(!w.log_text().contains("secret-canary-77"));
}

#[test]
fn sigterm_cancels_a_stalled_session_after_stop_grace_and_nothing_is_lost() {
    use popwire::proto::server::MemoryMaildrop;
    use popwire_tests::faulty::{Action, FaultServer, Faults, Step};
    let drop = MemoryMaildrop::new()
        .with_user("alice", "pw-stall")
        .with_message("Subject: stalled\n\nA\n");
    let server = FaultServer::builder(drop)
        .every_session(Faults::at(Step::command("RETR", 1), Action::Stall))
        .start()
        .unwrap();
    let mut w = Watch::new();
    // The read timeout is long: only the cancel can end the session in time.
    w.write_config(&format!(
        "[watch]\nlog_format = \"json\"\nstop_grace = \"1s\"\n\n[accounts.stall]\nemail = \"alice@example.com\"\nusername = \"alice\"\npassword = \"pw-stall\"\nserver = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\ntimeout = \"1h\"\nmaildir = \"{}\"\n",
        server.port(),
        w.path("M").display()
    ));
    w.start();
    wait_until("the stalled RETR", || server.received_contains(b"RETR"));
    assert_eq!(w.stop(), 0, "{}", w.log_text());
    w.wait_event("cancelling", None);
    let stopped = w.wait_event("stopped", None);
    assert_eq!(stopped["abandoned"], 0, "{stopped}");
    assert_eq!(server.maildrop().len(), 1, "nothing deleted");
    assert!(subjects(&w.path("M")).is_empty());
}

#[test]
fn messages_committed_before_a_failure_are_counted_in_the_metrics() {
    use popwire::proto::server::MemoryMaildrop;
    use popwire_tests::faulty::{Action, FaultServer, Faults, Step};
    let drop = MemoryMaildrop::new()
        .with_user("carol", "pw-count")
        .with_message("Subject: one\n\nA\n")
        .with_message("Subject: two\n\nB\n");
    // The first session stores both, then loses the connection at DELE: it fails, and the
    // second only deletes what the journal says is stored.
    let server = FaultServer::builder(drop)
        .session(1, Faults::at(Step::command("DELE", 1), Action::Close))
        .start()
        .unwrap();
    let mut w = Watch::new();
    w.write_config(&format!(
        "{HEAD}\n[accounts.count]\nemail = \"carol@example.com\"\nusername = \"carol\"\npassword = \"pw-count\"\nserver = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\npoll = \"1s\"\nmaildir = \"{}\"\n",
        server.port(),
        w.path("M").display()
    ));
    w.start();
    wait_until("the mailbox emptied", || server.maildrop().is_empty());
    let failed = w.wait_event("failed", Some("count"));
    assert_eq!(failed["class"], "network", "{failed}");
    let samples = w.scrape();
    let label = "{account=\"count\"}";
    assert_eq!(samples[&format!("popwire_messages_total{label}")], 2.0);
    assert!(samples[&format!("popwire_bytes_total{label}")] >= 30.0);
    assert_eq!(
        samples["popwire_failures_total{account=\"count\",class=\"network\"}"],
        1.0
    );
    assert_eq!(w.stop(), 0);
    assert_eq!(subjects(&w.path("M")).len(), 2);
    assert_eq!(w.status()[0]["messages"], 2, "{:?}", w.status());
}

#[test]
fn an_oauth_accounts_token_expiry_is_exported_even_when_its_login_fails() {
    use popwire::fetch::oauth::{TokenFile, TokenSet};
    use popwire::proto::Secret;
    use popwire::proto::server::MemoryMaildrop;
    use popwire_tests::faulty::FaultServer;
    // A server that knows no XOAUTH2: every session fails at login, and the expiry must still
    // be there for an operator to alert on (a token about to run out is why logins fail).
    let server = FaultServer::builder(MemoryMaildrop::new().with_user("erin", "unused"))
        .start()
        .unwrap();
    let mut w = Watch::new();
    let token_file = w.path("erin-token.json");
    let expires_at = 4_102_444_800; // 2100-01-01: fresh, so nothing is refreshed
    TokenFile::new(&token_file)
        .save(&TokenSet {
            access_token: Secret::from("access-token-canary"),
            refresh_token: None,
            expires_at: Some(expires_at),
            scopes: vec!["mail".into()],
            token_endpoint: "http://127.0.0.1:9/token".into(),
            obtained_at: 1_700_000_000,
        })
        .unwrap();
    w.write_config(&format!(
        "{HEAD}\n[accounts.tok]\nemail = \"erin@example.com\"\nusername = \"erin\"\nserver = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\npoll = \"1s\"\nmaildir = \"{}\"\n\n[accounts.tok.oauth]\ntoken_endpoint = \"http://127.0.0.1:9/token\"\nclient_id = \"test-client\"\ntoken_file = \"{}\"\n",
        server.port(),
        w.path("M").display(),
        token_file.display()
    ));
    w.start();
    let failed = w.wait_event("failed", Some("tok"));
    let samples = w.scrape();
    assert_eq!(
        samples["popwire_oauth_token_expiry_timestamp_seconds{account=\"tok\"}"], expires_at as f64,
        "{failed}"
    );
    assert_eq!(w.stop(), 0);
    assert!(!w.log_text().contains("access-token-canary"));
}

#[test]
fn a_server_expiring_mail_sooner_than_keep_is_warned_about_once() {
    use popwire::proto::Expire;
    use popwire::proto::server::MemoryMaildrop;
    use popwire_tests::faulty::FaultServer;
    let drop = MemoryMaildrop::new()
        .with_user("bob", "pw-expire")
        .with_message("Subject: kept\n\nA\n");
    let server = FaultServer::builder(drop)
        .options(|o| o.expire = Some(Expire::Days(2)))
        .start()
        .unwrap();
    let mut w = Watch::new();
    w.write_config(&format!(
        "[watch]\nlog_format = \"json\"\n\n[accounts.exp]\nemail = \"bob@example.com\"\nusername = \"bob\"\npassword = \"pw-expire\"\nserver = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nkeep = \"30d\"\npoll = \"1s\"\nmaildir = \"{}\"\n",
        server.port(),
        w.path("M").display()
    ));
    w.start();
    let warning = w.wait_event("expire", Some("exp"));
    assert_eq!(warning["level"], "warn");
    assert!(
        warning["message"].as_str().unwrap().contains("EXPIRE 2"),
        "{warning}"
    );
    wait_until("more sessions", || server.sessions() >= 3);
    assert_eq!(w.stop(), 0);
    let count = w.events().iter().filter(|e| e["event"] == "expire").count();
    assert_eq!(count, 1, "once per run");
    assert_eq!(subjects(&w.path("M")).len(), 1);
}

#[test]
fn two_shards_split_the_accounts_and_store_every_message_once() {
    let d = Dovecot::shared();
    let accounts: Vec<Account> = (0..6).map(|i| Account::new(&format!("shard{i}"))).collect();
    let mut shards = [Watch::new(), Watch::new()];
    let maildir = shards[0].path("Maildir");
    let mut config = HEAD.to_owned();
    for a in &accounts {
        config.push_str(&a.table(&format!("maildir = \"{}\"", maildir.display())));
        d.seed(&a.user, &[message(&a.name, 0)]).unwrap();
    }
    for (i, w) in shards.iter_mut().enumerate() {
        w.write_config(&config);
        w.start_with(&["--shard", &format!("{i}/2")]);
    }
    wait_until("every mailbox emptied", || {
        accounts
            .iter()
            .all(|a| d.server_messages(&a.user).unwrap().is_empty())
    });
    let got = subjects(&maildir);
    assert_eq!(got.len(), accounts.len(), "{got:?}");
    assert!(got.values().all(|&n| n == 1), "{got:?}");
    // Each account is polled by one shard only: the state files split the names.
    let mut polled: Vec<String> = Vec::new();
    let mut here = 0;
    for w in &shards {
        let shard = w.wait_event("shard", None);
        let message = shard["message"].as_str().unwrap().to_owned();
        // "shard I/2: K of 6 accounts here"
        let count: usize = message
            .split_whitespace()
            .nth(2)
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| panic!("{message}"));
        assert!(message.ends_with("of 6 accounts here"), "{message}");
        here += count;
        if count > 0 {
            wait_until("the state file", || w.status().len() == count);
        }
        polled.extend(
            w.status()
                .iter()
                .map(|s| s["account"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(here, accounts.len());
    polled.sort();
    let mut names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
    names.sort();
    assert_eq!(polled, names);
    for w in &mut shards {
        assert_eq!(w.stop(), 0, "{}", w.log_text());
    }
    // A bad value is a usage error naming the flag.
    let out = shards[0]
        .command(&["watch", "--shard", "2/2", "--config"])
        .arg(shards[0].config())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard"));
}

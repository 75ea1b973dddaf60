//! A connection to a real Dovecot dropped in each phase of a fetch (by the [`FaultProxy`]):
//! after the greeting, during AUTH, in the middle of RETR, after DELE before QUIT, during QUIT.
//! Each time nothing is lost (every message is on the server or stored exactly once), nothing
//! unstored is deleted, and the retry stores everything exactly once and empties the server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::{Account, assert_all_stored_once, assert_nothing_lost, kind};
use popwire::fetch::job::exit;
use popwire_tests::faulty::{Cut, FaultProxy};
use popwire_tests::{Dovecot, corpus};

/// What a message looks like once stored: its wire form with CRLF turned back into LF.
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

/// A fresh Dovecot user with tricky and bulk mail, behind a proxy that cuts session 1.
struct Case {
    user: String,
    all: Vec<Vec<u8>>,
    proxy: FaultProxy,
    acct: Account,
}

impl Case {
    fn new(cut: Cut) -> Case {
        let d = Dovecot::shared();
        let user = d.new_user("dropped");
        let mut messages = corpus::tricky_messages();
        messages.extend(corpus::sized(12, 3000, 17));
        d.seed(&user, &messages).unwrap();
        let proxy = FaultProxy::start(d.plain_addr().unwrap(), [(1, cut)]).unwrap();
        // Plain POP3 to the proxy, so it can see the phases; `auto` logs in with SCRAM.
        let acct = Account::new(proxy.port()).user(&user, &d.password);
        Case {
            user,
            all: messages.iter().map(|m| stored_form(m)).collect(),
            proxy,
            acct,
        }
    }

    fn on_server(&self) -> Vec<Vec<u8>> {
        Dovecot::shared()
            .server_messages(&self.user)
            .unwrap()
            .iter()
            .map(|m| stored_form(m))
            .collect()
    }

    /// After the cut: it happened, and nothing is lost.
    #[track_caller]
    fn check_cut(&self) {
        let first = self.proxy.session(1).unwrap();
        assert!(first.fired, "the cut did not happen: {first:?}");
        assert_nothing_lost(&self.all, &self.on_server(), &self.acct.stored());
    }

    /// The retry: everything stored exactly once, the server empty.
    #[track_caller]
    fn check_retry(&self) {
        assert_all_stored_once(&self.all, &self.acct.stored());
        assert!(self.on_server().is_empty(), "server not emptied");
        assert!(
            self.acct.tmp_files().is_empty(),
            "{:?}",
            self.acct.tmp_files()
        );
    }
}

/// The fetch job: session 1 is cut, the error is a dropped connection, the retry completes.
fn job_case(cut: Cut, batch: usize) -> Case {
    let case = Case::new(cut);
    let err = case.acct.fetch_batch(batch).unwrap_err();
    assert!(
        matches!(kind(&err).as_str(), "protocol:unexpected-eof" | "net:io"),
        "{cut:?}: {err}"
    );
    assert_eq!(err.exit_code(), exit::TEMPFAIL, "{cut:?}: {err}");
    case.check_cut();
    let summary = case.acct.fetch_batch(batch).unwrap();
    case.check_retry();
    assert_eq!(summary.sessions, 1);
    case
}

#[test]
fn cut_after_the_greeting() {
    let case = job_case(Cut::AfterGreeting, 256);
    let forwarded = case.proxy.session(1).unwrap().forwarded;
    assert!(forwarded.iter().all(|v| v == "CAPA"), "{forwarded:?}");
}

#[test]
fn cut_during_auth() {
    let case = job_case(Cut::DuringAuth, 256);
    // The cut came inside the SASL exchange, after AUTH reached Dovecot.
    let forwarded = case.proxy.session(1).unwrap().forwarded;
    assert_eq!(
        forwarded.last().map(String::as_str),
        Some("AUTH"),
        "{forwarded:?}"
    );
}

#[test]
fn cut_in_the_middle_of_retr() {
    // Octet 20000 of the replies from the first RETR on: a few messages arrive whole.
    for batch in [256, 3] {
        let case = job_case(Cut::MidRetr { octets: 20_000 }, batch);
        let first = case.proxy.session(1).unwrap();
        assert!(!first.forwarded.contains(&"DELE".to_owned()), "{first:?}");
        // The retry did not fetch again what the cut session had stored whole.
        let second = case.proxy.session(2).unwrap();
        let retrieved = second.forwarded.iter().filter(|v| *v == "RETR").count();
        assert!(
            retrieved < case.all.len(),
            "batch {batch}: refetched everything"
        );
    }
}

#[test]
fn cut_after_dele_before_quit() {
    let case = job_case(Cut::AfterDele, 256);
    let first = case.proxy.session(1).unwrap();
    assert!(first.forwarded.contains(&"DELE".to_owned()), "{first:?}");
    // Everything was stored in session 1; the retry only deletes.
    let second = case.proxy.session(2).unwrap();
    assert!(!second.forwarded.contains(&"RETR".to_owned()), "{second:?}");
}

#[test]
fn cut_during_quit() {
    let case = Case::new(Cut::DuringQuit);
    let err = case.acct.fetch().unwrap_err();
    assert_eq!(err.exit_code(), exit::TEMPFAIL, "{err}");
    case.check_cut();
    // Dovecot committed the QUIT: the messages are gone from the server, and stored.
    assert!(case.on_server().is_empty());
    let summary = case.acct.fetch().unwrap();
    assert_eq!(summary.fetched, 0);
    case.check_retry();
}

/// The same through the `popwire` command: exit code 75 (try again later) and a message naming
/// the connection, then a clean second run.
#[test]
fn the_command_reports_a_cut_as_temporary_and_the_retry_succeeds() {
    for cut in [Cut::MidRetr { octets: 9_000 }, Cut::AfterDele] {
        let case = Case::new(cut);
        let run = case.acct.cli("fetch", &[]);
        assert_eq!(run.code, exit::TEMPFAIL, "{cut:?}: {run:?}");
        assert!(run.stderr.contains("connection"), "{cut:?}: {}", run.stderr);
        case.check_cut();
        let run = case.acct.cli("fetch", &[]);
        assert_eq!(run.code, 0, "{cut:?}: {run:?}");
        case.check_retry();
    }
}

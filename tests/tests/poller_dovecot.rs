//! `popwire::fetch::Poller` against a real Dovecot: every message handed to the handler once
//! across polls, a refused message left on the server and retried while the others flow, keep
//! mode, large bodies from a temporary file, pollers racing for one account (and a poller and
//! `popwire fetch` sharing one), and `run` stopped from another thread.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use popwire::fetch::config::Keep;
use popwire::fetch::poller::{HandlerError, Message, PollerBuilder};
use popwire::fetch::{FetchError, Poller};
use popwire::proto::Secret;
use popwire_tests::{Dovecot, corpus};

fn builder(d: &Dovecot, user: &str, state: &Path) -> PollerBuilder {
    Poller::builder("localhost", user, Secret::new(d.password.as_bytes()))
        .port(d.tls_port)
        .ca_file(&d.ca_file)
        .timeout(Duration::from_secs(20))
        .state_dir(state)
}

/// What a handler saw: (UID, body) in order.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A handler recording (UID, body) of each message it takes.
fn recorder(seen: &Seen) -> impl FnMut(Message<'_>) -> Result<(), HandlerError> + Send + use<> {
    let seen = Arc::clone(seen);
    move |mut m: Message<'_>| {
        let body = m.to_vec()?;
        seen.lock().unwrap().push((m.uid().to_owned(), body));
        Ok(())
    }
}

fn bodies(seen: &Seen) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    out.sort();
    out
}

fn wire(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = messages.iter().map(|m| corpus::wire_form(m)).collect();
    out.sort();
    out
}

#[test]
fn every_message_is_handed_over_once_across_polls_then_deleted() {
    let d = Dovecot::shared();
    let user = d.new_user("poll");
    let state = tempfile::tempdir().unwrap();
    let first = corpus::tricky_messages();
    d.seed(&user, &first).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut handler = recorder(&seen);
    let mut poller = builder(d, &user, state.path()).build();

    let report = poller.poll_once(&mut handler).unwrap();
    assert_eq!(report.handled.len(), first.len());
    assert_eq!(report.deleted, first.len());
    assert!(report.failed.is_empty());
    assert_eq!(
        bodies(&seen),
        wire(&first),
        "bodies as received: CRLF, dot-unstuffed"
    );
    assert!(d.server_messages(&user).unwrap().is_empty());

    let later = corpus::sized(3, 2000, 7);
    d.seed(&user, &later).unwrap();
    let report = poller.poll_once(&mut handler).unwrap();
    assert_eq!(report.handled.len(), 3);
    let empty = poller.poll_once(&mut handler).unwrap();
    assert_eq!((empty.listed, empty.fetched), (0, 0));
    let mut all = first.clone();
    all.extend(later);
    assert_eq!(bodies(&seen), wire(&all));
    let uids: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(u, _)| u.clone())
        .collect();
    let mut unique = uids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), uids.len(), "a UID handed out twice: {uids:?}");
}

#[test]
fn a_refused_message_stays_and_is_retried_while_the_others_flow() {
    let d = Dovecot::shared();
    let user = d.new_user("refuse");
    let state = tempfile::tempdir().unwrap();
    let messages = corpus::sized(5, 1500, 11);
    d.seed(&user, &messages).unwrap();
    let bad = corpus::wire_form(&messages[2]);
    let down = Arc::new(Mutex::new(true));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0usize));
    let mut handler = {
        let (down, seen, calls, bad) = (down.clone(), seen.clone(), calls.clone(), bad.clone());
        move |mut m: Message<'_>| -> Result<(), HandlerError> {
            *calls.lock().unwrap() += 1;
            let body = m.to_vec()?;
            if body == bad && *down.lock().unwrap() {
                return Err("the ticket system refused it".into());
            }
            seen.lock().unwrap().push((m.uid().to_owned(), body));
            Ok(())
        }
    };
    let mut poller = builder(d, &user, state.path()).build();
    let report = poller.poll_once(&mut handler).unwrap();
    assert_eq!(report.handled.len(), 4);
    assert_eq!(report.failed.len(), 1);
    let failure = &report.failed[0];
    assert_eq!(failure.reason, "the ticket system refused it");
    assert_eq!(failure.attempts, 1);
    assert_eq!(failure.retry_after, popwire::fetch::poller::RETRY_BASE);
    // (The server's copy is as stored: LF.)
    assert!(d.server_messages(&user).unwrap() == [messages[2].clone()]);

    // Within its backoff the message is not even retrieved.
    let report = poller.poll_once(&mut handler).unwrap();
    assert_eq!((report.deferred, report.fetched), (1, 0));
    assert_eq!(*calls.lock().unwrap(), 5);

    // Without backoff (a new poller: backoff is per process) it is retried at the next poll.
    let mut eager = builder(d, &user, state.path())
        .retry_backoff(Duration::ZERO, Duration::ZERO)
        .build();
    let report = eager.poll_once(&mut handler).unwrap();
    assert_eq!(report.failed.len(), 1, "still refused");
    assert_eq!(report.failed[0].retry_after, Duration::ZERO);
    *down.lock().unwrap() = false;
    let report = eager.poll_once(&mut handler).unwrap();
    assert_eq!(report.handled.len(), 1);
    assert!(d.server_messages(&user).unwrap().is_empty());
    assert_eq!(bodies(&seen), wire(&messages));
}

#[test]
fn keep_mode_hands_each_message_over_once_and_leaves_it_on_the_server() {
    let d = Dovecot::shared();
    let user = d.new_user("pollkeep");
    let state = tempfile::tempdir().unwrap();
    let messages = corpus::sized(4, 3000, 3);
    d.seed(&user, &messages).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut handler = recorder(&seen);
    let mut poller = builder(d, &user, state.path()).keep(Keep::Forever).build();
    let report = poller.poll_once(&mut handler).unwrap();
    assert_eq!((report.handled.len(), report.deleted), (4, 0));
    let again = poller.poll_once(&mut handler).unwrap();
    assert_eq!((again.handled.len(), again.kept), (0, 4));
    // A new process (a new poller on the same state directory) knows them too.
    let report = builder(d, &user, state.path())
        .keep(Keep::Forever)
        .build()
        .poll_once(&mut handler)
        .unwrap();
    assert_eq!((report.fetched, report.kept), (0, 4));
    assert_eq!(d.server_messages(&user).unwrap().len(), 4);
    assert_eq!(bodies(&seen), wire(&messages));

    // Switching to delete mode deletes what was handled, without handing it over again.
    let report = builder(d, &user, state.path())
        .build()
        .poll_once(&mut handler)
        .unwrap();
    assert_eq!((report.fetched, report.deleted), (0, 4));
    assert!(d.server_messages(&user).unwrap().is_empty());
}

#[test]
fn large_bodies_come_from_a_temporary_file() {
    let d = Dovecot::shared();
    let user = d.new_user("pollbig");
    let state = tempfile::tempdir().unwrap();
    let messages = corpus::sized(2, 200_000, 5);
    d.seed(&user, &messages).unwrap();
    let mut in_memory = Vec::new();
    let mut got = Vec::new();
    let mut handler = |mut m: Message<'_>| -> Result<(), HandlerError> {
        in_memory.push(m.bytes().is_some());
        let mut body = Vec::new();
        std::io::copy(&mut m.reader()?, &mut body)?;
        assert_eq!(body.len() as u64, m.len());
        got.push(body);
        Ok(())
    };
    let mut poller = builder(d, &user, state.path())
        .memory_limit(64 << 10)
        .build();
    poller.poll_once(&mut handler).unwrap();
    drop(poller);
    assert_eq!(in_memory, [false, false]);
    got.sort();
    assert_eq!(got, wire(&messages));
    // The spill files were unnamed: nothing is left beside the journal.
    let left: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".uids") && !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn concurrent_pollers_never_hand_out_the_same_message_twice() {
    let d = Dovecot::shared();
    for keep in [Keep::Forever, Keep::Delete] {
        let user = d.new_user("pollrace");
        let state = tempfile::tempdir().unwrap();
        let messages = corpus::sized(40, 1000, 21);
        d.seed(&user, &messages).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let poller = builder(d, &user, state.path())
                    .keep(keep)
                    .lock_wait(Duration::from_secs(120));
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut poller = poller.build();
                    let mut handler = recorder(&seen);
                    for _ in 0..3 {
                        poller.poll_once(&mut handler).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut counts: HashMap<String, usize> = HashMap::new();
        for (uid, _) in seen.lock().unwrap().iter() {
            *counts.entry(uid.clone()).or_default() += 1;
        }
        assert_eq!(counts.len(), 40, "{keep:?}");
        assert!(counts.values().all(|&n| n == 1), "{keep:?}: {counts:?}");
        assert_eq!(bodies(&seen), wire(&messages));
        let left = d.server_messages(&user).unwrap().len();
        assert_eq!(left, if keep == Keep::Delete { 0 } else { 40 });
    }
}

#[test]
fn a_poller_and_popwire_fetch_of_one_account_share_its_journal() {
    let d = Dovecot::shared();
    let user = d.new_user("pollfetch");
    let state = tempfile::tempdir().unwrap();
    let maildir = state.path().join("Mail");
    let toml = format!(
        "[accounts.work]\nemail = \"{user}@example.com\"\nusername = \"{user}\"\nserver = \"localhost\"\nport = {}\nca_file = \"{}\"\npassword = \"{}\"\nmaildir = \"{}\"\nkeep = true\n",
        d.tls_port,
        d.ca_file.display(),
        d.password,
        maildir.display()
    );
    let config = popwire::fetch::config::parse(&toml, Path::new("config.toml")).unwrap();
    let account = config.account("work").unwrap();
    d.seed(&user, &corpus::sized(3, 1200, 2)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut poller = Poller::from_account(account)
        .state_dir(state.path())
        .build();
    assert_eq!(
        poller
            .poll_once(&mut recorder(&seen))
            .unwrap()
            .handled
            .len(),
        3
    );
    // The same account fetched into its Maildir finds nothing new.
    let options = popwire::fetch::FetchOptions::new(state.path());
    let summary = popwire::fetch::fetch_account(account, &options, &mut |_| {}).unwrap();
    assert_eq!((summary.fetched, summary.kept), (0, 3));
    d.seed(&user, &corpus::sized(1, 1200, 9)).unwrap();
    let summary = popwire::fetch::fetch_account(account, &options, &mut |_| {}).unwrap();
    assert_eq!(summary.fetched, 1);
    let report = poller.poll_once(&mut recorder(&seen)).unwrap();
    assert_eq!((report.fetched, report.kept), (0, 4));
}

#[test]
fn run_polls_until_stopped_from_another_thread() {
    let d = Dovecot::shared();
    let user = d.new_user("pollrun");
    let state = tempfile::tempdir().unwrap();
    d.seed(&user, &corpus::sized(3, 800, 4)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut poller = builder(d, &user, state.path())
        .interval(Duration::from_millis(50))
        .build();
    let stop = poller.stop_handle();
    let polls = Arc::new(Mutex::new(0usize));
    let runner = {
        let (seen, polls) = (seen.clone(), polls.clone());
        std::thread::spawn(move || {
            let mut handler = recorder(&seen);
            poller.run(&mut handler, &mut |result: &Result<_, FetchError>| {
                assert!(result.is_ok(), "{result:?}");
                *polls.lock().unwrap() += 1;
            })
        })
    };
    // More mail arrives while it runs; wait (untimed) until it was handled.
    d.seed(&user, &corpus::sized(2, 800, 8)).unwrap();
    while seen.lock().unwrap().len() < 5 {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.stop();
    runner.join().unwrap().unwrap();
    assert!(*polls.lock().unwrap() >= 1);
    assert_eq!(seen.lock().unwrap().len(), 5);
    assert!(d.server_messages(&user).unwrap().is_empty());
}

#[test]
fn a_wrong_password_ends_run_with_an_auth_error() {
    let d = Dovecot::shared();
    let user = d.new_user("pollauth");
    let state = tempfile::tempdir().unwrap();
    let mut poller = Poller::builder("localhost", &user, Secret::new("wrong"))
        .port(d.tls_port)
        .ca_file(&d.ca_file)
        .state_dir(state.path())
        .build();
    let mut handler = |_: Message<'_>| -> Result<(), HandlerError> { Ok(()) };
    let error = poller.run(&mut handler, &mut |_| {}).unwrap_err();
    assert_eq!(error.class(), popwire::proto::ErrorClass::Auth, "{error}");
}

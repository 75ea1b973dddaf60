//! `Poller`'s schedule against the fault server: the server's LOGIN-DELAY capability, and the
//! `[LOGIN-DELAY]` and `[IN-USE]` refusals, push the next poll out; `run` keeps going through
//! temporary refusals and stops when asked, also while it waits out a backoff.
//!
//! The assertions compare the schedule's arithmetic with wide margins (a 900 s delay against
//! a 1 s interval); nothing here waits for a clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{PASSWORD, USER, maildrop, messages};
use popwire::fetch::poller::{HandlerError, Message};
use popwire::fetch::{FetchError, Poller};
use popwire::proto::{Secret, Security};
use popwire_tests::faulty::{Action, FaultServer, Faults, Step};

fn poller(port: u16, state: &std::path::Path) -> Poller {
    Poller::builder("127.0.0.1", USER, Secret::new(PASSWORD))
        .security(Security::None)
        .port(port)
        .state_dir(state)
        .interval(Duration::from_secs(1))
        .build()
}

fn take_all(_: Message<'_>) -> Result<(), HandlerError> {
    Ok(())
}

#[test]
fn the_login_delay_capability_spaces_polls() {
    let server = FaultServer::builder(maildrop(&messages(2)))
        .options(|o| o.login_delay = Some(900))
        .start()
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut poller = poller(server.port(), state.path());
    let report = poller.poll_once(&mut take_all).unwrap();
    assert_eq!(report.login_delay, Some(Duration::from_secs(900)));
    assert_eq!(report.handled.len(), 2);
    let next = poller.next_poll_in();
    assert!(next > Duration::from_secs(800), "{next:?}");
}

#[test]
fn login_delay_and_in_use_refusals_push_the_next_poll_out() {
    for (code, at_least) in [("LOGIN-DELAY", 250), ("IN-USE", 50)] {
        let refuse = Faults::at(Step::command("AUTH", 1), Action::err(code, "not now"));
        let server = FaultServer::builder(maildrop(&messages(1)))
            .session(1, refuse)
            .start()
            .unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut poller = poller(server.port(), state.path());
        let error = poller.poll_once(&mut take_all).unwrap_err();
        assert!(error.is_temporary(), "{code}: {error}");
        let next = poller.next_poll_in();
        assert!(next > Duration::from_secs(at_least), "{code}: {next:?}");
        // The caller may still poll at once; the message was never lost.
        assert_eq!(poller.poll_once(&mut take_all).unwrap().handled.len(), 1);
        assert!(server.maildrop().is_empty());
    }
}

#[test]
fn run_retries_temporary_refusals_and_stops_during_the_backoff() {
    let server = FaultServer::builder(maildrop(&messages(1)))
        .every_session(Faults::at(
            Step::command("AUTH", 1),
            Action::err("SYS/TEMP", "disk trouble"),
        ))
        .start()
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut poller = poller(server.port(), state.path());
    let stop = poller.stop_handle();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let runner = {
        let errors = errors.clone();
        std::thread::spawn(move || {
            poller.run(&mut take_all, &mut |result| {
                if let Err(e) = result {
                    errors.lock().unwrap().push(e.to_string());
                }
            })
        })
    };
    // After the first refusal run waits out its backoff (30 s or more): stop it there.
    while errors.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.stop();
    let ended: Result<(), FetchError> = runner.join().unwrap();
    ended.unwrap();
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("SYS/TEMP"), "{errors:?}");
    assert_eq!(server.maildrop().messages().count(), 1);
}

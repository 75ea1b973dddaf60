//! The service's scheduling against the scripted fault server, where Dovecot cannot produce the
//! case: a real fetch's outcome (`Outcome::of_summary` / `Outcome::of_error`) fed to the
//! `Schedule` as `popwire watch` does. LOGIN-DELAY announced in CAPA holds the next login back;
//! `[LOGIN-DELAY]`, `[IN-USE]`, `[SYS/TEMP]`, `[SYS/PERM]` and `[AUTH]` at login each get their
//! own next try. Sans-IO: the schedule's clock is a number, nothing waits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::{Account, maildrop, messages};
use popwire::fetch::schedule::{
    BACKOFF_BASE, BACKOFF_MAX, IN_USE_DELAY, LOGIN_DELAY_DEFAULT, Limits, Outcome, Schedule,
};
use popwire_tests::faulty::{Action, FaultServer, Faults, Step};

const MIN: u64 = 60_000;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

/// One account polled every minute, started at `0` and reported at `at`.
fn run_once(schedule: &mut Schedule, outcome: Outcome, at: u64) -> u64 {
    let start = schedule.next_due().unwrap();
    assert_eq!(schedule.next_ready(start).as_deref(), Some("a"));
    schedule.finished("a", outcome, start + at, 7);
    schedule.next_due().unwrap() - start
}

#[test]
fn login_delay_from_capa_holds_the_next_poll_and_the_code_pushes_it_out() {
    let all = messages(2);
    let server = FaultServer::builder(maildrop(&all))
        .options(|o| o.login_delay = Some(900))
        .session(
            2,
            Faults::at(
                Step::command("AUTH", 1),
                Action::err("LOGIN-DELAY", "too soon"),
            ),
        )
        .start()
        .unwrap();
    let acct = Account::new(server.port());
    let mut schedule = Schedule::new(Limits::default());
    schedule.upsert("a", "127.0.0.1", Duration::from_secs(60), 0);

    let summary = acct.fetch().unwrap();
    assert_eq!(summary.fetched, 2);
    assert_eq!(summary.login_delay, Some(Duration::from_secs(900)));
    let outcome = Outcome::of_summary(&summary);
    // Polled every minute, but the server allows a login only every 15.
    assert_eq!(run_once(&mut schedule, outcome, 1_000), 15 * MIN);

    let e = acct.fetch().unwrap_err();
    let outcome = Outcome::of_error(&e, summary.login_delay);
    assert_eq!(
        outcome,
        Outcome::LoginDelay {
            login_delay: Some(Duration::from_secs(900))
        }
    );
    assert!(run_once(&mut schedule, outcome, 10) >= 15 * MIN);

    // Without an announced delay, RFC 3206's five minutes apply.
    let e2 = Outcome::of_error(&e, None);
    let mut fresh = Schedule::new(Limits::default());
    fresh.upsert("a", "127.0.0.1", Duration::from_secs(60), 0);
    assert_eq!(run_once(&mut fresh, e2, 0), ms(LOGIN_DELAY_DEFAULT));
}

#[test]
fn each_refusal_at_login_gets_its_own_next_try() {
    let all = messages(1);
    let cases = [
        ("IN-USE", ms(IN_USE_DELAY), ms(IN_USE_DELAY)),
        // Temporary: the first backoff step, plus up to a quarter of jitter.
        ("SYS/TEMP", ms(BACKOFF_BASE), ms(BACKOFF_BASE) * 5 / 4),
        ("SYS/PERM", ms(BACKOFF_MAX), ms(BACKOFF_MAX) * 5 / 4),
        ("AUTH", ms(BACKOFF_MAX), ms(BACKOFF_MAX) * 5 / 4),
    ];
    for (code, least, most) in cases {
        let server = FaultServer::builder(maildrop(&all))
            .session(
                1,
                Faults::at(Step::command("AUTH", 1), Action::err(code, "not now")),
            )
            .start()
            .unwrap();
        let acct = Account::new(server.port());
        let e = acct.fetch().unwrap_err();
        let mut schedule = Schedule::new(Limits::default());
        schedule.upsert("a", "127.0.0.1", Duration::from_secs(60), 0);
        let wait = run_once(&mut schedule, Outcome::of_error(&e, None), 0);
        assert!(
            (least..=most).contains(&wait),
            "{code}: next try after {wait} ms, expected {least}..={most} ({e})"
        );
        assert_eq!(server.maildrop().len(), 1, "{code}: nothing deleted");
        // The next session is not refused: the mail arrives.
        assert_eq!(acct.fetch().unwrap().fetched, 1, "{code}");
    }
}

#[test]
fn a_held_account_lock_makes_the_service_wait_like_in_use() {
    let all = messages(1);
    let server = FaultServer::builder(maildrop(&all)).start().unwrap();
    let acct = Account::new(server.port());
    // Hold the account's lock as a concurrent `popwire fetch` would.
    let config = popwire::fetch::config::load(&acct.config_path()).unwrap();
    let account = config.account("test").unwrap();
    std::fs::create_dir_all(acct.state_dir()).unwrap();
    let journal = popwire::fetch::job::journal_path(&acct.state_dir(), account);
    let lock = popwire::fetch::commit::AccountLock::acquire(
        &popwire::fetch::commit::lock_path(&journal),
        "test",
        Duration::ZERO,
    )
    .unwrap();
    let e = acct.fetch().unwrap_err();
    assert_eq!(Outcome::of_error(&e, None), Outcome::InUse);
    assert_eq!(server.sessions(), 0, "no login while another run holds it");
    drop(lock);
    assert_eq!(acct.fetch().unwrap().fetched, 1);
}

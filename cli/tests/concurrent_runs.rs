//! Concurrent runs of one account: `popwire fetch` started from cron, a systemd timer and a
//! user's shell at the same moment must not fetch the same mail twice.
//!
//! Dovecot, like most POP3 servers, lets several sessions of one user in at once (the test
//! Dovecot keeps Dovecot 2.3's default `pop3_lock_session = no`), so the server does not
//! serialise them: popwire's per-account lock has to. Ten runs of one account start together
//! against ~600 messages; every run must exit 0 (it fetched) or 75 (another popwire was
//! fetching that account), and after one clean run every message is stored exactly once and the
//! server is empty. This is done for a Maildir and for an mbox.
//!
//! The lock covers recovery too: a run is killed at a random moment (leaving receipts or a
//! write-ahead mark for the next start to settle) and then ten runs start at once, round after
//! round; two recoveries of one batch would store or cut it twice.
//!
//! Then the lock's interface: a second run while one is fetching exits 75 at once, naming the
//! account and saying another popwire is fetching it; with `--wait 30s` it waits for the lock
//! instead, and fetches after the first run is done.
//!
//! `POPWIRE_CONCURRENT_RUNS` (default 10) and `POPWIRE_CONCURRENT_MESSAGES` (default 600) scale
//! the first tests, `POPWIRE_CONCURRENT_ROUNDS` (default 4) the kill-then-ten rounds;
//! `POPWIRE_CONCURRENT_SEED` replays a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod exactly_once;

use std::process::Output;
use std::time::{Duration, Instant};

use exactly_once::{
    Account, Destination, Rng, lf, poll, stderr_of, tally, wait_until, with_from_lines,
};
use popwire_tests::{Dovecot, corpus};

/// sysexits' EX_TEMPFAIL: another popwire holds the account's lock.
const LOCKED: i32 = 75;

fn many_runs_at_once(destination: Destination) {
    let d = Dovecot::shared();
    let seed = exactly_once::seed("POPWIRE_CONCURRENT_SEED");
    let runs = exactly_once::count("POPWIRE_CONCURRENT_RUNS", 10);
    let count = exactly_once::count("POPWIRE_CONCURRENT_MESSAGES", 600);
    let case = destination.name();
    eprintln!("{runs} concurrent runs ({case}): seed {seed} (POPWIRE_CONCURRENT_SEED={seed})");
    let account = Account::new(&format!("concurrent{case}"), "shared", destination, false);
    let mut mail = corpus::sized(count, 1500, seed);
    for m in mail.iter_mut().step_by(7) {
        *m = with_from_lines(m);
    }
    d.seed(&account.user, &mail).unwrap();

    let started = Instant::now();
    let children: Vec<_> = (0..runs)
        .map(|_| account.command().spawn().unwrap())
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let elapsed = started.elapsed();
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    for (i, out) in outputs.iter().enumerate() {
        assert!(
            matches!(out.status.code(), Some(0 | LOCKED)),
            "seed {seed} ({case}): run {i} exited {} (all: {codes:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for out in outputs.iter().filter(|o| o.status.code() == Some(LOCKED)) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("shared") && stderr.to_lowercase().contains("another popwire"),
            "seed {seed} ({case}): a run refused with 75 without saying another popwire is \
             fetching account \"shared\": {stderr:?}"
        );
    }
    assert!(
        codes.contains(&Some(0)),
        "seed {seed} ({case}): no run fetched: {codes:?}"
    );

    account.clean_run();
    let originals: Vec<Vec<u8>> = mail.iter().map(|m| lf(m)).collect();
    let (lost, twice, unknown) = tally(&originals, &account.stored());
    assert_eq!(
        (lost, twice, unknown),
        (0, 0, 0),
        "seed {seed} ({case}): {count} messages, {runs} runs at once (exit codes {codes:?}): \
         lost, duplicated, unknown"
    );
    assert!(
        d.server_messages(&account.user).unwrap().is_empty(),
        "seed {seed} ({case}): the server is not empty"
    );
    eprintln!(
        "{runs} concurrent runs ({case}): seed {seed}, {count} messages in {elapsed:?}, exit codes \
         {codes:?}, 0 lost, 0 duplicated"
    );
}

#[test]
fn ten_runs_of_one_account_at_once_store_every_message_once_in_a_maildir() {
    many_runs_at_once(Destination::Maildir);
}

#[test]
fn ten_runs_of_one_account_at_once_store_every_message_once_in_an_mbox() {
    many_runs_at_once(Destination::Mbox);
}

fn killed_then_many_at_once(destination: Destination) {
    let d = Dovecot::shared();
    let seed = exactly_once::seed("POPWIRE_CONCURRENT_SEED");
    let mut rng = Rng(seed);
    let runs = exactly_once::count("POPWIRE_CONCURRENT_RUNS", 10);
    let rounds = exactly_once::count("POPWIRE_CONCURRENT_ROUNDS", 4);
    let case = destination.name();
    eprintln!("kill, then {runs} at once ({case}): seed {seed} (POPWIRE_CONCURRENT_SEED={seed})");
    let per_round = |round: usize| {
        let mut mail = corpus::sized(150, 1500, seed ^ (round as u64 + 1));
        for m in mail.iter_mut().step_by(7) {
            *m = with_from_lines(m);
        }
        mail
    };
    // How long a run with one round of mail takes here: kills are spread over that.
    let calibration = Account::new("concurrentcal", "shared", destination.clone(), false);
    d.seed(&calibration.user, &per_round(rounds)).unwrap();
    let typical = calibration.clean_run().max(Duration::from_millis(20));

    let account = Account::new(&format!("killedthen{case}"), "shared", destination, false);
    let mut originals = Vec::new();
    let mut all_codes = Vec::new();
    for round in 0..rounds {
        let mail = per_round(round);
        d.seed(&account.user, &mail).unwrap();
        originals.extend(mail.iter().map(|m| lf(m)));
        let mut victim = account.command().spawn().unwrap();
        std::thread::sleep(Duration::from_micros(
            rng.below(typical.as_micros() as u64 * 9 / 10),
        ));
        let _ = victim.kill();
        victim.wait().unwrap();
        let children: Vec<_> = (0..runs)
            .map(|_| account.command().spawn().unwrap())
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                matches!(out.status.code(), Some(0 | LOCKED)),
                "seed {seed} ({case}): round {round}: a run exited {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            all_codes.push(out.status.code());
        }
    }
    account.clean_run();
    let (lost, twice, unknown) = tally(&originals, &account.stored());
    assert_eq!(
        (lost, twice, unknown),
        (0, 0, 0),
        "seed {seed} ({case}): {} messages, {rounds} rounds of a killed run and {runs} at once: \
         lost, duplicated, unknown",
        originals.len()
    );
    assert!(
        d.server_messages(&account.user).unwrap().is_empty(),
        "seed {seed} ({case}): the server is not empty"
    );
    let fetched = all_codes.iter().filter(|c| **c == Some(0)).count();
    eprintln!(
        "kill, then {runs} at once ({case}): seed {seed}, {rounds} rounds, {} messages, {fetched} \
         runs exited 0 and {} exited 75, 0 lost, 0 duplicated",
        originals.len(),
        all_codes.len() - fetched
    );
}

#[test]
fn after_a_killed_run_ten_at_once_recover_it_once_in_a_maildir() {
    killed_then_many_at_once(Destination::Maildir);
}

#[test]
fn after_a_killed_run_ten_at_once_recover_it_once_in_an_mbox() {
    killed_then_many_at_once(Destination::Mbox);
}

/// A run of `account` that is fetching and holds its lock until `go` is created: its MDA waits.
fn blocked_run(account: &Account) -> std::process::Child {
    let mut first = account.command().spawn().unwrap();
    let started = account.mda_dir().join("started");
    let reached = poll(Duration::from_secs(20), || started.exists());
    if !reached {
        let _ = first.kill();
        let _ = first.wait();
        panic!(
            "the first run never reached its MDA: {}",
            stderr_of(&mut first)
        );
    }
    first
}

#[test]
fn a_second_run_of_a_fetching_account_exits_75_at_once_naming_it() {
    let d = Dovecot::shared();
    let account = Account::new("lockbusy", "busybox", Destination::MdaGated, false);
    let mail = corpus::sized(2, 1000, 5);
    d.seed(&account.user, &mail).unwrap();
    let mut first = blocked_run(&account);

    let started = Instant::now();
    let mut second = account.command().spawn().unwrap();
    let status = wait_until(&mut second, Duration::from_secs(10));
    let waited = started.elapsed();
    let Some(status) = status else {
        let _ = second.kill();
        let _ = second.wait();
        std::fs::write(account.mda_dir().join("go"), "").unwrap();
        let _ = first.wait();
        panic!(
            "a second run of a fetching account was still running after {waited:?}: no \
             per-account lock (it is fetching the same mail)"
        );
    };
    let stderr = stderr_of(&mut second);
    std::fs::write(account.mda_dir().join("go"), "").unwrap();
    let first_status = first.wait().unwrap();

    assert_eq!(
        status.code(),
        Some(LOCKED),
        "second run: {status} after {waited:?}: {stderr}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "the second run took {waited:?} to give up: it should not wait without --wait"
    );
    assert!(
        stderr.contains("busybox"),
        "the message does not name the account: {stderr:?}"
    );
    assert!(
        stderr.to_lowercase().contains("another popwire"),
        "the message does not say another popwire is fetching the account: {stderr:?}"
    );
    assert!(first_status.success(), "first run: {first_status}");
    let originals: Vec<Vec<u8>> = mail.iter().map(|m| lf(m)).collect();
    assert_eq!(tally(&originals, &account.stored()), (0, 0, 0));
    eprintln!("second run: exit 75 after {waited:?}: {}", stderr.trim());
}

#[test]
fn with_wait_a_second_run_waits_for_the_lock_then_fetches() {
    let d = Dovecot::shared();
    let account = Account::new("lockwait", "patient", Destination::MdaGated, false);
    let mail = corpus::sized(2, 1000, 6);
    d.seed(&account.user, &mail).unwrap();
    let mut first = blocked_run(&account);

    let mut second = account.command().args(["--wait", "30s"]).spawn().unwrap();
    // It must still be waiting while the first run holds the lock: give it the time a refusal
    // (or a usage error) would take, several times over.
    let early = wait_until(&mut second, Duration::from_secs(2));
    if let Some(status) = early {
        std::fs::write(account.mda_dir().join("go"), "").unwrap();
        let _ = first.wait();
        panic!(
            "with --wait 30s the second run ended ({status}) while the first held the lock: {}",
            stderr_of(&mut second)
        );
    }
    // Nothing was delivered twice meanwhile: the waiting run has not reached the mail.
    let new = account.mda_dir().join("new");
    assert_eq!(std::fs::read_dir(&new).unwrap().count(), 0);

    // More mail arrives; the first run ends; the waiting one takes the lock and fetches it.
    let more = corpus::sized(3, 1000, 7);
    d.seed(&account.user, &more).unwrap();
    std::fs::write(account.mda_dir().join("go"), "").unwrap();
    let first_status = first.wait().unwrap();
    let second_status = wait_until(&mut second, Duration::from_secs(30));
    let stderr = stderr_of(&mut second);
    assert!(first_status.success(), "first run: {first_status}");
    assert_eq!(
        second_status.and_then(|s| s.code()),
        Some(0),
        "the waiting run: {second_status:?}: {stderr}"
    );
    let originals: Vec<Vec<u8>> = mail.iter().chain(&more).map(|m| lf(m)).collect();
    let stored = account.stored();
    assert_eq!(
        tally(&originals, &stored),
        (0, 0, 0),
        "lost, duplicated, unknown"
    );
    assert!(d.server_messages(&account.user).unwrap().is_empty());
}

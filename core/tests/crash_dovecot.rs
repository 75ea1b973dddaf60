//! Crash safety against a real Dovecot: `popwire fetch` killed with SIGKILL at random moments,
//! over and over, then one clean run. Every message must end up in the Maildir exactly once: none
//! lost, none twice; in delete mode the server must end empty, in keep mode untouched.
//!
//! Each round adds new mail to the server first, so every kill lands in a run with real work
//! (login, listing, the RETR stream, a group commit, DELE or QUIT) rather than an empty mailbox.
//!
//! `POPWIRE_CRASH_ROUNDS` sets the number of killed runs per mode (default 25, for CI; the
//! closing note of the crash issue records a run of 200). `POPWIRE_CRASH_SEED` replays a run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use popwire_tests::{Dovecot, corpus};

/// New messages put on the server before each killed run.
const PER_ROUND: usize = 40;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: enough to spread kill moments, and replayable from the seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Account {
    dir: tempfile::TempDir,
    user: String,
    config: PathBuf,
}

impl Account {
    fn new(prefix: &str, keep: bool) -> Self {
        let d = Dovecot::shared();
        let dir = tempfile::tempdir().unwrap();
        let user = d.new_user(prefix);
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[accounts.crash]\nemail = \"{user}@example.com\"\nusername = \"{user}\"\n\
                 server = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nauth = \"user\"\n\
                 password_env = \"POPWIRE_TEST_PW\"\nmaildir = \"{}\"\nkeep = {keep}\n",
                d.plain_port,
                dir.path().join("Maildir").display()
            ),
        )
        .unwrap();
        Self { dir, user, config }
    }

    fn command(&self) -> Command {
        // POPWIRE_CRASH_BIN runs the test against another build, e.g. to show an old one fails.
        let binary = std::env::var_os("POPWIRE_CRASH_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_popwire")),
            PathBuf::from,
        );
        let mut command = Command::new(binary);
        command
            .args(["fetch", "--quiet", "--config"])
            .arg(&self.config)
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .env("POPWIRE_TEST_PW", &Dovecot::shared().password)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// Runs to the end; panics with popwire's error output unless it succeeds.
    fn clean_run(&self) -> Duration {
        let started = Instant::now();
        let out = self.command().output().unwrap();
        assert!(
            out.status.success(),
            "clean run failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    }

    /// Starts a run and kills it with SIGKILL after `after`.
    fn killed_run(&self, after: Duration) {
        let mut child = self.command().spawn().unwrap();
        std::thread::sleep(after);
        let _ = child.kill();
        child.wait().unwrap();
    }

    /// Every message in the local Maildir (`new/` and `cur/`), by content, with its count.
    fn stored(&self) -> HashMap<Vec<u8>, usize> {
        let mut counts = HashMap::new();
        for sub in ["new", "cur"] {
            let dir = self.dir.path().join("Maildir").join(sub);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let body = std::fs::read(entry.unwrap().path()).unwrap();
                *counts.entry(body).or_insert(0) += 1;
            }
        }
        counts
    }
}

fn rounds() -> usize {
    std::env::var("POPWIRE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
}

fn seed() -> u64 {
    std::env::var("POPWIRE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

/// Popwire stores LF line endings; the originals are compared in that form.
fn lf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut bytes = message.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' && bytes.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

fn kill_loop(keep: bool) {
    let d = Dovecot::shared();
    let seed = seed();
    let mut rng = Rng(seed);
    let rounds = rounds();
    let account = Account::new(if keep { "crashkeep" } else { "crashdel" }, keep);

    // How long a run with one round of new mail takes here: kills are spread over that.
    let calibration = Account::new("crashcal", keep);
    d.seed(&calibration.user, &corpus::sized(PER_ROUND, 3000, seed))
        .unwrap();
    let typical = calibration.clean_run().max(Duration::from_millis(20));

    let mut originals: Vec<Vec<u8>> = Vec::new();
    for round in 0..rounds {
        let batch = corpus::sized(PER_ROUND, 500 + 400 * (round % 8), seed ^ round as u64);
        d.seed(&account.user, &batch).unwrap();
        originals.extend(batch);
        // From before the connection to past the end (so some runs finish before the kill).
        let micros = rng.below(typical.as_micros() as u64 * 13 / 10);
        account.killed_run(Duration::from_micros(micros));
    }
    account.clean_run();

    let stored = account.stored();
    let mut expected: HashMap<Vec<u8>, usize> = HashMap::new();
    for message in &originals {
        *expected.entry(lf(message)).or_insert(0) += 1;
    }
    let lost = expected.keys().filter(|m| !stored.contains_key(*m)).count();
    let twice: usize = stored
        .iter()
        .map(|(m, &n)| n.saturating_sub(expected.get(m).copied().unwrap_or(0)))
        .sum();
    let foreign = stored.keys().filter(|m| !expected.contains_key(*m)).count();
    assert_eq!(
        (lost, twice, foreign),
        (0, 0, 0),
        "seed {seed}: {} originals in {rounds} killed runs: lost, duplicated, unknown",
        originals.len()
    );
    let on_server = d.server_messages(&account.user).unwrap().len();
    if keep {
        assert_eq!(
            on_server,
            originals.len(),
            "seed {seed}: keep mode deleted mail"
        );
    } else {
        assert_eq!(on_server, 0, "seed {seed}: the server is not empty");
    }
    eprintln!(
        "crash test ({}): seed {seed}, {rounds} killed runs, {} messages, 0 lost, 0 duplicated",
        if keep { "keep" } else { "delete" },
        originals.len()
    );
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing_in_delete_mode() {
    kill_loop(false);
}

#[test]
fn sigkill_at_random_moments_duplicates_nothing_in_keep_mode() {
    kill_loop(true);
}

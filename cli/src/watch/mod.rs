//! `popwire watch`: the service mode. Polls every account of the config file on its interval,
//! in one process, with the sans-IO [`Schedule`] deciding when (intervals, LOGIN-DELAY, backoff
//! with jitter, limits per host and overall) and a thread per running session (at most
//! `max_sessions`) running the ordinary fetch job, which takes the account lock and commits
//! through the journal exactly as `popwire fetch` does.
//!
//! Signals only set flags (signal-hook); the main loop looks at them at least every
//! [`TICK`]: SIGTERM/SIGINT stop starting sessions and wait up to `stop_grace` for those
//! running (commit, DELE, QUIT), then cancel the rest through their `Canceller`; SIGHUP reloads
//! the config, keeping the old one when the new one has an error.

mod log;
mod metrics;
pub mod state;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use popwire::fetch::config::{self, Account, Config, CredentialSource, Keep};
use popwire::fetch::job::{self, AccountSummary, FetchError, FetchOptions, exit, journal_key};
use popwire::fetch::quarantine::{Quarantine, Quarantined};
use popwire::fetch::schedule::{Limits, Millis, Outcome, Schedule};
use popwire::fetch::shard::Shard;
use popwire::net::Canceller;
use popwire::proto::Expire;
use serde_json::json;

use self::log::{Event, Level, Log};
use self::metrics::Metrics;
use self::state::{AccountState, unix_now};

/// How often the loop looks at the signal flags and alerts at the latest.
const TICK: Duration = Duration::from_millis(200);
/// After `stop_grace` and the cancel, how long cancelled sessions get to unwind.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// A session thread's stack: a TLS handshake and the job need far less; many sessions at once
/// should not reserve 2 MiB each.
const SESSION_STACK: usize = 512 << 10;

/// One finished session, sent from its thread.
struct Done {
    name: String,
    result: Result<AccountSummary, FetchError>,
    /// Messages and octets committed, counted as batches commit: a session that fails after
    /// a commit (a drop at QUIT) still stored them.
    stored: (u64, u64),
    newly_quarantined: Vec<Quarantined>,
    quarantined: usize,
    quarantine_error: Option<String>,
}

struct Running {
    cancel: Arc<AtomicBool>,
    canceller: Canceller,
}

struct Watcher {
    config_path: PathBuf,
    /// This process's share of the accounts (`--shard I/N`); the whole by default.
    shard: Shard,
    state_dir: PathBuf,
    config: Config,
    accounts: HashMap<String, Account>,
    schedule: Schedule,
    states: BTreeMap<String, AccountState>,
    running: HashMap<String, Running>,
    /// Accounts warned about EXPIRE once already.
    expire_warned: HashSet<String>,
    /// The LOGIN-DELAY each account's server announced last.
    login_delays: HashMap<String, Duration>,
    log: Log,
    metrics: Metrics,
    epoch: Instant,
    tx: Sender<Done>,
    state_dirty: bool,
}

/// `popwire watch`: runs until SIGTERM or SIGINT. The exit status is 0 after a clean stop.
pub fn run(config_path: PathBuf, state_dir: PathBuf, shard: Shard) -> i32 {
    let config = match config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("popwire watch: {e}");
            return exit::CONFIG;
        }
    };
    let log = Log {
        format: config.watch.log_format,
    };
    for w in &config.warnings {
        log.write(&Event {
            level: Level::Warn,
            account: None,
            event: "config_warning",
            class: None,
            message: w,
            fields: &[],
        });
    }
    // 0700: journals, quarantine and state name accounts and UIDs.
    let created = {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&state_dir)
    };
    if let Err(e) = created {
        eprintln!(
            "popwire watch: cannot create the state directory {}: {e}",
            state_dir.display()
        );
        return exit::IOERR;
    }
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (signal, flag) in [
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGINT, &term),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(flag)) {
            eprintln!("popwire watch: cannot handle signal {signal}: {e}");
            return exit::SOFTWARE;
        }
    }
    let metrics = Metrics::new();
    if let Some(address) = config.watch.metrics {
        match metrics.serve(address) {
            Ok(bound) => log.write(&Event {
                level: Level::Info,
                account: None,
                event: "metrics",
                class: None,
                message: "serving Prometheus metrics",
                fields: &[("address", json!(bound.to_string()))],
            }),
            Err(e) => {
                eprintln!("popwire watch: cannot serve metrics on {address}: {e}");
                return exit::UNAVAILABLE;
            }
        }
    }
    let (tx, rx) = mpsc::channel();
    let mut watcher = Watcher {
        config_path,
        shard,
        states: state::read(&state_dir),
        state_dir,
        config: Config::default(),
        accounts: HashMap::new(),
        schedule: Schedule::new(Limits::default()),
        running: HashMap::new(),
        expire_warned: HashSet::new(),
        login_delays: HashMap::new(),
        log,
        metrics,
        epoch: Instant::now(),
        tx,
        state_dirty: true,
    };
    watcher.apply(config);
    watcher.main_loop(&rx, &term, &hup)
}

fn class_name(e: &FetchError) -> &'static str {
    e.class().as_str()
}

fn seed(name: &str, now: Millis) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    now.hash(&mut h);
    h.finish()
}

impl Watcher {
    fn now(&self) -> Millis {
        Millis::try_from(self.epoch.elapsed().as_millis()).unwrap_or(Millis::MAX)
    }

    fn main_loop(&mut self, rx: &Receiver<Done>, term: &AtomicBool, hup: &AtomicBool) -> i32 {
        self.log.write(&Event {
            level: Level::Info,
            account: None,
            event: "started",
            class: None,
            message: "watching",
            fields: &[
                ("accounts", json!(self.accounts.len())),
                ("pid", json!(std::process::id())),
            ],
        });
        let mut stop_at: Option<Instant> = None;
        let mut cancelled_at: Option<Instant> = None;
        let mut last_housekeeping = Instant::now();
        loop {
            if term.load(Ordering::Relaxed) && stop_at.is_none() {
                stop_at = Some(Instant::now() + self.config.watch.stop_grace);
                self.log.write(&Event {
                    level: Level::Info,
                    account: None,
                    event: "stopping",
                    class: None,
                    message: "no new sessions; waiting for those running",
                    fields: &[("running", json!(self.running.len()))],
                });
            }
            if let Some(deadline) = stop_at {
                if self.running.is_empty() {
                    break;
                }
                if cancelled_at.is_none() && Instant::now() >= deadline {
                    self.log.write(&Event {
                        level: Level::Warn,
                        account: None,
                        event: "cancelling",
                        class: None,
                        message: "stop_grace is over: cancelling the sessions still running (what they stored is kept, nothing unstored is deleted)",
                        fields: &[("running", json!(self.running.len()))],
                    });
                    for r in self.running.values() {
                        r.cancel.store(true, Ordering::Relaxed);
                        r.canceller.cancel();
                    }
                    cancelled_at = Some(Instant::now());
                }
                if cancelled_at.is_some_and(|at| at.elapsed() >= CANCEL_GRACE) {
                    // Exiting is safe: the kernel drops the account locks, and the journal's
                    // recovery settles any batch at the next start.
                    break;
                }
            }
            if hup.swap(false, Ordering::Relaxed) && stop_at.is_none() {
                self.reload();
            }
            if stop_at.is_none() {
                let now = self.now();
                while let Some(name) = self.schedule.next_ready(now) {
                    self.start(&name, now);
                }
            }
            self.metrics.set_running(self.running.len());
            let wait = self
                .schedule
                .next_due()
                .map_or(TICK, |due| {
                    Duration::from_millis(due.saturating_sub(self.now()))
                })
                .min(TICK);
            match rx.recv_timeout(wait) {
                Ok(done) => {
                    self.finished(done);
                    while let Ok(done) = rx.try_recv() {
                        self.finished(done);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            // At most once a second: with thousands of accounts the state file is megabytes.
            if last_housekeeping.elapsed() >= Duration::from_secs(1) {
                self.alerts();
                if self.state_dirty {
                    self.write_state();
                }
                last_housekeeping = Instant::now();
            }
        }
        let left = self.running.len();
        self.write_state();
        self.log.write(&Event {
            level: if left == 0 { Level::Info } else { Level::Warn },
            account: None,
            event: "stopped",
            class: None,
            message: if left == 0 {
                "every session finished"
            } else {
                "sessions did not end after the cancel; exiting anyway"
            },
            fields: &[("abandoned", json!(left))],
        });
        exit::OK
    }

    /// Takes a new config: accounts added, changed, removed; limits.
    fn apply(&mut self, config: Config) {
        let now = self.now();
        let mut fresh = HashMap::with_capacity(config.accounts.len());
        let mut elsewhere = 0usize;
        for (name, account) in &config.accounts {
            if !self.shard.owns(&journal_key(account)) {
                elsewhere += 1;
                continue;
            }
            let poll = config.poll_of(account);
            let changed = self.accounts.get(name) != Some(account)
                || self.config.poll_of(account) != poll
                || !self.schedule.names().any(|n| n == name);
            if changed {
                self.schedule.upsert(name, &account.server, poll, now);
            }
            let state = self.states.entry(name.clone()).or_default();
            self.metrics
                .watch_account(name, state.last_success.map(|t| t as f64));
            self.metrics.set_quarantined(name, state.quarantined);
            fresh.insert(name.clone(), account.clone());
        }
        let removed: Vec<String> = self
            .accounts
            .keys()
            .filter(|name| !fresh.contains_key(*name))
            .cloned()
            .collect();
        for name in &removed {
            // A session in progress finishes (it is safe); its report is then ignored.
            self.schedule.remove(name);
            self.states.remove(name);
            self.metrics.forget_account(name);
        }
        // Accounts of an old state file that are no longer configured.
        self.states.retain(|name, _| fresh.contains_key(name));
        self.schedule.set_limits(Limits {
            per_host: config.watch.max_per_host,
            total: config.watch.max_sessions,
        });
        self.log = Log {
            format: config.watch.log_format,
        };
        if self.shard.count() > 1 {
            let message = format!(
                "shard {}/{}: {} of {} accounts here",
                self.shard.index(),
                self.shard.count(),
                fresh.len(),
                fresh.len() + elsewhere
            );
            self.log.write(&Event {
                level: Level::Info,
                account: None,
                event: "shard",
                class: None,
                message: &message,
                fields: &[],
            });
        }
        self.accounts = fresh;
        self.config = config;
        self.state_dirty = true;
    }

    fn reload(&mut self) {
        match config::load(&self.config_path) {
            Err(e) => self.log.write(&Event {
                level: Level::Error,
                account: None,
                event: "reload_failed",
                class: Some("config"),
                message: &format!("{e}; keeping the previous config"),
                fields: &[],
            }),
            Ok(config) => {
                if config.watch.metrics != self.config.watch.metrics {
                    self.log.write(&Event {
                        level: Level::Warn,
                        account: None,
                        event: "config_warning",
                        class: None,
                        message: "a new metrics address takes effect at the next start",
                        fields: &[],
                    });
                }
                for w in &config.warnings {
                    self.log.write(&Event {
                        level: Level::Warn,
                        account: None,
                        event: "config_warning",
                        class: None,
                        message: w,
                        fields: &[],
                    });
                }
                let before: HashSet<String> = self.accounts.keys().cloned().collect();
                self.apply(config);
                let after: HashSet<String> = self.accounts.keys().cloned().collect();
                self.log.write(&Event {
                    level: Level::Info,
                    account: None,
                    event: "reloaded",
                    class: None,
                    message: "config reloaded",
                    fields: &[
                        ("accounts", json!(after.len())),
                        ("added", json!(after.difference(&before).count())),
                        ("removed", json!(before.difference(&after).count())),
                    ],
                });
            }
        }
    }

    fn start(&mut self, name: &str, now: Millis) {
        let Some(account) = self.accounts.get(name).cloned() else {
            self.schedule
                .finished(name, Outcome::Temporary, now, seed(name, now));
            return;
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let canceller = Canceller::new();
        let mut options = FetchOptions::new(self.state_dir.clone());
        options.cancel = Some(Arc::clone(&cancel));
        options.canceller = Some(canceller.clone());
        let after = self.config.watch.quarantine_after;
        let tx = self.tx.clone();
        let thread_name = name.to_owned();
        let spawned = std::thread::Builder::new()
            .name("session".into())
            .stack_size(SESSION_STACK)
            .spawn(move || {
                let done = session(thread_name, &account, options, after);
                // The receiver is gone only when watch is exiting.
                let _ = tx.send(done);
            });
        match spawned {
            Ok(_) => {
                self.running
                    .insert(name.to_owned(), Running { cancel, canceller });
                if let Some(s) = self.states.get_mut(name) {
                    s.running = true;
                }
            }
            Err(e) => {
                self.log.write(&Event {
                    level: Level::Error,
                    account: Some(name),
                    event: "failed",
                    class: Some("storage"),
                    message: &format!("cannot start a thread: {e}"),
                    fields: &[],
                });
                self.schedule
                    .finished(name, Outcome::Temporary, now, seed(name, now));
            }
        }
    }

    fn finished(&mut self, done: Done) {
        let now = self.now();
        let name = done.name.as_str();
        self.running.remove(name);
        self.state_dirty = true;
        let outcome = match &done.result {
            Ok(summary) => {
                match summary.login_delay {
                    Some(d) => self.login_delays.insert(name.to_owned(), d),
                    None => self.login_delays.remove(name),
                };
                Outcome::of_summary(summary)
            }
            Err(e) => Outcome::of_error(e, self.login_delays.get(name).copied()),
        };
        self.schedule.finished(name, outcome, now, seed(name, now));
        let Some(account) = self.accounts.get(name).cloned() else {
            return; // Removed by a reload while it ran.
        };
        if let Some(e) = &done.quarantine_error {
            self.log.write(&Event {
                level: Level::Error,
                account: Some(name),
                event: "quarantine_error",
                class: Some("storage"),
                message: e,
                fields: &[],
            });
        }
        for q in &done.newly_quarantined {
            self.log.write(&Event {
                level: Level::Warn,
                account: Some(name),
                event: "quarantined",
                class: Some("storage"),
                message: &format!(
                    "message left on the server and skipped from now on after {} refusals: {}",
                    q.count, q.reason
                ),
                fields: &[("uid", json!(q.uid))],
            });
        }
        self.metrics.set_quarantined(name, done.quarantined);
        let unix = unix_now();
        let alert_was_on;
        {
            let state = self.states.entry(name.to_owned()).or_default();
            state.running = false;
            state.quarantined = done.quarantined;
            state.messages = state.messages.saturating_add(done.stored.0);
            alert_was_on = state.alert;
            match &done.result {
                Ok(_) => {
                    state.last_success = Some(unix);
                    state.failures = 0;
                    state.alert = false;
                }
                Err(e) => {
                    state.failures = self.schedule.failures(name).unwrap_or(0);
                    state.last_error = Some((unix, class_name(e).to_owned(), e.to_string()));
                }
            }
        }
        self.metrics.stored(name, done.stored.0, done.stored.1);
        match &done.result {
            Ok(summary) => {
                self.metrics.success(name);
                if alert_was_on {
                    self.metrics.set_alert(name, false);
                    self.log
                        .info(Some(name), "recovered", "the account succeeded again");
                }
                if summary.fetched > 0 || summary.deleted > 0 {
                    self.log.write(&Event {
                        level: Level::Info,
                        account: Some(name),
                        event: "fetched",
                        class: None,
                        message: "",
                        fields: &[
                            ("messages", json!(summary.fetched)),
                            ("bytes", json!(summary.bytes)),
                            ("deleted", json!(summary.deleted)),
                        ],
                    });
                }
                for (uid, why) in &summary.refused {
                    if done.newly_quarantined.iter().any(|q| &q.uid == uid) {
                        continue;
                    }
                    self.log.write(&Event {
                        level: Level::Warn,
                        account: Some(name),
                        event: "refused",
                        class: Some("storage"),
                        message: why,
                        fields: &[("uid", json!(uid))],
                    });
                }
                self.check_expire(&account, summary.expire);
            }
            Err(e) => {
                self.metrics.failure(name, class_name(e));
                let (level, event) = match outcome {
                    Outcome::InUse if matches!(e, FetchError::Locked { .. }) => {
                        (Level::Info, "busy")
                    }
                    Outcome::NeedsAttention => (Level::Error, "failed"),
                    _ => (Level::Warn, "failed"),
                };
                self.log.write(&Event {
                    level,
                    account: Some(name),
                    event,
                    class: Some(class_name(e)),
                    message: &e.to_string(),
                    fields: &[("failures", json!(self.schedule.failures(name)))],
                });
            }
        }
        if let CredentialSource::OAuth(oauth) = &account.credential {
            let file = popwire::fetch::oauth::TokenFile::new(oauth.token_file.clone());
            if let Ok(Some(tokens)) = file.load(name)
                && let Some(at) = tokens.expires_at
            {
                self.metrics.set_token_expiry(name, at);
            }
        }
    }

    /// RFC 2449 EXPIRE: a server that deletes retrieved mail sooner than the account keeps it
    /// is worth one warning per run.
    fn check_expire(&mut self, account: &Account, expire: Option<Expire>) {
        let Some(Expire::Days(days)) = expire else {
            return;
        };
        let kept_longer = match account.keep {
            Keep::Delete => false,
            Keep::Forever => true,
            Keep::For(d) => d > Duration::from_secs(u64::from(days) * 86_400),
        };
        if kept_longer && self.expire_warned.insert(account.name.clone()) {
            self.log.write(&Event {
                level: Level::Warn,
                account: Some(&account.name),
                event: "expire",
                class: None,
                message: &format!(
                    "the server announces EXPIRE {days}: it may delete retrieved messages after {days} days, sooner than keep says"
                ),
                fields: &[],
            });
        }
    }

    /// Accounts without a success for `alert_after` (since watch began, when they never had
    /// one) are reported once, loudly, and flagged in the metrics until they succeed.
    fn alerts(&mut self) {
        let unix = unix_now();
        let started = unix.saturating_sub(self.epoch.elapsed().as_secs());
        let after = self.config.watch.alert_after.as_secs();
        let mut raised = Vec::new();
        for (name, state) in &mut self.states {
            let since = state.last_success.unwrap_or(started);
            if !state.alert && unix.saturating_sub(since) >= after {
                state.alert = true;
                raised.push((name.clone(), state.last_error.clone()));
            }
        }
        for (name, last_error) in raised {
            self.metrics.set_alert(&name, true);
            let why = last_error.map_or_else(
                || "no session finished yet".to_owned(),
                |(_, class, message)| format!("last error ({class}): {message}"),
            );
            self.log.write(&Event {
                level: Level::Warn,
                account: Some(&name),
                event: "alert",
                class: None,
                message: &format!("no successful fetch for {}s or more; {why}", after),
                fields: &[],
            });
            self.state_dirty = true;
        }
    }

    fn write_state(&mut self) {
        let now = self.now();
        let unix = unix_now();
        for (name, state) in &mut self.states {
            state.next_poll = self
                .schedule
                .due(name)
                .map(|due| unix + due.saturating_sub(now) / 1000);
        }
        if let Err(e) = state::write(&self.state_dir, &self.states) {
            self.log.write(&Event {
                level: Level::Error,
                account: None,
                event: "state_error",
                class: Some("storage"),
                message: &format!(
                    "cannot write {}: {e}",
                    state::path(&self.state_dir).display()
                ),
                fields: &[],
            });
        }
        self.state_dirty = false;
    }
}

/// One session on its own thread: the quarantined UIDs are skipped, refusals counted.
fn session(name: String, account: &Account, mut options: FetchOptions, after: u32) -> Done {
    let path = Quarantine::path_for(&job::journal_path(&options.state_dir, account));
    let mut quarantine_error = None;
    let mut quarantine = match Quarantine::load(&path) {
        Ok(q) => Some(q),
        Err(e) => {
            quarantine_error = Some(e.to_string());
            None
        }
    };
    if let Some(q) = &quarantine {
        options.skip_uids = q.uids();
    }
    let mut stored = (0u64, 0u64);
    let result = job::fetch_account(account, &options, &mut |progress| {
        if let job::Progress::Committed { count, bytes, .. } = progress {
            stored.0 = stored
                .0
                .saturating_add(u64::try_from(count).unwrap_or(u64::MAX));
            stored.1 = stored.1.saturating_add(bytes);
        }
    });
    let mut newly_quarantined = Vec::new();
    if let (Ok(summary), Some(q)) = (&result, &mut quarantine) {
        newly_quarantined = q.record(&summary.refused, after);
        let present: HashSet<String> = summary.present_uids.iter().cloned().collect();
        q.retain_only(&present);
        if let Err(e) = q.save() {
            quarantine_error = Some(e.to_string());
        }
    }
    Done {
        name,
        result,
        stored,
        newly_quarantined,
        quarantined: quarantine.as_ref().map_or(0, Quarantine::len),
        quarantine_error,
    }
}

/// The default state directory, for `watch` and `status`.
pub fn state_dir(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(FetchOptions::default_state_dir)
}

/// For `Path` callers.
pub fn status(state_dir: &Path, json: bool) -> i32 {
    state::status(state_dir, json)
}

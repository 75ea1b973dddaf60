//! `Poller`: call a handler for each new message, and delete it from the server only after the
//! handler returned `Ok` and that was journaled.
//!
//! ```no_run
//! # fn main() -> Result<(), popwire::fetch::FetchError> {
//! use popwire::fetch::poller::Poller;
//! use popwire::proto::Secret;
//!
//! let mut poller = Poller::builder("pop.example.com", "me@example.com", Secret::new("app-password"))
//!     .state_dir("/var/lib/intake")
//!     .build();
//! let report = poller.poll_once(&mut |mut message| {
//!     let body = message.to_vec()?;
//!     println!("{} ({} octets)", message.uid(), body.len()); // e.g. open a ticket
//!     Ok(())
//! })?;
//! println!("{} handled, {} failed", report.handled.len(), report.failed.len());
//! # Ok(()) }
//! ```
//!
//! # Delivery guarantees
//!
//! - A message is deleted (or, in keep mode, recorded as seen) only after its handler returned
//!   `Ok` and the journal line saying so was written and fsynced.
//! - A handler error leaves the message on the server; the session goes on with the next
//!   message, and the message is retried at a later poll after a per-message backoff
//!   ([`PollerBuilder::retry_backoff`]; kept in memory, so a new process retries at once).
//! - The handler is called **at least once** per message, not exactly once: a crash (or a
//!   power loss before the batch's fsync) after the handler returned but before its journal
//!   line was written calls it again for that message at the next poll. Handlers that must not
//!   act twice dedupe on [`Message::uid`] (with a unique key in their own store, committed in
//!   the same transaction as the work).
//! - The account lock ([`AccountLock`](crate::fetch::commit::AccountLock)) is held for the
//!   whole poll, so two pollers of one account, or a poller and `popwire fetch`, never hand out
//!   the same message twice.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::config::{
    Account, AuthChoice, CredentialSource, DEFAULT_TIMEOUT, Destination, Keep, Security,
};
use super::error::FetchError;
use super::job::FetchOptions;
use super::schedule::{Millis, Outcome, Schedule};
use super::store::StoreOptions;
use crate::net::NetError;
use crate::proto::{ResponseCode, Secret};

pub use super::store::handler::{DEFAULT_MEMORY_LIMIT, Handler, HandlerError, Message};

mod session;

/// The first retry of a message the handler refused waits this long; each further failure
/// doubles it, up to [`RETRY_MAX`].
pub const RETRY_BASE: Duration = Duration::from_secs(60);
/// The longest a refused message waits for its next try.
pub const RETRY_MAX: Duration = Duration::from_secs(3600);
/// The poll interval of [`Poller::run`] unless set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// What one poll did.
#[derive(Debug, Default)]
pub struct PollReport {
    /// Messages the server listed.
    pub listed: usize,
    /// Messages retrieved and handed to the handler.
    pub fetched: usize,
    /// UIDs the handler took, now journaled (deleted, unless kept).
    pub handled: Vec<String>,
    /// Messages the handler refused: left on the server, retried later.
    pub failed: Vec<Failure>,
    /// Refused earlier and still waiting for their retry: not retrieved this time.
    pub deferred: usize,
    /// Messages deleted from the server.
    pub deleted: usize,
    /// Messages left on the server that were handled before (keep mode).
    pub kept: usize,
    /// Messages over `max_message_size`, left on the server.
    pub skipped_too_large: usize,
    /// Messages without a usable UID (none, or one the server gives another message too), left
    /// on the server: handing them out would repeat them at every poll.
    pub skipped_unidentified: usize,
    /// The server's `LOGIN-DELAY` capability, if it announced one.
    pub login_delay: Option<Duration>,
}

/// A message the handler refused.
#[derive(Debug)]
pub struct Failure {
    /// Its UID.
    pub uid: String,
    /// The handler's error, as text.
    pub reason: String,
    /// The handler's error.
    pub error: HandlerError,
    /// Refusals in a row of this message (in this process).
    pub attempts: u32,
    /// How long until it is tried again.
    pub retry_after: Duration,
}

/// Stops a poller from another thread: between messages of a poll (what was handled is
/// committed), or while [`Poller::run`] waits.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    wake: Arc<(Mutex<()>, Condvar)>,
}

impl StopHandle {
    /// Asks the poller to stop.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        let (lock, condvar) = &*self.wake;
        let _guard = lock.lock();
        condvar.notify_all();
    }

    /// True once [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` or until stopped; true when stopped.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (lock, condvar) = &*self.wake;
        let deadline = Instant::now() + timeout;
        let mut guard = match lock.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        while !self.is_stopped() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            guard = match condvar.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        self.is_stopped()
    }

    /// Clears a stop, so the poller can be used again.
    pub fn reset(&self) {
        self.flag.store(false, Ordering::Release);
    }
}

/// Per-message backoff of refused messages.
#[derive(Debug)]
struct Retry {
    base: Duration,
    max: Duration,
    /// UID → (refusals in a row, not before).
    waiting: HashMap<String, (u32, Instant)>,
}

impl Retry {
    fn waiting(&self, uid: &str, now: Instant) -> bool {
        self.waiting.get(uid).is_some_and(|(_, at)| *at > now)
    }

    fn failed(&mut self, uid: &str, now: Instant) -> (u32, Duration) {
        let entry = self.waiting.entry(uid.to_owned()).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        let factor = 1u32 << entry.0.saturating_sub(1).min(20);
        let delay = self.base.saturating_mul(factor).min(self.max);
        entry.1 = now + delay;
        (entry.0, delay)
    }

    fn forget(&mut self, uid: &str) {
        self.waiting.remove(uid);
    }

    fn retain(&mut self, present: &HashSet<&str>) {
        self.waiting.retain(|uid, _| present.contains(uid.as_str()));
    }
}

/// Builds a [`Poller`] from its parts, without a config file.
#[derive(Debug)]
pub struct PollerBuilder {
    account: Account,
    state_dir: Option<PathBuf>,
    interval: Duration,
    retry_base: Duration,
    retry_max: Duration,
    memory_limit: usize,
    lock_wait: Duration,
}

impl PollerBuilder {
    /// Implicit TLS on port 995 (`security` changes both), `auth = auto`, messages deleted once
    /// handled (`keep` changes that).
    pub fn new(server: impl Into<String>, username: impl Into<String>, password: Secret) -> Self {
        let username = username.into();
        let account = Account {
            name: "poller".into(),
            email: username.clone(),
            username,
            credential: CredentialSource::Password(password),
            server: server.into(),
            port: Security::Tls.default_port(),
            security: Security::Tls,
            ca_file: None,
            auth: AuthChoice::Auto,
            keep: Keep::Delete,
            destination: Destination::Handler,
            max_message_size: None,
            timeout: DEFAULT_TIMEOUT,
            store: StoreOptions::default(),
            poll: None,
        };
        Self::from_account(account)
    }

    fn from_account(account: Account) -> Self {
        Self {
            // A config file's `poll = "..."` is the interval of `run` too.
            interval: account.poll.unwrap_or(DEFAULT_INTERVAL),
            account,
            state_dir: None,
            retry_base: RETRY_BASE,
            retry_max: RETRY_MAX,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            lock_wait: Duration::ZERO,
        }
    }

    /// The account's name: part of the journal's file name (default `poller`). Two pollers of
    /// one mailbox with the same name share a journal and its lock.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.account.name = name.into();
        self
    }

    /// How the connection is protected; also sets the port to its default unless
    /// [`port`](Self::port) follows.
    pub fn security(mut self, security: Security) -> Self {
        self.account.security = security;
        self.account.port = security.default_port();
        self
    }

    /// The TCP port.
    pub fn port(mut self, port: u16) -> Self {
        self.account.port = port;
        self
    }

    /// A PEM file of CA certificates to trust besides the system and Mozilla roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.account.ca_file = Some(path.into());
        self
    }

    /// The login method.
    pub fn auth(mut self, auth: AuthChoice) -> Self {
        self.account.auth = auth;
        self
    }

    /// Where the credential comes from, instead of the password given to `new`.
    pub fn credential(mut self, credential: CredentialSource) -> Self {
        self.account.credential = credential;
        self
    }

    /// Whether handled messages stay on the server ([`Keep::Forever`], or for a while).
    pub fn keep(mut self, keep: Keep) -> Self {
        self.account.keep = keep;
        self
    }

    /// Messages larger than this (as listed) are left alone.
    pub fn max_message_size(mut self, octets: u64) -> Self {
        self.account.max_message_size = Some(octets);
        self
    }

    /// Network timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.account.timeout = timeout;
        self
    }

    /// Where the journal (and spilled bodies) live; default `$XDG_STATE_HOME/popwire`.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// The interval of [`Poller::run`].
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The backoff of a refused message: `base` after the first refusal, doubling up to `max`.
    /// Zero retries at the next poll.
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.retry_base = base;
        self.retry_max = max.max(base);
        self
    }

    /// Bodies up to this many octets are handed over from memory, larger ones from a temporary
    /// file in the state directory.
    pub fn memory_limit(mut self, octets: usize) -> Self {
        self.memory_limit = octets;
        self
    }

    /// How long a poll waits for another run of the account to finish (default: not at all;
    /// the poll then fails with [`FetchError::Locked`], a temporary error).
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The poller.
    pub fn build(self) -> Poller {
        let state_dir = self
            .state_dir
            .or_else(FetchOptions::default_state_dir)
            .unwrap_or_else(|| PathBuf::from(".popwire-state"));
        let mut schedule = Schedule::default();
        schedule.upsert(&self.account.name, &self.account.server, self.interval, 0);
        Poller {
            account: self.account,
            state_dir,
            retry: Retry {
                base: self.retry_base,
                max: self.retry_max,
                waiting: HashMap::new(),
            },
            memory_limit: self.memory_limit,
            lock_wait: self.lock_wait,
            batch: 1024,
            batch_bytes: 32 << 20,
            stop: StopHandle::default(),
            interval: self.interval,
            schedule,
            started: Instant::now(),
        }
    }
}

/// Polls one mailbox for a handler (see the module docs).
#[derive(Debug)]
pub struct Poller {
    account: Account,
    state_dir: PathBuf,
    retry: Retry,
    memory_limit: usize,
    lock_wait: Duration,
    batch: usize,
    batch_bytes: u64,
    stop: StopHandle,
    interval: Duration,
    /// One account's schedule: interval, LOGIN-DELAY, backoff after failures.
    schedule: Schedule,
    /// The schedule's clock starts here.
    started: Instant,
}

impl Poller {
    /// A builder for a mailbox on `server`.
    pub fn builder(
        server: impl Into<String>,
        username: impl Into<String>,
        password: Secret,
    ) -> PollerBuilder {
        PollerBuilder::new(server, username, password)
    }

    /// A builder from an account of the config file; its destination is ignored (the handler
    /// is the destination), the rest (server, login, keep, sizes, timeout) applies.
    pub fn from_account(account: &Account) -> PollerBuilder {
        let mut account = account.clone();
        account.destination = Destination::Handler;
        PollerBuilder::from_account(account)
    }

    /// The handle that stops [`run`](Self::run) or a poll in progress.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The account polled.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Polls once now: each new message is retrieved and handed to `handler`; the ones it
    /// took are journaled, then deleted (unless kept). A handler error leaves that message on
    /// the server and the poll goes on with the next.
    ///
    /// `Err` is the session failing (network, login, journal), or [`FetchError::Cancelled`]
    /// after [`StopHandle::stop`]; what the handler took before is committed either way.
    pub fn poll_once(&mut self, handler: &mut Handler<'_>) -> Result<PollReport, FetchError> {
        let name = self.account.name.clone();
        let start = self.now();
        if self.schedule.next_ready(start).is_none() {
            // Called before the schedule's time: the caller knows best, so start afresh.
            self.schedule.remove(&name);
            self.schedule
                .upsert(&name, &self.account.server, self.interval, start);
            let _ = self.schedule.next_ready(start);
        }
        let result = session::poll(self, handler);
        let end = self.now();
        self.schedule.finished(&name, outcome(&result), end, end);
        result
    }

    /// Changes the interval of [`run`](Self::run), from the next poll on.
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
        let start = self.now();
        self.schedule
            .upsert(&self.account.name, &self.account.server, interval, start);
    }

    /// How long until the next poll is due: the interval after the last one, longer after a
    /// failure (backoff) or when the server's LOGIN-DELAY asks for it.
    pub fn next_poll_in(&mut self) -> Duration {
        let due = self.schedule.due(&self.account.name).unwrap_or(0);
        Duration::from_millis(due.saturating_sub(self.now()))
    }

    /// Polls at the interval until stopped. `on_poll` sees each poll's outcome. Temporary
    /// failures (network, `[IN-USE]`, `[LOGIN-DELAY]`, another run holding the account) are
    /// retried with backoff; any other error (a wrong password, a bad certificate, a server
    /// without UIDL) ends the loop, as no retry would fix it. Returns `Ok` once stopped.
    pub fn run(
        &mut self,
        handler: &mut Handler<'_>,
        on_poll: &mut dyn FnMut(&Result<PollReport, FetchError>),
    ) -> Result<(), FetchError> {
        loop {
            let wait = self.next_poll_in();
            if self.stop.wait(wait) {
                return Ok(());
            }
            let result = self.poll_once(handler);
            let ended = outcome(&result);
            on_poll(&result);
            match result {
                Err(FetchError::Cancelled) => return Ok(()),
                Err(e) if ended == Outcome::NeedsAttention => return Err(e),
                _ => {}
            }
        }
    }

    fn now(&self) -> Millis {
        Millis::try_from(self.started.elapsed().as_millis()).unwrap_or(Millis::MAX)
    }
}

/// How a poll ended, as the schedule sees it.
fn outcome(result: &Result<PollReport, FetchError>) -> Outcome {
    match result {
        Ok(report) => Outcome::Success {
            login_delay: report.login_delay,
        },
        Err(FetchError::Net(NetError::Pop3(crate::proto::Error::Server(e))))
            if e.code == Some(ResponseCode::LoginDelay) =>
        {
            Outcome::LoginDelay { login_delay: None }
        }
        Err(FetchError::Net(NetError::Pop3(crate::proto::Error::Server(e))))
            if e.code == Some(ResponseCode::InUse) =>
        {
            Outcome::InUse
        }
        Err(e) if e.is_temporary() => Outcome::Temporary,
        Err(_) => Outcome::NeedsAttention,
    }
}

//! When to poll which account: the scheduler of a service that watches many mailboxes.
//!
//! Sans-IO like the engine: it never reads a clock, sleeps or spawns. The caller passes the time
//! in, asks for the next account to poll ([`Schedule::next_ready`]), runs the session however
//! it likes (a thread, an async task), and reports how it went ([`Schedule::finished`]). It keeps
//! the rules a polite and robust client follows:
//!
//! - each account every `poll` interval, measured from the start of its last session;
//! - never two sessions of one account at once (within this process; across processes the
//!   account lock of the commit protocol does it);
//! - never sooner than the server's `LOGIN-DELAY` (RFC 2449) after the last login, and the
//!   `[LOGIN-DELAY]` and `[IN-USE]` response codes push the next try out too;
//! - after a failure, exponential backoff from [`BACKOFF_BASE`] up to [`BACKOFF_MAX`] (never
//!   beyond the poll interval for a temporary failure once it is longer), with a deterministic
//!   jitter of up to a quarter, so that a thousand accounts that failed together do not retry
//!   together;
//! - at most `per_host` sessions at once to one server host, and `total` overall.
//!
//! Times are milliseconds on any monotonic clock the caller chooses.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::Duration;

use super::error::FetchError;
use super::job::AccountSummary;
use crate::proto::{ErrorClass, ResponseCode};

/// Milliseconds on the caller's monotonic clock.
pub type Millis = u64;

/// The first retry after a failure waits this long (before jitter).
pub const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// Retries never wait longer than this (before jitter).
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// What `[LOGIN-DELAY]` (RFC 3206) means when the server gave no `LOGIN-DELAY` capability.
pub const LOGIN_DELAY_DEFAULT: Duration = Duration::from_secs(300);
/// How long `[IN-USE]` (another client holds the maildrop) makes an account wait.
pub const IN_USE_DELAY: Duration = Duration::from_secs(60);

/// How a session ended, as far as scheduling cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The mailbox was fetched. `login_delay` is the server's `LOGIN-DELAY` capability (the
    /// least time between logins), if it announced one.
    Success {
        /// The server's minimum time between logins.
        login_delay: Option<Duration>,
    },
    /// `-ERR [LOGIN-DELAY]`: logged in too soon. `login_delay` as announced, if it was.
    LoginDelay {
        /// The server's minimum time between logins, if known.
        login_delay: Option<Duration>,
    },
    /// `-ERR [IN-USE]`: another client has the maildrop.
    InUse,
    /// Anything that may pass by itself: the network, a timeout, `[SYS/TEMP]`, a full disk.
    Temporary,
    /// Something a person must fix: `[AUTH]`, a bad certificate, a config error. Retried on the
    /// backoff's slowest pace, so that a fixed password is picked up without a restart.
    NeedsAttention,
}

/// Limits on sessions at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sessions at once to one server host.
    pub per_host: usize,
    /// Sessions at once overall.
    pub total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_host: 8,
            total: 256,
        }
    }
}

/// An account as the scheduler knows it.
#[derive(Debug, Clone)]
struct Account {
    host: String,
    poll: Millis,
    /// When it may next start.
    due: Millis,
    running: bool,
    /// Failures in a row.
    failures: u32,
    /// The server's minimum time between logins, as last announced.
    login_delay: Millis,
    last_start: Option<Millis>,
    /// Bumped on every reschedule, so that stale heap entries are recognised.
    generation: u64,
    /// Its place in the line of accounts held back by a limit, and the host it waits for.
    waiting: Option<(u64, String)>,
    /// The host whose slot its running session holds (the account's host may change meanwhile).
    running_on: Option<String>,
}

/// The accounts of one host held back by a limit, in the order they fell due.
#[derive(Debug, Default)]
struct HostLine {
    line: BTreeMap<u64, String>,
    /// The place of this line's first account in `open`, while the host has a free slot.
    open: Option<u64>,
}

/// The poll schedule of many accounts (see the module docs).
#[derive(Debug, Default)]
pub struct Schedule {
    accounts: HashMap<String, Account>,
    /// (due, generation, name): the earliest first. Entries whose generation is stale are
    /// skipped when they come up.
    queue: BinaryHeap<Reverse<(Millis, u64, String)>>,
    /// Accounts that were due but whose host or the total was at its limit, per host: every
    /// operation on them is O(log n), so a saturated schedule of a million accounts stays cheap.
    waiting: HashMap<String, HostLine>,
    /// The first held-back account of each host that has a free slot, longest waiting first:
    /// when the total has room, the next account to start is the first of these.
    open: BTreeSet<(u64, String)>,
    /// Numbers places in the waiting lines.
    next_place: u64,
    hosts: HashMap<String, usize>,
    running: usize,
    limits: Limits,
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

impl Schedule {
    /// An empty schedule with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Adds an account, or changes its host and interval; its first poll is due at `first`.
    /// A running account keeps running; the change applies to its next poll.
    pub fn upsert(&mut self, name: &str, host: &str, poll: Duration, first: Millis) {
        let poll = millis(poll).max(1);
        match self.accounts.get_mut(name) {
            Some(_) => {
                self.leave_line(name);
                let Some(account) = self.accounts.get_mut(name) else {
                    return;
                };
                account.host = host.to_owned();
                account.poll = poll;
                if !account.running {
                    let due = account.last_start.map_or(first, |start| {
                        start
                            .saturating_add(poll)
                            .max(start.saturating_add(account.login_delay))
                    });
                    self.reschedule(name, due);
                }
            }
            None => {
                self.accounts.insert(
                    name.to_owned(),
                    Account {
                        host: host.to_owned(),
                        poll,
                        due: first,
                        running: false,
                        failures: 0,
                        login_delay: 0,
                        last_start: None,
                        generation: 0,
                        waiting: None,
                        running_on: None,
                    },
                );
                self.reschedule(name, first);
            }
        }
    }

    /// Forgets an account. If it is running, its session's report is ignored.
    pub fn remove(&mut self, name: &str) {
        self.leave_line(name);
        if let Some(account) = self.accounts.remove(name)
            && let Some(host) = account.running_on
        {
            self.release(&host);
        }
    }

    /// Changes the limits (a reloaded config); sessions over a lowered limit run on, and no new
    /// one starts until they are under it.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        let hosts: Vec<String> = self.waiting.keys().cloned().collect();
        for host in hosts {
            self.refresh_open(&host);
        }
    }

    /// The number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// True when there are no accounts.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Sessions running now.
    pub fn running(&self) -> usize {
        self.running
    }

    /// When the next account falls due, if any is waiting for its time (not for a free slot):
    /// sleep until then, or until a session finishes.
    #[must_use]
    pub fn next_due(&mut self) -> Option<Millis> {
        while let Some(Reverse((due, generation, name))) = self.queue.peek() {
            if self.is_current(name, *generation) {
                return Some(*due);
            }
            self.queue.pop();
        }
        None
    }

    /// The next account to poll now, marked running; `None` when none is due or every due one
    /// is held back by a limit. Call it until it gives `None`.
    #[must_use]
    pub fn next_ready(&mut self, now: Millis) -> Option<String> {
        if self.running >= self.limits.total {
            return None;
        }
        // Accounts held back by a limit come first: they have waited longest.
        if let Some((_, host)) = self.open.first().cloned()
            && let Some(name) = self
                .waiting
                .get(&host)
                .and_then(|line| line.line.first_key_value())
                .map(|(_, name)| name.clone())
        {
            self.leave_line(&name);
            self.start(&name, now);
            return Some(name);
        }
        while let Some(Reverse((due, generation, name))) = self.queue.peek().cloned() {
            if due > now {
                return None;
            }
            self.queue.pop();
            if !self.is_current(&name, generation) {
                continue;
            }
            if self.may_start(&name) {
                self.start(&name, now);
                return Some(name);
            }
            self.join_line(&name);
        }
        None
    }

    /// Reports how the session of `name` that [`next_ready`](Self::next_ready) handed out ended,
    /// and schedules its next poll. `jitter_seed` spreads retries (any per-account number, e.g.
    /// a hash of the name and the time).
    pub fn finished(&mut self, name: &str, outcome: Outcome, now: Millis, jitter_seed: u64) {
        let Some(account) = self.accounts.get_mut(name) else {
            return;
        };
        if !account.running {
            return;
        }
        account.running = false;
        let host = account
            .running_on
            .take()
            .unwrap_or_else(|| account.host.clone());
        let start = account.last_start.unwrap_or(now);
        let after_login =
            |account: &Account, delay: Millis| start.saturating_add(delay.max(account.login_delay));
        let due = match outcome {
            Outcome::Success { login_delay } => {
                account.failures = 0;
                account.login_delay = login_delay.map_or(0, millis);
                after_login(account, account.poll)
            }
            Outcome::LoginDelay { login_delay } => {
                account.login_delay = login_delay.map_or(millis(LOGIN_DELAY_DEFAULT), millis);
                after_login(account, account.login_delay).max(now)
            }
            Outcome::InUse => now
                .saturating_add(millis(IN_USE_DELAY))
                .max(after_login(account, 0)),
            Outcome::Temporary | Outcome::NeedsAttention => {
                account.failures = account.failures.saturating_add(1);
                let ceiling = match outcome {
                    Outcome::NeedsAttention => millis(BACKOFF_MAX),
                    // A temporary failure is retried at least once per poll interval.
                    _ => millis(BACKOFF_MAX).min(account.poll.max(millis(BACKOFF_BASE))),
                };
                let exponent = account.failures.saturating_sub(1).min(20);
                let backoff = millis(BACKOFF_BASE)
                    .saturating_mul(1 << exponent)
                    .min(ceiling);
                let backoff = match outcome {
                    Outcome::NeedsAttention => millis(BACKOFF_MAX),
                    _ => backoff,
                };
                // Up to a quarter more, from the seed: spread, yet replayable.
                let jitter = spread(jitter_seed) % (backoff / 4).max(1);
                now.saturating_add(backoff)
                    .saturating_add(jitter)
                    .max(after_login(account, 0))
            }
        };
        self.release(&host);
        self.reschedule(name, due);
    }

    /// Failures in a row of an account, for status and alerts.
    pub fn failures(&self, name: &str) -> Option<u32> {
        self.accounts.get(name).map(|a| a.failures)
    }

    /// When an account may next start, if it is not running.
    pub fn due(&self, name: &str) -> Option<Millis> {
        self.accounts
            .get(name)
            .filter(|a| !a.running)
            .map(|a| a.due)
    }

    fn is_current(&self, name: &str, generation: u64) -> bool {
        self.accounts
            .get(name)
            .is_some_and(|a| a.generation == generation && !a.running)
    }

    fn may_start(&self, name: &str) -> bool {
        let Some(account) = self.accounts.get(name) else {
            return false;
        };
        !account.running
            && self.running < self.limits.total
            && self.hosts.get(&account.host).copied().unwrap_or(0) < self.limits.per_host
    }

    fn start(&mut self, name: &str, now: Millis) {
        let Some(account) = self.accounts.get_mut(name) else {
            return;
        };
        account.running = true;
        account.last_start = Some(now);
        account.generation += 1;
        let host = account.host.clone();
        account.running_on = Some(host.clone());
        *self.hosts.entry(host.clone()).or_insert(0) += 1;
        self.running += 1;
        self.refresh_open(&host);
    }

    fn release(&mut self, host: &str) {
        self.running = self.running.saturating_sub(1);
        if let Some(count) = self.hosts.get_mut(host) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.hosts.remove(host);
            }
        }
        self.refresh_open(host);
    }

    fn reschedule(&mut self, name: &str, due: Millis) {
        self.leave_line(name);
        if let Some(account) = self.accounts.get_mut(name) {
            account.due = due;
            account.generation += 1;
            self.queue
                .push(Reverse((due, account.generation, name.to_owned())));
        }
    }

    /// Puts a due account that a limit holds back at the end of its host's line.
    fn join_line(&mut self, name: &str) {
        let place = self.next_place;
        let Some(account) = self.accounts.get_mut(name) else {
            return;
        };
        if account.waiting.is_some() {
            return;
        }
        self.next_place += 1;
        let host = account.host.clone();
        account.waiting = Some((place, host.clone()));
        self.waiting
            .entry(host.clone())
            .or_default()
            .line
            .insert(place, name.to_owned());
        self.refresh_open(&host);
    }

    /// Takes an account out of its host's line, if it is in one.
    fn leave_line(&mut self, name: &str) {
        let Some((place, host)) = self.accounts.get_mut(name).and_then(|a| a.waiting.take()) else {
            return;
        };
        if let Some(line) = self.waiting.get_mut(&host) {
            line.line.remove(&place);
        }
        self.refresh_open(&host);
    }

    /// Keeps `open` true to one host: its first waiting account is there while the host has a
    /// free slot.
    fn refresh_open(&mut self, host: &str) {
        let free = self.hosts.get(host).copied().unwrap_or(0) < self.limits.per_host;
        let Some(line) = self.waiting.get_mut(host) else {
            return;
        };
        let wanted = if free {
            line.line.first_key_value().map(|(place, _)| *place)
        } else {
            None
        };
        if wanted != line.open {
            if let Some(old) = line.open.take() {
                self.open.remove(&(old, host.to_owned()));
            }
            if let Some(new) = wanted {
                self.open.insert((new, host.to_owned()));
                line.open = Some(new);
            }
        }
        if line.line.is_empty() && line.open.is_none() {
            self.waiting.remove(host);
        }
    }
}

/// From a fetch's result to an [`Outcome`]: how the service reports a session.
impl Outcome {
    /// A session that ended in `error`. `[LOGIN-DELAY]` and `[IN-USE]` get their own delays,
    /// and so does a busy account lock (another popwire fetching it: like `[IN-USE]`);
    /// `[SYS/TEMP]`, timeouts and dropped connections back off as temporary; `[SYS/PERM]`,
    /// `[AUTH]`, TLS and configuration errors need a person. `login_delay` is the delay known
    /// from an earlier session, if any.
    #[must_use]
    pub fn of_error(error: &FetchError, login_delay: Option<Duration>) -> Self {
        if matches!(error, FetchError::Locked { .. }) {
            return Outcome::InUse;
        }
        match error.class() {
            ErrorClass::Server(Some(ResponseCode::LoginDelay)) => {
                Outcome::LoginDelay { login_delay }
            }
            ErrorClass::Server(Some(ResponseCode::InUse)) => Outcome::InUse,
            ErrorClass::Server(Some(ResponseCode::SysTemp)) => Outcome::Temporary,
            ErrorClass::Server(Some(ResponseCode::SysPerm | ResponseCode::Auth))
            | ErrorClass::Auth => Outcome::NeedsAttention,
            // A cancelled session (the service stopping) is retried as soon as it may be; a
            // refused connection is often a server restarting, so a service keeps trying
            // within the poll interval rather than hourly (`popwire fetch` still exits 69).
            ErrorClass::Cancelled | ErrorClass::Network | ErrorClass::Timeout => Outcome::Temporary,
            _ if error.is_temporary() => Outcome::Temporary,
            _ => Outcome::NeedsAttention,
        }
    }

    /// A session that fetched the mailbox: the server's `LOGIN-DELAY` applies to the next.
    #[must_use]
    pub fn of_summary(summary: &AccountSummary) -> Self {
        Outcome::Success {
            login_delay: summary.login_delay,
        }
    }
}

/// What a service changes while running.
impl Schedule {
    /// The current limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The names of the accounts.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    /// True while `name`'s session runs.
    pub fn is_running(&self, name: &str) -> bool {
        self.accounts.get(name).is_some_and(|a| a.running)
    }
}

/// A 64-bit mix (splitmix64's finaliser): nearby seeds give far-apart jitters.
fn spread(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;

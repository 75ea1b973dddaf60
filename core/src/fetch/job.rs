//! The fetch job: for each account, list, retrieve what is new, store it durably, record it,
//! then delete (unless kept), then QUIT.
//!
//! Every RETR of a session is pipelined in one stream; each body is streamed into a store draft.
//! Every `batch` messages, and at the end, a group commit, so that no crash can lose mail:
//! 1. `prepare`: the batch's files made durable with one sync (not yet visible);
//! 2. the UIDs, with the store's receipts, appended to the journal (one fsync): the commit point;
//! 3. `publish`: the renames into `new/`, one directory fsync;
//! 4. the journal marks the receipts published (no fsync needed).
//!
//! Only when the stream has ended are the DELEs sent, pipelined with QUIT: the server removes
//! messages at QUIT anyway, so deleting earlier would gain nothing. A crash before 2 leaves only
//! files in `tmp/` that no reader sees, and the messages are fetched again; a crash after 2 is
//! finished at the next start by [`MailStore::recover`] from the journal's receipts. So with
//! Maildir every message arrives exactly once, whatever moment a crash hits.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::{Account, AuthChoice, Config, Keep, Security as ConfigSecurity};
use super::journal::{Delivered, Journal, JournalError};
use super::secret_source::CredentialError;
use super::store::{self, MailStore, StoreError};
use crate::net::blocking::BlockingClient;
use crate::net::{ConnectOptions, NetError};
use crate::proto::{AuthMethod, Credential, Mechanism, MessageNumber, ResponseCode, Security};

/// Knobs of a fetch run that are not per-account configuration.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Where UID journals live (one file per account).
    pub state_dir: PathBuf,
    /// Messages per group commit: more means fewer fsync rounds, less means less refetching
    /// after a crash. DELEs wait for the end of the session whatever the batch.
    pub batch: usize,
    /// Octets per group commit: a batch also ends once its messages reach this size.
    pub batch_bytes: u64,
    /// Sessions per account before giving up on draining a server that caps each session.
    pub max_sessions: usize,
    /// Set to stop between messages; the current batch is committed, nothing is lost.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl FetchOptions {
    /// Defaults with journals in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            batch: 1024,
            batch_bytes: 32 << 20,
            max_sessions: 20,
            cancel: None,
        }
    }

    /// `$XDG_STATE_HOME/popwire`, else `~/.local/state/popwire`.
    pub fn default_state_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("popwire"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state/popwire"))
    }
}

/// What happened, reported as it happens. Cheap to produce: once per message at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Connected and logged in.
    LoggedIn {
        /// The account.
        account: &'a str,
        /// True over TLS.
        tls: bool,
    },
    /// The server's listing is known.
    Listed {
        /// The account.
        account: &'a str,
        /// Messages on the server.
        total: usize,
        /// Messages to download now.
        new: usize,
        /// Their total size in octets.
        new_bytes: u64,
    },
    /// One message was downloaded (not yet durable: see `Committed`).
    Message {
        /// The account.
        account: &'a str,
        /// Its size in octets.
        bytes: u64,
    },
    /// A batch became durable and was recorded.
    Committed {
        /// The account.
        account: &'a str,
        /// Messages in the batch.
        count: usize,
    },
    /// Messages were deleted from the server (effective at QUIT).
    Deleted {
        /// The account.
        account: &'a str,
        /// How many.
        count: usize,
    },
}

/// The outcome of one account.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// The account's name.
    pub account: String,
    /// Messages downloaded and stored.
    pub fetched: usize,
    /// Their size in octets.
    pub bytes: u64,
    /// Messages deleted from the server.
    pub deleted: usize,
    /// Messages left on the server because they exceed `max_message_size`.
    pub skipped_too_large: usize,
    /// Messages left on the server that were stored before (keep mode).
    pub kept: usize,
    /// Sessions used (more than one when the server caps a session).
    pub sessions: usize,
}

/// Why an account could not be fetched. Each variant says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The password or token could not be obtained.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// Connecting, TLS or POP3 failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A message could not be stored locally. Nothing unstored was deleted.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The UID journal could not be read or written. Nothing unrecorded was deleted.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The server has no UIDL, so popwire cannot tell old messages from new ones.
    #[error("the server does not support UIDL; set keep = false to fetch and delete everything")]
    NoUidl,
    /// The run was cancelled; what was stored is committed.
    #[error("cancelled")]
    Cancelled,
}

/// sysexits(3) codes, so scripts and cron can react.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Internal software error.
    pub const SOFTWARE: i32 = 70;
    /// Service unavailable: cannot connect, TLS refused.
    pub const UNAVAILABLE: i32 = 69;
    /// Local I/O error (store, journal).
    pub const IOERR: i32 = 74;
    /// Temporary failure: retry later.
    pub const TEMPFAIL: i32 = 75;
    /// Permission denied: authentication failed.
    pub const NOPERM: i32 = 77;
    /// Configuration error.
    pub const CONFIG: i32 = 78;
}

impl FetchError {
    /// The sysexits code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            FetchError::Credential(_) => exit::CONFIG,
            FetchError::Net(e) if e.is_auth_failure() => exit::NOPERM,
            FetchError::Net(e) if e.is_temporary() => exit::TEMPFAIL,
            FetchError::Net(NetError::CaFile { .. }) => exit::CONFIG,
            FetchError::Net(NetError::Pop3(crate::proto::Error::Policy(_))) => exit::UNAVAILABLE,
            FetchError::Net(_) => exit::UNAVAILABLE,
            FetchError::Store(e) if e.is_disk_full() => exit::TEMPFAIL,
            FetchError::Journal(e) if e.is_disk_full() => exit::TEMPFAIL,
            FetchError::Store(_) | FetchError::Journal(_) => exit::IOERR,
            FetchError::NoUidl => exit::UNAVAILABLE,
            FetchError::Cancelled => exit::TEMPFAIL,
        }
    }
}

/// Fetches every account of `config` named in `only` (all when empty), one after the other.
pub fn run(
    config: &Config,
    only: &[String],
    options: &FetchOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Vec<(String, Result<AccountSummary, FetchError>)> {
    config
        .accounts
        .iter()
        .filter(|(name, _)| only.is_empty() || only.iter().any(|o| o == name))
        .map(|(name, account)| (name.clone(), fetch_account(account, options, progress)))
        .collect()
}

/// The connection options for an account.
pub fn connect_options(account: &Account) -> ConnectOptions {
    let mut o = ConnectOptions::new(account.server.clone());
    o.port = Some(account.port);
    o.security = match account.security {
        ConfigSecurity::Tls => Security::Tls,
        ConfigSecurity::StartTls => Security::StartTls,
        ConfigSecurity::None => Security::None,
    };
    // `security = "none"` is the user's explicit choice of cleartext.
    o.engine.allow_cleartext_password = account.security == ConfigSecurity::None;
    o.ca_file = account.ca_file.clone();
    o.timeout = account.timeout;
    o.connect_timeout = account.timeout;
    o
}

/// Opens and logs in to an account's server.
pub fn login(account: &Account) -> Result<BlockingClient, FetchError> {
    let secret = account.credential.resolve()?;
    let credential = if account.credential.is_token() {
        Credential::Token(secret)
    } else {
        Credential::Password(secret)
    };
    let method = match &account.auth {
        AuthChoice::Auto => AuthMethod::Auto,
        AuthChoice::User => AuthMethod::UserPass,
        AuthChoice::Apop => AuthMethod::Apop,
        // The config module only accepts known mechanism names.
        AuthChoice::Sasl(name) => {
            Mechanism::from_name(name).map_or(AuthMethod::Auto, AuthMethod::Sasl)
        }
    };
    let mut client = BlockingClient::connect(connect_options(account))?;
    client.authenticate(&account.username, credential, method)?;
    Ok(client)
}

fn journal_path(state_dir: &Path, account: &Account) -> PathBuf {
    // The server is part of the name so that pointing an account elsewhere starts afresh.
    let safe: String = format!("{}@{}", account.name, account.server)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir.join(format!("{safe}.uids"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Fetches one account until its mailbox is drained (or nothing new remains).
pub fn fetch_account(
    account: &Account,
    options: &FetchOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<AccountSummary, FetchError> {
    std::fs::create_dir_all(&options.state_dir).map_err(|e| StoreError::Io {
        action: "create the state directory",
        path: options.state_dir.clone(),
        source: e,
    })?;
    let mut journal = Journal::open(journal_path(&options.state_dir, account))?;
    let mut store = store::open(&account.destination)?;
    // A crash left published-or-not messages: finish them before anything is deleted.
    if !journal.pending().is_empty() {
        let receipts: Vec<String> = journal.pending().iter().map(|(_, r)| r.clone()).collect();
        let delivered = store.recover(&receipts)?;
        journal.settle_pending(&delivered)?;
    }
    let mut summary = AccountSummary {
        account: account.name.clone(),
        ..AccountSummary::default()
    };
    let mut delay_retried = false;
    while summary.sessions < options.max_sessions.max(1) {
        summary.sessions += 1;
        match session(
            account,
            options,
            &mut journal,
            store.as_mut(),
            &mut summary,
            progress,
        ) {
            Ok(SessionEnd::Drained) => break,
            Ok(SessionEnd::MoreOnServer) => continue,
            // LOGIN-DELAY: wait once, briefly, rather than fail a run that is nearly done.
            Err(FetchError::Net(NetError::Pop3(crate::proto::Error::Server(e))))
                if e.code == Some(ResponseCode::LoginDelay)
                    && summary.sessions > 1
                    && !delay_retried =>
            {
                delay_retried = true;
                std::thread::sleep(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(summary)
}

/// Hosts known to list only part of a big mailbox per session (Gmail lists a few hundred of
/// the oldest messages at a time): after a drained session, popwire logs in again for the rest.
/// Everyone else lists the whole mailbox, and a second login would only cost time.
const SESSION_CAPPING_HOSTS: [&str; 2] = ["gmail.com", "googlemail.com"];

fn caps_sessions(server: &str) -> bool {
    let server = server.trim_end_matches('.').to_ascii_lowercase();
    SESSION_CAPPING_HOSTS.iter().any(|host| {
        server == *host
            || server
                .strip_suffix(host)
                .is_some_and(|prefix| prefix.ends_with('.'))
    })
}

/// Replies to keep on the way: more than a bandwidth-delay product on any link a mailbox is
/// fetched over (4 MiB is 10 ms at 3.3 Gbit/s), so the server never waits for the next command.
const IN_FLIGHT_BYTES: u64 = 4 << 20;

/// The pipelining window for a stream of RETRs: about [`IN_FLIGHT_BYTES`] of messages of this
/// mailbox's average size. At least 16, so large messages still overlap their round trips; at
/// most 1024, about 11 KB of commands, which any server's receive buffer holds while its own
/// output is blocked (RFC 2920: avoiding that deadlock is the client's job).
fn pipeline_window(messages: usize, bytes: u64) -> usize {
    let average = bytes / (messages as u64).max(1);
    let window = IN_FLIGHT_BYTES / average.max(1);
    usize::try_from(window)
        .unwrap_or(usize::MAX)
        .clamp(16, 1024)
}

enum SessionEnd {
    Drained,
    MoreOnServer,
}

/// Messages retrieved but not yet committed, and what was committed in this session.
struct Batches {
    staged: Vec<MessageNumber>,
    staged_bytes: u64,
    committed: Vec<MessageNumber>,
}

impl Batches {
    /// The group commit: durable, journaled, visible, in that order (see the module docs).
    fn commit<'u>(
        &mut self,
        store: &mut dyn MailStore,
        journal: &mut Journal,
        identity: &dyn Fn(MessageNumber) -> Option<(&'u str, u64)>,
        now: u64,
    ) -> Result<usize, FetchError> {
        if self.staged.is_empty() {
            return Ok(0);
        }
        let receipts = store.prepare()?;
        journal.append_delivered(
            self.staged
                .iter()
                .zip(receipts)
                .filter_map(|(&number, receipt)| {
                    identity(number).map(|(uid, size)| Delivered {
                        uid,
                        size: Some(size),
                        receipt,
                    })
                }),
            now,
        )?;
        store.publish()?;
        // Only an optimisation: a lost mark means the next start checks the receipts again.
        let _ = journal.mark_published();
        let count = self.staged.len();
        self.committed.append(&mut self.staged);
        Ok(count)
    }
}

fn session(
    account: &Account,
    options: &FetchOptions,
    journal: &mut Journal,
    store: &mut dyn MailStore,
    summary: &mut AccountSummary,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<SessionEnd, FetchError> {
    let name = account.name.as_str();
    let mut pop = login(account)?;
    progress(Progress::LoggedIn {
        account: name,
        tls: pop.engine().is_tls(),
    });
    let (listing, uidls) = pop.list_and_uidl()?;
    let uidls = match uidls {
        Ok(u) => u,
        Err(NetError::Pop3(crate::proto::Error::Server(_))) if account.keep == Keep::Delete => {
            Vec::new()
        }
        Err(NetError::Pop3(crate::proto::Error::Server(_))) => return Err(FetchError::NoUidl),
        Err(e) => return Err(e.into()),
    };
    // A UID the server lists twice identifies neither message: such messages are fetched as
    // new and not journaled (at worst a duplicate, never a message deleted unfetched).
    let mut uid_counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for u in &uidls {
        *uid_counts.entry(u.uid.as_str()).or_default() += 1;
    }
    let uid_index: std::collections::HashMap<MessageNumber, &str> = uidls
        .iter()
        .filter(|u| uid_counts.get(u.uid.as_str()) == Some(&1))
        .map(|u| (u.number, u.uid.as_str()))
        .collect();
    let lookup = |n: MessageNumber| uid_index.get(&n).copied();
    let sizes: std::collections::HashMap<MessageNumber, u64> =
        listing.iter().map(|e| (e.number, e.size)).collect();
    // What identifies a message across sessions: its UID and its listed size.
    let identity = |n: MessageNumber| Some((lookup(n)?, *sizes.get(&n)?));

    let now = now();
    let mut wanted = Vec::new();
    let mut wanted_bytes = 0u64;
    let mut to_delete = Vec::new();
    for entry in &listing {
        let uid = lookup(entry.number);
        let seen = uid.is_some_and(|u| journal.contains_message(u, entry.size));
        if seen {
            let expired = match account.keep {
                Keep::Delete => true,
                Keep::Forever => false,
                Keep::For(age) => uid
                    .and_then(|u| journal.first_seen(u))
                    .is_some_and(|t| now.saturating_sub(t) >= age.as_secs()),
            };
            if expired {
                // Stored in an earlier session that ended before QUIT: delete, no refetch.
                to_delete.push(entry.number);
            } else {
                summary.kept += 1;
            }
        } else if account.max_message_size.is_some_and(|max| entry.size > max) {
            summary.skipped_too_large += 1;
        } else {
            wanted.push(entry.number);
            // Sizes are the server's word: a lie near 2^64 must not overflow.
            wanted_bytes = wanted_bytes.saturating_add(entry.size);
        }
    }
    progress(Progress::Listed {
        account: name,
        total: listing.len(),
        new: wanted.len(),
        new_bytes: wanted_bytes,
    });

    pop.set_max_in_flight(pipeline_window(wanted.len(), wanted_bytes));
    let batch_size = options.batch.max(1);
    let mut batches = Batches {
        staged: Vec::with_capacity(batch_size.min(wanted.len())),
        staged_bytes: 0,
        committed: Vec::with_capacity(wanted.len()),
    };
    let mut committed_bytes = 0u64;
    let cancelled = || {
        options
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    let retrieved = pop.retr_each(&wanted, &mut |body| -> Result<(), FetchError> {
        if cancelled() {
            return Err(FetchError::Cancelled);
        }
        let number = body.number();
        let mut draft = store.draft()?;
        let copied = body.copy_to(&mut draft).map_err(|e| match e {
            NetError::Sink { source } if source.get_ref().is_some_and(|r| r.is::<StoreError>()) => {
                FetchError::Store(StoreError::from(source))
            }
            other => FetchError::Net(other),
        })?;
        match copied {
            Ok(octets) => {
                draft.finish()?;
                batches.staged.push(number);
                batches.staged_bytes += octets;
                progress(Progress::Message {
                    account: name,
                    bytes: octets,
                });
            }
            // Deleted by another client meanwhile, or the server failed: leave it there.
            Err(_) => drop(draft),
        }
        if batches.staged.len() >= batch_size || batches.staged_bytes >= options.batch_bytes {
            let bytes = std::mem::take(&mut batches.staged_bytes);
            let count = batches.commit(store, journal, &identity, now)?;
            committed_bytes += bytes;
            progress(Progress::Committed {
                account: name,
                count,
            });
        }
        Ok(())
    });
    // Whatever ended the stream, the messages received whole are committed: not fetched again.
    let bytes = std::mem::take(&mut batches.staged_bytes);
    let last = batches.commit(store, journal, &identity, now);
    if let Ok(count) = last {
        committed_bytes += bytes;
        if count > 0 {
            progress(Progress::Committed {
                account: name,
                count,
            });
        }
    }
    summary.fetched += batches.committed.len();
    summary.bytes += committed_bytes;
    // The connection is dropped without QUIT on failure: the server deletes nothing, and the
    // next run deletes what the journal now holds.
    retrieved?;
    last?;

    if account.keep == Keep::Delete {
        to_delete.extend_from_slice(&batches.committed);
    }
    if to_delete.is_empty() {
        pop.quit()?;
    } else {
        let (outcomes, _) = pop.dele_many_and_quit(&to_delete)?;
        let count = outcomes.iter().filter(|o| o.is_ok()).count();
        summary.deleted += count;
        progress(Progress::Deleted {
            account: name,
            count,
        });
    }
    // Forget UIDs the server no longer has, so the journal does not grow forever.
    let present: HashSet<&str> = uidls.iter().map(|u| u.uid.as_str()).collect();
    if !present.is_empty() {
        let before = journal.len();
        journal.retain_only(&present);
        if journal.len() != before {
            journal.save()?;
        }
    }
    let drained =
        wanted.is_empty() || account.keep != Keep::Delete || !caps_sessions(&account.server);
    Ok(if drained {
        SessionEnd::Drained
    } else {
        SessionEnd::MoreOnServer
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_holds_about_four_mebibytes_of_replies() {
        assert_eq!(pipeline_window(1000, 5_000_000), 838);
        assert_eq!(pipeline_window(100, 100 << 20), 16);
        assert_eq!(pipeline_window(10, 10), 1024);
        assert_eq!(pipeline_window(0, 0), 1024);
    }

    #[test]
    fn only_gmail_caps_sessions() {
        assert!(caps_sessions("pop.gmail.com"));
        assert!(caps_sessions("POP.GoogleMail.com."));
        assert!(!caps_sessions("notgmail.com"));
        assert!(!caps_sessions("pop.example.org"));
    }
}

//! The fetch job: for each account, list, retrieve what is new, store it durably, record it,
//! then delete (unless kept), then QUIT.
//!
//! Every RETR of a session is pipelined in one stream; each body is streamed into a store draft
//! and committed batch by batch through the commit protocol ([`super::commit`]), which makes
//! sure that no crash or failing disk can lose or duplicate mail. Only when the stream has ended
//! are the DELEs sent, pipelined with QUIT: the server removes messages at QUIT anyway, so
//! deleting earlier would gain nothing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::commit::{self, AccountLock, Delivery, Identity};
use super::config::{Account, Config, CredentialSource, Keep};
pub use super::error::FetchError;
pub use super::exit;
use super::journal::{Journal, JournalError};
use super::store::{self, MailStore, StoreError, StoreOptions};
use crate::net::blocking::BlockingClient;
use crate::net::{ConnectOptions, NetError};
use crate::proto::{AuthMethod, Credential, MessageNumber, ResponseCode, Security};

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
    /// How long to wait when another run is fetching the same account; after that the run
    /// gives up with [`FetchError::Locked`]. Zero: give up at once.
    pub lock_wait: Duration,
    /// UIDs to leave on the server untouched (quarantined messages, see
    /// [`super::quarantine`]); counted in [`AccountSummary::skipped_quarantined`].
    pub skip_uids: HashSet<String>,
    /// Cancels the session's network calls from another thread (a service's stop deadline).
    /// One per session: once cancelled, every later call fails too.
    pub canceller: Option<crate::net::Canceller>,
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
            lock_wait: Duration::ZERO,
            skip_uids: HashSet::new(),
            canceller: None,
        }
    }

    /// `$XDG_STATE_HOME/popwire`, else `~/.local/state/popwire`.
    pub fn default_state_dir() -> Option<PathBuf> {
        super::private_fs::default_state_dir()
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
        /// Their size in octets, as received.
        bytes: u64,
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
    /// Messages the MDA refused for good, left on the server: each with its UID (or number)
    /// and the MDA's error. The rest of the mailbox was fetched all the same.
    pub refused: Vec<(String, String)>,
    /// Messages left on the server in keep mode because the server gives them no usable UID
    /// (none, or one it gives another message too): popwire could not tell next time that it
    /// has them already.
    pub skipped_unidentified: usize,
    /// Messages left on the server because they exceed `max_message_size`.
    pub skipped_too_large: usize,
    /// Messages left on the server that were stored before (keep mode).
    pub kept: usize,
    /// Sessions used (more than one when the server caps a session).
    pub sessions: usize,
    /// Messages left on the server because their UID is in [`FetchOptions::skip_uids`].
    pub skipped_quarantined: usize,
    /// The server's `LOGIN-DELAY` capability (RFC 2449), as of the last session.
    pub login_delay: Option<Duration>,
    /// The server's `EXPIRE` capability (RFC 2449), as of the last session.
    pub expire: Option<crate::proto::Expire>,
    /// Every UID the server listed in the last session (to tidy per-UID state kept elsewhere).
    pub present_uids: Vec<String>,
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
    o.security = account.security;
    // `security = "none"` is the user's explicit choice of cleartext.
    o.engine.allow_cleartext_password = account.security == Security::None;
    // One odd UID (too long, 8-bit) must not stop a whole mailbox from being fetched.
    o.engine.lenient_uids = true;
    o.ca_file = account.ca_file.clone();
    o.timeout = account.timeout;
    o.connect_timeout = account.timeout;
    if let CredentialSource::OAuth(oauth) = &account.credential {
        o.engine.sasl_initial_response = oauth.sasl_initial_response;
    }
    o
}

/// Opens and logs in to an account's server.
pub fn login(account: &Account) -> Result<BlockingClient, FetchError> {
    login_cancellable(account, None)
}

/// [`login`], cancellable from another thread (see [`FetchOptions::canceller`]).
pub fn login_cancellable(
    account: &Account,
    canceller: Option<&crate::net::Canceller>,
) -> Result<BlockingClient, FetchError> {
    let secret = account.credential.resolve()?;
    match login_with(account, secret, canceller) {
        // A token the server refuses although it has not expired was revoked early (a
        // password change, a security event): one refresh tells a new token from a revoked
        // grant, which then asks for `popwire auth login`.
        #[cfg(feature = "oauth")]
        Err(FetchError::Net(e)) if e.is_auth_failure() => match &account.credential {
            CredentialSource::OAuth(config) => {
                let fresh = super::oauth::refresh_now(config)
                    .map_err(super::secret_source::CredentialError::from)?;
                login_with(account, fresh, canceller)
            }
            _ => Err(FetchError::Net(e)),
        },
        other => other,
    }
}

fn login_with(
    account: &Account,
    secret: crate::proto::Secret,
    canceller: Option<&crate::net::Canceller>,
) -> Result<BlockingClient, FetchError> {
    let credential = if account.credential.is_token() {
        Credential::Token(secret)
    } else {
        Credential::Password(secret)
    };
    let method = AuthMethod::from(account.auth);
    let mut client = match canceller {
        Some(c) => BlockingClient::connect_cancellable(connect_options(account), c)?,
        None => BlockingClient::connect(connect_options(account))?,
    };
    client.authenticate(&account.username, credential, method)?;
    Ok(client)
}

/// The account's journal: `NAME~USER@SERVER~PORT.uids`, every byte outside `[A-Za-z0-9._-]`
/// written `%XX`, so that two accounts never share a journal (the port and the login are part of
/// which mailbox it is) and pointing an account at another server starts afresh. A name too long
/// for a file system ends in a SHA-256 of the whole instead.
pub fn journal_path(state_dir: &Path, account: &Account) -> PathBuf {
    state_dir.join(format!("{}.uids", journal_key(account)))
}

/// Which mailbox an account is, as one string: the journal's file name without `.uids` (see
/// [`journal_path`]). Stable across releases; `--shard` hashes it.
pub fn journal_key(account: &Account) -> String {
    let mut name = String::new();
    for (i, part) in [
        account.name.as_str(),
        account.username.as_str(),
        account.server.as_str(),
        &account.port.to_string(),
    ]
    .into_iter()
    .enumerate()
    {
        name.push_str(["", "~", "@", "~"].get(i).copied().unwrap_or(""));
        for byte in part.bytes() {
            if byte.is_ascii_alphanumeric() || b"._-".contains(&byte) {
                name.push(char::from(byte));
            } else {
                name.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    const MAX: usize = 200;
    if name.len() > MAX {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(name.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let head: String = name.chars().take(MAX - hex.len() - 1).collect();
        name = format!("{head}~{hex}");
    }
    name
}

/// Where popwire before 0.2 kept the journal (`NAME@SERVER.uids`, escaping lossily).
fn legacy_journal_path(state_dir: &Path, account: &Account) -> PathBuf {
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

/// How the account's store is opened: its locks and timeouts, and the password's variable kept
/// from an MDA.
fn store_options(account: &Account, journal: &Path) -> StoreOptions {
    let mut options = account.store.clone();
    let mut spool = journal.as_os_str().to_owned();
    spool.push(".spool");
    options.spool_dir = Some(PathBuf::from(spool));
    if let CredentialSource::PasswordEnv(name) = &account.credential {
        options.hidden_env.push(name.clone());
    }
    options
}

/// Fetches one account until its mailbox is drained (or nothing new remains).
pub fn fetch_account(
    account: &Account,
    options: &FetchOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<AccountSummary, FetchError> {
    super::private_fs::create_private_dir_durably(&options.state_dir).map_err(|e| {
        StoreError::Io {
            action: "create the state directory",
            path: options.state_dir.clone(),
            source: e,
        }
    })?;
    let path = journal_path(&options.state_dir, account);
    let _lock = AccountLock::acquire(&commit::lock_path(&path), &account.name, options.lock_wait)?;
    let legacy = legacy_journal_path(&options.state_dir, account);
    if !path.exists() && legacy.is_file() {
        super::sys::rename(&legacy, &path).map_err(|source| JournalError::Io {
            path: legacy.clone(),
            action: "rename it to its new name",
            source,
        })?;
    }
    let mut journal = Journal::open(&path)?;
    let mut store = store::open_with(&account.destination, &store_options(account, &path))?;
    // A crash left published-or-not messages: finish them before anything is deleted.
    commit::recover(store.as_mut(), &mut journal)?;
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
pub(crate) fn pipeline_window(messages: usize, bytes: u64) -> usize {
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

fn session(
    account: &Account,
    options: &FetchOptions,
    journal: &mut Journal,
    store: &mut dyn MailStore,
    summary: &mut AccountSummary,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<SessionEnd, FetchError> {
    let name = account.name.as_str();
    let mut pop = login_cancellable(account, options.canceller.as_ref())?;
    summary.login_delay = pop.capabilities().login_delay().map(Duration::from_secs);
    summary.expire = pop.capabilities().expire();
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
    let mut uid_counts: HashMap<&str, usize> = HashMap::new();
    for u in &uidls {
        *uid_counts.entry(u.uid.as_str()).or_default() += 1;
    }
    let uid_index: HashMap<MessageNumber, &str> = uidls
        .iter()
        .filter(|u| uid_counts.get(u.uid.as_str()) == Some(&1))
        .map(|u| (u.number, u.uid.as_str()))
        .collect();
    let sizes: HashMap<MessageNumber, u64> = listing.iter().map(|e| (e.number, e.size)).collect();
    // What identifies a message across sessions: its UID and its listed size.
    let identity = |n: MessageNumber| {
        Some(Identity {
            uid: uid_index.get(&n).copied()?,
            size: *sizes.get(&n)?,
        })
    };

    let now = now();
    let mut refused = Vec::new();
    let mut wanted = Vec::new();
    let mut wanted_bytes = 0u64;
    let mut to_delete = Vec::new();
    for entry in &listing {
        let uid = uid_index.get(&entry.number).copied();
        let seen = uid.is_some_and(|u| journal.contains_message(u, entry.size));
        if !seen && uid.is_some_and(|u| options.skip_uids.contains(u)) {
            summary.skipped_quarantined += 1;
        } else if seen {
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
        } else if let Some(cap) = account.destination.size_cap().filter(|&c| entry.size > c) {
            // Over what the destination takes (Gmail's import cap): never fetched, reported.
            let uid = uid.map_or_else(|| format!("#{}", entry.number), str::to_owned);
            refused.push((
                uid.clone(),
                format!(
                    "account {name}: message {uid} is {} octets, over the destination's cap of {cap} octets; it stays on the POP server",
                    entry.size
                ),
            ));
        } else if uid.is_none() && account.keep != Keep::Delete {
            // Kept on the server but unrecognisable next time: fetching it would store it again
            // on every run, so it is left alone (and reported).
            summary.skipped_unidentified += 1;
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
    let mut delivery = Delivery::new(store, journal, now, options.batch, options.batch_bytes);
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
        delivery.label(&identity(number).map_or_else(|| format!("#{number}"), |i| i.uid.into()));
        let mut draft = delivery.draft()?;
        let copied = body.copy_to(&mut draft).map_err(|e| match e {
            NetError::Sink { source } if source.get_ref().is_some_and(|r| r.is::<StoreError>()) => {
                FetchError::Store(StoreError::from(source))
            }
            other => FetchError::Net(other),
        })?;
        let Ok(octets) = copied else {
            // Deleted by another client meanwhile, or the server failed: leave it there.
            drop(draft);
            return Ok(());
        };
        let finished = match draft.finish() {
            Ok(finished) => finished,
            // One message the MDA will never take must not hold up the rest of the mailbox.
            Err(e) if e.is_message_refused() => {
                let uid = identity(number).map_or_else(|| format!("#{number}"), |i| i.uid.into());
                refused.push((uid, e.to_string()));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        progress(Progress::Message {
            account: name,
            bytes: octets,
        });
        let before = delivery.committed_bytes();
        match delivery.finished(number, identity(number), finished, octets) {
            Ok(Some(count)) => progress(Progress::Committed {
                account: name,
                count,
                bytes: delivery.committed_bytes().saturating_sub(before),
            }),
            Ok(None) => {}
            // A remote destination refused this message alone (Gmail's 400, 413).
            Err(FetchError::Store(e)) if e.is_message_refused() => {
                let uid = identity(number).map_or_else(|| format!("#{number}"), |i| i.uid.into());
                refused.push((uid, e.to_string()));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    });
    // Whatever ended the stream, the messages received whole are committed: not fetched again.
    let before = delivery.committed_bytes();
    let last = delivery.commit();
    if last.is_err() || retrieved.is_err() {
        delivery.abandon();
    }
    if let Ok(count) = last
        && count > 0
    {
        progress(Progress::Committed {
            account: name,
            count,
            bytes: delivery.committed_bytes().saturating_sub(before),
        });
    }
    let committed = delivery.committed().to_vec();
    summary.fetched += committed.len();
    summary.bytes += delivery.committed_bytes();
    summary.refused.append(&mut refused);
    drop(delivery);
    // The connection is dropped without QUIT on failure: the server deletes nothing, and the
    // next run deletes what the journal now holds.
    retrieved?;
    last?;

    if account.keep == Keep::Delete {
        to_delete.extend_from_slice(&committed);
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
        // The server confirmed QUIT, so these messages are gone. Forget their UIDs at once: a
        // server that hands one out again means another message by it, which must be fetched.
        journal.forget(
            to_delete
                .iter()
                .zip(&outcomes)
                .filter(|(_, outcome)| outcome.is_ok())
                .filter_map(|(number, _)| uid_index.get(number).copied()),
        );
    }
    summary.present_uids = uidls.iter().map(|u| u.uid.clone()).collect();
    // Forget UIDs the server no longer has, so the journal does not grow forever.
    let present: HashSet<&str> = uidls.iter().map(|u| u.uid.as_str()).collect();
    if !present.is_empty() {
        journal.retain_only(&present);
    }
    journal.save_if_changed()?;
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
    fn journal_names_tell_every_account_apart() {
        let config = super::super::config::parse(
            "[accounts.a]\nemail = \"me@example.com\"\npassword = \"x\"\nserver = \"pop.example.com\"\nmaildir = \"/m\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let base = config.account("a").unwrap().clone();
        let dir = Path::new("/state");
        let path = |f: &dyn Fn(&mut Account)| {
            let mut account = base.clone();
            f(&mut account);
            journal_path(dir, &account)
        };
        let names = [
            path(&|_| {}),
            path(&|a| a.port = 1995),
            path(&|a| a.username = "other@example.com".into()),
            // Names that the old escaping made equal ("_" for both).
            path(&|a| a.name = "a b".into()),
            path(&|a| a.name = "a_b".into()),
            path(&|a| a.name = "a/b".into()),
        ];
        let distinct: HashSet<&PathBuf> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert_eq!(
            names[0],
            Path::new("/state/a~me%40example.com@pop.example.com~995.uids")
        );
        for name in &names {
            assert_eq!(name.parent(), Some(dir), "{name:?}");
        }
        let long = path(&|a| a.name = "x".repeat(500));
        let file = long.file_name().unwrap().to_str().unwrap();
        assert!(file.len() <= 210 && file.ends_with(".uids"), "{file}");
    }

    #[test]
    fn only_gmail_caps_sessions() {
        assert!(caps_sessions("pop.gmail.com"));
        assert!(caps_sessions("POP.GoogleMail.com."));
        assert!(!caps_sessions("notgmail.com"));
        assert!(!caps_sessions("pop.example.org"));
    }
}

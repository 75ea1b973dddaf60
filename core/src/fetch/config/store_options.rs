//! How an account's store behaves beyond where it is ([`StoreOptions`]): config data, kept here
//! so that the config does not import the stores it describes (they import it).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How long one message may take an MDA when the account sets no `mda_timeout`.
pub const DEFAULT_MDA_TIMEOUT: Duration = Duration::from_secs(300);

/// A kind of mbox lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKind {
    /// `FILE.lock`, created exclusively: what procmail, mutt and Python's `mailbox` take.
    Dotlock,
    /// A POSIX record lock over the whole file (`fcntl`/`lockf`): procmail, Postfix, mutt,
    /// Python's `mailbox`.
    Fcntl,
    /// A BSD `flock`: mutt (optional), Dovecot (configurable), older popwire.
    Flock,
}

impl LockKind {
    /// Every kind: the default, so no program that locks at all can write at the same time.
    pub const ALL: [LockKind; 3] = [LockKind::Dotlock, LockKind::Fcntl, LockKind::Flock];

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dotlock => "dotlock",
            Self::Fcntl => "fcntl",
            Self::Flock => "flock",
        }
    }
}

impl FromStr for LockKind {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
            .ok_or(())
    }
}

/// How an account's store behaves, beyond where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The locks an mbox is appended under (`mbox_lock`): all of [`LockKind::ALL`] by default.
    pub mbox_locks: Vec<LockKind>,
    /// How long an MDA may take for one message (`mda_timeout`).
    pub mda_timeout: std::time::Duration,
    /// Environment variables an MDA must not inherit (the one named by `password_env`).
    pub hidden_env: Vec<String>,
    /// Where an IMAP destination stages messages before APPEND (the fetch sets one beside the
    /// account's journal; else a folder under the default state directory).
    pub spool_dir: Option<PathBuf>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            mbox_locks: LockKind::ALL.to_vec(),
            mda_timeout: DEFAULT_MDA_TIMEOUT,
            hidden_env: Vec::new(),
            spool_dir: None,
        }
    }
}

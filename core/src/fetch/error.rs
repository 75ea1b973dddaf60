//! Why an account could not be fetched ([`FetchError`]), mapped to the sysexits(3) codes of
//! [`exit`]: the one error of the fetch job, the commit protocol, the poller and the service, kept apart
//! from all of them so that none imports another for it.

use std::path::PathBuf;

use super::exit;
use super::journal::JournalError;
use super::secret_source::CredentialError;
use super::store::StoreError;
use crate::net::NetError;
use crate::proto::ErrorClass;

/// Why an account could not be fetched. Each variant says what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// Another run is fetching this account.
    #[error(
        "account {account}: another popwire is fetching it (lock {} is held); try again later, or pass --wait",
        path.display()
    )]
    Locked {
        /// The account.
        account: String,
        /// The lock file.
        path: PathBuf,
    },
}

impl FetchError {
    /// The one classification every front end branches on (see [`ErrorClass`]): the network
    /// side's own class, `storage` for the mail store, the journal and a busy account,
    /// `config` for credentials and a server without UIDL, `cancelled`.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            FetchError::Net(e) => e.class(),
            FetchError::Credential(e) => e.class(),
            #[cfg(feature = "gmail")]
            FetchError::Store(StoreError::Gmail(e)) => e.class(),
            FetchError::NoUidl => ErrorClass::Config,
            #[cfg(feature = "imap")]
            FetchError::Store(StoreError::Imap(e)) => e.class(),
            FetchError::Store(_) | FetchError::Journal(_) | FetchError::Locked { .. } => {
                ErrorClass::Storage
            }
            FetchError::Cancelled => ErrorClass::Cancelled,
        }
    }

    /// True when running again later, with nothing changed, may succeed: what the exit status
    /// 75 says to cron and the service's backoff.
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        self.exit_code() == exit::TEMPFAIL
    }

    /// The sysexits code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            FetchError::Credential(e) => e.exit_code(),
            FetchError::Net(e) if e.is_auth_failure() => exit::NOPERM,
            FetchError::Net(e) if e.is_temporary() => exit::TEMPFAIL,
            FetchError::Net(NetError::CaFile { .. }) => exit::CONFIG,
            FetchError::Net(NetError::Pop3(crate::proto::Error::Policy(_))) => exit::UNAVAILABLE,
            FetchError::Net(_) => exit::UNAVAILABLE,
            #[cfg(feature = "imap")]
            FetchError::Store(StoreError::Imap(e)) if e.is_auth_failure() => exit::NOPERM,
            #[cfg(feature = "imap")]
            FetchError::Store(StoreError::Imap(e)) if e.class() == ErrorClass::Tls => {
                exit::UNAVAILABLE
            }
            #[cfg(feature = "gmail")]
            FetchError::Store(StoreError::Gmail(e)) => e.exit_code(),
            FetchError::Store(e) if e.is_temporary() => exit::TEMPFAIL,
            FetchError::Journal(e) if e.is_disk_full() => exit::TEMPFAIL,
            FetchError::Store(_) | FetchError::Journal(_) => exit::IOERR,
            FetchError::NoUidl => exit::UNAVAILABLE,
            FetchError::Cancelled | FetchError::Locked { .. } => exit::TEMPFAIL,
        }
    }
}

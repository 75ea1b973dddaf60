//! The fetch job: download an account's new messages into a Maildir, with progress reports,
//! cancellation and a summary. `FetchJob(account, destination)`, then `run(progress)`;
//! `cancel()` from anywhere stops it between messages (what was stored is committed).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use popwire::fetch::config::{self, AuthChoice, CredentialSource, Destination, Keep};
use popwire::fetch::{FetchOptions, Progress};
use popwire::proto::Secret;

use crate::errors::PopError;
use crate::types::Security;

/// One mail account to fetch from.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Account {
    /// A name for reports and the UID journal (one journal per name).
    pub name: String,
    /// The login name.
    pub username: String,
    /// The password.
    pub password: String,
    /// The POP3 server.
    pub server: String,
    /// The port; 0: 995 for TLS, 110 otherwise.
    #[uniffi(default = 0)]
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// A PEM file of CA certificates to trust instead of the system roots.
    #[uniffi(default = None)]
    pub ca_file: Option<String>,
    /// Leave the messages on the server (else they are deleted once stored).
    #[uniffi(default = false)]
    pub keep: bool,
    /// Skip messages larger than this many octets.
    #[uniffi(default = None)]
    pub max_message_size: Option<u64>,
    /// Longest wait for the server, in milliseconds.
    #[uniffi(default = 60000)]
    pub timeout_ms: u64,
}

/// One progress report.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum FetchProgress {
    /// Connected and logged in.
    LoggedIn {
        /// True over TLS.
        tls: bool,
    },
    /// The listing is known.
    Listed {
        /// Messages on the server.
        total: u64,
        /// Messages to download now.
        new: u64,
        /// Their total size.
        new_bytes: u64,
    },
    /// One message was downloaded (durable at the next `Committed`).
    Message {
        /// Its size.
        bytes: u64,
    },
    /// A batch was stored durably and recorded.
    Committed {
        /// Messages in the batch.
        count: u64,
    },
    /// Messages were deleted from the server.
    Deleted {
        /// How many.
        count: u64,
    },
}

/// Receives progress reports (on the job's worker thread).
#[uniffi::export(with_foreign)]
pub trait FetchListener: Send + Sync {
    /// One report.
    fn on_progress(&self, progress: FetchProgress);
}

/// What a run did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FetchSummary {
    /// Messages stored.
    pub fetched: u64,
    /// Their octets.
    pub bytes: u64,
    /// Messages deleted from the server.
    pub deleted: u64,
    /// Messages skipped as too large.
    pub skipped_too_large: u64,
    /// Messages left on the server on purpose.
    pub kept: u64,
    /// POP3 sessions used.
    pub sessions: u64,
}

/// A fetch of one account into a Maildir.
#[derive(uniffi::Object)]
pub struct FetchJob {
    account: Account,
    destination: PathBuf,
    state_dir: PathBuf,
    cancel: Arc<AtomicBool>,
    batch: AtomicU32,
}

#[uniffi::export]
impl FetchJob {
    /// A job storing into the Maildir `destination` (created if missing). The UID journal goes
    /// to `destination/.popwire-state`.
    #[uniffi::constructor]
    pub fn new(account: Account, destination: String) -> Arc<Self> {
        let destination = PathBuf::from(destination);
        Arc::new(Self {
            account,
            state_dir: destination.join(".popwire-state"),
            destination,
            cancel: Arc::default(),
            batch: AtomicU32::new(0),
        })
    }

    /// Stops a running (or the next) `run` between messages; it then throws `Cancelled`.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Messages stored per commit (0: the core's default, 256). Cancellation takes effect
    /// between batches, so a small batch stops sooner (at the cost of more fsyncs).
    pub fn set_batch_size(&self, messages: u32) {
        self.batch.store(messages, Ordering::SeqCst);
    }

    /// Runs the job on a worker thread; progress goes to `listener`.
    pub async fn run(&self, listener: Arc<dyn FetchListener>) -> Result<FetchSummary, PopError> {
        let account = core_account(&self.account, &self.destination);
        let mut options = FetchOptions::new(self.state_dir.clone());
        options.cancel = Some(self.cancel.clone());
        let batch = self.batch.load(Ordering::SeqCst);
        if batch > 0 {
            options.batch = batch as usize;
        }
        blocking::unblock(move || {
            let summary = popwire::fetch::fetch_account(&account, &options, &mut |p| {
                listener.on_progress(progress(p));
            })?;
            Ok(FetchSummary {
                fetched: summary.fetched as u64,
                bytes: summary.bytes,
                deleted: summary.deleted as u64,
                skipped_too_large: summary.skipped_too_large as u64,
                kept: summary.kept as u64,
                sessions: summary.sessions as u64,
            })
        })
        .await
    }
}

fn progress(p: Progress<'_>) -> FetchProgress {
    match p {
        Progress::LoggedIn { tls, .. } => FetchProgress::LoggedIn { tls },
        Progress::Listed {
            total,
            new,
            new_bytes,
            ..
        } => FetchProgress::Listed {
            total: total as u64,
            new: new as u64,
            new_bytes,
        },
        Progress::Message { bytes, .. } => FetchProgress::Message { bytes },
        Progress::Committed { count, .. } => FetchProgress::Committed {
            count: count as u64,
        },
        Progress::Deleted { count, .. } => FetchProgress::Deleted {
            count: count as u64,
        },
    }
}

fn core_account(a: &Account, destination: &std::path::Path) -> config::Account {
    let security = match a.security {
        Security::Tls => config::Security::Tls,
        Security::StartTls => config::Security::StartTls,
        Security::None => config::Security::None,
    };
    let port = if a.port != 0 {
        a.port
    } else if a.security == Security::Tls {
        995
    } else {
        110
    };
    config::Account {
        name: a.name.clone(),
        email: a.username.clone(),
        username: a.username.clone(),
        credential: CredentialSource::Password(Secret::new(a.password.clone())),
        server: a.server.clone(),
        port,
        security,
        ca_file: a.ca_file.as_ref().map(PathBuf::from),
        auth: AuthChoice::Auto,
        keep: if a.keep { Keep::Forever } else { Keep::Delete },
        destination: Destination::Maildir(destination.to_path_buf()),
        max_message_size: a.max_message_size,
        timeout: Duration::from_millis(a.timeout_ms.max(1)),
        store: Default::default(),
        poll: None,
    }
}

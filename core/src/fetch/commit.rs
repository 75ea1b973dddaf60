//! The commit protocol: how a message moves from the POP3 stream into a destination so that it
//! is never lost and never stored twice, whatever fails and whenever the process dies.
//!
//! The journal is the commit point. For each batch:
//! 1. a store that writes where readers see it (mbox) takes its locks and its write-ahead mark
//!    goes into the journal, before any byte of the batch is written ([`MailStore::begin`]);
//! 2. each message is streamed into a draft and finished. A message the store already holds
//!    (an mbox append, an MDA's exit status 0) is journaled at once, without an fsync;
//! 3. [`MailStore::prepare`] makes the batch durable and hands out receipts for what is still
//!    invisible (Maildir files in `tmp/`);
//! 4. those receipts are appended to the journal and the journal is fsynced: *the commit point*;
//! 5. [`MailStore::publish`] makes the batch visible (Maildir renames into `new/`);
//! 6. the journal marks the batch published (no fsync: a lost mark only means checking again).
//!
//! Only committed messages may be deleted from the server. After any failure in steps 3-5 the
//! batch is left as it is, nothing more is committed in that session, and the next run's
//! [`recover`] finishes or undoes it from the journal before anything is deleted.
//!
//! The whole account session (recovery, fetch, journal writes) runs under an [`AccountLock`],
//! so two runs of one account (cron and a terminal, a service and a manual run) never interleave.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::FetchError;
use super::journal::{Delivered, Journal};
use super::store::{Draft, Finished, MailStore, StoreError};
use super::sys;
use crate::proto::MessageNumber;

/// An exclusive lock on one account, held for a whole fetch of it. The operating system drops
/// it when the process ends, however it ends, so a crash never leaves the account locked.
#[derive(Debug)]
pub struct AccountLock {
    _file: File,
}

impl AccountLock {
    /// Takes the lock in `path` (a file beside the account's journal), waiting up to `wait` for
    /// another run to finish; after that, [`FetchError::Locked`] names the account.
    pub fn acquire(path: &Path, account: &str, wait: Duration) -> Result<Self, FetchError> {
        let io_error = |source| StoreError::Io {
            action: "open the account lock",
            path: path.to_owned(),
            source,
        };
        let file = sys::open_append(path, true).map_err(io_error)?;
        let deadline = Instant::now() + wait;
        loop {
            sys::check(sys::Op::Lock).map_err(io_error)?;
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(FetchError::Locked {
                        account: account.to_owned(),
                        path: path.to_owned(),
                    });
                }
                Err(std::fs::TryLockError::Error(source)) => return Err(io_error(source).into()),
            }
        }
    }
}

/// After a crash: finishes or undoes what the journal says was under way (pending receipts,
/// write-ahead marks), then lets the store tidy up. Must run before anything is deleted.
pub fn recover(store: &mut dyn MailStore, journal: &mut Journal) -> Result<(), FetchError> {
    if !journal.pending().is_empty() || !journal.marks().is_empty() {
        let receipts: Vec<String> = journal.pending().iter().map(|(_, r)| r.clone()).collect();
        let marks = journal.marks().to_vec();
        let delivered = super::store::recover(store, &receipts, &marks)?;
        // Delivered remotely, then the crash came before the journal line: record them now,
        // durably, before settling drops the marks that led to them.
        let found = store.take_recovered();
        if !found.is_empty() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            journal.append_delivered(
                found.iter().map(|r| Delivered {
                    uid: &r.uid,
                    size: Some(r.size),
                    receipt: None,
                }),
                now,
            )?;
        }
        journal.settle_pending(&delivered)?;
    }
    store.tidy()?;
    Ok(())
}

/// A message's identity across sessions: its UID and its size as the server listed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'u> {
    /// The UID.
    pub uid: &'u str,
    /// The listed size.
    pub size: u64,
}

/// One session's deliveries into a store, batch by batch (see the module docs).
pub struct Delivery<'s> {
    store: &'s mut dyn MailStore,
    journal: &'s mut Journal,
    now: u64,
    batch_messages: usize,
    batch_bytes: u64,
    /// Finished, awaiting their receipts from `prepare`.
    staged: Vec<(MessageNumber, Option<(String, u64)>)>,
    /// Finished and already journaled (the store held them at once), not yet durable.
    stored: Vec<MessageNumber>,
    /// Octets of the open batch.
    open_bytes: u64,
    committed: Vec<MessageNumber>,
    committed_bytes: u64,
    /// A step failed: the open batch stays for recovery and nothing more is committed.
    broken: bool,
    /// A write-ahead mark was journaled for the open batch.
    marked: bool,
}

impl<'s> Delivery<'s> {
    /// Deliveries into `store`, journaled in `journal` as stored at `now` (UNIX seconds); a batch
    /// commits at `batch_messages` messages or `batch_bytes` octets, whichever comes first.
    pub fn new(
        store: &'s mut dyn MailStore,
        journal: &'s mut Journal,
        now: u64,
        batch_messages: usize,
        batch_bytes: u64,
    ) -> Self {
        Self {
            store,
            journal,
            now,
            batch_messages: batch_messages.max(1),
            batch_bytes,
            staged: Vec::new(),
            stored: Vec::new(),
            open_bytes: 0,
            committed: Vec::new(),
            committed_bytes: 0,
            broken: false,
            marked: false,
        }
    }

    /// Names the next message (its POP UID) for a store whose errors must say which message
    /// it refused.
    pub fn label(&mut self, message: &str) {
        self.store.label(message);
    }

    /// Starts the next message.
    pub fn draft(&mut self) -> Result<Box<dyn Draft + '_>, FetchError> {
        self.check_usable()?;
        match self.store.begin() {
            Ok(Some(mark)) => {
                self.marked = true;
                if let Err(e) = self.journal.write_ahead(&mark) {
                    self.broken = true;
                    return Err(e.into());
                }
            }
            Ok(None) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(self.store.draft()?)
    }

    /// Records a finished message. Returns the size of the batch when this message completed
    /// one and it was committed.
    ///
    /// For [`Finished::Outbound`], first journals the intent (fsynced) and has the store
    /// deliver; a delivery error that leaves the message where it was (a refusal, a 429) comes
    /// back as is and the session may go on; one that may hide a delivery keeps the intent for
    /// recovery and breaks the session.
    pub fn finished(
        &mut self,
        number: MessageNumber,
        identity: Option<Identity<'_>>,
        mut finished: Finished,
        octets: u64,
    ) -> Result<Option<usize>, FetchError> {
        self.check_usable()?;
        let outbound = matches!(finished, Finished::Outbound { .. });
        if let Finished::Outbound { intent } = &finished {
            finished = self.deliver(intent, identity)?;
        }
        match finished {
            Finished::Staged => self
                .staged
                .push((number, identity.map(|i| (i.uid.to_owned(), i.size)))),
            Finished::Stored { receipt } => {
                if let Some(Identity { uid, size }) = identity {
                    let delivered = Delivered {
                        uid,
                        size: Some(size),
                        receipt,
                    };
                    if let Err(e) = self.journal.record_delivered(delivered, self.now) {
                        self.broken = true;
                        return Err(e.into());
                    }
                }
                self.stored.push(number);
                if outbound {
                    // The intent is settled by the receipt line above.
                    let _ = self.journal.void_marks();
                }
            }
            Finished::Outbound { .. } => {}
        }
        self.open_bytes = self.open_bytes.saturating_add(octets);
        let open = self.staged.len() + self.stored.len();
        if open >= self.batch_messages || self.open_bytes >= self.batch_bytes {
            return self.commit().map(Some);
        }
        Ok(None)
    }

    /// Journals an outbound intent durably, then delivers (see [`finished`](Self::finished)).
    fn deliver(
        &mut self,
        intent: &str,
        identity: Option<Identity<'_>>,
    ) -> Result<Finished, FetchError> {
        if let Some(Identity { uid, size }) = identity {
            let mark = super::store::outbound_mark(intent, uid, size);
            if let Err(e) = self
                .journal
                .write_ahead(&mark)
                .and_then(|()| self.journal.sync())
            {
                self.broken = true;
                return Err(e.into());
            }
        }
        match self.store.deliver() {
            Ok(receipt) => Ok(Finished::Stored { receipt }),
            Err(e) if e.is_in_doubt() => {
                self.broken = true;
                Err(e.into())
            }
            Err(e) => {
                let _ = self.journal.void_marks();
                Err(e.into())
            }
        }
    }

    /// Commits the open batch (steps 3-6); returns how many messages it held. After a failure
    /// anywhere in this session, commits nothing and returns 0: the first error has been
    /// reported, and recovery will settle the batch.
    pub fn commit(&mut self) -> Result<usize, FetchError> {
        if self.broken {
            return Ok(0);
        }
        let count = self.staged.len() + self.stored.len();
        if count == 0 {
            // A batch whose only message was cut off again: close it, so its mark cannot
            // later be taken to cover what other programs append.
            if self.marked {
                self.abandon();
            }
            return Ok(0);
        }
        if let Err(e) = self.commit_steps() {
            self.broken = true;
            return Err(e);
        }
        // Only an optimisation: a lost mark means the next start checks the receipts again.
        let _ = self.journal.mark_published();
        self.marked = false;
        self.committed
            .extend(self.staged.drain(..).map(|(number, _)| number));
        self.committed.append(&mut self.stored);
        self.committed_bytes = self.committed_bytes.saturating_add(self.open_bytes);
        self.open_bytes = 0;
        Ok(count)
    }

    fn commit_steps(&mut self) -> Result<(), FetchError> {
        let receipts = self.store.prepare()?;
        if receipts.len() != self.staged.len() {
            // A store broke its contract: receipts cannot be matched to messages.
            return Err(FetchError::Store(StoreError::Other(std::io::Error::other(
                format!(
                    "the store returned {} receipts for {} messages",
                    receipts.len(),
                    self.staged.len()
                ),
            ))));
        }
        // The commit point: the receipts, and every line journaled since the last batch.
        self.journal.append_delivered(
            self.staged
                .iter()
                .zip(receipts)
                .filter_map(|((_, identity), receipt)| {
                    identity.as_ref().map(|(uid, size)| Delivered {
                        uid,
                        size: Some(*size),
                        receipt: Some(receipt),
                    })
                }),
            self.now,
        )?;
        self.store.publish()?;
        // Only informative (where each message went), so a failure to write it is no failure.
        let places = self.store.take_places();
        let _ =
            self.journal
                .record_places(self.staged.iter().zip(places).filter_map(
                    |((_, identity), place)| Some((identity.as_ref()?.0.as_str(), place?)),
                ));
        Ok(())
    }

    /// Rolls back what is not committed, at the end of a session that failed: when the store
    /// is then exactly as at its last commit, the batch's write-ahead mark is voided, so that
    /// recovery never takes bytes another program appends later for the failed batch's.
    pub fn abandon(&mut self) {
        if self.store.rollback() {
            let _ = self.journal.void_marks();
        }
        self.marked = false;
    }

    fn check_usable(&self) -> Result<(), FetchError> {
        if self.broken {
            return Err(FetchError::Store(StoreError::Other(std::io::Error::other(
                "an earlier commit failed in this session",
            ))));
        }
        Ok(())
    }

    /// Messages committed in this session, which may now be deleted from the server.
    pub fn committed(&self) -> &[MessageNumber] {
        &self.committed
    }

    /// Their size in octets, as stored.
    pub fn committed_bytes(&self) -> u64 {
        self.committed_bytes
    }
}

/// The lock file of the account whose journal is `journal`.
pub fn lock_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

//! Mail stores with group commit: Maildir, mbox (mboxrd), an external MDA, and (feature
//! `gmail`) Gmail's import API, whose one remote call per message goes through
//! [`Finished::Outbound`] and [`MailStore::deliver`].
//!
//! A fetch streams each message into a [`Draft`] (never whole in memory), [`finish`](Draft::finish)es
//! it to stage it, and after a batch commits the group in two steps: [`MailStore::prepare`] makes
//! every staged message durable with as few syncs as possible and hands out receipts, which the
//! fetch writes to its journal; [`MailStore::publish`] then makes them visible. Only after that may
//! the fetch delete the messages from the server. A crash between the two steps is finished by
//! [`MailStore::recover`] from the journal's receipts, so a message is neither lost nor delivered
//! twice (for Maildir; an mbox or MDA delivery that crashes before its journal entry is written
//! is fetched again).
//!
//! ```no_run
//! # fn main() -> Result<(), popwire::fetch::store::StoreError> {
//! use std::io::Write;
//! use popwire::fetch::config::Destination;
//! let mut store = popwire::fetch::store::open(&Destination::Maildir("/home/u/Mail".into()))?;
//! let mut draft = store.draft()?;
//! draft.write_all(b"Subject: hi\r\n\r\nhello\r\n")?;
//! draft.finish()?;
//! assert_eq!(store.commit()?, 1);
//! # Ok(()) }
//! ```
//!
//! Messages are stored with LF line endings, not the CRLF POP3 sends: local mail readers (mutt,
//! mail, Emacs), mbox tools and MDAs (procmail, maildrop) expect Unix files, and mpop, getmail
//! and fetchmail convert too. Conversion is streaming and survives a CR at the end of one write
//! and its LF at the start of the next. A lone CR not followed by LF is kept.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use thiserror::Error;

use super::config::Destination;

#[cfg(feature = "gmail")]
pub mod gmail;
pub mod handler;
#[cfg(feature = "imap")]
pub mod imap;
mod maildir;
mod mbox;
mod mda;

pub use super::config::{DEFAULT_MDA_TIMEOUT, LockKind, StoreOptions};
#[cfg(feature = "gmail")]
pub use gmail::{Gmail, GmailError};
pub use handler::HandlerStore;
pub use maildir::Maildir;
pub use mbox::{DEFAULT_LOCK_TIMEOUT, Mbox};
pub use mda::Mda;

/// A place messages are delivered to: the destination half of the commit protocol
/// (`fetch::commit` is the other half, with the journal as the commit point).
///
/// Stores and drafts are `Send`, so an async fetch can hold them across `.await` on any runtime.
/// Drafts borrow the store mutably, so there is at most one draft at a time: an mbox can only
/// append one message at a time anyway, and the borrow lets a finished draft stage itself in its
/// store without shared mutable state.
pub trait MailStore: Send {
    /// Called before each [`draft`](Self::draft). A store that writes where readers see it (an
    /// mbox) takes its locks at the first draft of a batch and returns a *write-ahead mark*: the
    /// fetch journals it before any byte is written, so that after a crash
    /// [`recover`](Self::recover) knows where the batch began and can remove a message the crash
    /// cut.
    fn begin(&mut self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// Starts a new message. Write its body (as received, CRLF or LF) into the draft, then call
    /// [`Draft::finish`]. Dropping the draft unfinished discards the message.
    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError>;

    /// Names the next draft's message (its POP UID) for errors that must say which message a
    /// remote store refused. Local stores have no use for it.
    fn label(&mut self, _message: &str) {}

    /// Makes every finished draft durable and visible; returns how many there were.
    /// The same as [`prepare`](Self::prepare) then [`publish`](Self::publish).
    ///
    /// After `Err`, treat the whole batch as not stored: staged messages are discarded where that
    /// is possible (a Maildir file already moved into `new/` stays, so it may later appear twice).
    /// Dropping a store with staged messages also discards them.
    fn commit(&mut self) -> Result<usize, StoreError> {
        self.prepare()?;
        self.publish()
    }

    /// Group commit, step 1: makes every finished draft durable, not necessarily visible.
    ///
    /// Returns a *receipt* for each message whose draft finished as [`Finished::Staged`], in
    /// order: it still has to be [`publish`](Self::publish)ed (a Maildir file waiting in `tmp/`).
    /// A fetch records the receipts in its journal before publishing, so that after a crash
    /// [`recover`](Self::recover) can finish the job: the message is then delivered exactly once.
    ///
    /// Maildir fdatasyncs the batch's files; mbox fsyncs the file and releases its locks; an MDA
    /// has nothing left to do, as each delivery was confirmed by exit status 0. After `Err`,
    /// nothing of the batch is delivered (except MDA deliveries, which are final).
    fn prepare(&mut self) -> Result<Vec<String>, StoreError>;

    /// Group commit, step 2: makes the prepared messages visible and durably so; returns how
    /// many were prepared. Maildir renames each file from `tmp/` into `new/` and fsyncs `new/`.
    ///
    /// After `Err`, the messages not yet visible stay prepared on disk for [`recover`](Self::recover).
    fn publish(&mut self) -> Result<usize, StoreError>;

    /// Where [`publish`](Self::publish) put each message it published, in receipt order, for
    /// a destination that says (an IMAP server's APPENDUID, as an RFC 5092 IMAP URL); `None`
    /// where it did not. The fetch records them in the journal. Empty by default.
    fn take_places(&mut self) -> Vec<Option<String>> {
        Vec::new()
    }

    /// Discards what was written since the last commit, where it can; true when the store is
    /// then exactly as it was at the last commit, so the batch's write-ahead mark no longer
    /// describes anything (recovery must not take later bytes, another program's, for the
    /// batch's). Stores without marks have nothing to say.
    fn rollback(&mut self) -> bool {
        true
    }

    /// Whether a receipt (or a write-ahead mark) was handed out by this store, as opposed to
    /// another destination the account had before.
    fn owns(&self, receipt: &str) -> bool;

    /// After a crash: finishes delivering the messages with these receipts and cleans up after
    /// the batches these write-ahead marks began. Returns, for each receipt, whether the message
    /// is now delivered; `false` means it is nowhere to be found, so it must be fetched again.
    fn recover(&mut self, receipts: &[String], marks: &[String]) -> Result<Vec<bool>, StoreError>;

    /// For a store that answered [`Finished::Outbound`]: delivers that message now (the fetch
    /// has journaled its intent durably) and returns its receipt.
    fn deliver(&mut self) -> Result<Option<String>, StoreError> {
        Err(StoreError::Other(io::Error::other(
            "this store delivers nothing remotely",
        )))
    }

    /// Messages [`recover`](Self::recover) found delivered although the journal never recorded
    /// them (a crash between a remote delivery and its journal line): the fetch records them.
    fn take_recovered(&mut self) -> Vec<Recovered> {
        Vec::new()
    }

    /// Housekeeping once recovery is done, e.g. removing files an interrupted delivery left in
    /// a Maildir's `tmp/` long ago.
    fn tidy(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// How a finished draft stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Finished {
    /// Written but invisible until the batch is committed; its receipt comes from
    /// [`MailStore::prepare`] (a Maildir file in `tmp/`).
    Staged,
    /// Already where readers see it (an mbox append) or delivered for good (an MDA's exit
    /// status 0): the fetch journals it at once, with this receipt when there is one.
    Stored {
        /// Where the message is, for recovery to check after a crash.
        receipt: Option<String>,
    },
    /// Staged locally, to be sent to a remote service in one call whose outcome a crash may
    /// hide (Gmail's import): the fetch journals `intent` durably as a write-ahead mark, then
    /// calls [`MailStore::deliver`].
    Outbound {
        /// What recovery needs to look for the message (its hash, size, Message-ID).
        intent: String,
    },
}

/// A message found delivered by recovery, with the UID and size its write-ahead mark named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Its UID.
    pub uid: String,
    /// Its size as the server listed it.
    pub size: u64,
    /// Where it is.
    pub receipt: String,
}

/// The journal's mark for an outbound delivery: the store's intent, the listed size, the UID
/// (last, as it may hold any character; the intent holds no space).
pub(crate) fn outbound_mark(intent: &str, uid: &str, size: u64) -> String {
    format!("{intent} {size} {uid}")
}

/// `(intent, size, uid)` of an [`outbound_mark`].
#[cfg_attr(not(feature = "gmail"), allow(dead_code))]
pub(crate) fn parse_outbound_mark(mark: &str) -> Option<(&str, u64, &str)> {
    let mut parts = mark.splitn(3, ' ');
    let intent = parts.next()?;
    let size = parts.next()?.parse().ok()?;
    Some((intent, size, parts.next()?))
}

/// One message being written into a [`MailStore`].
///
/// Write errors are `io::Error`s wrapping a [`StoreError`] that names the path; get it back with
/// `StoreError::from(io_error)`. After a write error the draft is poisoned: `finish` fails too.
pub trait Draft: io::Write + Send {
    /// Ends the message. Nothing is durable until [`MailStore::commit`] (except for an MDA,
    /// where `Ok` means the MDA accepted the message with exit status 0).
    fn finish(self: Box<Self>) -> Result<Finished, StoreError>;
}

/// Finishes the receipts and marks that `current` does not own: they come from a destination
/// the account had before (its config changed while a batch was pending), so that destination is
/// opened again to finish them there. Returns, for each receipt, whether it is delivered.
pub fn recover(
    current: &mut dyn MailStore,
    receipts: &[String],
    marks: &[String],
) -> Result<Vec<bool>, StoreError> {
    type Indexed<'r> = Vec<(usize, &'r String)>;
    let (own_receipts, foreign_receipts): (Indexed<'_>, Indexed<'_>) = receipts
        .iter()
        .enumerate()
        .partition(|(_, r)| current.owns(r));
    let (own_marks, foreign_marks): (Vec<String>, Vec<String>) =
        marks.iter().cloned().partition(|m| current.owns(m));
    let mut found = vec![false; receipts.len()];
    let own: Vec<String> = own_receipts.iter().map(|(_, r)| (*r).clone()).collect();
    for ((i, _), ok) in own_receipts.iter().zip(current.recover(&own, &own_marks)?) {
        if let Some(slot) = found.get_mut(*i) {
            *slot = ok;
        }
    }
    for (i, receipt) in foreign_receipts {
        let marks: Vec<String> = foreign_marks
            .iter()
            .filter(|m| same_place(m, receipt))
            .cloned()
            .collect();
        let ok = match Place::of(receipt) {
            Some(Place::Maildir(root)) if root.join("tmp").is_dir() => Maildir::open(&root)?
                .recover(std::slice::from_ref(receipt), &marks)?
                .first()
                .copied()
                .unwrap_or(false),
            Some(Place::Mbox(path)) if path.is_file() => {
                let mut mbox = Mbox::open(&path)?;
                mbox.recover(std::slice::from_ref(receipt), &marks)?
                    .first()
                    .copied()
                    .unwrap_or(false)
            }
            // Gone, or not a receipt this popwire knows: fetch the message again.
            _ => false,
        };
        if let Some(slot) = found.get_mut(i) {
            *slot = ok;
        }
    }
    Ok(found)
}

/// Where a receipt or mark points.
enum Place {
    Maildir(PathBuf),
    Mbox(PathBuf),
}

impl Place {
    fn of(receipt: &str) -> Option<Place> {
        if let Some(file) = receipt.strip_prefix(maildir::RECEIPT_PREFIX) {
            // `<root>/new/<name>`
            let root = Path::new(file).parent()?.parent()?;
            return Some(Place::Maildir(root.to_owned()));
        }
        mbox::receipt_path(receipt).map(Place::Mbox)
    }
}

fn same_place(a: &str, b: &str) -> bool {
    match (Place::of(a), Place::of(b)) {
        (Some(Place::Maildir(x)), Some(Place::Maildir(y)))
        | (Some(Place::Mbox(x)), Some(Place::Mbox(y))) => x == y,
        _ => false,
    }
}

/// Opens the store an account's config names, creating a Maildir or mbox that does not exist.
pub fn open(destination: &Destination) -> Result<Box<dyn MailStore>, StoreError> {
    open_with(destination, &StoreOptions::default())
}

/// [`open`] with options.
pub fn open_with(
    destination: &Destination,
    options: &StoreOptions,
) -> Result<Box<dyn MailStore>, StoreError> {
    Ok(match destination {
        Destination::Maildir(path) => Box::new(Maildir::open(path)?),
        Destination::Mbox(path) => {
            let mut mbox = Mbox::open(path)?;
            mbox.set_locks(&options.mbox_locks);
            Box::new(mbox)
        }
        Destination::Mda(command) => {
            let mut mda = Mda::new(command.clone());
            mda.set_timeout(options.mda_timeout);
            for name in &options.hidden_env {
                mda.hide_env(name);
            }
            Box::new(mda)
        }
        Destination::Handler => {
            return Err(StoreError::Other(io::Error::other(
                "this account's destination is a handler in your program: fetch it with popwire::fetch::poller::Poller",
            )));
        }
        #[cfg(feature = "imap")]
        Destination::Imap(config) => {
            let spool = options
                .spool_dir
                .clone()
                .or_else(|| super::private_fs::default_state_dir().map(|d| d.join("imap-spool")))
                .unwrap_or_else(|| std::env::temp_dir().join("popwire-imap-spool"));
            Box::new(imap::ImapStore::new((**config).clone(), spool))
        }
        #[cfg(not(feature = "imap"))]
        Destination::Imap(_) => {
            return Err(StoreError::Other(io::Error::other(
                "this popwire was built without IMAP support (feature \"imap\"); use maildir, mbox or mda",
            )));
        }
        #[cfg(feature = "gmail")]
        Destination::Gmail(config) => Box::new(Gmail::new(config)),
        #[cfg(not(feature = "gmail"))]
        Destination::Gmail(_) => {
            return Err(StoreError::Other(io::Error::other(
                "this popwire was built without the gmail feature",
            )));
        }
    })
}

/// Why a message could not be stored. Each says what to do next.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("cannot {action} {}: {source}{}", path.display(), advice(path, source))]
    Io {
        /// What was being done, e.g. `"write"`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another program holds the mbox lock and did not release it in time.
    #[error("mbox {} is locked by another program (close the mail reader using it, or try again later)", path.display())]
    Locked {
        /// The mbox file.
        path: PathBuf,
    },
    /// The mbox's directory does not let popwire create the dotlock.
    #[error(
        "cannot create the dotlock {}: {source} (the directory is not writable by you: give it write permission, or set mbox_lock = [\"fcntl\", \"flock\"] for this account)",
        path.display()
    )]
    DotlockDenied {
        /// The dotlock file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The MDA could not be started.
    #[error(
        "cannot run MDA {command:?}: {source} (check the mda setting and that the program is installed)"
    )]
    MdaSpawn {
        /// The command as configured.
        command: String,
        /// Why it could not be started.
        source: io::Error,
    },
    /// Talking to the MDA failed.
    #[error("MDA {command:?}: cannot {action}: {source}")]
    MdaIo {
        /// The command as configured.
        command: String,
        /// What was being done.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The MDA refused the message: it exited unsuccessfully.
    #[error(
        "MDA {command:?} failed with {status}{} (the message stays on the server; fix the MDA and fetch again)",
        stderr.as_ref().map(|line| format!(": {line}")).unwrap_or_default()
    )]
    MdaFailed {
        /// The command as configured.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// The first line it wrote to standard error, if any.
        stderr: Option<String>,
    },
    /// The MDA did not deliver the message in time and was killed.
    #[error(
        "MDA {command:?} took longer than {} seconds for one message and was killed (the message stays on the server; raise mda_timeout or fix the MDA)",
        after.as_secs()
    )]
    MdaTimeout {
        /// The command as configured.
        command: String,
        /// The limit it passed.
        after: std::time::Duration,
    },
    /// The MDA exited successfully without reading the whole message, so it cannot have
    /// delivered it intact.
    #[error(
        "MDA {command:?} exited with {status} before reading the whole message (it must read all of standard input)"
    )]
    MdaIncomplete {
        /// The command as configured.
        command: String,
        /// Its exit status.
        status: ExitStatus,
    },
    /// The IMAP destination failed: connecting, logging in, or the server refused a message.
    /// Its [`class`](imap::ImapError::class) says which.
    #[cfg(feature = "imap")]
    #[error(transparent)]
    Imap(Box<imap::ImapError>),
    /// The Gmail API did not take the message.
    #[cfg(feature = "gmail")]
    #[error(transparent)]
    Gmail(Box<GmailError>),
    /// An I/O error that came without a path, e.g. from a plain `io::Error`.
    #[error("cannot store the message: {0}")]
    Other(io::Error),
    /// The caller's handler ([`HandlerStore`]) did not take the message.
    #[error(
        "the handler did not take message {uid}: {source} (it stays on the server and is retried)"
    )]
    Handler {
        /// The message's UID.
        uid: String,
        /// What the handler returned.
        source: handler::HandlerError,
    },
}

impl StoreError {
    /// True when the disk or the user's quota is full: freeing space and retrying will help.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Io { source, .. } | Self::Other(source) => is_disk_full(source),
            _ => false,
        }
    }

    /// True when trying again later may succeed without anyone changing anything: a full disk,
    /// a locked mbox, an MDA that asked for it (exit status 75) or ran out of time.
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Locked { .. } | Self::MdaTimeout { .. } => true,
            Self::MdaFailed { status, .. } => mda::is_temporary(status),
            #[cfg(feature = "imap")]
            Self::Imap(e) => e.is_temporary(),
            #[cfg(feature = "gmail")]
            Self::Gmail(e) => e.is_temporary(),
            _ => self.is_disk_full(),
        }
    }

    /// True when a remote delivery may have happened although it failed: its write-ahead
    /// mark must stay for recovery to settle.
    pub fn is_in_doubt(&self) -> bool {
        #[cfg(feature = "gmail")]
        if let Self::Gmail(e) = self {
            return e.is_in_doubt();
        }
        false
    }

    /// True when the MDA refused this one message for good: the fetch leaves it on the server
    /// and goes on with the next message rather than let it block every later one.
    pub fn is_message_refused(&self) -> bool {
        matches!(self, Self::MdaFailed { status, .. } if !mda::is_temporary(status))
            || matches!(self, Self::MdaIncomplete { .. } | Self::Handler { .. })
            || self.gmail_refused()
            || self.imap_refused()
    }

    #[cfg(feature = "imap")]
    fn imap_refused(&self) -> bool {
        matches!(self, Self::Imap(e) if e.is_message_refused())
    }

    #[cfg(not(feature = "imap"))]
    fn imap_refused(&self) -> bool {
        false
    }

    #[cfg(feature = "gmail")]
    fn gmail_refused(&self) -> bool {
        matches!(self, Self::Gmail(e) if e.is_message_refused())
    }

    #[cfg(not(feature = "gmail"))]
    fn gmail_refused(&self) -> bool {
        false
    }

    /// Wraps this error in an `io::Error` for `Write` methods, keeping the OS error's kind.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            Self::Io { source, .. } | Self::MdaIo { source, .. } | Self::Other(source) => {
                source.kind()
            }
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}

impl From<io::Error> for StoreError {
    /// Recovers the `StoreError` a draft's `write` wrapped, or wraps a foreign error as `Other`.
    fn from(error: io::Error) -> Self {
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<StoreError>())
        {
            let kind = error.kind();
            match error
                .into_inner()
                .map(|inner| inner.downcast::<StoreError>())
            {
                Some(Ok(store_error)) => return *store_error,
                // Unreachable after the check above; keep the information anyway.
                Some(Err(inner)) => return Self::Other(io::Error::new(kind, inner)),
                None => return Self::Other(io::Error::from(kind)),
            }
        }
        Self::Other(error)
    }
}

/// True for "no space left on device" and "disk quota exceeded".
pub(crate) fn is_disk_full(error: &io::Error) -> bool {
    #[cfg(unix)]
    if matches!(error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
        return true;
    }
    error.kind() == io::ErrorKind::StorageFull
}

fn advice(path: &Path, error: &io::Error) -> String {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => path,
    };
    advice_for_dir(dir, error)
}

/// What to do about an I/O error in `dir`: free space, or check permissions (or nothing to say).
pub(crate) fn advice_for_dir(dir: &Path, error: &io::Error) -> String {
    if is_disk_full(error) {
        format!(" (disk full: free space on {})", dir.display())
    } else if error.kind() == io::ErrorKind::PermissionDenied {
        format!(" (check the permissions of {})", dir.display())
    } else {
        String::new()
    }
}

/// Streaming CRLF to LF conversion; a CR not followed by LF is kept.
#[derive(Debug, Default)]
struct CrlfToLf {
    /// The previous input ended in CR: whether it is dropped depends on the next byte.
    pending_cr: bool,
}

impl CrlfToLf {
    /// Converts `input`, appending to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        // An empty write says nothing about the byte after a pending CR.
        if input.is_empty() {
            return;
        }
        let mut rest = input;
        if std::mem::take(&mut self.pending_cr) && rest.first() != Some(&b'\n') {
            out.push(b'\r');
        }
        while let Some(at) = memchr::memchr(b'\r', rest) {
            let (before, from_cr) = rest.split_at(at);
            out.extend_from_slice(before);
            let after = from_cr.get(1..).unwrap_or_default();
            match after.first() {
                Some(b'\n') => {}
                Some(_) => out.push(b'\r'),
                None => self.pending_cr = true,
            }
            rest = after;
        }
        out.extend_from_slice(rest);
    }

    /// Ends the input: a CR left pending at the very end is kept.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn convert_in_pieces(input: &[u8], splits: &[usize]) -> Vec<u8> {
        let mut converter = CrlfToLf::default();
        let mut out = Vec::new();
        let mut start = 0;
        for &split in splits {
            converter.feed(&input[start..split], &mut out);
            start = split;
        }
        converter.feed(&input[start..], &mut out);
        converter.finish(&mut out);
        out
    }

    #[test]
    fn crlf_to_lf_whole() {
        assert_eq!(convert_in_pieces(b"a\r\nb\r\n", &[]), b"a\nb\n");
        assert_eq!(convert_in_pieces(b"a\rb\r\r\n\r", &[]), b"a\rb\r\n\r");
        assert_eq!(convert_in_pieces(b"", &[]), b"");
        assert_eq!(convert_in_pieces(b"\n\n", &[]), b"\n\n");
    }

    #[test]
    fn crlf_to_lf_survives_every_split() {
        let input = b"From: a\r\n\r\nbody\r\rx\r\n\r\n\r\r\n.\r\nend\r";
        let expected = convert_in_pieces(input, &[]);
        assert_eq!(expected, b"From: a\n\nbody\r\rx\n\n\r\n.\nend\r");
        for i in 0..=input.len() {
            assert_eq!(convert_in_pieces(input, &[i]), expected, "split at {i}");
            for j in i..=input.len() {
                assert_eq!(
                    convert_in_pieces(input, &[i, j]),
                    expected,
                    "splits {i} {j}"
                );
            }
        }
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(convert_in_pieces(input, &bytewise), expected);
    }

    #[test]
    fn write_errors_round_trip_through_io_error() {
        let original = StoreError::Io {
            action: "write",
            path: PathBuf::from("/m/tmp/1"),
            source: io::Error::from_raw_os_error(libc::ENOSPC),
        };
        let wrapped = original.into_io();
        assert_eq!(wrapped.kind(), io::ErrorKind::StorageFull);
        let back = StoreError::from(wrapped);
        assert!(back.is_disk_full());
        assert_eq!(
            back.to_string(),
            "cannot write /m/tmp/1: No space left on device (os error 28) (disk full: free space on /m/tmp)"
        );
        let foreign = StoreError::from(io::Error::other("boom"));
        assert_eq!(foreign.to_string(), "cannot store the message: boom");
        assert!(!foreign.is_disk_full());
    }

    #[test]
    fn outbound_marks_keep_any_uid() {
        let mark = outbound_mark("gmail-intent:ab:12:", "a uid with spaces:and colons", 12);
        assert_eq!(
            parse_outbound_mark(&mark),
            Some(("gmail-intent:ab:12:", 12, "a uid with spaces:and colons"))
        );
        assert_eq!(parse_outbound_mark("mbox:/x:1:2:3"), None);
    }

    #[test]
    fn open_dispatches_on_destination() {
        let dir = tempfile::tempdir().unwrap();
        let mut maildir = open(&Destination::Maildir(dir.path().join("md"))).unwrap();
        assert_eq!(maildir.commit().unwrap(), 0);
        let mut mbox = open(&Destination::Mbox(dir.path().join("mbox"))).unwrap();
        assert_eq!(mbox.commit().unwrap(), 0);
        let command = super::super::config::CommandLine::Shell("cat >/dev/null".into());
        let mut mda = open(&Destination::Mda(command)).unwrap();
        assert_eq!(mda.commit().unwrap(), 0);
    }

    #[test]
    fn pending_receipts_are_finished_where_they_were_after_the_destination_changed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("old-maildir");
        let mut maildir = Maildir::open(&root).unwrap();
        let mut draft = maildir.draft().unwrap();
        draft.write_all(b"Subject: pending\r\n\r\nx\r\n").unwrap();
        let _ = draft.finish().unwrap();
        let receipts = maildir.prepare().unwrap();
        // The crash between the journal's commit point and the renames.
        std::mem::forget(maildir);
        // The account now delivers to an mbox.
        let mut mbox = Mbox::open(&dir.path().join("mbox")).unwrap();
        assert!(!mbox.owns(&receipts[0]));
        assert_eq!(recover(&mut mbox, &receipts, &[]).unwrap(), [true]);
        let new: Vec<_> = std::fs::read_dir(root.join("new")).unwrap().collect();
        assert_eq!(new.len(), 1);
        // A receipt of a Maildir that is gone is not found: the message is fetched again.
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(recover(&mut mbox, &receipts, &[]).unwrap(), [false]);
    }
}

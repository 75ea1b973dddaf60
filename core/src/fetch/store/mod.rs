//! Local mail stores with group commit: Maildir, mbox (mboxrd) and an external MDA.
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

mod maildir;
mod mbox;
mod mda;

pub use maildir::Maildir;
pub use mbox::{DEFAULT_LOCK_TIMEOUT, Mbox};
pub use mda::Mda;

/// A place messages are delivered to.
///
/// Stores and drafts are `Send`, so an async fetch can hold them across `.await` on any runtime.
/// Drafts borrow the store mutably, so there is at most one draft at a time: an mbox can only
/// append one message at a time anyway, and the borrow lets a finished draft stage itself in its
/// store without shared mutable state.
pub trait MailStore: Send {
    /// Starts a new message. Write its body (as received, CRLF or LF) into the draft, then call
    /// [`Draft::finish`]. Dropping the draft unfinished discards the message.
    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError>;

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
    /// Returns one entry per message, in the order the drafts were finished: a *receipt* when the
    /// message still has to be [`publish`](Self::publish)ed (a Maildir file waiting in `tmp/`),
    /// `None` when it is already delivered. A fetch records the receipts in its journal before
    /// publishing, so that after a crash [`recover`](Self::recover) can finish the job: the
    /// message is then delivered exactly once.
    ///
    /// Maildir syncs the whole batch with one `syncfs` on Linux (one fsync per file elsewhere);
    /// mbox fsyncs the file and releases its lock; an MDA has nothing left to do, as each delivery
    /// was confirmed by exit status 0. After `Err`, nothing of the batch is delivered.
    fn prepare(&mut self) -> Result<Vec<Option<String>>, StoreError>;

    /// Group commit, step 2: makes the prepared messages visible and durably so; returns how
    /// many were prepared. Maildir renames each file from `tmp/` into `new/` and fsyncs `new/`.
    ///
    /// After `Err`, the messages not yet visible stay prepared on disk for [`recover`](Self::recover).
    fn publish(&mut self) -> Result<usize, StoreError>;

    /// After a crash between [`prepare`](Self::prepare) and the end of
    /// [`publish`](Self::publish): finishes delivering the messages with these receipts.
    /// Returns, for each, whether the message is now delivered; `false` means it is nowhere to be
    /// found, so it must be fetched again.
    fn recover(&mut self, receipts: &[String]) -> Result<Vec<bool>, StoreError> {
        // Stores that hand out no receipts have nothing to finish.
        Ok(vec![true; receipts.len()])
    }
}

/// One message being written into a [`MailStore`].
///
/// Write errors are `io::Error`s wrapping a [`StoreError`] that names the path; get it back with
/// `StoreError::from(io_error)`. After a write error the draft is poisoned: `finish` fails too.
pub trait Draft: io::Write + Send {
    /// Ends the message and stages it. Nothing is durable until [`MailStore::commit`] (except for
    /// an MDA, where `Ok` means the MDA accepted the message with exit status 0).
    fn finish(self: Box<Self>) -> Result<(), StoreError>;
}

/// Opens the store an account's config names, creating a Maildir or mbox that does not exist.
pub fn open(destination: &Destination) -> Result<Box<dyn MailStore>, StoreError> {
    Ok(match destination {
        Destination::Maildir(path) => Box::new(Maildir::open(path)?),
        Destination::Mbox(path) => Box::new(Mbox::open(path)?),
        Destination::Mda(command) => Box::new(Mda::new(command.clone())),
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
    /// An I/O error that came without a path, e.g. from a plain `io::Error`.
    #[error("cannot store the message: {0}")]
    Other(io::Error),
}

impl StoreError {
    /// True when the disk or the user's quota is full: freeing space and retrying will help.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Io { source, .. } | Self::Other(source) => is_disk_full(source),
            _ => false,
        }
    }

    /// Wraps this error in an `io::Error` for `Write` methods, keeping the OS error's kind.
    fn into_io(self) -> io::Error {
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
}

//! The per-account UID journal: which messages (by UIDL) are already stored, and since when.
//!
//! The file is text, one entry per line, after a version header:
//!
//! ```text
//! popwire-uid-journal 3
//! 1a2b3c<TAB>1732696740
//! 4d5e6f<TAB>1732696741<TAB>s=5175<TAB>r=/home/u/Mail/new/1732696741.M5P7Q0.host,S=5120
//! +
//! +w=mbox:/home/u/mbox:2049:131:8812
//! 7a8b9c<TAB>1732696750<TAB>s=900<TAB>r=mbox:/home/u/mbox:2049:131:8812:9790:1f2e3d4c
//! 5e6f7a<TAB>1732696760<TAB>s=900<TAB>p=imap://me@imap.example.com:993/INBOX;UIDVALIDITY=7/;UID=42
//! ```
//!
//! After the UID and the time come optional `key=value` fields (unknown keys are skipped, so a
//! newer popwire can add some). `s=` is the message's size as the server listed it: a UID counts
//! as already stored only while the server lists the same size for it, so a server that reuses
//! a UID for another message cannot get that message deleted unfetched. `r=` is a store's
//! *receipt* (see `MailStore::prepare`): the message is durable in the store but maybe not yet
//! visible there. A line holding just `+` says every receipt above it was published. Receipts after
//! the last `+` are *pending*: a crash came between the journal entry and the end of publishing,
//! and the next fetch finishes it with `MailStore::recover` before it deletes anything. A line
//! `+w=<mark>` is a store's *write-ahead mark* (see `MailStore::begin`): written before the store
//! writes a batch where readers see it (an mbox), it tells recovery where that batch began, so a
//! message cut by a crash can be found and removed. `p=` is where a published message is, when
//! the destination said (an IMAP server's APPENDUID, as an RFC 5092 IMAP URL): it comes on a
//! second line for the UID, written after publishing, and is kept while the UID is. Version 1
//! and 2 files are read and rewritten as version 3 (version 2 had no marks; version 3 readers
//! before `p=` skip it).
//!
//! UIDs are RFC 1939 printable ASCII (0x21-0x7E), but lenient servers send spaces, tabs or UTF-8,
//! so every byte outside 0x21-0x7E, and `%` itself, is written as `%XX`. The file is therefore
//! pure ASCII and a UID can never break a line.
//!
//! Two ways to make it durable:
//! - [`Journal::save`] rewrites the whole file atomically (temporary file, fsync, rename, fsync of
//!   the directory). O(n).
//! - [`Journal::record_delivered`] adds a line without fsync (a message an mbox or MDA holds
//!   already), and [`Journal::sync`] later makes every such line durable in one fsync.
//! - [`Journal::append`] adds lines for a batch and fsyncs: O(batch). A crash mid-append leaves at
//!   worst a torn last line without its newline, which [`Journal::open`] ignores: those UIDs were
//!   never reported durable, so their messages were not deleted and are simply fetched again.
//!   When the file no longer matches memory (UIDs forgotten, a torn tail, duplicate lines) the next
//!   `append` compacts by calling `save` instead.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::store::is_disk_full;
use super::sys;

mod format;
#[cfg(test)]
mod tests;

use format::{HEADER, MARK, PUBLISHED, VOID, parse, write_escaped, write_line};

/// Why the journal could not be read or written.
#[derive(Debug, Error)]
pub enum JournalError {
    /// Reading or writing the file failed.
    #[error("UID journal {}: cannot {action}: {source}{}", path.display(), advice(path, source))]
    Io {
        /// The journal file.
        path: PathBuf,
        /// What was being done, e.g. `"read it"`.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A line is not a valid entry.
    #[error(
        "UID journal {}:{line}: {reason} (repair or delete that line; deleting the whole file makes popwire fetch kept messages again)",
        path.display()
    )]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file was written by a newer popwire with a format this one does not know.
    #[error("UID journal {}: format {found:?} is newer than this popwire understands (upgrade popwire)", path.display())]
    UnsupportedVersion {
        /// The journal file.
        path: PathBuf,
        /// The version found in the header.
        found: String,
    },
}

impl JournalError {
    /// True when the disk or the user's quota is full: freeing space and retrying will help.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::Io { source, .. } if is_disk_full(source))
    }
}

fn advice(path: &Path, error: &io::Error) -> String {
    super::store::advice_for_dir(parent_dir(path), error)
}

/// The directory holding `path`, `.` for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The set of UIDs already stored for one account, each with the UNIX time it was first stored.
///
/// Changes are made in memory ([`record`](Self::record), [`retain_only`](Self::retain_only)) and
/// made durable by [`save`](Self::save); or recorded and made durable in one step by
/// [`append`](Self::append).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    entries: HashMap<String, Entry>,
    /// UIDs with receipts not yet known to be published, in file order.
    pending: Vec<(String, String)>,
    /// Write-ahead marks not yet known to be published, in file order.
    marks: Vec<String>,
    /// Where published messages are, by UID, when their destination said.
    places: HashMap<String, String>,
    /// False only while the file holds exactly `entries`, one line each, with a clean end: then a
    /// batch can be appended. Anything else makes the next `append` rewrite the file.
    needs_rewrite: bool,
    /// The file opened for appending, kept between the lines of a batch.
    appender: Option<File>,
    /// Lines were appended since the last fsync.
    unsynced: bool,
}

/// What the journal knows of one stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// UNIX time it was first stored.
    time: u64,
    /// Its size as the server listed it, when known.
    size: Option<u64>,
}

/// One message just stored, for [`Journal::append_delivered`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered<'u> {
    /// Its UID.
    pub uid: &'u str,
    /// Its size as the server listed it (LIST), when known.
    pub size: Option<u64>,
    /// The store's receipt, when the store hands one out.
    pub receipt: Option<String>,
}

impl Journal {
    /// Reads the journal at `path`. A missing or empty file is an empty journal; a torn last line
    /// (no newline, from a crash during `append`) is ignored; anything else malformed is an error
    /// naming the line.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, JournalError> {
        let path = path.into();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    path,
                    entries: HashMap::new(),
                    pending: Vec::new(),
                    marks: Vec::new(),
                    places: HashMap::new(),
                    needs_rewrite: true,
                    appender: None,
                    unsynced: false,
                });
            }
            Err(source) => {
                return Err(JournalError::Io {
                    path,
                    action: "read it",
                    source,
                });
            }
        };
        let parsed = parse(&path, &bytes)?;
        Ok(Self {
            path,
            entries: parsed.entries,
            pending: parsed.pending,
            marks: parsed.marks,
            places: parsed.places,
            needs_rewrite: !parsed.clean,
            appender: None,
            unsynced: false,
        })
    }

    /// The journal file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of UIDs recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no UID is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when the message with this UID has been stored.
    pub fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// True when the message with this UID and this listed size has been stored. A recorded
    /// size that differs means the server reused the UID for another message; an entry without
    /// a size (written before sizes were recorded) matches any size.
    pub fn contains_message(&self, uid: &str, size: u64) -> bool {
        self.entries
            .get(uid)
            .is_some_and(|entry| entry.size.is_none_or(|known| known == size))
    }

    /// The UNIX time (seconds) the message with this UID was first stored.
    pub fn first_seen(&self, uid: &str) -> Option<u64> {
        self.entries.get(uid).map(|entry| entry.time)
    }

    /// Every recorded UID with its first-stored time, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.entries
            .iter()
            .map(|(uid, entry)| (uid.as_str(), entry.time))
    }

    /// Records UIDs as stored at `now`, in memory only. A UID already recorded keeps its
    /// original time, so `keep = "30d"` counts from the first download.
    pub fn record<'u>(&mut self, uids: impl IntoIterator<Item = &'u str>, now: u64) {
        for uid in uids {
            if !self.entries.contains_key(uid) {
                self.entries.insert(
                    uid.to_owned(),
                    Entry {
                        time: now,
                        size: None,
                    },
                );
                self.needs_rewrite = true;
            }
        }
    }

    /// Where the message with this UID was published, when its destination said (an IMAP URL
    /// with the APPENDUID).
    pub fn place(&self, uid: &str) -> Option<&str> {
        self.places.get(uid).map(String::as_str)
    }

    /// Forgets every UID not in `present_on_server`, in memory only.
    ///
    /// Only call this with a complete UIDL listing from a session that succeeded: forgetting a UID
    /// whose message is still on the server makes popwire download it again.
    pub fn retain_only(&mut self, present_on_server: &HashSet<&str>) {
        let before = self.entries.len();
        self.entries
            .retain(|uid, _| present_on_server.contains(uid.as_str()));
        self.places
            .retain(|uid, _| present_on_server.contains(uid.as_str()));
        if self.entries.len() != before {
            self.needs_rewrite = true;
        }
    }

    /// Records UIDs as stored at `now` and makes that durable before returning: the cheap way to
    /// record each batch of a fetch. Appends a line per new UID and fsyncs, or rewrites the whole
    /// file with [`save`](Self::save) when it no longer matches memory.
    ///
    /// On error the UIDs stay recorded in memory, and the next `append` or `save` rewrites the file.
    pub fn append<'u>(
        &mut self,
        uids: impl IntoIterator<Item = &'u str>,
        now: u64,
    ) -> Result<(), JournalError> {
        self.append_delivered(
            uids.into_iter().map(|uid| Delivered {
                uid,
                size: None,
                receipt: None,
            }),
            now,
        )
    }

    /// Like [`append`](Self::append), with each message's receipt from `MailStore::prepare`:
    /// a receipt stays [`pending`](Self::pending) until [`mark_published`](Self::mark_published).
    /// After `Ok`, a crash cannot lose these messages: the receipts say where they are.
    ///
    /// A UID already recorded with the same size keeps its entry (and its time); with another
    /// size, the new message replaces it.
    pub fn append_delivered<'u>(
        &mut self,
        delivered: impl IntoIterator<Item = Delivered<'u>>,
        now: u64,
    ) -> Result<(), JournalError> {
        let mut lines = Vec::new();
        for message in delivered {
            self.note(message, now, &mut lines);
        }
        self.write_lines(&lines)?;
        self.sync()
    }

    /// Records one message as stored at `now` and writes its line, without waiting for the disk:
    /// for a message that a store holds already (an mbox append, an MDA's exit status 0). Under a
    /// process crash the line survives; [`sync`](Self::sync) makes it survive a power loss too.
    pub fn record_delivered(
        &mut self,
        delivered: Delivered<'_>,
        now: u64,
    ) -> Result<(), JournalError> {
        let mut line = Vec::new();
        self.note(delivered, now, &mut line);
        self.write_lines(&line)
    }

    /// Writes a store's write-ahead mark (see `MailStore::begin`), without waiting for the disk.
    /// It stays in [`marks`](Self::marks) until [`mark_published`](Self::mark_published).
    pub fn write_ahead(&mut self, mark: &str) -> Result<(), JournalError> {
        let mut line = MARK.to_vec();
        write_escaped(&mut line, mark);
        line.push(b'\n');
        self.marks.push(mark.to_owned());
        self.write_lines(&line)
    }

    /// Declares the write-ahead marks void: the store rolled their batch back in-process, so
    /// what lies past them now is not popwire's. Pending receipts stay pending (recovery checks
    /// them). Not synced: a lost line only means recovery looks at the tail more carefully.
    pub fn void_marks(&mut self) -> Result<(), JournalError> {
        if self.marks.is_empty() {
            return Ok(());
        }
        self.marks.clear();
        let mut line = VOID.to_vec();
        line.push(b'\n');
        self.write_lines(&line)
    }

    /// Write-ahead marks since the last publication, in the order they were written.
    pub fn marks(&self) -> &[String] {
        &self.marks
    }

    /// Makes every line written so far durable: the commit point of a batch.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.needs_rewrite {
            return self.save();
        }
        if !self.unsynced {
            return Ok(());
        }
        if let Some(file) = &self.appender
            && let Err(source) = sys::sync_data(file)
        {
            // Whether the lines reached the disk is unknown: write the file afresh next time.
            self.needs_rewrite = true;
            self.appender = None;
            return Err(JournalError::Io {
                path: self.path.clone(),
                action: "flush it to disk",
                source,
            });
        }
        self.unsynced = false;
        Ok(())
    }

    /// Updates memory for one message and adds its line to `lines` when it is new.
    fn note(
        &mut self,
        Delivered { uid, size, receipt }: Delivered<'_>,
        now: u64,
        lines: &mut Vec<u8>,
    ) {
        if let Some(known) = self.entries.get(uid)
            && (size.is_none() || known.size.is_none() || known.size == size)
        {
            return;
        }
        let entry = Entry { time: now, size };
        // A reused UID: where the old message went says nothing of this one.
        self.places.remove(uid);
        self.entries.insert(uid.to_owned(), entry);
        write_line(lines, uid, entry, receipt.as_deref(), None);
        if let Some(receipt) = receipt {
            self.pending.push((uid.to_owned(), receipt));
        }
    }

    /// Appends lines to the file, or rewrites the file when it no longer matches memory.
    fn write_lines(&mut self, lines: &[u8]) -> Result<(), JournalError> {
        if self.needs_rewrite {
            return self.save();
        }
        if lines.is_empty() {
            return Ok(());
        }
        let io_error = |path: &Path, action, source| JournalError::Io {
            path: path.to_owned(),
            action,
            source,
        };
        let file = match self.appender.take() {
            Some(file) => file,
            None => match sys::open_append(&self.path, false) {
                Ok(file) => file,
                // Deleted behind our back: write it afresh.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return self.save(),
                Err(source) => return Err(io_error(&self.path, "open it for appending", source)),
            },
        };
        // Until this write is known to be complete the file may end in a torn line.
        self.needs_rewrite = true;
        sys::write_all(&file, lines)
            .map_err(|source| io_error(&self.path, "append to it", source))?;
        self.needs_rewrite = false;
        self.unsynced = true;
        self.appender = Some(file);
        Ok(())
    }

    /// Receipts written by [`append_delivered`](Self::append_delivered) and not yet marked
    /// published, as (UID, receipt): after a crash, what `MailStore::recover` must finish.
    pub fn pending(&self) -> &[(String, String)] {
        &self.pending
    }

    /// Records where published messages are (`(UID, place)`, e.g. an IMAP URL with the
    /// APPENDUID), without waiting for the disk: nothing depends on it for exactly-once, it tells
    /// a person or a program where each message went. UIDs not in the journal are skipped.
    pub fn record_places<'u>(
        &mut self,
        places: impl IntoIterator<Item = (&'u str, String)>,
    ) -> Result<(), JournalError> {
        let mut lines = Vec::new();
        for (uid, place) in places {
            let Some(&entry) = self.entries.get(uid) else {
                continue;
            };
            write_line(&mut lines, uid, entry, None, Some(&place));
            self.places.insert(uid.to_owned(), place);
        }
        self.write_lines(&lines)
    }

    /// Records that every pending receipt is published. Call it only once the store's
    /// `publish` returned `Ok`, i.e. the publication is durable. The mark itself is not synced:
    /// if it is lost, the next fetch finds the messages published and only checks again.
    pub fn mark_published(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() && self.marks.is_empty() {
            return Ok(());
        }
        self.pending.clear();
        self.marks.clear();
        let mut line = PUBLISHED.to_vec();
        line.push(b'\n');
        self.write_lines(&line)
    }

    /// Settles the pending receipts after `MailStore::recover`: `delivered[i]` tells whether the
    /// i-th pending message was found. Those not found are forgotten, so they are fetched again.
    /// Saves the journal.
    pub fn settle_pending(&mut self, delivered: &[bool]) -> Result<(), JournalError> {
        let pending = std::mem::take(&mut self.pending);
        self.marks.clear();
        for (i, (uid, _)) in pending.iter().enumerate() {
            if !delivered.get(i).copied().unwrap_or(false) {
                self.entries.remove(uid);
            }
        }
        self.save()
    }

    /// Forgets these UIDs, in memory only: the server has deleted their messages, and a server
    /// that hands a UID out again later means another message by it.
    pub fn forget<'u>(&mut self, uids: impl IntoIterator<Item = &'u str>) {
        for uid in uids {
            self.places.remove(uid);
            if self.entries.remove(uid).is_some() {
                self.needs_rewrite = true;
            }
        }
    }

    /// [`save`](Self::save)s when memory changed since the file was last written whole or
    /// appended to (UIDs forgotten or retained away).
    pub fn save_if_changed(&mut self) -> Result<(), JournalError> {
        if self.needs_rewrite {
            self.save()
        } else {
            Ok(())
        }
    }

    /// Writes the whole journal atomically: a temporary file in the same directory, fsync, rename
    /// over the old file, fsync of the directory. Creates the directory (mode 0700) if missing.
    /// After `Ok`, the file survives a crash and holds exactly what is in memory.
    pub fn save(&mut self) -> Result<(), JournalError> {
        let io_error = |action, source| JournalError::Io {
            path: self.path.clone(),
            action,
            source,
        };
        self.appender = None;
        let dir = parent_dir(&self.path);
        super::private_fs::create_private_dir_durably(dir)
            .map_err(|source| io_error("create its directory", source))?;
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let result = self.write_to(&temp).and_then(|()| {
            sys::rename(&temp, &self.path).map_err(|source| io_error("replace it", source))
        });
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result?;
        sys::sync_dir(dir).map_err(|source| io_error("flush its directory to disk", source))?;
        self.needs_rewrite = false;
        self.unsynced = false;
        Ok(())
    }

    fn write_to(&self, temp: &Path) -> Result<(), JournalError> {
        let io_error = |action, source| JournalError::Io {
            path: temp.to_owned(),
            action,
            source,
        };
        let file = sys::create_truncate(temp)
            .map_err(|source| io_error("create a temporary file", source))?;
        // Sorted so that the file is the same for the same contents, which makes it diffable.
        let mut sorted: Vec<(&String, &Entry)> = self.entries.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let receipts: HashMap<&str, &str> = self
            .pending
            .iter()
            .map(|(uid, receipt)| (uid.as_str(), receipt.as_str()))
            .collect();
        let mut text = Vec::with_capacity(64 + sorted.len() * 32);
        text.extend_from_slice(HEADER.as_bytes());
        text.push(b'\n');
        // Marks first: they describe the batch the pending receipts below belong to.
        for mark in &self.marks {
            text.extend_from_slice(MARK);
            write_escaped(&mut text, mark);
            text.push(b'\n');
        }
        for (uid, &entry) in sorted {
            let place = self.places.get(uid).map(String::as_str);
            write_line(
                &mut text,
                uid,
                entry,
                receipts.get(uid.as_str()).copied(),
                place,
            );
        }
        sys::write_all(&file, &text).map_err(|source| io_error("write it", source))?;
        sys::sync_all(&file).map_err(|source| io_error("flush it to disk", source))
    }
}

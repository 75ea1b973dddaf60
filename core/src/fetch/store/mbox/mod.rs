//! mboxrd delivery: messages appended to one file, each after a `From ` line.
//!
//! - Each message starts with `From MAILER-DAEMON <asctime date>` (the envelope sender is not
//!   known to POP3) and ends with a blank line.
//! - mboxrd quoting: a body line matching `^>*From ` gets one more `>`, so readers can undo it
//!   exactly. Done in a streaming way that survives a split anywhere in the pattern.
//! - Other programs append to the same file (procmail, Postfix `local`, mutt, Python's `mailbox`),
//!   so from the first message of a batch to its commit popwire holds every lock they might take:
//!   a dotlock (`FILE.lock`), an fcntl lock and a flock (`mbox_lock` chooses; all three by
//!   default). It never waits holding one lock for another: when any is taken it lets go of all
//!   and tries again, so it cannot deadlock with a program that takes them in another order.
//! - A message that fails or is dropped half-way is cut off again, but only when the file still
//!   ends where popwire's own writing ended: bytes another program wrote are never truncated.
//! - Exactly once under a crash: each batch begins with a write-ahead mark in the journal (file
//!   identity and length before the batch), and each message, once written, gets a receipt
//!   (offsets and a CRC-32 of its bytes). After a crash, `recover` keeps the messages whose bytes
//!   are there intact and cuts off what a crash left after the last one, if only popwire wrote it.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{CrlfToLf, Draft, Finished, LockKind, MailStore, StoreError};
use crate::fetch::private_fs::create_private_dir_durably;
use crate::fetch::sys;

mod lock;
mod quote;
#[cfg(test)]
mod tests;

use lock::{Dotlock, take_dotlock};
use quote::{FromQuoter, from_line};

/// How long to wait, by default, for another program to release the mbox lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes collected before a write to the file.
const BUFFER_SIZE: usize = 64 * 1024;
/// How receipts and write-ahead marks of an mbox start.
const RECEIPT_PREFIX: &str = "mbox:";
/// What popwire's own `From ` lines start with.
const OWN_FROM: &[u8] = b"From MAILER-DAEMON ";

/// An mboxrd file.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    /// The open, locked file while a batch is in progress.
    batch: Option<Batch>,
    lock_timeout: Duration,
    locks: Vec<LockKind>,
    /// Messages made durable by the last `prepare`, for `publish` to report.
    prepared: usize,
}

/// The locks held on the mbox; dropping it releases them, the file's first (closing the file
/// drops the fcntl and flock locks), then the dotlock.
#[derive(Debug)]
struct Locked {
    file: File,
    _dotlock: Option<Dotlock>,
    /// The file's identity, for receipts.
    dev: u64,
    ino: u64,
}

#[derive(Debug)]
struct Batch {
    locked: Locked,
    /// The length before this batch: what staged-but-uncommitted messages are cut back to.
    committed_len: u64,
    /// The length after the last finished message.
    len: u64,
    /// Finished messages since the last commit.
    staged: usize,
    /// What must precede the next `From ` line for it to start after a blank line.
    separator: &'static [u8],
    /// Cutting off a failed message failed too: the file holds a partial message, so the batch
    /// must not be committed.
    damaged: Option<io::Error>,
    /// The write-ahead mark was handed out.
    announced: bool,
}

impl Mbox {
    /// Opens the mbox at `path`, creating it (mode 0600) and its directory (0700) if missing.
    /// The file is only locked while a batch is being written.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // Absolute, because receipts name the file and must mean it from any directory.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir_durably(dir).map_err(|source| StoreError::Io {
                action: "create the directory",
                path: dir.to_owned(),
                source,
            })?;
        }
        let file = open_file(&path)?;
        drop(file);
        Ok(Self {
            path,
            batch: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            locks: LockKind::ALL.to_vec(),
            prepared: 0,
        })
    }

    /// Sets how long to wait for another program's lock before giving up with
    /// [`StoreError::Locked`]; [`DEFAULT_LOCK_TIMEOUT`] unless set.
    pub fn set_lock_timeout(&mut self, timeout: Duration) {
        self.lock_timeout = timeout;
    }

    /// Chooses which locks to take ([`LockKind::ALL`] unless set).
    pub fn set_locks(&mut self, locks: &[LockKind]) {
        self.locks = locks.to_vec();
    }

    /// The mbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes every configured lock, waiting up to the lock timeout; never waits holding one.
    fn lock(&self) -> Result<Locked, StoreError> {
        let deadline = Instant::now() + self.lock_timeout;
        loop {
            match self.try_lock()? {
                Some(locked) => return Ok(locked),
                None if Instant::now() >= deadline => {
                    return Err(StoreError::Locked {
                        path: self.path.clone(),
                    });
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// One attempt at every lock: `None` when another program holds one of them.
    fn try_lock(&self) -> Result<Option<Locked>, StoreError> {
        let io_error = |action, source| StoreError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let dotlock = if self.locks.contains(&LockKind::Dotlock) {
            match take_dotlock(&self.path)? {
                Some(lock) => Some(lock),
                None => return Ok(None),
            }
        } else {
            None
        };
        let file = open_file(&self.path)?;
        sys::check(sys::Op::Lock).map_err(|source| io_error("lock", source))?;
        if self.locks.contains(&LockKind::Flock) {
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(source)) => return Err(io_error("lock", source)),
            }
        }
        if self.locks.contains(&LockKind::Fcntl) {
            match rustix::fs::fcntl_lock(
                &file,
                rustix::fs::FlockOperation::NonBlockingLockExclusive,
            ) {
                Ok(()) => {}
                Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {
                    return Ok(None);
                }
                Err(e) => return Err(io_error("lock", io::Error::from(e))),
            }
        }
        // The holder may have replaced the file (a reader rewriting it via rename): then our
        // locks are on a file nobody reads, so start over with the new one.
        let Some((dev, ino)) = identity(&file).filter(|id| Some(*id) == path_identity(&self.path))
        else {
            return Ok(None);
        };
        Ok(Some(Locked {
            file,
            _dotlock: dotlock,
            dev,
            ino,
        }))
    }

    /// Opens and locks the file for a batch, and notes how it ends.
    fn begin_batch(&self) -> Result<Batch, StoreError> {
        let mut locked = self.lock()?;
        let io_error = |action, source| StoreError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let len = locked
            .file
            .metadata()
            .map_err(|source| io_error("inspect", source))?
            .len();
        let separator =
            separator_after(&mut locked.file, len).map_err(|source| io_error("read", source))?;
        Ok(Batch {
            locked,
            committed_len: len,
            len,
            staged: 0,
            separator,
            damaged: None,
            announced: false,
        })
    }

    /// Cuts off everything after the last commit and releases the locks; true when the file is
    /// then exactly as it was at the last commit.
    fn abandon_batch(&mut self) -> bool {
        // Dropping the batch at the end releases the locks.
        let Some(batch) = self.batch.take() else {
            return true;
        };
        if batch.damaged.is_some() {
            return false;
        }
        // Only when the file ends where our writing ended: never cut another program's bytes.
        match file_len(&batch.locked.file) {
            Some(len) if len == batch.committed_len => true,
            Some(len) if len == batch.len => {
                sys::set_len(&batch.locked.file, batch.committed_len).is_ok()
            }
            _ => false,
        }
    }
}

/// What a receipt (`mbox:dev:ino:start:end:crc:path`) or a write-ahead mark
/// (`mbox:dev:ino:offset:path`) says.
#[derive(Debug, PartialEq, Eq)]
struct Parsed<'r> {
    dev: u64,
    ino: u64,
    /// The receipt's region, or the mark's offset twice.
    start: u64,
    end: u64,
    crc: Option<u32>,
    path: &'r str,
}

fn parse_receipt(text: &str) -> Option<Parsed<'_>> {
    let rest = text.strip_prefix(RECEIPT_PREFIX)?;
    let mut fields = rest.splitn(6, ':');
    let dev = fields.next()?.parse().ok()?;
    let ino = fields.next()?.parse().ok()?;
    let start = fields.next()?.parse().ok()?;
    let fourth = fields.next()?;
    match (fields.next(), fields.next()) {
        (Some(crc), Some(path)) => Some(Parsed {
            dev,
            ino,
            start,
            end: fourth.parse().ok()?,
            crc: Some(u32::from_str_radix(crc, 16).ok()?),
            path,
        }),
        // A mark: the path is the rest, and may itself hold colons.
        _ => {
            let path = rest.splitn(4, ':').nth(3)?;
            Some(Parsed {
                dev,
                ino,
                start,
                end: start,
                crc: None,
                path,
            })
        }
    }
}

/// The mbox a receipt or mark names.
pub(crate) fn receipt_path(receipt: &str) -> Option<PathBuf> {
    parse_receipt(receipt).map(|parsed| PathBuf::from(parsed.path))
}

impl MailStore for Mbox {
    fn begin(&mut self) -> Result<Option<String>, StoreError> {
        if self.batch.is_none() {
            let batch = self.begin_batch()?;
            self.batch = Some(batch);
        }
        let Some(batch) = self.batch.as_mut() else {
            return Ok(None);
        };
        if batch.announced {
            return Ok(None);
        }
        batch.announced = true;
        Ok(Some(format!(
            "{RECEIPT_PREFIX}{}:{}:{}:{}",
            batch.locked.dev,
            batch.locked.ino,
            batch.len,
            self.path.display()
        )))
    }

    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError> {
        let batch = match self.batch.take() {
            Some(batch) => batch,
            None => self.begin_batch()?,
        };
        let batch = self.batch.insert(batch);
        let mut buffer = Vec::with_capacity(BUFFER_SIZE);
        buffer.extend_from_slice(batch.separator);
        buffer.extend_from_slice(from_line(SystemTime::now()).as_bytes());
        Ok(Box::new(MboxDraft {
            path: &self.path,
            start: batch.len,
            written: 0,
            batch,
            buffer,
            converter: CrlfToLf::default(),
            quoter: FromQuoter::default(),
            converted: Vec::new(),
            last_byte: Some(b'\n'),
            crc: crc32fast::Hasher::new(),
            poisoned: false,
            finished: false,
        }))
    }

    fn prepare(&mut self) -> Result<Vec<String>, StoreError> {
        let Some(batch) = self.batch.as_ref() else {
            return Ok(Vec::new());
        };
        let staged = batch.staged;
        let synced = sys::sync_data(&batch.locked.file).map_err(|e| ("flush to disk", e));
        let damaged = self.batch.as_mut().and_then(|b| b.damaged.take());
        let synced = match damaged {
            Some(e) => Err(("cut off a failed message in", e)),
            None => synced,
        };
        if let Err((action, source)) = synced {
            // Cuts the file back to the last commit, which also removes the partial message.
            let _ = self.abandon_batch();
            return Err(StoreError::Io {
                action,
                path: self.path.clone(),
                source,
            });
        }
        // Durable and, in an mbox, already visible: release the locks so other programs get
        // their turn between batches.
        self.batch = None;
        self.prepared = staged;
        Ok(Vec::new())
    }

    fn publish(&mut self) -> Result<usize, StoreError> {
        Ok(std::mem::take(&mut self.prepared))
    }

    fn owns(&self, receipt: &str) -> bool {
        parse_receipt(receipt).is_some_and(|parsed| Path::new(parsed.path) == self.path)
    }

    fn rollback(&mut self) -> bool {
        self.abandon_batch()
    }

    fn recover(&mut self, receipts: &[String], marks: &[String]) -> Result<Vec<bool>, StoreError> {
        let _ = self.abandon_batch();
        let mut locked = self.lock()?;
        let io_error = |action, source| StoreError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let len = file_len(&locked.file)
            .ok_or_else(|| io_error("inspect", io::Error::other("cannot read its length")))?;
        let here = |parsed: &Parsed<'_>| parsed.dev == locked.dev && parsed.ino == locked.ino;
        let mut found = Vec::with_capacity(receipts.len());
        // Where popwire's own bytes end, as far as the journal tells.
        let mut ours_end: Option<u64> = None;
        for mark in marks
            .iter()
            .filter_map(|m| parse_receipt(m))
            .filter(|p| here(p))
        {
            ours_end = Some(ours_end.map_or(mark.start, |end| end.max(mark.start)));
        }
        for receipt in receipts {
            let intact = match parse_receipt(receipt).filter(|p| here(p) && p.end <= len) {
                Some(parsed) => {
                    let crc = crc_of(&mut locked.file, parsed.start, parsed.end)
                        .map_err(|source| io_error("read", source))?;
                    let intact = parsed.crc == Some(crc);
                    if intact {
                        ours_end = Some(ours_end.map_or(parsed.end, |end| end.max(parsed.end)));
                    }
                    intact
                }
                None => false,
            };
            found.push(intact);
        }
        // What a crash left after our last whole message: cut it off if only we wrote it.
        if let Some(end) = ours_end.filter(|&end| end < len)
            && only_our_partial_message(&mut locked.file, end, len)
                .map_err(|source| io_error("read", source))?
        {
            sys::set_len(&locked.file, end).map_err(|source| io_error("truncate", source))?;
            sys::sync_data(&locked.file).map_err(|source| io_error("flush to disk", source))?;
        }
        drop(locked);
        Ok(found)
    }
}

impl Drop for Mbox {
    fn drop(&mut self) {
        let _ = self.abandon_batch();
    }
}

/// A message being appended to the mbox.
struct MboxDraft<'s> {
    path: &'s Path,
    batch: &'s mut Batch,
    /// The file length before this message: truncated back to on failure or drop.
    start: u64,
    /// Bytes of this message already written to the file.
    written: u64,
    /// Bytes not yet written to the file.
    buffer: Vec<u8>,
    converter: CrlfToLf,
    quoter: FromQuoter,
    /// Reused buffer between the two conversions.
    converted: Vec<u8>,
    /// The last byte of the message as stored, to end it with exactly one blank line.
    last_byte: Option<u8>,
    /// Of every byte written, for the receipt.
    crc: crc32fast::Hasher,
    poisoned: bool,
    finished: bool,
}

impl MboxDraft<'_> {
    fn io_error(&self, action: &'static str, source: io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: self.path.to_owned(),
            source,
        }
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        if self.poisoned {
            Err(self.io_error("write", io::Error::other("an earlier write failed")))
        } else {
            Ok(())
        }
    }

    /// Converts `input` and adds it to the buffer, writing the buffer out when it is full.
    fn push(&mut self, input: &[u8]) -> Result<(), StoreError> {
        self.converted.clear();
        self.converter.feed(input, &mut self.converted);
        let before = self.buffer.len();
        self.quoter.feed(&self.converted, &mut self.buffer);
        if self.buffer.len() > before {
            self.last_byte = self.buffer.last().copied();
        }
        if self.buffer.len() >= BUFFER_SIZE {
            self.write_buffer()?;
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        // The file is in append mode: every write lands at the current end.
        if let Err(source) = sys::write_all(&self.batch.locked.file, &self.buffer) {
            self.poisoned = true;
            return Err(self.io_error("write", source));
        }
        self.crc.update(&self.buffer);
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }
}

impl io::Write for MboxDraft<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_poisoned().map_err(StoreError::into_io)?;
        self.push(buf).map_err(StoreError::into_io)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check_poisoned().map_err(StoreError::into_io)?;
        self.write_buffer().map_err(StoreError::into_io)
    }
}

impl Draft for MboxDraft<'_> {
    fn finish(mut self: Box<Self>) -> Result<Finished, StoreError> {
        self.check_poisoned()?;
        self.converted.clear();
        self.converter.finish(&mut self.converted);
        let before = self.buffer.len();
        self.quoter.feed(&self.converted, &mut self.buffer);
        self.quoter.finish(&mut self.buffer);
        if self.buffer.len() > before {
            self.last_byte = self.buffer.last().copied();
        }
        // End the message with a newline and then the blank line mboxrd puts between messages.
        if self.last_byte != Some(b'\n') {
            self.buffer.push(b'\n');
        }
        self.buffer.push(b'\n');
        self.write_buffer()?;
        let end = self.start + self.written;
        self.batch.len = end;
        self.batch.staged += 1;
        self.batch.separator = b"";
        self.finished = true;
        let crc = std::mem::take(&mut self.crc).finalize();
        let receipt = format!(
            "{RECEIPT_PREFIX}{}:{}:{}:{end}:{crc:08x}:{}",
            self.batch.locked.dev,
            self.batch.locked.ino,
            self.start,
            self.path.display()
        );
        Ok(Finished::Stored {
            receipt: Some(receipt),
        })
    }
}

impl Drop for MboxDraft<'_> {
    fn drop(&mut self) {
        // Cut the half message off, including any partly written buffer; but only when the file
        // still ends where we left it. If that cannot be done, the batch is refused at commit.
        if self.finished {
            return;
        }
        let ours = file_len(&self.batch.locked.file) == Some(self.start + self.written);
        let cut = if ours {
            sys::set_len(&self.batch.locked.file, self.start)
        } else {
            Err(io::Error::other(
                "another program wrote to the mbox while it was locked",
            ))
        };
        if let Err(e) = cut {
            self.batch.damaged = Some(e);
        }
    }
}

/// What to write before a new `From ` line so that it follows a blank line, given the file's end.
fn separator_after(file: &mut File, len: u64) -> io::Result<&'static [u8]> {
    if len == 0 {
        return Ok(b"");
    }
    let tail_len = len.min(2);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = [0u8; 2];
    let tail = tail.get_mut(..tail_len as usize).unwrap_or_default();
    file.read_exact(tail)?;
    Ok(match &*tail {
        b"\n\n" => b"",
        [b'\n'] | [_, b'\n'] => b"\n",
        _ => b"\n\n",
    })
}

fn open_file(path: &Path) -> Result<File, StoreError> {
    sys::open_append(path, true).map_err(|source| StoreError::Io {
        action: "open",
        path: path.to_owned(),
        source,
    })
}

fn file_len(file: &File) -> Option<u64> {
    file.metadata().ok().map(|m| m.len())
}

#[cfg(unix)]
fn identity(file: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(unix)]
fn path_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_file: &File) -> Option<(u64, u64)> {
    Some((0, 0))
}

#[cfg(not(unix))]
fn path_identity(_path: &Path) -> Option<(u64, u64)> {
    Some((0, 0))
}

/// CRC-32 of the file's bytes in `start..end`.
fn crc_of(file: &mut File, start: u64, end: u64) -> io::Result<u32> {
    file.seek(SeekFrom::Start(start))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut left = end.saturating_sub(start);
    let mut chunk = vec![0u8; BUFFER_SIZE];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
        let piece = chunk.get_mut(..want).unwrap_or_default();
        file.read_exact(piece)?;
        hasher.update(piece);
        left -= want as u64;
    }
    Ok(hasher.finalize())
}

/// Whether `start..end` of the file holds nothing but popwire's own messages (whole, or cut by a
/// crash): blank lines, then popwire's `From ` line, and no line starting with `From ` but its
/// own (its body lines are quoted). Anything else may be another program's, and is kept.
fn only_our_partial_message(file: &mut File, start: u64, end: u64) -> io::Result<bool> {
    file.seek(SeekFrom::Start(start))?;
    let mut reader = io::BufReader::with_capacity(BUFFER_SIZE, file.take(end - start));
    let mut line = Vec::new();
    let mut seen_from = false;
    loop {
        line.clear();
        if read_line_capped(&mut reader, &mut line)? == 0 {
            return Ok(seen_from);
        }
        if !seen_from {
            if line == b"\n" {
                continue;
            }
            if !line.starts_with(OWN_FROM) {
                return Ok(false);
            }
            seen_from = true;
        } else if line.starts_with(b"From ") && !line.starts_with(OWN_FROM) {
            return Ok(false);
        }
    }
}

/// Reads one line, keeping at most its first 64 bytes (enough to look at its start) so that a
/// huge line costs no memory; returns the bytes read.
fn read_line_capped(reader: &mut impl io::BufRead, line: &mut Vec<u8>) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(total);
        }
        let (used, done) = match memchr::memchr(b'\n', available) {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        let room = 64usize.saturating_sub(line.len()).min(used);
        line.extend_from_slice(available.get(..room).unwrap_or_default());
        reader.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
    }
}

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
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{CrlfToLf, Draft, Finished, MailStore, StoreError};
use crate::fetch::private_fs::create_private_dir_durably;
use crate::fetch::sys;

/// How long to wait, by default, for another program to release the mbox lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes collected before a write to the file.
const BUFFER_SIZE: usize = 64 * 1024;
/// A dotlock older than this was left by a program that died: procmail's own default
/// (`LOCKTIMEOUT`, 1024 s).
const STALE_DOTLOCK: Duration = Duration::from_secs(1024);
/// How receipts and write-ahead marks of an mbox start.
const RECEIPT_PREFIX: &str = "mbox:";
/// What popwire's own `From ` lines start with.
const OWN_FROM: &[u8] = b"From MAILER-DAEMON ";

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
struct Dotlock(PathBuf);

impl Drop for Dotlock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
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

/// mboxrd `From ` quoting: adds one `>` to every line matching `^>*From `. Streaming: a line
/// start is held back while it still matches the pattern, as a count of `>` and a prefix of
/// `"From "`, so memory stays constant however long a `>>>>…` run is.
#[derive(Debug)]
struct FromQuoter {
    state: QuoteState,
}

#[derive(Debug, Clone, Copy)]
enum QuoteState {
    /// Inside a line that can no longer match.
    Body,
    /// At a line start: `gts` `>` characters and `matched` bytes of `"From "` seen so far.
    LineStart { gts: usize, matched: usize },
}

const FROM: &[u8] = b"From ";

impl Default for FromQuoter {
    fn default() -> Self {
        Self {
            state: QuoteState::LineStart { gts: 0, matched: 0 },
        }
    }
}

impl FromQuoter {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() {
            match self.state {
                QuoteState::Body => match rest.iter().position(|&b| b == b'\n') {
                    Some(at) => {
                        let (line_end, next) = rest.split_at(at + 1);
                        out.extend_from_slice(line_end);
                        rest = next;
                        self.state = QuoteState::LineStart { gts: 0, matched: 0 };
                    }
                    None => {
                        out.extend_from_slice(rest);
                        rest = &[];
                    }
                },
                QuoteState::LineStart { gts, matched } => {
                    let Some((&byte, next)) = rest.split_first() else {
                        break;
                    };
                    rest = next;
                    if matched == 0 && byte == b'>' {
                        self.state = QuoteState::LineStart {
                            gts: gts + 1,
                            matched,
                        };
                    } else if FROM.get(matched) == Some(&byte) {
                        if matched + 1 == FROM.len() {
                            out.push(b'>');
                            emit_held(gts, FROM.len(), out);
                            self.state = QuoteState::Body;
                        } else {
                            self.state = QuoteState::LineStart {
                                gts,
                                matched: matched + 1,
                            };
                        }
                    } else {
                        emit_held(gts, matched, out);
                        out.push(byte);
                        self.state = if byte == b'\n' {
                            QuoteState::LineStart { gts: 0, matched: 0 }
                        } else {
                            QuoteState::Body
                        };
                    }
                }
            }
        }
    }

    /// Ends the input, writing out a held-back partial match.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if let QuoteState::LineStart { gts, matched } = self.state {
            emit_held(gts, matched, out);
        }
        self.state = QuoteState::default_start();
    }
}

impl QuoteState {
    fn default_start() -> Self {
        QuoteState::LineStart { gts: 0, matched: 0 }
    }
}

/// Writes `gts` `>` characters and the first `matched` bytes of `"From "`.
fn emit_held(gts: usize, matched: usize, out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(b'>', gts));
    out.extend_from_slice(FROM.get(..matched).unwrap_or_default());
}

/// `From MAILER-DAEMON Thu Nov 27 08:39:00 2025\n`: the date in asctime(3) form, in UTC (local
/// time would need the C library's time zone code, and readers do not interpret this date).
fn from_line(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    format!("From MAILER-DAEMON {}\n", asctime(secs))
}

fn asctime(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let in_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let month_name = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday} {month_name} {day:>2} {:02}:{:02}:{:02} {year}",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), after Howard Hinnant's algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
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

/// Creates `MBOX.lock` exclusively, as procmail and mutt do; `None` while another program
/// holds it. A lock older than [`STALE_DOTLOCK`] was left by a dead program and is broken.
fn take_dotlock(mbox: &Path) -> Result<Option<Dotlock>, StoreError> {
    let mut name = mbox.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    // The pid goes into a private file first, which is then linked into place: the lock never
    // exists without its pid, even if popwire is killed between the two steps (an empty lock
    // could only be judged stale by its age).
    let mut staging = path.as_os_str().to_owned();
    staging.push(format!(".{}.{}", std::process::id(), unique_suffix()));
    let staging = PathBuf::from(staging);
    let written = sys::create_new(&staging)
        .and_then(|file| sys::write_all(&file, format!("{}\n", std::process::id()).as_bytes()));
    if let Err(source) = written {
        let _ = fs::remove_file(&staging);
        return Err(if source.kind() == io::ErrorKind::PermissionDenied {
            StoreError::DotlockDenied { path, source }
        } else {
            StoreError::Io {
                action: "create the dotlock",
                path: staging,
                source,
            }
        });
    }
    let linked = fs::hard_link(&staging, &path);
    let _ = fs::remove_file(&staging);
    match linked {
        Ok(()) => Ok(Some(Dotlock(path))),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let old = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| SystemTime::now().duration_since(modified).ok())
                .is_some_and(|age| age > STALE_DOTLOCK);
            if old || holder_is_gone(&path) {
                let _ = fs::remove_file(&path);
            }
            Ok(None)
        }
        Err(source) if source.kind() == io::ErrorKind::PermissionDenied => {
            Err(StoreError::DotlockDenied { path, source })
        }
        Err(source) => Err(StoreError::Io {
            action: "create the dotlock",
            path,
            source,
        }),
    }
}

/// Differs between the dotlock attempts of one process.
fn unique_suffix() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Whether a dotlock names a process (as popwire's own do) that no longer exists on this
/// machine: the lock of a run that was killed, to be broken at once rather than after
/// [`STALE_DOTLOCK`]. A lock without a pid in it (Python's, procmail's) is never judged so.
fn holder_is_gone(lock: &Path) -> bool {
    let Ok(text) = fs::read_to_string(lock) else {
        return false;
    };
    let Some(pid) = text
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use std::io::Write;

    fn quote_in_pieces(input: &[u8], split: usize) -> Vec<u8> {
        let mut quoter = FromQuoter::default();
        let mut out = Vec::new();
        let (a, b) = input.split_at(split);
        quoter.feed(a, &mut out);
        quoter.feed(b, &mut out);
        quoter.finish(&mut out);
        out
    }

    #[test]
    fn from_quoting() {
        let input = b"From x\nFrom\n>From y\n>>From z\n> From w\nFro\nxFrom \n>>>\n>Fr";
        let expected: &[u8] =
            b">From x\nFrom\n>>From y\n>>>From z\n> From w\nFro\nxFrom \n>>>\n>Fr";
        for split in 0..=input.len() {
            assert_eq!(quote_in_pieces(input, split), expected, "split at {split}");
        }
        let mut quoter = FromQuoter::default();
        let mut out = Vec::new();
        for byte in input {
            quoter.feed(std::slice::from_ref(byte), &mut out);
        }
        quoter.finish(&mut out);
        assert_eq!(out, expected);
    }

    fn stored(dir: &Path) -> String {
        String::from_utf8(fs::read(dir.join("mbox")).unwrap()).unwrap()
    }

    fn strip_from_dates(text: &str) -> String {
        text.lines()
            .map(|line| {
                if line.starts_with("From MAILER-DAEMON ") {
                    "From MAILER-DAEMON DATE"
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn appends_quoted_messages() {
        let dir = tempfile::tempdir().unwrap();
        let mut mbox = Mbox::open(&dir.path().join("mbox")).unwrap();
        let mut draft = mbox.draft().unwrap();
        draft.write_all(b"Subject: a\r\n\r\nFr").unwrap();
        draft.write_all(b"om here\r").unwrap();
        draft.write_all(b"\n>From there\r\nend").unwrap();
        let _ = draft.finish().unwrap();
        let mut draft = mbox.draft().unwrap();
        draft.write_all(b"Subject: b\r\n\r\nbody\r\n").unwrap();
        let _ = draft.finish().unwrap();
        assert_eq!(mbox.commit().unwrap(), 2);
        let text = stored(dir.path());
        assert!(text.starts_with("From MAILER-DAEMON "));
        assert_eq!(
            strip_from_dates(&text),
            "From MAILER-DAEMON DATE\nSubject: a\n\n>From here\n>>From there\nend\n\n\
             From MAILER-DAEMON DATE\nSubject: b\n\nbody\n"
        );
        assert!(text.ends_with("body\n\n"));
    }

    #[test]
    fn dropped_draft_is_truncated_away() {
        let dir = tempfile::tempdir().unwrap();
        let mut mbox = Mbox::open(&dir.path().join("mbox")).unwrap();
        let mut draft = mbox.draft().unwrap();
        draft.write_all(b"Subject: kept\r\n\r\nyes\r\n").unwrap();
        let _ = draft.finish().unwrap();
        assert_eq!(mbox.commit().unwrap(), 1);
        let committed = stored(dir.path());

        let mut draft = mbox.draft().unwrap();
        // More than the buffer, so part of it reaches the file before the drop.
        let line = b"0123456789012345678901234567890123456789012345678901234567890123\r\n";
        for _ in 0..2000 {
            draft.write_all(line).unwrap();
        }
        draft.flush().unwrap();
        assert!(stored(dir.path()).len() > committed.len());
        drop(draft);
        assert_eq!(stored(dir.path()), committed);
        assert_eq!(mbox.commit().unwrap(), 0);

        // A later message still lands right after the committed one.
        let mut draft = mbox.draft().unwrap();
        draft.write_all(b"Subject: next\r\n\r\n").unwrap();
        let _ = draft.finish().unwrap();
        assert_eq!(mbox.commit().unwrap(), 1);
        assert_eq!(
            strip_from_dates(&stored(dir.path())),
            "From MAILER-DAEMON DATE\nSubject: kept\n\nyes\n\nFrom MAILER-DAEMON DATE\nSubject: next\n\n"
        );
    }

    #[test]
    fn uncommitted_batch_is_cut_off_when_the_store_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        fs::write(&path, "From old\nx\n").unwrap();
        let mut mbox = Mbox::open(&path).unwrap();
        let mut draft = mbox.draft().unwrap();
        draft.write_all(b"Subject: lost\r\n").unwrap();
        let _ = draft.finish().unwrap();
        drop(mbox);
        assert_eq!(stored(dir.path()), "From old\nx\n");
    }

    #[test]
    fn separates_from_existing_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        for (existing, separator) in [("", ""), ("x", "\n\n"), ("x\n", "\n"), ("x\n\n", "")] {
            fs::write(&path, existing).unwrap();
            let mut mbox = Mbox::open(&path).unwrap();
            let _ = mbox.draft().unwrap().finish().unwrap();
            mbox.commit().unwrap();
            let text = stored(dir.path());
            let expected_prefix = format!("{existing}{separator}From MAILER-DAEMON ");
            assert!(text.starts_with(&expected_prefix), "{existing:?}: {text:?}");
        }
    }

    #[test]
    fn locked_by_another_holder_waits_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        mbox.set_lock_timeout(Duration::from_millis(300));
        let other = File::open(&path).unwrap();
        other.lock().unwrap();
        let started = Instant::now();
        let error = mbox.draft().err().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(matches!(error, StoreError::Locked { .. }));
        assert!(error.to_string().contains("is locked by another program"));
        other.unlock().unwrap();
        let _ = mbox.draft().unwrap().finish().unwrap();
        assert_eq!(mbox.commit().unwrap(), 1);
    }

    #[test]
    fn asctime_dates() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(asctime(1_764_232_740), "Thu Nov 27 08:39:00 2025");
        assert_eq!(asctime(4_107_542_399), "Sun Feb 28 23:59:59 2100");
    }

    #[test]
    fn bytes_another_program_wrote_are_never_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        let mut draft = mbox.draft().unwrap();
        draft.write_all(&vec![b'x'; 100_000]).unwrap();
        draft.flush().unwrap();
        // A program that ignores every lock appends meanwhile.
        let mut other = fs::OpenOptions::new().append(true).open(&path).unwrap();
        other.write_all(b"From other\nSubject: theirs\n\n").unwrap();
        drop(draft);
        let text = fs::read(&path).unwrap();
        assert!(text.ends_with(b"From other\nSubject: theirs\n\n"));
        // The batch is refused rather than committed over a damaged file.
        assert!(mbox.commit().is_err());
        assert!(fs::read(&path).unwrap().ends_with(b"Subject: theirs\n\n"));
    }

    #[test]
    fn a_dotlock_or_an_fcntl_lock_of_another_program_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        mbox.set_lock_timeout(Duration::from_millis(300));
        // procmail's and Python's dotlock: no pid in it, so only its age could make it stale.
        fs::write(dir.path().join("mbox.lock"), "").unwrap();
        assert!(matches!(
            mbox.draft().err(),
            Some(StoreError::Locked { .. })
        ));
        // A dotlock naming a process that is gone is a crashed run's: broken at once.
        fs::write(dir.path().join("mbox.lock"), "2147483646\n").unwrap();
        let _ = mbox.draft().unwrap().finish().unwrap();
        assert_eq!(mbox.commit().unwrap(), 1);
        // Python's mailbox.lock() and procmail take a POSIX record lock: held by another process.
        let mut holder = std::process::Command::new("python3")
            .arg("-c")
            .arg("import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)")
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(holder.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "locked\n");
        assert!(matches!(
            mbox.draft().err(),
            Some(StoreError::Locked { .. })
        ));
        holder.kill().unwrap();
        holder.wait().unwrap();
        let _ = mbox.draft().unwrap().finish().unwrap();
        assert_eq!(mbox.commit().unwrap(), 1);
        assert!(!dir.path().join("mbox.lock").exists());
    }

    #[test]
    fn recovery_keeps_whole_messages_and_cuts_what_a_crash_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        fs::write(&path, "From someone\nold\n\n").unwrap();
        let mut mbox = Mbox::open(&path).unwrap();
        // A crash within this process leaves its flock and dotlock held; an fcntl lock, like the
        // others after a real crash, does not stand in its own process's way.
        mbox.set_locks(&[LockKind::Fcntl]);
        let mark = mbox.begin().unwrap().unwrap();
        assert!(mbox.owns(&mark));
        let mut receipts = Vec::new();
        for body in [
            &b"Subject: one\r\n\r\n1\r\n"[..],
            b"Subject: two\r\n\r\n2\r\n",
        ] {
            let mut draft = mbox.draft().unwrap();
            draft.write_all(body).unwrap();
            match draft.finish().unwrap() {
                Finished::Stored { receipt: Some(r) } => receipts.push(r),
                other => panic!("{other:?}"),
            }
        }
        // The crash, mid-way through a third message: no destructor runs.
        let mut draft = mbox.draft().unwrap();
        draft.write_all(&vec![b'y'; 70_000]).unwrap();
        std::mem::forget(draft);
        std::mem::forget(mbox);
        let before = fs::metadata(&path).unwrap().len();
        // The second message's receipt line was lost in the crash: only the first is known.
        let mut again = Mbox::open(&path).unwrap();
        again.set_locks(&[LockKind::Fcntl]);
        let found = again
            .recover(
                &[
                    receipts[0].clone(),
                    "mbox:1:2:0:5:00000000:/elsewhere".into(),
                ],
                &[mark],
            )
            .unwrap();
        assert_eq!(found, [true, false]);
        let text = String::from_utf8(fs::read(&path).unwrap()).unwrap();
        assert!(fs::metadata(&path).unwrap().len() < before);
        assert_eq!(
            strip_from_dates(&text),
            "From someone\nold\n\nFrom MAILER-DAEMON DATE\nSubject: one\n\n1\n"
        );
    }
}

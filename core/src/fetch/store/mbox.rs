//! mboxrd delivery: messages appended to one file, each after a `From ` line.
//!
//! - Each message starts with `From MAILER-DAEMON <asctime date>` (the envelope sender is not
//!   known to POP3) and ends with a blank line.
//! - mboxrd quoting: a body line matching `^>*From ` gets one more `>`, so readers can undo it
//!   exactly. Done in a streaming way that survives a split anywhere in the pattern.
//! - The file is locked with `flock` (std's `File::try_lock`) from the first message of a batch to
//!   its commit, so a mail reader never sees, nor rewrites under us, a batch we may still truncate.
//!   Dotlocking (`FILE.lock`) is left alone: it needs write access to the directory, which mbox
//!   users outside a mail spool have no reason to give. Note that readers which only take
//!   `fcntl` locks (mutt's default) are not excluded by `flock` on local file systems.
//! - A message that fails or is dropped half-way is cut off again: the file is truncated back to
//!   its length before the message. Staged messages not committed are cut off the same way.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{CrlfToLf, Draft, MailStore, StoreError};
use crate::fetch::private_fs::{create_private_dir, private_options};

/// How long to wait, by default, for another program to release the mbox lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes collected before a write to the file.
const BUFFER_SIZE: usize = 64 * 1024;

/// An mboxrd file.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    /// The open, locked file while a batch is in progress.
    batch: Option<Batch>,
    lock_timeout: Duration,
    /// Messages made durable by the last `prepare`, for `publish` to report.
    prepared: usize,
}

#[derive(Debug)]
struct Batch {
    file: File,
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
}

impl Mbox {
    /// Opens the mbox at `path`, creating it (mode 0600) and its directory (0700) if missing.
    /// The file is only locked while a batch is being written.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| StoreError::Io {
                action: "create the directory",
                path: dir.to_owned(),
                source,
            })?;
        }
        let file = open_file(path)?;
        drop(file);
        Ok(Self {
            path: path.to_owned(),
            batch: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            prepared: 0,
        })
    }

    /// Sets how long to wait for another program's lock before giving up with
    /// [`StoreError::Locked`]; [`DEFAULT_LOCK_TIMEOUT`] unless set.
    pub fn set_lock_timeout(&mut self, timeout: Duration) {
        self.lock_timeout = timeout;
    }

    /// The mbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens and locks the file for a batch, and notes how it ends.
    fn begin_batch(&self) -> Result<Batch, StoreError> {
        let io_error = |action, source| StoreError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let deadline = Instant::now() + self.lock_timeout;
        loop {
            let mut file = open_file(&self.path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(StoreError::Locked {
                            path: self.path.clone(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(fs::TryLockError::Error(source)) => return Err(io_error("lock", source)),
            }
            // The lock holder may have replaced the file (a reader rewriting it via rename):
            // then our lock is on a file nobody reads, so start over with the new one.
            if !same_file(&file, &self.path) {
                continue;
            }
            let len = file
                .metadata()
                .map_err(|source| io_error("inspect", source))?
                .len();
            let separator =
                separator_after(&mut file, len).map_err(|source| io_error("read", source))?;
            return Ok(Batch {
                file,
                committed_len: len,
                len,
                staged: 0,
                separator,
                damaged: None,
            });
        }
    }

    /// Cuts off everything after the last commit and releases the lock.
    fn abandon_batch(&mut self) {
        // Dropping the file at the end closes it, which releases the lock.
        let Some(batch) = self.batch.take() else {
            return;
        };
        // Unconditionally: after a failed cut-off `len` may not tell where the file really ends.
        let _ = batch.file.set_len(batch.committed_len);
    }
}

impl MailStore for Mbox {
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
            poisoned: false,
            finished: false,
        }))
    }

    fn prepare(&mut self) -> Result<Vec<Option<String>>, StoreError> {
        let Some(batch) = self.batch.as_ref() else {
            return Ok(Vec::new());
        };
        let staged = batch.staged;
        let synced = batch.file.sync_data().map_err(|e| ("flush to disk", e));
        let damaged = self.batch.as_mut().and_then(|b| b.damaged.take());
        let synced = match damaged {
            Some(e) => Err(("cut off a failed message in", e)),
            None => synced,
        };
        if let Err((action, source)) = synced {
            // Cuts the file back to the last commit, which also removes the partial message.
            self.abandon_batch();
            return Err(StoreError::Io {
                action,
                path: self.path.clone(),
                source,
            });
        }
        // Durable and, in an mbox, already visible: release the lock so mail readers get their
        // turn between batches.
        self.batch = None;
        self.prepared = staged;
        Ok(vec![None; staged])
    }

    fn publish(&mut self) -> Result<usize, StoreError> {
        Ok(std::mem::take(&mut self.prepared))
    }
}

impl Drop for Mbox {
    fn drop(&mut self) {
        self.abandon_batch();
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
        if let Err(source) = self.batch.file.write_all(&self.buffer) {
            self.poisoned = true;
            return Err(self.io_error("write", source));
        }
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }
}

impl Write for MboxDraft<'_> {
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
    fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
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
        self.batch.len = self.start + self.written;
        self.batch.staged += 1;
        self.batch.separator = b"";
        self.finished = true;
        Ok(())
    }
}

impl Drop for MboxDraft<'_> {
    fn drop(&mut self) {
        // Cut the half message off, including any partly written buffer. If even that fails,
        // the batch is refused at commit and cut back to its start.
        if self.finished {
            return;
        }
        if let Err(e) = self.batch.file.set_len(self.start) {
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
    private_options()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|source| StoreError::Io {
            action: "open",
            path: path.to_owned(),
            source,
        })
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, _path: &Path) -> bool {
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

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
        draft.finish().unwrap();
        let mut draft = mbox.draft().unwrap();
        draft.write_all(b"Subject: b\r\n\r\nbody\r\n").unwrap();
        draft.finish().unwrap();
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
        draft.finish().unwrap();
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
        draft.finish().unwrap();
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
        draft.finish().unwrap();
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
            mbox.draft().unwrap().finish().unwrap();
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
        mbox.draft().unwrap().finish().unwrap();
        assert_eq!(mbox.commit().unwrap(), 1);
    }

    #[test]
    fn asctime_dates() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(asctime(1_764_232_740), "Thu Nov 27 08:39:00 2025");
        assert_eq!(asctime(4_107_542_399), "Sun Feb 28 23:59:59 2100");
    }
}

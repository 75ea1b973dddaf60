//! Maildir delivery (<https://cr.yp.to/proto/maildir.html>), with group commit.
//!
//! Each message is written to `tmp/` under a unique name. A batch is committed in two steps:
//! [`prepare`](MailStore::prepare) makes every file durable (fdatasync of each file from a few
//! threads at once, so that the file system can share one journal commit among them, then one
//! fsync of `tmp/`) and hands out each message's final name as its receipt; [`publish`](MailStore::publish) renames each file into `new/` with its size appended
//! (`,S=<bytes>`, the Maildir++ extension Dovecot and Courier read to avoid a stat) and fsyncs
//! `new/`. A mail reader never sees a half-written message: it only looks in `new/` and `cur/`.
//!
//! Between the steps the fetch writes the receipts to its journal. After a crash,
//! [`recover`](MailStore::recover) finds each receipt's file, still in `tmp/` or already in `new/`
//! or `cur/`, and finishes the rename: every journaled message is delivered exactly once.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{CrlfToLf, Draft, Finished, MailStore, StoreError};
use crate::fetch::private_fs::create_private_dir_durably;
use crate::fetch::sys;

/// How a Maildir receipt starts; the rest is the message's path in `new/`, so that recovery can
/// find the Maildir even after the account's config moved on to another destination.
pub(crate) const RECEIPT_PREFIX: &str = "maildir:";

/// Files in `tmp/` older than this are left over from deliveries that died (the Maildir
/// specification's 36 hours), and are removed.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(36 * 3600);

/// Counts deliveries in this process; part of each unique name, so that two messages in the same
/// microsecond (or two stores in one process) never collide.
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// Bytes a draft collects before writing them to its file: a typical message is one `write`.
const WRITE_BUFFER: usize = 64 * 1024;

/// A Maildir: a directory with `tmp/`, `new/` and `cur/`.
#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
    tmp: PathBuf,
    new: PathBuf,
    cur: PathBuf,
    /// Finished drafts not yet prepared.
    staged: Vec<Staged>,
    /// Prepared (durable in `tmp/`), not yet published.
    prepared: Vec<Staged>,
    /// The write buffer, reused by every draft.
    buffer: Vec<u8>,
    /// What an fdatasync costs here, learnt from the first message.
    sync_cost: SyncCost,
}

/// Whether syncing a file waits for a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncCost {
    /// Not measured yet.
    Unknown,
    /// It does not (tmpfs, a fast device): each file is synced as it is finished, before it is
    /// closed, which saves reopening it.
    Free,
    /// It does: files are synced together in `prepare`, from several threads.
    Costly,
}

/// An fdatasync faster than this did not wait for a disk.
const SYNC_IS_FREE: std::time::Duration = std::time::Duration::from_micros(200);

#[derive(Debug)]
struct Staged {
    /// The file's name in `tmp/`.
    tmp_name: String,
    /// Its size in bytes, which completes its name in `new/`.
    size: u64,
    /// Its data is already synced.
    synced: bool,
}

impl Staged {
    /// The name in `new/`.
    fn final_name(&self) -> String {
        format!("{},S={}", self.tmp_name, self.size)
    }
}

/// The unique part of a Maildir file name: what no reader changes when it adds `,W=` sizes or
/// moves the file into `cur/` with `:2,<flags>`.
fn base_name(name: &str) -> &str {
    let end = name.find([',', ':']).unwrap_or(name.len());
    name.get(..end).unwrap_or(name)
}

impl Maildir {
    /// Opens the Maildir at `root`, creating it and its `tmp/`, `new/` and `cur/` (mode 0700)
    /// when missing.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        // Absolute, because receipts name the Maildir and must mean it from any directory.
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
        let root = root.as_path();
        let maildir = Self {
            root: root.to_owned(),
            tmp: root.join("tmp"),
            new: root.join("new"),
            cur: root.join("cur"),
            staged: Vec::new(),
            prepared: Vec::new(),
            buffer: Vec::new(),
            sync_cost: SyncCost::Unknown,
        };
        for dir in [&maildir.tmp, &maildir.new, &maildir.cur] {
            create_private_dir_durably(dir).map_err(|source| StoreError::Io {
                action: "create the Maildir directory",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(maildir)
    }

    /// The Maildir's top directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a new file in `tmp/` under a fresh unique name.
    fn create_tmp(&self) -> Result<(File, String), StoreError> {
        let mut last_error = None;
        // A collision means a clock step or a reused pid; a new counter value resolves it.
        for _ in 0..16 {
            let name = unique_name();
            let path = self.tmp.join(&name);
            match sys::create_new(&path) {
                Ok(file) => return Ok((file, name)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(source) => {
                    return Err(StoreError::Io {
                        action: "create",
                        path,
                        source,
                    });
                }
            }
        }
        Err(StoreError::Io {
            action: "create a uniquely named file in",
            path: self.tmp.clone(),
            source: last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
        })
    }

    /// Removes the files of messages that will never be delivered.
    fn discard(&mut self) {
        for staged in self.staged.drain(..).chain(self.prepared.drain(..)) {
            let _ = fs::remove_file(self.tmp.join(&staged.tmp_name));
        }
    }

    /// Makes the staged files and their names in `tmp/` durable.
    ///
    /// Not `syncfs(2)`, though one call would do: it also writes back every other program's
    /// dirty data on the file system, which can take seconds on a busy machine.
    fn sync_staged(&self) -> Result<(), StoreError> {
        let paths: Vec<PathBuf> = self
            .staged
            .iter()
            .filter(|staged| !staged.synced)
            .map(|staged| self.tmp.join(&staged.tmp_name))
            .collect();
        sync_data_concurrently(&paths).map_err(|(path, source)| StoreError::Io {
            action: "flush to disk",
            path,
            source,
        })?;
        sys::sync_dir(&self.tmp).map_err(|source| StoreError::Io {
            action: "flush to disk the directory",
            path: self.tmp.clone(),
            source,
        })
    }

    /// The receipt of a message published under `final_name`.
    fn receipt(&self, final_name: &str) -> String {
        format!("{RECEIPT_PREFIX}{}", self.new.join(final_name).display())
    }

    /// The file name a receipt of this Maildir stands for, if it is one of this Maildir's
    /// (receipts written before version 3 of the journal are bare file names).
    fn receipt_name<'r>(&self, receipt: &'r str) -> Option<&'r str> {
        let name = match receipt.strip_prefix(RECEIPT_PREFIX) {
            Some(path) => {
                let (dir, name) = path.rsplit_once('/')?;
                (Path::new(dir) == self.new).then_some(name)?
            }
            None => receipt,
        };
        is_plain_file_name(name).then_some(name)
    }

    /// The unique names of every message in `new/` and `cur/`, however a mail reader has
    /// renamed them since (`,W=` added, `:2,<flags>` after a move into `cur/`).
    fn published_names(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut names = std::collections::HashSet::new();
        for dir in [&self.new, &self.cur] {
            let entries = fs::read_dir(dir).map_err(|source| StoreError::Io {
                action: "list",
                path: dir.clone(),
                source,
            })?;
            for entry in entries.filter_map(Result::ok) {
                names.insert(base_name(&entry.file_name().to_string_lossy()).to_owned());
            }
        }
        Ok(names)
    }
}

/// Threads that fdatasync a batch together. One at a time, each fdatasync waits for its own
/// journal commit; a few in flight share commits (256 files on ext4 here: 65 ms one by one,
/// 42 ms eight at a time). More threads did not help.
const SYNC_THREADS: usize = 8;

/// fdatasync of every file, a few at a time; the first error and its path, if any.
fn sync_data_concurrently(paths: &[PathBuf]) -> Result<(), (PathBuf, io::Error)> {
    let sync = |path: &PathBuf| {
        File::open(path)
            .and_then(|file| sys::sync_data(&file))
            .map_err(|e| (path.clone(), e))
    };
    if paths.len() <= 1 {
        return paths.iter().try_for_each(sync);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..paths.len().min(SYNC_THREADS) {
            scope.spawn(|| {
                while let Some(path) = paths.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(e) = sync(path) {
                        if let Ok(mut first) = failure.lock() {
                            first.get_or_insert(e);
                        }
                        // The others stop at their next file.
                        next.store(paths.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    match failure.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        // Only reachable if a worker panicked while holding the lock.
        Err(_) => Err((
            paths.first().cloned().unwrap_or_default(),
            io::Error::other("a sync thread failed"),
        )),
    }
}

/// A receipt is a file name this store made: anything else (a damaged or edited journal) must
/// never be joined to a directory path.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.bytes().any(|b| b == b'/' || b == 0)
}

impl MailStore for Maildir {
    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError> {
        let (file, tmp_name) = self.create_tmp()?;
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        Ok(Box::new(MaildirDraft {
            file: Some(file),
            tmp_name,
            converter: CrlfToLf::default(),
            buffer,
            size: 0,
            poisoned: false,
            store: self,
        }))
    }

    fn prepare(&mut self) -> Result<Vec<String>, StoreError> {
        if self.staged.is_empty() {
            return Ok(Vec::new());
        }
        if let Err(e) = self.sync_staged() {
            self.discard();
            return Err(e);
        }
        let receipts = self
            .staged
            .iter()
            .map(|staged| self.receipt(&staged.final_name()))
            .collect();
        let staged = std::mem::take(&mut self.staged);
        self.prepared.extend(staged);
        Ok(receipts)
    }

    fn publish(&mut self) -> Result<usize, StoreError> {
        if self.prepared.is_empty() {
            return Ok(0);
        }
        // Taken first: whatever happens now, the prepared files stay in tmp/ for `recover`.
        let prepared = std::mem::take(&mut self.prepared);
        for message in &prepared {
            let target = self.new.join(message.final_name());
            sys::rename(&self.tmp.join(&message.tmp_name), &target).map_err(|source| {
                StoreError::Io {
                    action: "move the message into",
                    path: target,
                    source,
                }
            })?;
        }
        sys::sync_dir(&self.new).map_err(|source| StoreError::Io {
            action: "flush to disk the directory",
            path: self.new.clone(),
            source,
        })?;
        Ok(prepared.len())
    }

    fn owns(&self, receipt: &str) -> bool {
        self.receipt_name(receipt).is_some()
    }

    fn recover(&mut self, receipts: &[String], _marks: &[String]) -> Result<Vec<bool>, StoreError> {
        let mut found = Vec::with_capacity(receipts.len());
        let mut renamed = false;
        let published = self.published_names()?;
        for receipt in receipts {
            let Some(final_name) = self.receipt_name(receipt) else {
                found.push(false);
                continue;
            };
            let base = base_name(final_name);
            let source = self.tmp.join(base);
            let delivered = if published.contains(base) {
                true
            } else if source.exists() {
                let target = self.new.join(final_name);
                sys::rename(&source, &target).map_err(|source| StoreError::Io {
                    action: "move the message into",
                    path: target.clone(),
                    source,
                })?;
                renamed = true;
                true
            } else {
                false
            };
            found.push(delivered);
        }
        if renamed {
            sys::sync_dir(&self.new).map_err(|source| StoreError::Io {
                action: "flush to disk the directory",
                path: self.new.clone(),
                source,
            })?;
        }
        Ok(found)
    }

    fn tidy(&mut self) -> Result<(), StoreError> {
        let entries = fs::read_dir(&self.tmp).map_err(|source| StoreError::Io {
            action: "list",
            path: self.tmp.clone(),
            source,
        })?;
        let now = SystemTime::now();
        for entry in entries.filter_map(Result::ok) {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= STALE_TMP);
            if stale {
                // Another delivery agent's leftovers are as dead as ours after 36 hours.
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

impl Drop for Maildir {
    fn drop(&mut self) {
        self.discard();
    }
}

/// A message being written to `tmp/`.
struct MaildirDraft<'s> {
    store: &'s mut Maildir,
    /// `None` once finished.
    file: Option<File>,
    tmp_name: String,
    converter: CrlfToLf,
    /// Converted bytes not yet written (the store's reused buffer).
    buffer: Vec<u8>,
    size: u64,
    poisoned: bool,
}

impl MaildirDraft<'_> {
    fn write_error(&self, source: io::Error) -> StoreError {
        StoreError::Io {
            action: "write",
            path: self.store.tmp.join(&self.tmp_name),
            source,
        }
    }

    /// Writes the buffered bytes to the file.
    fn write_buffer(&mut self) -> Result<(), StoreError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        match sys::write_all(file, &self.buffer) {
            Ok(()) => {
                self.size += self.buffer.len() as u64;
                self.buffer.clear();
                Ok(())
            }
            Err(source) => {
                self.poisoned = true;
                Err(self.write_error(source))
            }
        }
    }

    /// Syncs the file now if that is known, or found, to cost nothing; returns whether it did.
    fn sync_if_free(&mut self) -> Result<bool, StoreError> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        if self.store.sync_cost == SyncCost::Costly {
            // Only a hint, so errors do not matter: start writing the data back now, so that
            // `prepare`'s fdatasync mostly waits for the journal commit (256 files on ext4:
            // 15-30 ms instead of 32-41 ms). The fdatasync is what makes it durable.
            #[cfg(target_os = "linux")]
            let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
            return Ok(false);
        }
        let started = std::time::Instant::now();
        if let Err(source) = sys::sync_data(file) {
            self.poisoned = true;
            return Err(StoreError::Io {
                action: "flush to disk",
                path: self.store.tmp.join(&self.tmp_name),
                source,
            });
        }
        if self.store.sync_cost == SyncCost::Unknown {
            self.store.sync_cost = if started.elapsed() < SYNC_IS_FREE {
                SyncCost::Free
            } else {
                SyncCost::Costly
            };
        }
        Ok(true)
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        if self.poisoned {
            Err(self.write_error(io::Error::other("an earlier write failed")))
        } else {
            Ok(())
        }
    }
}

impl Write for MaildirDraft<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_poisoned().map_err(StoreError::into_io)?;
        self.converter.feed(buf, &mut self.buffer);
        if self.buffer.len() >= WRITE_BUFFER {
            self.write_buffer().map_err(StoreError::into_io)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check_poisoned().map_err(StoreError::into_io)?;
        self.write_buffer().map_err(StoreError::into_io)
    }
}

impl Draft for MaildirDraft<'_> {
    fn finish(mut self: Box<Self>) -> Result<Finished, StoreError> {
        self.check_poisoned()?;
        self.converter.finish(&mut self.buffer);
        self.write_buffer()?;
        let synced = self.sync_if_free()?;
        // Closing reports nothing std can see; unsynced data is checked by `prepare`'s sync.
        self.file = None;
        let tmp_name = std::mem::take(&mut self.tmp_name);
        let size = self.size;
        self.store.staged.push(Staged {
            tmp_name,
            size,
            synced,
        });
        Ok(Finished::Staged)
    }
}

impl Drop for MaildirDraft<'_> {
    fn drop(&mut self) {
        self.store.buffer = std::mem::take(&mut self.buffer);
        // Unfinished (or failed): the message is discarded. A finished draft's name was taken.
        if !self.tmp_name.is_empty() {
            self.file = None;
            let _ = fs::remove_file(self.store.tmp.join(&self.tmp_name));
        }
    }
}

/// `<secs>.M<usecs>P<pid>Q<counter>.<host>`, the modern unique name from the Maildir spec.
fn unique_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let counter = DELIVERIES.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        process_id(),
        counter,
        hostname()
    )
}

/// `std::process::id()` is a system call each time; a Maildir name needs one per message.
fn process_id() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// This machine's name, made safe for a Maildir file name.
fn hostname() -> &'static str {
    static HOSTNAME: OnceLock<String> = OnceLock::new();
    HOSTNAME.get_or_init(|| {
        // Read from the kernel rather than gethostname(2): the crate has no unsafe code.
        let raw = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|path| fs::read_to_string(path).ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        sanitize_hostname(&raw)
    })
}

/// Escapes what would break a Maildir name: `/` and `:` (per the spec), `,` (the Maildir++ field
/// separator, as Dovecot does) and anything outside printable ASCII, all as `\ooo` octal.
fn sanitize_hostname(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        match byte {
            b'/' | b':' | b',' | b'\\' => out.push_str(&format!("\\{byte:03o}")),
            0x21..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\{byte:03o}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_layout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Mail").join("inbox");
        let maildir = Maildir::open(&root).unwrap();
        assert_eq!(maildir.root(), root);
        assert_eq!(names(&root), ["cur", "new", "tmp"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(root.join("new")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // Opening again is fine.
        Maildir::open(&root).unwrap();
    }

    #[test]
    fn commit_moves_messages_into_new() {
        let dir = tempfile::tempdir().unwrap();
        let mut maildir = Maildir::open(dir.path()).unwrap();
        for body in [
            &b"Subject: one\r\n\r\nfirst\r\n"[..],
            b"Subject: two\r\n\r\nsecond\r",
        ] {
            let mut draft = maildir.draft().unwrap();
            // Split a CRLF across writes.
            for chunk in body.chunks(3) {
                draft.write_all(chunk).unwrap();
            }
            let _ = draft.finish().unwrap();
        }
        // Staged, not yet visible.
        assert!(names(&dir.path().join("new")).is_empty());
        assert_eq!(names(&dir.path().join("tmp")).len(), 2);

        assert_eq!(maildir.commit().unwrap(), 2);
        assert!(names(&dir.path().join("tmp")).is_empty());
        let new = names(&dir.path().join("new"));
        assert_eq!(new.len(), 2);
        let mut bodies: Vec<Vec<u8>> = new
            .iter()
            .map(|n| fs::read(dir.path().join("new").join(n)).unwrap())
            .collect();
        bodies.sort();
        assert_eq!(bodies[0], b"Subject: one\n\nfirst\n");
        assert_eq!(bodies[1], b"Subject: two\n\nsecond\r");
        for name in &new {
            let (base, size) = name.rsplit_once(",S=").unwrap();
            let size: u64 = size.parse().unwrap();
            let on_disk = fs::metadata(dir.path().join("new").join(name))
                .unwrap()
                .len();
            assert_eq!(size, on_disk);
            assert!(
                base.contains(&format!("P{}Q", std::process::id())),
                "{name}"
            );
            assert!(!name.contains('/') && !name.contains(':'));
        }
        assert_eq!(maildir.commit().unwrap(), 0);
    }

    #[test]
    fn dropped_draft_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut maildir = Maildir::open(dir.path()).unwrap();
        let mut draft = maildir.draft().unwrap();
        draft.write_all(b"partial").unwrap();
        assert_eq!(names(&dir.path().join("tmp")).len(), 1);
        drop(draft);
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert_eq!(maildir.commit().unwrap(), 0);
        assert!(names(&dir.path().join("new")).is_empty());
    }

    #[test]
    fn uncommitted_messages_are_discarded_with_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut maildir = Maildir::open(dir.path()).unwrap();
        let mut draft = maildir.draft().unwrap();
        draft.write_all(b"x\r\n").unwrap();
        let _ = draft.finish().unwrap();
        drop(maildir);
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert!(names(&dir.path().join("new")).is_empty());
    }

    #[test]
    fn empty_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut maildir = Maildir::open(dir.path()).unwrap();
        let _ = maildir.draft().unwrap().finish().unwrap();
        assert_eq!(maildir.commit().unwrap(), 1);
        let new = names(&dir.path().join("new"));
        assert!(new[0].ends_with(",S=0"), "{new:?}");
    }

    fn stage(maildir: &mut Maildir, body: &[u8]) {
        let mut draft = maildir.draft().unwrap();
        draft.write_all(body).unwrap();
        let _ = draft.finish().unwrap();
    }

    #[test]
    fn prepare_keeps_messages_invisible_until_publish() {
        let dir = tempfile::tempdir().unwrap();
        let mut maildir = Maildir::open(dir.path()).unwrap();
        stage(&mut maildir, b"a\r\n");
        stage(&mut maildir, b"bb\r\n");
        let receipts = maildir.prepare().unwrap();
        assert_eq!(receipts.len(), 2);
        assert!(names(&dir.path().join("new")).is_empty());
        assert_eq!(maildir.publish().unwrap(), 2);
        let mut expected: Vec<String> = receipts
            .iter()
            .map(|r| r.rsplit_once('/').unwrap().1.to_owned())
            .collect();
        expected.sort();
        assert_eq!(names(&dir.path().join("new")), expected);
        assert!(names(&dir.path().join("tmp")).is_empty());
    }

    #[test]
    fn recover_finishes_what_a_crash_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut maildir = Maildir::open(root).unwrap();
        for body in [&b"one\r\n"[..], b"two\r\n", b"three\r\n", b"four\r\n"] {
            stage(&mut maildir, body);
        }
        let receipts = maildir.prepare().unwrap();
        assert!(receipts.iter().all(|r| maildir.owns(r)));
        // Receipts of journals before version 3 are bare names.
        let receipts: Vec<String> = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name = r.rsplit_once('/').unwrap().1;
                if i == 3 { name.to_owned() } else { r.clone() }
            })
            .collect();
        let names_of: Vec<String> = receipts
            .iter()
            .map(|r| r.rsplit_once('/').map_or(r.as_str(), |(_, n)| n).to_owned())
            .collect();
        // The crash: no destructor runs, so the prepared files stay in tmp/.
        std::mem::forget(maildir);
        // Before the crash one was published, and a mail reader then moved it to cur/ with
        // flags; another was published and left in new/; a third vanished from tmp/.
        let tmp_of = |r: &str| root.join("tmp").join(r.rsplit_once(",S=").unwrap().0);
        // The reader in new/ added the ,W= size Dovecot adds.
        fs::rename(
            tmp_of(&names_of[0]),
            root.join("cur").join(format!("{}:2,S", names_of[0])),
        )
        .unwrap();
        fs::rename(
            tmp_of(&names_of[1]),
            root.join("new").join(format!("{},W=9", names_of[1])),
        )
        .unwrap();
        fs::remove_file(tmp_of(&names_of[2])).unwrap();

        let mut again = Maildir::open(root).unwrap();
        let mut asked = receipts.clone();
        asked.push("../../etc/passwd".to_owned());
        asked.push("..".to_owned());
        asked.push("maildir:/elsewhere/new/x,S=1".to_owned());
        assert!(!again.owns("maildir:/elsewhere/new/x,S=1"));
        assert_eq!(
            again.recover(&asked, &[]).unwrap(),
            [true, true, false, true, false, false, false]
        );
        assert!(root.join("new").join(&names_of[3]).exists());
        assert!(names(&root.join("tmp")).is_empty());
        assert_eq!(names(&root.join("new")).len(), 2);
        assert_eq!(
            fs::read(root.join("new").join(&names_of[3])).unwrap(),
            b"four\n"
        );
    }

    #[test]
    fn unique_names_differ() {
        let a = unique_name();
        let b = unique_name();
        assert_ne!(a, b);
    }

    #[test]
    fn hostname_is_sanitised() {
        assert_eq!(sanitize_hostname("a/b:c,d"), r"a\057b\072c\054d");
        assert_eq!(sanitize_hostname("h ost\n"), r"h\040ost\012");
        assert_eq!(sanitize_hostname("mail.example.org"), "mail.example.org");
        assert!(!hostname().is_empty());
    }
}

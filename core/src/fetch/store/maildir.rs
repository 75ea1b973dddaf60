//! Maildir delivery (<https://cr.yp.to/proto/maildir.html>), with group commit.
//!
//! Each message is written to `tmp/` under a unique name. At commit every staged file is fsynced,
//! renamed into `new/` with its size appended (`,S=<bytes>`, the Maildir++ extension Dovecot and
//! Courier read to avoid a stat), and then `new/` and `tmp/` are fsynced so the renames survive a
//! crash. A mail reader never sees a half-written message: it only looks in `new/` and `cur/`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{CrlfToLf, Draft, MailStore, StoreError};
use crate::fetch::private_fs::{create_private_dir, private_options, sync_dir};

/// Counts deliveries in this process; part of each unique name, so that two messages in the same
/// microsecond (or two stores in one process) never collide.
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// A Maildir: a directory with `tmp/`, `new/` and `cur/`.
#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
    tmp: PathBuf,
    new: PathBuf,
    /// Finished drafts not yet committed.
    staged: Vec<Staged>,
}

#[derive(Debug)]
struct Staged {
    tmp_path: PathBuf,
    /// The file's name in `new/`.
    name: String,
}

impl Maildir {
    /// Opens the Maildir at `root`, creating it and its `tmp/`, `new/` and `cur/` (mode 0700)
    /// when missing.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let maildir = Self {
            root: root.to_owned(),
            tmp: root.join("tmp"),
            new: root.join("new"),
            staged: Vec::new(),
        };
        for dir in [&maildir.tmp, &maildir.new, &root.join("cur")] {
            create_private_dir(dir).map_err(|source| StoreError::Io {
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
    fn create_tmp(&self) -> Result<(File, PathBuf, String), StoreError> {
        let mut last_error = None;
        // A collision means a clock step or a reused pid; a new counter value resolves it.
        for _ in 0..16 {
            let name = unique_name();
            let path = self.tmp.join(&name);
            match create_new_private(&path) {
                Ok(file) => return Ok((file, path, name)),
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

    /// Removes the files of staged messages that will never be committed.
    fn discard_staged(&mut self) {
        for staged in self.staged.drain(..) {
            let _ = fs::remove_file(&staged.tmp_path);
        }
    }
}

impl MailStore for Maildir {
    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError> {
        let (file, tmp_path, base_name) = self.create_tmp()?;
        Ok(Box::new(MaildirDraft {
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
            tmp_path,
            base_name,
            converter: CrlfToLf::default(),
            converted: Vec::new(),
            size: 0,
            poisoned: false,
            store: self,
        }))
    }

    fn commit(&mut self) -> Result<usize, StoreError> {
        if self.staged.is_empty() {
            return Ok(0);
        }
        // Data first: a file must be on disk before its name appears in new/.
        for staged in &self.staged {
            let synced = File::open(&staged.tmp_path).and_then(|file| file.sync_all());
            if let Err(source) = synced {
                let path = staged.tmp_path.clone();
                self.discard_staged();
                return Err(StoreError::Io {
                    action: "flush to disk",
                    path,
                    source,
                });
            }
        }
        let staged = std::mem::take(&mut self.staged);
        let count = staged.len();
        let mut pending = staged.into_iter();
        while let Some(message) = pending.next() {
            let target = self.new.join(&message.name);
            if let Err(source) = fs::rename(&message.tmp_path, &target) {
                let _ = fs::remove_file(&message.tmp_path);
                for rest in pending {
                    let _ = fs::remove_file(&rest.tmp_path);
                }
                return Err(StoreError::Io {
                    action: "move the message into",
                    path: target,
                    source,
                });
            }
        }
        for dir in [&self.new, &self.tmp] {
            sync_dir(dir).map_err(|source| StoreError::Io {
                action: "flush to disk the directory",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(count)
    }
}

impl Drop for Maildir {
    fn drop(&mut self) {
        self.discard_staged();
    }
}

/// A message being written to `tmp/`.
struct MaildirDraft<'s> {
    store: &'s mut Maildir,
    /// `None` once finished.
    file: Option<BufWriter<File>>,
    tmp_path: PathBuf,
    base_name: String,
    converter: CrlfToLf,
    /// Reused buffer for converted bytes.
    converted: Vec<u8>,
    size: u64,
    poisoned: bool,
}

impl MaildirDraft<'_> {
    fn write_error(&self, source: io::Error) -> StoreError {
        StoreError::Io {
            action: "write",
            path: self.tmp_path.clone(),
            source,
        }
    }

    fn write_converted(&mut self) -> Result<(), StoreError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        match file.write_all(&self.converted) {
            Ok(()) => {
                self.size += self.converted.len() as u64;
                Ok(())
            }
            Err(source) => {
                self.poisoned = true;
                Err(self.write_error(source))
            }
        }
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
        self.converted.clear();
        self.converter.feed(buf, &mut self.converted);
        self.write_converted().map_err(StoreError::into_io)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut().map(BufWriter::flush) {
            Some(Err(source)) => {
                self.poisoned = true;
                Err(self.write_error(source).into_io())
            }
            _ => Ok(()),
        }
    }
}

impl Draft for MaildirDraft<'_> {
    fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        self.check_poisoned()?;
        self.converted.clear();
        self.converter.finish(&mut self.converted);
        self.write_converted()?;
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        // Closing the file reports nothing std can see; the data is checked by fsync at commit.
        if let Err(e) = file.into_inner() {
            self.poisoned = true;
            return Err(self.write_error(e.into_error()));
        }
        let name = format!("{},S={}", self.base_name, self.size);
        let tmp_path = std::mem::take(&mut self.tmp_path);
        self.store.staged.push(Staged { tmp_path, name });
        Ok(())
    }
}

impl Drop for MaildirDraft<'_> {
    fn drop(&mut self) {
        // Unfinished (or failed): the message is discarded. A finished draft's path was taken.
        if !self.tmp_path.as_os_str().is_empty() {
            self.file = None;
            let _ = fs::remove_file(&self.tmp_path);
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
        std::process::id(),
        counter,
        hostname()
    )
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

fn create_new_private(path: &Path) -> io::Result<File> {
    private_options().write(true).create_new(true).open(path)
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
            draft.finish().unwrap();
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
        draft.finish().unwrap();
        drop(maildir);
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert!(names(&dir.path().join("new")).is_empty());
    }

    #[test]
    fn empty_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut maildir = Maildir::open(dir.path()).unwrap();
        maildir.draft().unwrap().finish().unwrap();
        assert_eq!(maildir.commit().unwrap(), 1);
        let new = names(&dir.path().join("new"));
        assert!(new[0].ends_with(",S=0"), "{new:?}");
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

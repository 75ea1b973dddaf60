//! The dotlock other mail programs honour: created with the holder's pid in it, broken when
//! that process is gone or the lock is older than procmail's own timeout.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::super::StoreError;
use crate::fetch::sys;

/// A dotlock older than this was left by a program that died: procmail's own default
/// (`LOCKTIMEOUT`, 1024 s).
const STALE_DOTLOCK: Duration = Duration::from_secs(1024);

/// A dotlock this process holds; dropping it removes the file.
#[derive(Debug)]
pub(super) struct Dotlock(PathBuf);

impl Drop for Dotlock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Creates `MBOX.lock` exclusively, as procmail and mutt do; `None` while another program
/// holds it. A lock older than [`STALE_DOTLOCK`] was left by a dead program and is broken.
pub(super) fn take_dotlock(mbox: &Path) -> Result<Option<Dotlock>, StoreError> {
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

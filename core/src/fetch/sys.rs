//! Every file-system and process call on the delivery path, in one place.
//!
//! The stores, the journal and the account lock call these instead of `std::fs` directly, so
//! that a test can make the N-th call fail with ENOSPC, EIO, EXDEV or EDQUOT and then check that
//! nothing was lost or stored twice (`tests/tests/fault_walk.rs` walks N over every call of a
//! fetch). Without the `fault-injection` feature the check compiles to nothing.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::private_fs::private_options;

/// What a call does, so a fault plan (and its report) can tell calls apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Creating a file or a directory.
    Create,
    /// Opening an existing file.
    Open,
    /// Writing file data.
    Write,
    /// fdatasync/fsync of a file.
    SyncFile,
    /// fsync of a directory.
    SyncDir,
    /// A rename.
    Rename,
    /// Truncating a file.
    SetLen,
    /// Taking a lock.
    Lock,
    /// Starting a program (an MDA).
    Spawn,
    /// Writing to a program's standard input.
    Pipe,
}

/// Fails the call when a fault plan says so.
#[inline]
pub(crate) fn check(op: Op) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    {
        fault_injection::next(op)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = op;
        Ok(())
    }
}

pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    check(Op::Create)?;
    private_options().write(true).create_new(true).open(path)
}

pub(crate) fn open_append(path: &Path, create: bool) -> io::Result<File> {
    check(if create { Op::Create } else { Op::Open })?;
    private_options()
        .read(true)
        .append(true)
        .create(create)
        .open(path)
}

pub(crate) fn create_truncate(path: &Path) -> io::Result<File> {
    check(Op::Create)?;
    private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

pub(crate) fn write_all(mut file: &File, data: &[u8]) -> io::Result<()> {
    check(Op::Write)?;
    file.write_all(data)
}

pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    check(Op::SyncFile)?;
    file.sync_data()
}

pub(crate) fn sync_all(file: &File) -> io::Result<()> {
    check(Op::SyncFile)?;
    file.sync_all()
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    check(Op::SyncDir)?;
    super::private_fs::sync_dir(dir)
}

pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    check(Op::Rename)?;
    fs::rename(from, to)
}

pub(crate) fn set_len(file: &File, len: u64) -> io::Result<()> {
    check(Op::SetLen)?;
    file.set_len(len)
}

pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    check(Op::Create)?;
    super::private_fs::create_private_dir(dir)
}

/// Fault injection for tests: arm a plan, run a fetch, read what was called.
///
/// The plan is process-wide (the stores call from several threads), so a test that arms it
/// must not run fetches in parallel with other tests of the same process.
#[cfg(feature = "fault-injection")]
pub mod fault_injection {
    use std::io;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::Op;

    static ARMED: AtomicBool = AtomicBool::new(false);
    static PLAN: Mutex<Plan> = Mutex::new(Plan {
        calls: Vec::new(),
        fail_at: None,
    });

    struct Plan {
        calls: Vec<Op>,
        /// (1-based call number, raw OS error) of the call to fail.
        fail_at: Option<(usize, i32)>,
    }

    /// Starts counting calls; with `fail_at = Some((n, errno))` the n-th call (1-based) fails
    /// with that OS error, and every call after it succeeds again (a transient fault).
    pub fn arm(fail_at: Option<(usize, i32)>) {
        if let Ok(mut plan) = PLAN.lock() {
            plan.calls.clear();
            plan.fail_at = fail_at;
        }
        ARMED.store(true, Ordering::SeqCst);
    }

    /// Stops counting; returns the calls made since [`arm`], in order.
    pub fn disarm() -> Vec<Op> {
        ARMED.store(false, Ordering::SeqCst);
        PLAN.lock()
            .map(|mut plan| std::mem::take(&mut plan.calls))
            .unwrap_or_default()
    }

    pub(super) fn next(op: Op) -> io::Result<()> {
        if !ARMED.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Ok(mut plan) = PLAN.lock() else {
            return Ok(());
        };
        plan.calls.push(op);
        match plan.fail_at {
            Some((n, errno)) if n == plan.calls.len() => Err(io::Error::from_raw_os_error(errno)),
            _ => Ok(()),
        }
    }
}

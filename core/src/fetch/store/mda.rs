//! Delivery through a mail delivery agent (procmail, maildrop, `dovecot-lda`, ...).
//!
//! Each message is first written, with LF line endings and no `From ` line, to an unnamed spool
//! file, and only then given to a fresh MDA process as its standard input. Exit status 0 is the
//! MDA's promise that the message is stored, so there is nothing left for commit to do. Any other
//! status keeps the message on the server.
//!
//! - Spooling first means the MDA never sees a partial message: with a pipe, popwire dying
//!   mid-message (SIGKILL) would close the pipe, and the MDA would take the end of its input for
//!   the end of the message and deliver it cut.
//! - The MDA runs in a process group of its own, so that a deadline (`mda_timeout`) kills a whole
//!   pipeline (`spamc | procmail`), not only the shell.
//! - The spool file's offset is shared with the MDA's standard input: where it stands after the
//!   MDA exits shows whether the MDA read the whole message; reading part and exiting 0 is not a
//!   delivery.
//! - The MDA does not inherit the variable that holds the account's password (`password_env`).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::super::config::{CommandLine, DEFAULT_MDA_TIMEOUT};
use super::{CrlfToLf, Draft, Finished, MailStore, StoreError};
use crate::fetch::sys;

/// How much of the MDA's standard error is kept for the error message; the rest is drained so
/// the MDA never blocks on a full pipe.
const STDERR_KEEP: usize = 4096;
/// sysexits' "temporary failure": an MDA that exits with it wants the message again later.
const EX_TEMPFAIL: i32 = 75;
/// Bytes collected before a write to the spool file.
const BUFFER_SIZE: usize = 64 * 1024;

/// An MDA command run once per message.
#[derive(Debug)]
pub struct Mda {
    command: CommandLine,
    timeout: Duration,
    /// Variables the MDA must not see.
    hidden_env: Vec<OsString>,
    /// Messages accepted since the last commit.
    delivered: usize,
    /// Messages accepted before the last `prepare`, for `publish` to report.
    prepared: usize,
}

impl Mda {
    /// A store that pipes each message to `command`.
    pub fn new(command: CommandLine) -> Self {
        Self {
            command,
            timeout: DEFAULT_MDA_TIMEOUT,
            hidden_env: Vec::new(),
            delivered: 0,
            prepared: 0,
        }
    }

    /// Sets how long one message may take ([`DEFAULT_MDA_TIMEOUT`] unless set).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Keeps this environment variable (e.g. the one holding the password) from the MDA.
    pub fn hide_env(&mut self, name: impl Into<OsString>) {
        self.hidden_env.push(name.into());
    }

    /// The command messages are piped to.
    pub fn command(&self) -> &CommandLine {
        &self.command
    }

    fn io_error(&self, action: &'static str, source: io::Error) -> StoreError {
        StoreError::MdaIo {
            command: self.command.to_string(),
            action,
            source,
        }
    }
}

/// An unnamed file in the temporary directory: gone with the last descriptor, whatever happens.
pub(super) fn spool_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    sys::check(sys::Op::Create)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(&dir)
        {
            return Ok(file);
        }
    }
    // No O_TMPFILE here: a uniquely named file, unlinked at once.
    for attempt in 0..16u32 {
        let path = dir.join(format!(
            ".popwire-mda-{}-{}-{attempt}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        match super::super::private_fs::private_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                let _ = std::fs::remove_file(&path);
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}

impl MailStore for Mda {
    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError> {
        let spool = spool_file().map_err(|e| self.io_error("create a spool file for it", e))?;
        Ok(Box::new(MdaDraft {
            store: self,
            spool,
            buffer: Vec::with_capacity(BUFFER_SIZE),
            converter: CrlfToLf::default(),
            size: 0,
            poisoned: false,
            child: None,
        }))
    }

    fn prepare(&mut self) -> Result<Vec<String>, StoreError> {
        // Each delivery was final when the MDA exited 0.
        self.prepared = std::mem::take(&mut self.delivered);
        Ok(Vec::new())
    }

    fn publish(&mut self) -> Result<usize, StoreError> {
        Ok(std::mem::take(&mut self.prepared))
    }

    fn owns(&self, _receipt: &str) -> bool {
        // An MDA hands out no receipts.
        false
    }

    fn recover(&mut self, receipts: &[String], _marks: &[String]) -> Result<Vec<bool>, StoreError> {
        Ok(vec![false; receipts.len()])
    }
}

/// Kills the MDA's whole process group and reaps the MDA.
fn kill_group(child: &mut Child) {
    let pid = rustix::process::Pid::from_child(child);
    if rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// A message being spooled for the MDA.
struct MdaDraft<'s> {
    store: &'s mut Mda,
    spool: File,
    buffer: Vec<u8>,
    converter: CrlfToLf,
    /// Bytes written to the spool file.
    size: u64,
    poisoned: bool,
    /// The MDA while it runs, so that a drop kills it.
    child: Option<Child>,
}

impl MdaDraft<'_> {
    fn write_buffer(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if let Err(e) = sys::write_all(&self.spool, &self.buffer) {
            self.poisoned = true;
            return Err(self.store.io_error("spool the message for it", e));
        }
        self.size += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Runs the MDA on the spooled message; returns its exit status, how far it read, and the
    /// first line of its standard error.
    fn deliver(&mut self) -> Result<(ExitStatus, u64, Option<String>), StoreError> {
        let spawn_error = |source| StoreError::MdaSpawn {
            command: self.store.command.to_string(),
            source,
        };
        self.spool
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.store.io_error("rewind its spool file", e))?;
        sys::check(sys::Op::Spawn).map_err(spawn_error)?;
        let stdin = self.spool.try_clone().map_err(spawn_error)?;
        let mut command = self.store.command.to_command();
        for name in &self.store.hidden_env {
            command.env_remove(name);
        }
        let mut child = command
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(spawn_error)?;
        // Read standard error on a thread, so an MDA that writes much there never blocks.
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let _ = (&mut pipe).take(STDERR_KEEP as u64).read_to_end(&mut kept);
                let _ = io::copy(&mut pipe, &mut io::sink());
                kept
            })
        });
        self.child = Some(child);
        let status = self.wait();
        let stderr = stderr
            .and_then(|thread| thread.join().ok())
            .and_then(first_line);
        let status = status?;
        // The spool file and the MDA's standard input share one offset.
        let read = self
            .spool
            .stream_position()
            .map_err(|e| self.store.io_error("see how much it read", e))?;
        Ok((status, read, stderr))
    }

    /// Waits for the MDA to exit, until the deadline; kills its group at the deadline.
    fn wait(&mut self) -> Result<ExitStatus, StoreError> {
        let deadline = Instant::now() + self.store.timeout;
        let Some(child) = self.child.as_mut() else {
            return Err(self
                .store
                .io_error("wait for it", io::Error::other("not started")));
        };
        let pid = rustix::process::Pid::from_child(child);
        let exited = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(pidfd) => loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut fds = [rustix::event::PollFd::new(
                    &pidfd,
                    rustix::event::PollFlags::IN,
                )];
                let wait = rustix::event::Timespec::try_from(left).ok();
                match rustix::event::poll(&mut fds, wait.as_ref()) {
                    Ok(0) => break false,
                    Ok(_) => break true,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(self.store.io_error("wait for it", e.into())),
                }
            },
            // No pidfd (an old kernel): look every few milliseconds.
            Err(_) => loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break true;
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(2));
            },
        };
        let Some(mut child) = self.child.take() else {
            return Err(self
                .store
                .io_error("wait for it", io::Error::other("not started")));
        };
        if !exited {
            kill_group(&mut child);
            return Err(StoreError::MdaTimeout {
                command: self.store.command.to_string(),
                after: self.store.timeout,
            });
        }
        child
            .wait()
            .map_err(|source| self.store.io_error("wait for it", source))
    }
}

/// The first line of the MDA's standard error, cleaned for one-line display.
fn first_line(bytes: Vec<u8>) -> Option<String> {
    let text = String::from_utf8_lossy(&bytes);
    let line: String = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())?
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    Some(line)
}

impl Write for MdaDraft<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(StoreError::into_io(self.store.io_error(
                "spool the message for it",
                io::Error::other("an earlier write failed"),
            )));
        }
        self.converter.feed(buf, &mut self.buffer);
        if self.buffer.len() >= BUFFER_SIZE {
            self.write_buffer().map_err(StoreError::into_io)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_buffer().map_err(StoreError::into_io)
    }
}

impl Draft for MdaDraft<'_> {
    fn finish(mut self: Box<Self>) -> Result<Finished, StoreError> {
        if self.poisoned {
            return Err(self.store.io_error(
                "spool the message for it",
                io::Error::other("an earlier write failed"),
            ));
        }
        let mut tail = Vec::new();
        self.converter.finish(&mut tail);
        self.buffer.extend_from_slice(&tail);
        self.write_buffer()?;
        let (status, read, stderr) = self.deliver()?;
        let command = self.store.command.to_string();
        if !status.success() {
            return Err(StoreError::MdaFailed {
                command,
                status,
                stderr,
            });
        }
        if read < self.size {
            return Err(StoreError::MdaIncomplete { command, status });
        }
        self.store.delivered += 1;
        Ok(Finished::Stored { receipt: None })
    }
}

impl Drop for MdaDraft<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

/// Whether an MDA's exit status asks for the message again later (sysexits' `EX_TEMPFAIL`).
pub(crate) fn is_temporary(status: &ExitStatus) -> bool {
    status.code() == Some(EX_TEMPFAIL)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::time::{Duration, Instant};

    fn shell(line: String) -> CommandLine {
        CommandLine::Shell(line)
    }

    #[test]
    fn delivers_with_lf_endings() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut mda = Mda::new(shell(format!("cat >> '{}'", out.display())));
        for _ in 0..2 {
            let mut draft = mda.draft().unwrap();
            draft.write_all(b"Subject: x\r").unwrap();
            draft.write_all(b"\n\r\nbody\r\n").unwrap();
            let _ = draft.finish().unwrap();
        }
        assert_eq!(mda.commit().unwrap(), 2);
        assert_eq!(mda.commit().unwrap(), 0);
        assert_eq!(
            fs::read(&out).unwrap(),
            b"Subject: x\n\nbody\nSubject: x\n\nbody\n"
        );
    }

    #[test]
    fn argv_command() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let argv = vec!["tee".to_owned(), out.display().to_string()];
        let mut mda = Mda::new(CommandLine::Argv(argv));
        let mut draft = mda.draft().unwrap();
        draft.write_all(b"hi\r\n").unwrap();
        let _ = draft.finish().unwrap();
        assert_eq!(mda.commit().unwrap(), 1);
        assert_eq!(fs::read(&out).unwrap(), b"hi\n");
    }

    #[test]
    fn failure_names_command_status_and_stderr() {
        let mut mda = Mda::new(shell(
            "cat >/dev/null; echo 'procmail: mailbox full' >&2; echo more >&2; exit 75".into(),
        ));
        let mut draft = mda.draft().unwrap();
        draft.write_all(b"Subject: x\r\n\r\n").unwrap();
        let error = draft.finish().unwrap_err();
        assert_eq!(
            error.to_string(),
            "MDA \"cat >/dev/null; echo 'procmail: mailbox full' >&2; echo more >&2; exit 75\" \
             failed with exit status: 75: procmail: mailbox full (the message stays on the \
             server; fix the MDA and fetch again)"
        );
        assert_eq!(mda.commit().unwrap(), 0);
    }

    #[test]
    fn exit_zero_without_reading_is_not_delivery() {
        let mut mda = Mda::new(shell("exec 0<&-; exit 0".into()));
        let mut draft = mda.draft().unwrap();
        // Enough to fill any pipe buffer, so the write surely sees the closed pipe.
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..32 {
            draft.write_all(&chunk).unwrap();
        }
        let error = draft.finish().unwrap_err();
        assert!(matches!(error, StoreError::MdaIncomplete { .. }), "{error}");
        assert_eq!(mda.commit().unwrap(), 0);
    }

    #[test]
    fn dropped_draft_kills_the_mda_before_it_delivers() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut mda = Mda::new(shell(format!(
            "cat > '{0}.part' && mv '{0}.part' '{0}'",
            out.display()
        )));
        let mut draft = mda.draft().unwrap();
        draft.write_all(b"partial\r\n").unwrap();
        drop(draft);
        assert!(!out.exists());
        assert_eq!(mda.commit().unwrap(), 0);
    }

    #[test]
    fn missing_program() {
        let mut mda = Mda::new(CommandLine::Argv(vec!["/nonexistent/popwire-mda".into()]));
        let error = mda.draft().unwrap().finish().unwrap_err();
        assert!(matches!(error, StoreError::MdaSpawn { .. }));
        assert!(
            error
                .to_string()
                .starts_with("cannot run MDA \"/nonexistent/popwire-mda\": ")
        );
    }

    #[test]
    fn an_aborted_pipeline_is_killed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        // Killing only the shell would leave the second stage to deliver what it read.
        let mut mda = Mda::new(shell(format!(
            "cat | sh -c 'cat > \"{0}.part\" && mv \"{0}.part\" \"{0}\"'",
            out.display()
        )));
        let mut draft = mda.draft().unwrap();
        draft.write_all(b"partial\r\n").unwrap();
        drop(draft);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !out.exists(),
            "a stage of the pipeline delivered the partial message"
        );
    }

    #[test]
    fn reading_part_and_exiting_zero_is_not_delivery() {
        // The whole message fits in the pipe, so no write fails: only the unread bytes tell.
        let mut mda = Mda::new(shell("head -c 5 >/dev/null; exit 0".into()));
        let mut draft = mda.draft().unwrap();
        draft
            .write_all(b"Subject: x\r\n\r\nlonger than five bytes\r\n")
            .unwrap();
        let error = draft.finish().unwrap_err();
        assert!(matches!(error, StoreError::MdaIncomplete { .. }), "{error}");
        assert!(error.is_message_refused());
    }

    #[test]
    fn a_slow_mda_is_killed_at_its_deadline_and_that_is_temporary() {
        let mut mda = Mda::new(shell("cat >/dev/null; sleep 5".into()));
        mda.set_timeout(Duration::from_millis(200));
        let started = Instant::now();
        let mut draft = mda.draft().unwrap();
        draft.write_all(b"x\r\n").unwrap();
        let error = draft.finish().unwrap_err();
        assert!(matches!(error, StoreError::MdaTimeout { .. }), "{error}");
        assert!(error.is_temporary() && !error.is_message_refused());
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn exit_75_is_temporary_other_failures_refuse_the_message() {
        for (code, temporary) in [(75, true), (1, false), (67, false)] {
            let mut mda = Mda::new(shell(format!("cat >/dev/null; exit {code}")));
            let error = mda.draft().unwrap().finish().unwrap_err();
            assert_eq!(error.is_temporary(), temporary, "{code}: {error}");
            assert_eq!(error.is_message_refused(), !temporary, "{code}: {error}");
        }
    }

    #[test]
    fn the_password_variable_is_hidden_from_the_mda() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        // HOME stands in for the password variable: it is set here, and must not reach the MDA.
        assert!(std::env::var_os("HOME").is_some_and(|h| !h.is_empty()));
        let mut mda = Mda::new(shell(format!(
            "cat >/dev/null; echo \"[${{HOME:-}}][${{PATH:+path}}]\" > '{}'",
            out.display()
        )));
        mda.hide_env("HOME");
        let mut draft = mda.draft().unwrap();
        draft.write_all(b"x\r\n").unwrap();
        let _ = draft.finish().unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "[][path]\n");
    }
}

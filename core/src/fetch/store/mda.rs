//! Delivery through a mail delivery agent (procmail, maildrop, `dovecot-lda`, ...).
//!
//! Each message is piped, with LF line endings and no `From ` line, to the standard input of a
//! fresh MDA process. Exit status 0 is the MDA's promise that the message is stored, so there is
//! nothing left for commit to do. Any other status keeps the message on the server.
//!
//! - The MDA runs in a process group of its own, so that aborting a message kills a whole
//!   pipeline (`spamc | procmail`), not only the shell, before it can deliver a partial message.
//! - popwire keeps a reading end of the MDA's standard input: when the MDA exits 0, bytes still
//!   unread in the pipe prove it did not read the whole message, which is then not a delivery.
//! - Each message has a deadline (`mda_timeout`); an MDA that passes it is killed.
//! - The MDA does not inherit the variable that holds the account's password (`password_env`).

use std::ffi::OsString;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::super::config::CommandLine;
use super::{CrlfToLf, Draft, Finished, MailStore, StoreError};
use crate::fetch::sys;

/// How much of the MDA's standard error is kept for the error message; the rest is drained so
/// the MDA never blocks on a full pipe.
const STDERR_KEEP: usize = 4096;
/// How long one message may take an MDA when the account sets no `mda_timeout`.
pub const DEFAULT_MDA_TIMEOUT: Duration = Duration::from_secs(300);
/// sysexits' "temporary failure": an MDA that exits with it wants the message again later.
const EX_TEMPFAIL: i32 = 75;
/// How often a blocked write looks whether the MDA is still alive.
const WRITE_POLL: Duration = Duration::from_millis(50);

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

impl MailStore for Mda {
    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError> {
        let spawn_error = |source| StoreError::MdaSpawn {
            command: self.command.to_string(),
            source,
        };
        sys::check(sys::Op::Spawn).map_err(spawn_error)?;
        let (reader, writer) = io::pipe().map_err(spawn_error)?;
        let child_stdin = reader.try_clone().map_err(spawn_error)?;
        let mut command = self.command.to_command();
        for name in &self.hidden_env {
            command.env_remove(name);
        }
        let mut child = command
            .stdin(Stdio::from(child_stdin))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(spawn_error)?;
        // Writes must not block for good on an MDA that stopped reading: it is watched instead.
        if let Err(e) = rustix::io::ioctl_fionbio(&writer, true) {
            kill_group(&mut child);
            return Err(self.io_error("set up its standard input", e.into()));
        }
        // Read standard error on a thread: an MDA that writes much to it while we write its
        // standard input would otherwise deadlock with us.
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let _ = (&mut pipe).take(STDERR_KEEP as u64).read_to_end(&mut kept);
                let _ = io::copy(&mut pipe, &mut io::sink());
                kept
            })
        });
        let deadline = Instant::now() + self.timeout;
        Ok(Box::new(MdaDraft {
            store: self,
            child,
            stdin: Some(writer),
            unread: reader,
            stderr,
            deadline,
            converter: CrlfToLf::default(),
            converted: Vec::new(),
            exited: None,
            finished: false,
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

/// A message being piped to a running MDA.
struct MdaDraft<'s> {
    store: &'s mut Mda,
    child: Child,
    /// `None` once closed.
    stdin: Option<PipeWriter>,
    /// A reading end of the same pipe, to count what the MDA left unread.
    unread: PipeReader,
    stderr: Option<JoinHandle<Vec<u8>>>,
    deadline: Instant,
    converter: CrlfToLf,
    converted: Vec<u8>,
    /// The MDA exited before the end of the message.
    exited: Option<ExitStatus>,
    finished: bool,
}

impl MdaDraft<'_> {
    fn timeout(&mut self) -> StoreError {
        kill_group(&mut self.child);
        self.finished = true;
        StoreError::MdaTimeout {
            command: self.store.command.to_string(),
            after: self.store.timeout,
        }
    }

    /// Writes the converted bytes to the MDA, watching that it lives and keeps its deadline.
    fn send(&mut self) -> Result<(), StoreError> {
        let mut at = 0;
        while at < self.converted.len() {
            if self.exited.is_some() {
                return Ok(());
            }
            let Some(stdin) = self.stdin.as_mut() else {
                return Ok(());
            };
            sys::check(sys::Op::Pipe).map_err(|e| {
                self.store
                    .io_error("write the message to its standard input", e)
            })?;
            let rest = self.converted.get(at..).unwrap_or_default();
            match stdin.write(rest) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        // Its exit status, seen in finish, says more than a full pipe.
                        self.exited = Some(status);
                        return Ok(());
                    }
                    if Instant::now() >= self.deadline {
                        return Err(self.timeout());
                    }
                    let mut fds = [rustix::event::PollFd::new(
                        stdin,
                        rustix::event::PollFlags::OUT,
                    )];
                    let wait = rustix::event::Timespec::try_from(WRITE_POLL).ok();
                    let _ = rustix::event::poll(&mut fds, wait.as_ref());
                }
                Err(source) => {
                    return Err(self
                        .store
                        .io_error("write the message to its standard input", source));
                }
            }
        }
        Ok(())
    }

    /// Waits for the MDA to exit, until the deadline.
    fn wait(&mut self) -> Result<ExitStatus, StoreError> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(pidfd) => loop {
                let left = self.deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(self.timeout());
                }
                let mut fds = [rustix::event::PollFd::new(
                    &pidfd,
                    rustix::event::PollFlags::IN,
                )];
                let wait = rustix::event::Timespec::try_from(left).ok();
                match rustix::event::poll(&mut fds, wait.as_ref()) {
                    Ok(0) => return Err(self.timeout()),
                    Ok(_) => break,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(self.store.io_error("wait for it", e.into())),
                }
            },
            // No pidfd (an old kernel): look every few milliseconds.
            Err(_) => loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Ok(status);
                }
                if Instant::now() >= self.deadline {
                    return Err(self.timeout());
                }
                std::thread::sleep(Duration::from_millis(2));
            },
        }
        self.child
            .wait()
            .map_err(|source| self.store.io_error("wait for it", source))
    }

    /// The first line of the MDA's standard error, cleaned for one-line display.
    fn stderr_line(&mut self) -> Option<String> {
        let bytes = self.stderr.take()?.join().ok()?;
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
}

impl Write for MdaDraft<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.converted.clear();
        self.converter.feed(buf, &mut self.converted);
        self.send().map_err(StoreError::into_io)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Draft for MdaDraft<'_> {
    fn finish(mut self: Box<Self>) -> Result<Finished, StoreError> {
        self.converted.clear();
        self.converter.finish(&mut self.converted);
        self.send()?;
        // End of input: the MDA delivers and exits.
        drop(self.stdin.take());
        let status = self.wait()?;
        self.finished = true;
        let unread = rustix::io::ioctl_fionread(&self.unread).unwrap_or(0);
        let command = self.store.command.to_string();
        let stderr = self.stderr_line();
        if !status.success() {
            return Err(StoreError::MdaFailed {
                command,
                status,
                stderr,
            });
        }
        if self.exited.is_some() || unread > 0 {
            return Err(StoreError::MdaIncomplete { command, status });
        }
        self.store.delivered += 1;
        Ok(Finished::Stored { receipt: None })
    }
}

impl Drop for MdaDraft<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Kill before closing standard input: end of input would tell the MDA to deliver
            // the partial message. The whole group, so no stage of a pipeline survives.
            kill_group(&mut self.child);
            drop(self.stdin.take());
        }
        if let Some(thread) = self.stderr.take() {
            let _ = thread.join();
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
        let error = mda.draft().err().unwrap();
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

//! Delivery through a mail delivery agent (procmail, maildrop, `dovecot-lda`, ...).
//!
//! Each message is piped, with LF line endings and no `From ` line, to the standard input of a
//! fresh MDA process. Exit status 0 is the MDA's promise that the message is stored, so there is
//! nothing left for commit to do. Any other status keeps the message on the server.

use std::io::{self, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::thread::JoinHandle;

use super::super::config::CommandLine;
use super::{CrlfToLf, Draft, MailStore, StoreError};

/// How much of the MDA's standard error is kept for the error message; the rest is drained so
/// the MDA never blocks on a full pipe.
const STDERR_KEEP: usize = 4096;

/// An MDA command run once per message.
#[derive(Debug)]
pub struct Mda {
    command: CommandLine,
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
            delivered: 0,
            prepared: 0,
        }
    }

    /// The command messages are piped to.
    pub fn command(&self) -> &CommandLine {
        &self.command
    }
}

impl MailStore for Mda {
    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError> {
        let mut child = self
            .command
            .to_command()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| StoreError::MdaSpawn {
                command: self.command.to_string(),
                source,
            })?;
        let stdin = child.stdin.take();
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
        Ok(Box::new(MdaDraft {
            store: self,
            child,
            stdin,
            stderr,
            converter: CrlfToLf::default(),
            converted: Vec::new(),
            stopped_reading: false,
            finished: false,
        }))
    }

    fn prepare(&mut self) -> Result<Vec<Option<String>>, StoreError> {
        // Each delivery was final when the MDA exited 0.
        self.prepared = std::mem::take(&mut self.delivered);
        Ok(vec![None; self.prepared])
    }

    fn publish(&mut self) -> Result<usize, StoreError> {
        Ok(std::mem::take(&mut self.prepared))
    }
}

/// A message being piped to a running MDA.
struct MdaDraft<'s> {
    store: &'s mut Mda,
    child: Child,
    /// `None` once closed.
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    converter: CrlfToLf,
    converted: Vec<u8>,
    /// The MDA closed its standard input before the end of the message.
    stopped_reading: bool,
    finished: bool,
}

impl MdaDraft<'_> {
    fn send(&mut self) -> Result<(), StoreError> {
        if self.stopped_reading {
            return Ok(());
        }
        let Some(stdin) = self.stdin.as_mut() else {
            return Ok(());
        };
        match stdin.write_all(&self.converted) {
            Ok(()) => Ok(()),
            // The MDA's exit status, seen in finish, says more than "broken pipe".
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.stopped_reading = true;
                Ok(())
            }
            Err(source) => Err(StoreError::MdaIo {
                command: self.store.command.to_string(),
                action: "write the message to its standard input",
                source,
            }),
        }
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
        match self.stdin.as_mut().map(ChildStdin::flush) {
            Some(Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    }
}

impl Draft for MdaDraft<'_> {
    fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        self.converted.clear();
        self.converter.finish(&mut self.converted);
        self.send()?;
        // End of input: the MDA delivers and exits.
        drop(self.stdin.take());
        let command = self.store.command.to_string();
        let status = self.child.wait().map_err(|source| StoreError::MdaIo {
            command: command.clone(),
            action: "wait for it",
            source,
        })?;
        self.finished = true;
        let stderr = self.stderr_line();
        if !status.success() {
            return Err(StoreError::MdaFailed {
                command,
                status,
                stderr,
            });
        }
        if self.stopped_reading {
            return Err(StoreError::MdaIncomplete { command, status });
        }
        self.store.delivered += 1;
        Ok(())
    }
}

impl Drop for MdaDraft<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Kill before closing standard input: end of input would tell the MDA to deliver
            // the partial message.
            let _ = self.child.kill();
            drop(self.stdin.take());
            let _ = self.child.wait();
        }
        if let Some(thread) = self.stderr.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use std::fs;

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
            draft.finish().unwrap();
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
        draft.finish().unwrap();
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
}

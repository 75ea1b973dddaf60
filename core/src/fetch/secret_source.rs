//! Turning a [`CredentialSource`] into the password or token itself.
//!
//! Commands run with standard input and standard error inherited, so a `gpg` or `pass` prompt
//! (pinentry) can reach the user; only standard output is captured. Errors name the program and
//! never its output, which might be the secret.

use std::io::Read;
use std::process::{ExitStatus, Stdio};

use thiserror::Error;
use zeroize::Zeroizing;

use super::config::{CommandLine, CredentialSource};
use crate::proto::Secret;

/// Why a credential could not be obtained. Never contains the credential or command output.
#[derive(Debug, Error)]
pub enum CredentialError {
    /// `password_env` names a variable that is not set.
    #[error("environment variable {var} is not set (export it, or change password_env)")]
    EnvMissing {
        /// The variable's name.
        var: String,
    },
    /// `password_env` names a variable that is set but empty.
    #[error("environment variable {var} is empty (put the password in it, or change password_env)")]
    EnvEmpty {
        /// The variable's name.
        var: String,
    },
    /// The command could not be started.
    #[error("cannot run {what} {program:?}: {source} (check that it is installed and on $PATH)")]
    Spawn {
        /// `"password command"` or `"token command"`.
        what: &'static str,
        /// The program's name.
        program: String,
        /// Why it could not be started.
        source: std::io::Error,
    },
    /// Reading the command's output or waiting for it failed.
    #[error("{what} {program:?} failed: {source}")]
    Io {
        /// `"password command"` or `"token command"`.
        what: &'static str,
        /// The program's name.
        program: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The command exited unsuccessfully.
    #[error("{what} {program:?} failed with {status} (run it by hand to see why)")]
    Failed {
        /// `"password command"` or `"token command"`.
        what: &'static str,
        /// The program's name.
        program: String,
        /// Its exit status.
        status: ExitStatus,
    },
    /// The command did not finish in time and was killed.
    #[error(
        "{what} {program:?} did not finish within {} seconds and was killed (run it by hand to see where it waits)",
        after.as_secs()
    )]
    Timeout {
        /// `"password command"` or `"token command"`.
        what: &'static str,
        /// The program's name.
        program: String,
        /// The limit.
        after: std::time::Duration,
    },
    /// The command succeeded but printed nothing.
    #[error("{what} {program:?} printed nothing (it must print the {noun} on standard output)")]
    Empty {
        /// `"password command"` or `"token command"`.
        what: &'static str,
        /// The program's name.
        program: String,
        /// `"password"` or `"token"`.
        noun: &'static str,
    },
    /// An OAuth token could not be had: no login yet, a revoked refresh token, the
    /// authorization server unreachable. Its class says which.
    #[cfg(feature = "oauth")]
    #[error(transparent)]
    OAuth(#[from] super::oauth::OAuthError),
    /// The account uses `[accounts.NAME.oauth]` but this build has no OAuth support.
    #[error("this popwire was built without OAuth support (feature \"oauth\"); use token_command")]
    OAuthUnavailable,
}

impl CredentialError {
    /// The class front ends branch on: an OAuth failure's own class (`auth` when only a new
    /// login helps), else `config`.
    #[must_use]
    pub fn class(&self) -> crate::proto::ErrorClass {
        match self {
            #[cfg(feature = "oauth")]
            Self::OAuth(e) => e.class(),
            _ => crate::proto::ErrorClass::Config,
        }
    }

    /// The sysexits code: an OAuth failure's own (77 when the user must log in again), else 78.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            #[cfg(feature = "oauth")]
            Self::OAuth(e) => e.exit_code(),
            _ => super::exit::CONFIG,
        }
    }
}

impl CredentialSource {
    /// Produces the credential: the literal password, the environment variable's value, or the
    /// command's standard output with one trailing newline (`\n` or `\r\n`) removed.
    ///
    /// A token command is run on every call, since access tokens expire; call this once per
    /// connection rather than caching the result.
    pub fn resolve(&self) -> Result<Secret, CredentialError> {
        match self {
            Self::Password(secret) => Ok(secret.clone()),
            Self::PasswordEnv(var) => read_env(var),
            Self::PasswordCommand(command) => run(command, "password command", "password"),
            Self::TokenCommand(command) => run(command, "token command", "token"),
            #[cfg(feature = "oauth")]
            Self::OAuth(config) => Ok(super::oauth::access_token(config)?),
            #[cfg(not(feature = "oauth"))]
            Self::OAuth(_) => Err(CredentialError::OAuthUnavailable),
        }
    }
}

fn read_env(var: &str) -> Result<Secret, CredentialError> {
    let value = std::env::var_os(var).ok_or_else(|| CredentialError::EnvMissing {
        var: var.to_owned(),
    })?;
    if value.is_empty() {
        return Err(CredentialError::EnvEmpty {
            var: var.to_owned(),
        });
    }
    Ok(Secret::from(os_bytes(value)))
}

#[cfg(unix)]
fn os_bytes(value: std::ffi::OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    value.into_vec()
}

#[cfg(not(unix))]
fn os_bytes(value: std::ffi::OsString) -> Vec<u8> {
    value.to_string_lossy().into_owned().into_bytes()
}

/// How long a password or token command may take: long enough for a password manager that asks
/// the user to unlock it, short enough that a hung one does not stall a scheduled fetch forever.
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Reads `stdout` to its end unless `deadline` passes first; `Ok(false)` when it did.
fn read_until(
    mut stdout: std::process::ChildStdout,
    output: &mut Vec<u8>,
    deadline: std::time::Instant,
) -> std::io::Result<bool> {
    rustix::io::ioctl_fionbio(&stdout, true)?;
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        match stdout.read(&mut chunk[..]) {
            Ok(0) => return Ok(true),
            Ok(n) => output.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                let mut fds = [rustix::event::PollFd::new(
                    &stdout,
                    rustix::event::PollFlags::IN,
                )];
                let wait = rustix::event::Timespec::try_from(left).ok();
                let _ = rustix::event::poll(&mut fds, wait.as_ref());
            }
            Err(e) => return Err(e),
        }
    }
}

fn run(
    command: &CommandLine,
    what: &'static str,
    noun: &'static str,
) -> Result<Secret, CredentialError> {
    let program = command.program().to_owned();
    let mut child = command
        .to_command()
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| CredentialError::Spawn {
            what,
            program: program.clone(),
            source,
        })?;
    // Sized up front so the buffer rarely reallocates, which would leave unwiped copies behind.
    let mut output = Zeroizing::new(Vec::with_capacity(4096));
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    let read = match child.stdout.take() {
        Some(stdout) => read_until(stdout, &mut output, deadline),
        None => Ok(true),
    };
    if matches!(read, Ok(false)) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(CredentialError::Timeout {
            what,
            program,
            after: COMMAND_TIMEOUT,
        });
    }
    // Always reap the child, even when reading failed.
    let status = child.wait();
    read.map_err(|source| CredentialError::Io {
        what,
        program: program.clone(),
        source,
    })?;
    let status = status.map_err(|source| CredentialError::Io {
        what,
        program: program.clone(),
        source,
    })?;
    if !status.success() {
        return Err(CredentialError::Failed {
            what,
            program,
            status,
        });
    }
    if output.last() == Some(&b'\n') {
        output.pop();
        if output.last() == Some(&b'\r') {
            output.pop();
        }
    }
    if output.is_empty() {
        return Err(CredentialError::Empty {
            what,
            program,
            noun,
        });
    }
    Ok(Secret::new(output.as_slice()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn shell(line: &str) -> CommandLine {
        CommandLine::Shell(line.to_owned())
    }

    #[test]
    fn literal_password() {
        let source = CredentialSource::Password(Secret::new("pw"));
        assert_eq!(source.resolve().unwrap().expose(), b"pw");
    }

    #[test]
    fn command_output_loses_one_trailing_newline() {
        let source = CredentialSource::PasswordCommand(shell("printf 'hunter2\\n\\n'"));
        assert_eq!(source.resolve().unwrap().expose(), b"hunter2\n");
        let source = CredentialSource::PasswordCommand(shell("printf 'hunter2\\r\\n'"));
        assert_eq!(source.resolve().unwrap().expose(), b"hunter2");
        let argv = CommandLine::Argv(vec!["printf".into(), "%s".into(), "tok en".into()]);
        assert_eq!(
            CredentialSource::TokenCommand(argv)
                .resolve()
                .unwrap()
                .expose(),
            b"tok en"
        );
    }

    #[test]
    fn failing_command_names_program_not_output() {
        let source = CredentialSource::PasswordCommand(shell("echo hunter2; exit 3"));
        let error = source.resolve().unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, CredentialError::Failed { .. }));
        assert!(text.contains("password command \"echo\""), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{error:?}").contains("hunter2"));
    }

    #[test]
    fn empty_output_is_an_error() {
        let source = CredentialSource::TokenCommand(shell("printf '\\n'"));
        let error = source.resolve().unwrap_err();
        assert_eq!(
            error.to_string(),
            "token command \"printf\" printed nothing (it must print the token on standard output)"
        );
    }

    #[test]
    fn missing_program() {
        let argv = CommandLine::Argv(vec!["/nonexistent/popwire-pass".into()]);
        let error = CredentialSource::PasswordCommand(argv)
            .resolve()
            .unwrap_err();
        assert!(matches!(error, CredentialError::Spawn { .. }));
        assert!(
            error
                .to_string()
                .starts_with("cannot run password command \"/nonexistent/popwire-pass\"")
        );
    }

    #[test]
    fn environment_variable() {
        // Edition 2024 makes set_var unsafe and the crate forbids unsafe: use what is set.
        let (name, value) = std::env::vars_os()
            .find(|(k, v)| !v.is_empty() && k.to_str().is_some())
            .expect("some environment variable is set");
        let name = name.into_string().unwrap();
        let secret = CredentialSource::PasswordEnv(name).resolve().unwrap();
        assert_eq!(secret.expose(), os_bytes(value).as_slice());

        let missing = CredentialSource::PasswordEnv("POPWIRE_SURELY_UNSET_VAR_42".into());
        assert_eq!(
            missing.resolve().unwrap_err().to_string(),
            "environment variable POPWIRE_SURELY_UNSET_VAR_42 is not set (export it, or change password_env)"
        );
    }
}

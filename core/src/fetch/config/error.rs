//! [`ConfigError`]: what is wrong in the config file, where, and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

/// What sort of mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Read,
    /// The file is not valid TOML.
    Syntax,
    /// A key that popwire does not know, often a misspelling.
    UnknownKey,
    /// A required key is missing, or there are no accounts.
    MissingKey,
    /// A value of the wrong TOML type, e.g. a quoted port.
    WrongType,
    /// Two keys that exclude each other, e.g. `maildir` and `mbox`.
    Conflict,
    /// A value of the right type that is not allowed, e.g. `port = 0`.
    BadValue,
}

/// A mistake in the config file, with where it is and how to fix it.
///
/// Displays as `FILE:LINE: KEY: MESSAGE (FIX)`, leaving out the parts that are unknown:
/// `/home/u/.config/popwire/config.toml:7: accounts.work.securty: unknown key (did you mean "security"?)`.
/// Boxed inside, so that `Result<_, ConfigError>` stays one pointer wide.
#[derive(Debug)]
pub struct ConfigError(Box<ErrorDetails>);

/// Everything a [`ConfigError`] says; built by the loader and the checker.
#[derive(Debug)]
pub(super) struct ErrorDetails {
    pub(super) path: PathBuf,
    pub(super) line: Option<usize>,
    pub(super) key: Option<String>,
    pub(super) kind: ConfigErrorKind,
    pub(super) message: String,
    pub(super) fix: Option<String>,
    pub(super) source: Option<std::io::Error>,
}

impl ConfigError {
    pub(super) fn new(details: ErrorDetails) -> Self {
        Self(Box::new(details))
    }

    /// The config file.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The 1-based line of the offending key or value, when known.
    pub fn line(&self) -> Option<usize> {
        self.0.line
    }

    /// The dotted key, e.g. `accounts.work.security`, when the error concerns one.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// What sort of mistake this is.
    pub fn kind(&self) -> ConfigErrorKind {
        self.0.kind
    }

    /// What is wrong. Never contains a secret.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// What to do about it, when there is a clear answer.
    pub fn fix(&self) -> Option<&str> {
        self.0.fix.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let details = &self.0;
        write!(f, "{}", details.path.display())?;
        if let Some(line) = details.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &details.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&details.message)?;
        if let Some(fix) = &details.fix {
            write!(f, " ({fix})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

//! [`ErrorClass`]: the one classification of every popwire error, decided here in the core so
//! that every front end (Rust callers, the CLI, Python, JS, Kotlin, Swift) splits errors the
//! same way. Branch on the class; the detailed error below it is for messages and logs.

use core::fmt;
use core::str::FromStr;

use crate::proto::types::ResponseCode;

/// What kind of failure an error is, i.e. what the caller should do next.
///
/// Every error type of popwire has a `class()` method returning one of these:
/// [`Error::class`](crate::proto::Error::class) for the engine, `NetError::class` for the
/// adapters, and the fetch job's error in turn. Bindings map a class to one native exception
/// each, mechanically; [`ErrorClass::as_str`] gives the stable name they share.
///
/// New classes may be added; match with a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The server refused the credentials, or the login exchange failed: fix the credentials
    /// (or suspect an impostor when the server could not prove it knows the password).
    Auth,
    /// The certificate was rejected, the TLS handshake failed, or TLS was required and not
    /// available: check the server name and the CA; never fall back to cleartext.
    Tls,
    /// The server broke the POP3 protocol (or a SASL mechanism): report a server bug.
    Protocol,
    /// The server refused a command with `-ERR`, for a reason other than the credentials. The
    /// RFC 2449/3206 response code, when sent, says whether to retry later.
    Server(Option<ResponseCode>),
    /// Resolving, connecting, reading or writing the connection failed.
    Network,
    /// The server did not answer in time: try again later.
    Timeout,
    /// The caller's settings or use are wrong (a policy refusal, a bad CA file, a command in
    /// the wrong state): fix the configuration or the calling code; retrying will not help.
    Config,
    /// Writing a message where it goes failed: the caller's sink, a mail store, the journal.
    /// Not the server's fault and not a network problem.
    Storage,
    /// The operation was cancelled by the caller.
    Cancelled,
}

impl ErrorClass {
    /// Every class, in a fixed order (for tables and tests).
    pub const ALL_NAMES: [&'static str; 9] = [
        "auth",
        "tls",
        "protocol",
        "server",
        "network",
        "timeout",
        "config",
        "storage",
        "cancelled",
    ];

    /// The stable name: `auth`, `tls`, `protocol`, `server`, `network`, `timeout`, `config`,
    /// `storage` or `cancelled`. Bindings and the shared vectors use these.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::Server(_) => "server",
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::Config => "config",
            Self::Storage => "storage",
            Self::Cancelled => "cancelled",
        }
    }

    /// The server's response code, for [`ErrorClass::Server`].
    #[must_use]
    pub fn code(&self) -> Option<&ResponseCode> {
        match self {
            Self::Server(code) => code.as_ref(),
            _ => None,
        }
    }

    /// The class-level answer to "may the same call succeed later, unchanged?": timeouts and
    /// network failures yes, a server refusal when its code says so (`[IN-USE]`,
    /// `[LOGIN-DELAY]`, `[SYS/TEMP]`), everything else no. An error type may refine it for
    /// its network failures (a refused connection is not retried, a dropped one is).
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Timeout | Self::Network => true,
            Self::Server(code) => code.as_ref().is_some_and(ResponseCode::is_temporary),
            _ => false,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if let Some(code) = self.code() {
            write!(f, " [{}]", code.as_str())?;
        }
        Ok(())
    }
}

/// The name is not one of [`ErrorClass::ALL_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error class")]
pub struct UnknownClass;

impl FromStr for ErrorClass {
    type Err = UnknownClass;

    /// Parses [`ErrorClass::as_str`]'s names; `server` parses without a code.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auth" => Self::Auth,
            "tls" => Self::Tls,
            "protocol" => Self::Protocol,
            "server" => Self::Server(None),
            "network" => Self::Network,
            "timeout" => Self::Timeout,
            "config" => Self::Config,
            "storage" => Self::Storage,
            "cancelled" => Self::Cancelled,
            _ => return Err(UnknownClass),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ErrorClass::ALL_NAMES {
            assert_eq!(name.parse::<ErrorClass>().map(|c| c.as_str()), Ok(name));
        }
        assert_eq!("nope".parse::<ErrorClass>(), Err(UnknownClass));
    }

    #[test]
    fn server_codes_decide_temporariness() {
        assert!(ErrorClass::Server(Some(ResponseCode::InUse)).is_temporary());
        assert!(!ErrorClass::Server(Some(ResponseCode::SysPerm)).is_temporary());
        assert!(!ErrorClass::Server(None).is_temporary());
        assert!(!ErrorClass::Storage.is_temporary());
    }
}

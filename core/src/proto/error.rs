//! The engine's errors, split by what the caller should do next.
//!
//! - [`ServerError`]: the server said `-ERR`. Read its [`ResponseCode`]: `[IN-USE]`,
//!   `[LOGIN-DELAY]` and `[SYS/TEMP]` mean retry later; `[AUTH]` means fix the credentials.
//! - [`ProtocolError`]: the server broke the protocol. Report a server bug (or an attack).
//! - [`UsageError`]: the caller misused the engine. Fix the calling code.
//! - [`PolicyError`]: a security rule stopped the session, e.g. TLS required but unavailable.
//!
//! Which level to branch on: [`Error::class`] (an [`ErrorClass`]) answers "what do I do next"
//! and is what every binding maps to its native exceptions. The variants below it carry the
//! detail; they are `#[non_exhaustive]` and may grow, so match them with a wildcard arm.

use alloc::string::String;

use crate::proto::class::ErrorClass;
use crate::proto::sasl::SaslError;
use crate::proto::types::ResponseCode;

/// Every error the engine reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused a command with `-ERR`.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The server broke the protocol; the connection must be closed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The caller misused the engine.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A security policy stopped the session before anything unsafe was sent.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A SASL mechanism failed (bad challenge, server signature mismatch, ...).
    #[error(transparent)]
    Sasl(#[from] SaslError),
}

impl Error {
    /// A stable `family:kind` name, e.g. `protocol:injection-after-stls`, for logs, tests and
    /// the language bindings' error mapping.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Server(_) => "server:refused",
            Error::Protocol(e) => match e {
                ProtocolError::StatusLineTooLong { .. } => "protocol:status-line-too-long",
                ProtocolError::DataLineTooLong { .. } => "protocol:data-line-too-long",
                ProtocolError::ReplyTooLarge { .. } => "protocol:reply-too-large",
                ProtocolError::BadStatusLine(_) => "protocol:bad-status-line",
                ProtocolError::BadGreeting(_) => "protocol:bad-greeting",
                ProtocolError::UnsolicitedData(_) => "protocol:unsolicited-data",
                ProtocolError::InjectionAfterStls(_) => "protocol:injection-after-stls",
                ProtocolError::Malformed { .. } => "protocol:malformed",
                ProtocolError::NumberOverflow(_) => "protocol:number-overflow",
                ProtocolError::InvalidUid(_) => "protocol:invalid-uid",
                ProtocolError::BadContinuation => "protocol:bad-continuation",
                ProtocolError::UnexpectedEof => "protocol:unexpected-eof",
            },
            Error::Usage(e) => match e {
                UsageError::ForbiddenByte { .. } => "usage:forbidden-byte",
                UsageError::InvalidArgument { .. } => "usage:invalid-argument",
                UsageError::WrongState { .. } => "usage:wrong-state",
                UsageError::Closed => "usage:closed",
                UsageError::OutOfOrder(_) => "usage:out-of-order",
            },
            Error::Policy(e) => match e {
                PolicyError::TlsUnavailable(_) => "policy:tls-unavailable",
                PolicyError::CleartextForbidden => "policy:cleartext-forbidden",
                PolicyError::NoMechanism(_) => "policy:no-mechanism",
                PolicyError::Apop(_) => "policy:apop",
                PolicyError::Excessive(_) => "policy:excessive",
            },
            Error::Sasl(e) => {
                use SaslError as S;
                match e {
                    S::MalformedChallenge(_) => "sasl:malformed-challenge",
                    S::UnexpectedChallenge => "sasl:unexpected-challenge",
                    S::NonceMismatch => "sasl:nonce-mismatch",
                    S::ServerSignatureMismatch => "sasl:server-signature-mismatch",
                    S::MissingServerSignature => "sasl:missing-server-signature",
                    S::IterationCount { .. } => "sasl:iteration-count",
                    S::ServerReported(_) => "sasl:server-reported",
                    S::InvalidNonce => "sasl:invalid-nonce",
                    S::NotScram => "sasl:not-scram",
                    S::InvalidCredential(_) => "sasl:invalid-credential",
                    S::OutOfOrder => "sasl:out-of-order",
                    S::MalformedResponse(_) => "sasl:malformed-response",
                    S::AuthenticationFailed => "sasl:authentication-failed",
                }
            }
        }
    }

    /// What the caller should do next; see [`ErrorClass`] and the table in
    /// `tests/vectors/classes/README.md`.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Server(e) if e.is_auth_failure() => ErrorClass::Auth,
            Error::Server(e) => ErrorClass::Server(e.code.clone()),
            // The connection went away in the middle of a reply: a dropped connection.
            Error::Protocol(ProtocolError::UnexpectedEof) => ErrorClass::Network,
            Error::Protocol(_) => ErrorClass::Protocol,
            Error::Usage(_) => ErrorClass::Config,
            Error::Policy(PolicyError::TlsUnavailable(_)) => ErrorClass::Tls,
            Error::Policy(PolicyError::Excessive(_)) => ErrorClass::Protocol,
            Error::Policy(_) => ErrorClass::Config,
            Error::Sasl(e) => sasl_class(e),
        }
    }

    /// True when trying again later may succeed without any change (`[IN-USE]`,
    /// `[LOGIN-DELAY]`, `[SYS/TEMP]`, or the server closing the connection mid-reply).
    /// Derived from [`Error::class`].
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        self.class().is_temporary()
    }
}

/// SASL failures split three ways, as [`SaslError`]'s documentation groups them.
fn sasl_class(e: &SaslError) -> ErrorClass {
    match e {
        SaslError::ServerSignatureMismatch
        | SaslError::ServerReported(_)
        | SaslError::AuthenticationFailed => ErrorClass::Auth,
        SaslError::InvalidNonce
        | SaslError::NotScram
        | SaslError::InvalidCredential(_)
        | SaslError::OutOfOrder => ErrorClass::Config,
        SaslError::MalformedChallenge(_)
        | SaslError::UnexpectedChallenge
        | SaslError::NonceMismatch
        | SaslError::MissingServerSignature
        | SaslError::IterationCount { .. }
        | SaslError::MalformedResponse(_) => ErrorClass::Protocol,
    }
}

/// A `-ERR` reply: the server refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server refused {command}: {}{text}", code.as_ref().map(|c| alloc::format!("[{c}] ")).unwrap_or_default())]
pub struct ServerError {
    /// The command the server refused, e.g. `RETR`.
    pub command: &'static str,
    /// The RFC 2449/3206 response code, when the server sent one.
    pub code: Option<ResponseCode>,
    /// The server's human-readable text (control characters kept; escape before printing).
    pub text: String,
}

impl ServerError {
    /// True for response codes that mean "retry later".
    pub fn is_temporary(&self) -> bool {
        self.code.as_ref().is_some_and(ResponseCode::is_temporary)
    }

    /// True when the server says the credentials are wrong (`[AUTH]`, or any `-ERR` to a
    /// credential-bearing command without a temporary code).
    ///
    /// A temporary code (`[IN-USE]`, `[LOGIN-DELAY]`, `[SYS/TEMP]`) on a login is not a credential
    /// problem: it means retry later.
    pub fn is_auth_failure(&self) -> bool {
        if self.is_temporary() {
            return false;
        }
        matches!(self.code, Some(ResponseCode::Auth))
            || matches!(self.command, "PASS" | "APOP" | "AUTH")
    }
}

/// The server broke the protocol. The session cannot continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A status line longer than the configured cap (RFC 2449 says 512 octets).
    #[error("status line longer than {limit} octets")]
    StatusLineTooLong {
        /// The cap in force.
        limit: usize,
    },
    /// A line of a multi-line reply longer than the configured cap.
    #[error("data line longer than {limit} octets")]
    DataLineTooLong {
        /// The cap in force.
        limit: usize,
    },
    /// A multi-line listing (LIST, UIDL, CAPA) bigger than the buffered-bytes cap.
    #[error("reply larger than the buffer cap of {limit} octets")]
    ReplyTooLarge {
        /// The cap in force.
        limit: usize,
    },
    /// A reply that starts with neither `+OK` nor `-ERR` (nor `+ ` during SASL).
    #[error("malformed status line: {0}")]
    BadStatusLine(String),
    /// The greeting was `-ERR` or unreadable.
    #[error("server greeting refused the connection: {0}")]
    BadGreeting(String),
    /// The server sent bytes when no reply was due.
    #[error("server sent {0} unsolicited octets")]
    UnsolicitedData(usize),
    /// Bytes arrived after `+OK` to STLS and before the TLS handshake: a response injection.
    #[error("{0} octets arrived after the STLS reply and before TLS: possible injection attack")]
    InjectionAfterStls(usize),
    /// A field in a reply could not be parsed.
    #[error("malformed {what} in reply: {line}")]
    Malformed {
        /// What was being parsed, e.g. `"LIST entry"`.
        what: &'static str,
        /// The offending line (lossy UTF-8, truncated).
        line: String,
    },
    /// A number in STAT/LIST/UIDL does not fit.
    #[error("number out of range in {0} reply")]
    NumberOverflow(&'static str),
    /// A unique-id outside RFC 1939's 1-70 octets of 0x21-0x7E.
    #[error("invalid unique-id {0:?}")]
    InvalidUid(String),
    /// A SASL continuation (`+ `) outside an AUTH exchange, or bad base64 in one.
    #[error("unexpected or malformed SASL continuation")]
    BadContinuation,
    /// The connection ended while a reply was still due.
    #[error("connection closed by the server in the middle of a reply")]
    UnexpectedEof,
}

/// The caller misused the engine; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// An argument contains CR, LF or NUL, which would inject a second command.
    #[error("argument to {command} contains CR, LF or NUL")]
    ForbiddenByte {
        /// The command refused.
        command: &'static str,
    },
    /// An argument that POP3 cannot carry (empty, too long, contains a space, ...).
    #[error("invalid argument to {command}: {reason}")]
    InvalidArgument {
        /// The command refused.
        command: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The command is not valid in the session's current state.
    #[error("{command} is not allowed in the {state} state")]
    WrongState {
        /// The command refused.
        command: &'static str,
        /// The state the session is in.
        state: &'static str,
    },
    /// The engine already failed or the session ended.
    #[error("the session is closed")]
    Closed,
    /// The call does not fit the engine's current step (e.g. `tls_established` without STLS).
    #[error("{0}")]
    OutOfOrder(&'static str),
}

/// A security rule stopped the session; no credential was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// TLS is required but the server does not offer STLS, or refused it.
    #[error("TLS is required but the server {0}; no credentials were sent")]
    TlsUnavailable(&'static str),
    /// A cleartext password over an unencrypted connection was not explicitly allowed.
    #[error("refusing to send a cleartext password over an unencrypted connection")]
    CleartextForbidden,
    /// None of the server's mechanisms is acceptable for the given credential.
    #[error("no acceptable authentication mechanism (server offers: {0})")]
    NoMechanism(String),
    /// APOP was not chosen explicitly, or the server gave no APOP timestamp.
    #[error("APOP unavailable: {0}")]
    Apop(&'static str),
    /// The server asked for too much work (e.g. a huge SCRAM iteration count).
    #[error("server demanded excessive work: {0}")]
    Excessive(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(command: &'static str, code: Option<ResponseCode>) -> ServerError {
        ServerError {
            command,
            code,
            text: String::new(),
        }
    }

    #[test]
    fn temporary_login_refusals_are_not_auth_failures() {
        assert!(refusal("PASS", None).is_auth_failure());
        assert!(refusal("AUTH", Some(ResponseCode::Auth)).is_auth_failure());
        assert!(!refusal("PASS", Some(ResponseCode::InUse)).is_auth_failure());
        assert!(refusal("PASS", Some(ResponseCode::InUse)).is_temporary());
        assert!(!refusal("APOP", Some(ResponseCode::LoginDelay)).is_auth_failure());
        assert!(!refusal("RETR", None).is_auth_failure());
    }
}

//! The values a caller exchanges with the engine: command ids, phases, login requests,
//! replies and events.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use crate::proto::error::Error;
use crate::proto::sasl::Mechanism;
use crate::proto::secret::Secret;
use crate::proto::types::{Capabilities, Greeting, ListEntry, UidlEntry};

/// Identifies an issued command; its completion carries the same id.
///
/// Opaque: ids count the caller's commands from 0 in issue order, and [`CommandId::get`] gives
/// that number for bindings and logs, but an id cannot be made up by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(u64);

impl CommandId {
    /// Internal commands (the automatic CAPA and STLS) are never reported, so they take no id
    /// from the caller's sequence; this one is never handed out.
    pub(super) const INTERNAL: CommandId = CommandId(u64::MAX);

    pub(super) fn new(n: u64) -> Self {
        CommandId(n)
    }

    /// The number: the caller's commands count from 0 in issue order.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<CommandId> for u64 {
    fn from(id: CommandId) -> u64 {
        id.0
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The session's state (RFC 1939 section 3, plus the STLS gap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the greeting.
    Greeting,
    /// Before login.
    Authorization,
    /// STLS accepted: the caller must run the TLS handshake, then call
    /// [`Client::tls_established`](crate::proto::Client::tls_established). Any byte received now is an attack.
    AwaitingTls,
    /// Logged in.
    Transaction,
    /// QUIT acknowledged: deletions are committed. The session is over.
    Closed,
    /// A fatal error ended the session.
    Failed,
}

impl Phase {
    /// Every phase, in session order.
    pub const ALL: [Phase; 6] = [
        Self::Greeting,
        Self::Authorization,
        Self::AwaitingTls,
        Self::Transaction,
        Self::Closed,
        Self::Failed,
    ];

    /// The stable name: `greeting`, `authorization`, `awaiting-tls`, `transaction`, `closed`,
    /// `failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Greeting => "greeting",
            Self::Authorization => "authorization",
            Self::AwaitingTls => "awaiting-tls",
            Self::Transaction => "transaction",
            Self::Closed => "closed",
            Self::Failed => "failed",
        }
    }

    /// How error messages name the phase.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::AwaitingTls => "STLS handshake",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the type's stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: use one of {expected}")]
pub struct UnknownName {
    /// What was being parsed, e.g. `security`.
    pub what: &'static str,
    /// The accepted names, for the message.
    pub expected: &'static str,
}

impl UnknownName {
    pub(super) fn new(what: &'static str, expected: &'static str) -> Self {
        Self { what, expected }
    }
}

impl FromStr for Phase {
    type Err = UnknownName;

    /// Parses [`Phase::as_str`]'s names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(UnknownName::new(
                "phase",
                "greeting, authorization, awaiting-tls, transaction, closed, failed",
            ))
    }
}

/// The credential for [`AuthRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password.
    Password(Secret),
    /// An OAuth 2.0 access token, for XOAUTH2 or OAUTHBEARER.
    Token(Secret),
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// The strongest mechanism the server offers that fits the credential and the connection's
    /// security. Never APOP.
    #[default]
    Auto,
    /// USER then PASS.
    UserPass,
    /// APOP (MD5-based and broken; only when named).
    Apop,
    /// AUTH with this SASL mechanism.
    Sasl(Mechanism),
}

impl AuthMethod {
    /// The stable name: `auto`, `user` (USER/PASS), `apop`, or the SASL mechanism's name
    /// (`PLAIN`, `SCRAM-SHA-256`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::UserPass => "user",
            Self::Apop => "apop",
            Self::Sasl(m) => m.name(),
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMethod {
    type Err = UnknownName;

    /// Parses [`AuthMethod::as_str`]'s names, ignoring case; `userpass` and `user/pass` are
    /// accepted for `user`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "user" | "userpass" | "user/pass" => Ok(Self::UserPass),
            "apop" => Ok(Self::Apop),
            _ => Mechanism::from_name(s).map(Self::Sasl).ok_or(UnknownName::new(
                "login method",
                "auto, user, apop, PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256, XOAUTH2, \
                 OAUTHBEARER",
            )),
        }
    }
}

/// A login request, resolved against the server's capabilities when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The user name (authentication identity).
    pub username: String,
    /// Password or token.
    pub credential: Credential,
    /// Mechanism choice.
    pub method: AuthMethod,
    /// SASL authorization identity, usually `None`.
    pub authzid: Option<String>,
    /// Fresh random printable text (>= 16 characters, no `,`) for SCRAM; the engine has no RNG.
    pub nonce: String,
    /// Server host name, sent by OAUTHBEARER.
    pub host: Option<String>,
    /// Server port, sent by OAUTHBEARER.
    pub port: Option<u16>,
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` with its text (USER, DELE, NOOP, RSET, UTF8, LANG with an argument).
    Ok(String),
    /// Logged in (PASS, APOP, AUTH or [`Client::authenticate`](crate::proto::Client::authenticate)).
    Authenticated,
    /// STAT: messages and octets in the maildrop.
    Stat {
        /// Number of messages.
        count: u32,
        /// Total size in octets.
        size: u64,
    },
    /// LIST without argument.
    List(Vec<ListEntry>),
    /// LIST n.
    ListOne(ListEntry),
    /// UIDL without argument.
    Uidl(Vec<UidlEntry>),
    /// UIDL n.
    UidlOne(UidlEntry),
    /// CAPA.
    Capabilities(Capabilities),
    /// LANG without argument: `(tag, description)` pairs.
    Languages(Vec<(String, String)>),
    /// RETR or TOP finished; the body came as [`Event::Body`] chunks.
    Retrieved {
        /// Octets of body delivered (after dot-unstuffing).
        octets: u64,
    },
    /// STLS accepted: run the TLS handshake, then call [`Client::tls_established`](crate::proto::Client::tls_established).
    TlsReady,
    /// QUIT accepted: deletions are committed.
    Closed(String),
}

/// Something the caller should act on.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The server's `+OK` greeting.
    Greeting(Greeting),
    /// Automatic negotiation finished (CAPA, and STLS + CAPA again if asked): the session is
    /// ready to authenticate with these capabilities.
    Ready(Capabilities),
    /// Automatic negotiation got `+OK` to STLS: run the TLS handshake now, then call
    /// [`Client::tls_established`](crate::proto::Client::tls_established).
    TlsReady,
    /// A piece of a RETR/TOP body, dot-unstuffed, CRLF line ends as sent.
    Body {
        /// The RETR/TOP command.
        id: CommandId,
        /// The bytes; valid until the next call into the engine.
        data: &'a [u8],
    },
    /// A command completed. `Err(Error::Server(..))` is the server's `-ERR`; other errors are
    /// local refusals (e.g. policy) that sent nothing.
    Completed {
        /// The command.
        id: CommandId,
        /// Its outcome.
        result: Result<Reply, Error>,
    },
}

//! [`ImapError`]: why the IMAP destination could not take a message.

use crate::net::NetError;
use crate::proto::ErrorClass;

/// Why the IMAP destination failed. Never holds a password or token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// Resolving, connecting, TLS, or reading/writing the connection failed.
    #[error("IMAP server {server}: {source}")]
    Net {
        /// `host:port`.
        server: String,
        /// What failed.
        source: NetError,
    },
    /// The IMAP password or token could not be obtained.
    #[error("IMAP login: {0}")]
    Credential(#[from] crate::fetch::secret_source::CredentialError),
    /// The server refused the login.
    #[error(
        "IMAP server {server} refused the login of {username}: {reason} (check the password or token in the [accounts.NAME.imap] table)"
    )]
    Auth {
        /// `host:port`.
        server: String,
        /// The login name.
        username: String,
        /// The server's words.
        reason: String,
    },
    /// The server does not offer what the config asks for: STARTTLS, a login method.
    #[error("IMAP server {server}: {what}")]
    Unsupported {
        /// `host:port`.
        server: String,
        /// What is missing and what to do.
        what: String,
    },
    /// The folder does not exist and may not be created, or CREATE failed.
    #[error("IMAP folder {folder:?} on {server}: {reason}")]
    Folder {
        /// `host:port`.
        server: String,
        /// The folder.
        folder: String,
        /// What happened and what to do.
        reason: String,
    },
    /// The server refused to store a message (quota, too big, a folder that vanished). It stays
    /// on the POP server.
    #[error(
        "IMAP server {server} refused message {message} for folder {folder:?}: {reason} (the message stays on the POP server)"
    )]
    Refused {
        /// `host:port`.
        server: String,
        /// The folder.
        folder: String,
        /// The POP UID of the message (or its number in the batch).
        message: String,
        /// The server's response code and text, e.g. `[OVERQUOTA] Quota exceeded`.
        reason: String,
    },
    /// The message is larger than the server says it takes (RFC 7889 APPENDLIMIT): not sent,
    /// left on the POP server, and the rest of the mailbox goes on.
    #[error(
        "IMAP server {server} takes messages up to {limit} octets (APPENDLIMIT) and message {message} is {size} octets: it stays on the POP server"
    )]
    TooBig {
        /// `host:port`.
        server: String,
        /// The POP UID of the message.
        message: String,
        /// Its size as staged (CRLF line ends).
        size: u64,
        /// The server's APPENDLIMIT.
        limit: u64,
    },
    /// The server broke the protocol (a reply imap-codec cannot decode, a reply too long).
    #[error("IMAP server {server} broke the protocol: {what}")]
    Protocol {
        /// `host:port`.
        server: String,
        /// What it sent.
        what: String,
    },
    /// A command failed for another reason.
    #[error("IMAP server {server}: {command} failed: {reason}")]
    Command {
        /// `host:port`.
        server: String,
        /// The command's name.
        command: &'static str,
        /// The server's response code and text.
        reason: String,
    },
    /// Reading a staged message back failed.
    #[error("cannot read the staged message {}: {source}", path.display())]
    Spool {
        /// The spool file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ImapError {
    /// The class front ends branch on: `auth`, `tls`, `network`, `timeout`, `storage` (the server
    /// refused the message or the folder), `protocol`, `config`.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Net { source, .. } => source.class(),
            Self::Credential(e) => e.class(),
            Self::Auth { .. } => ErrorClass::Auth,
            Self::Unsupported { .. } => ErrorClass::Config,
            Self::Folder { .. }
            | Self::Refused { .. }
            | Self::TooBig { .. }
            | Self::Spool { .. } => ErrorClass::Storage,
            Self::Protocol { .. } => ErrorClass::Protocol,
            Self::Command { .. } => ErrorClass::Server(None),
        }
    }

    /// True when a later run may succeed with nothing changed: the network, a timeout, a
    /// server-side hiccup.
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Net { source, .. } => source.is_temporary(),
            Self::Command { .. } => true,
            _ => false,
        }
    }

    /// True when this one message can never be stored there, while others can: the fetch
    /// reports it, leaves it on the POP server and goes on.
    #[must_use]
    pub fn is_message_refused(&self) -> bool {
        matches!(self, Self::TooBig { .. })
    }

    /// True when the login was refused (or only a new OAuth login helps).
    #[must_use]
    pub fn is_auth_failure(&self) -> bool {
        self.class() == ErrorClass::Auth
    }
}

//! [`OAuthError`]: why no access token could be had, and what to do about it.

use std::path::PathBuf;

use crate::fetch::exit;
use crate::proto::ErrorClass;

/// Why an OAuth login, refresh or token-file operation failed. Never holds a token, a client
/// secret, a code or a response body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The user must log in (again): no tokens yet, or the refresh token was revoked or expired
    /// (`invalid_grant`), or the access token expired without a refresh token.
    #[error("account {account}: {reason}; log in again with: popwire auth login {account}")]
    LoginRequired {
        /// The account.
        account: String,
        /// What happened, in a few words.
        reason: String,
    },
    /// The authorization server refused the request with an OAuth error other than
    /// `invalid_grant` (e.g. `invalid_client`, `unauthorized_client`, `invalid_scope`).
    #[error("account {account}: the authorization server refused: {code}{} ({fix})", description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        /// The account.
        account: String,
        /// The OAuth error code.
        code: String,
        /// The server's `error_description`, control characters escaped.
        description: Option<String>,
        /// What to check.
        fix: &'static str,
    },
    /// The user or the server ended a login: `access_denied`, `expired_token`, a state that
    /// did not match, no answer in time.
    #[error("account {account}: login failed: {reason}")]
    LoginFailed {
        /// The account.
        account: String,
        /// Why, in a few words.
        reason: String,
    },
    /// The authorization server could not be reached, or the exchange broke off.
    #[error("cannot reach {url}: {message} (check the network and try again)")]
    Http {
        /// The endpoint.
        url: String,
        /// What failed.
        message: String,
    },
    /// The authorization server answered with something that is not OAuth 2.0.
    #[error("{url} sent an unusable answer: {message}")]
    BadResponse {
        /// The endpoint.
        url: String,
        /// What was wrong (never the body itself).
        message: String,
    },
    /// The settings cannot work: a flow whose endpoint is unknown, an unset secret variable.
    #[error("account {account}: {message} ({fix})")]
    Config {
        /// The account.
        account: String,
        /// What is missing.
        message: String,
        /// What to do.
        fix: String,
    },
    /// Reading or writing the token file failed.
    #[error("cannot {action} token file {}: {source}", path.display())]
    TokenFile {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl OAuthError {
    /// The one classification front ends branch on: `auth` for anything only a new login
    /// fixes, `network` and `timeout`, `protocol` for a broken server, `config`, `storage`.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::LoginRequired { .. } | Self::LoginFailed { .. } => ErrorClass::Auth,
            Self::Refused { .. } | Self::Config { .. } => ErrorClass::Config,
            Self::Http { .. } => ErrorClass::Network,
            Self::BadResponse { .. } => ErrorClass::Protocol,
            Self::TokenFile { .. } => ErrorClass::Storage,
        }
    }

    /// The sysexits code: 77 (permission) when the user must log in, 75 to retry later, 78
    /// for settings, 74 for the token file, 69 for a broken server.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self.class() {
            ErrorClass::Auth => exit::NOPERM,
            ErrorClass::Network | ErrorClass::Timeout => exit::TEMPFAIL,
            ErrorClass::Config => exit::CONFIG,
            ErrorClass::Storage => exit::IOERR,
            _ => exit::UNAVAILABLE,
        }
    }

    /// True when the user must run `popwire auth login` (again).
    #[must_use]
    pub fn needs_login(&self) -> bool {
        matches!(self, Self::LoginRequired { .. })
    }
}

/// `text` with control characters escaped, for server-chosen words in messages.
pub(super) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(300));
    for c in text.chars().take(300) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

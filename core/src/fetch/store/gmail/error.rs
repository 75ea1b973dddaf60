//! [`GmailError`]: why Gmail did not take a message, and what to do next.

use crate::fetch::exit;
use crate::fetch::oauth::OAuthError;
use crate::proto::ErrorClass;

/// Why a Gmail API call failed. Never holds a token or a message; server words are cleaned
/// of control characters and cut short.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GmailError {
    /// No access token: the OAuth side says what to do (log in again, fix the client).
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// Google refused the token, even a freshly refreshed one (HTTP 401), or the login lacks
    /// the scope (HTTP 403).
    #[error(
        "account {account}: the Gmail API refused the login (HTTP {status}{}); log in again with: popwire auth login {account} (granting {scope})",
        reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
    )]
    Unauthorized {
        /// The account.
        account: String,
        /// 401 or 403.
        status: u16,
        /// Google's reason, if it gave one.
        reason: Option<String>,
        /// The scope the login needs.
        scope: &'static str,
    },
    /// Google refused this one message for good (HTTP 400, 413): it stays on the POP server.
    #[error(
        "account {account}: Gmail refused the message (HTTP {status}{}); it stays on the POP server",
        reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
    )]
    Refused {
        /// The account.
        account: String,
        /// The status.
        status: u16,
        /// Google's reason, if it gave one.
        reason: Option<String>,
    },
    /// The message is over the import cap: not sent, left on the POP server.
    #[error(
        "account {account}: the message is {size} octets, over Gmail's import cap of {cap} octets; it stays on the POP server"
    )]
    TooLarge {
        /// The account.
        account: String,
        /// Its size as received.
        size: u64,
        /// The cap (`max_import_size`).
        cap: u64,
    },
    /// Google asked to slow down or failed (HTTP 429, 5xx) every time it was tried: nothing
    /// more is fetched this run and nothing unimported is deleted.
    #[error(
        "account {account}: the Gmail API is unavailable (HTTP {status}, {attempts} attempts); try again later"
    )]
    Unavailable {
        /// The account.
        account: String,
        /// The last status.
        status: u16,
        /// Requests made.
        attempts: u32,
        /// The last request may have been carried out (a 5xx, not a 429).
        in_doubt: bool,
    },
    /// The API could not be reached, or the exchange broke off.
    #[error("account {account}: cannot reach {url}: {message} (check the network and try again)")]
    Transport {
        /// The account.
        account: String,
        /// The URL, without its query.
        url: String,
        /// What failed, in ureq's words.
        message: String,
        /// The request body had been sent: Google may have imported the message.
        in_doubt: bool,
    },
    /// A label named in `labels` does not exist and `create_labels` is off.
    #[error(
        "account {account}: Gmail has no label {label:?} (create it in Gmail, fix accounts.{account}.gmail.labels, or set create_labels = true)"
    )]
    NoSuchLabel {
        /// The account.
        account: String,
        /// The label as configured.
        label: String,
    },
    /// The API answered with something it does not document.
    #[error("{url} sent an unusable answer: {message}")]
    BadResponse {
        /// The URL, without its query.
        url: String,
        /// What was wrong (never the body itself).
        message: String,
    },
}

impl GmailError {
    /// The class front ends branch on: `auth` for a login to renew, `network` for what may
    /// pass, `config` for settings, `protocol` for a broken answer, `storage` for a refusal.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::OAuth(e) => e.class(),
            Self::Unauthorized { .. } => ErrorClass::Auth,
            Self::Refused { .. } | Self::TooLarge { .. } => ErrorClass::Storage,
            Self::Unavailable { .. } | Self::Transport { .. } => ErrorClass::Network,
            Self::NoSuchLabel { .. } => ErrorClass::Config,
            Self::BadResponse { .. } => ErrorClass::Protocol,
        }
    }

    /// The sysexits code: 77 to log in again, 75 to retry later, 78 for settings.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::OAuth(e) => e.exit_code(),
            Self::Unauthorized { .. } => exit::NOPERM,
            Self::Refused { .. } | Self::TooLarge { .. } => exit::DATAERR,
            Self::Unavailable { .. } | Self::Transport { .. } => exit::TEMPFAIL,
            Self::NoSuchLabel { .. } => exit::CONFIG,
            Self::BadResponse { .. } => exit::UNAVAILABLE,
        }
    }

    /// True when this message alone cannot go: the fetch leaves it and goes on.
    #[must_use]
    pub fn is_message_refused(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::TooLarge { .. })
    }

    /// True when trying again later may succeed without anyone changing anything.
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        self.exit_code() == exit::TEMPFAIL
    }

    /// True when Google may have imported the message although no answer said so: the
    /// write-ahead mark must stay for recovery to settle.
    #[must_use]
    pub fn is_in_doubt(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { in_doubt: true, .. } | Self::Transport { in_doubt: true, .. }
        )
    }
}

/// Server words for a message: control characters escaped, at most 200 characters.
pub(super) fn clean(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(200) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

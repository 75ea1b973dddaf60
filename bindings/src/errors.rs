//! The one error type the bindings expose, mapped from the core's rich errors.
//!
//! Kotlin sees a sealed `PopException` class, Swift a `PopError` enum. Every variant carries
//! `kind`, the core's stable `family:kind` name (e.g. `protocol:bad-greeting`), and `detail`,
//! the human-readable message.

use popwire::fetch::FetchError;
use popwire::net::NetError;
use popwire::proto;

/// Why a call failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum PopError {
    /// The server refused a command with `-ERR` (not a credential problem).
    #[error("{detail}")]
    Server {
        /// The RFC 2449 response code (`IN-USE`, `SYS/TEMP`, ...), when the server sent one.
        code: Option<String>,
        /// The server's text after `-ERR` (and the code).
        text: String,
        /// True when trying again later may work.
        temporary: bool,
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// The server refused the credentials, or the login exchange failed.
    #[error("{detail}")]
    Auth {
        /// The response code, when the server sent one (usually `AUTH`).
        code: Option<String>,
        /// The server's text, or the SASL failure.
        text: String,
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// The certificate was rejected, the TLS handshake failed, or TLS was unavailable.
    #[error("{detail}")]
    Tls {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// The server broke the POP3 protocol; the session is over.
    #[error("{detail}")]
    Protocol {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// The server did not answer in time.
    #[error("{detail}")]
    Timeout {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// The caller's settings or use are wrong: a bad CA, a policy refusal (cleartext password,
    /// no usable mechanism), a command in the wrong state, a bad destination.
    #[error("{detail}")]
    Config {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// Resolving, connecting, reading, writing, or storing failed.
    #[error("{detail}")]
    Io {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// The operation was cancelled (a fetch's `cancel()`, or a sink that asked to stop).
    #[error("{detail}")]
    Cancelled {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
}

impl PopError {
    pub(crate) fn config(kind: &str, detail: impl Into<String>) -> Self {
        PopError::Config {
            kind: kind.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn cancelled() -> Self {
        PopError::Cancelled {
            kind: "cancelled".into(),
            detail: "cancelled".into(),
        }
    }
}

impl From<proto::Error> for PopError {
    fn from(e: proto::Error) -> Self {
        let kind = e.kind().to_string();
        let detail = e.to_string();
        match e {
            proto::Error::Server(s) => {
                let code = s.code.as_ref().map(|c| c.as_str().to_string());
                if s.is_auth_failure() {
                    PopError::Auth {
                        code,
                        text: s.text,
                        kind,
                        detail,
                    }
                } else {
                    PopError::Server {
                        temporary: s.is_temporary(),
                        code,
                        text: s.text,
                        kind,
                        detail,
                    }
                }
            }
            proto::Error::Protocol(_) => PopError::Protocol { kind, detail },
            proto::Error::Policy(proto::PolicyError::TlsUnavailable(_)) => {
                PopError::Tls { kind, detail }
            }
            proto::Error::Policy(_) | proto::Error::Usage(_) => PopError::Config { kind, detail },
            proto::Error::Sasl(_) => PopError::Auth {
                code: None,
                text: String::new(),
                kind,
                detail,
            },
        }
    }
}

impl From<NetError> for PopError {
    fn from(e: NetError) -> Self {
        let detail = e.to_string();
        match e {
            NetError::Pop3(p) => p.into(),
            NetError::Timeout(_) => PopError::Timeout {
                kind: "net:timeout".into(),
                detail,
            },
            NetError::Certificate { .. } => PopError::Tls {
                kind: "tls:certificate".into(),
                detail,
            },
            NetError::Tls { .. } => PopError::Tls {
                kind: "tls:handshake".into(),
                detail,
            },
            NetError::CaFile { .. } => PopError::Config {
                kind: "config:ca".into(),
                detail,
            },
            NetError::Resolve { .. } => PopError::Io {
                kind: "net:resolve".into(),
                detail,
            },
            NetError::Connect { .. } => PopError::Io {
                kind: "net:connect".into(),
                detail,
            },
            NetError::Io { source, .. } if source.kind() == std::io::ErrorKind::Interrupted => {
                PopError::cancelled()
            }
            NetError::Io { .. } => PopError::Io {
                kind: "net:io".into(),
                detail,
            },
        }
    }
}

impl From<FetchError> for PopError {
    fn from(e: FetchError) -> Self {
        let detail = e.to_string();
        match e {
            FetchError::Net(n) => n.into(),
            FetchError::Cancelled => PopError::cancelled(),
            FetchError::Credential(_) => PopError::config("config:credential", detail),
            FetchError::NoUidl => PopError::config("config:no-uidl", detail),
            FetchError::Store(_) => PopError::Io {
                kind: "store".into(),
                detail,
            },
            FetchError::Journal(_) => PopError::Io {
                kind: "journal".into(),
                detail,
            },
            FetchError::Locked { .. } => PopError::Io {
                kind: "locked".into(),
                detail,
            },
            _ => PopError::Io {
                kind: "fetch".into(),
                detail,
            },
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for PopError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        PopError::Io {
            kind: "callback".into(),
            detail: e.reason,
        }
    }
}

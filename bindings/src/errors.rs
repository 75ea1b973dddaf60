//! The one error type the bindings expose: one variant per core [`ErrorClass`], chosen by the
//! core's `class()`, never by matching the core's variants here.
//!
//! Kotlin sees a sealed `PopException` class, Swift a `PopError` enum. Every variant carries
//! `kind`, the core's stable `family:kind` name (e.g. `protocol:bad-greeting`), and `detail`,
//! the human-readable message. The class-to-variant table is in
//! `tests/vectors/classes/README.md`; the Kotlin and Swift suites replay those vectors.

use popwire::fetch::FetchError;
use popwire::net::NetError;
use popwire::proto::{self, ErrorClass, ServerError};

/// Why a call failed. One variant per error class.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum PopError {
    /// Class `auth`: the server refused the credentials, or the login exchange failed.
    #[error("{detail}")]
    Auth {
        /// The response code, when the server sent one (usually `AUTH`).
        code: Option<String>,
        /// The server's text (empty for a local SASL failure).
        text: String,
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// Class `tls`: the certificate was rejected, the TLS handshake failed, or TLS was
    /// required and unavailable.
    #[error("{detail}")]
    Tls {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// Class `protocol`: the server broke the POP3 protocol; the session is over.
    #[error("{detail}")]
    Protocol {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// Class `server`: the server refused a command with `-ERR` (not a credential problem).
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
    /// Class `network`: resolving, connecting, reading or writing the connection failed.
    #[error("{detail}")]
    Network {
        /// True for a dropped connection (retry), false for a name that does not resolve or a
        /// refused connection (check the settings).
        temporary: bool,
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// Class `timeout`: the server did not answer in time.
    #[error("{detail}")]
    Timeout {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// Class `config`: the caller's settings or use are wrong: a bad CA, a policy refusal
    /// (cleartext password, no usable mechanism, APOP), a command in the wrong state.
    #[error("{detail}")]
    Config {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// Class `storage`: the caller's sink or callback, or the mail store, failed.
    #[error("{detail}")]
    Storage {
        /// Stable kind name.
        kind: String,
        /// Message.
        detail: String,
    },
    /// Class `cancelled`: the call was cancelled (a coroutine or task cancelled, a fetch's
    /// `cancel()`, or a sink that asked to stop).
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

    /// The mechanical mapping: class to variant. `server` fills `code`/`text` for `auth`
    /// and `server`.
    fn classified(
        class: ErrorClass,
        temporary: bool,
        kind: &str,
        detail: String,
        server: Option<&ServerError>,
    ) -> Self {
        let kind = kind.to_string();
        let code = server.and_then(|s| s.code.as_ref().map(|c| c.as_str().to_string()));
        let text = server.map(|s| s.text.clone()).unwrap_or_default();
        match class {
            ErrorClass::Auth => PopError::Auth {
                code,
                text,
                kind,
                detail,
            },
            ErrorClass::Tls => PopError::Tls { kind, detail },
            ErrorClass::Protocol => PopError::Protocol { kind, detail },
            ErrorClass::Server(_) => PopError::Server {
                code,
                text,
                temporary,
                kind,
                detail,
            },
            ErrorClass::Network => PopError::Network {
                temporary,
                kind,
                detail,
            },
            ErrorClass::Timeout => PopError::Timeout { kind, detail },
            ErrorClass::Storage => PopError::Storage { kind, detail },
            ErrorClass::Cancelled => PopError::Cancelled { kind, detail },
            // Config, and any class added to the core before this binding learns it.
            _ => PopError::Config { kind, detail },
        }
    }
}

fn server_error(e: &proto::Error) -> Option<&ServerError> {
    match e {
        proto::Error::Server(s) => Some(s),
        _ => None,
    }
}

impl From<proto::Error> for PopError {
    fn from(e: proto::Error) -> Self {
        let detail = e.to_string();
        PopError::classified(
            e.class(),
            e.is_temporary(),
            e.kind(),
            detail,
            server_error(&e),
        )
    }
}

impl From<NetError> for PopError {
    fn from(e: NetError) -> Self {
        let server = match &e {
            NetError::Pop3(p) => server_error(p),
            _ => None,
        };
        PopError::classified(e.class(), e.is_temporary(), e.kind(), e.to_string(), server)
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
            FetchError::Store(_) => PopError::Storage {
                kind: "store".into(),
                detail,
            },
            FetchError::Journal(_) => PopError::Storage {
                kind: "journal".into(),
                detail,
            },
            // A busy account, and what a newer core adds: by the core's class.
            other => match other.class() {
                ErrorClass::Config => PopError::config("config:fetch", detail),
                ErrorClass::Cancelled => PopError::cancelled(),
                _ => PopError::Storage {
                    kind: if matches!(other, FetchError::Locked { .. }) {
                        "locked".into()
                    } else {
                        "fetch".into()
                    },
                    detail,
                },
            },
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for PopError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        PopError::Storage {
            kind: "callback".into(),
            detail: e.reason,
        }
    }
}

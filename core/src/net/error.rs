//! Errors of a network session, each saying what to do next.
//!
//! Branch on [`NetError::class`]; the variants carry the detail and may grow.

use crate::proto::{self, ErrorClass};

/// A network session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}; check the server name")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// No address of the host accepted a connection.
    #[error(
        "cannot connect to {host} port {port}: {source}; check the server name, port and network"
    )]
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The last connect error.
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error("timed out {0}; the server stalled or the network is down, try again later")]
    Timeout(&'static str),
    /// The server's certificate was not accepted. Nothing was sent.
    #[error(
        "TLS certificate of {host} rejected: {reason}; check the server name and the CA (ca_file)"
    )]
    Certificate {
        /// The host.
        host: String,
        /// Why (unknown issuer, wrong name, expired, ...).
        reason: String,
    },
    /// The TLS layer failed for another reason.
    #[error("TLS with {host} failed: {source}")]
    Tls {
        /// The host.
        host: String,
        /// The rustls error.
        source: rustls::Error,
    },
    /// A CA file could not be used.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A read or write on the connection failed.
    #[error("connection error while {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The caller's sink (the writer or callback a message body was streamed into) failed.
    /// The session may still be usable; the error is the sink's own, so a caller can
    /// `downcast` what it put inside with [`std::io::Error::get_ref`].
    #[error("storing a message failed: {source}")]
    Sink {
        /// The sink's error, as it returned it.
        source: std::io::Error,
    },
    /// The caller cancelled the call (see the adapters' cancel flags).
    #[error("cancelled")]
    Cancelled,
    /// The POP3 engine reported an error (server refusal, protocol violation, policy).
    #[error(transparent)]
    Pop3(#[from] proto::Error),
}

impl NetError {
    /// What the caller should do next: the engine's class for [`NetError::Pop3`], and for the
    /// rest `network`, `timeout`, `tls`, `config` (the CA file), `storage` (the caller's sink)
    /// or `cancelled`.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            NetError::Resolve { .. } | NetError::Connect { .. } => ErrorClass::Network,
            // A read interrupted on purpose (EINTR under a cancelling signal) is a cancel.
            NetError::Io { source, .. } if source.kind() == std::io::ErrorKind::Interrupted => {
                ErrorClass::Cancelled
            }
            NetError::Io { .. } => ErrorClass::Network,
            NetError::Timeout(_) => ErrorClass::Timeout,
            NetError::Certificate { .. } | NetError::Tls { .. } => ErrorClass::Tls,
            NetError::CaFile { .. } => ErrorClass::Config,
            NetError::Sink { .. } => ErrorClass::Storage,
            NetError::Cancelled => ErrorClass::Cancelled,
            NetError::Pop3(e) => e.class(),
        }
    }

    /// A stable `family:kind` name: the engine's [`proto::Error::kind`] for
    /// [`NetError::Pop3`], otherwise `net:resolve`, `net:connect`, `net:io`, `net:timeout`,
    /// `tls:certificate`, `tls:failed`, `config:ca-file`, `sink:failed` or `cancelled`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            NetError::Resolve { .. } => "net:resolve",
            NetError::Connect { .. } => "net:connect",
            NetError::Io { .. } => "net:io",
            NetError::Timeout(_) => "net:timeout",
            NetError::Certificate { .. } => "tls:certificate",
            NetError::Tls { .. } => "tls:failed",
            NetError::CaFile { .. } => "config:ca-file",
            NetError::Sink { .. } => "sink:failed",
            NetError::Cancelled => "cancelled",
            NetError::Pop3(e) => e.kind(),
        }
    }

    /// True when the server refused the credentials.
    #[must_use]
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, NetError::Pop3(proto::Error::Server(e)) if e.is_auth_failure())
    }

    /// True when trying again later may work (timeouts, a connection dropped in the middle of
    /// the session, `[IN-USE]`, `[SYS/TEMP]`, ...): [`ErrorClass::is_temporary`], except that
    /// of the network failures only a dropped connection counts; a name that does not resolve
    /// or a refused connection needs a look at the configuration first.
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        match self {
            NetError::Resolve { .. } | NetError::Connect { .. } => false,
            NetError::Io { source, .. } => is_dropped_connection(source),
            other => other.class().is_temporary(),
        }
    }

    /// True for certificate and TLS failures, and policy refusals about TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.class() == ErrorClass::Tls
    }

    /// The caller's sink failed.
    pub(crate) fn sink(source: std::io::Error) -> Self {
        NetError::Sink { source }
    }

    pub(crate) fn io(context: &'static str, source: std::io::Error) -> Self {
        match source.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                NetError::Timeout(context)
            }
            _ => NetError::Io { context, source },
        }
    }

    pub(crate) fn tls(host: &str, source: rustls::Error) -> Self {
        match source {
            rustls::Error::InvalidCertificate(reason) => NetError::Certificate {
                host: host.to_string(),
                reason: describe_certificate_error(&reason),
            },
            source => NetError::Tls {
                host: host.to_string(),
                source,
            },
        }
    }
}

/// The connection was there and then went away (reset, closed in the middle of a reply): the
/// next attempt may well get through. A refused connection is [`NetError::Connect`] instead.
fn is_dropped_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::NotConnected
    )
}

fn describe_certificate_error(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => {
            "not signed by a trusted CA (self-signed, or its CA is missing from the trust store)"
                .into()
        }
        // A same-named trust anchor with another key: as untrusted as an unknown issuer.
        C::BadSignature
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "not signed by a trusted CA (the signature does not verify against any trusted CA)"
                .into()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "not valid for this host name".into()
        }
        C::Expired | C::ExpiredContext { .. } => "expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet (check the clock)".into(),
        C::Revoked => "revoked".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error as IoError, ErrorKind};

    #[test]
    fn a_dropped_connection_is_temporary_a_refused_one_is_not() {
        let io = |kind| NetError::Io {
            context: "waiting for the server",
            source: IoError::from(kind),
        };
        assert!(io(ErrorKind::ConnectionReset).is_temporary());
        assert!(io(ErrorKind::BrokenPipe).is_temporary());
        assert!(NetError::Pop3(proto::ProtocolError::UnexpectedEof.into()).is_temporary());
        assert!(!io(ErrorKind::PermissionDenied).is_temporary());
        assert!(
            !NetError::Pop3(proto::ProtocolError::BadGreeting("x".into()).into()).is_temporary()
        );
        let refused = NetError::Connect {
            host: "h".into(),
            port: 1,
            source: IoError::from(ErrorKind::ConnectionRefused),
        };
        assert!(!refused.is_temporary());
    }

    #[test]
    fn a_failing_sink_is_storage_and_keeps_its_error() {
        #[derive(Debug)]
        struct Full;
        impl std::fmt::Display for Full {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("full")
            }
        }
        impl std::error::Error for Full {}
        let broken = NetError::sink(IoError::from(ErrorKind::BrokenPipe));
        assert_eq!(broken.class(), ErrorClass::Storage);
        assert!(!broken.is_temporary());
        let mine = NetError::sink(IoError::other(Full));
        let NetError::Sink { source } = &mine else {
            panic!("{mine:?}");
        };
        assert!(source.get_ref().is_some_and(|e| e.is::<Full>()));
    }

    fn io_kind(name: &str) -> ErrorKind {
        match name {
            "ConnectionRefused" => ErrorKind::ConnectionRefused,
            "ConnectionReset" => ErrorKind::ConnectionReset,
            "ConnectionAborted" => ErrorKind::ConnectionAborted,
            "BrokenPipe" => ErrorKind::BrokenPipe,
            "UnexpectedEof" => ErrorKind::UnexpectedEof,
            "PermissionDenied" => ErrorKind::PermissionDenied,
            "TimedOut" => ErrorKind::TimedOut,
            "WouldBlock" => ErrorKind::WouldBlock,
            "Interrupted" => ErrorKind::Interrupted,
            "StorageFull" => ErrorKind::StorageFull,
            "Other" => ErrorKind::Other,
            other => panic!("unknown io kind {other}"),
        }
    }

    /// `tests/vectors/classes/adapter-situations.txt`, built as the adapters build them.
    #[test]
    fn every_adapter_situation_has_its_class() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors/classes/adapter-situations.txt"
        );
        let table = std::fs::read_to_string(path).expect("the situations table");
        let mut rows = 0;
        for line in table
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (situation, want) = match words.as_slice() {
                [s, k, c, t, n] => (vec![*s, *k], [*c, *t, *n]),
                [s, c, t, n] => (vec![*s], [*c, *t, *n]),
                _ => panic!("bad row {line}"),
            };
            let kind = || io_kind(situation.get(1).copied().unwrap_or("Other"));
            let error = match situation.first().copied().unwrap_or_default() {
                "resolve" => NetError::Resolve {
                    host: "h".into(),
                    source: IoError::other("no such host"),
                },
                "connect" => NetError::Connect {
                    host: "h".into(),
                    port: 1,
                    source: IoError::from(kind()),
                },
                "io" => NetError::io("waiting for the server", IoError::from(kind())),
                "timeout" => NetError::Timeout("waiting for the server"),
                "certificate" => NetError::tls(
                    "h",
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
                ),
                "tls" => NetError::tls("h", rustls::Error::DecryptError),
                "ca-file" => NetError::CaFile {
                    path: "ca.pem".into(),
                    reason: "no certificate".into(),
                },
                "sink" => NetError::sink(IoError::from(kind())),
                "cancelled" => NetError::Cancelled,
                other => panic!("unknown situation {other}"),
            };
            let temporary = if error.is_temporary() {
                "temporary"
            } else {
                "permanent"
            };
            assert_eq!(
                [error.class().as_str(), temporary, error.kind()],
                want,
                "{line}"
            );
            rows += 1;
        }
        assert!(rows >= 15, "{rows} rows");
    }
}

//! Errors of a network session, each saying what to do next.

use crate::proto;

/// A network session failed.
#[derive(Debug, thiserror::Error)]
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
    /// A read or write failed.
    #[error("connection error while {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The POP3 engine reported an error (server refusal, protocol violation, policy).
    #[error(transparent)]
    Pop3(#[from] proto::Error),
}

impl NetError {
    /// True when the server refused the credentials.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, NetError::Pop3(proto::Error::Server(e)) if e.is_auth_failure())
    }

    /// True when trying again later may work (timeouts, a connection dropped in the middle of
    /// the session, `[IN-USE]`, `[SYS/TEMP]`, ...).
    pub fn is_temporary(&self) -> bool {
        match self {
            NetError::Timeout(_) => true,
            NetError::Io { source, .. } => is_dropped_connection(source),
            NetError::Pop3(proto::Error::Protocol(proto::ProtocolError::UnexpectedEof)) => true,
            NetError::Pop3(e) => e.is_temporary(),
            _ => false,
        }
    }

    /// True for certificate and TLS failures, and policy refusals about TLS.
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            NetError::Certificate { .. }
                | NetError::Tls { .. }
                | NetError::Pop3(proto::Error::Policy(proto::PolicyError::TlsUnavailable(_)))
        )
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
}

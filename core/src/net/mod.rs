//! Thin I/O adapters: they move bytes between a socket (plain or rustls) and the sans-IO
//! [`Client`](crate::proto::Client), and do nothing else.
//!
//! - [`blocking::BlockingClient`]: std `TcpStream` + rustls, with connect and read timeouts.
//! - `async_io::AsyncClient` (feature `async`): generic over the `futures` `AsyncRead`/`AsyncWrite` traits, so it
//!   runs on any executor; TLS through `futures-rustls`.
//!
//! Both read only what the engine asks for around STLS: whatever arrives with the `+OK` to STLS
//! is handed to the engine, which treats it as an injection attack.

#[cfg(feature = "async")]
pub mod async_io;
pub mod blocking;
mod cancel;
mod error;
mod options;
pub mod tls;

pub use cancel::Canceller;
pub use error::NetError;
pub(crate) use options::FnWriter;
pub use options::{BodyRead, BodyStream, ConnectOptions, RetrPart};

/// A login request with a fresh nonce, naming the server for OAUTHBEARER.
pub(crate) fn auth_request(
    user: &str,
    credential: crate::proto::Credential,
    method: crate::proto::AuthMethod,
    host: &str,
    port: u16,
) -> Result<crate::proto::AuthRequest, NetError> {
    Ok(crate::proto::AuthRequest {
        username: user.to_string(),
        credential,
        method,
        authzid: None,
        nonce: fresh_nonce()?,
        host: Some(host.to_string()),
        port: Some(port),
    })
}

/// A fresh SCRAM client nonce: 24 random bytes in base64 (printable, no `,`).
pub(crate) fn fresh_nonce() -> Result<String, NetError> {
    use base64::Engine as _;
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).map_err(|e| NetError::Io {
        context: "reading the system random source",
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

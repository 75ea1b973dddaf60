//! What a connection needs to know before it starts.

use std::path::PathBuf;
use std::time::Duration;

use crate::proto::{ClientOptions, CommandId, MessageNumber, Pending, Security, ServerError};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name or IP address (IPv6 without brackets). Also the TLS server name.
    pub host: String,
    /// Port; `None` means 995 for [`Security::Tls`], 110 otherwise.
    pub port: Option<u16>,
    /// Implicit TLS (default), STLS, or none.
    pub security: Security,
    /// An extra CA certificate file (PEM) to trust besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Extra CA certificates (PEM text) to trust, e.g. from a binding.
    pub ca_pem: Option<Vec<u8>>,
    /// Trust the system's and the bundled (Mozilla) roots. On by default.
    pub system_roots: bool,
    /// TCP connect timeout, per address tried.
    pub connect_timeout: Duration,
    /// Longest wait for any read or write; a stalled server ends with [`super::NetError::Timeout`].
    pub timeout: Duration,
    /// The engine's options; `security` is taken from the field above.
    pub engine: ClientOptions,
}

impl ConnectOptions {
    /// Defaults for `host`: implicit TLS on port 995, 30 s timeouts.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            security: Security::Tls,
            ca_file: None,
            ca_pem: None,
            system_roots: true,
            connect_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
            engine: ClientOptions::default(),
        }
    }

    /// The port to use.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.security.default_port())
    }

    pub(crate) fn engine_options(&self) -> ClientOptions {
        ClientOptions {
            security: self.security,
            negotiate: true,
            ..self.engine.clone()
        }
    }
}

/// A piece of a pipelined bulk retrieval.
#[derive(Debug)]
pub enum RetrPart<'a> {
    /// Body bytes of message `number`, dot-unstuffed, CRLF line ends.
    Data {
        /// The message.
        number: MessageNumber,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// Message `number` is complete.
    End {
        /// The message.
        number: MessageNumber,
        /// Octets delivered.
        octets: u64,
    },
    /// The server refused to send message `number`; the others go on.
    Refused {
        /// The message.
        number: MessageNumber,
        /// The server's `-ERR`.
        error: ServerError,
    },
}

/// A `RETR` whose body the caller pulls piece by piece, for callers that cannot hand over a
/// callback or a writer (a Python or JavaScript iterator). From `retr_stream` on either adapter;
/// read it with `read_body`. Dropping it early is fine: the adapter's next call first reads
/// the rest of this body and discards it, so the session stays in step.
#[derive(Debug)]
pub struct BodyStream {
    pub(super) retr: Option<Pending<u64>>,
    pub(super) number: MessageNumber,
}

impl BodyStream {
    /// The message number.
    pub fn number(&self) -> MessageNumber {
        self.number
    }

    /// The command's id, while the body is still being read.
    pub(super) fn open_id(&self) -> Option<CommandId> {
        self.retr.as_ref().map(Pending::id)
    }
}

/// What one `read_body` call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRead {
    /// Bytes were appended; call again for more.
    More,
    /// The body is complete (bytes may also have been appended by this call): `octets` in all.
    End {
        /// Octets delivered.
        octets: u64,
    },
    /// The server refused this message; the session goes on.
    Refused(ServerError),
}

/// A chunk callback as a writer, blocking (`std::io::Write`) and async (`AsyncWrite`), so a
/// callback and a writer take the same path through the adapters.
pub(crate) struct FnWriter<'a, F: ?Sized>(pub(crate) &'a mut F);

impl<F: FnMut(&[u8]) -> std::io::Result<()> + ?Sized> std::io::Write for FnWriter<'_, F> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        (self.0)(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "async")]
impl<F: FnMut(&[u8]) -> std::io::Result<()> + ?Sized> futures_io::AsyncWrite for FnWriter<'_, F> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        bytes: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(std::io::Write::write(self.get_mut(), bytes))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

//! The async adapter, generic over the `futures` `AsyncRead`/`AsyncWrite` traits: bring a
//! connected stream from any runtime (async-net/smol, async-std, tokio through its `compat`
//! layer) and the client runs TLS and POP3 over it.
//!
//! There is no timer here, on purpose: wrap calls in your runtime's timeout.
//!
//! ```no_run
//! # async fn demo() -> Result<(), popwire::net::NetError> {
//! use popwire::net::{ConnectOptions, async_io::AsyncClient};
//! use popwire::proto::Secret;
//!
//! let tcp = async_net::TcpStream::connect(("pop.example.com", 995)).await
//!     .map_err(|e| popwire::net::NetError::Io { context: "connecting", source: e })?;
//! let mut pop = AsyncClient::connect_with(tcp, ConnectOptions::new("pop.example.com")).await?;
//! pop.login("me@example.com", Secret::new("app-password")).await?;
//! let messages = pop.uidl().await?;
//! pop.quit().await?;
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use futures_util::io::{AsyncReadExt, AsyncWriteExt};

use super::driver::{self, Completions, Next, shape};
use super::{ConnectOptions, NetError, RetrPart, tls};
use crate::proto::{
    AuthMethod, AuthRequest, Capabilities, Client, CommandId, Credential, ListEntry, MessageNumber,
    Reply, Secret, Security, ServerError, UidlEntry,
};

enum Transport<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    Broken,
}

/// A POP3 session over any `futures` byte stream.
pub struct AsyncClient<S> {
    engine: Client,
    transport: Transport<S>,
    completions: Completions,
    host: String,
    port: u16,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    buf: Vec<u8>,
}

impl<S> std::fmt::Debug for AsyncClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("phase", &self.engine.phase())
            .field("tls", &self.engine.is_tls())
            .finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncClient<S> {
    /// Runs TLS (implicit or STLS, per `options.security`) and POP3 negotiation over `stream`,
    /// which must already be connected to `options.host`.
    pub async fn connect_with(stream: S, options: ConnectOptions) -> Result<Self, NetError> {
        let tls_config = match options.security {
            Security::None => None,
            Security::Tls | Security::StartTls => Some(tls::client_config(&options)?),
        };
        let mut client = Self {
            engine: Client::new(options.engine_options()),
            transport: Transport::Plain(stream),
            completions: Completions::default(),
            host: options.host.clone(),
            port: options.port(),
            tls_config,
            buf: vec![0; 64 * 1024],
        };
        if options.security == Security::Tls {
            client.start_tls().await?;
        }
        loop {
            let idle = client.step(&mut |_, _| Ok(())).await?;
            if client.completions.take_ready() {
                return Ok(client);
            }
            if idle {
                client.read_more().await?;
            }
        }
    }

    /// The server's capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        self.engine.capabilities()
    }

    /// The engine, for state inspection.
    pub fn engine(&self) -> &Client {
        &self.engine
    }

    /// Logs in with the strongest mechanism the server offers for a password.
    pub async fn login(&mut self, user: &str, password: Secret) -> Result<(), NetError> {
        self.authenticate(user, Credential::Password(password), AuthMethod::Auto)
            .await
    }

    /// Logs in with an explicit credential and method.
    pub async fn authenticate(
        &mut self,
        user: &str,
        credential: Credential,
        method: AuthMethod,
    ) -> Result<(), NetError> {
        let request = AuthRequest {
            username: user.to_string(),
            credential,
            method,
            authzid: None,
            nonce: super::fresh_nonce()?,
            host: Some(self.host.clone()),
            port: Some(self.port),
        };
        let id = self.engine.authenticate(request)?;
        self.wait(id).await.map(|_| ())
    }

    /// `CAPA`.
    pub async fn capa(&mut self) -> Result<Capabilities, NetError> {
        let id = self.engine.capa()?;
        let reply = self.wait(id).await?;
        Ok(shape::capabilities(reply, self.engine.capabilities()))
    }

    /// `STAT`: (messages, octets).
    pub async fn stat(&mut self) -> Result<(u32, u64), NetError> {
        let id = self.engine.stat()?;
        self.wait(id).await.map(shape::stat)
    }

    /// `LIST`.
    pub async fn list(&mut self) -> Result<Vec<ListEntry>, NetError> {
        let id = self.engine.list(None)?;
        self.wait(id).await.map(shape::list)
    }

    /// `LIST n`.
    pub async fn list_one(&mut self, number: MessageNumber) -> Result<ListEntry, NetError> {
        let id = self.engine.list(Some(number))?;
        self.wait(id).await.map(|r| shape::list_one(r, number))
    }

    /// `UIDL`.
    pub async fn uidl(&mut self) -> Result<Vec<UidlEntry>, NetError> {
        let id = self.engine.uidl(None)?;
        self.wait(id).await.map(shape::uidl)
    }

    /// `UIDL n`.
    pub async fn uidl_one(&mut self, number: MessageNumber) -> Result<UidlEntry, NetError> {
        let id = self.engine.uidl(Some(number))?;
        self.wait(id).await.map(|r| shape::uidl_one(r, number))
    }

    /// `RETR n`, each chunk handed to `on_chunk` as it arrives; returns the octets.
    pub async fn retr_with(
        &mut self,
        number: MessageNumber,
        on_chunk: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<u64, NetError> {
        let id = self.engine.retr(number)?;
        self.wait_body(id, on_chunk).await
    }

    /// `RETR n` into memory.
    pub async fn retr(&mut self, number: MessageNumber) -> Result<Vec<u8>, NetError> {
        let mut out = Vec::new();
        self.retr_with(number, &mut |c| {
            out.extend_from_slice(c);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// `TOP n lines` into memory.
    pub async fn top(&mut self, number: MessageNumber, lines: u32) -> Result<Vec<u8>, NetError> {
        let id = self.engine.top(number, lines)?;
        let mut out = Vec::new();
        self.wait_body(id, &mut |c| {
            out.extend_from_slice(c);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Retrieves many messages, pipelined when the server allows; parts arrive in order.
    pub async fn retr_many(
        &mut self,
        numbers: &[MessageNumber],
        on_part: &mut dyn FnMut(RetrPart<'_>) -> io::Result<()>,
    ) -> Result<(), NetError> {
        let mut ids = VecDeque::with_capacity(numbers.len());
        for &n in numbers {
            ids.push_back((self.engine.retr(n)?, n));
        }
        while let Some(&(_, number)) = ids.front() {
            // Bodies arrive in command order and each step stops at a completion, so any body
            // bytes in this step belong to the front message.
            let mut sink = |_: CommandId, bytes: &[u8]| on_part(RetrPart::Data { number, bytes });
            let idle = self.step(&mut sink).await?;
            driver::report_retrieved(&mut self.completions, &mut ids, on_part)?;
            if !ids.is_empty() && idle {
                self.read_more().await?;
            }
        }
        Ok(())
    }

    /// `DELE` for each number, pipelined; the per-message outcome in order.
    pub async fn dele_many(
        &mut self,
        numbers: &[MessageNumber],
    ) -> Result<Vec<Result<(), ServerError>>, NetError> {
        let mut ids = Vec::with_capacity(numbers.len());
        for &n in numbers {
            ids.push(self.engine.dele(n)?);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(match self.wait(id).await {
                Ok(_) => Ok(()),
                Err(NetError::Pop3(crate::proto::Error::Server(e))) => Err(e),
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }

    /// `DELE n`.
    pub async fn dele(&mut self, number: MessageNumber) -> Result<(), NetError> {
        let id = self.engine.dele(number)?;
        self.wait(id).await.map(|_| ())
    }

    /// `RSET`.
    pub async fn rset(&mut self) -> Result<(), NetError> {
        let id = self.engine.rset()?;
        self.wait(id).await.map(|_| ())
    }

    /// `NOOP`.
    pub async fn noop(&mut self) -> Result<(), NetError> {
        let id = self.engine.noop()?;
        self.wait(id).await.map(|_| ())
    }

    /// `QUIT`: the server commits deletions; the stream is closed.
    pub async fn quit(mut self) -> Result<String, NetError> {
        let id = self.engine.quit()?;
        let text = shape::closed(self.wait(id).await?);
        let _ = match &mut self.transport {
            Transport::Plain(s) => s.close().await,
            Transport::Tls(s) => s.close().await,
            Transport::Broken => Ok(()),
        };
        Ok(text)
    }

    // ---- the loop ----------------------------------------------------------------------------

    async fn wait(&mut self, id: CommandId) -> Result<Reply, NetError> {
        loop {
            let idle = self.step(&mut |_, _| Ok(())).await?;
            if let Some(result) = self.completions.take(id) {
                return result.map_err(NetError::from);
            }
            if idle {
                self.read_more().await?;
            }
        }
    }

    async fn wait_body(
        &mut self,
        id: CommandId,
        on_chunk: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<u64, NetError> {
        loop {
            // Only this command's bytes: the rest of an abandoned body must not leak here.
            let idle = self
                .step(&mut |cid, data| if cid == id { on_chunk(data) } else { Ok(()) })
                .await?;
            if let Some(result) = self.completions.take(id) {
                return Ok(shape::octets(result?));
            }
            if idle {
                self.read_more().await?;
            }
        }
    }

    /// Returns true when the engine needs input (so reading cannot skip buffered events).
    async fn step(
        &mut self,
        on_body: &mut dyn FnMut(CommandId, &[u8]) -> io::Result<()>,
    ) -> Result<bool, NetError> {
        loop {
            self.flush().await?;
            match driver::drain(&mut self.engine, &mut self.completions, on_body)? {
                Next::StartTls => self.start_tls().await?,
                Next::Read => return self.flush().await.map(|()| true),
                Next::Completed => return self.flush().await.map(|()| false),
            }
        }
    }

    async fn flush(&mut self) -> Result<(), NetError> {
        while let Some(bytes) = self.engine.poll_transmit() {
            let result = match &mut self.transport {
                Transport::Plain(s) => s.write_all(&bytes).await,
                Transport::Tls(s) => match s.write_all(&bytes).await {
                    Ok(()) => s.flush().await,
                    Err(e) => Err(e),
                },
                Transport::Broken => Err(io::Error::from(io::ErrorKind::NotConnected)),
            };
            result.map_err(|e| NetError::io("sending a command", e))?;
        }
        Ok(())
    }

    async fn read_more(&mut self) -> Result<(), NetError> {
        let n = match &mut self.transport {
            Transport::Plain(s) => s.read(&mut self.buf).await,
            Transport::Tls(s) => s.read(&mut self.buf).await,
            Transport::Broken => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
        .map_err(|e| NetError::io("waiting for the server", e))?;
        if n == 0 {
            self.engine.handle_eof()?;
            return Ok(());
        }
        self.engine
            .handle_input(self.buf.get(..n).unwrap_or_default())?;
        Ok(())
    }

    async fn start_tls(&mut self) -> Result<(), NetError> {
        let config = match &self.tls_config {
            Some(c) => c.clone(),
            None => tls::client_config(&ConnectOptions::new(self.host.clone()))?,
        };
        let plain = match std::mem::replace(&mut self.transport, Transport::Broken) {
            Transport::Plain(s) => s,
            other => {
                self.transport = other;
                return Ok(());
            }
        };
        let name = tls::server_name(&self.host)?;
        let stream = TlsConnector::from(config)
            .connect(name, plain)
            .await
            .map_err(|e| {
                match e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    Some(tls_error) => NetError::tls(&self.host, tls_error.clone()),
                    None => NetError::io("negotiating TLS", e),
                }
            })?;
        self.transport = Transport::Tls(Box::new(stream));
        if self.engine.phase() == crate::proto::Phase::AwaitingTls {
            self.engine.tls_established()?;
        }
        Ok(())
    }
}

//! The async adapter, generic over the `futures` `AsyncRead`/`AsyncWrite` traits: bring a
//! connected stream from any runtime (async-net/smol, async-std, tokio through its `compat`
//! layer) and the client runs TLS and POP3 over it.
//!
//! There is no timer here, on purpose: wrap calls in your runtime's timeout. The methods are
//! the blocking adapter's, with the same names and meaning; both run the engine's one pull
//! interface ([`Session::next`]) and only move bytes.
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

use std::io;
use std::sync::Arc;

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use futures_util::io::{AsyncReadExt, AsyncWriteExt};

use super::blocking::abandoned_stream;
use super::blocking::{DeleOutcomes, UidlOutcome};
use super::{BodyRead, BodyStream, ConnectOptions, FnWriter, NetError, RetrPart, tls};
use crate::proto::{
    AuthMethod, Capabilities, Client, CommandId, Credential, Interrupt, ListEntry, MessageNumber,
    Pending, Progress, Reply, Secret, Security, ServerError, Session, UidlEntry, Until, refusal,
};

enum Transport<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    Broken,
}

/// A POP3 session over any `futures` byte stream.
pub struct AsyncClient<S> {
    session: Session,
    transport: Transport<S>,
    host: String,
    port: u16,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    buf: Vec<u8>,
    /// The last body a [`Body`] streamed, so `retr_each` knows not to drain it again.
    streamed: Option<CommandId>,
    /// A [`BodyStream`] not read to its end: the next other call drains it first.
    open_body: Option<CommandId>,
}

impl<S> std::fmt::Debug for AsyncClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("phase", &self.session.client().phase())
            .field("tls", &self.session.client().is_tls())
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
            session: Session::new(options.engine_options()),
            transport: Transport::Plain(stream),
            host: options.host.clone(),
            port: options.port(),
            tls_config,
            buf: vec![0; 64 * 1024],
            streamed: None,
            open_body: None,
        };
        if options.security == Security::Tls {
            client.start_tls().await?;
        }
        let _ready = client
            .drive(Until::Ready, &mut futures_util::io::sink())
            .await?;
        Ok(client)
    }

    /// The server's capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        self.engine().capabilities()
    }

    /// The engine, for state inspection.
    pub fn engine(&self) -> &Client {
        self.session.client()
    }

    /// Sets the pipelining window; see [`Client::set_max_in_flight`].
    pub fn set_max_in_flight(&mut self, window: usize) {
        self.session.client_mut().set_max_in_flight(window);
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
        let request = super::auth_request(user, credential, method, &self.host, self.port)?;
        let pending = self.session.authenticate(request)?;
        self.wait(pending).await
    }

    /// `CAPA`, refreshing [`AsyncClient::capabilities`].
    pub async fn capa(&mut self) -> Result<Capabilities, NetError> {
        let pending = self.session.capa()?;
        self.wait(pending).await
    }

    /// `STAT`: (messages, octets).
    pub async fn stat(&mut self) -> Result<(u32, u64), NetError> {
        let pending = self.session.stat()?;
        self.wait(pending).await
    }

    /// `LIST`.
    pub async fn list(&mut self) -> Result<Vec<ListEntry>, NetError> {
        let pending = self.session.list()?;
        self.wait(pending).await
    }

    /// `LIST n`.
    pub async fn list_one(&mut self, number: MessageNumber) -> Result<ListEntry, NetError> {
        let pending = self.session.list_one(number)?;
        self.wait(pending).await
    }

    /// `UIDL`.
    pub async fn uidl(&mut self) -> Result<Vec<UidlEntry>, NetError> {
        let pending = self.session.uidl()?;
        self.wait(pending).await
    }

    /// `LIST` and `UIDL` pipelined: one round trip for both when the server allows. The UIDL
    /// result is separate, as a server may refuse it (no UIDL support) and still list.
    pub async fn list_and_uidl(&mut self) -> Result<(Vec<ListEntry>, UidlOutcome), NetError> {
        let list = self.session.list()?;
        let uidl = self.session.uidl()?;
        let listing = self.wait(list).await;
        let uids = self.wait(uidl).await;
        Ok((listing?, uids))
    }

    /// `UIDL n`.
    pub async fn uidl_one(&mut self, number: MessageNumber) -> Result<UidlEntry, NetError> {
        let pending = self.session.uidl_one(number)?;
        self.wait(pending).await
    }

    /// `RETR n`, streamed into `sink`; returns the octets written.
    pub async fn retr_to<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        number: MessageNumber,
        sink: &mut W,
    ) -> Result<u64, NetError> {
        let pending = self.session.retr(number)?;
        self.wait_body(pending, sink).await
    }

    /// `RETR n`, each chunk handed to `on_chunk` as it arrives; returns the octets.
    pub async fn retr_with(
        &mut self,
        number: MessageNumber,
        on_chunk: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<u64, NetError> {
        self.retr_to(number, &mut FnWriter(on_chunk)).await
    }

    /// `RETR n` into memory. Prefer [`AsyncClient::retr_to`] for large messages.
    pub async fn retr(&mut self, number: MessageNumber) -> Result<Vec<u8>, NetError> {
        let mut out = Vec::new();
        self.retr_to(number, &mut out).await?;
        Ok(out)
    }

    /// `TOP n lines`, streamed into `sink`.
    pub async fn top_to<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        number: MessageNumber,
        lines: u32,
        sink: &mut W,
    ) -> Result<u64, NetError> {
        let pending = self.session.top(number, lines)?;
        self.wait_body(pending, sink).await
    }

    /// `TOP n lines` into memory.
    pub async fn top(&mut self, number: MessageNumber, lines: u32) -> Result<Vec<u8>, NetError> {
        let mut out = Vec::new();
        self.top_to(number, lines, &mut out).await?;
        Ok(out)
    }

    /// `RETR n`, its body pulled with [`AsyncClient::read_body`] (see [`BodyStream`]).
    pub async fn retr_stream(&mut self, number: MessageNumber) -> Result<BodyStream, NetError> {
        self.drain_open_body().await?;
        let retr = self.session.retr(number)?;
        self.open_body = Some(retr.id());
        Ok(BodyStream {
            retr: Some(retr),
            number,
        })
    }

    /// Appends the next body bytes of `stream` to `out`, returning once `out` holds at least
    /// `at_least` bytes or the body ends; as [`BlockingClient::read_body`](super::blocking::BlockingClient::read_body).
    pub async fn read_body(
        &mut self,
        stream: &mut BodyStream,
        out: &mut Vec<u8>,
        at_least: usize,
    ) -> Result<BodyRead, NetError> {
        let Some(id) = stream.open_id() else {
            return Ok(BodyRead::End { octets: 0 });
        };
        if self.open_body != Some(id) {
            stream.retr = None;
            return Err(abandoned_stream());
        }
        let mut target: Target<'_, futures_util::io::Sink> = Target::Pull { out, at_least };
        let Some(result) = self.run(Until::Done(id), &mut target).await? else {
            return Ok(BodyRead::More);
        };
        self.open_body = None;
        let Some(retr) = stream.retr.take() else {
            return Ok(BodyRead::End { octets: 0 });
        };
        Ok(match refusal(retr.finish(result))? {
            Ok(octets) => BodyRead::End { octets },
            Err(error) => BodyRead::Refused(error),
        })
    }

    /// Retrieves many messages, pipelined when the server allows; parts arrive in order.
    /// A message the server refuses is reported as [`RetrPart::Refused`] and the rest go on.
    pub async fn retr_many(
        &mut self,
        numbers: &[MessageNumber],
        on_part: &mut dyn FnMut(RetrPart<'_>) -> io::Result<()>,
    ) -> Result<(), NetError> {
        let pending = numbers
            .iter()
            .map(|&n| Ok((self.session.retr(n)?, n)))
            .collect::<Result<Vec<_>, crate::proto::Error>>()?;
        for (retr, number) in pending {
            let mut data = |bytes: &[u8]| on_part(RetrPart::Data { number, bytes });
            let result = self
                .drive(Until::Done(retr.id()), &mut FnWriter(&mut data))
                .await?;
            let part = match refusal(retr.finish(result))? {
                Ok(octets) => RetrPart::End { number, octets },
                Err(error) => RetrPart::Refused { number, error },
            };
            on_part(part).map_err(NetError::sink)?;
        }
        Ok(())
    }

    /// Retrieves many messages, pipelined, handing each to `on_message` as a [`Body`] to stream
    /// wherever it likes (an async closure: `async |body| { body.copy_to(&mut file).await?; ... }`).
    /// Unlike [`AsyncClient::retr_many`], the callback sees one whole message per call.
    pub async fn retr_each<E, F>(
        &mut self,
        numbers: &[MessageNumber],
        on_message: &mut F,
    ) -> Result<(), E>
    where
        E: From<NetError>,
        F: AsyncFnMut(Body<'_, S>) -> Result<(), E>,
    {
        let mut pending = Vec::with_capacity(numbers.len());
        for &n in numbers {
            pending.push((self.session.retr(n).map_err(NetError::from)?, n));
        }
        for (retr, number) in pending {
            let id = retr.id();
            on_message(Body {
                client: &mut *self,
                retr,
                number,
            })
            .await?;
            // A callback that ignored its body: read past it so the next one lines up.
            if self.streamed != Some(id) {
                let _ = self
                    .drive(Until::Done(id), &mut futures_util::io::sink())
                    .await;
            }
        }
        Ok(())
    }

    /// `DELE` for each number, pipelined; the per-message outcome in order.
    pub async fn dele_many(
        &mut self,
        numbers: &[MessageNumber],
    ) -> Result<Vec<Result<(), ServerError>>, NetError> {
        let pending = self.session.dele_many(numbers)?;
        self.dele_outcomes(pending).await
    }

    /// Waits for each DELE; a refusal of one message is its outcome, anything else ends it.
    async fn dele_outcomes(&mut self, pending: Vec<Pending<()>>) -> Result<DeleOutcomes, NetError> {
        let mut out = Vec::with_capacity(pending.len());
        for dele in pending {
            let result = self
                .drive(Until::Done(dele.id()), &mut futures_util::io::sink())
                .await?;
            out.push(refusal(dele.finish(result))?);
        }
        Ok(out)
    }

    /// `DELE n`.
    pub async fn dele(&mut self, number: MessageNumber) -> Result<(), NetError> {
        let pending = self.session.dele(number)?;
        self.wait(pending).await
    }

    /// `RSET`.
    pub async fn rset(&mut self) -> Result<(), NetError> {
        let pending = self.session.rset()?;
        self.wait(pending).await
    }

    /// `NOOP`.
    pub async fn noop(&mut self) -> Result<(), NetError> {
        let pending = self.session.noop()?;
        self.wait(pending).await
    }

    /// `DELE` for each number and then `QUIT`, all pipelined: one round trip ends a session.
    /// Returns each DELE's outcome in order and QUIT's text; the deletions took effect only
    /// when this returns `Ok`.
    pub async fn dele_many_and_quit(
        mut self,
        numbers: &[MessageNumber],
    ) -> Result<(DeleOutcomes, String), NetError> {
        let deles = self.session.dele_many(numbers)?;
        let quit = self.session.quit()?;
        let outcomes = self.dele_outcomes(deles).await?;
        let text = self.wait(quit).await?;
        self.close().await;
        Ok((outcomes, text))
    }

    /// `QUIT`: the server commits deletions; the stream is closed.
    pub async fn quit(mut self) -> Result<String, NetError> {
        let pending = self.session.quit()?;
        let text = self.wait(pending).await?;
        self.close().await;
        Ok(text)
    }

    async fn close(&mut self) {
        let _ = match &mut self.transport {
            Transport::Plain(s) => s.close().await,
            Transport::Tls(s) => s.close().await,
            Transport::Broken => Ok(()),
        };
    }

    // ---- the driver: moves bytes for Session::next -------------------------------------------

    async fn wait<T>(&mut self, pending: Pending<T>) -> Result<T, NetError> {
        self.wait_body(pending, &mut futures_util::io::sink()).await
    }

    async fn wait_body<T, W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        pending: Pending<T>,
        sink: &mut W,
    ) -> Result<T, NetError> {
        let result = self.drive(Until::Done(pending.id()), sink).await?;
        Ok(pending.finish(result)?)
    }

    /// Runs the session until `until`, writing body bytes of the awaited command to `sink`.
    /// Returns the completion (`Ok(Reply::Ok)` stands in for [`Until::Ready`]).
    async fn drive<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        until: Until,
        sink: &mut W,
    ) -> Result<Result<Reply, crate::proto::Error>, NetError> {
        self.drain_open_body().await?;
        match self.run(until, &mut Target::Write(sink)).await? {
            Some(result) => Ok(result),
            None => Err(NetError::sink(io::Error::other("the body writer paused"))),
        }
    }

    /// Reads past the rest of a [`BodyStream`] its caller left unfinished.
    async fn drain_open_body(&mut self) -> Result<(), NetError> {
        if let Some(id) = self.open_body.take() {
            let mut discard = Target::Write(&mut futures_util::io::sink());
            self.run(Until::Done(id), &mut discard).await?;
        }
        Ok(())
    }

    /// The one driver loop: writes, reads and runs TLS for `Session::next` until `until`,
    /// handing body bytes to `target`. `Ok(None)`: a pulling target holds enough.
    async fn run<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        until: Until,
        target: &mut Target<'_, W>,
    ) -> Result<Option<Result<Reply, crate::proto::Error>>, NetError> {
        loop {
            match self.session.next(until) {
                Ok(Progress::Body(data)) => match target {
                    Target::Write(sink) => sink.write_all(data).await.map_err(NetError::sink)?,
                    Target::Pull { out, at_least } => {
                        out.extend_from_slice(data);
                        if out.len() >= *at_least {
                            return Ok(None);
                        }
                    }
                },
                Ok(Progress::Done(result)) => {
                    // Commands the window let out meanwhile leave now, not at the next call.
                    self.flush().await?;
                    return Ok(Some(result));
                }
                Ok(Progress::Ready) => return Ok(Some(Ok(Reply::Ok(String::new())))),
                Err(Interrupt::Output(bytes)) => self.write(&bytes).await?,
                Err(Interrupt::NeedInput) => self.read_more().await?,
                Err(Interrupt::StartTls) => self.start_tls().await?,
                Err(Interrupt::Error(e)) => return Err(e.into()),
            }
        }
    }

    async fn flush(&mut self) -> Result<(), NetError> {
        while let Some(bytes) = self.session.client_mut().poll_transmit() {
            self.write(&bytes).await?;
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        match &mut self.transport {
            Transport::Plain(s) => s.write_all(bytes).await,
            Transport::Tls(s) => match s.write_all(bytes).await {
                Ok(()) => s.flush().await,
                Err(e) => Err(e),
            },
            Transport::Broken => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
        .map_err(|e| NetError::io("sending a command", e))
    }

    async fn read_more(&mut self) -> Result<(), NetError> {
        let n = match &mut self.transport {
            Transport::Plain(s) => s.read(&mut self.buf).await,
            Transport::Tls(s) => s.read(&mut self.buf).await,
            Transport::Broken => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
        .map_err(|e| NetError::io("waiting for the server", e))?;
        let engine = self.session.client_mut();
        if n == 0 {
            engine.handle_eof()?;
            return Ok(());
        }
        engine.handle_input(self.buf.get(..n).unwrap_or_default())?;
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
        self.session.tls_established()?;
        Ok(())
    }
}

/// Where [`AsyncClient::run`] puts body bytes.
enum Target<'a, W: ?Sized> {
    /// Into a writer, all of them.
    Write(&'a mut W),
    /// Into a buffer, pausing once it holds `at_least` bytes.
    Pull {
        out: &'a mut Vec<u8>,
        at_least: usize,
    },
}

/// One message of [`AsyncClient::retr_each`], streamed on demand.
pub struct Body<'c, S> {
    client: &'c mut AsyncClient<S>,
    retr: Pending<u64>,
    number: MessageNumber,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Body<'_, S> {
    /// The message number.
    pub fn number(&self) -> MessageNumber {
        self.number
    }

    /// Streams the body into `sink`. `Ok(Err(..))` is the server refusing this one message
    /// (the session goes on); `Err` is a failure of the session or of `sink`
    /// ([`NetError::Sink`], carrying the sink's own error).
    pub async fn copy_to<W: AsyncWrite + Unpin + ?Sized>(
        self,
        sink: &mut W,
    ) -> Result<Result<u64, ServerError>, NetError> {
        let retr = self.retr;
        self.client.streamed = Some(retr.id());
        let result = self.client.drive(Until::Done(retr.id()), sink).await?;
        Ok(refusal(retr.finish(result))?)
    }
}

impl<S> std::fmt::Debug for Body<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("number", &self.number)
            .finish()
    }
}

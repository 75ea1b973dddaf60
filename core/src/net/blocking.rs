//! The blocking adapter: `std::net::TcpStream` plus rustls.
//!
//! ```no_run
//! use popwire::net::{ConnectOptions, blocking::BlockingClient};
//! use popwire::proto::Secret;
//!
//! let mut pop = BlockingClient::connect(ConnectOptions::new("pop.example.com"))?;
//! pop.login("me@example.com", Secret::new("app-password"))?;
//! let (count, _size) = pop.stat()?;
//! for n in 1..=count {
//!     let mut message = Vec::new();
//!     pop.retr_to(n, &mut message)?;
//! }
//! pop.quit()?;
//! # Ok::<(), popwire::net::NetError>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;

use rustls::{ClientConnection, StreamOwned};

use super::{BodyRead, BodyStream, Canceller, ConnectOptions, FnWriter, NetError, RetrPart, tls};
use crate::proto::{
    AuthMethod, Capabilities, Client, CommandId, Credential, Interrupt, ListEntry, MessageNumber,
    Pending, Progress, Reply, Secret, Security, Session, UidlEntry, Until, refusal,
};

enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, BufferedSocket>>),
    Broken,
}

impl Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
            Transport::Broken => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.write_all(buf),
            Transport::Tls(s) => {
                s.write_all(buf)?;
                s.flush()
            }
            Transport::Broken => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }
}

/// A TCP stream read in big chunks. rustls asks its socket for a few KiB at a time; a 1 MB
/// message over TLS then costs hundreds of `recv` calls, where this makes it sixteen.
struct BufferedSocket {
    tcp: TcpStream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl BufferedSocket {
    fn new(tcp: TcpStream) -> Self {
        Self {
            tcp,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }
}

impl Read for BufferedSocket {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if out.len() >= self.buf.len() {
                return self.tcp.read(out);
            }
            self.end = self.tcp.read(&mut self.buf)?;
            self.start = 0;
        }
        let available = self.buf.get(self.start..self.end).unwrap_or_default();
        let n = available.len().min(out.len());
        if let (Some(to), Some(from)) = (out.get_mut(..n), available.get(..n)) {
            to.copy_from_slice(from);
        }
        self.start += n;
        Ok(n)
    }
}

impl Write for BufferedSocket {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.tcp.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// Each `DELE`'s outcome, in order: `Err` is the server refusing that one message.
pub type DeleOutcomes = Vec<Result<(), crate::proto::ServerError>>;

/// The outcome of a `UIDL` that a server may refuse while the session goes on.
pub type UidlOutcome = Result<Vec<UidlEntry>, NetError>;

/// A POP3 session over a blocking socket.
pub struct BlockingClient {
    session: Session,
    transport: Transport,
    host: String,
    port: u16,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    buf: Vec<u8>,
    /// The last body a [`Body`] streamed, so `retr_each` knows not to drain it again.
    streamed: Option<CommandId>,
    /// A [`BodyStream`] not read to its end: the next other call drains it first.
    open_body: Option<CommandId>,
    canceller: Canceller,
}

impl std::fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("phase", &self.engine().phase())
            .field("tls", &self.engine().is_tls())
            .finish()
    }
}

const READ_CHUNK: usize = 64 * 1024;

impl BlockingClient {
    /// Connects, reads the greeting, and negotiates (CAPA; STLS and CAPA again for
    /// [`Security::StartTls`]). On return the session is ready to log in.
    pub fn connect(options: ConnectOptions) -> Result<Self, NetError> {
        Self::connect_cancellable(options, &Canceller::new())
    }

    /// [`BlockingClient::connect`], cancellable from another thread with `canceller`, which
    /// then also cancels every later call of the session (see [`Canceller`]).
    pub fn connect_cancellable(
        options: ConnectOptions,
        canceller: &Canceller,
    ) -> Result<Self, NetError> {
        Self::connect_inner(options, canceller).map_err(|e| canceller.explain(e))
    }

    fn connect_inner(options: ConnectOptions, canceller: &Canceller) -> Result<Self, NetError> {
        let port = options.port();
        // The CA file is checked before connecting, so a config mistake is reported as one.
        let tls_config = match options.security {
            Security::None => None,
            Security::Tls | Security::StartTls => Some(tls::client_config(&options)?),
        };
        let tcp = connect_tcp(&options.host, port, &options)?;
        canceller.attach(&tcp)?;
        let mut client = Self {
            session: Session::new(options.engine_options()),
            transport: Transport::Plain(tcp),
            host: options.host.clone(),
            port,
            tls_config,
            buf: vec![0; READ_CHUNK],
            streamed: None,
            open_body: None,
            canceller: canceller.clone(),
        };
        if options.security == Security::Tls {
            client.start_tls()?;
        }
        let _ready = client.drive(Until::Ready, &mut io::sink())?;
        Ok(client)
    }

    /// The server's capabilities (after TLS, when TLS was negotiated).
    pub fn capabilities(&self) -> &Capabilities {
        self.engine().capabilities()
    }

    /// The engine, for state inspection.
    pub fn engine(&self) -> &Client {
        self.session.client()
    }

    /// The handle that cancels this session's calls from another thread.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// Sets the pipelining window; see [`Client::set_max_in_flight`].
    pub fn set_max_in_flight(&mut self, window: usize) {
        self.session.client_mut().set_max_in_flight(window);
    }

    /// Logs in with the strongest mechanism the server offers for a password.
    pub fn login(&mut self, user: &str, password: Secret) -> Result<(), NetError> {
        self.authenticate(user, Credential::Password(password), AuthMethod::Auto)
    }

    /// Logs in with an explicit credential and method.
    pub fn authenticate(
        &mut self,
        user: &str,
        credential: Credential,
        method: AuthMethod,
    ) -> Result<(), NetError> {
        let request = super::auth_request(user, credential, method, &self.host, self.port)?;
        let pending = self.session.authenticate(request)?;
        self.wait(pending)
    }

    /// `CAPA`, refreshing [`BlockingClient::capabilities`].
    pub fn capa(&mut self) -> Result<Capabilities, NetError> {
        let pending = self.session.capa()?;
        self.wait(pending)
    }

    /// `STAT`: (messages, octets).
    pub fn stat(&mut self) -> Result<(u32, u64), NetError> {
        let pending = self.session.stat()?;
        self.wait(pending)
    }

    /// `LIST`.
    pub fn list(&mut self) -> Result<Vec<ListEntry>, NetError> {
        let pending = self.session.list()?;
        self.wait(pending)
    }

    /// `LIST n`.
    pub fn list_one(&mut self, number: MessageNumber) -> Result<ListEntry, NetError> {
        let pending = self.session.list_one(number)?;
        self.wait(pending)
    }

    /// `UIDL`.
    pub fn uidl(&mut self) -> Result<Vec<UidlEntry>, NetError> {
        let pending = self.session.uidl()?;
        self.wait(pending)
    }

    /// `LIST` and `UIDL` pipelined: one round trip for both when the server allows. The UIDL
    /// result is separate, as a server may refuse it (no UIDL support) and still list.
    pub fn list_and_uidl(&mut self) -> Result<(Vec<ListEntry>, UidlOutcome), NetError> {
        let list = self.session.list()?;
        let uidl = self.session.uidl()?;
        let listing = self.wait(list);
        let uids = self.wait(uidl);
        Ok((listing?, uids))
    }

    /// `UIDL n`.
    pub fn uidl_one(&mut self, number: MessageNumber) -> Result<UidlEntry, NetError> {
        let pending = self.session.uidl_one(number)?;
        self.wait(pending)
    }

    /// `RETR n`, streamed into `sink`; returns the octets written.
    pub fn retr_to(
        &mut self,
        number: MessageNumber,
        sink: &mut dyn Write,
    ) -> Result<u64, NetError> {
        let pending = self.session.retr(number)?;
        self.wait_body(pending, sink)
    }

    /// `RETR n` into memory. Prefer [`BlockingClient::retr_to`] for large messages.
    pub fn retr(&mut self, number: MessageNumber) -> Result<Vec<u8>, NetError> {
        let mut out = Vec::new();
        self.retr_to(number, &mut out)?;
        Ok(out)
    }

    /// `TOP n lines`, streamed into `sink`.
    pub fn top_to(
        &mut self,
        number: MessageNumber,
        lines: u32,
        sink: &mut dyn Write,
    ) -> Result<u64, NetError> {
        let pending = self.session.top(number, lines)?;
        self.wait_body(pending, sink)
    }

    /// `TOP n lines` into memory.
    pub fn top(&mut self, number: MessageNumber, lines: u32) -> Result<Vec<u8>, NetError> {
        let mut out = Vec::new();
        self.top_to(number, lines, &mut out)?;
        Ok(out)
    }

    /// `RETR n`, its body pulled with [`BlockingClient::read_body`] (see [`BodyStream`]).
    pub fn retr_stream(&mut self, number: MessageNumber) -> Result<BodyStream, NetError> {
        self.drain_open_body()?;
        let retr = self.session.retr(number)?;
        self.open_body = Some(retr.id());
        Ok(BodyStream {
            retr: Some(retr),
            number,
        })
    }

    /// Appends the next body bytes of `stream` to `out`, returning once `out` holds at least
    /// `at_least` bytes or the body ends. After [`BodyRead::End`] or [`BodyRead::Refused`] the
    /// stream is finished; another call on a finished stream returns `End` again with 0 octets.
    /// A stream that another call drained fails with a usage error.
    pub fn read_body(
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
        let mut on_body = |data: &[u8]| {
            out.extend_from_slice(data);
            Ok(out.len() >= at_least)
        };
        let done = self
            .run(Until::Done(id), &mut on_body)
            .map_err(|e| self.canceller.explain(e));
        let Some(result) = done? else {
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
    pub fn retr_many(
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
            let result = self.drive(Until::Done(retr.id()), &mut FnWriter(&mut data))?;
            let part = match refusal(retr.finish(result))? {
                Ok(octets) => RetrPart::End { number, octets },
                Err(error) => RetrPart::Refused { number, error },
            };
            on_part(part).map_err(NetError::sink)?;
        }
        Ok(())
    }

    /// Retrieves many messages, pipelined, handing each to `on_message` as a [`Body`] to stream
    /// wherever it likes. Unlike [`BlockingClient::retr_many`], the callback sees one whole
    /// message per call, so it can open a file, stream into it and close it in one scope.
    pub fn retr_each<E: From<NetError>>(
        &mut self,
        numbers: &[MessageNumber],
        on_message: &mut dyn FnMut(Body<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
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
            })?;
            // A callback that ignored its body: read past it so the next one lines up.
            if self.streamed != Some(id) {
                let _ = self.drive(Until::Done(id), &mut io::sink());
            }
        }
        Ok(())
    }

    /// `DELE` for each number, pipelined; returns the per-message outcome in order.
    pub fn dele_many(&mut self, numbers: &[MessageNumber]) -> Result<DeleOutcomes, NetError> {
        let pending = self.session.dele_many(numbers)?;
        self.dele_outcomes(pending)
    }

    /// Waits for each DELE; a refusal of one message is its outcome, anything else ends it.
    fn dele_outcomes(&mut self, pending: Vec<Pending<()>>) -> Result<DeleOutcomes, NetError> {
        let mut out = Vec::with_capacity(pending.len());
        for dele in pending {
            let result = self.drive(Until::Done(dele.id()), &mut io::sink())?;
            out.push(refusal(dele.finish(result))?);
        }
        Ok(out)
    }

    /// `DELE n`.
    pub fn dele(&mut self, number: MessageNumber) -> Result<(), NetError> {
        let pending = self.session.dele(number)?;
        self.wait(pending)
    }

    /// `RSET`.
    pub fn rset(&mut self) -> Result<(), NetError> {
        let pending = self.session.rset()?;
        self.wait(pending)
    }

    /// `NOOP`.
    pub fn noop(&mut self) -> Result<(), NetError> {
        let pending = self.session.noop()?;
        self.wait(pending)
    }

    /// `DELE` for each number and then `QUIT`, all pipelined: one round trip ends a session.
    /// Returns each DELE's outcome in order and QUIT's text; the deletions took effect only
    /// when this returns `Ok`.
    pub fn dele_many_and_quit(
        mut self,
        numbers: &[MessageNumber],
    ) -> Result<(DeleOutcomes, String), NetError> {
        let deles = self.session.dele_many(numbers)?;
        let quit = self.session.quit()?;
        let outcomes = self.dele_outcomes(deles)?;
        let text = self.wait(quit)?;
        self.close_notify();
        Ok((outcomes, text))
    }

    /// `QUIT`: the server commits deletions. Closes the connection.
    pub fn quit(mut self) -> Result<String, NetError> {
        let pending = self.session.quit()?;
        let text = self.wait(pending)?;
        self.close_notify();
        Ok(text)
    }

    fn close_notify(&mut self) {
        if let Transport::Tls(s) = &mut self.transport {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }

    // ---- the driver: moves bytes for Session::next -------------------------------------------

    fn wait<T>(&mut self, pending: Pending<T>) -> Result<T, NetError> {
        self.wait_body(pending, &mut io::sink())
    }

    fn wait_body<T>(&mut self, pending: Pending<T>, sink: &mut dyn Write) -> Result<T, NetError> {
        let result = self.drive(Until::Done(pending.id()), sink)?;
        Ok(pending.finish(result)?)
    }

    /// Runs the session until `until`, writing body bytes of the awaited command to `sink`.
    /// Returns the completion (`Ok(Reply::Ok)` stands in for [`Until::Ready`]).
    fn drive(
        &mut self,
        until: Until,
        sink: &mut dyn Write,
    ) -> Result<Result<Reply, crate::proto::Error>, NetError> {
        self.drive_bytes(until, sink)
            .map_err(|e| self.canceller.explain(e))
    }

    fn drive_bytes(
        &mut self,
        until: Until,
        sink: &mut dyn Write,
    ) -> Result<Result<Reply, crate::proto::Error>, NetError> {
        self.drain_open_body()?;
        let mut write = |data: &[u8]| sink.write_all(data).map(|()| false).map_err(NetError::sink);
        match self.run(until, &mut write)? {
            Some(result) => Ok(result),
            None => Err(NetError::sink(io::Error::other("the body writer paused"))),
        }
    }

    /// Reads past the rest of a [`BodyStream`] its caller left unfinished.
    fn drain_open_body(&mut self) -> Result<(), NetError> {
        if let Some(id) = self.open_body.take() {
            let mut discard = |_: &[u8]| Ok(false);
            self.run(Until::Done(id), &mut discard)?;
        }
        Ok(())
    }

    /// The one driver loop: writes, reads and runs TLS for `Session::next` until `until`,
    /// handing body bytes to `on_body`. `Ok(None)`: `on_body` asked to pause (returned true).
    fn run(
        &mut self,
        until: Until,
        on_body: &mut dyn FnMut(&[u8]) -> Result<bool, NetError>,
    ) -> Result<Option<Result<Reply, crate::proto::Error>>, NetError> {
        loop {
            if self.canceller.is_cancelled() {
                return Err(NetError::Cancelled);
            }
            match self.session.next(until) {
                Ok(Progress::Body(data)) => {
                    if on_body(data)? {
                        return Ok(None);
                    }
                }
                Ok(Progress::Done(result)) => {
                    // Commands the window let out meanwhile leave now, not at the next call.
                    self.flush()?;
                    return Ok(Some(result));
                }
                Ok(Progress::Ready) => return Ok(Some(Ok(Reply::Ok(String::new())))),
                Err(Interrupt::Output(bytes)) => self
                    .transport
                    .write_all(&bytes)
                    .map_err(|e| NetError::io("sending a command", e))?,
                Err(Interrupt::NeedInput) => self.read_more()?,
                Err(Interrupt::StartTls) => self.start_tls()?,
                Err(Interrupt::Error(e)) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> Result<(), NetError> {
        while let Some(bytes) = self.session.client_mut().poll_transmit() {
            self.transport
                .write_all(&bytes)
                .map_err(|e| NetError::io("sending a command", e))?;
        }
        Ok(())
    }

    fn read_more(&mut self) -> Result<(), NetError> {
        let n = self
            .transport
            .read(&mut self.buf)
            .map_err(|e| NetError::io("waiting for the server", e))?;
        let engine = self.session.client_mut();
        if n == 0 {
            engine.handle_eof()?;
            return Ok(());
        }
        engine.handle_input(self.buf.get(..n).unwrap_or_default())?;
        Ok(())
    }

    /// Runs the TLS handshake on the TCP stream: at connect for implicit TLS, after `+OK` for STLS.
    fn start_tls(&mut self) -> Result<(), NetError> {
        let config = match &self.tls_config {
            Some(c) => c.clone(),
            None => tls::client_config(&ConnectOptions::new(self.host.clone()))?,
        };
        let tcp = match std::mem::replace(&mut self.transport, Transport::Broken) {
            Transport::Plain(tcp) => tcp,
            other => {
                self.transport = other;
                return Ok(());
            }
        };
        let name = tls::server_name(&self.host)?;
        let conn = ClientConnection::new(config, name).map_err(|e| NetError::tls(&self.host, e))?;
        let mut stream = StreamOwned::new(conn, BufferedSocket::new(tcp));
        // Finish the handshake now so certificate errors surface before anything else is sent.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|e| {
                match e.downcast::<rustls::Error>() {
                    Ok(tls_error) => NetError::tls(&self.host, tls_error),
                    Err(io_error) => NetError::io("negotiating TLS", io_error),
                }
            })?;
        }
        self.transport = Transport::Tls(Box::new(stream));
        self.session.tls_established()?;
        Ok(())
    }
}

/// One message of [`BlockingClient::retr_each`], streamed on demand.
pub struct Body<'c> {
    client: &'c mut BlockingClient,
    retr: Pending<u64>,
    number: MessageNumber,
}

impl Body<'_> {
    /// The message number.
    pub fn number(&self) -> MessageNumber {
        self.number
    }

    /// Streams the body into `sink`. `Ok(Err(..))` is the server refusing this one message
    /// (the session goes on); `Err` is a failure of the session or of `sink`
    /// ([`NetError::Sink`], carrying the sink's own error).
    pub fn copy_to(
        self,
        sink: &mut dyn Write,
    ) -> Result<Result<u64, crate::proto::ServerError>, NetError> {
        let retr = self.retr;
        self.client.streamed = Some(retr.id());
        let result = self.client.drive(Until::Done(retr.id()), sink)?;
        Ok(refusal(retr.finish(result))?)
    }
}

impl std::fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("number", &self.number)
            .finish()
    }
}

fn connect_tcp(host: &str, port: u16, options: &ConnectOptions) -> Result<TcpStream, NetError> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|source| NetError::Resolve {
            host: host.to_string(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, options.connect_timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(options.timeout))
                    .map_err(|e| NetError::io("configuring the socket", e))?;
                s.set_write_timeout(Some(options.timeout))
                    .map_err(|e| NetError::io("configuring the socket", e))?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(NetError::Connect {
        host: host.to_string(),
        port,
        source: last,
    })
}

/// A [`BodyStream`] whose rest another call read past.
pub(super) fn abandoned_stream() -> NetError {
    NetError::Pop3(crate::proto::Error::Usage(
        crate::proto::UsageError::OutOfOrder(
            "this body stream was abandoned: another call on the session read past it",
        ),
    ))
}

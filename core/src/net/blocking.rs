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

use super::driver::{self, Completions, Next, shape};
use super::{ConnectOptions, NetError, RetrPart, tls};
use crate::proto::{
    AuthMethod, AuthRequest, Capabilities, Client, CommandId, Credential, ListEntry, MessageNumber,
    Reply, Secret, Security, UidlEntry,
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
    engine: Client,
    transport: Transport,
    completions: Completions,
    host: String,
    port: u16,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    buf: Vec<u8>,
    /// The last body a [`Body`] streamed, so `retr_each` knows not to drain it again.
    streamed: Option<CommandId>,
}

impl std::fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("phase", &self.engine.phase())
            .field("tls", &self.engine.is_tls())
            .finish()
    }
}

const READ_CHUNK: usize = 64 * 1024;

impl BlockingClient {
    /// Connects, reads the greeting, and negotiates (CAPA; STLS and CAPA again for
    /// [`Security::StartTls`]). On return the session is ready to log in.
    pub fn connect(options: ConnectOptions) -> Result<Self, NetError> {
        let port = options.port();
        // The CA file is checked before connecting, so a config mistake is reported as one.
        let tls_config = match options.security {
            Security::None => None,
            Security::Tls | Security::StartTls => Some(tls::client_config(&options)?),
        };
        let tcp = connect_tcp(&options.host, port, &options)?;
        let mut client = Self {
            engine: Client::new(options.engine_options()),
            transport: Transport::Plain(tcp),
            completions: Completions::default(),
            host: options.host.clone(),
            port,
            tls_config,
            buf: vec![0; READ_CHUNK],
            streamed: None,
        };
        if options.security == Security::Tls {
            client.start_tls()?;
        }
        loop {
            let idle = client.step(&mut |_, _| Ok(()))?;
            if client.completions.take_ready() {
                break;
            }
            if idle {
                client.read_more()?;
            }
        }
        Ok(client)
    }

    /// The server's capabilities (after TLS, when TLS was negotiated).
    pub fn capabilities(&self) -> &Capabilities {
        self.engine.capabilities()
    }

    /// The engine, for state inspection.
    pub fn engine(&self) -> &Client {
        &self.engine
    }

    /// Sets the pipelining window; see [`Client::set_max_in_flight`].
    pub fn set_max_in_flight(&mut self, window: usize) {
        self.engine.set_max_in_flight(window);
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
        self.wait(id).map(|_| ())
    }

    /// `CAPA`, refreshing [`BlockingClient::capabilities`].
    pub fn capa(&mut self) -> Result<Capabilities, NetError> {
        let id = self.engine.capa()?;
        let reply = self.wait(id)?;
        Ok(shape::capabilities(reply, self.engine.capabilities()))
    }

    /// `STAT`: (messages, octets).
    pub fn stat(&mut self) -> Result<(u32, u64), NetError> {
        let id = self.engine.stat()?;
        self.wait(id).map(shape::stat)
    }

    /// `LIST`.
    pub fn list(&mut self) -> Result<Vec<ListEntry>, NetError> {
        let id = self.engine.list(None)?;
        self.wait(id).map(shape::list)
    }

    /// `LIST n`.
    pub fn list_one(&mut self, number: MessageNumber) -> Result<ListEntry, NetError> {
        let id = self.engine.list(Some(number))?;
        self.wait(id).map(|r| shape::list_one(r, number))
    }

    /// `UIDL`.
    pub fn uidl(&mut self) -> Result<Vec<UidlEntry>, NetError> {
        let id = self.engine.uidl(None)?;
        self.wait(id).map(shape::uidl)
    }

    /// `LIST` and `UIDL` pipelined: one round trip for both when the server allows. The UIDL
    /// result is separate, as a server may refuse it (no UIDL support) and still list.
    pub fn list_and_uidl(&mut self) -> Result<(Vec<ListEntry>, UidlOutcome), NetError> {
        let list = self.engine.list(None)?;
        let uidl = self.engine.uidl(None)?;
        let listing = self.wait(list).map(shape::list);
        let uids = self.wait(uidl).map(shape::uidl);
        Ok((listing?, uids))
    }

    /// `UIDL n`.
    pub fn uidl_one(&mut self, number: MessageNumber) -> Result<UidlEntry, NetError> {
        let id = self.engine.uidl(Some(number))?;
        self.wait(id).map(|r| shape::uidl_one(r, number))
    }

    /// `RETR n`, streamed into `sink`; returns the octets written.
    pub fn retr_to(
        &mut self,
        number: MessageNumber,
        sink: &mut dyn Write,
    ) -> Result<u64, NetError> {
        let id = self.engine.retr(number)?;
        self.wait_body(id, sink)
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
        let id = self.engine.top(number, lines)?;
        self.wait_body(id, sink)
    }

    /// `TOP n lines` into memory.
    pub fn top(&mut self, number: MessageNumber, lines: u32) -> Result<Vec<u8>, NetError> {
        let mut out = Vec::new();
        self.top_to(number, lines, &mut out)?;
        Ok(out)
    }

    /// Retrieves many messages, pipelined when the server allows; parts arrive in order.
    /// A message the server refuses is reported as [`RetrPart::Refused`] and the rest go on.
    pub fn retr_many(
        &mut self,
        numbers: &[MessageNumber],
        on_part: &mut dyn FnMut(RetrPart<'_>) -> io::Result<()>,
    ) -> Result<(), NetError> {
        let mut ids = std::collections::VecDeque::with_capacity(numbers.len());
        for &n in numbers {
            ids.push_back((self.engine.retr(n)?, n));
        }
        while let Some(&(_, number)) = ids.front() {
            // Bodies arrive in command order and each step stops at a completion, so any body
            // bytes in this step belong to the front message.
            let mut sink = |_: CommandId, bytes: &[u8]| on_part(RetrPart::Data { number, bytes });
            let idle = self.step(&mut sink)?;
            driver::report_retrieved(&mut self.completions, &mut ids, on_part)?;
            if !ids.is_empty() && idle {
                self.read_more()?;
            }
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
        let mut ids = Vec::with_capacity(numbers.len());
        for &n in numbers {
            ids.push((self.engine.retr(n).map_err(NetError::from)?, n));
        }
        for (id, number) in ids {
            on_message(Body {
                client: &mut *self,
                id,
                number,
            })?;
            // A callback that ignored its body: read past it so the next one lines up.
            if self.streamed != Some(id) {
                let _ = self.wait_body(id, &mut io::sink());
            }
        }
        Ok(())
    }

    /// `DELE` for each number, pipelined; returns the per-message outcome in order.
    pub fn dele_many(&mut self, numbers: &[MessageNumber]) -> Result<DeleOutcomes, NetError> {
        let ids = self.queue_dele(numbers)?;
        self.dele_outcomes(ids)
    }

    fn queue_dele(&mut self, numbers: &[MessageNumber]) -> Result<Vec<CommandId>, NetError> {
        numbers
            .iter()
            .map(|&n| self.engine.dele(n).map_err(NetError::from))
            .collect()
    }

    /// Waits for each DELE; a refusal of one message is its outcome, anything else ends it.
    fn dele_outcomes(&mut self, ids: Vec<CommandId>) -> Result<DeleOutcomes, NetError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(match self.wait(id) {
                Ok(_) => Ok(()),
                Err(NetError::Pop3(crate::proto::Error::Server(e))) => Err(e),
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }

    /// `DELE n`.
    pub fn dele(&mut self, number: MessageNumber) -> Result<(), NetError> {
        let id = self.engine.dele(number)?;
        self.wait(id).map(|_| ())
    }

    /// `RSET`.
    pub fn rset(&mut self) -> Result<(), NetError> {
        let id = self.engine.rset()?;
        self.wait(id).map(|_| ())
    }

    /// `NOOP`.
    pub fn noop(&mut self) -> Result<(), NetError> {
        let id = self.engine.noop()?;
        self.wait(id).map(|_| ())
    }

    /// `DELE` for each number and then `QUIT`, all pipelined: one round trip ends a session.
    /// Returns each DELE's outcome in order and QUIT's text; the deletions took effect only
    /// when this returns `Ok`.
    pub fn dele_many_and_quit(
        mut self,
        numbers: &[MessageNumber],
    ) -> Result<(DeleOutcomes, String), NetError> {
        let ids = self.queue_dele(numbers)?;
        let quit = self.engine.quit()?;
        let outcomes = self.dele_outcomes(ids)?;
        let text = shape::closed(self.wait(quit)?);
        self.close_notify();
        Ok((outcomes, text))
    }

    /// `QUIT`: the server commits deletions. Closes the connection.
    pub fn quit(mut self) -> Result<String, NetError> {
        let id = self.engine.quit()?;
        let text = shape::closed(self.wait(id)?);
        self.close_notify();
        Ok(text)
    }

    fn close_notify(&mut self) {
        if let Transport::Tls(s) = &mut self.transport {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }

    // ---- the loop ----------------------------------------------------------------------------

    fn wait(&mut self, id: CommandId) -> Result<Reply, NetError> {
        loop {
            let idle = self.step(&mut |_, _| Ok(()))?;
            if let Some(result) = self.completions.take(id) {
                return result.map_err(NetError::from);
            }
            if idle {
                self.read_more()?;
            }
        }
    }

    fn wait_body(&mut self, id: CommandId, sink: &mut dyn Write) -> Result<u64, NetError> {
        loop {
            // Only this command's bytes: after a failed sink, the rest of an abandoned body
            // must not leak into the next message.
            let idle = self.step(&mut |cid, data| {
                if cid == id {
                    sink.write_all(data)
                } else {
                    Ok(())
                }
            })?;
            if let Some(result) = self.completions.take(id) {
                return Ok(shape::octets(result?));
            }
            if idle {
                self.read_more()?;
            }
        }
    }

    /// Writes what the engine has to send and handles everything it has decided, without reading.
    /// Returns true when the engine needs input (so reading cannot skip buffered events).
    fn step(
        &mut self,
        on_body: &mut dyn FnMut(CommandId, &[u8]) -> io::Result<()>,
    ) -> Result<bool, NetError> {
        loop {
            self.flush()?;
            match driver::drain(&mut self.engine, &mut self.completions, on_body)? {
                Next::StartTls => self.start_tls()?,
                Next::Read => return self.flush().map(|()| true),
                Next::Completed => return self.flush().map(|()| false),
            }
        }
    }

    fn flush(&mut self) -> Result<(), NetError> {
        while let Some(bytes) = self.engine.poll_transmit() {
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
        if n == 0 {
            self.engine.handle_eof()?;
            return Ok(());
        }
        let data = self.buf.get(..n).unwrap_or_default();
        self.engine.handle_input(data)?;
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
        if self.engine.phase() == crate::proto::Phase::AwaitingTls {
            self.engine.tls_established()?;
        }
        Ok(())
    }
}

/// One message of [`BlockingClient::retr_each`], streamed on demand.
pub struct Body<'c> {
    client: &'c mut BlockingClient,
    id: CommandId,
    number: MessageNumber,
}

impl Body<'_> {
    /// The message number.
    pub fn number(&self) -> MessageNumber {
        self.number
    }

    /// Streams the body into `sink`. `Ok(Err(..))` is the server refusing this one message
    /// (the session goes on); `Err` is a failure of the session or of `sink`.
    pub fn copy_to(
        self,
        sink: &mut dyn Write,
    ) -> Result<Result<u64, crate::proto::ServerError>, NetError> {
        self.client.streamed = Some(self.id);
        match self.client.wait_body(self.id, sink) {
            Ok(octets) => Ok(Ok(octets)),
            Err(NetError::Pop3(crate::proto::Error::Server(e))) => Ok(Err(e)),
            Err(e) => Err(e),
        }
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

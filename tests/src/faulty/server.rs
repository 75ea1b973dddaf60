//! The scripted fault server: popwire's server role over TCP (plain, implicit TLS or STLS),
//! with a [`Faults`] script applied between the engine and the socket.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use popwire::proto::Secret;
use popwire::proto::server::{
    Maildrop, MaildropError, MemoryMaildrop, MessageInfo, Server, ServerEvent, ServerOptions,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::script::{Action, Faults, SASL_RESPONSE, Step};
use crate::ca::TestCa;
use crate::dovecot::ServerCert;
use crate::util::{context, err};

/// Octets read from the client per `read`, and filler octets per write of a flood.
const CHUNK: usize = 64 * 1024;
/// Unfinished client input longer than this is handed to the engine as one line (which refuses
/// it and closes, as a line this long is an attack).
const MAX_PENDING: usize = 64 * 1024;

/// One line the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLine {
    /// It came over TLS.
    pub tls: bool,
    /// Its first word in upper case, or [`SASL_RESPONSE`] inside an AUTH exchange.
    pub verb: String,
    /// The line without its line end. Octets a client sent after a fake STLS `+OK` (a TLS
    /// ClientHello) are recorded as one "line" each time they arrive.
    pub bytes: Vec<u8>,
}

/// What happened in one session, for a test's assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionLog {
    /// 1-based, in the order connections were accepted.
    pub number: usize,
    /// Every line the client sent, in order.
    pub lines: Vec<ClientLine>,
    /// The engine's events: logins, failed logins, STLS, commits, the close.
    pub events: Vec<ServerEvent>,
    /// Why the TLS handshake failed (e.g. the client rejected the certificate).
    pub tls_error: Option<String>,
    /// How the session ended, e.g. `client closed`, `fault: Close at RETR 2`.
    pub end: String,
}

impl SessionLog {
    /// The lines that carry a user name, a password, a digest or a SASL message.
    pub fn credential_lines(&self) -> Vec<&ClientLine> {
        self.lines
            .iter()
            .filter(|l| {
                matches!(l.verb.as_str(), "USER" | "PASS" | "APOP" | "AUTH")
                    || l.verb == SASL_RESPONSE
            })
            .collect()
    }

    /// The verbs the client sent, in order.
    pub fn verbs(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.verb.as_str()).collect()
    }
}

/// How the fault server talks to clients.
#[derive(Debug, Clone)]
enum Transport {
    Plain,
    ImplicitTls(Arc<ServerConfig>),
    Stls(Arc<ServerConfig>),
}

/// Builds a [`FaultServer`]; see [`FaultServer::builder`].
#[derive(Debug)]
pub struct FaultServerBuilder {
    maildrop: MemoryMaildrop,
    options: ServerOptions,
    transport: io::Result<Transport>,
    sessions: BTreeMap<usize, Faults>,
    every: Faults,
}

impl FaultServerBuilder {
    /// Changes the engine's options (greeting, APOP timestamp, mechanisms, ...). Applied to
    /// every session; the transport choice sets `offer_stls` and `tls_active` afterwards.
    pub fn options(mut self, f: impl FnOnce(&mut ServerOptions)) -> Self {
        f(&mut self.options);
        self
    }

    /// Implicit TLS (like port 995), presenting `cert` from `ca`.
    pub fn implicit_tls(mut self, ca: &TestCa, cert: ServerCert) -> Self {
        self.transport = tls_config(ca, cert).map(Transport::ImplicitTls);
        self
    }

    /// Plain TCP offering STLS, presenting `cert` from `ca` after STLS.
    pub fn stls(mut self, ca: &TestCa, cert: ServerCert) -> Self {
        self.transport = tls_config(ca, cert).map(Transport::Stls);
        self
    }

    /// The faults of session `n` (1-based, in accept order).
    pub fn session(mut self, n: usize, faults: Faults) -> Self {
        self.sessions.insert(n, faults);
        self
    }

    /// The faults of every session that has none of its own from [`Self::session`].
    pub fn every_session(mut self, faults: Faults) -> Self {
        self.every = faults;
        self
    }

    /// Listens on `127.0.0.1:0` and serves in background threads until dropped.
    pub fn start(self) -> io::Result<FaultServer> {
        let transport = self.transport?;
        let mut options = self.options;
        match &transport {
            Transport::Plain => {}
            Transport::ImplicitTls(_) => options.tls_active = true,
            Transport::Stls(_) => options.offer_stls = true,
        }
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            maildrop: Arc::new(Mutex::new(self.maildrop)),
            log: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let config = Config {
            options,
            transport,
            sessions: self.sessions,
            every: self.every,
        };
        let accept_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("fault-server-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &accept_shared, &config))?;
        Ok(FaultServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }
}

/// A POP3 server that misbehaves on purpose, for hostile-server tests.
///
/// It runs popwire's own server role ([`Server`]) over one [`MemoryMaildrop`] shared by all its
/// sessions (so a QUIT in session 1 really deletes what session 2 sees), and puts a [`Faults`]
/// script between the engine and the socket: at a [`Step`] (the greeting, the nth `RETR`, every
/// `UIDL`, ...) an [`Action`] drops the connection, cuts a reply short at a chosen octet,
/// stalls, replaces or rewrites the reply, injects bytes, fakes STLS, or floods the client with
/// a line that never ends. Sessions are counted, so a script can say "the first session drops
/// in the middle of RETR 2, the second behaves".
///
/// Every line the client sends is recorded ([`FaultServer::log`]), so a test can assert that a
/// client refused to send a credential ([`FaultServer::credentials_sent`]).
///
/// ```no_run
/// use popwire::proto::server::MemoryMaildrop;
/// use popwire_tests::faulty::{Action, FaultServer, Faults, Step};
///
/// let drop = MemoryMaildrop::new()
///     .with_user("alice", "wonderland")
///     .with_message("Subject: one\n\nfirst\n")
///     .with_message("Subject: two\n\nsecond\n");
/// let server = FaultServer::builder(drop)
///     // Session 1: the connection drops 40 octets into the reply to the second RETR.
///     .session(1, Faults::at(Step::command("RETR", 2), Action::Truncate(40)))
///     .start()?;
/// // ... point a client at 127.0.0.1:server.port(), run it twice ...
/// assert_eq!(server.sessions(), 2);
/// assert!(server.maildrop().is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Dropping the server stops it: the listener closes and every open connection is shut down
/// (stalled sessions included).
#[derive(Debug)]
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    maildrop: Arc<Mutex<MemoryMaildrop>>,
    log: Mutex<Vec<SessionLog>>,
    /// Clones of every accepted socket, to shut them down when the server is dropped.
    live: Mutex<Vec<TcpStream>>,
    stopping: AtomicBool,
}

#[derive(Debug)]
struct Config {
    options: ServerOptions,
    transport: Transport,
    sessions: BTreeMap<usize, Faults>,
    every: Faults,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultServer {
    /// A server over `maildrop` (plain TCP, no faults until configured). The engine's options
    /// start from the defaults with cleartext passwords allowed, as a hostile server would.
    pub fn builder(maildrop: MemoryMaildrop) -> FaultServerBuilder {
        FaultServerBuilder {
            maildrop,
            options: ServerOptions {
                greeting: "popwire fault server ready".into(),
                allow_cleartext_password: true,
                ..ServerOptions::default()
            },
            transport: Ok(Transport::Plain),
            sessions: BTreeMap::new(),
            every: Faults::none(),
        }
    }

    /// Where it listens (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The maildrop as it is now: what is still on the server.
    pub fn maildrop(&self) -> MutexGuard<'_, MemoryMaildrop> {
        lock(&self.shared.maildrop)
    }

    /// How many connections were accepted so far.
    pub fn sessions(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// Every session so far, once each has ended.
    ///
    /// A client that gave up may have written its last bytes just before closing, so this
    /// (like every accessor of the log) first waits for every accepted session to end, for at
    /// most [`SETTLE_TIMEOUT`]; after that it returns what is there.
    pub fn log(&self) -> Vec<SessionLog> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let log = lock(&self.shared.log).clone();
            if log.iter().all(|s| !s.end.is_empty()) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Session `n` (1-based), as [`FaultServer::log`] has it.
    pub fn session(&self, n: usize) -> Option<SessionLog> {
        self.log().into_iter().nth(n.wrapping_sub(1))
    }

    /// True when any session received a USER, PASS, APOP or AUTH line or a SASL response.
    pub fn credentials_sent(&self) -> bool {
        self.log().iter().any(|s| !s.credential_lines().is_empty())
    }

    /// True when `needle` occurs in anything any client sent (e.g. a password).
    pub fn received_contains(&self, needle: &[u8]) -> bool {
        self.log().iter().any(|s| {
            s.lines
                .iter()
                .any(|l| l.bytes.windows(needle.len().max(1)).any(|w| w == needle))
        })
    }
}

/// How long [`FaultServer::log`] waits for running sessions to end.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor, then end every session still running (stalls included).
        let _ = TcpStream::connect(self.addr);
        for s in lock(&self.shared.live).iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, config: &Config) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.live).push(clone);
        }
        let number = {
            let mut log = lock(&shared.log);
            let number = log.len() + 1;
            log.push(SessionLog {
                number,
                ..SessionLog::default()
            });
            number
        };
        let faults = config
            .sessions
            .get(&number)
            .unwrap_or(&config.every)
            .clone();
        let maildrop = SharedMaildrop(Arc::clone(&shared.maildrop));
        let mut session = Session {
            number,
            shared: Arc::clone(shared),
            faults,
            server: Server::new(config.options.clone(), maildrop),
            stream: Some(Stream::Plain(stream)),
            counts: HashMap::new(),
            in_sasl: false,
        };
        let transport = config.transport.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("fault-session-{number}"))
            .spawn(move || {
                let end = session.run(&transport);
                let _ = session.stream.take().map(Stream::close);
                session.update(|log| log.end = end);
            });
        if spawned.is_err() {
            return;
        }
    }
}

/// The socket, before or after TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    fn close(self) {
        if let Stream::Tls(mut s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
            let _ = s.sock.shutdown(Shutdown::Both);
        } else {
            let _ = self.tcp().shutdown(Shutdown::Both);
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// What to do after a step.
enum Flow {
    Continue,
    /// From now on, answer whatever arrives with a plaintext `-ERR` ([`Action::FakeStls`]).
    FakeStls,
    End(String),
}

struct Session {
    number: usize,
    shared: Arc<Shared>,
    faults: Faults,
    server: Server<SharedMaildrop>,
    /// `None` only while switching to TLS.
    stream: Option<Stream>,
    /// Lines seen per verb, for [`Step::Command`]'s `nth`.
    counts: HashMap<String, usize>,
    /// The last reply was a SASL continuation: the next line is a SASL response.
    in_sasl: bool,
}

impl Session {
    /// Serves the session; returns how it ended.
    fn run(&mut self, transport: &Transport) -> String {
        match self.faults.at_fixed(&Step::Connect).cloned() {
            Some(Action::Close) => return "fault: Close at connect".into(),
            Some(Action::Stall) => return self.stall("connect"),
            Some(Action::Replace(bytes)) => {
                if let Err(e) = self.write(&bytes) {
                    return format!("write failed: {e}");
                }
            }
            _ => {}
        }
        if let Transport::ImplicitTls(config) = transport
            && let Err(e) = self.start_tls(config)
        {
            return e;
        }
        let greeting = self.faults.at_fixed(&Step::Greeting).cloned();
        match self.respond(greeting, None, "greeting", transport) {
            Flow::Continue => {}
            Flow::FakeStls => return "fault: FakeStls at greeting makes no sense".into(),
            Flow::End(why) => return why,
        }
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        let mut fake_stls = false;
        loop {
            let n = match self.read(&mut buf) {
                Ok(0) => return "client closed".into(),
                Ok(n) => n,
                Err(e) => return format!("read failed: {e}"),
            };
            let data = buf.get(..n).unwrap_or_default();
            if fake_stls {
                // Whatever arrives (a ClientHello, for a client that was not fooled) gets the
                // plaintext answer a server without TLS would give.
                self.record(data.to_vec(), "(AFTER-FAKE-STLS)".into());
                if let Err(e) = self.write(b"-ERR unknown command\r\n") {
                    return format!("write failed: {e}");
                }
                continue;
            }
            pending.extend_from_slice(data);
            loop {
                let line_end = pending.iter().position(|b| *b == b'\n');
                let line: Vec<u8> = match line_end {
                    Some(i) => pending.drain(..=i).collect(),
                    None if pending.len() > MAX_PENDING => std::mem::take(&mut pending),
                    None => break,
                };
                match self.line(&line, transport) {
                    Flow::Continue => {}
                    Flow::FakeStls => {
                        fake_stls = true;
                        pending.clear();
                        break;
                    }
                    Flow::End(why) => return why,
                }
            }
        }
    }

    /// One line from the client.
    fn line(&mut self, line: &[u8], transport: &Transport) -> Flow {
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        let verb = if self.in_sasl {
            SASL_RESPONSE.to_owned()
        } else {
            let first = content.split(|b| *b == b' ').next().unwrap_or_default();
            String::from_utf8_lossy(first).to_ascii_uppercase()
        };
        self.record(content.to_vec(), verb.clone());
        let count = {
            let c = self.counts.entry(verb.clone()).or_insert(0);
            *c += 1;
            *c
        };
        let action = self.faults.for_command(&verb, count).cloned();
        self.respond(action, Some(line), &format!("{verb} {count}"), transport)
    }

    /// Carries out `line` (or, for `None`, writes the greeting) under `action`.
    fn respond(
        &mut self,
        action: Option<Action>,
        line: Option<&[u8]>,
        step: &str,
        transport: &Transport,
    ) -> Flow {
        if let Some(action) = action.as_ref().filter(|a| !a.carries_out()) {
            return match action {
                Action::Close => Flow::End(format!("fault: Close at {step}")),
                Action::Stall => Flow::End(self.stall(step)),
                Action::Replace(bytes) => self.write_flow(bytes),
                Action::FakeStls => match self.write(b"+OK Begin TLS negotiation\r\n") {
                    Ok(()) => Flow::FakeStls,
                    Err(e) => Flow::End(format!("write failed: {e}")),
                },
                Action::Flood { prefix, len, fill } => {
                    Flow::End(self.flood(prefix, *len, *fill, step))
                }
                Action::Truncate(_) | Action::Append(_) | Action::Rewrite(_) => Flow::Continue,
            };
        }
        if let Some(line) = line {
            self.server.handle_input(line);
        }
        let mut reply = Vec::new();
        while let Some(bytes) = self.server.poll_transmit() {
            reply.extend_from_slice(&bytes);
        }
        let mut close = false;
        let out = match action {
            Some(Action::Truncate(n)) => {
                close = true;
                reply.truncate(n);
                reply
            }
            Some(Action::Append(extra)) => {
                reply.extend_from_slice(&extra);
                reply
            }
            Some(Action::Rewrite(f)) => f(&reply),
            _ => reply,
        };
        if let Flow::End(why) = self.write_flow(&out) {
            return Flow::End(why);
        }
        let mut stls = false;
        let mut closed = false;
        while let Some(event) = self.server.poll_event() {
            stls |= matches!(event, ServerEvent::StlsRequested { .. });
            closed |= matches!(event, ServerEvent::Closed(_));
            self.update(|log| log.events.push(event));
        }
        if close {
            return Flow::End(format!(
                "fault: Truncate at {step} after {} octets",
                out.len()
            ));
        }
        if stls && let Transport::Stls(config) = transport {
            if let Err(why) = self.start_tls(config) {
                return Flow::End(why);
            }
            if let Err(e) = self.server.tls_established() {
                return Flow::End(format!("engine refused TLS: {e}"));
            }
        }
        if closed {
            return Flow::End("session closed".into());
        }
        Flow::Continue
    }

    fn write_flow(&mut self, bytes: &[u8]) -> Flow {
        match self.write(bytes) {
            Ok(()) => Flow::Continue,
            Err(e) => Flow::End(format!("write failed: {e}")),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.in_sasl = bytes.starts_with(b"+ ");
        let stream = self.stream.as_mut().ok_or_else(|| err("no stream"))?;
        stream.write_all(bytes)?;
        stream.flush()
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stream.as_mut() {
            Some(s) => s.read(buf),
            None => Ok(0),
        }
    }

    /// Reads and discards until the client (or the server's drop) closes the connection.
    fn stall(&mut self, step: &str) -> String {
        let mut buf = vec![0u8; CHUNK];
        loop {
            if self.shared.stopping.load(Ordering::SeqCst) {
                return format!("fault: Stall at {step}, server stopped");
            }
            match self.read(&mut buf) {
                Ok(0) | Err(_) => return format!("fault: Stall at {step}, client gave up"),
                Ok(_) => {}
            }
        }
    }

    fn flood(&mut self, prefix: &[u8], len: u64, fill: u8, step: &str) -> String {
        if let Err(e) = self.write(prefix) {
            return format!("write failed: {e}");
        }
        let chunk = vec![fill; CHUNK];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
            if let Err(e) = self.write(chunk.get(..n).unwrap_or_default()) {
                return format!(
                    "fault: Flood at {step}, client closed after {} octets: {e}",
                    len - left
                );
            }
            left -= n as u64;
        }
        self.stall(step)
    }

    /// Runs the TLS handshake on the plain socket.
    fn start_tls(&mut self, config: &Arc<ServerConfig>) -> Result<(), String> {
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err("TLS requested twice".into());
        };
        let conn = ServerConnection::new(Arc::clone(config)).map_err(|e| e.to_string())?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                let why = e.to_string();
                self.update(|log| log.tls_error = Some(why.clone()));
                let _ = tls.sock.shutdown(Shutdown::Both);
                return Err(format!("TLS handshake failed: {why}"));
            }
        }
        self.stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }

    fn record(&mut self, bytes: Vec<u8>, verb: String) {
        let tls = self.stream.as_ref().is_some_and(Stream::is_tls);
        self.update(|log| log.lines.push(ClientLine { tls, verb, bytes }));
    }

    fn update(&self, f: impl FnOnce(&mut SessionLog)) {
        if let Some(log) = lock(&self.shared.log).get_mut(self.number - 1) {
            f(log);
        }
    }
}

/// The rustls server configuration presenting `cert`.
fn tls_config(ca: &TestCa, cert: ServerCert) -> io::Result<Arc<ServerConfig>> {
    let (cert_file, key_file) = ca.server_files(cert);
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| pem_error(cert_file, &e))?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| pem_error(key_file, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| {
            context(
                io::Error::other(e.to_string()),
                "making the TLS server config",
            )
        })?;
    Ok(Arc::new(config))
}

fn pem_error(path: &Path, e: &rustls::pki_types::pem::Error) -> io::Error {
    err(format!("{}: {e:?}", path.display()))
}

/// The fault server's maildrop: one [`MemoryMaildrop`] shared by all sessions, locked per call.
#[derive(Debug, Clone)]
struct SharedMaildrop(Arc<Mutex<MemoryMaildrop>>);

impl Maildrop for SharedMaildrop {
    fn password(&mut self, user: &str) -> Option<Secret> {
        lock(&self.0).password(user)
    }

    fn open(&mut self, user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        lock(&self.0).open(user)
    }

    fn read(&mut self, index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError> {
        lock(&self.0).read(index, offset, buf)
    }

    fn commit(&mut self, deleted: &[usize]) -> Result<(), MaildropError> {
        lock(&self.0).commit(deleted)
    }

    fn scram_nonce(&mut self) -> String {
        lock(&self.0).scram_nonce()
    }

    fn scram_salt(&mut self, user: &str) -> Vec<u8> {
        lock(&self.0).scram_salt(user)
    }
}

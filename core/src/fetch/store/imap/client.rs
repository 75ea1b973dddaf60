//! A small blocking IMAP client for the destination: connect (TLS or STARTTLS), log in, STATUS,
//! CREATE, APPEND streamed from a file, UID FETCH. imap-codec encodes every command and decodes
//! every reply (framed by its `Fragmentizer`); this file only drives the socket.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::num::NonZeroU32;
use std::sync::Arc;

use imap_codec::encode::{Encoder, Fragment};
use imap_codec::fragmentizer::Fragmentizer;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{LiteralMode, Vec1};
use imap_codec::imap_types::response::{
    Capability, Code, Data, Response, Status, StatusKind, Tagged,
};
use imap_codec::{CommandCodec, GreetingCodec, ResponseCodec};
use rustls::{ClientConnection, StreamOwned};

use super::ImapError;
use crate::fetch::config::{ImapAuth, ImapConfig};
use crate::net::{ConnectOptions, NetError, tls};
use crate::proto::{Secret, Security};

/// The longest reply accepted: a 1 MiB partial body and its framing, or a long listing.
const MAX_REPLY: u32 = 4 << 20;
/// APPENDs sent ahead of their replies (LITERAL+).
pub(super) const APPEND_WINDOW: usize = 64;
/// Chunk of a partial FETCH when hashing a message on the server.
pub(super) const FETCH_CHUNK: u32 = 1 << 20;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Only while the socket moves into TLS.
    Gone,
}

impl Stream {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Tls(s) => Some(s.get_ref()),
            Stream::Gone => None,
        }
    }
}

fn gone() -> io::Error {
    io::Error::from(io::ErrorKind::NotConnected)
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Gone => Err(gone()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Gone => Err(gone()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Gone => Err(gone()),
        }
    }
}

/// How a tagged command ended.
#[derive(Debug)]
pub(super) struct Done {
    pub(super) kind: StatusKind,
    pub(super) code: Option<Code<'static>>,
    pub(super) text: String,
    /// Untagged data received while it ran.
    pub(super) data: Vec<Data<'static>>,
    /// Codes of untagged OKs received while it ran (`[UIDVALIDITY n]` after EXAMINE).
    pub(super) codes: Vec<Code<'static>>,
}

impl Done {
    pub(super) fn is_ok(&self) -> bool {
        self.kind == StatusKind::Ok
    }

    /// `[CODE] text`, for messages. Server text is escaped: it may hold control characters.
    pub(super) fn reason(&self) -> String {
        let text: String = self
            .text
            .chars()
            .flat_map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .take(300)
            .collect();
        match &self.code {
            Some(code) => format!("[{}] {text}", code_name(code)),
            None => text,
        }
    }
}

fn code_name(code: &Code<'_>) -> String {
    match code {
        Code::OverQuota => "OVERQUOTA".into(),
        Code::TooBig => "TOOBIG".into(),
        Code::TryCreate => "TRYCREATE".into(),
        Code::Alert => "ALERT".into(),
        Code::ReadOnly => "READ-ONLY".into(),
        other => {
            let debug = format!("{other:?}");
            debug
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase()
        }
    }
}

/// One logged-in IMAP connection.
pub(super) struct Connection {
    stream: Stream,
    input: Fragmentizer,
    next_tag: u32,
    capabilities: Vec<Capability<'static>>,
    untagged_codes: std::cell::RefCell<Vec<Code<'static>>>,
    /// APPENDs sent whose tagged reply was not read yet.
    in_flight: std::cell::RefCell<Vec<String>>,
    /// Replies to those that came while waiting for something else (a later APPEND's `+`).
    early: std::cell::RefCell<Vec<(String, Done)>>,
    /// `host:port`, for errors.
    pub(super) server: String,
}

impl Connection {
    /// Connects, secures the connection as configured (never falling back to cleartext), and
    /// logs in.
    pub(super) fn open(config: &ImapConfig) -> Result<Self, ImapError> {
        let server = format!("{}:{}", config.server, config.port);
        let net = |source| ImapError::Net {
            server: server.clone(),
            source,
        };
        let tcp = connect_tcp(config).map_err(net)?;
        let mut connection = Self {
            stream: Stream::Plain(tcp),
            input: Fragmentizer::new(MAX_REPLY),
            next_tag: 1,
            capabilities: Vec::new(),
            untagged_codes: std::cell::RefCell::new(Vec::new()),
            in_flight: std::cell::RefCell::new(Vec::new()),
            early: std::cell::RefCell::new(Vec::new()),
            server: server.clone(),
        };
        if config.security == Security::Tls {
            connection.start_tls(config)?;
        }
        connection.greeting()?;
        if config.security == Security::StartTls {
            connection.refresh_capabilities()?;
            if !connection.has(&Capability::StartTls) {
                return Err(ImapError::Unsupported {
                    server,
                    what: "the server does not offer STARTTLS (use security = \"tls\", port 993)"
                        .into(),
                });
            }
            let done = connection.run(CommandBody::StartTLS)?;
            if !done.is_ok() {
                return Err(ImapError::Unsupported {
                    server,
                    what: format!("STARTTLS refused: {}", done.reason()),
                });
            }
            // Bytes after the OK and before the handshake would be trusted as if protected.
            // (`progress` starts the next message, moving any buffered byte into it.)
            let whole_line = connection.input.progress().is_some();
            if whole_line || !connection.input.message_bytes().is_empty() {
                return Err(ImapError::Protocol {
                    server,
                    what: "data after the STARTTLS OK (a response injection attempt)".into(),
                });
            }
            connection.start_tls(config)?;
            connection.capabilities.clear();
        }
        if connection.capabilities.is_empty() {
            connection.refresh_capabilities()?;
        }
        connection.login(config)?;
        Ok(connection)
    }

    fn start_tls(&mut self, config: &ImapConfig) -> Result<(), ImapError> {
        let net = |source| ImapError::Net {
            server: self.server.clone(),
            source,
        };
        let mut options = ConnectOptions::new(config.server.clone());
        options.ca_file = config.ca_file.clone();
        let client_config = tls::client_config(&options).map_err(net)?;
        let name = tls::server_name(&config.server).map_err(net)?;
        let conn = ClientConnection::new(Arc::clone(&client_config), name)
            .map_err(|e| net(NetError::tls(&config.server, e)))?;
        let tcp = match std::mem::replace(&mut self.stream, Stream::Gone) {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(_) | Stream::Gone => {
                return Err(ImapError::Protocol {
                    server: self.server.clone(),
                    what: "TLS started twice".into(),
                });
            }
        };
        let mut stream = StreamOwned::new(conn, tcp);
        // Drive the handshake now, so certificate errors are reported as such.
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| handshake_error(&config.server, e))
                .map_err(net)?;
        }
        self.stream = Stream::Tls(Box::new(stream));
        Ok(())
    }

    fn greeting(&mut self) -> Result<(), ImapError> {
        self.fill_message()?;
        let greeting = self
            .input
            .decode_message(&GreetingCodec::default())
            .map_err(|e| self.protocol(format!("unreadable greeting: {e:?}")))?
            .into_static();
        use imap_codec::imap_types::response::GreetingKind;
        if greeting.kind == GreetingKind::Bye {
            return Err(ImapError::Command {
                server: self.server.clone(),
                command: "connect",
                reason: greeting.text.inner().to_owned(),
            });
        }
        if let Some(Code::Capability(caps)) = greeting.code {
            self.capabilities = caps.into_inner();
        }
        Ok(())
    }

    fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let done = self.run(CommandBody::Capability)?;
        let mut found = Vec::new();
        for data in done.data {
            if let Data::Capability(caps) = data {
                found.extend(caps.into_inner());
            }
        }
        if let Some(Code::Capability(caps)) = done.code {
            found.extend(caps.into_inner());
        }
        self.capabilities = found;
        Ok(())
    }

    pub(super) fn has(&self, capability: &Capability<'_>) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }

    /// The largest message the server takes, when it says (RFC 7889 `APPENDLIMIT=n`; a bare
    /// `APPENDLIMIT` means per folder, which STATUS would tell: not asked, so no limit here).
    pub(super) fn append_limit(&self) -> Option<u64> {
        self.capabilities.iter().find_map(|c| {
            let text = c.to_string();
            let (name, value) = text.split_once('=')?;
            name.eq_ignore_ascii_case("APPENDLIMIT")
                .then(|| value.parse().ok())
                .flatten()
        })
    }

    /// Non-synchronizing literals for this size (LITERAL+ always, LITERAL- up to 4096 octets).
    pub(super) fn non_sync(&self, size: u64) -> bool {
        self.has(&Capability::LiteralPlus) || (self.has(&Capability::LiteralMinus) && size <= 4096)
    }

    fn login(&mut self, config: &ImapConfig) -> Result<(), ImapError> {
        let secret = config.credential.resolve()?;
        let token = config.credential.is_token();
        let mechanism = match config.auth {
            ImapAuth::Login => None,
            ImapAuth::Plain => Some(AuthMechanism::Plain),
            ImapAuth::XOAuth2 => Some(AuthMechanism::XOAuth2),
            ImapAuth::OAuthBearer => Some(AuthMechanism::OAuthBearer),
            ImapAuth::Auto if token => {
                if self.has(&Capability::Auth(AuthMechanism::OAuthBearer))
                    && !self.has(&Capability::Auth(AuthMechanism::XOAuth2))
                {
                    Some(AuthMechanism::OAuthBearer)
                } else {
                    Some(AuthMechanism::XOAuth2)
                }
            }
            ImapAuth::Auto if self.has(&Capability::LoginDisabled) => Some(AuthMechanism::Plain),
            ImapAuth::Auto => None,
        };
        if self.has(&Capability::LoginDisabled) && mechanism.is_none() {
            return Err(ImapError::Unsupported {
                server: self.server.clone(),
                what: "LOGIN is disabled on this connection (use security = \"tls\" or \"starttls\", or auth = \"plain\")".into(),
            });
        }
        let done = match mechanism {
            None => {
                let password = String::from_utf8(secret.expose().to_vec()).map_err(|_| {
                    ImapError::Unsupported {
                        server: self.server.clone(),
                        what:
                            "the password is not UTF-8; LOGIN cannot send it (set auth = \"plain\")"
                                .into(),
                    }
                })?;
                let password = zeroize::Zeroizing::new(password);
                let body = CommandBody::login(config.username.as_str(), password.as_str())
                    .map_err(|_| ImapError::Unsupported {
                        server: self.server.clone(),
                        what: "the username or password holds a byte LOGIN cannot carry (set auth = \"plain\")".into(),
                    })?;
                self.run(body)?
            }
            Some(mechanism) => {
                let response = sasl_response(&mechanism, &config.username, &secret);
                self.authenticate(mechanism, response)?
            }
        };
        if !done.is_ok() {
            return Err(ImapError::Auth {
                server: self.server.clone(),
                username: config.username.clone(),
                reason: done.reason(),
            });
        }
        match done.code {
            Some(Code::Capability(caps)) => self.capabilities = caps.into_inner(),
            _ => self.refresh_capabilities()?,
        }
        Ok(())
    }

    fn authenticate(
        &mut self,
        mechanism: AuthMechanism<'static>,
        response: Secret,
    ) -> Result<Done, ImapError> {
        let ir = self.has(&Capability::SaslIr);
        let body = if ir {
            CommandBody::authenticate_with_ir(mechanism, response.expose().to_vec())
        } else {
            CommandBody::authenticate(mechanism)
        };
        let tag = self.send(body)?;
        let mut sent = ir;
        let mut data = Vec::new();
        loop {
            match self.read_response()? {
                Response::CommandContinuationRequest(_) if !sent => {
                    use base64::Engine;
                    let mut line = zeroize::Zeroizing::new(
                        base64::engine::general_purpose::STANDARD.encode(response.expose()),
                    );
                    line.push_str("\r\n");
                    self.write(line.as_bytes())?;
                    self.flush()?;
                    sent = true;
                }
                // An error challenge (XOAUTH2's JSON): an empty answer lets the server say NO.
                Response::CommandContinuationRequest(_) => {
                    self.write(b"\r\n")?;
                    self.flush()?;
                }
                other => {
                    if let Some(done) = self.completion(&tag, other, &mut data)? {
                        return Ok(done);
                    }
                }
            }
        }
    }

    /// Runs one command to its end.
    pub(super) fn run(&mut self, body: CommandBody<'_>) -> Result<Done, ImapError> {
        let tag = self.send(body)?;
        self.finish(&tag)
    }

    /// Reads until the tagged reply for `tag`.
    pub(super) fn finish(&mut self, tag: &str) -> Result<Done, ImapError> {
        self.in_flight.borrow_mut().retain(|t| t != tag);
        let early = {
            let mut early = self.early.borrow_mut();
            early
                .iter()
                .position(|(t, _)| t == tag)
                .map(|at| early.remove(at).1)
        };
        if let Some(done) = early {
            return Ok(done);
        }
        let mut data = Vec::new();
        loop {
            let response = self.read_response()?;
            if let Some(done) = self.completion(tag, response, &mut data)? {
                return Ok(done);
            }
        }
    }

    fn completion(
        &self,
        tag: &str,
        response: Response<'static>,
        data: &mut Vec<Data<'static>>,
    ) -> Result<Option<Done>, ImapError> {
        match response {
            Response::Data(d) => data.push(d),
            Response::Status(Status::Tagged(tagged)) if tagged.tag.inner() == tag => {
                return Ok(Some(self.done(tagged, data)));
            }
            // An earlier APPEND's reply while a later one waits for its `+` (synchronizing
            // literals are sent without first waiting for the replies before them).
            Response::Status(Status::Tagged(tagged))
                if self
                    .in_flight
                    .borrow()
                    .iter()
                    .any(|t| t == tagged.tag.inner()) =>
            {
                let other = tagged.tag.inner().to_owned();
                self.in_flight.borrow_mut().retain(|t| *t != other);
                let done = self.done(tagged, data);
                self.early.borrow_mut().push((other, done));
            }
            Response::Status(Status::Tagged(tagged)) => {
                return Err(self.protocol(format!(
                    "a reply to tag {:?} while waiting for {tag}",
                    tagged.tag.inner()
                )));
            }
            Response::Status(Status::Bye(bye)) => {
                return Err(ImapError::Command {
                    server: self.server.clone(),
                    command: "session",
                    reason: format!("the server closed the session: {}", bye.text.inner()),
                });
            }
            // Untagged OK/NO/BAD: keep the codes (UIDVALIDITY after EXAMINE).
            Response::Status(Status::Untagged(body)) => {
                if let Some(code) = body.code {
                    self.untagged_codes.borrow_mut().push(code);
                }
            }
            Response::CommandContinuationRequest(_) => {
                return Err(self.protocol("an unexpected continuation request".into()));
            }
        }
        Ok(None)
    }

    fn done(&self, tagged: Tagged<'static>, data: &mut Vec<Data<'static>>) -> Done {
        let rest = std::mem::take(data)
            .into_iter()
            .filter(|d| !matches!(d, Data::Expunge(_)))
            .collect();
        Done {
            kind: tagged.body.kind,
            code: tagged.body.code,
            text: tagged.body.text.inner().to_owned(),
            data: rest,
            codes: std::mem::take(&mut *self.untagged_codes.borrow_mut()),
        }
    }

    /// Encodes and sends a command; returns its tag. Synchronizing literals wait for the
    /// server's `+`.
    pub(super) fn send(&mut self, body: CommandBody<'_>) -> Result<String, ImapError> {
        let tag = self.tag();
        let command =
            Command::new(tag.as_str(), body).map_err(|_| self.protocol("an invalid tag".into()))?;
        for fragment in CommandCodec::default().encode(&command) {
            match fragment {
                Fragment::Line { data } => self.write(&data)?,
                Fragment::Literal { data, mode } => {
                    if mode == LiteralMode::Sync {
                        self.flush()?;
                        self.await_continuation(&tag)?;
                    }
                    self.write(&data)?;
                }
            }
        }
        self.flush()?;
        Ok(tag)
    }

    /// Sends `APPEND` for a message of `size` octets whose bytes `body` writes: imap-codec
    /// encodes the command around an empty literal, and the literal's length is set to `size`,
    /// so that the message streams from its file instead of sitting whole in memory.
    pub(super) fn send_append(
        &mut self,
        body: CommandBody<'_>,
        size: u64,
        non_sync: bool,
        write_body: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Result<String, Done>, ImapError> {
        let tag = self.tag();
        let command =
            Command::new(tag.as_str(), body).map_err(|_| self.protocol("an invalid tag".into()))?;
        let mut fragments: VecDeque<Fragment> = CommandCodec::default().encode(&command).collect();
        let (Some(Fragment::Line { data: head }), Some(Fragment::Literal { data: empty, .. })) =
            (fragments.pop_front(), fragments.pop_front())
        else {
            return Err(self.protocol("APPEND did not encode as line + literal".into()));
        };
        let announced = head
            .iter()
            .rposition(|&b| b == b'{')
            .and_then(|at| head.get(..at))
            .filter(|_| empty.is_empty());
        let Some(prefix) = announced else {
            return Err(self.protocol("APPEND encoded without a literal".into()));
        };
        let mut line = prefix.to_vec();
        line.extend_from_slice(
            format!("{{{size}{}}}\r\n", if non_sync { "+" } else { "" }).as_bytes(),
        );
        self.write(&line)?;
        if !non_sync {
            self.flush()?;
            if let Err(done) = self.await_continuation_or_done(&tag)? {
                return Ok(Err(done));
            }
        }
        let server = self.server.clone();
        write_body(&mut self.stream).map_err(|e| ImapError::Net {
            server,
            source: NetError::io("sending a message", e),
        })?;
        for fragment in fragments {
            match fragment {
                Fragment::Line { data } | Fragment::Literal { data, .. } => self.write(&data)?,
            }
        }
        self.in_flight.borrow_mut().push(tag.clone());
        Ok(Ok(tag))
    }

    fn await_continuation(&mut self, tag: &str) -> Result<(), ImapError> {
        match self.await_continuation_or_done(tag)? {
            Ok(()) => Ok(()),
            Err(done) => Err(ImapError::Command {
                server: self.server.clone(),
                command: "literal",
                reason: done.reason(),
            }),
        }
    }

    fn await_continuation_or_done(&mut self, tag: &str) -> Result<Result<(), Done>, ImapError> {
        let mut data = Vec::new();
        loop {
            match self.read_response()? {
                Response::CommandContinuationRequest(_) => return Ok(Ok(())),
                other => {
                    if let Some(done) = self.completion(tag, other, &mut data)? {
                        return Ok(Err(done));
                    }
                }
            }
        }
    }

    fn tag(&mut self) -> String {
        let tag = format!("P{}", self.next_tag);
        self.next_tag = self.next_tag.wrapping_add(1);
        tag
    }

    pub(super) fn write(&mut self, data: &[u8]) -> Result<(), ImapError> {
        self.stream.write_all(data).map_err(|e| ImapError::Net {
            server: self.server.clone(),
            source: NetError::io("sending a command", e),
        })
    }

    pub(super) fn flush(&mut self) -> Result<(), ImapError> {
        self.stream.flush().map_err(|e| ImapError::Net {
            server: self.server.clone(),
            source: NetError::io("sending a command", e),
        })
    }

    /// Reads until the Fragmentizer holds one whole message (a line and its literals).
    fn fill_message(&mut self) -> Result<(), ImapError> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.input.progress() {
                Some(_) if self.input.is_message_complete() => {
                    if self.input.is_max_message_size_exceeded() {
                        return Err(self.protocol(format!("a reply over {MAX_REPLY} octets")));
                    }
                    return Ok(());
                }
                Some(_) => continue,
                None => {}
            }
            let n = match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(ImapError::Net {
                        server: self.server.clone(),
                        source: NetError::io(
                            "reading a reply",
                            io::Error::from(io::ErrorKind::UnexpectedEof),
                        ),
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ImapError::Net {
                        server: self.server.clone(),
                        source: NetError::io("reading a reply", e),
                    });
                }
            };
            self.input.enqueue_bytes(buf.get(..n).unwrap_or_default());
        }
    }

    pub(super) fn read_response(&mut self) -> Result<Response<'static>, ImapError> {
        self.fill_message()?;
        let decoded = self
            .input
            .decode_message(&ResponseCodec::default())
            .map(IntoStatic::into_static);
        let decoded = match decoded {
            Err(e) => eight_bit_text(self.input.message_bytes()).ok_or(e),
            ok => ok,
        };
        decoded.map_err(|e| {
            let preview: String = String::from_utf8_lossy(self.input.message_bytes())
                .chars()
                .take(120)
                .flat_map(char::escape_default)
                .collect();
            self.protocol(format!("an undecodable reply ({e:?}): \"{preview}\""))
        })
    }

    fn protocol(&self, what: String) -> ImapError {
        ImapError::Protocol {
            server: self.server.clone(),
            what,
        }
    }

    /// LOGOUT, politely; errors do not matter any more.
    pub(super) fn logout(mut self) {
        let _ = self.run(CommandBody::Logout);
        if let Some(tcp) = self.stream.tcp() {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Dovecot echoes a folder name in UTF-8 inside its reply text (`NO Mailbox doesn't exist:
/// Privé`), which IMAP4rev1 does not allow and imap-codec refuses. A one-line reply (no literal,
/// so no message bytes) is decoded again with each 8-bit byte read as `?`.
fn eight_bit_text(message: &[u8]) -> Option<Response<'static>> {
    let single_line =
        message.iter().position(|&b| b == b'\n') == Some(message.len().checked_sub(1)?);
    if !single_line || message.is_ascii() {
        return None;
    }
    let ascii: Vec<u8> = message
        .iter()
        .map(|&b| if b.is_ascii() { b } else { b'?' })
        .collect();
    use imap_codec::decode::Decoder;
    match ResponseCodec::default().decode(&ascii) {
        Ok(([], response)) => Some(response.into_static()),
        _ => None,
    }
}

fn handshake_error(host: &str, e: io::Error) -> NetError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(reason)) => NetError::Certificate {
            host: host.to_owned(),
            reason: format!("{reason:?}"),
        },
        Some(other) => NetError::tls(host, other.clone()),
        None => NetError::io("the TLS handshake", e),
    }
}

fn connect_tcp(config: &ImapConfig) -> Result<TcpStream, NetError> {
    let host = config.server.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = (host, config.port)
        .to_socket_addrs()
        .map_err(|source| NetError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, config.timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(config.timeout))
                    .and_then(|()| s.set_write_timeout(Some(config.timeout)))
                    .map_err(|e| NetError::io("configuring the socket", e))?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(NetError::Connect {
        host: host.to_owned(),
        port: config.port,
        source: last,
    })
}

/// The SASL initial response: PLAIN (RFC 4616), XOAUTH2 (Google's format), OAUTHBEARER
/// (RFC 7628).
fn sasl_response(mechanism: &AuthMechanism<'_>, username: &str, secret: &Secret) -> Secret {
    let mut out = Vec::new();
    match mechanism {
        AuthMechanism::Plain => {
            out.push(0);
            out.extend_from_slice(username.as_bytes());
            out.push(0);
            out.extend_from_slice(secret.expose());
        }
        AuthMechanism::OAuthBearer => {
            let escaped = username.replace('=', "=3D").replace(',', "=2C");
            out.extend_from_slice(format!("n,a={escaped},\x01auth=Bearer ").as_bytes());
            out.extend_from_slice(secret.expose());
            out.extend_from_slice(b"\x01\x01");
        }
        _ => {
            out.extend_from_slice(format!("user={username}\x01auth=Bearer ").as_bytes());
            out.extend_from_slice(secret.expose());
            out.extend_from_slice(b"\x01\x01");
        }
    }
    Secret::new(out)
}

/// The numbers of a `UID FETCH` reply: each message's UID with its size or a body chunk.
pub(super) fn fetched_uid(
    items: &Vec1<imap_codec::imap_types::fetch::MessageDataItem<'_>>,
) -> Option<NonZeroU32> {
    use imap_codec::imap_types::fetch::MessageDataItem;
    items.as_ref().iter().find_map(|item| match item {
        MessageDataItem::Uid(uid) => Some(*uid),
        _ => None,
    })
}

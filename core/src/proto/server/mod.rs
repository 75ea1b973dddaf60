//! The server role: a POP3 server session as a state machine over a [`Maildrop`].
//!
//! Write what [`Server::poll_transmit`] returns, feed what the client sends to
//! [`Server::handle_input`], and act on [`Server::poll_event`]. Commands are answered lazily,
//! inside `poll_transmit`, one after another: pipelined input (RFC 2449) is answered in order,
//! and each call hands out at most about [`ServerOptions::chunk_size`] octets, with at most that
//! many read from the maildrop. A 200 MB RETR is therefore a series of bounded chunks, never
//! a message in memory.
//!
//! ```
//! use popwire::proto::server::{MemoryMaildrop, Server, ServerOptions};
//!
//! let drop = MemoryMaildrop::new().with_user("alice", "wonderland").with_message("Subject: hi\n\nhello\n");
//! let options = ServerOptions { allow_cleartext_password: true, ..Default::default() };
//! let mut server = Server::new(options, drop);
//! assert_eq!(server.poll_transmit().unwrap(), b"+OK popwire POP3 server ready\r\n");
//! server.handle_input(b"USER alice\r\nPASS wonderland\r\nRETR 1\r\nQUIT\r\n");
//! let mut wire = Vec::new();
//! while let Some(bytes) = server.poll_transmit() {
//!     wire.extend_from_slice(&bytes);
//! }
//! assert_eq!(
//!     wire,
//!     b"+OK\r\n+OK Logged in\r\n+OK 22 octets\r\nSubject: hi\r\n\r\nhello\r\n.\r\n+OK Bye\r\n"
//! );
//! assert!(server.is_closed());
//! ```
//!
//! A transport's loop: write everything `poll_transmit` returns, handle every event, then read
//! and call `handle_input`. Draining `poll_transmit` first keeps the input buffer small (it
//! only returns `None` once no complete command is left); more than
//! [`ServerOptions::max_input`] unprocessed octets closes the session. Once
//! [`Server::is_closed`] and `poll_transmit` returns `None`, close the socket.
//!
//! STLS (RFC 2595): after the `+OK`, the server stops reading commands and discards every byte
//! that arrived after the STLS line (a client cannot have sent them in good faith: they are
//! the plaintext-injection attack of the "NO STARTTLS" study). It reports
//! [`ServerEvent::StlsRequested`]; the transport runs the TLS handshake and calls
//! [`Server::tls_established`]. Input handed over before then is discarded too.
//!
//! The engine has no clock and no random source: the APOP timestamp comes in
//! [`ServerOptions::apop_timestamp`], SCRAM nonces from [`Maildrop::scram_nonce`], and any
//! delay after a failed login is the transport's to add on [`ServerEvent::AuthFailed`].
//!
//! Design notes:
//! - [`Maildrop::read`] fills a caller-owned slice like `std::io::Read::read`, so the server
//!   owns the one reusable chunk buffer and a backend cannot hand back more than was asked.
//! - The first piece of a RETR/TOP is read before the `+OK`, so a maildrop that cannot read a
//!   message still produces a clean `-ERR [SYS/...]`; a failure halfway can only close the
//!   connection ([`CloseReason::ReadFailed`]), which the client sees as a cut-short reply.
//! - Randomness for SCRAM lives on the [`Maildrop`] trait, next to the passwords it salts,
//!   rather than in [`ServerOptions`], because each exchange needs a fresh nonce and options
//!   are fixed for the session. `Maildrop` is implemented for `&mut M`, so a test or fixture
//!   can keep its maildrop across sessions.
//! - Unknown users and wrong passwords get the same `-ERR [AUTH]`; for SCRAM the exchange runs
//!   to the proof with a dummy password, so the replies do not reveal which users exist.

mod auth;
mod maildrop;
mod transaction;
mod transfer;

#[cfg(test)]
mod tests;

pub use maildrop::{Maildrop, MaildropError, MemoryMaildrop, MessageInfo, wire_size};

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::{fmt, mem};

use zeroize::{Zeroize, Zeroizing};

use crate::proto::codec::command::Command;
use crate::proto::codec::find_line;
use crate::proto::codec::status::write_status;
use crate::proto::error::UsageError;
use crate::proto::sasl::Mechanism;
use crate::proto::types::{Expire, ResponseCode};

use auth::SaslExchange;
use transaction::{Mailbox, Streaming};

/// What a [`Server`] offers and how it limits the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Greeting text after `+OK` (the APOP timestamp, if any, is appended).
    pub greeting: String,
    /// `<unique@host>` for APOP, e.g. `<1896.697170952@dbc.mtview.ca.us>`; `None` disables
    /// APOP. Must differ for every connection (the caller has the clock and the randomness).
    pub apop_timestamp: Option<String>,
    /// Offer STLS (the transport can run a TLS handshake on request).
    pub offer_stls: bool,
    /// The transport is already TLS (implicit TLS, port 995).
    pub tls_active: bool,
    /// Allow USER/PASS and AUTH PLAIN without TLS. Off by default.
    pub allow_cleartext_password: bool,
    /// Advertise PIPELINING. Pipelined input is answered correctly either way.
    pub pipelining: bool,
    /// SASL mechanisms to offer, in this order. PLAIN, SCRAM-SHA-1 and SCRAM-SHA-256 are
    /// served; others are ignored. PLAIN is offered only when cleartext passwords are allowed.
    pub mechanisms: Vec<Mechanism>,
    /// SCRAM iteration count (1 to [`MAX_SCRAM_ITERATIONS`](crate::proto::MAX_SCRAM_ITERATIONS)).
    pub scram_iterations: u32,
    /// `IMPLEMENTATION` capability text.
    pub implementation: Option<String>,
    /// `EXPIRE` capability: the retention policy to announce (announced only).
    pub expire: Option<Expire>,
    /// `LOGIN-DELAY` capability in seconds (announced only; the transport enforces it).
    pub login_delay: Option<u64>,
    /// Longest command or SASL line, CRLF included. A longer one gets `-ERR` and the session
    /// closes.
    pub max_line: usize,
    /// Most octets read from the maildrop, and roughly most octets handed out, per
    /// [`Server::poll_transmit`] (dot-stuffing can double a chunk in the worst case).
    pub chunk_size: usize,
    /// Most unprocessed input held. Exceeding it closes the session.
    pub max_input: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            greeting: String::from("popwire POP3 server ready"),
            apop_timestamp: None,
            offer_stls: false,
            tls_active: false,
            allow_cleartext_password: false,
            pipelining: true,
            mechanisms: alloc::vec![Mechanism::Plain, Mechanism::ScramSha256],
            scram_iterations: 4096,
            implementation: None,
            expire: None,
            login_delay: None,
            max_line: 512,
            chunk_size: 64 * 1024,
            max_input: 1 << 20,
        }
    }
}

/// How a client logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// USER then PASS.
    UserPass,
    /// APOP.
    Apop,
    /// AUTH with this mechanism.
    Sasl(Mechanism),
}

/// Why a session closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent QUIT and deletions (if any) were committed.
    Quit,
    /// The client sent QUIT but the maildrop failed to delete; the client got `-ERR`.
    CommitFailed(MaildropError),
    /// A line longer than [`ServerOptions::max_line`].
    LineTooLong,
    /// More unprocessed input than [`ServerOptions::max_input`].
    InputOverflow,
    /// The maildrop failed in the middle of a RETR/TOP; the reply is cut short, which tells the
    /// client something went wrong.
    ReadFailed(MaildropError),
}

/// Something the transport (or a test) may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client logged in and the maildrop is open.
    LoggedIn {
        /// The user.
        user: String,
        /// How.
        method: LoginMethod,
    },
    /// A login failed: wrong password, unknown user, or a malformed SASL message. A transport
    /// may delay the next reply or close after several.
    AuthFailed {
        /// The user name tried, when one was readable.
        user: Option<String>,
        /// How.
        method: LoginMethod,
    },
    /// `+OK` to STLS was queued: once it is written, run the TLS handshake, then call
    /// [`Server::tls_established`].
    StlsRequested {
        /// Octets that followed the STLS line and were thrown away.
        discarded: usize,
    },
    /// QUIT committed these deletions (0-based maildrop indices, ascending).
    Committed {
        /// The deleted messages.
        deleted: Vec<usize>,
    },
    /// The session is over; close the socket once `poll_transmit` returns `None`.
    Closed(CloseReason),
}

/// The session's state (RFC 1939 section 3, plus SASL and the STLS gap).
enum State {
    Authorization { user: Option<String> },
    Sasl(alloc::boxed::Box<SaslExchange>),
    AwaitingTls,
    Transaction,
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::Authorization { .. } => "authorization",
            Self::Sasl(_) => "SASL exchange",
            Self::AwaitingTls => "STLS handshake",
            Self::Transaction => "transaction",
            Self::Closed => "closed",
        }
    }
}

/// A POP3 server session. See the [module docs](self).
pub struct Server<M: Maildrop> {
    options: ServerOptions,
    maildrop: M,
    state: State,
    tls_active: bool,
    mailbox: Mailbox,
    input: Zeroizing<Vec<u8>>,
    pos: usize,
    out: Vec<u8>,
    streaming: Option<Streaming>,
    scratch: Vec<u8>,
    events: VecDeque<ServerEvent>,
}

impl<M: Maildrop> fmt::Debug for Server<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("state", &self.state.name())
            .field("tls_active", &self.tls_active)
            .field("pending_input", &self.input.len().saturating_sub(self.pos))
            .field("pending_output", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl<M: Maildrop> Server<M> {
    /// A session that has just accepted a connection; the greeting is queued for
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn new(options: ServerOptions, maildrop: M) -> Self {
        let mut greeting = options.greeting.clone();
        if let Some(stamp) = &options.apop_timestamp {
            greeting.push(' ');
            greeting.push_str(stamp);
        }
        let mut out = Vec::new();
        write_status(&mut out, true, None, &greeting);
        Self {
            tls_active: options.tls_active,
            options,
            maildrop,
            state: State::Authorization { user: None },
            mailbox: Mailbox::default(),
            input: Zeroizing::new(Vec::new()),
            pos: 0,
            out,
            streaming: None,
            scratch: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// Hands over bytes received from the client. They are processed by
    /// [`poll_transmit`](Self::poll_transmit). Ignored once the session is closed or while a
    /// STLS handshake is due.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || matches!(self.state, State::Closed | State::AwaitingTls) {
            return;
        }
        self.compact_input();
        let needed = self.input.len().saturating_add(bytes.len());
        if needed > self.options.max_input {
            self.close_with_error(CloseReason::InputOverflow, "too much unprocessed input");
            return;
        }
        if needed > self.input.capacity() {
            // Grow by hand so the old buffer, which may hold a password, is wiped on drop.
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                needed.max(self.input.capacity() * 2).max(256),
            ));
            bigger.extend_from_slice(&self.input);
            self.input = bigger;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The next bytes to write to the client, or `None` when there is nothing to send until
    /// more input arrives (or ever, once [`is_closed`](Self::is_closed)).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let budget = self.options.chunk_size.max(1);
        while self.out.len() < budget {
            if self.streaming.is_some() {
                self.continue_streaming(budget);
            } else if !self.process_next_line() {
                break;
            }
        }
        if self.out.is_empty() {
            None
        } else {
            Some(mem::take(&mut self.out))
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The TLS handshake after STLS succeeded: reading commands resumes, and nothing learnt
    /// before TLS (such as a USER name) is kept.
    pub fn tls_established(&mut self) -> Result<(), UsageError> {
        if !matches!(self.state, State::AwaitingTls) {
            return Err(UsageError::OutOfOrder(
                "tls_established without an accepted STLS",
            ));
        }
        self.tls_active = true;
        self.state = State::Authorization { user: None };
        Ok(())
    }

    /// True once the session is over (QUIT answered, or a fatal error). Write out what
    /// [`poll_transmit`](Self::poll_transmit) still returns, then close the connection.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True when the connection is TLS (from the start, or after STLS).
    pub fn is_tls(&self) -> bool {
        self.tls_active
    }

    /// The logged-in user, in the transaction state.
    pub fn user(&self) -> Option<&str> {
        matches!(self.state, State::Transaction).then_some(self.mailbox.user.as_str())
    }

    /// The options in force.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The maildrop.
    pub fn maildrop(&self) -> &M {
        &self.maildrop
    }

    /// The maildrop, mutably (e.g. to add mail between sessions in a test).
    pub fn maildrop_mut(&mut self) -> &mut M {
        &mut self.maildrop
    }

    /// Ends the session and returns the maildrop.
    pub fn into_maildrop(self) -> M {
        self.maildrop
    }

    // ---- internals: input ------------------------------------------------------------------

    fn compact_input(&mut self) {
        if self.pos == 0 {
            return;
        }
        if self.pos >= self.input.len() {
            self.input.zeroize();
        } else {
            self.input.drain(..self.pos);
            // The consumed lines may have held a password; drain left copies past the end.
            self.input.spare_capacity_mut().zeroize();
        }
        self.pos = 0;
    }

    /// Reads and answers one line. False when no complete line is buffered (or none may be
    /// read now).
    fn process_next_line(&mut self) -> bool {
        if matches!(self.state, State::Closed | State::AwaitingTls) {
            return false;
        }
        let pending = self.input.get(self.pos..).unwrap_or_default();
        let line = match find_line(pending, self.options.max_line) {
            Ok(Some(line)) => line,
            Ok(None) => return false,
            Err(()) => {
                self.close_with_error(CloseReason::LineTooLong, "line too long");
                return true;
            }
        };
        let content = Zeroizing::new(pending.get(..line.content_len).unwrap_or_default().to_vec());
        self.pos += line.consumed;
        match mem::replace(&mut self.state, State::Authorization { user: None }) {
            State::Sasl(exchange) => self.sasl_line(*exchange, &content),
            other => {
                self.state = other;
                self.command_line(&content);
            }
        }
        true
    }

    fn command_line(&mut self, line: &[u8]) {
        let command = match Command::parse(line) {
            Ok(command) => command,
            Err(e) => return self.err(None, &e.to_string()),
        };
        let transaction = matches!(self.state, State::Transaction);
        match command {
            Command::Capa => self.capa(),
            Command::Quit => self.quit(),
            Command::User(name) if !transaction => self.user_command(name),
            Command::Pass(password) if !transaction => self.pass_command(password),
            Command::Apop { name, digest } if !transaction => self.apop_command(name, &digest),
            Command::Auth {
                mechanism,
                initial_response,
            } if !transaction => self.auth_command(&mechanism, initial_response),
            Command::Stls if !transaction => self.stls(),
            Command::Stat if transaction => {
                let (count, size) = self.mailbox.stat();
                self.ok(&format!("{count} {size}"));
            }
            Command::List(number) if transaction => self.listing(number, false),
            Command::Uidl(number) if transaction => self.listing(number, true),
            Command::Retr(number) if transaction => self.retrieve(number, None),
            Command::Top(number, lines) if transaction => self.retrieve(number, Some(lines)),
            Command::Dele(number) if transaction => self.dele(number),
            Command::Noop if transaction => self.ok(""),
            Command::Rset if transaction => {
                self.mailbox.deleted.iter_mut().for_each(|d| *d = false);
                let (count, size) = self.mailbox.stat();
                self.ok(&format!("maildrop has {count} messages ({size} octets)"));
            }
            Command::Utf8 | Command::Lang(_) | Command::SaslResponse(_) => {
                self.err(None, "unknown command")
            }
            _ => {
                let text = format!("command not valid in the {} state", self.state.name());
                self.err(None, &text);
            }
        }
    }

    // ---- internals: replies ----------------------------------------------------------------

    fn ok(&mut self, text: &str) {
        write_status(&mut self.out, true, None, text);
    }

    fn err(&mut self, code: Option<ResponseCode>, text: &str) {
        write_status(&mut self.out, false, code.as_ref(), text);
    }

    fn close(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.streaming = None;
        self.input.zeroize();
        self.pos = 0;
        self.events.push_back(ServerEvent::Closed(reason));
    }

    /// A fatal error: `-ERR text` unless a multi-line reply is half written (a status line in
    /// the middle would be read as message data), then close.
    fn close_with_error(&mut self, reason: CloseReason, text: &str) {
        if self.streaming.is_none() {
            self.err(None, text);
        }
        self.close(reason);
    }

    fn capa(&mut self) {
        self.ok("Capability list follows");
        let mut lines: Vec<String> = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE"]
            .map(String::from)
            .to_vec();
        if self.options.pipelining {
            lines.push("PIPELINING".into());
        }
        if self.options.offer_stls && !self.tls_active {
            lines.push("STLS".into());
        }
        if self.cleartext_allowed() {
            lines.push("USER".into());
        }
        let mechanisms = self.offered_mechanisms();
        if !mechanisms.is_empty() {
            let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
            lines.push(format!("SASL {}", names.join(" ")));
        }
        match self.options.expire {
            Some(Expire::Never) => lines.push("EXPIRE NEVER".into()),
            Some(Expire::Days(days)) => lines.push(format!("EXPIRE {days}")),
            None => {}
        }
        if let Some(delay) = self.options.login_delay {
            lines.push(format!("LOGIN-DELAY {delay}"));
        }
        if let Some(text) = &self.options.implementation {
            lines.push(format!("IMPLEMENTATION {text}"));
        }
        for line in lines {
            self.write_data_line(line.as_bytes());
        }
        self.out.extend_from_slice(b".\r\n");
    }

    /// One line of a multi-line reply we compose ourselves: CR/LF dropped, dot-stuffed.
    fn write_data_line(&mut self, line: &[u8]) {
        if line.first() == Some(&b'.') {
            self.out.push(b'.');
        }
        self.out
            .extend(line.iter().filter(|b| !matches!(b, b'\r' | b'\n')));
        self.out.extend_from_slice(b"\r\n");
    }

    fn stls(&mut self) {
        if !self.options.offer_stls || self.tls_active {
            return self.err(None, "STLS not available");
        }
        self.ok("Begin TLS negotiation");
        let discarded = self.input.len().saturating_sub(self.pos);
        self.input.zeroize();
        self.pos = 0;
        self.state = State::AwaitingTls;
        self.events
            .push_back(ServerEvent::StlsRequested { discarded });
    }

    fn quit(&mut self) {
        if !matches!(self.state, State::Transaction) {
            self.ok("Bye");
            return self.close(CloseReason::Quit);
        }
        let deleted: Vec<usize> = (0..self.mailbox.messages.len())
            .filter(|i| self.mailbox.deleted.get(*i).copied().unwrap_or(false))
            .collect();
        match self.maildrop.commit(&deleted) {
            Ok(()) => {
                self.ok("Bye");
                self.events.push_back(ServerEvent::Committed { deleted });
                self.close(CloseReason::Quit);
            }
            Err(e) => {
                self.err(Some(e.code()), "some deleted messages not removed");
                self.close(CloseReason::CommitFailed(e));
            }
        }
    }
}

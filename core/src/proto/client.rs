//! The client role: a POP3 session as a state machine.
//!
//! Feed received bytes with [`Client::handle_input`], take events with [`Client::poll_event`],
//! issue commands with the command methods (each returns a [`CommandId`]), and write what
//! [`Client::poll_transmit`] returns. Replies complete commands in the order they were issued,
//! whether or not the server pipelines.
//!
//! ```
//! use popwire::proto::{Client, ClientOptions, Event, Reply, Security};
//!
//! let mut client = Client::new(ClientOptions { security: Security::None, negotiate: false, ..Default::default() });
//! client.handle_input(b"+OK POP3 ready\r\n").unwrap();
//! assert!(matches!(client.poll_event(), Ok(Some(Event::Greeting(_)))));
//! let capa = client.capa().unwrap();
//! assert_eq!(&client.poll_transmit().unwrap()[..], b"CAPA\r\n");
//! client.handle_input(b"+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n").unwrap();
//! match client.poll_event() {
//!     Ok(Some(Event::Completed { id, result: Ok(Reply::Capabilities(caps)) })) => {
//!         assert_eq!(id, capa);
//!         assert!(caps.pipelining());
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::mem;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::{Zeroize, Zeroizing};

use crate::proto::codec::command::{Command, MAX_COMMAND_LINE};
use crate::proto::codec::{BodyDecoder, Decoded, Status, StatusLine, find_line};
use crate::proto::error::{Error, PolicyError, ProtocolError, ServerError, UsageError};
use crate::proto::sasl::{Mechanism, SaslClient, SaslCredentials, apop_digest};
use crate::proto::secret::Secret;
use crate::proto::types::{
    Capabilities, Capability, Greeting, ListEntry, MessageNumber, UidlEntry,
};

/// How the connection is, or will be, protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// The transport is TLS from the first byte (port 995). The default.
    #[default]
    Tls,
    /// Plain TCP upgraded with STLS before any credential is sent. Missing or refused STLS is fatal.
    StartTls,
    /// No encryption, chosen explicitly. Cleartext passwords still need
    /// [`ClientOptions::allow_cleartext_password`].
    None,
}

impl Security {
    /// The port a server listens on for this security: 995 for implicit TLS (POP3S, RFC 8314),
    /// 110 otherwise (RFC 1939).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 995,
            Self::StartTls | Self::None => 110,
        }
    }
}

/// Caps that keep a hostile or broken server from making the engine buffer without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest status line or listing line, CRLF included. RFC 2449 says 512.
    pub status_line: usize,
    /// Longest line inside a RETR/TOP body, CRLF included.
    pub data_line: usize,
    /// Largest LIST/UIDL/CAPA listing: octets as received plus [`LISTING_ENTRY_COST`] per
    /// entry, about the memory the parsed listing takes (a short line such as `1 a` parses into
    /// far more memory than its five octets).
    pub listing: usize,
    /// Most unprocessed input the engine will hold.
    pub input_buffer: usize,
}

/// What one parsed listing entry costs beyond its octets, for [`Limits::listing`]: its slot in
/// the `Vec` and its own heap allocation.
pub const LISTING_ENTRY_COST: usize = 64;

impl Default for Limits {
    fn default() -> Self {
        Self {
            status_line: 512,
            // Far beyond RFC 5322's 998, because real mail has megabyte lines; still bounded.
            data_line: 4 << 20,
            listing: 64 << 20,
            input_buffer: 4 << 20,
        }
    }
}

/// Options for a [`Client`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// How the transport is protected.
    pub security: Security,
    /// Allow USER/PASS, PLAIN and LOGIN without TLS. Off by default.
    pub allow_cleartext_password: bool,
    /// After the greeting, send CAPA (and STLS for [`Security::StartTls`]) automatically, and
    /// report [`Event::Ready`]. Turn off to drive every command by hand.
    pub negotiate: bool,
    /// Pipeline transaction commands when the server advertises PIPELINING.
    pub pipelining: bool,
    /// Most commands in flight when pipelining.
    pub max_in_flight: usize,
    /// Accept unique-ids outside RFC 1939's 1-70 printable octets (up to 255 octets, no
    /// controls or spaces), as some servers send them.
    pub lenient_uids: bool,
    /// Buffer caps.
    pub limits: Limits,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            security: Security::Tls,
            allow_cleartext_password: false,
            negotiate: true,
            pipelining: true,
            max_in_flight: 128,
            lenient_uids: false,
            limits: Limits::default(),
        }
    }
}

/// Identifies an issued command; its completion carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u64);

/// The session's state (RFC 1939 section 3, plus the STLS gap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the greeting.
    Greeting,
    /// Before login.
    Authorization,
    /// STLS accepted: the caller must run the TLS handshake, then call
    /// [`Client::tls_established`]. Any byte received now is an attack.
    AwaitingTls,
    /// Logged in.
    Transaction,
    /// QUIT acknowledged: deletions are committed. The session is over.
    Closed,
    /// A fatal error ended the session.
    Failed,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::Greeting => "greeting",
            Self::Authorization => "authorization",
            Self::AwaitingTls => "STLS handshake",
            Self::Transaction => "transaction",
            Self::Closed => "closed",
            Self::Failed => "failed",
        }
    }
}

/// The credential for [`AuthRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password.
    Password(Secret),
    /// An OAuth 2.0 access token, for XOAUTH2 or OAUTHBEARER.
    Token(Secret),
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// The strongest mechanism the server offers that fits the credential and the connection's
    /// security. Never APOP.
    #[default]
    Auto,
    /// USER then PASS.
    UserPass,
    /// APOP (MD5-based and broken; only when named).
    Apop,
    /// AUTH with this SASL mechanism.
    Sasl(Mechanism),
}

/// A login request, resolved against the server's capabilities when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The user name (authentication identity).
    pub username: String,
    /// Password or token.
    pub credential: Credential,
    /// Mechanism choice.
    pub method: AuthMethod,
    /// SASL authorization identity, usually `None`.
    pub authzid: Option<String>,
    /// Fresh random printable text (>= 16 characters, no `,`) for SCRAM; the engine has no RNG.
    pub nonce: String,
    /// Server host name, sent by OAUTHBEARER.
    pub host: Option<String>,
    /// Server port, sent by OAUTHBEARER.
    pub port: Option<u16>,
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` with its text (USER, DELE, NOOP, RSET, UTF8, LANG with an argument).
    Ok(String),
    /// Logged in (PASS, APOP, AUTH or [`Client::authenticate`]).
    Authenticated,
    /// STAT: messages and octets in the maildrop.
    Stat {
        /// Number of messages.
        count: u32,
        /// Total size in octets.
        size: u64,
    },
    /// LIST without argument.
    List(Vec<ListEntry>),
    /// LIST n.
    ListOne(ListEntry),
    /// UIDL without argument.
    Uidl(Vec<UidlEntry>),
    /// UIDL n.
    UidlOne(UidlEntry),
    /// CAPA.
    Capabilities(Capabilities),
    /// LANG without argument: `(tag, description)` pairs.
    Languages(Vec<(String, String)>),
    /// RETR or TOP finished; the body came as [`Event::Body`] chunks.
    Retrieved {
        /// Octets of body delivered (after dot-unstuffing).
        octets: u64,
    },
    /// STLS accepted: run the TLS handshake, then call [`Client::tls_established`].
    TlsReady,
    /// QUIT accepted: deletions are committed.
    Closed(String),
}

/// Something the caller should act on.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The server's `+OK` greeting.
    Greeting(Greeting),
    /// Automatic negotiation finished (CAPA, and STLS + CAPA again if asked): the session is
    /// ready to authenticate with these capabilities.
    Ready(Capabilities),
    /// Automatic negotiation got `+OK` to STLS: run the TLS handshake now, then call
    /// [`Client::tls_established`].
    TlsReady,
    /// A piece of a RETR/TOP body, dot-unstuffed, CRLF line ends as sent.
    Body {
        /// The RETR/TOP command.
        id: CommandId,
        /// The bytes; valid until the next call into the engine.
        data: &'a [u8],
    },
    /// A command completed. `Err(Error::Server(..))` is the server's `-ERR`; other errors are
    /// local refusals (e.g. policy) that sent nothing.
    Completed {
        /// The command.
        id: CommandId,
        /// Its outcome.
        result: Result<Reply, Error>,
    },
}

/// What a reply to a sent command should look like.
#[derive(Debug)]
enum Expect {
    Simple(&'static str),
    User,
    Pass,
    Apop,
    Stat,
    ListAll,
    ListOne,
    UidlAll,
    UidlOne,
    Capa(CapaPurpose),
    LangList,
    Body(&'static str),
    Stls {
        internal: bool,
    },
    Quit,
    /// `USER` of [`Client::authenticate`]: on `+OK` send PASS under the same id.
    LoginUser(Secret),
    LoginPass,
    Sasl(Box<SaslExchange>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapaPurpose {
    Caller,
    Negotiate,
}

#[derive(Debug)]
struct SaslExchange {
    client: SaslClient,
    /// The initial response, held back because the AUTH line would pass 255 octets.
    deferred_initial: Option<Zeroizing<Vec<u8>>>,
    /// A local failure: we sent `*` and wait for the server's `-ERR`.
    cancelled: Option<Error>,
}

#[derive(Debug)]
struct InFlight {
    id: CommandId,
    internal: bool,
    expect: Expect,
}

#[derive(Debug)]
enum Queued {
    Command(Command, Expect),
    Authenticate(Box<AuthRequest>),
}

#[derive(Debug)]
struct Pending {
    id: CommandId,
    internal: bool,
    item: Queued,
}

#[derive(Debug)]
enum Listing {
    List(Vec<ListEntry>),
    Uidl(Vec<UidlEntry>),
    Capa(Vec<Capability>),
    Lang(Vec<(String, String)>),
}

#[derive(Debug)]
enum Reading {
    Status,
    Listing {
        listing: Listing,
        octets: usize,
    },
    /// A RETR/TOP body, decoded by [`Client::body`].
    Body,
}

/// Events decided while handling one reply, handed out one per `poll_event`.
#[derive(Debug)]
enum Owned {
    Greeting(Greeting),
    Ready(Capabilities),
    TlsReady,
    Completed(CommandId, Result<Reply, Error>),
}

impl From<Owned> for Event<'_> {
    fn from(o: Owned) -> Self {
        match o {
            Owned::Greeting(g) => Event::Greeting(g),
            Owned::Ready(c) => Event::Ready(c),
            Owned::TlsReady => Event::TlsReady,
            Owned::Completed(id, result) => Event::Completed { id, result },
        }
    }
}

enum Step {
    Emit(Owned),
    Body(CommandId, core::ops::Range<usize>),
    Continue,
    NeedMore,
}

/// A POP3 client session. See the [module docs](self).
#[derive(Debug)]
pub struct Client {
    options: ClientOptions,
    phase: Phase,
    tls_active: bool,
    greeting: Option<Greeting>,
    capabilities: Capabilities,
    input: Vec<u8>,
    pos: usize,
    out: Zeroizing<Vec<u8>>,
    queue: VecDeque<Pending>,
    in_flight: VecDeque<InFlight>,
    reading: Reading,
    events: VecDeque<Owned>,
    next_id: u64,
    failure: Option<Error>,
    /// Text of the latest status line (reused buffer: no allocation per reply).
    status_text: String,
    /// The body decoder, live while `reading` is `Reading::Body`.
    body: BodyDecoder,
    /// The pipelining window filled up: refill only once half of it has drained, so commands go
    /// out in bursts (one write, one server wake-up) rather than one per reply.
    window_full: bool,
}

impl Client {
    /// A session waiting for the server's greeting.
    pub fn new(options: ClientOptions) -> Self {
        let tls_active = options.security == Security::Tls;
        Self {
            options,
            phase: Phase::Greeting,
            tls_active,
            greeting: None,
            capabilities: Capabilities::default(),
            input: Vec::new(),
            pos: 0,
            out: Zeroizing::new(Vec::new()),
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            reading: Reading::Status,
            events: VecDeque::new(),
            next_id: 0,
            failure: None,
            status_text: String::new(),
            body: BodyDecoder::new(Limits::default().data_line),
            window_full: false,
        }
    }

    /// The session's state.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The greeting, once received.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// The latest capabilities (empty before CAPA, and again right after TLS starts).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// True once the transport is TLS (implicit, or after [`Client::tls_established`]).
    pub fn is_tls(&self) -> bool {
        self.tls_active
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Sets the pipelining window (at least 1): how many commands may be in flight when the
    /// server pipelines. A caller that knows the replies' sizes (from LIST) can keep about a
    /// bandwidth-delay product of replies on the way: many small messages want a wide window.
    pub fn set_max_in_flight(&mut self, window: usize) {
        self.options.max_in_flight = window.max(1);
    }

    /// Commands issued and not yet completed.
    pub fn pending(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    /// The server's text on the `+OK`/`-ERR` line of the command that completed most recently
    /// (for RETR, TOP and listings: the line that opened the reply). Read it right after the
    /// [`Event::Completed`]; poplib-style front ends return it as the response line.
    pub fn status_text(&self) -> &str {
        &self.status_text
    }

    /// The fatal error that ended the session, if any.
    pub fn failure(&self) -> Option<&Error> {
        self.failure.as_ref()
    }

    /// Hands received bytes to the engine. Call [`Client::poll_event`] until it returns `None`
    /// before feeding more, so the buffer stays small.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.check_alive()?;
        if bytes.is_empty() {
            return Ok(());
        }
        if self.phase == Phase::AwaitingTls {
            return Err(self.fail(ProtocolError::InjectionAfterStls(bytes.len()).into()));
        }
        if self.pos > 0 {
            if self.pos >= self.input.len() {
                self.input.clear();
            } else {
                self.input.drain(..self.pos);
            }
            self.pos = 0;
        }
        if self.input.len().saturating_add(bytes.len()) > self.options.limits.input_buffer {
            let limit = self.options.limits.input_buffer;
            return Err(self.fail(ProtocolError::ReplyTooLarge { limit }.into()));
        }
        self.input.extend_from_slice(bytes);
        Ok(())
    }

    /// The peer closed the connection. An error unless the session ended cleanly.
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        self.check_alive()?;
        if self.phase == Phase::Closed {
            return Ok(());
        }
        Err(self.fail(ProtocolError::UnexpectedEof.into()))
    }

    /// The TLS handshake after STLS succeeded. Forgets the capabilities learnt in cleartext and,
    /// when negotiating, asks for them again.
    pub fn tls_established(&mut self) -> Result<(), Error> {
        self.check_alive()?;
        if self.phase != Phase::AwaitingTls {
            return Err(UsageError::OutOfOrder("tls_established without an accepted STLS").into());
        }
        self.tls_active = true;
        self.capabilities = Capabilities::default();
        self.phase = Phase::Authorization;
        if self.options.negotiate {
            self.push_front_internal(Command::Capa, Expect::Capa(CapaPurpose::Negotiate));
        }
        Ok(())
    }

    /// Bytes to send now, if any. Commands beyond the pipelining window wait for replies.
    pub fn poll_transmit(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        if self.failure.is_some() {
            return None;
        }
        self.fill_window();
        if self.out.is_empty() {
            None
        } else {
            Some(mem::replace(&mut self.out, Zeroizing::new(Vec::new())))
        }
    }

    /// The next event, `Ok(None)` when more input is needed. `Err` is fatal: close the connection.
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>, Error> {
        self.check_alive()?;
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev.into()));
            }
            match self.step() {
                Ok(Step::Emit(ev)) => return Ok(Some(ev.into())),
                Ok(Step::Body(id, range)) => {
                    let data = self.input.get(range).unwrap_or_default();
                    return Ok(Some(Event::Body { id, data }));
                }
                Ok(Step::Continue) => {}
                Ok(Step::NeedMore) => return Ok(None),
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    // ---- commands -------------------------------------------------------------------------

    /// Logs in following [`AuthRequest::method`]. The mechanism is chosen when the command is
    /// sent, after negotiation, so it can be called right after connecting.
    pub fn authenticate(&mut self, request: AuthRequest) -> Result<CommandId, Error> {
        self.check_alive()?;
        self.require_authorization("AUTH")?;
        Ok(self.enqueue(Queued::Authenticate(Box::new(request))))
    }

    /// `USER name`.
    pub fn user(&mut self, name: &str) -> Result<CommandId, Error> {
        self.require_authorization("USER")?;
        self.check_cleartext("USER")?;
        self.command(Command::User(name.to_string()), Expect::User)
    }

    /// `PASS secret` (after USER).
    pub fn pass(&mut self, password: Secret) -> Result<CommandId, Error> {
        self.require_authorization("PASS")?;
        self.check_cleartext("PASS")?;
        self.command(Command::Pass(password), Expect::Pass)
    }

    /// `APOP name digest`, computed from the greeting's timestamp. Only when asked: MD5 is broken.
    /// Like a cleartext password, only over TLS or with `allow_cleartext_password`: an attacker
    /// who can choose the timestamp recovers the password from the digests (CVE-2007-1558).
    pub fn apop(&mut self, name: &str, password: &Secret) -> Result<CommandId, Error> {
        self.require_authorization("APOP")?;
        self.require_tls_if_starttls()?;
        let stamp = self.apop_timestamp()?;
        let digest = apop_digest(&stamp, password);
        self.command(
            Command::Apop {
                name: name.to_string(),
                digest,
            },
            Expect::Apop,
        )
    }

    /// `STAT`.
    pub fn stat(&mut self) -> Result<CommandId, Error> {
        self.transaction_command(Command::Stat, Expect::Stat)
    }

    /// `LIST` (all messages) or `LIST n`.
    pub fn list(&mut self, number: Option<MessageNumber>) -> Result<CommandId, Error> {
        let expect = if number.is_some() {
            Expect::ListOne
        } else {
            Expect::ListAll
        };
        self.transaction_command(Command::List(number), expect)
    }

    /// `UIDL` (all messages) or `UIDL n`.
    pub fn uidl(&mut self, number: Option<MessageNumber>) -> Result<CommandId, Error> {
        let expect = if number.is_some() {
            Expect::UidlOne
        } else {
            Expect::UidlAll
        };
        self.transaction_command(Command::Uidl(number), expect)
    }

    /// `RETR n`: the body arrives as [`Event::Body`] chunks, then `Reply::Retrieved`.
    pub fn retr(&mut self, number: MessageNumber) -> Result<CommandId, Error> {
        self.transaction_command(Command::Retr(number), Expect::Body("RETR"))
    }

    /// `TOP n lines`: headers plus the first `lines` body lines, streamed like RETR.
    pub fn top(&mut self, number: MessageNumber, lines: u32) -> Result<CommandId, Error> {
        self.transaction_command(Command::Top(number, lines), Expect::Body("TOP"))
    }

    /// `DELE n`: marks for deletion; the server deletes at QUIT.
    pub fn dele(&mut self, number: MessageNumber) -> Result<CommandId, Error> {
        self.transaction_command(Command::Dele(number), Expect::Simple("DELE"))
    }

    /// `NOOP`.
    pub fn noop(&mut self) -> Result<CommandId, Error> {
        self.transaction_command(Command::Noop, Expect::Simple("NOOP"))
    }

    /// `RSET`: unmarks every deletion.
    pub fn rset(&mut self) -> Result<CommandId, Error> {
        self.transaction_command(Command::Rset, Expect::Simple("RSET"))
    }

    /// `QUIT`: in the transaction state, commits the deletions.
    pub fn quit(&mut self) -> Result<CommandId, Error> {
        self.check_alive()?;
        if matches!(self.phase, Phase::Closed | Phase::AwaitingTls) {
            return Err(self.wrong_state("QUIT"));
        }
        self.command(Command::Quit, Expect::Quit)
    }

    /// `CAPA`.
    pub fn capa(&mut self) -> Result<CommandId, Error> {
        self.check_alive()?;
        if matches!(self.phase, Phase::Closed | Phase::AwaitingTls) {
            return Err(self.wrong_state("CAPA"));
        }
        self.command(Command::Capa, Expect::Capa(CapaPurpose::Caller))
    }

    /// `STLS`: on success run the TLS handshake, then call [`Client::tls_established`].
    pub fn stls(&mut self) -> Result<CommandId, Error> {
        self.require_authorization("STLS")?;
        if self.tls_active {
            return Err(UsageError::OutOfOrder("STLS on a connection that is already TLS").into());
        }
        self.command(Command::Stls, Expect::Stls { internal: false })
    }

    /// `UTF8` (RFC 6856). Refused unless the server advertised UTF8.
    pub fn utf8(&mut self) -> Result<CommandId, Error> {
        self.require_authorization("UTF8")?;
        self.require_capability(&Capability::Utf8, "UTF8")?;
        self.command(Command::Utf8, Expect::Simple("UTF8"))
    }

    /// `LANG` (list) or `LANG tag` (RFC 6856). Refused unless the server advertised LANG.
    pub fn lang(&mut self, tag: Option<&str>) -> Result<CommandId, Error> {
        self.check_alive()?;
        self.require_capability(&Capability::Lang, "LANG")?;
        let expect = if tag.is_some() {
            Expect::Simple("LANG")
        } else {
            Expect::LangList
        };
        self.command(Command::Lang(tag.map(ToString::to_string)), expect)
    }

    // ---- internals: issuing ---------------------------------------------------------------

    fn command(&mut self, command: Command, expect: Expect) -> Result<CommandId, Error> {
        self.check_alive()?;
        command.validate()?;
        Ok(self.enqueue(Queued::Command(command, expect)))
    }

    fn enqueue(&mut self, item: Queued) -> CommandId {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        self.queue.push_back(Pending {
            id,
            internal: false,
            item,
        });
        id
    }

    fn push_front_internal(&mut self, command: Command, expect: Expect) {
        // Internal commands are never reported, so they take no id from the caller's sequence.
        self.queue.push_front(Pending {
            id: CommandId(u64::MAX),
            internal: true,
            item: Queued::Command(command, expect),
        });
    }

    fn transaction_command(
        &mut self,
        command: Command,
        expect: Expect,
    ) -> Result<CommandId, Error> {
        self.check_alive()?;
        // Queued behind a pending login is fine: it is checked again when sent.
        if self.phase != Phase::Transaction && !self.auth_pending() {
            return Err(self.wrong_state(command.name()));
        }
        self.command(command, expect)
    }

    fn auth_pending(&self) -> bool {
        self.queue.iter().any(|p| {
            matches!(
                p.item,
                Queued::Authenticate(_) | Queued::Command(_, Expect::Pass | Expect::Apop)
            )
        }) || self.in_flight.iter().any(|f| {
            matches!(
                f.expect,
                Expect::Pass
                    | Expect::Apop
                    | Expect::LoginUser(_)
                    | Expect::LoginPass
                    | Expect::Sasl(_)
            )
        })
    }

    fn require_authorization(&self, command: &'static str) -> Result<(), Error> {
        self.check_alive()?;
        let ok = matches!(self.phase, Phase::Authorization)
            || (self.phase == Phase::Greeting && self.options.negotiate);
        if ok {
            Ok(())
        } else {
            Err(self.wrong_state(command))
        }
    }

    fn require_capability(&self, cap: &Capability, command: &'static str) -> Result<(), Error> {
        if self.capabilities.has(cap) {
            Ok(())
        } else {
            Err(UsageError::InvalidArgument {
                command,
                reason: "the server did not advertise it",
            }
            .into())
        }
    }

    fn require_tls_if_starttls(&self) -> Result<(), Error> {
        if self.options.security == Security::StartTls && !self.tls_active {
            return Err(PolicyError::TlsUnavailable("has not completed STLS").into());
        }
        Ok(())
    }

    fn check_cleartext(&self, _command: &'static str) -> Result<(), Error> {
        self.require_tls_if_starttls()?;
        if self.tls_active || self.options.allow_cleartext_password {
            Ok(())
        } else {
            Err(PolicyError::CleartextForbidden.into())
        }
    }

    fn wrong_state(&self, command: &'static str) -> Error {
        UsageError::WrongState {
            command,
            state: self.phase.name(),
        }
        .into()
    }

    fn check_alive(&self) -> Result<(), Error> {
        match &self.failure {
            Some(e) => Err(e.clone()),
            None if self.phase == Phase::Closed && self.pos >= self.input.len() => Ok(()),
            None => Ok(()),
        }
    }

    fn fail(&mut self, error: Error) -> Error {
        self.phase = Phase::Failed;
        self.failure = Some(error.clone());
        self.queue.clear();
        self.in_flight.clear();
        self.out.zeroize();
        self.out.clear();
        error
    }

    // ---- internals: the send window -------------------------------------------------------

    /// The greeting's APOP timestamp, if APOP may be used on this connection.
    fn apop_timestamp(&self) -> Result<String, Error> {
        if !self.tls_active && !self.options.allow_cleartext_password {
            return Err(PolicyError::Apop(
                "APOP without TLS lets a man in the middle recover the password (CVE-2007-1558); \
                 use TLS, or allow cleartext passwords",
            )
            .into());
        }
        self.greeting
            .as_ref()
            .and_then(|g| g.apop_timestamp.clone())
            .ok_or_else(|| PolicyError::Apop("the greeting has no timestamp").into())
    }

    fn pipelining(&self) -> bool {
        self.options.pipelining
            && self.phase == Phase::Transaction
            && self.capabilities.pipelining()
    }

    fn fill_window(&mut self) {
        while let Some(next) = self.queue.front() {
            if matches!(
                self.phase,
                Phase::Greeting | Phase::AwaitingTls | Phase::Closed | Phase::Failed
            ) {
                return;
            }
            let barrier = match &next.item {
                Queued::Authenticate(_) => true,
                Queued::Command(c, _) => matches!(
                    c,
                    Command::Stls
                        | Command::User(_)
                        | Command::Pass(_)
                        | Command::Apop { .. }
                        | Command::Auth { .. }
                        | Command::Capa
                        | Command::Utf8
                        | Command::Lang(_)
                ),
            };
            if let Some(last) = self.in_flight.back() {
                let after_barrier = !matches!(
                    last.expect,
                    Expect::Simple(_)
                        | Expect::Stat
                        | Expect::ListAll
                        | Expect::ListOne
                        | Expect::UidlAll
                        | Expect::UidlOne
                        | Expect::Body(_)
                );
                if barrier || after_barrier || !self.pipelining() {
                    return;
                }
                let window = self.options.max_in_flight.max(1);
                if self.in_flight.len() >= window {
                    self.window_full = true;
                    return;
                }
                if self.window_full && self.in_flight.len() > window / 2 {
                    return;
                }
                self.window_full = false;
            }
            let Some(pending) = self.queue.pop_front() else {
                return;
            };
            if let Err(e) = self.send(pending.id, pending.internal, pending.item) {
                self.events.push_back(Owned::Completed(pending.id, Err(e)));
            }
        }
    }

    /// Puts one queued item on the wire, or refuses it without sending anything.
    fn send(&mut self, id: CommandId, internal: bool, item: Queued) -> Result<(), Error> {
        let (command, expect) = match item {
            Queued::Command(command, expect) => {
                let needs_transaction =
                    matches!(
                        expect,
                        Expect::Stat
                            | Expect::ListAll
                            | Expect::ListOne
                            | Expect::UidlAll
                            | Expect::UidlOne
                            | Expect::Body(_)
                    ) || matches!(command, Command::Dele(_) | Command::Noop | Command::Rset);
                if needs_transaction && self.phase != Phase::Transaction {
                    return Err(self.wrong_state(command.name()));
                }
                (command, expect)
            }
            Queued::Authenticate(request) => self.resolve_auth(*request)?,
        };
        command.encode(&mut self.out)?;
        self.in_flight.push_back(InFlight {
            id,
            internal,
            expect,
        });
        Ok(())
    }

    /// Turns an [`AuthRequest`] into its first command, applying the security policy.
    fn resolve_auth(&mut self, request: AuthRequest) -> Result<(Command, Expect), Error> {
        self.require_tls_if_starttls()?;
        if self.phase != Phase::Authorization {
            return Err(self.wrong_state("AUTH"));
        }
        let cleartext_ok = self.tls_active || self.options.allow_cleartext_password;
        let is_token = matches!(request.credential, Credential::Token(_));
        let method = match request.method {
            AuthMethod::Auto => {
                let offered = self.capabilities.sasl();
                let best = Mechanism::strongest(
                    offered.filter(|name| {
                        Mechanism::from_name(name)
                            .is_some_and(|m| cleartext_ok || !m.sends_cleartext_password())
                    }),
                    is_token,
                );
                match best {
                    Some(m) => AuthMethod::Sasl(m),
                    // No usable SASL: USER/PASS, when the server has it (or never said) and it is safe.
                    None if !is_token
                        && cleartext_ok
                        && (self.capabilities.has(&Capability::User)
                            || self.capabilities.list.is_empty()) =>
                    {
                        AuthMethod::UserPass
                    }
                    None if !cleartext_ok && !is_token => {
                        return Err(PolicyError::CleartextForbidden.into());
                    }
                    None => {
                        let offered: Vec<&str> = self.capabilities.sasl().collect();
                        return Err(PolicyError::NoMechanism(offered.join(" ")).into());
                    }
                }
            }
            explicit => explicit,
        };
        let secret = match &request.credential {
            Credential::Password(s) | Credential::Token(s) => s,
        };
        match method {
            AuthMethod::Auto => Err(PolicyError::NoMechanism(String::new()).into()),
            AuthMethod::UserPass => {
                if !cleartext_ok {
                    return Err(PolicyError::CleartextForbidden.into());
                }
                Ok((
                    Command::User(request.username.clone()),
                    Expect::LoginUser(secret.clone()),
                ))
            }
            AuthMethod::Apop => {
                let stamp = self.apop_timestamp()?;
                let digest = apop_digest(&stamp, secret);
                Ok((
                    Command::Apop {
                        name: request.username.clone(),
                        digest,
                    },
                    Expect::Apop,
                ))
            }
            AuthMethod::Sasl(mechanism) => {
                if mechanism.sends_cleartext_password() && !cleartext_ok {
                    return Err(PolicyError::CleartextForbidden.into());
                }
                let credentials = SaslCredentials {
                    authcid: &request.username,
                    authzid: request.authzid.as_deref(),
                    secret,
                    host: request.host.as_deref(),
                    port: request.port,
                };
                let mut client = SaslClient::new(mechanism, &credentials, &request.nonce)?;
                let mut deferred_initial = None;
                let mut initial_response = None;
                if let Some(initial) = client.initial_response() {
                    let encoded = encode_initial(&initial);
                    // RFC 5034: the whole AUTH line must fit 255 octets; otherwise wait for `+ `.
                    let line_len =
                        "AUTH ".len() + mechanism.name().len() + 1 + encoded.expose().len() + 2;
                    if line_len <= MAX_COMMAND_LINE {
                        initial_response = Some(encoded);
                    } else {
                        deferred_initial = Some(initial);
                    }
                }
                Ok((
                    Command::Auth {
                        mechanism: mechanism.name().to_string(),
                        initial_response,
                    },
                    Expect::Sasl(Box::new(SaslExchange {
                        client,
                        deferred_initial,
                        cancelled: None,
                    })),
                ))
            }
        }
    }

    // ---- internals: reading ---------------------------------------------------------------

    fn step(&mut self) -> Result<Step, Error> {
        let buf = self.input.get(self.pos..).unwrap_or_default();
        if matches!(self.reading, Reading::Body) {
            let decoder = &mut self.body;
            let id = self.in_flight.front().map_or(CommandId(u64::MAX), |f| f.id);
            return match decoder.decode(buf)? {
                Decoded::Chunk { data, consumed } => {
                    let base = self.pos;
                    self.pos += consumed;
                    if data.is_empty() {
                        Ok(Step::Continue)
                    } else {
                        Ok(Step::Body(id, base + data.start..base + data.end))
                    }
                }
                Decoded::End { consumed } => {
                    self.pos += consumed;
                    let octets = decoder.octets();
                    self.reading = Reading::Status;
                    self.in_flight.pop_front();
                    Ok(Step::Emit(Owned::Completed(
                        id,
                        Ok(Reply::Retrieved { octets }),
                    )))
                }
                Decoded::NeedMore => Ok(Step::NeedMore),
            };
        }
        if buf.is_empty() {
            return Ok(Step::NeedMore);
        }
        let limit = self.options.limits.status_line;
        let line = match find_line(buf, limit) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(Step::NeedMore),
            Err(()) => return Err(ProtocolError::StatusLineTooLong { limit }.into()),
        };
        let content = buf.get(..line.content_len).unwrap_or_default().to_vec();
        self.pos += line.consumed;
        if matches!(self.reading, Reading::Listing { .. }) {
            return self.listing_line(&content, line.consumed);
        }
        self.status_line(&content)
    }

    fn listing_line(&mut self, content: &[u8], consumed: usize) -> Result<Step, Error> {
        let Reading::Listing { listing, octets } = &mut self.reading else {
            return Ok(Step::Continue);
        };
        if content == b"." {
            let listing = match mem::replace(&mut self.reading, Reading::Status) {
                Reading::Listing { listing, .. } => listing,
                _ => return Ok(Step::Continue),
            };
            let Some(done) = self.in_flight.pop_front() else {
                return Ok(Step::Continue);
            };
            let reply = match listing {
                Listing::List(v) => Reply::List(v),
                Listing::Uidl(v) => Reply::Uidl(v),
                Listing::Lang(v) => Reply::Languages(v),
                Listing::Capa(list) => {
                    let caps = Capabilities { list };
                    self.capabilities = caps.clone();
                    if matches!(done.expect, Expect::Capa(CapaPurpose::Negotiate)) {
                        return self.after_negotiating_capa(true);
                    }
                    Reply::Capabilities(caps)
                }
            };
            return Ok(self.complete(done, Ok(reply)));
        }
        *octets = octets
            .saturating_add(consumed)
            .saturating_add(LISTING_ENTRY_COST);
        if *octets > self.options.limits.listing {
            return Err(ProtocolError::ReplyTooLarge {
                limit: self.options.limits.listing,
            }
            .into());
        }
        // Dot-stuffing applies to listings too, though no sane entry starts with a dot.
        let content = content.strip_prefix(b".").unwrap_or(content);
        match listing {
            Listing::List(v) => v.push(parse_list_entry(content)?),
            Listing::Uidl(v) => v.push(parse_uidl_entry(content, self.options.lenient_uids)?),
            Listing::Capa(v) => v.push(Capability::parse(&String::from_utf8_lossy(content))),
            Listing::Lang(v) => {
                let text = String::from_utf8_lossy(content);
                let (tag, desc) = text.split_once(' ').unwrap_or((&text, ""));
                v.push((tag.to_string(), desc.to_string()));
            }
        }
        Ok(Step::Continue)
    }

    fn status_line(&mut self, content: &[u8]) -> Result<Step, Error> {
        let Some(status) = StatusLine::parse(content) else {
            let shown = printable(content);
            return Err(if self.phase == Phase::Greeting {
                ProtocolError::BadGreeting(shown)
            } else {
                ProtocolError::BadStatusLine(shown)
            }
            .into());
        };
        if self.phase == Phase::Greeting {
            if status.status != Status::Ok {
                return Err(ProtocolError::BadGreeting(printable(content)).into());
            }
            let greeting = Greeting::parse(&status.text_lossy());
            self.greeting = Some(greeting.clone());
            self.phase = Phase::Authorization;
            if self.options.negotiate {
                self.push_front_internal(Command::Capa, Expect::Capa(CapaPurpose::Negotiate));
            }
            return Ok(Step::Emit(Owned::Greeting(greeting)));
        }
        let Some(front) = self.in_flight.front_mut() else {
            return Err(ProtocolError::UnsolicitedData(content.len() + 2).into());
        };
        if status.status == Status::Continuation {
            return self.sasl_challenge(status.text);
        }
        self.status_text.clear();
        self.status_text
            .push_str(&String::from_utf8_lossy(status.text));
        let name = front.expect_name();
        if status.status == Status::Err {
            let error = ServerError {
                command: name,
                code: status.code.clone(),
                text: status.text_lossy(),
            };
            let Some(done) = self.in_flight.pop_front() else {
                return Ok(Step::Continue);
            };
            return Ok(match done.expect {
                Expect::Capa(CapaPurpose::Negotiate) => return self.after_negotiating_capa(false),
                Expect::Stls { internal: true } => {
                    return Err(PolicyError::TlsUnavailable("refused STLS").into());
                }
                Expect::Sasl(exchange) if exchange.cancelled.is_some() => {
                    let local = exchange.cancelled.unwrap_or(Error::Server(error));
                    self.complete_id(done.id, done.internal, Err(local))
                }
                _ => self.complete_id(done.id, done.internal, Err(error.into())),
            });
        }
        let text = status.text;
        let Some(done) = self.in_flight.front_mut() else {
            return Ok(Step::Continue);
        };
        let reply = match &mut done.expect {
            Expect::Simple(_) | Expect::User => Reply::Ok(lossy(text)),
            Expect::Pass | Expect::Apop | Expect::LoginPass => {
                self.phase = Phase::Transaction;
                Reply::Authenticated
            }
            Expect::Sasl(exchange) => {
                if let Some(local) = exchange.cancelled.take() {
                    // The server accepted what we tried to cancel; do not trust the session.
                    return Err(local);
                }
                exchange.client.finish()?;
                self.phase = Phase::Transaction;
                Reply::Authenticated
            }
            Expect::LoginUser(password) => {
                let password = password.clone();
                Command::Pass(password).encode(&mut self.out)?;
                done.expect = Expect::LoginPass;
                return Ok(Step::Continue);
            }
            Expect::Stat => {
                let (count, size) = parse_two_numbers(text, "STAT")?;
                let count =
                    u32::try_from(count).map_err(|_| ProtocolError::NumberOverflow("STAT"))?;
                Reply::Stat { count, size }
            }
            Expect::ListOne => Reply::ListOne(parse_list_entry(text)?),
            Expect::UidlOne => Reply::UidlOne(parse_uidl_entry(text, self.options.lenient_uids)?),
            Expect::ListAll => return Ok(self.start_listing(Listing::List(Vec::new()))),
            Expect::UidlAll => return Ok(self.start_listing(Listing::Uidl(Vec::new()))),
            Expect::Capa(_) => return Ok(self.start_listing(Listing::Capa(Vec::new()))),
            Expect::LangList => return Ok(self.start_listing(Listing::Lang(Vec::new()))),
            Expect::Body(_) => {
                // One decoder per session, reset per body: no allocation per message.
                self.body.reset(self.options.limits.data_line);
                self.reading = Reading::Body;
                return Ok(Step::Continue);
            }
            Expect::Stls { internal } => {
                let internal = *internal;
                // RFC 2595 / NO STARTTLS: nothing may follow the +OK before the handshake.
                let leftover = self.input.len().saturating_sub(self.pos);
                if leftover > 0 {
                    return Err(ProtocolError::InjectionAfterStls(leftover).into());
                }
                self.phase = Phase::AwaitingTls;
                self.input.clear();
                self.pos = 0;
                let Some(done) = self.in_flight.pop_front() else {
                    return Ok(Step::Continue);
                };
                return Ok(if internal {
                    Step::Emit(Owned::TlsReady)
                } else {
                    Step::Emit(Owned::Completed(done.id, Ok(Reply::TlsReady)))
                });
            }
            Expect::Quit => {
                self.phase = Phase::Closed;
                self.queue.clear();
                Reply::Closed(lossy(text))
            }
        };
        let Some(done) = self.in_flight.pop_front() else {
            return Ok(Step::Continue);
        };
        Ok(self.complete(done, Ok(reply)))
    }

    fn start_listing(&mut self, listing: Listing) -> Step {
        self.reading = Reading::Listing { listing, octets: 0 };
        Step::Continue
    }

    fn complete(&mut self, done: InFlight, result: Result<Reply, Error>) -> Step {
        self.complete_id(done.id, done.internal, result)
    }

    fn complete_id(&mut self, id: CommandId, internal: bool, result: Result<Reply, Error>) -> Step {
        if result.is_err() {
            // A failed login: anything queued behind it that needs a login cannot run.
            self.fail_queued_after_auth_failure();
        }
        if internal {
            Step::Continue
        } else {
            Step::Emit(Owned::Completed(id, result))
        }
    }

    fn fail_queued_after_auth_failure(&mut self) {
        if self.phase == Phase::Transaction || self.auth_pending() {
            return;
        }
        let phase = self.phase.name();
        let mut kept = VecDeque::new();
        for p in mem::take(&mut self.queue) {
            let needs_login = matches!(
                &p.item,
                Queued::Command(
                    _,
                    Expect::Stat
                        | Expect::ListAll
                        | Expect::ListOne
                        | Expect::UidlAll
                        | Expect::UidlOne
                        | Expect::Body(_)
                )
            ) || matches!(
                &p.item,
                Queued::Command(Command::Dele(_) | Command::Noop | Command::Rset, _)
            );
            if needs_login {
                let command = match &p.item {
                    Queued::Command(c, _) => c.name(),
                    Queued::Authenticate(_) => "AUTH",
                };
                self.events.push_back(Owned::Completed(
                    p.id,
                    Err(UsageError::WrongState {
                        command,
                        state: phase,
                    }
                    .into()),
                ));
            } else {
                kept.push_back(p);
            }
        }
        self.queue = kept;
    }

    /// After the automatic CAPA: go on to STLS, or report the session ready.
    fn after_negotiating_capa(&mut self, succeeded: bool) -> Result<Step, Error> {
        if self.options.security == Security::StartTls && !self.tls_active {
            // STLS stripping: a server that lists capabilities without STLS gets no credentials.
            // A server that refused CAPA may still do STLS (RFC 2595 predates CAPA), so try.
            if succeeded && !self.capabilities.stls() {
                return Err(PolicyError::TlsUnavailable("does not offer STLS").into());
            }
            self.push_front_internal(Command::Stls, Expect::Stls { internal: true });
            return Ok(Step::Continue);
        }
        Ok(Step::Emit(Owned::Ready(self.capabilities.clone())))
    }

    fn sasl_challenge(&mut self, payload: &[u8]) -> Result<Step, Error> {
        let Some(front) = self.in_flight.front_mut() else {
            return Err(ProtocolError::BadContinuation.into());
        };
        let Expect::Sasl(exchange) = &mut front.expect else {
            return Err(ProtocolError::BadContinuation.into());
        };
        let response = if let Some(initial) = exchange.deferred_initial.take() {
            initial
        } else {
            let challenge = Zeroizing::new(
                BASE64
                    .decode(payload)
                    .map_err(|_| ProtocolError::BadContinuation)?,
            );
            match exchange.client.respond(&challenge) {
                Ok(r) => r,
                Err(e) => {
                    // Cancel (RFC 5034 `*`) and report our reason once the server answers -ERR.
                    exchange.cancelled = Some(e.into());
                    Command::SaslResponse(Secret::new("*")).encode(&mut self.out)?;
                    return Ok(Step::Continue);
                }
            }
        };
        Command::SaslResponse(encode_continuation(&response)).encode(&mut self.out)?;
        Ok(Step::Continue)
    }
}

impl InFlight {
    fn expect_name(&self) -> &'static str {
        match &self.expect {
            Expect::Simple(n) | Expect::Body(n) => n,
            Expect::User | Expect::LoginUser(_) => "USER",
            Expect::Pass | Expect::LoginPass => "PASS",
            Expect::Apop => "APOP",
            Expect::Stat => "STAT",
            Expect::ListAll | Expect::ListOne => "LIST",
            Expect::UidlAll | Expect::UidlOne => "UIDL",
            Expect::Capa(_) => "CAPA",
            Expect::LangList => "LANG",
            Expect::Stls { .. } => "STLS",
            Expect::Quit => "QUIT",
            Expect::Sasl(_) => "AUTH",
        }
    }
}

/// Base64 for an initial response on the AUTH line, where an empty one is `=` (RFC 5034 s. 4).
fn encode_initial(raw: &[u8]) -> Secret {
    if raw.is_empty() {
        Secret::new("=")
    } else {
        Secret::new(BASE64.encode(raw))
    }
}

/// Base64 for a continuation line; an empty response is an empty line (RFC 5034 s. 4).
fn encode_continuation(raw: &[u8]) -> Secret {
    Secret::new(BASE64.encode(raw))
}

fn lossy(text: &[u8]) -> String {
    String::from_utf8_lossy(text).into_owned()
}

/// A server line for an error message: lossy, control characters escaped, at most 120 chars.
fn printable(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line.get(..120).unwrap_or(line));
    text.chars().flat_map(char::escape_default).collect()
}

fn parse_number(word: Option<&[u8]>, what: &'static str) -> Result<u64, ProtocolError> {
    let word = word.ok_or_else(|| ProtocolError::Malformed {
        what,
        line: String::new(),
    })?;
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::Malformed {
            what,
            line: printable(word),
        });
    }
    word.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(ProtocolError::NumberOverflow(what))
    })
}

fn words(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| *b == b' ' || *b == b'\t')
        .filter(|w| !w.is_empty())
}

fn parse_two_numbers(text: &[u8], what: &'static str) -> Result<(u64, u64), ProtocolError> {
    let mut w = words(text);
    let a = parse_number(w.next(), what)?;
    let b = parse_number(w.next(), what)?;
    Ok((a, b))
}

fn message_number(n: u64, what: &'static str) -> Result<MessageNumber, ProtocolError> {
    match MessageNumber::try_from(n) {
        Ok(0) => Err(ProtocolError::Malformed {
            what,
            line: "message number 0".into(),
        }),
        Ok(n) => Ok(n),
        Err(_) => Err(ProtocolError::NumberOverflow(what)),
    }
}

fn parse_list_entry(text: &[u8]) -> Result<ListEntry, ProtocolError> {
    let (number, size) = parse_two_numbers(text, "LIST entry")?;
    Ok(ListEntry {
        number: message_number(number, "LIST entry")?,
        size,
    })
}

fn parse_uidl_entry(text: &[u8], lenient: bool) -> Result<UidlEntry, ProtocolError> {
    let mut w = words(text);
    let number = message_number(parse_number(w.next(), "UIDL entry")?, "UIDL entry")?;
    let uid = w.next().ok_or_else(|| ProtocolError::Malformed {
        what: "UIDL entry",
        line: printable(text),
    })?;
    let valid = if lenient {
        (1..=255).contains(&uid.len()) && uid.iter().all(|b| *b > 0x20 && *b != 0x7f)
    } else {
        (1..=70).contains(&uid.len()) && uid.iter().all(|b| (0x21..=0x7e).contains(b))
    };
    if !valid {
        return Err(ProtocolError::InvalidUid(printable(uid)));
    }
    Ok(UidlEntry {
        number,
        uid: lossy(uid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed(client: &mut Client) -> (CommandId, Result<Reply, Error>) {
        loop {
            match client.poll_event() {
                Ok(Some(Event::Completed { id, result })) => return (id, result),
                Ok(Some(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn status_text_belongs_to_the_command_just_completed() {
        let mut c = Client::new(ClientOptions {
            negotiate: false,
            ..Default::default()
        });
        c.handle_input(b"+OK hi\r\n").unwrap();
        c.poll_event().unwrap();
        c.user("u").unwrap();
        c.pass(Secret::new("p")).unwrap();
        c.poll_transmit();
        c.handle_input(b"+OK send PASS\r\n").unwrap();
        assert_eq!(completed(&mut c).1, Ok(Reply::Ok("send PASS".into())));
        assert_eq!(c.status_text(), "send PASS");
        c.poll_transmit();
        c.handle_input(b"+OK maildrop has 1 message (3 octets)\r\n")
            .unwrap();
        assert_eq!(completed(&mut c).1, Ok(Reply::Authenticated));
        assert_eq!(c.status_text(), "maildrop has 1 message (3 octets)");
        c.retr(1).unwrap();
        c.poll_transmit();
        c.handle_input(b"+OK 3 octets\r\nab\r\n.\r\n").unwrap();
        assert_eq!(completed(&mut c).1, Ok(Reply::Retrieved { octets: 4 }));
        assert_eq!(c.status_text(), "3 octets");
    }

    #[test]
    fn bytes_in_the_same_read_as_the_stls_ok_are_an_injection() {
        let mut c = Client::new(ClientOptions {
            security: Security::StartTls,
            ..Default::default()
        });
        c.handle_input(b"+OK hi\r\n").unwrap();
        c.poll_event().unwrap();
        c.poll_transmit();
        c.handle_input(b"+OK\r\nSTLS\r\n.\r\n").unwrap();
        assert_eq!(c.poll_event(), Ok(None));
        assert_eq!(&c.poll_transmit().unwrap()[..], b"STLS\r\n");
        c.handle_input(b"+OK begin\r\n+OK injected\r\n").unwrap();
        assert_eq!(
            c.poll_event().unwrap_err(),
            Error::Protocol(ProtocolError::InjectionAfterStls(14))
        );
        assert!(c.poll_transmit().is_none());
    }
}

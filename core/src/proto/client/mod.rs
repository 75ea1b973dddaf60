//! The client role: the state machine, split by direction (see `ARCHITECTURE.md`).

mod auth;
mod commands;
mod options;
mod pipeline;
mod read;
#[cfg(test)]
mod tests;
mod types;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem;

use zeroize::{Zeroize, Zeroizing};

use crate::proto::codec::BodyDecoder;
use crate::proto::codec::command::Command;
use crate::proto::error::{Error, ProtocolError, UsageError};
use crate::proto::types::{Capabilities, Greeting};

pub use options::{ClientOptions, LISTING_ENTRY_COST, Limits, Security};
pub use types::{AuthMethod, AuthRequest, CommandId, Credential, Event, Phase, Reply, UnknownName};

use pipeline::{CapaPurpose, Expect, InFlight, Pending};
pub(crate) use read::Owned;
use read::{Reading, Step};

/// One thing [`Client::poll_owned`] decided.
#[derive(Debug)]
pub(crate) enum Polled {
    /// An event other than body bytes.
    Event(Owned),
    /// Body bytes of a RETR/TOP, as a range of the input buffer.
    Body(CommandId, core::ops::Range<usize>),
}

/// The client role: a POP3 session as a state machine.
///
/// Feed received bytes with [`Client::handle_input`], take events with [`Client::poll_event`],
/// issue commands with the command methods (each returns a [`CommandId`]), and write what
/// [`Client::poll_transmit`] returns. Replies complete commands in the order they were issued,
/// whether or not the server pipelines.
///
/// ```
/// use popwire::proto::{Client, ClientOptions, Event, Reply, Security};
///
/// let mut client = Client::new(ClientOptions { security: Security::None, negotiate: false, ..Default::default() });
/// client.handle_input(b"+OK POP3 ready\r\n").unwrap();
/// assert!(matches!(client.poll_event(), Ok(Some(Event::Greeting(_)))));
/// let capa = client.capa().unwrap();
/// assert_eq!(&client.poll_transmit().unwrap()[..], b"CAPA\r\n");
/// client.handle_input(b"+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n").unwrap();
/// match client.poll_event() {
///     Ok(Some(Event::Completed { id, result: Ok(Reply::Capabilities(caps)) })) => {
///         assert_eq!(id, capa);
///         assert!(caps.pipelining());
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
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
    /// Call it after every command and every event; bytes not written are commands lost.
    #[must_use = "the bytes must be written to the server"]
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
        Ok(match self.poll_owned()? {
            None => None,
            Some(Polled::Event(ev)) => Some(ev.into()),
            Some(Polled::Body(id, range)) => Some(Event::Body {
                id,
                data: self.body_bytes(range),
            }),
        })
    }

    /// [`Client::poll_event`] with a body as a range of the input buffer, so a caller in this
    /// crate can decide what to do with it before borrowing the bytes.
    pub(crate) fn poll_owned(&mut self) -> Result<Option<Polled>, Error> {
        self.check_alive()?;
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(Polled::Event(ev)));
            }
            match self.step() {
                Ok(Step::Emit(ev)) => return Ok(Some(Polled::Event(ev))),
                Ok(Step::Body(id, range)) => return Ok(Some(Polled::Body(id, range))),
                Ok(Step::Continue) => {}
                Ok(Step::NeedMore) => return Ok(None),
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// The body bytes of a [`Polled::Body`], valid until the next call into the engine.
    pub(crate) fn body_bytes(&self, range: core::ops::Range<usize>) -> &[u8] {
        self.input.get(range).unwrap_or_default()
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
}

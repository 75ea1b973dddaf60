//! [`Session`]: the pull interface every I/O driver runs.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use zeroize::Zeroizing;

use crate::proto::Reply;
use crate::proto::client::{AuthRequest, Client, ClientOptions, CommandId, Owned, Phase, Polled};
use crate::proto::error::{Error, ServerError, UsageError};
use crate::proto::types::{Capabilities, ListEntry, MessageNumber, UidlEntry};

/// What a driver waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Negotiation is over (greeting, CAPA, STLS and CAPA again): ready to log in.
    Ready,
    /// This command completed. Its body bytes (RETR/TOP) come first as [`Progress::Body`].
    Done(CommandId),
}

/// What [`Session::next`] made of the input so far.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "body bytes and completions are handed out once"]
pub enum Progress<'a> {
    /// Negotiation is over ([`Until::Ready`]).
    Ready,
    /// Body bytes of the command waited for, dot-unstuffed; valid until the next call.
    Body(&'a [u8]),
    /// The command waited for completed.
    Done(Result<Reply, Error>),
}

/// Why [`Session::next`] cannot go on without the driver.
#[derive(Debug)]
#[must_use = "the driver must act on an interrupt before calling next again"]
pub enum Interrupt {
    /// Write these bytes to the server, then call `next` again.
    Output(Zeroizing<Vec<u8>>),
    /// Read from the server and hand the bytes to [`Client::handle_input`] (end of stream:
    /// [`Client::handle_eof`]), then call `next` again.
    NeedInput,
    /// Run the TLS handshake on the connection now, then call [`Session::tls_established`].
    StartTls,
    /// The session failed; close the connection.
    Error(Error),
}

/// A command issued through a [`Session`], whose reply has type `T`.
#[must_use = "wait for the command with Session::next(Until::Done(pending.id()))"]
pub struct Pending<T> {
    id: CommandId,
    shape: fn(Reply) -> Option<T>,
    _reply: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").field("id", &self.id).finish()
    }
}

impl<T> Pending<T> {
    fn new(id: CommandId, shape: fn(Reply) -> Option<T>) -> Self {
        Self {
            id,
            shape,
            _reply: PhantomData,
        }
    }

    /// The command's id.
    pub fn id(&self) -> CommandId {
        self.id
    }

    /// The typed outcome of the command, from what [`Progress::Done`] carried.
    pub fn finish(self, result: Result<Reply, Error>) -> Result<T, Error> {
        // The engine picks the reply's shape from the command, so a mismatch cannot happen;
        // it is still an error, never a made-up default.
        (self.shape)(result?).ok_or(Error::Usage(UsageError::OutOfOrder(
            "a reply that does not fit its command",
        )))
    }
}

/// Splits a server's refusal of one command (the session goes on) from a failure that ends
/// the session.
pub fn refusal<T>(result: Result<T, Error>) -> Result<Result<T, ServerError>, Error> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(Error::Server(e)) => Ok(Err(e)),
        Err(e) => Err(e),
    }
}

/// The pull interface every I/O driver runs, layered on [`Client`].
///
/// A driver asks for what it waits for (the session to be ready, or a command to complete) and
/// calls [`Session::next`] until it gets it. `next` does all the bookkeeping (completions of
/// other commands kept for later, body bytes routed only to the command waited for, TLS and
/// output requests) and interrupts only when the driver has to move bytes:
///
/// ```
/// use popwire::proto::{ClientOptions, Interrupt, Progress, Security, Session, Until};
///
/// let mut session = Session::new(ClientOptions {
///     security: Security::None,
///     ..Default::default()
/// });
/// let mut server = vec![b"+OK hi\r\n".to_vec(), b"+OK\r\nUIDL\r\n.\r\n".to_vec()].into_iter();
/// let mut sent = Vec::new();
/// loop {
///     match session.next(Until::Ready) {
///         Ok(Progress::Ready) => break,
///         Ok(other) => unreachable!("{other:?}"),
///         Err(Interrupt::Output(bytes)) => sent.extend_from_slice(&bytes),
///         Err(Interrupt::NeedInput) => session.client_mut().handle_input(&server.next().unwrap()).unwrap(),
///         Err(other) => panic!("{other:?}"),
///     }
/// }
/// assert_eq!(sent, b"CAPA\r\n");
/// ```
///
/// The [`Client`] underneath stays reachable ([`Session::client_mut`]): the bindings' `Engine`
/// wrappers drive `Client` directly, and both paths share one engine.
#[derive(Debug)]
pub struct Session {
    client: Client,
    done: VecDeque<(CommandId, Result<Reply, Error>)>,
    ready: bool,
}

impl Session {
    /// A session over a fresh engine.
    pub fn new(options: ClientOptions) -> Self {
        Self::from_client(Client::new(options))
    }

    /// A session over an existing engine.
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            done: VecDeque::new(),
            ready: false,
        }
    }

    /// The engine.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The engine, to feed input or issue commands without a typed handle.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The TLS handshake that [`Interrupt::StartTls`] asked for succeeded.
    pub fn tls_established(&mut self) -> Result<(), Error> {
        if self.client.phase() == Phase::AwaitingTls {
            self.client.tls_established()?;
        }
        Ok(())
    }

    /// Advances toward `until`. Completions of other commands are kept for a later
    /// `Until::Done`; body bytes of other commands are dropped (a driver that stopped reading
    /// a body must not see its rest land in the next message).
    pub fn next(&mut self, until: Until) -> Result<Progress<'_>, Interrupt> {
        loop {
            if let Some(bytes) = self.client.poll_transmit() {
                return Err(Interrupt::Output(bytes));
            }
            match until {
                Until::Ready if self.ready => {
                    self.ready = false;
                    return Ok(Progress::Ready);
                }
                Until::Done(id) => {
                    let at = self.done.iter().position(|(i, _)| *i == id);
                    if let Some((_, result)) = at.and_then(|at| self.done.remove(at)) {
                        return Ok(Progress::Done(result));
                    }
                }
                Until::Ready => {}
            }
            match self.client.poll_owned() {
                Err(e) => return Err(Interrupt::Error(e)),
                // Handling input may have produced output (a SASL response, the next command
                // of the window): it must leave before the driver blocks on reading.
                Ok(None) => {
                    return Err(match self.client.poll_transmit() {
                        Some(bytes) => Interrupt::Output(bytes),
                        None => Interrupt::NeedInput,
                    });
                }
                Ok(Some(Polled::Body(id, range))) => {
                    if until == Until::Done(id) {
                        return Ok(Progress::Body(self.client.body_bytes(range)));
                    }
                }
                Ok(Some(Polled::Event(event))) => match event {
                    Owned::Greeting(_) => {}
                    Owned::Ready(_) => self.ready = true,
                    Owned::TlsReady => return Err(Interrupt::StartTls),
                    Owned::Completed(id, result) => {
                        let start_tls = matches!(result, Ok(Reply::TlsReady));
                        self.done.push_back((id, result));
                        if start_tls {
                            return Err(Interrupt::StartTls);
                        }
                    }
                },
            }
        }
    }

    // ---- typed commands ----------------------------------------------------------------------

    /// Logs in; see [`Client::authenticate`].
    pub fn authenticate(&mut self, request: AuthRequest) -> Result<Pending<()>, Error> {
        Ok(Pending::new(self.client.authenticate(request)?, |_| {
            Some(())
        }))
    }

    /// `CAPA`.
    pub fn capa(&mut self) -> Result<Pending<Capabilities>, Error> {
        Ok(Pending::new(self.client.capa()?, |r| match r {
            Reply::Capabilities(c) => Some(c),
            _ => None,
        }))
    }

    /// `STAT`: (messages, octets).
    pub fn stat(&mut self) -> Result<Pending<(u32, u64)>, Error> {
        Ok(Pending::new(self.client.stat()?, |r| match r {
            Reply::Stat { count, size } => Some((count, size)),
            _ => None,
        }))
    }

    /// `LIST`.
    pub fn list(&mut self) -> Result<Pending<Vec<ListEntry>>, Error> {
        Ok(Pending::new(self.client.list(None)?, |r| match r {
            Reply::List(v) => Some(v),
            _ => None,
        }))
    }

    /// `LIST n`.
    pub fn list_one(&mut self, number: MessageNumber) -> Result<Pending<ListEntry>, Error> {
        Ok(Pending::new(self.client.list(Some(number))?, |r| match r {
            Reply::ListOne(e) => Some(e),
            _ => None,
        }))
    }

    /// `UIDL`.
    pub fn uidl(&mut self) -> Result<Pending<Vec<UidlEntry>>, Error> {
        Ok(Pending::new(self.client.uidl(None)?, |r| match r {
            Reply::Uidl(v) => Some(v),
            _ => None,
        }))
    }

    /// `UIDL n`.
    pub fn uidl_one(&mut self, number: MessageNumber) -> Result<Pending<UidlEntry>, Error> {
        Ok(Pending::new(self.client.uidl(Some(number))?, |r| match r {
            Reply::UidlOne(e) => Some(e),
            _ => None,
        }))
    }

    /// `RETR n`: body bytes, then the octets delivered.
    pub fn retr(&mut self, number: MessageNumber) -> Result<Pending<u64>, Error> {
        Ok(Pending::new(self.client.retr(number)?, octets))
    }

    /// `TOP n lines`: body bytes, then the octets delivered.
    pub fn top(&mut self, number: MessageNumber, lines: u32) -> Result<Pending<u64>, Error> {
        Ok(Pending::new(self.client.top(number, lines)?, octets))
    }

    /// `DELE n`.
    pub fn dele(&mut self, number: MessageNumber) -> Result<Pending<()>, Error> {
        Ok(Pending::new(self.client.dele(number)?, |_| Some(())))
    }

    /// `DELE` for each number, pipelined.
    pub fn dele_many(&mut self, numbers: &[MessageNumber]) -> Result<Vec<Pending<()>>, Error> {
        numbers.iter().map(|&n| self.dele(n)).collect()
    }

    /// `RSET`.
    pub fn rset(&mut self) -> Result<Pending<()>, Error> {
        Ok(Pending::new(self.client.rset()?, |_| Some(())))
    }

    /// `NOOP`.
    pub fn noop(&mut self) -> Result<Pending<()>, Error> {
        Ok(Pending::new(self.client.noop()?, |_| Some(())))
    }

    /// `QUIT`: the server's goodbye text.
    pub fn quit(&mut self) -> Result<Pending<String>, Error> {
        Ok(Pending::new(self.client.quit()?, |r| match r {
            Reply::Closed(text) => Some(text),
            _ => None,
        }))
    }
}

fn octets(r: Reply) -> Option<u64> {
    match r {
        Reply::Retrieved { octets } => Some(octets),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Secret, Security};

    /// Drives `session` against canned server bytes until `until`, collecting body bytes.
    fn run(
        session: &mut Session,
        until: Until,
        server: &mut VecDeque<&[u8]>,
        sent: &mut Vec<u8>,
        body: &mut Vec<u8>,
    ) -> Option<Result<Reply, Error>> {
        loop {
            match session.next(until) {
                Ok(Progress::Ready) => return None,
                Ok(Progress::Body(b)) => body.extend_from_slice(b),
                Ok(Progress::Done(r)) => return Some(r),
                Err(Interrupt::Output(b)) => sent.extend_from_slice(&b),
                Err(Interrupt::NeedInput) => {
                    let input = server.pop_front().expect("more server input");
                    session.client_mut().handle_input(input).expect("input");
                }
                Err(other) => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn completions_wait_for_their_turn_and_bodies_go_to_the_command_waited_for() {
        let mut s = Session::new(ClientOptions {
            security: Security::None,
            allow_cleartext_password: true,
            negotiate: false,
            ..Default::default()
        });
        let mut server: VecDeque<&[u8]> = VecDeque::from([
            &b"+OK hi\r\n"[..],
            b"+OK\r\n",
            b"+OK in\r\n",
            b"+OK\r\na\r\n.\r\n+OK\r\nbb\r\n.\r\n",
        ]);
        let (mut sent, mut body) = (Vec::new(), Vec::new());
        s.client_mut()
            .handle_input(server.pop_front().unwrap())
            .unwrap();
        assert!(matches!(s.client_mut().poll_event(), Ok(Some(_))));
        let user = s.client_mut().user("u").unwrap();
        let pass = s.client_mut().pass(Secret::new("p")).unwrap();
        run(&mut s, Until::Done(user), &mut server, &mut sent, &mut body);
        run(&mut s, Until::Done(pass), &mut server, &mut sent, &mut body);
        let one = s.retr(1).unwrap();
        let two = s.retr(2).unwrap();
        // Waiting for the second first: the first's body is dropped, its completion kept.
        let r = run(
            &mut s,
            Until::Done(two.id()),
            &mut server,
            &mut sent,
            &mut body,
        );
        assert_eq!(two.finish(r.unwrap()), Ok(4));
        assert_eq!(body, b"bb\r\n");
        let r = run(
            &mut s,
            Until::Done(one.id()),
            &mut server,
            &mut sent,
            &mut body,
        );
        assert_eq!(one.finish(r.unwrap()), Ok(3));
    }

    #[test]
    fn a_refusal_is_not_fatal() {
        let refused = Error::Server(ServerError {
            command: "DELE",
            code: None,
            text: "no".into(),
        });
        assert!(matches!(refusal::<()>(Err(refused)), Ok(Err(_))));
        assert!(refusal::<()>(Err(UsageError::Closed.into())).is_err());
    }
}

//! The receive side: status lines, listings and bodies, turned into completions and events.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::mem;

use super::pipeline::{CapaPurpose, Expect, InFlight, Queued};
use super::{Client, CommandId, Event, LISTING_ENTRY_COST, Phase, Reply, Security};
use crate::proto::codec::command::Command;
use crate::proto::codec::listing::{parse_list_entry, parse_stat, parse_uidl_entry, printable};
use crate::proto::codec::{Decoded, Status, StatusLine, find_line};
use crate::proto::error::{Error, PolicyError, ProtocolError, ServerError, UsageError};
use crate::proto::types::{Capabilities, Capability, Greeting, ListEntry, UidlEntry};

#[derive(Debug)]
pub(super) enum Listing {
    List(Vec<ListEntry>),
    Uidl(Vec<UidlEntry>),
    Capa(Vec<Capability>),
    Lang(Vec<(String, String)>),
}

#[derive(Debug)]
pub(super) enum Reading {
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
pub(crate) enum Owned {
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

pub(super) enum Step {
    Emit(Owned),
    Body(CommandId, core::ops::Range<usize>),
    Continue,
    NeedMore,
}

impl Client {
    pub(super) fn step(&mut self) -> Result<Step, Error> {
        let buf = self.input.get(self.pos..).unwrap_or_default();
        if matches!(self.reading, Reading::Body) {
            let decoder = &mut self.body;
            let id = self.in_flight.front().map_or(CommandId::INTERNAL, |f| f.id);
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

    pub(super) fn listing_line(&mut self, content: &[u8], consumed: usize) -> Result<Step, Error> {
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

    pub(super) fn status_line(&mut self, content: &[u8]) -> Result<Step, Error> {
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
                let (count, size) = parse_stat(text)?;
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

    pub(super) fn start_listing(&mut self, listing: Listing) -> Step {
        self.reading = Reading::Listing { listing, octets: 0 };
        Step::Continue
    }

    pub(super) fn complete(&mut self, done: InFlight, result: Result<Reply, Error>) -> Step {
        self.complete_id(done.id, done.internal, result)
    }

    pub(super) fn complete_id(
        &mut self,
        id: CommandId,
        internal: bool,
        result: Result<Reply, Error>,
    ) -> Step {
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

    pub(super) fn fail_queued_after_auth_failure(&mut self) {
        if self.phase == Phase::Transaction || self.auth_pending() {
            return;
        }
        let phase = self.phase.name();
        let mut kept = VecDeque::new();
        for p in mem::take(&mut self.queue) {
            let needs_login = matches!(&p.item, Queued::Command(c, _) if c.needs_transaction());
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
    pub(super) fn after_negotiating_capa(&mut self, succeeded: bool) -> Result<Step, Error> {
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
}

fn lossy(text: &[u8]) -> String {
    String::from_utf8_lossy(text).into_owned()
}

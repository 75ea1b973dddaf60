//! The send side: what each sent command expects back, and the pipelining window.

use alloc::boxed::Box;

use super::auth::SaslExchange;
use super::read::Owned;
use super::{AuthRequest, Client, CommandId, Phase};
use crate::proto::codec::command::Command;
use crate::proto::error::Error;
use crate::proto::secret::Secret;

/// What a reply to a sent command should look like.
#[derive(Debug)]
pub(super) enum Expect {
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
pub(super) enum CapaPurpose {
    Caller,
    Negotiate,
}

#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) id: CommandId,
    pub(super) internal: bool,
    /// A transaction command: others may be pipelined behind it.
    pub(super) transaction: bool,
    pub(super) expect: Expect,
}

#[derive(Debug)]
pub(super) enum Queued {
    Command(Command, Expect),
    Authenticate(Box<AuthRequest>),
}

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) id: CommandId,
    pub(super) internal: bool,
    pub(super) item: Queued,
}

impl Client {
    pub(super) fn pipelining(&self) -> bool {
        self.options.pipelining
            && self.phase == Phase::Transaction
            && self.capabilities.pipelining()
    }

    pub(super) fn fill_window(&mut self) {
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
                let after_barrier = !last.transaction;
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
    pub(super) fn send(
        &mut self,
        id: CommandId,
        internal: bool,
        item: Queued,
    ) -> Result<(), Error> {
        let (command, expect) = match item {
            Queued::Command(command, expect) => {
                if command.needs_transaction() && self.phase != Phase::Transaction {
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
            transaction: command.needs_transaction(),
            expect,
        });
        Ok(())
    }
}

impl InFlight {
    pub(super) fn expect_name(&self) -> &'static str {
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

//! The command methods (each returns a [`CommandId`]) and the checks made when issuing one.

use alloc::boxed::Box;
use alloc::string::ToString;

use super::pipeline::{CapaPurpose, Expect, Pending, Queued};
use super::{AuthRequest, Client, CommandId, Phase, Security};
use crate::proto::codec::command::Command;
use crate::proto::error::{Error, PolicyError, UsageError};
use crate::proto::sasl::apop_digest;
use crate::proto::secret::Secret;
use crate::proto::types::{Capability, MessageNumber};

impl Client {
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

    /// `RETR n`: the body arrives as [`Event::Body`](crate::proto::Event::Body) chunks, then `Reply::Retrieved`.
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

    pub(super) fn command(&mut self, command: Command, expect: Expect) -> Result<CommandId, Error> {
        self.check_alive()?;
        command.validate()?;
        Ok(self.enqueue(Queued::Command(command, expect)))
    }

    pub(super) fn enqueue(&mut self, item: Queued) -> CommandId {
        let id = CommandId::new(self.next_id);
        self.next_id += 1;
        self.queue.push_back(Pending {
            id,
            internal: false,
            item,
        });
        id
    }

    pub(super) fn push_front_internal(&mut self, command: Command, expect: Expect) {
        // Internal commands are never reported, so they take no id from the caller's sequence.
        self.queue.push_front(Pending {
            id: CommandId::INTERNAL,
            internal: true,
            item: Queued::Command(command, expect),
        });
    }

    pub(super) fn transaction_command(
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

    pub(super) fn auth_pending(&self) -> bool {
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

    pub(super) fn require_authorization(&self, command: &'static str) -> Result<(), Error> {
        self.check_alive()?;
        let ok = matches!(self.phase, Phase::Authorization)
            || (self.phase == Phase::Greeting && self.options.negotiate);
        if ok {
            Ok(())
        } else {
            Err(self.wrong_state(command))
        }
    }

    pub(super) fn require_capability(
        &self,
        cap: &Capability,
        command: &'static str,
    ) -> Result<(), Error> {
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

    pub(super) fn require_tls_if_starttls(&self) -> Result<(), Error> {
        if self.options.security == Security::StartTls && !self.tls_active {
            return Err(PolicyError::TlsUnavailable("has not completed STLS").into());
        }
        Ok(())
    }

    pub(super) fn check_cleartext(&self, _command: &'static str) -> Result<(), Error> {
        self.require_tls_if_starttls()?;
        if self.tls_active || self.options.allow_cleartext_password {
            Ok(())
        } else {
            Err(PolicyError::CleartextForbidden.into())
        }
    }

    pub(super) fn wrong_state(&self, command: &'static str) -> Error {
        UsageError::WrongState {
            command,
            state: self.phase.name(),
        }
        .into()
    }
}

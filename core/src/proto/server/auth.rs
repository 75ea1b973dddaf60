//! Logging in: USER/PASS and APOP (RFC 1939), and AUTH (RFC 5034) with PLAIN (RFC 4616) and
//! SCRAM (RFC 5802, RFC 7677). Every failure is `-ERR [AUTH]` (RFC 3206) and the same for an
//! unknown user as for a wrong password, so replies do not reveal which users exist.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

use super::{LoginMethod, Mailbox, Maildrop, Server, ServerEvent, State};
use crate::proto::sasl::{Mechanism, SaslError, ScramServer, apop_digest, decode_plain};
use crate::proto::secret::Secret;
use crate::proto::types::ResponseCode;

/// An AUTH exchange waiting for the client's next line.
pub(super) enum SaslExchange {
    /// `+ ` was sent because AUTH came without an initial response.
    AwaitingInitial(Mechanism),
    /// SCRAM server-first was sent; client-final is due.
    ScramFinal {
        mechanism: Mechanism,
        server: ScramServer,
        user: String,
        /// False when the user does not exist: the exchange runs on with a dummy password so
        /// that it fails at the proof, like a wrong password.
        known: bool,
    },
    /// SCRAM server-final was sent; the client's empty response is due.
    ScramAck { mechanism: Mechanism, user: String },
}

const PLAINTEXT_REFUSED: &str = "plaintext authentication disallowed without TLS";

impl<M: Maildrop> Server<M> {
    /// USER/PASS and PLAIN are allowed: the connection is TLS, or the options say so.
    pub(super) fn cleartext_allowed(&self) -> bool {
        self.tls_active || self.options.allow_cleartext_password
    }

    /// The SASL mechanisms offered now, in the configured order.
    pub(super) fn offered_mechanisms(&self) -> Vec<Mechanism> {
        let mut offered: Vec<Mechanism> = Vec::new();
        for m in &self.options.mechanisms {
            let served = matches!(
                m,
                Mechanism::Plain | Mechanism::ScramSha1 | Mechanism::ScramSha256
            );
            if served
                && !offered.contains(m)
                && (!m.sends_cleartext_password() || self.cleartext_allowed())
            {
                offered.push(*m);
            }
        }
        offered
    }

    pub(super) fn user_command(&mut self, name: String) {
        if !self.cleartext_allowed() {
            return self.err(None, PLAINTEXT_REFUSED);
        }
        self.state = State::Authorization { user: Some(name) };
        self.ok("");
    }

    pub(super) fn pass_command(&mut self, password: Secret) {
        if !self.cleartext_allowed() {
            return self.err(None, PLAINTEXT_REFUSED);
        }
        let State::Authorization { user } = &mut self.state else {
            return;
        };
        let Some(user) = user.take() else {
            return self.err(None, "no USER given");
        };
        let valid = self
            .maildrop
            .password(&user)
            .is_some_and(|stored| same(stored.expose(), password.expose()));
        self.finish_login(valid, user, LoginMethod::UserPass);
    }

    pub(super) fn apop_command(&mut self, name: String, digest: &str) {
        let Some(stamp) = self.options.apop_timestamp.clone() else {
            return self.err(None, "APOP not available");
        };
        // APOP sends a digest, never the password, so it is allowed without TLS.
        let digest = digest.to_ascii_lowercase();
        let valid = self
            .maildrop
            .password(&name)
            .is_some_and(|p| same(apop_digest(&stamp, &p).as_bytes(), digest.as_bytes()));
        self.finish_login(valid, name, LoginMethod::Apop);
    }

    pub(super) fn auth_command(&mut self, mechanism: &str, initial: Option<Secret>) {
        let offered = self.offered_mechanisms();
        if mechanism.is_empty() {
            // Bare AUTH lists the mechanisms, as Dovecot and many clients expect.
            self.ok("");
            for m in offered {
                self.write_data_line(m.name().as_bytes());
            }
            self.out.extend_from_slice(b".\r\n");
            return;
        }
        let Some(mechanism) = Mechanism::from_name(mechanism).filter(|m| offered.contains(m))
        else {
            let refused_cleartext = Mechanism::from_name(mechanism).is_some_and(|m| {
                m.sends_cleartext_password() && self.options.mechanisms.contains(&m)
            });
            return self.err(
                None,
                if refused_cleartext {
                    PLAINTEXT_REFUSED
                } else {
                    "unsupported authentication mechanism"
                },
            );
        };
        match initial {
            None => {
                self.continuation(b"");
                self.state = State::Sasl(Box::new(SaslExchange::AwaitingInitial(mechanism)));
            }
            Some(response) => match decode_response(response.expose()) {
                Some(data) => self.sasl_initial(mechanism, &data),
                None => self.err(None, "invalid base64 in the initial response"),
            },
        }
    }

    /// A line while an AUTH exchange is open (the state was already reset to authorization).
    pub(super) fn sasl_line(&mut self, exchange: SaslExchange, line: &[u8]) {
        if line == b"*" {
            return self.err(None, "authentication cancelled");
        }
        let Some(data) = decode_response(line) else {
            return self.err(None, "invalid base64 in the SASL response");
        };
        match exchange {
            SaslExchange::AwaitingInitial(mechanism) => self.sasl_initial(mechanism, &data),
            SaslExchange::ScramFinal {
                mechanism,
                mut server,
                user,
                known,
            } => match server.client_final(&data) {
                Ok(server_final) if known => {
                    self.continuation(&server_final);
                    self.state = State::Sasl(Box::new(SaslExchange::ScramAck { mechanism, user }));
                }
                Ok(_) | Err(SaslError::AuthenticationFailed) => {
                    self.finish_login(false, user, LoginMethod::Sasl(mechanism));
                }
                Err(_) => self.malformed(Some(user), mechanism),
            },
            SaslExchange::ScramAck { mechanism, user } => {
                if data.is_empty() {
                    self.finish_login(true, user, LoginMethod::Sasl(mechanism));
                } else {
                    self.malformed(Some(user), mechanism);
                }
            }
        }
    }

    /// The mechanism's first client message.
    fn sasl_initial(&mut self, mechanism: Mechanism, data: &[u8]) {
        if mechanism == Mechanism::Plain {
            let Ok(message) = decode_plain(data) else {
                return self.malformed(None, mechanism);
            };
            let valid = message
                .authzid
                .as_ref()
                .is_none_or(|a| *a == message.authcid)
                && self
                    .maildrop
                    .password(&message.authcid)
                    .is_some_and(|p| same(p.expose(), message.password.expose()));
            return self.finish_login(valid, message.authcid, LoginMethod::Sasl(mechanism));
        }
        let nonce = Zeroizing::new(self.maildrop.scram_nonce());
        let mut server = match ScramServer::new(mechanism, &nonce) {
            Ok(server) => server,
            Err(_) => return self.err(Some(ResponseCode::SysTemp), "cannot start SCRAM"),
        };
        let user = match server.client_first(data) {
            Ok(user) => user,
            Err(_) => return self.malformed(None, mechanism),
        };
        if server.authzid().is_some_and(|a| a != user) {
            return self.finish_login(false, user, LoginMethod::Sasl(mechanism));
        }
        let (password, known) = match self.maildrop.password(&user) {
            Some(password) => (password, true),
            None => (Secret::new(nonce.as_bytes()), false),
        };
        let salt = self.maildrop.scram_salt(&user);
        match server.server_first(&password, &salt, self.options.scram_iterations) {
            Ok(server_first) => {
                self.continuation(&server_first);
                self.state = State::Sasl(Box::new(SaslExchange::ScramFinal {
                    mechanism,
                    server,
                    user,
                    known,
                }));
            }
            Err(_) => self.err(Some(ResponseCode::SysTemp), "SCRAM is misconfigured"),
        }
    }

    /// Opens the maildrop after valid credentials, or refuses with `-ERR [AUTH]`.
    fn finish_login(&mut self, valid: bool, user: String, method: LoginMethod) {
        self.state = State::Authorization { user: None };
        if !valid {
            self.err(Some(ResponseCode::Auth), "authentication failed");
            self.events.push_back(ServerEvent::AuthFailed {
                user: Some(user),
                method,
            });
            return;
        }
        match self.maildrop.open(&user) {
            Ok(messages) => {
                let deleted = alloc::vec![false; messages.len()];
                self.mailbox = Mailbox {
                    user: user.clone(),
                    messages,
                    deleted,
                };
                self.state = State::Transaction;
                self.ok("Logged in");
                self.events
                    .push_back(ServerEvent::LoggedIn { user, method });
            }
            Err(e) => {
                let text = alloc::string::ToString::to_string(&e);
                self.err(Some(e.code()), &text);
            }
        }
    }

    fn malformed(&mut self, user: Option<String>, mechanism: Mechanism) {
        self.err(None, "malformed SASL response");
        self.events.push_back(ServerEvent::AuthFailed {
            user,
            method: LoginMethod::Sasl(mechanism),
        });
    }

    /// `+ <base64>` (RFC 5034).
    fn continuation(&mut self, challenge: &[u8]) {
        self.out.extend_from_slice(b"+ ");
        self.out
            .extend_from_slice(BASE64.encode(challenge).as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }
}

/// A client's SASL line: base64, with `=` (or nothing) for an empty response.
fn decode_response(line: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if line.is_empty() || line == b"=" {
        return Some(Zeroizing::new(Vec::new()));
    }
    BASE64.decode(line).ok().map(Zeroizing::new)
}

/// Compares secrets in time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && core::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

//! Logging in: resolving an [`AuthRequest`] against the capabilities and the security
//! policy, SASL exchanges and APOP.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

use super::pipeline::Expect;
use super::read::Step;
use super::{AuthMethod, AuthRequest, Client, Credential, Phase};
use crate::proto::codec::command::{Command, MAX_COMMAND_LINE};
use crate::proto::error::{Error, PolicyError, ProtocolError};
use crate::proto::sasl::{Mechanism, SaslClient, SaslCredentials, apop_digest};
use crate::proto::secret::Secret;
use crate::proto::types::Capability;

#[derive(Debug)]
pub(super) struct SaslExchange {
    pub(super) client: SaslClient,
    /// The initial response, held back because the AUTH line would pass 255 octets.
    pub(super) deferred_initial: Option<Zeroizing<Vec<u8>>>,
    /// A local failure: we sent `*` and wait for the server's `-ERR`.
    pub(super) cancelled: Option<Error>,
}

impl Client {
    /// The greeting's APOP timestamp, if APOP may be used on this connection.
    pub(super) fn apop_timestamp(&self) -> Result<String, Error> {
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

    /// Turns an [`AuthRequest`] into its first command, applying the security policy.
    pub(super) fn resolve_auth(
        &mut self,
        request: AuthRequest,
    ) -> Result<(Command, Expect), Error> {
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
                    if line_len <= MAX_COMMAND_LINE && self.options.sasl_initial_response {
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

    pub(super) fn sasl_challenge(&mut self, payload: &[u8]) -> Result<Step, Error> {
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

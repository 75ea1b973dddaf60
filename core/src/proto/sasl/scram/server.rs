//! The server side of SCRAM, for popwire's server role: read client-first, send
//! server-first, check the proof in client-final, send server-final.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroizing;

use super::{
    Keys, ScramHash, attribute, b64_decode, b64_encode, check_iterations, check_own_nonce,
    is_nonce_text, xor,
};
use crate::proto::Secret;
use crate::proto::sasl::crypto::ct_eq;
use crate::proto::sasl::{Mechanism, SaslError, gs2};

/// Server side of SCRAM-SHA-1 / SCRAM-SHA-256, without channel binding.
///
/// Call [`client_first`](Self::client_first), look the returned user up, then
/// [`server_first`](Self::server_first) and [`client_final`](Self::client_final), sending
/// each returned message as a challenge.
///
/// ```
/// use popwire::proto::{Secret, sasl::{Mechanism, ScramServer}};
/// let mut server = ScramServer::new(Mechanism::ScramSha256, "3rfcNHYJY1ZVvWVs7j").unwrap();
/// let user = server.client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").unwrap();
/// assert_eq!(user, "user");
/// let challenge = server.server_first(&Secret::new("pencil"), b"salt", 4096).unwrap();
/// assert!(challenge.starts_with(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=c2FsdA==,i=4096"));
/// ```
pub struct ScramServer {
    hash: ScramHash,
    nonce: String,
    authzid: Option<String>,
    step: Step,
}

enum Step {
    AwaitClientFirst,
    AwaitServerFirst {
        gs2_header: String,
        client_first_bare: String,
        client_nonce: String,
    },
    AwaitClientFinal {
        gs2_header: String,
        /// client-first-message-bare "," server-first-message: the start of AuthMessage.
        auth_prefix: String,
        nonce: String,
        stored_key: Zeroizing<Vec<u8>>,
        server_key: Zeroizing<Vec<u8>>,
    },
    Done,
    /// An error happened; every later call fails.
    Failed,
}

impl ScramServer {
    /// Starts an exchange; `nonce` is the server's part (printable ASCII without `,`, at least
    /// 16 characters, from a CSPRNG).
    pub fn new(mechanism: Mechanism, nonce: &str) -> Result<Self, SaslError> {
        let hash = ScramHash::of(mechanism)?;
        check_own_nonce(nonce)?;
        Ok(Self {
            hash,
            nonce: nonce.into(),
            authzid: None,
            step: Step::AwaitClientFirst,
        })
    }

    /// Reads client-first-message and returns the user name, unescaped.
    pub fn client_first(&mut self, message: &[u8]) -> Result<String, SaslError> {
        let Step::AwaitClientFirst = core::mem::replace(&mut self.step, Step::Failed) else {
            return Err(SaslError::OutOfOrder);
        };
        let message = core::str::from_utf8(message)
            .map_err(|_| SaslError::MalformedResponse("client-first is not UTF-8"))?;
        let mut gs2_parts = message.splitn(3, ',');
        match gs2_parts.next() {
            // `y`: the client could bind but thinks we cannot; true, since we offer no -PLUS.
            Some("n" | "y") => {}
            Some(flag) if flag.starts_with("p=") => {
                return Err(SaslError::MalformedResponse(
                    "channel binding is not supported",
                ));
            }
            _ => return Err(SaslError::MalformedResponse("bad GS2 channel-binding flag")),
        }
        let authzid = match gs2_parts.next() {
            Some("") => None,
            Some(part) => Some(attribute(Some(part), 'a').and_then(gs2::unescape).ok_or(
                SaslError::MalformedResponse("bad GS2 authorization identity"),
            )?),
            None => return Err(SaslError::MalformedResponse("truncated GS2 header")),
        };
        let bare = gs2_parts
            .next()
            .ok_or(SaslError::MalformedResponse("truncated GS2 header"))?;
        let gs2_header = message
            .strip_suffix(bare)
            .ok_or(SaslError::MalformedResponse("truncated GS2 header"))?;

        let mut parts = bare.split(',');
        let first = parts.next();
        if attribute(first, 'm').is_some() {
            return Err(SaslError::MalformedResponse(
                "unsupported mandatory extension (m=)",
            ));
        }
        let user = attribute(first, 'n')
            .and_then(gs2::unescape)
            .filter(|u| !u.is_empty() && !u.chars().any(char::is_control))
            .ok_or(SaslError::MalformedResponse("bad user name (n=)"))?;
        let client_nonce = attribute(parts.next(), 'r')
            .filter(|n| is_nonce_text(n))
            .ok_or(SaslError::MalformedResponse("bad nonce (r=)"))?;

        self.authzid = authzid;
        self.step = Step::AwaitServerFirst {
            gs2_header: gs2_header.into(),
            client_first_bare: bare.into(),
            client_nonce: client_nonce.into(),
        };
        Ok(user)
    }

    /// The authorization identity the client asked for (`a=`), if any. A server must check
    /// that the authenticated user may act as it, or refuse.
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }

    /// Builds server-first-message for the user's password, salt and iteration count.
    pub fn server_first(
        &mut self,
        password: &Secret,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Vec<u8>, SaslError> {
        let Step::AwaitServerFirst {
            gs2_header,
            client_first_bare,
            client_nonce,
        } = core::mem::replace(&mut self.step, Step::Failed)
        else {
            return Err(SaslError::OutOfOrder);
        };
        check_iterations(iterations)?;
        if salt.is_empty() {
            return Err(SaslError::InvalidCredential("the SCRAM salt is empty"));
        }
        let nonce = alloc::format!("{client_nonce}{}", self.nonce);
        let server_first = alloc::format!("r={nonce},s={},i={iterations}", b64_encode(salt));
        let Keys {
            stored_key,
            server_key,
            ..
        } = Keys::derive(self.hash, password.expose(), salt, iterations);
        self.step = Step::AwaitClientFinal {
            gs2_header,
            auth_prefix: alloc::format!("{client_first_bare},{server_first}"),
            nonce,
            stored_key,
            server_key,
        };
        Ok(server_first.into_bytes())
    }

    /// Checks client-final-message's proof and returns server-final-message (`v=...`).
    /// [`SaslError::AuthenticationFailed`] means the password was wrong.
    pub fn client_final(&mut self, message: &[u8]) -> Result<Vec<u8>, SaslError> {
        let Step::AwaitClientFinal {
            gs2_header,
            auth_prefix,
            nonce,
            stored_key,
            server_key,
        } = core::mem::replace(&mut self.step, Step::Failed)
        else {
            return Err(SaslError::OutOfOrder);
        };
        let message = core::str::from_utf8(message)
            .map_err(|_| SaslError::MalformedResponse("client-final is not UTF-8"))?;
        // The proof is always last (RFC 5802 §7), and base64 has no commas.
        let (without_proof, proof) =
            message
                .rsplit_once(",p=")
                .ok_or(SaslError::MalformedResponse(
                    "client-final lacks the proof (p=)",
                ))?;
        let mut parts = without_proof.split(',');
        let binding = attribute(parts.next(), 'c')
            .and_then(b64_decode)
            .ok_or(SaslError::MalformedResponse("bad channel binding (c=)"))?;
        if binding != gs2_header.as_bytes() {
            return Err(SaslError::MalformedResponse(
                "channel binding does not match the GS2 header",
            ));
        }
        let client_nonce = attribute(parts.next(), 'r').ok_or(SaslError::MalformedResponse(
            "client-final lacks the nonce (r=)",
        ))?;
        if client_nonce != nonce {
            return Err(SaslError::NonceMismatch);
        }
        let proof = b64_decode(proof)
            .filter(|p| p.len() == self.hash.len())
            .ok_or(SaslError::MalformedResponse(
                "the proof is not base64 of the hash length",
            ))?;

        let auth_message: &[&[u8]] = &[auth_prefix.as_bytes(), b",", without_proof.as_bytes()];
        let client_signature = self.hash.hmac(&stored_key, auth_message);
        let client_key = xor(&proof, &client_signature);
        if !ct_eq(&self.hash.hash(&client_key), &stored_key) {
            return Err(SaslError::AuthenticationFailed);
        }
        let server_signature = self.hash.hmac(&server_key, auth_message);
        self.step = Step::Done;
        Ok(alloc::format!("v={}", b64_encode(&server_signature)).into_bytes())
    }
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match self.step {
            Step::AwaitClientFirst => "awaiting client-first",
            Step::AwaitServerFirst { .. } => "awaiting password lookup",
            Step::AwaitClientFinal { .. } => "awaiting client-final",
            Step::Done => "done",
            Step::Failed => "failed",
        };
        f.debug_struct("ScramServer")
            .field("hash", &self.hash)
            .field("step", &step)
            .finish_non_exhaustive()
    }
}

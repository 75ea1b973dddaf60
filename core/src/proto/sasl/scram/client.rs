//! The client side of SCRAM: client-first, then client-final with the proof, then checking
//! the server's signature.

use alloc::string::String;
use alloc::vec::Vec;
use zeroize::Zeroizing;

use super::{
    Keys, ScramHash, attribute, b64_decode, b64_encode, check_iterations, check_own_nonce, xor,
};
use crate::proto::Secret;
use crate::proto::sasl::crypto::{concat, ct_eq};
use crate::proto::sasl::{Mechanism, SaslError, gs2};

/// Client side of SCRAM-SHA-1 / SCRAM-SHA-256 without channel binding (GS2 flag `n`).
pub(in crate::proto::sasl) struct ScramClient {
    hash: ScramHash,
    password: Secret,
    gs2_header: String,
    client_first_bare: String,
    nonce: String,
    step: Step,
}

enum Step {
    AwaitServerFirst,
    AwaitServerFinal {
        server_signature: Zeroizing<Vec<u8>>,
    },
    Verified,
    /// An error happened; every later call fails.
    Failed,
}

impl ScramClient {
    /// `user` must already be checked for control characters; `nonce` is checked here.
    pub(in crate::proto::sasl) fn new(
        mechanism: Mechanism,
        authzid: Option<&str>,
        user: &str,
        password: &Secret,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        let hash = ScramHash::of(mechanism)?;
        check_own_nonce(nonce)?;
        Ok(Self {
            hash,
            password: password.clone(),
            gs2_header: gs2::header(authzid),
            client_first_bare: alloc::format!("n={},r={nonce}", gs2::escape(user)),
            nonce: nonce.into(),
            step: Step::AwaitServerFirst,
        })
    }

    /// client-first-message: the GS2 header, the user name and our nonce.
    pub(in crate::proto::sasl) fn initial(&self) -> Zeroizing<Vec<u8>> {
        concat(&[
            self.gs2_header.as_bytes(),
            self.client_first_bare.as_bytes(),
        ])
    }

    /// Answers server-first with client-final, then server-final with an empty response.
    pub(in crate::proto::sasl) fn respond(
        &mut self,
        challenge: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SaslError> {
        // Any error leaves the exchange failed, so `finish` cannot succeed after it.
        match core::mem::replace(&mut self.step, Step::Failed) {
            Step::AwaitServerFirst => {
                let ClientFinal {
                    message,
                    server_signature,
                } = self.client_final(challenge)?;
                self.step = Step::AwaitServerFinal { server_signature };
                Ok(message)
            }
            Step::AwaitServerFinal { server_signature } => {
                verify_server_final(challenge, &server_signature)?;
                self.step = Step::Verified;
                Ok(Zeroizing::new(Vec::new()))
            }
            Step::Verified | Step::Failed => Err(SaslError::UnexpectedChallenge),
        }
    }

    /// The login succeeded; only acceptable once the server has proved it knows the password.
    pub(in crate::proto::sasl) fn finish(&self) -> Result<(), SaslError> {
        match self.step {
            Step::Verified => Ok(()),
            _ => Err(SaslError::MissingServerSignature),
        }
    }

    pub(in crate::proto::sasl) fn step(&self) -> &'static str {
        match self.step {
            Step::AwaitServerFirst => "awaiting server-first",
            Step::AwaitServerFinal { .. } => "awaiting server-final",
            Step::Verified => "server verified",
            Step::Failed => "failed",
        }
    }

    /// Parses server-first and builds client-final.
    fn client_final(&self, server_first: &[u8]) -> Result<ClientFinal, SaslError> {
        let server_first = core::str::from_utf8(server_first)
            .map_err(|_| SaslError::MalformedChallenge("server-first is not UTF-8"))?;
        let mut parts = server_first.split(',');
        let first = parts.next();
        if let Some(error) = attribute(first, 'e') {
            return Err(SaslError::ServerReported(error.into()));
        }
        if attribute(first, 'm').is_some() {
            return Err(SaslError::MalformedChallenge(
                "unsupported mandatory extension (m=)",
            ));
        }
        let nonce = attribute(first, 'r').ok_or(SaslError::MalformedChallenge(
            "server-first lacks the nonce (r=)",
        ))?;
        let salt = attribute(parts.next(), 's').ok_or(SaslError::MalformedChallenge(
            "server-first lacks the salt (s=)",
        ))?;
        let iterations = attribute(parts.next(), 'i').ok_or(SaslError::MalformedChallenge(
            "server-first lacks the iteration count (i=)",
        ))?;
        // Anything after i= is an extension, which RFC 5802 §5.1 says to ignore.

        // The server must add its own part, or the exchange could be a replay.
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(self.nonce.as_str()) {
            return Err(SaslError::NonceMismatch);
        }
        if !super::is_nonce_text(nonce) {
            return Err(SaslError::MalformedChallenge(
                "the nonce is not printable ASCII",
            ));
        }
        let salt =
            b64_decode(salt)
                .filter(|s| !s.is_empty())
                .ok_or(SaslError::MalformedChallenge(
                    "the salt is not non-empty base64",
                ))?;
        let iterations = parse_iterations(iterations)?;
        check_iterations(iterations)?;

        let keys = Keys::derive(self.hash, self.password.expose(), &salt, iterations);
        let without_proof =
            alloc::format!("c={},r={nonce}", b64_encode(self.gs2_header.as_bytes()));
        let auth_message: &[&[u8]] = &[
            self.client_first_bare.as_bytes(),
            b",",
            server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = self.hash.hmac(&keys.stored_key, auth_message);
        let proof = xor(&keys.client_key, &client_signature);
        let server_signature = self.hash.hmac(&keys.server_key, auth_message);
        let proof = Zeroizing::new(b64_encode(&proof));
        let message = concat(&[without_proof.as_bytes(), b",p=", proof.as_bytes()]);
        Ok(ClientFinal {
            message,
            server_signature,
        })
    }
}

/// client-final-message, and the ServerSignature the server must answer with.
struct ClientFinal {
    message: Zeroizing<Vec<u8>>,
    server_signature: Zeroizing<Vec<u8>>,
}

/// Checks server-final: `v=<signature>` matching ours, or `e=<error>`.
fn verify_server_final(server_final: &[u8], expected: &[u8]) -> Result<(), SaslError> {
    let server_final = core::str::from_utf8(server_final)
        .map_err(|_| SaslError::MalformedChallenge("server-final is not UTF-8"))?;
    let first = server_final.split(',').next();
    if let Some(error) = attribute(first, 'e') {
        return Err(SaslError::ServerReported(error.into()));
    }
    let signature = attribute(first, 'v').ok_or(SaslError::MalformedChallenge(
        "server-final lacks the signature (v=)",
    ))?;
    let signature = b64_decode(signature).ok_or(SaslError::MalformedChallenge(
        "the server signature is not base64",
    ))?;
    if ct_eq(&signature, expected) {
        Ok(())
    } else {
        Err(SaslError::ServerSignatureMismatch)
    }
}

/// Parses `i=`'s value: ASCII digits only (`str::parse` would also take a leading `+`).
fn parse_iterations(text: &str) -> Result<u32, SaslError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SaslError::MalformedChallenge(
            "the iteration count is not a number",
        ));
    }
    text.parse()
        .map_err(|_| SaslError::MalformedChallenge("the iteration count is out of range"))
}

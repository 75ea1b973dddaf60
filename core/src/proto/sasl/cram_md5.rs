//! CRAM-MD5 (RFC 2195): the user name and an HMAC-MD5 of the server's challenge.

use alloc::string::String;
use alloc::vec::Vec;
use hmac::Hmac;
use md5::Md5;
use zeroize::Zeroizing;

use super::SaslError;
use super::crypto::{concat, hex_lower, hmac};
use crate::proto::Secret;

/// The CRAM-MD5 response: `user`, a space, and the lowercase hex HMAC-MD5 of `challenge`
/// keyed with the password. The server role computes the same to check a client.
///
/// ```
/// use popwire::proto::{Secret, sasl::cram_md5_response};
/// let r = cram_md5_response(
///     "tim",
///     &Secret::new("tanstaaftanstaaf"),
///     b"<1896.697170952@postoffice.reston.mci.net>",
/// );
/// assert_eq!(r.as_slice(), b"tim b913a602c7eda7a495b4e6e7334d3890");
/// ```
pub fn cram_md5_response(user: &str, secret: &Secret, challenge: &[u8]) -> Zeroizing<Vec<u8>> {
    let digest = hmac::<Hmac<Md5>>(secret.expose(), &[challenge]);
    let hex = Zeroizing::new(hex_lower(&digest));
    concat(&[user.as_bytes(), b" ", hex.as_bytes()])
}

/// Client side of CRAM-MD5: one challenge, one response.
pub(super) struct CramMd5Client {
    user: String,
    password: Secret,
    answered: bool,
}

impl CramMd5Client {
    pub(super) fn new(user: &str, password: &Secret) -> Self {
        Self {
            user: user.into(),
            password: password.clone(),
            answered: false,
        }
    }

    pub(super) fn respond(&mut self, challenge: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
        if self.answered {
            return Err(SaslError::UnexpectedChallenge);
        }
        // An empty challenge would make the HMAC a fixed value, replayable forever.
        if challenge.is_empty() {
            return Err(SaslError::MalformedChallenge("empty CRAM-MD5 challenge"));
        }
        self.answered = true;
        Ok(cram_md5_response(&self.user, &self.password, challenge))
    }

    pub(super) fn step(&self) -> &'static str {
        if self.answered {
            "answered"
        } else {
            "awaiting challenge"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2195_example() {
        let mut c = CramMd5Client::new("tim", &Secret::new("tanstaaftanstaaf"));
        let r = c.respond(b"<1896.697170952@postoffice.reston.mci.net>");
        assert_eq!(
            r.as_deref().map(Vec::as_slice),
            Ok(&b"tim b913a602c7eda7a495b4e6e7334d3890"[..])
        );
        assert_eq!(c.respond(b"<again>"), Err(SaslError::UnexpectedChallenge));
    }

    #[test]
    fn empty_challenge_is_refused() {
        let mut c = CramMd5Client::new("tim", &Secret::new("x"));
        assert!(matches!(
            c.respond(b""),
            Err(SaslError::MalformedChallenge(_))
        ));
    }
}

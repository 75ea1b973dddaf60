//! The OAuth 2.0 bearer-token mechanisms: XOAUTH2 (Google, Microsoft) and OAUTHBEARER
//! (RFC 7628). Both send the token in the initial response; a challenge means failure.

use alloc::string::String;
use alloc::vec::Vec;
use zeroize::Zeroizing;

use super::crypto::concat;
use super::{SaslError, gs2};
use crate::proto::Secret;

/// Refuses tokens that could break out of the `\x01`-separated fields. Bearer tokens
/// (RFC 6750 `b64token`) are visible ASCII, so nothing legitimate is lost.
fn check_token(token: &Secret) -> Result<(), SaslError> {
    let bytes = token.expose();
    if bytes.is_empty() {
        return Err(SaslError::InvalidCredential("the access token is empty"));
    }
    if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(SaslError::InvalidCredential(
            "the access token must be visible ASCII (RFC 6750)",
        ));
    }
    Ok(())
}

/// Client side of XOAUTH2: `user=U\x01auth=Bearer T\x01\x01`.
pub(super) struct XOAuth2Client {
    user: String,
    token: Secret,
    failed: bool,
}

impl XOAuth2Client {
    pub(super) fn new(user: &str, token: &Secret) -> Result<Self, SaslError> {
        check_token(token)?;
        Ok(Self {
            user: user.into(),
            token: token.clone(),
            failed: false,
        })
    }

    pub(super) fn initial(&self) -> Zeroizing<Vec<u8>> {
        concat(&[
            b"user=",
            self.user.as_bytes(),
            b"\x01auth=Bearer ",
            self.token.expose(),
            b"\x01\x01",
        ])
    }

    /// The only challenge XOAUTH2 defines is a JSON error; an empty response lets the server
    /// finish with `-ERR`.
    pub(super) fn respond(&mut self, _challenge: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
        if self.failed {
            return Err(SaslError::UnexpectedChallenge);
        }
        self.failed = true;
        Ok(Zeroizing::new(Vec::new()))
    }

    pub(super) fn step(&self) -> &'static str {
        if self.failed {
            "error acknowledged"
        } else {
            "token sent"
        }
    }
}

/// Client side of OAUTHBEARER:
/// `n,a=U,\x01host=H\x01port=P\x01auth=Bearer T\x01\x01`.
pub(super) struct OAuthBearerClient {
    gs2_header: String,
    host: Option<String>,
    port: Option<u16>,
    token: Secret,
    failed: bool,
}

impl OAuthBearerClient {
    /// `user` goes in the GS2 `a=` field; `host` and `port` are sent only when given.
    pub(super) fn new(
        user: &str,
        token: &Secret,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<Self, SaslError> {
        check_token(token)?;
        let host = host.filter(|h| !h.is_empty());
        if host.is_some_and(|h| h.chars().any(char::is_control)) {
            return Err(SaslError::InvalidCredential(
                "the host name contains a control character",
            ));
        }
        Ok(Self {
            gs2_header: gs2::header(Some(user)),
            host: host.map(String::from),
            port,
            token: token.clone(),
            failed: false,
        })
    }

    pub(super) fn initial(&self) -> Zeroizing<Vec<u8>> {
        let host = self
            .host
            .as_ref()
            .map(|h| alloc::format!("host={h}\x01"))
            .unwrap_or_default();
        let port = self
            .port
            .map(|p| alloc::format!("port={p}\x01"))
            .unwrap_or_default();
        concat(&[
            self.gs2_header.as_bytes(),
            b"\x01",
            host.as_bytes(),
            port.as_bytes(),
            b"auth=Bearer ",
            self.token.expose(),
            b"\x01\x01",
        ])
    }

    /// A challenge carries the JSON error; RFC 7628 §3.2.3 has the client answer `\x01`.
    pub(super) fn respond(&mut self, _challenge: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
        if self.failed {
            return Err(SaslError::UnexpectedChallenge);
        }
        self.failed = true;
        Ok(concat(&[b"\x01"]))
    }

    pub(super) fn step(&self) -> &'static str {
        if self.failed {
            "error acknowledged"
        } else {
            "token sent"
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn xoauth2_exact_bytes() {
        let mut c = XOAuth2Client::new(
            "someuser@example.com",
            &Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
        )
        .unwrap();
        assert_eq!(
            c.initial().as_slice(),
            &b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"[..]
        );
        assert_eq!(c.respond(br#"{"status":"401"}"#).unwrap().as_slice(), b"");
        assert_eq!(c.respond(b"again"), Err(SaslError::UnexpectedChallenge));
    }

    #[test]
    fn oauthbearer_exact_bytes() {
        // RFC 7628 §4.1, with host and port.
        let token = Secret::new("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
        let mut c = OAuthBearerClient::new(
            "user@example.com",
            &token,
            Some("server.example.com"),
            Some(143),
        )
        .unwrap();
        assert_eq!(
            c.initial().as_slice(),
            &b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"[..]
        );
        assert_eq!(
            c.respond(br#"{"status":"invalid_token"}"#)
                .unwrap()
                .as_slice(),
            b"\x01"
        );
        assert_eq!(c.respond(b"again"), Err(SaslError::UnexpectedChallenge));

        // Without host and port, and with a user name that needs GS2 escaping.
        let c = OAuthBearerClient::new("a,b=c", &token, None, None).unwrap();
        assert_eq!(
            c.initial().as_slice(),
            &b"n,a=a=2Cb=3Dc,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"[..]
        );
    }

    #[test]
    fn tokens_that_could_inject_fields_are_refused() {
        for bad in ["", "tok\x01en", "tok en", "tök"] {
            assert!(matches!(
                XOAuth2Client::new("u", &Secret::new(bad)),
                Err(SaslError::InvalidCredential(_))
            ));
        }
    }
}

//! [`SaslClient`]: one client-side SASL exchange, whichever the mechanism.

use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroizing;

use super::cram_md5::CramMd5Client;
use super::login::LoginClient;
use super::oauth::{OAuthBearerClient, XOAuth2Client};
use super::plain::PlainClient;
use super::scram::ScramClient;
use super::{Mechanism, SaslError};
use crate::proto::Secret;

/// Who is logging in, and with what.
#[derive(Debug, Clone, Copy)]
pub struct SaslCredentials<'a> {
    /// The user name (authentication identity).
    pub authcid: &'a str,
    /// The identity to act as, when it differs from `authcid`; usually `None`. An empty
    /// string counts as `None`. OAUTHBEARER sends it instead of `authcid` when given.
    pub authzid: Option<&'a str>,
    /// The password, or the OAuth access token for XOAUTH2 and OAUTHBEARER.
    pub secret: &'a Secret,
    /// The server's host name, sent by OAUTHBEARER (`host=`) when given.
    pub host: Option<&'a str>,
    /// The server's port, sent by OAUTHBEARER (`port=`) when given.
    pub port: Option<u16>,
}

/// The client side of one SASL exchange.
///
/// The engine sends `AUTH <mechanism>` with the [`initial_response`](Self::initial_response)
/// (if any), feeds each decoded `+ ` challenge to [`respond`](Self::respond), and calls
/// [`finish`](Self::finish) on `+OK`. `Debug` shows the mechanism and step, never a secret.
///
/// ```
/// use popwire::proto::{Secret, sasl::{Mechanism, SaslClient, SaslCredentials}};
/// let secret = Secret::new("tanstaaf");
/// let creds = SaslCredentials { authcid: "tim", authzid: None, secret: &secret, host: None, port: None };
/// let mut client = SaslClient::new(Mechanism::Plain, &creds, "").unwrap();
/// assert_eq!(client.initial_response().unwrap().as_slice(), b"\0tim\0tanstaaf");
/// client.finish().unwrap();
/// ```
pub struct SaslClient {
    mechanism: Mechanism,
    exchange: Exchange,
    /// Set by the first challenge. Until then an empty challenge asks for the initial
    /// response: RFC 4422 §5, and RFC 5034 §4 when it would overflow the 255-octet line.
    challenged: bool,
}

enum Exchange {
    Plain(PlainClient),
    Login(LoginClient),
    CramMd5(CramMd5Client),
    Scram(ScramClient),
    XOAuth2(XOAuth2Client),
    OAuthBearer(OAuthBearerClient),
}

impl SaslClient {
    /// Prepares an exchange, refusing credentials the mechanism cannot carry.
    ///
    /// `nonce` is used by SCRAM only (pass anything otherwise): at least 16 printable ASCII
    /// characters (0x21..=0x7E) other than `,`, from a CSPRNG, because the engine has none.
    ///
    /// User names are checked with the ASCII part of SASLprep only: control characters are
    /// refused, non-ASCII text is sent unnormalized.
    pub fn new(
        mechanism: Mechanism,
        credentials: &SaslCredentials<'_>,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        let user = credentials.authcid;
        let authzid = credentials.authzid.filter(|a| !a.is_empty());
        let secret = credentials.secret;
        if user.is_empty() {
            return Err(SaslError::InvalidCredential("the user name is empty"));
        }
        if user.chars().any(char::is_control) {
            return Err(SaslError::InvalidCredential(
                "the user name contains a control character",
            ));
        }
        if authzid.is_some_and(|a| a.chars().any(char::is_control)) {
            return Err(SaslError::InvalidCredential(
                "the authorization identity contains a control character",
            ));
        }
        let exchange = match mechanism {
            Mechanism::Plain => Exchange::Plain(PlainClient::new(authzid, user, secret)?),
            Mechanism::Login => Exchange::Login(LoginClient::new(user, secret)),
            Mechanism::CramMd5 => Exchange::CramMd5(CramMd5Client::new(user, secret)),
            Mechanism::ScramSha1 | Mechanism::ScramSha256 => {
                Exchange::Scram(ScramClient::new(mechanism, authzid, user, secret, nonce)?)
            }
            Mechanism::XOAuth2 => Exchange::XOAuth2(XOAuth2Client::new(user, secret)?),
            Mechanism::OAuthBearer => Exchange::OAuthBearer(OAuthBearerClient::new(
                authzid.unwrap_or(user),
                secret,
                credentials.host,
                credentials.port,
            )?),
        };
        Ok(Self {
            mechanism,
            exchange,
            challenged: false,
        })
    }

    /// The mechanism this exchange speaks.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The raw (not base64) initial response of a client-first mechanism; `None` for the
    /// others and once a challenge has arrived. May be empty (sent as `=`).
    ///
    /// Calling it more than once returns the same bytes, so the engine may measure it
    /// against the 255-octet command limit and, if too long, send `AUTH <mechanism>` alone
    /// and answer the server's empty challenge through [`respond`](Self::respond).
    pub fn initial_response(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        if self.challenged {
            return None;
        }
        match &self.exchange {
            Exchange::Plain(c) => Some(c.initial()),
            Exchange::Scram(c) => Some(c.initial()),
            Exchange::XOAuth2(c) => Some(c.initial()),
            Exchange::OAuthBearer(c) => Some(c.initial()),
            Exchange::Login(_) | Exchange::CramMd5(_) => None,
        }
    }

    /// Takes a decoded server challenge and returns the raw response to send.
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
        let first = !self.challenged;
        if first
            && challenge.is_empty()
            && let Some(initial) = self.initial_response()
        {
            self.challenged = true;
            return Ok(initial);
        }
        self.challenged = true;
        match &mut self.exchange {
            Exchange::Plain(c) => c.respond(challenge),
            Exchange::Login(c) => c.respond(challenge),
            Exchange::CramMd5(c) => c.respond(challenge),
            Exchange::Scram(c) => c.respond(challenge),
            Exchange::XOAuth2(c) => c.respond(challenge),
            Exchange::OAuthBearer(c) => c.respond(challenge),
        }
    }

    /// The server said `+OK`. For SCRAM this is an error unless the server's signature
    /// arrived (as a last challenge) and was verified: a server that skips it has not proved
    /// it knows the password.
    pub fn finish(&mut self) -> Result<(), SaslError> {
        match &self.exchange {
            Exchange::Scram(c) => c.finish(),
            _ => Ok(()),
        }
    }

    /// Where the exchange stands, for `Debug`.
    fn step(&self) -> &'static str {
        match &self.exchange {
            Exchange::Scram(c) => c.step(),
            Exchange::Login(c) => c.step(),
            Exchange::CramMd5(c) => c.step(),
            Exchange::XOAuth2(c) => c.step(),
            Exchange::OAuthBearer(c) => c.step(),
            Exchange::Plain(_) if self.challenged => "challenged",
            Exchange::Plain(_) => "ready",
        }
    }
}

impl fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslClient")
            .field("mechanism", &self.mechanism)
            .field("step", &self.step())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::format;

    const NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";

    fn client(mechanism: Mechanism, user: &str, secret: &Secret) -> Result<SaslClient, SaslError> {
        let creds = SaslCredentials {
            authcid: user,
            authzid: None,
            secret,
            host: None,
            port: None,
        };
        SaslClient::new(mechanism, &creds, NONCE)
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::new("hunter2-pencil");
        for m in Mechanism::ALL {
            let mut c = client(m, "tim", &secret).unwrap();
            let _ = c.initial_response();
            let _ = c.respond(b"<1.2@host>");
            let shown = format!("{c:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(&format!("{m:?}")), "{shown}");
        }
    }

    #[test]
    fn plain_through_the_client() {
        let secret = Secret::new("tanstaaf");
        let creds = SaslCredentials {
            authcid: "tim",
            authzid: Some("admin"),
            secret: &secret,
            host: None,
            port: None,
        };
        let mut c = SaslClient::new(Mechanism::Plain, &creds, "").unwrap();
        assert_eq!(c.mechanism(), Mechanism::Plain);
        assert_eq!(
            c.initial_response().unwrap().as_slice(),
            b"admin\0tim\0tanstaaf"
        );
        // A second call gives the same bytes; the engine may measure first.
        assert_eq!(
            c.initial_response().unwrap().as_slice(),
            b"admin\0tim\0tanstaaf"
        );
        assert_eq!(c.respond(b"more?"), Err(SaslError::UnexpectedChallenge));
        assert!(c.finish().is_ok());
    }

    #[test]
    fn empty_first_challenge_asks_for_the_initial_response() {
        let secret = Secret::new("tanstaaf");
        let mut c = client(Mechanism::Plain, "tim", &secret).unwrap();
        assert_eq!(c.respond(b"").unwrap().as_slice(), b"\0tim\0tanstaaf");
        assert_eq!(c.initial_response(), None);
        assert_eq!(c.respond(b""), Err(SaslError::UnexpectedChallenge));
    }

    #[test]
    fn login_through_the_client() {
        let secret = Secret::new("tanstaaf");
        let mut c = client(Mechanism::Login, "tim", &secret).unwrap();
        assert_eq!(c.initial_response(), None);
        assert_eq!(c.respond(b"Username:").unwrap().as_slice(), b"tim");
        assert_eq!(c.respond(b"Password:").unwrap().as_slice(), b"tanstaaf");
        assert!(c.finish().is_ok());
    }

    #[test]
    fn cram_md5_through_the_client() {
        let secret = Secret::new("tanstaaftanstaaf");
        let mut c = client(Mechanism::CramMd5, "tim", &secret).unwrap();
        assert_eq!(c.initial_response(), None);
        let r = c
            .respond(b"<1896.697170952@postoffice.reston.mci.net>")
            .unwrap();
        assert_eq!(r.as_slice(), b"tim b913a602c7eda7a495b4e6e7334d3890");
    }

    #[test]
    fn oauthbearer_uses_authzid_host_and_port() {
        let token = Secret::new("tok");
        let creds = SaslCredentials {
            authcid: "me",
            authzid: Some("boss@example.com"),
            secret: &token,
            host: Some("pop.example.com"),
            port: Some(995),
        };
        let mut c = SaslClient::new(Mechanism::OAuthBearer, &creds, "").unwrap();
        assert_eq!(
            c.initial_response().unwrap().as_slice(),
            b"n,a=boss@example.com,\x01host=pop.example.com\x01port=995\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            c.respond(b"{\"status\":\"invalid_token\"}")
                .unwrap()
                .as_slice(),
            b"\x01"
        );
    }

    #[test]
    fn xoauth2_through_the_client() {
        let token = Secret::new("tok");
        let mut c = client(Mechanism::XOAuth2, "me@example.com", &token).unwrap();
        assert_eq!(
            c.initial_response().unwrap().as_slice(),
            b"user=me@example.com\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(c.respond(b"{\"status\":\"400\"}").unwrap().as_slice(), b"");
    }

    #[test]
    fn refuses_bad_user_names_for_every_mechanism() {
        let secret = Secret::new("tok");
        for m in Mechanism::ALL {
            for user in ["", "ti\0m", "tim\r\n", "t\u{7f}", "t\u{85}"] {
                assert!(
                    matches!(
                        client(m, user, &secret),
                        Err(SaslError::InvalidCredential(_))
                    ),
                    "{m} {user:?}"
                );
            }
            // Non-ASCII passes through unchanged.
            assert!(client(m, "tïm", &secret).is_ok(), "{m}");
        }
    }

    #[test]
    fn scram_requires_a_good_nonce_and_others_ignore_it() {
        let secret = Secret::new("pencil");
        let creds = SaslCredentials {
            authcid: "user",
            authzid: None,
            secret: &secret,
            host: None,
            port: None,
        };
        for bad in [
            "",
            "short",
            "has,comma-in-it-xxxxxxxx",
            "has space in it xxxxxxxx",
            "nön-ascii-nonce-xxxxxxx",
        ] {
            assert_eq!(
                SaslClient::new(Mechanism::ScramSha256, &creds, bad).err(),
                Some(SaslError::InvalidNonce),
                "{bad:?}"
            );
            assert!(SaslClient::new(Mechanism::Plain, &creds, bad).is_ok());
        }
    }

    #[test]
    fn error_messages_never_contain_the_secret() {
        let secret = Secret::new("s3cr3t\0");
        let err = client(Mechanism::Plain, "tim", &secret).err().unwrap();
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
    }
}

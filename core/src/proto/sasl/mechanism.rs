//! The SASL mechanisms popwire speaks, their IANA names, and how they rank.

use core::fmt;

/// A SASL mechanism, as offered in the `SASL` capability (RFC 5034).
///
/// ```
/// use popwire::proto::sasl::Mechanism;
/// let best = Mechanism::strongest(["PLAIN", "scram-sha-1", "X-UNKNOWN"], false);
/// assert_eq!(best, Some(Mechanism::ScramSha1));
/// assert_eq!(Mechanism::from_name("cram-md5"), Some(Mechanism::CramMd5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): the password in the clear.
    Plain,
    /// `LOGIN` (draft-murchison-sasl-login): user name, then password, in the clear.
    Login,
    /// `CRAM-MD5` (RFC 2195): HMAC-MD5 challenge-response.
    CramMd5,
    /// `SCRAM-SHA-1` (RFC 5802): salted challenge-response, mutual authentication.
    ScramSha1,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `XOAUTH2` (Google, Microsoft): an OAuth 2.0 bearer token.
    XOAuth2,
    /// `OAUTHBEARER` (RFC 7628): the standard form of an OAuth 2.0 bearer token.
    OAuthBearer,
}

impl Mechanism {
    /// Every mechanism, in declaration order.
    pub const ALL: [Mechanism; 7] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
        Mechanism::XOAuth2,
        Mechanism::OAuthBearer,
    ];

    /// The registered name, as sent in `AUTH <name>`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Looks a name up, ignoring ASCII case (SASL names are case-insensitive in practice).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// True for the mechanisms that take an OAuth access token instead of a password.
    pub fn uses_token(self) -> bool {
        matches!(self, Mechanism::XOAuth2 | Mechanism::OAuthBearer)
    }

    /// True for the mechanisms that put the password on the wire readable by anyone who can
    /// see the connection, so they need TLS.
    pub fn sends_cleartext_password(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }

    /// True when the client speaks first (the mechanism has an initial response).
    pub fn client_first(self) -> bool {
        !matches!(self, Mechanism::Login | Mechanism::CramMd5)
    }

    /// Rank for choosing the strongest offered mechanism; higher is better. Password
    /// mechanisms and token mechanisms are ranked separately, since one never replaces the
    /// other.
    pub fn strength(self) -> u8 {
        match self {
            Mechanism::Login => 1,
            Mechanism::Plain => 2,
            Mechanism::CramMd5 => 3,
            Mechanism::ScramSha1 => 4,
            Mechanism::ScramSha256 => 5,
            Mechanism::XOAuth2 => 1,
            Mechanism::OAuthBearer => 2,
        }
    }

    /// The strongest of the `offered` names usable with a token (`token = true`) or a
    /// password (`token = false`). Unknown names are ignored.
    pub fn strongest<'a>(offered: impl IntoIterator<Item = &'a str>, token: bool) -> Option<Self> {
        offered
            .into_iter()
            .filter_map(Self::from_name)
            .filter(|m| m.uses_token() == token)
            .max_by_key(|m| m.strength())
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(
                Mechanism::from_name(&m.name().to_ascii_lowercase()),
                Some(m)
            );
            assert_eq!(alloc::format!("{m}"), m.name());
        }
        assert_eq!(Mechanism::from_name("GSSAPI"), None);
        assert_eq!(Mechanism::from_name(""), None);
    }

    #[test]
    fn strongest_password_mechanism() {
        let offered = [
            "LOGIN",
            "PLAIN",
            "CRAM-MD5",
            "SCRAM-SHA-1",
            "SCRAM-SHA-256",
            "XOAUTH2",
        ];
        assert_eq!(
            Mechanism::strongest(offered, false),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(
            Mechanism::strongest(["LOGIN", "PLAIN"], false),
            Some(Mechanism::Plain)
        );
        assert_eq!(
            Mechanism::strongest(["PLAIN", "CRAM-MD5"], false),
            Some(Mechanism::CramMd5)
        );
        assert_eq!(Mechanism::strongest(["XOAUTH2", "NTLM"], false), None);
        assert_eq!(Mechanism::strongest([], false), None);
    }

    #[test]
    fn strongest_token_mechanism() {
        let offered = ["PLAIN", "XOAUTH2", "oauthbearer"];
        assert_eq!(
            Mechanism::strongest(offered, true),
            Some(Mechanism::OAuthBearer)
        );
        assert_eq!(
            Mechanism::strongest(["XOAUTH2"], true),
            Some(Mechanism::XOAuth2)
        );
        assert_eq!(Mechanism::strongest(["SCRAM-SHA-256"], true), None);
    }

    #[test]
    fn flags() {
        use Mechanism::*;
        assert!(Plain.client_first() && !Login.client_first() && !CramMd5.client_first());
        assert!(ScramSha1.client_first() && XOAuth2.client_first() && OAuthBearer.client_first());
        assert!(Plain.sends_cleartext_password() && Login.sends_cleartext_password());
        assert!(!CramMd5.sends_cleartext_password() && !ScramSha256.sends_cleartext_password());
        assert!(XOAuth2.uses_token() && OAuthBearer.uses_token() && !Plain.uses_token());
    }
}

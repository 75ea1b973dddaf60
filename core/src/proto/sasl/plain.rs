//! PLAIN (RFC 4616): `[authzid] NUL authcid NUL password`, in one message.

use alloc::string::String;
use alloc::vec::Vec;
use zeroize::Zeroizing;

use super::SaslError;
use super::crypto::concat;
use crate::proto::Secret;

/// A decoded PLAIN message, for the server role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainMessage {
    /// The identity to act as, when the client asked for one other than its own.
    pub authzid: Option<String>,
    /// The user name whose password follows.
    pub authcid: String,
    /// The password.
    pub password: Secret,
}

/// Decodes a client's (already base64-decoded) PLAIN message.
///
/// ```
/// use popwire::proto::sasl::decode_plain;
/// let m = decode_plain(b"\0tim\0tanstaaf").unwrap();
/// assert_eq!((m.authzid, m.authcid.as_str()), (None, "tim"));
/// assert_eq!(m.password.expose(), b"tanstaaf");
/// ```
pub fn decode_plain(message: &[u8]) -> Result<PlainMessage, SaslError> {
    let mut fields = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::MalformedResponse(
            "PLAIN needs exactly three NUL-separated fields",
        ));
    };
    let text = |field: &[u8]| {
        core::str::from_utf8(field)
            .map(String::from)
            .map_err(|_| SaslError::MalformedResponse("PLAIN identity is not UTF-8"))
    };
    if authcid.is_empty() {
        return Err(SaslError::MalformedResponse("PLAIN user name is empty"));
    }
    if password.is_empty() {
        return Err(SaslError::MalformedResponse("PLAIN password is empty"));
    }
    Ok(PlainMessage {
        authzid: if authzid.is_empty() {
            None
        } else {
            Some(text(authzid)?)
        },
        authcid: text(authcid)?,
        password: Secret::new(password),
    })
}

/// Client side of PLAIN: everything goes in the initial response.
pub(super) struct PlainClient {
    authzid: Option<String>,
    authcid: String,
    password: Secret,
}

impl PlainClient {
    pub(super) fn new(
        authzid: Option<&str>,
        authcid: &str,
        password: &Secret,
    ) -> Result<Self, SaslError> {
        // NUL separates the fields; the names were already checked for control characters.
        if password.expose().contains(&0) {
            return Err(SaslError::InvalidCredential(
                "the password contains a NUL byte",
            ));
        }
        Ok(Self {
            authzid: authzid.map(String::from),
            authcid: authcid.into(),
            password: password.clone(),
        })
    }

    pub(super) fn initial(&self) -> Zeroizing<Vec<u8>> {
        let authzid = self.authzid.as_deref().unwrap_or_default();
        concat(&[
            authzid.as_bytes(),
            b"\0",
            self.authcid.as_bytes(),
            b"\0",
            self.password.expose(),
        ])
    }

    pub(super) fn respond(&mut self, _challenge: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
        Err(SaslError::UnexpectedChallenge)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn encodes_and_decodes() {
        let pw = Secret::new("pa ss");
        let c = PlainClient::new(None, "tim", &pw).unwrap();
        assert_eq!(c.initial().as_slice(), b"\0tim\0pa ss");
        let m = decode_plain(&c.initial()).unwrap();
        assert_eq!(
            m,
            PlainMessage {
                authzid: None,
                authcid: "tim".into(),
                password: pw.clone()
            }
        );

        let c = PlainClient::new(Some("admin"), "tim", &pw).unwrap();
        assert_eq!(c.initial().as_slice(), b"admin\0tim\0pa ss");
        assert_eq!(
            decode_plain(&c.initial()).unwrap().authzid.as_deref(),
            Some("admin")
        );
    }

    #[test]
    fn refuses_nul_in_password() {
        let r = PlainClient::new(None, "tim", &Secret::new("a\0b"));
        assert!(matches!(r, Err(SaslError::InvalidCredential(_))));
    }

    #[test]
    fn decode_rejects_malformed() {
        for bad in [
            &b""[..],
            b"\0tim",
            b"\0tim\0pw\0",
            b"\0\0pw",
            b"\0tim\0",
            b"\0\xff\0pw",
        ] {
            assert!(
                matches!(decode_plain(bad), Err(SaslError::MalformedResponse(_))),
                "{bad:?}"
            );
        }
    }
}

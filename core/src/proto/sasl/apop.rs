//! APOP (RFC 1939 §7): the pre-SASL digest login, kept in this module because it is one more
//! way of proving the password.

use alloc::string::String;
use md5::{Digest, Md5};

use super::crypto::hex_lower;
use crate::proto::Secret;

/// The APOP digest: lowercase hex MD5 of the server's greeting timestamp (angle brackets
/// included) followed by the password.
///
/// ```
/// use popwire::proto::{Secret, sasl::apop_digest};
/// let digest = apop_digest("<1896.697170952@dbc.mtview.ca.us>", &Secret::new("tanstaaf"));
/// assert_eq!(digest, "c4c9334bac560ecc979e58001b3e22fb");
/// ```
pub fn apop_digest(timestamp: &str, secret: &Secret) -> String {
    let mut md5 = Md5::new();
    md5.update(timestamp.as_bytes());
    md5.update(secret.expose());
    hex_lower(&md5.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1939_example() {
        let digest = apop_digest(
            "<1896.697170952@dbc.mtview.ca.us>",
            &Secret::new("tanstaaf"),
        );
        assert_eq!(digest, "c4c9334bac560ecc979e58001b3e22fb");
    }
}

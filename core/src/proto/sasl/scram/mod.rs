//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677): what the client and server sides
//! share: the hash, key derivation, limits and attribute parsing.
//!
//! Only the ASCII part of SASLprep (RFC 4013) is applied: user names with control
//! characters are refused, and non-ASCII text and passwords are used as given, unnormalized.
//! Users whose credentials differ under NFKC normalization must type them as the server
//! stored them.

mod client;
mod server;

pub(super) use client::ScramClient;
pub use server::ScramServer;

use alloc::vec::Vec;
use hmac::Hmac;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::crypto::hmac;
use super::{Mechanism, SaslError};

/// The largest SCRAM iteration count accepted. A hostile server could otherwise ask for
/// billions of PBKDF2 rounds and hold the client's CPU; real servers use 4096 to ~600,000.
pub const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// The hash a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy)]
enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    fn of(mechanism: Mechanism) -> Result<Self, SaslError> {
        match mechanism {
            Mechanism::ScramSha1 => Ok(Self::Sha1),
            Mechanism::ScramSha256 => Ok(Self::Sha256),
            _ => Err(SaslError::NotScram),
        }
    }

    /// Output length in bytes, which is also the length of every key and proof.
    fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    fn hmac(self, key: &[u8], data: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        match self {
            Self::Sha1 => hmac::<Hmac<Sha1>>(key, data),
            Self::Sha256 => hmac::<Hmac<Sha256>>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Zeroizing<Vec<u8>> {
        fn wiped<D: Digest>(data: &[u8]) -> Zeroizing<Vec<u8>> {
            let mut out = D::digest(data);
            let bytes = Zeroizing::new(out.to_vec());
            out.as_mut_slice().zeroize();
            bytes
        }
        match self {
            Self::Sha1 => wiped::<Sha1>(data),
            Self::Sha256 => wiped::<Sha256>(data),
        }
    }

    /// `Hi()`, i.e. PBKDF2 with HMAC of this hash.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(alloc::vec![0u8; self.len()]);
        match self {
            Self::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
            Self::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
        }
        out
    }
}

/// The keys derived from a password (RFC 5802 §3).
struct Keys {
    client_key: Zeroizing<Vec<u8>>,
    stored_key: Zeroizing<Vec<u8>>,
    server_key: Zeroizing<Vec<u8>>,
}

impl Keys {
    fn derive(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let salted = hash.salted_password(password, salt, iterations);
        let client_key = hash.hmac(&salted, &[b"Client Key"]);
        let stored_key = hash.hash(&client_key);
        let server_key = hash.hmac(&salted, &[b"Server Key"]);
        Self {
            client_key,
            stored_key,
            server_key,
        }
    }
}

/// XOR of two equal-length byte strings (ClientKey ⊕ ClientSignature, both ways).
fn xor(a: &[u8], b: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(a.iter().zip(b).map(|(x, y)| x ^ y).collect())
}

/// Checks an iteration count against `1..=MAX_SCRAM_ITERATIONS`.
fn check_iterations(count: u32) -> Result<(), SaslError> {
    if (1..=MAX_SCRAM_ITERATIONS).contains(&count) {
        Ok(())
    } else {
        Err(SaslError::IterationCount {
            count,
            max: MAX_SCRAM_ITERATIONS,
        })
    }
}

/// True for nonce text: printable ASCII other than `,` (RFC 5802 `printable`).
fn is_nonce_text(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Checks a locally supplied nonce: long enough to be unguessable, and legal on the wire.
fn check_own_nonce(nonce: &str) -> Result<(), SaslError> {
    if nonce.len() >= 16 && is_nonce_text(nonce) {
        Ok(())
    } else {
        Err(SaslError::InvalidNonce)
    }
}

/// The value of attribute `name` (`name=value`), if `part` is that attribute.
fn attribute(part: Option<&str>, name: char) -> Option<&str> {
    part?.strip_prefix(name)?.strip_prefix('=')
}

/// Base64 as SCRAM uses it: standard alphabet, padded.
fn b64_encode(bytes: &[u8]) -> alloc::string::String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes [`b64_encode`]'s format.
fn b64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests;

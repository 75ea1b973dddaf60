//! Small primitives the mechanisms share: HMAC into zeroized buffers, constant-time
//! comparison, lowercase hex, and building messages without stray copies of secrets.

use alloc::string::String;
use alloc::vec::Vec;
use hmac::Mac;
use hmac::digest::KeyInit;
use zeroize::{Zeroize, Zeroizing};

/// HMAC of the concatenated `data` under `key`, in a buffer wiped on drop.
pub(super) fn hmac<M: Mac + KeyInit>(key: &[u8], data: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    #[expect(
        clippy::expect_used,
        reason = "HMAC accepts keys of any length (RFC 2104), so this cannot fail"
    )]
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in data {
        mac.update(part);
    }
    let mut out = mac.finalize().into_bytes();
    let bytes = Zeroizing::new(out.to_vec());
    // The fixed-size output lives on the stack; wipe it too.
    out.as_mut_slice().zeroize();
    bytes
}

/// Compares two byte strings in time that depends only on their lengths, so a forged
/// signature cannot be found byte by byte.
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimizer from turning the fold into an early-exit loop.
    core::hint::black_box(diff) == 0
}

/// Lowercase hexadecimal, as CRAM-MD5 and APOP put digests on the wire.
pub(super) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            s.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

/// Concatenates `parts` into one zeroized buffer of exact capacity: growing a `Vec` would
/// free its old allocation without wiping it, leaving a copy of the secret behind.
pub(super) fn concat(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let len = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex_lower(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex_lower(&[]), "");
    }

    #[test]
    fn concat_has_exact_capacity() {
        let v = concat(&[b"ab", b"", b"cde"]);
        assert_eq!(v.as_slice(), b"abcde");
        assert_eq!(v.capacity(), 5);
    }

    #[test]
    fn hmac_sha256_rfc4231_case_2() {
        let mac =
            hmac::<hmac::Hmac<sha2::Sha256>>(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex_lower(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

//! SASL (RFC 4422) for POP3's `AUTH` command (RFC 5034), plus APOP, as sans-IO state
//! machines: bytes in, bytes out, no base64 line handling (that is the engine's job).
//!
//! Client side: pick a [`Mechanism`] (e.g. with [`Mechanism::strongest`]), build a
//! [`SaslClient`] from [`SaslCredentials`], and drive it with the server's challenges.
//! Server side (popwire's test and demo server role): [`decode_plain`], [`ScramServer`],
//! [`cram_md5_response`] and [`apop_digest`].
//!
//! Every buffer holding a password, token or derived key is wiped on drop, and no `Debug`
//! output or error message includes one.

// Internals (see `proto`'s docs): without the features `internals` and `server`, parts of this
// module (the server's halves, helpers for the fuzzers) have no user in the crate; they stay the
// one definition both roles and the fuzz targets share.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

mod apop;
mod client;
mod cram_md5;
mod crypto;
mod error;
mod gs2;
mod login;
mod mechanism;
mod oauth;
mod plain;
mod scram;

pub use apop::apop_digest;
pub use client::{SaslClient, SaslCredentials};
pub use cram_md5::cram_md5_response;
pub use error::SaslError;
pub use mechanism::Mechanism;
pub use plain::{PlainMessage, decode_plain};
pub use scram::{MAX_SCRAM_ITERATIONS, ScramServer};

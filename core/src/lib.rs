//! popwire: POP3 mail retrieval.
//!
//! - [`proto`]: the sans-IO POP3 engine, client and server roles. No I/O, no clock, no threads;
//!   builds as `no_std` + `alloc` with `default-features = false`.
//! - [`net`] (feature `net`): blocking and async adapters over TCP and rustls.
//! - [`fetch`] (feature `fetch`): the mail-client job: config, mail stores, UID journal.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod proto;

#[cfg(feature = "net")]
pub mod net;

#[cfg(feature = "fetch")]
pub mod fetch;

/// The README's Rust examples, compiled by `cargo test --doc` so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(all(doctest, feature = "net"))]
pub struct ReadmeDoctests;

//! popwire: POP3 mail retrieval.
//!
//! - [`proto`]: the sans-IO POP3 engine, client role (and server role with feature `server`). No
//!   I/O, no clock, no threads; builds as `no_std` + `alloc` with `default-features = false`.
//! - [`net`] (feature `net`): the blocking adapter over TCP and rustls; the async adapter with
//!   feature `async`.
//! - [`fetch`] (feature `fetch`): the mail-client job: config, mail stores, UID journal, the
//!   commit protocol and the poll scheduler.
//!
//! Every feature is on by default. A blocking-only user writes
//! `popwire = { version = "0.1", default-features = false, features = ["net"] }`.
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

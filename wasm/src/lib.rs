//! WebAssembly glue over popwire's sans-IO POP3 engine, for the npm package `popwire`.
//!
//! Glue only: every decision stays in [`popwire::proto`]. This crate moves bytes, options and
//! results across the JS boundary, and the hand-written JS in `lib/` turns them into idiomatic
//! classes (`Engine`, `Server`, `Maildrop`, `Client`, the error classes).
//!
//! - [`Engine`]: the client role ([`popwire::proto::Client`]).
//! - [`Server`] over a [`Maildrop`]: the server role ([`popwire::proto::Server`]) over a shared
//!   [`popwire::proto::MemoryMaildrop`], for tests and demos.
//!
//! Errors cross as JS `Error` objects carrying the engine's [`Error::kind`](popwire::proto::Error::kind)
//! (and, for `-ERR`, the response code and text); `lib/errors.js` maps them to classes.

mod convert;
mod engine;
mod server;

pub use engine::Engine;
pub use server::{Maildrop, Server};

//! WebAssembly glue over popwire's sans-IO POP3 engine, for the npm package `popwire`.
//!
//! Glue only: every decision stays in [`popwire::proto`]. This crate moves bytes, options and
//! results across the JS boundary, and the hand-written JS in `lib/` turns them into idiomatic
//! classes (`Engine`, `Server`, `Maildrop`, `Client`, the error classes).
//!
//! - `Engine` (feature `client`): the client role ([`popwire::proto::Client`]).
//! - `Server` over a `Maildrop` (feature `server`): the server role
//!   ([`popwire::proto::Server`]) over a shared [`popwire::proto::MemoryMaildrop`], for tests
//!   and demos.
//!
//! `build.sh` builds each feature into a module of its own, so the client module that the npm
//! package loads by default carries no server code (the server role is about a quarter of a
//! module with both).
//!
//! Errors cross as JS `Error` objects carrying the engine's [`Error::kind`](popwire::proto::Error::kind)
//! (and, for `-ERR`, the response code and text); `lib/errors.js` maps them to classes.

// talc instead of the default dlmalloc: several kilobytes smaller, and faster.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(any(feature = "client", feature = "server"))]
mod convert;
#[cfg(feature = "client")]
mod engine;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use engine::Engine;
#[cfg(feature = "server")]
pub use server::{Maildrop, Server};

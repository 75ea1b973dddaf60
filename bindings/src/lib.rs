//! Kotlin and Swift bindings for popwire, made with uniffi (proc-macro style).
//!
//! Glue only: every POP3 decision is the core's. What is exposed:
//! - [`client::Client`]: a session with async methods over the core's blocking adapter.
//! - [`engine::Engine`]: the sans-IO engine, for foreign drivers and transcript replay.
//! - [`fetch::FetchJob`]: the fetch job with progress, cancellation and a summary.
//! - [`errors::PopError`]: the one error type.
// The uniffi scaffolding is `extern "C"` glue and needs `unsafe`; none is written by hand.
#![allow(unsafe_code)]

pub mod client;
pub mod engine;
pub mod errors;
pub mod fetch;
pub mod types;

uniffi::setup_scaffolding!("popwire");

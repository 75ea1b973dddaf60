//! The sans-IO POP3 engine.
//!
//! Bytes in, events out; commands in, bytes out. Nothing here touches a socket, a clock or a
//! thread, so the same engine runs under the blocking and async adapters, in WebAssembly, and
//! inside every language binding.
//!
//! - [`Client`]: the client role, with pipelining, streaming bodies, STLS and SASL; [`Session`]
//!   is the pull interface I/O drivers run on it.
//! - `server::Server` (feature `server`): the server role over a `server::Maildrop`, for tests
//!   and the demo.
//!
//! Like quinn-proto, the modules are private and this list of `pub use` is the API: one path
//! per item. Errors: branch on [`Error::class`] ([`ErrorClass`]). The wire codec and the SASL
//! mechanisms are internals: the feature `internals` makes `codec` and `sasl` public for the
//! fuzz targets, property tests and benches, with no stability promise.

mod class;
mod client;
#[cfg(feature = "internals")]
pub mod codec;
#[cfg(not(feature = "internals"))]
mod codec;
mod error;
#[cfg(feature = "internals")]
pub mod sasl;
#[cfg(not(feature = "internals"))]
mod sasl;
mod secret;
#[cfg(feature = "server")]
pub mod server;
mod session;
mod types;

pub use class::{ErrorClass, UnknownClass};
pub use client::{
    AuthMethod, AuthRequest, Client, ClientOptions, CommandId, Credential, Event,
    LISTING_ENTRY_COST, Limits, Phase, Reply, Security, UnknownName,
};
pub use error::{Error, PolicyError, ProtocolError, ServerError, UsageError};
pub use sasl::{MAX_SCRAM_ITERATIONS, Mechanism, SaslError};
pub use secret::Secret;
#[cfg(feature = "server")]
pub use server::{Maildrop, MemoryMaildrop, Server, ServerEvent, ServerOptions};
pub use session::{Interrupt, Pending, Progress, Session, Until, refusal};
pub use types::{
    Capabilities, Capability, Expire, Greeting, ListEntry, MessageNumber, ResponseCode, UidlEntry,
};

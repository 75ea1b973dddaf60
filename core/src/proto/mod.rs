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
//! - [`codec`]: the wire format both roles share.
//!
//! Like quinn-proto, the client's modules are private and this list of `pub use` is the API:
//! one path per item. Errors: branch on [`Error::class`] ([`ErrorClass`]).

mod class;
mod client;
pub mod codec;
mod error;
pub mod sasl;
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
pub use sasl::Mechanism;
pub use secret::Secret;
#[cfg(feature = "server")]
pub use server::{Maildrop, MemoryMaildrop, Server, ServerEvent, ServerOptions};
pub use session::{Interrupt, Pending, Progress, Session, Until, refusal};
pub use types::{
    Capabilities, Capability, Expire, Greeting, ListEntry, MessageNumber, ResponseCode, UidlEntry,
};

//! The wire format: pure functions and small state machines over byte slices.
//!
//! Shared by the client and server roles, so both agree on every byte.

// Internals (see `proto`'s docs): without the features `internals` and `server`, parts of this
// module (the server's halves, helpers for the fuzzers) have no user in the crate; they stay the
// one definition both roles and the fuzz targets share.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

pub mod body;
pub mod command;
pub mod line;
pub mod listing;
pub mod status;

pub use body::{BodyDecoder, Decoded, DotStuffer};
pub use command::{Command, CommandName};
pub use line::find_line;
pub use status::{Status, StatusLine};

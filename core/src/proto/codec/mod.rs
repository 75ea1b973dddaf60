//! The wire format: pure functions and small state machines over byte slices.
//!
//! Shared by the client and server roles, so both agree on every byte.

pub mod body;
pub mod command;
pub mod line;
pub mod listing;
pub mod status;

pub use body::{BodyDecoder, Decoded, DotStuffer};
pub use command::{Command, CommandName};
pub use line::find_line;
pub use status::{Status, StatusLine};

//! The mail-client job: account configuration, durable local stores, the UID journal, and the
//! fetch loop that ties them to the [`net`](crate::net) client.

pub mod commit;
pub mod config;
pub mod duration;
mod error;
pub mod exit;
pub mod job;
pub mod journal;
#[cfg(feature = "oauth")]
pub mod oauth;
pub mod poller;
mod private_fs;
pub mod quarantine;
pub mod schedule;
pub mod secret_source;
pub mod shard;
pub mod store;
pub mod sys;

pub use job::{AccountSummary, FetchError, FetchOptions, Progress, fetch_account, run};
pub use poller::{PollReport, Poller, PollerBuilder, StopHandle};

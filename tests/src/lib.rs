//! Test support for popwire.
//!
//! * [`Dovecot`]: a private, unprivileged Dovecot POP3 server (plain port with
//!   STLS and an implicit-TLS port) plus Maildir seeding helpers. Most tests
//!   use [`Dovecot::shared`].
//! * [`TestCa`]: a throw-away certificate authority and the good and bad
//!   certificates for TLS tests, made with the `openssl` command.
//! * [`corpus`]: test mail (tricky edge cases and deterministic bulk mail)
//!   and [`corpus::wire_form`], what a client must store after `RETR`.
//! * [`raw`]: a tiny std-only POP3 session for checks that must not depend on
//!   the popwire crate under test.
//! * [`faulty`]: hostile and broken servers: [`faulty::FaultServer`], popwire's
//!   own server role with a scripted fault per session (drops, stalls, garbage,
//!   lies, TLS attacks), and [`faulty::FaultProxy`], which cuts connections to
//!   a real server (Dovecot) at a chosen phase.
//! * [`oauth_server`]: a local OAuth 2.0 authorization server standing in for Google's and
//!   Microsoft's; [`dovecot_oauth`]: Dovecot checking bearer tokens against it.
//! * [`gmail_server`]: a local stand-in for Google's Gmail API (import, labels, search) that
//!   checks each request the way Google documents it, with injectable failures.
//! * [`process`]: the `popwire` binary for command-line tests, and a child's
//!   peak memory.
//!
//! External programs needed: `dovecot` (2.3, packages dovecot-core and
//! dovecot-pop3d), `openssl`, `sh`, `id` and `kill`; optionally GNU `time`
//! (for exact peak-memory figures). `tests/install-deps.sh` installs them. See
//! `tests/dovecot/README.md`.

mod ca;
pub mod corpus;
mod dovecot;
pub mod dovecot_imap;
pub mod dovecot_oauth;
pub mod faulty;
pub mod gmail_server;
pub mod maildir;
pub mod oauth_server;
pub mod process;
pub mod raw;
mod util;

pub use ca::TestCa;
pub use dovecot::{DEFAULT_PASSWORD, Dovecot, ENV_VAR, ServerCert};

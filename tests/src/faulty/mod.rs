//! Hostile and broken servers for tests: what a client meets when the network or the server
//! misbehaves.
//!
//! * [`FaultServer`]: popwire's own server role ([`popwire::proto::server::Server`]) over a
//!   [`MemoryMaildrop`](popwire::proto::server::MemoryMaildrop), on `127.0.0.1:0`, plain, with
//!   implicit TLS or offering STLS (certificates from [`TestCa`](crate::TestCa), bad ones
//!   included), with a per-session [`Faults`] script: drop the connection at any step or at a
//!   chosen octet of a reply, stall, send garbage or a line that never ends, rewrite replies
//!   (lie about LIST sizes, duplicate or change UIDLs, strip STLS from CAPA), answer `-ERR
//!   [IN-USE]`, `[LOGIN-DELAY]`, `[SYS/TEMP]` or `[AUTH]`, inject bytes after STLS, or fake the
//!   STLS `+OK`. It records every line the client sent, so a test can assert that no
//!   credential left the client.
//! * [`FaultProxy`]: a TCP proxy in front of a real server (the test Dovecot) that cuts the
//!   connection at a chosen phase ([`Cut`]): after the greeting, during AUTH, in the middle of
//!   RETR at octet N, after DELE but before QUIT, during QUIT.
//!
//! ```no_run
//! use popwire::proto::server::MemoryMaildrop;
//! use popwire_tests::faulty::{Action, FaultServer, Faults, Step, rewrite};
//!
//! let drop = MemoryMaildrop::new().with_user("alice", "pw").with_message("Subject: a\n\nA\n");
//! let server = FaultServer::builder(drop)
//!     // The first session is locked; the second lies about sizes and then hangs at QUIT.
//!     .session(1, Faults::at(Step::command("AUTH", 1), Action::err("IN-USE", "try later")))
//!     .session(
//!         2,
//!         Faults::at(Step::every("LIST"), rewrite::list_sizes(|_, _| 1))
//!             .on(Step::command("QUIT", 1), Action::Stall),
//!     )
//!     .start()?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod proxy;
mod script;
mod server;

pub use proxy::{Cut, FaultProxy, ProxySession};
pub use script::{Action, Faults, RewriteFn, SASL_RESPONSE, Step, err_line, rewrite};
pub use server::{ClientLine, FaultServer, FaultServerBuilder, SETTLE_TIMEOUT, SessionLog};

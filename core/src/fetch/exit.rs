//! sysexits(3) codes, so scripts and cron can react: what `FetchError::exit_code`, the
//! credential, OAuth and Gmail errors and the CLI return. The lowest module of `fetch`.

/// Success.
pub const OK: i32 = 0;
/// A message was refused for good (by the MDA); the rest was fetched.
pub const DATAERR: i32 = 65;
/// Internal software error.
pub const SOFTWARE: i32 = 70;
/// Service unavailable: cannot connect, TLS refused.
pub const UNAVAILABLE: i32 = 69;
/// Local I/O error (store, journal).
pub const IOERR: i32 = 74;
/// Temporary failure: retry later.
pub const TEMPFAIL: i32 = 75;
/// Permission denied: authentication failed.
pub const NOPERM: i32 = 77;
/// Configuration error.
pub const CONFIG: i32 = 78;

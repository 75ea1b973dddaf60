//! `popwire._popwire`: the pyo3 glue behind the `popwire` Python package.
//!
//! Glue only: every POP3 rule lives in the `popwire` crate. This crate maps types and errors,
//! releases the GIL around network I/O, and turns callbacks into Python iterators.
//!
//! - [`engine`]: `Engine`, the sans-IO client engine, and its event classes.
//! - [`client`]: `Client`, the blocking network client.
//! - [`testing`]: `TestServer`, the engine's server role on a loopback port.
//! - [`fetch`]: `run_fetch`, the mail-client job, behind `popwire.fetch`.
//! - [`poller`]: `PollerCore`, behind `popwire.Poller` and `popwire.AsyncPoller`.
//! - [`errors`]: the one mapping from Rust errors to Python exceptions.

use pyo3::prelude::*;

mod client;
mod convert;
mod engine;
mod errors;
mod fetch;
mod poller;
mod testing;

/// The compiled half of the `popwire` package. Import `popwire`, not this.
#[pymodule]
fn _popwire(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    engine::register(m)?;
    client::register(m)?;
    testing::register(m)?;
    fetch::register(m)?;
    poller::register(m)?;
    Ok(())
}

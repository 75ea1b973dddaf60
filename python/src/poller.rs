//! `popwire.Poller`'s engine: `popwire::fetch::Poller` with the GIL released for the session and
//! taken for each handler call. A handler's exception leaves its message on the server and is
//! handed back in the report; `KeyboardInterrupt` and `SystemExit` (or a signal while waiting)
//! stop the poll between messages, with what was handled committed, and are raised after.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use popwire::fetch::config::Keep;
use popwire::fetch::duration::parse_duration;
use popwire::fetch::poller::{HandlerError, Message, PollReport, Poller, StopHandle};
use popwire::fetch::{FetchError, FetchOptions};
use popwire::proto::Secret;
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes};

use crate::convert;
use crate::errors::ErrorInfo;

/// A handler's exception, carried through the Rust poll as its error.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

/// One failed handler call: (uid, exception, attempts, retry_after seconds).
type PyFailure = (String, Py<PyAny>, u32, f64);

/// A poll's report as plain values; `popwire.PollReport` wraps it.
type PyReport = (
    usize,
    usize,
    Vec<String>,
    Vec<PyFailure>,
    usize,
    usize,
    usize,
    usize,
    usize,
);

/// The compiled half of `popwire.Poller`.
#[pyclass(module = "popwire._popwire", name = "PollerCore", frozen)]
pub struct PollerCore {
    poller: Mutex<Poller>,
    stop: StopHandle,
}

fn keep(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Keep> {
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(if flag.is_true() {
            Keep::Forever
        } else {
            Keep::Delete
        });
    }
    let _ = py;
    let text: String = value.extract().map_err(|_| {
        PyValueError::new_err("keep must be True, False or a duration such as \"30d\"")
    })?;
    parse_duration(&text)
        .map(Keep::For)
        .map_err(|e| PyValueError::new_err(format!("keep = {text:?}: {e}")))
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{name} must be a number of seconds >= 0")))
}

#[pymethods]
impl PollerCore {
    #[new]
    #[pyo3(signature = (host, user, password, *, port = None, security = "tls", keep = None, state_dir = None, ca_file = None, timeout = 60.0, name = "poller", retry_base = 60.0, retry_max = 3600.0, max_message_size = None, memory_limit = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: String,
        user: String,
        password: String,
        port: Option<u16>,
        security: &str,
        keep: Option<Bound<'_, PyAny>>,
        state_dir: Option<PathBuf>,
        ca_file: Option<PathBuf>,
        timeout: f64,
        name: &str,
        retry_base: f64,
        retry_max: f64,
        max_message_size: Option<u64>,
        memory_limit: Option<usize>,
    ) -> PyResult<Self> {
        let state_dir = state_dir
            .or_else(FetchOptions::default_state_dir)
            .ok_or_else(|| PyValueError::new_err("no state_dir given and $HOME is not set"))?;
        let mut builder = Poller::builder(host, user, Secret::new(password.into_bytes()))
            .security(convert::security(security)?)
            .name(name.to_owned())
            .state_dir(state_dir)
            .timeout(seconds("timeout", timeout)?)
            .retry_backoff(
                seconds("retry_base", retry_base)?,
                seconds("retry_max", retry_max)?,
            );
        if let Some(port) = port {
            builder = builder.port(port);
        }
        if let Some(keep_value) = keep {
            builder = builder.keep(self::keep(py, &keep_value)?);
        }
        if let Some(path) = ca_file {
            builder = builder.ca_file(path);
        }
        if let Some(max) = max_message_size {
            builder = builder.max_message_size(max);
        }
        if let Some(limit) = memory_limit {
            builder = builder.memory_limit(limit);
        }
        let poller = builder.build();
        let stop = poller.stop_handle();
        Ok(Self {
            poller: Mutex::new(poller),
            stop,
        })
    }

    /// Polls once; `handler(uid, size, number, data)` is called for each new message.
    fn poll_once(&self, py: Python<'_>, handler: Py<PyAny>) -> PyResult<PyReport> {
        let mut raised: Vec<(String, PyErr)> = Vec::new();
        let mut fatal: Option<PyErr> = None;
        let stop = &self.stop;
        let outcome = py.detach(|| {
            let mut poller = match self.poller.lock() {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
            let mut call = |mut message: Message<'_>| -> Result<(), HandlerError> {
                let data = message.to_vec()?;
                Python::attach(|py| {
                    // Ctrl-C while the session waited on the network counts from here.
                    let result = py.check_signals().and_then(|()| {
                        handler
                            .call1(
                                py,
                                (
                                    message.uid(),
                                    message.size(),
                                    message.number(),
                                    PyBytes::new(py, &data),
                                ),
                            )
                            .map(|_| ())
                    });
                    match result {
                        Ok(()) => Ok(()),
                        Err(e)
                            if e.is_instance_of::<PyKeyboardInterrupt>(py)
                                || e.is_instance_of::<PySystemExit>(py) =>
                        {
                            fatal = Some(e);
                            stop.stop();
                            Err(Box::new(Raised("interrupted".into())) as HandlerError)
                        }
                        Err(e) => {
                            let text = e.to_string();
                            raised.push((message.uid().to_owned(), e));
                            Err(Box::new(Raised(text)) as HandlerError)
                        }
                    }
                })
            };
            poller.poll_once(&mut call)
        });
        if let Some(e) = fatal {
            // Our own stop: the next poll must not see it.
            self.stop.reset();
            return Err(e);
        }
        match outcome {
            Ok(report) => Ok(py_report(py, report, raised)),
            Err(e) => Err(fetch_err(py, &e)),
        }
    }

    /// Seconds until the next poll is due.
    fn next_poll_in(&self, py: Python<'_>) -> f64 {
        py.detach(|| match self.poller.lock() {
            Ok(mut p) => p.next_poll_in().as_secs_f64(),
            Err(poisoned) => poisoned.into_inner().next_poll_in().as_secs_f64(),
        })
    }

    /// Sets the interval between polls.
    fn set_interval(&self, py: Python<'_>, seconds: f64) -> PyResult<()> {
        let interval = self::seconds("interval", seconds)?;
        py.detach(|| match self.poller.lock() {
            Ok(mut p) => p.set_interval(interval),
            Err(poisoned) => poisoned.into_inner().set_interval(interval),
        });
        Ok(())
    }

    /// Waits up to `seconds`, the GIL released, or until stopped; True when stopped. Signals
    /// are checked every 100 ms, so Ctrl-C interrupts the wait.
    fn wait(&self, py: Python<'_>, seconds: f64) -> PyResult<bool> {
        let deadline = std::time::Instant::now() + self::seconds("seconds", seconds)?;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let slice = left.min(Duration::from_millis(100));
            if py.detach(|| self.stop.wait(slice)) {
                return Ok(true);
            }
            py.check_signals()?;
            if left <= slice {
                return Ok(false);
            }
        }
    }

    /// Stops a poll between messages, or a wait; thread-safe.
    fn stop(&self) {
        self.stop.stop();
    }

    /// Clears a stop.
    fn reset(&self) {
        self.stop.reset();
    }

    /// True once stopped.
    #[getter]
    fn stopped(&self) -> bool {
        self.stop.is_stopped()
    }
}

fn fetch_err(py: Python<'_>, e: &FetchError) -> PyErr {
    ErrorInfo::from(e).into_pyerr(py)
}

fn py_report(py: Python<'_>, report: PollReport, raised: Vec<(String, PyErr)>) -> PyReport {
    let mut raised = raised;
    let failed = report
        .failed
        .into_iter()
        .map(|f| {
            let exc = match raised.iter().position(|(uid, _)| *uid == f.uid) {
                Some(at) => raised.swap_remove(at).1.into_value(py).into_any(),
                // Not the handler's exception (e.g. reading the staged body failed).
                None => pyo3::exceptions::PyOSError::new_err(f.reason.clone())
                    .into_value(py)
                    .into_any(),
            };
            (f.uid, exc, f.attempts, f.retry_after.as_secs_f64())
        })
        .collect();
    (
        report.listed,
        report.fetched,
        report.handled,
        failed,
        report.deferred,
        report.deleted,
        report.kept,
        report.skipped_too_large,
        report.skipped_unidentified,
    )
}

/// Registers the poller.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PollerCore>()?;
    Ok(())
}

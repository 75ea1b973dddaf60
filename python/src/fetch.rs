//! `popwire.fetch`'s engine: `popwire::fetch::run` with the GIL released, progress reported
//! through a Python callable (the GIL taken once per event), and Ctrl-C honoured between
//! messages through the job's cancel flag.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use popwire::fetch::config::{self, Config, ConfigError, ConfigErrorKind};
use popwire::fetch::{AccountSummary, FetchError, FetchOptions, Progress};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::{Class, ErrorInfo};

/// One progress report of a fetch run. `kind` is "logged-in", "listed", "message",
/// "committed" or "deleted"; the other fields are set when they apply.
#[pyclass(module = "popwire._popwire", name = "FetchProgress", frozen, get_all)]
pub struct FetchProgress {
    kind: &'static str,
    account: String,
    tls: Option<bool>,
    total: Option<usize>,
    new: Option<usize>,
    new_bytes: Option<u64>,
    bytes: Option<u64>,
    count: Option<usize>,
}

impl FetchProgress {
    fn from_progress(p: &Progress<'_>) -> Self {
        let mut out = Self {
            kind: "",
            account: String::new(),
            tls: None,
            total: None,
            new: None,
            new_bytes: None,
            bytes: None,
            count: None,
        };
        match *p {
            Progress::LoggedIn { account, tls } => {
                out.kind = "logged-in";
                out.account = account.into();
                out.tls = Some(tls);
            }
            Progress::Listed {
                account,
                total,
                new,
                new_bytes,
            } => {
                out.kind = "listed";
                out.account = account.into();
                out.total = Some(total);
                out.new = Some(new);
                out.new_bytes = Some(new_bytes);
            }
            Progress::Message { account, bytes } => {
                out.kind = "message";
                out.account = account.into();
                out.bytes = Some(bytes);
            }
            Progress::Committed {
                account,
                count,
                bytes,
            } => {
                out.kind = "committed";
                out.account = account.into();
                out.count = Some(count);
                out.bytes = Some(bytes);
            }
            Progress::Deleted { account, count } => {
                out.kind = "deleted";
                out.account = account.into();
                out.count = Some(count);
            }
        }
        out
    }
}

#[pymethods]
impl FetchProgress {
    fn __repr__(&self) -> String {
        let mut parts = vec![
            format!("kind={:?}", self.kind),
            format!("account={:?}", self.account),
        ];
        let fields: [(&str, Option<String>); 6] = [
            (
                "tls",
                self.tls
                    .map(|v| if v { "True".into() } else { "False".into() }),
            ),
            ("total", self.total.map(|v| v.to_string())),
            ("new", self.new.map(|v| v.to_string())),
            ("new_bytes", self.new_bytes.map(|v| v.to_string())),
            ("bytes", self.bytes.map(|v| v.to_string())),
            ("count", self.count.map(|v| v.to_string())),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                parts.push(format!("{name}={v}"));
            }
        }
        format!("FetchProgress({})", parts.join(", "))
    }
}

/// The outcome of one account: counts, and `error` (a `popwire.Error`) when it failed.
#[pyclass(module = "popwire._popwire", name = "AccountResult", frozen, get_all)]
pub struct AccountResult {
    account: String,
    fetched: usize,
    bytes: u64,
    deleted: usize,
    skipped_too_large: usize,
    kept: usize,
    sessions: usize,
    error: Option<Py<PyAny>>,
    /// sysexits(3) code, as the `popwire` command would exit with: 0 on success.
    exit_code: i32,
}

#[pymethods]
impl AccountResult {
    /// True when the account was fetched without error.
    #[getter]
    fn ok(&self) -> bool {
        self.error.is_none()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(match &self.error {
            Some(e) => format!(
                "AccountResult(account={:?}, error={})",
                self.account,
                e.bind(py).repr()?
            ),
            None => format!(
                "AccountResult(account={:?}, fetched={}, bytes={}, deleted={}, skipped_too_large={}, kept={}, sessions={})",
                self.account,
                self.fetched,
                self.bytes,
                self.deleted,
                self.skipped_too_large,
                self.kept,
                self.sessions
            ),
        })
    }
}

fn config_kind(kind: ConfigErrorKind) -> &'static str {
    match kind {
        ConfigErrorKind::Read => "config:read",
        ConfigErrorKind::Syntax => "config:syntax",
        ConfigErrorKind::UnknownKey => "config:unknown-key",
        ConfigErrorKind::MissingKey => "config:missing-key",
        ConfigErrorKind::WrongType => "config:wrong-type",
        ConfigErrorKind::Conflict => "config:conflict",
        ConfigErrorKind::BadValue => "config:bad-value",
    }
}

fn config_error(py: Python<'_>, e: &ConfigError) -> PyErr {
    let info = ErrorInfo::new(Class::Config, config_kind(e.kind()), e.to_string());
    let exc = match info.to_object(py) {
        Ok(exc) => exc,
        Err(err) => return err,
    };
    let set = || -> PyResult<()> {
        exc.setattr("path", e.path().display().to_string())?;
        exc.setattr("line", e.line())?;
        exc.setattr("key", e.key())?;
        exc.setattr("fix", e.fix())?;
        exc.setattr("text", e.message())?;
        Ok(())
    };
    match set() {
        Ok(()) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

fn result(
    py: Python<'_>,
    account: String,
    outcome: Result<AccountSummary, FetchError>,
) -> PyResult<AccountResult> {
    Ok(match outcome {
        Ok(s) => AccountResult {
            account,
            fetched: s.fetched,
            bytes: s.bytes,
            deleted: s.deleted,
            skipped_too_large: s.skipped_too_large,
            kept: s.kept,
            sessions: s.sessions,
            error: None,
            exit_code: 0,
        },
        Err(e) => AccountResult {
            account,
            fetched: 0,
            bytes: 0,
            deleted: 0,
            skipped_too_large: 0,
            kept: 0,
            sessions: 0,
            exit_code: e.exit_code(),
            error: Some(ErrorInfo::from(&e).to_object(py)?.unbind()),
        },
    })
}

/// Runs the fetch job. `config_path`: the TOML file (`None`: the default path, unless
/// `accounts_toml` gives every account). `accounts_toml`: accounts built in code, as TOML.
/// `only`: the account names to fetch (empty: all). Returns `(results, warnings)`.
#[pyfunction]
#[pyo3(signature = (config_path, accounts_toml, only, progress = None, state_dir = None, batch = None))]
pub fn run_fetch(
    py: Python<'_>,
    config_path: Option<PathBuf>,
    accounts_toml: Option<String>,
    only: Vec<String>,
    progress: Option<Py<PyAny>>,
    state_dir: Option<PathBuf>,
    batch: Option<usize>,
) -> PyResult<(Vec<AccountResult>, Vec<String>)> {
    let mut config = Config::default();
    let path = match (&config_path, &accounts_toml) {
        (Some(p), _) => Some(p.clone()),
        (None, None) => Some(config::default_path().ok_or_else(|| {
            PyValueError::new_err(
                "no config_path given and no default (neither $XDG_CONFIG_HOME nor $HOME is set)",
            )
        })?),
        (None, Some(_)) => None,
    };
    if let Some(path) = path {
        config = py
            .detach(|| config::load(&path))
            .map_err(|e| config_error(py, &e))?;
    }
    if let Some(text) = accounts_toml {
        let origin = std::env::current_dir()
            .unwrap_or_default()
            .join("<popwire.Account>");
        let extra = config::parse(&text, &origin).map_err(|e| config_error(py, &e))?;
        for (name, account) in extra.accounts {
            if config.account(&name).is_some() {
                return Err(PyValueError::new_err(format!(
                    "account {name:?} is defined both in the config file and in code"
                )));
            }
            config.accounts.push((name, account));
        }
        config.warnings.extend(extra.warnings);
    }
    if let Some(missing) = only.iter().find(|n| config.account(n).is_none()) {
        let known: Vec<&str> = config.accounts.iter().map(|(n, _)| n.as_str()).collect();
        return Err(PyValueError::new_err(format!(
            "no account named {missing:?} (known: {})",
            known.join(", ")
        )));
    }
    let state_dir = match state_dir.or_else(FetchOptions::default_state_dir) {
        Some(dir) => dir,
        None => {
            return Err(PyValueError::new_err(
                "no state_dir given and $HOME is not set",
            ));
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let mut options = FetchOptions::new(state_dir);
    if let Some(b) = batch {
        options.batch = b.max(1);
    }
    options.cancel = Some(cancel.clone());

    // The first Python error (from the callback, or a signal such as Ctrl-C) cancels the run
    // between messages and is raised once the job has committed what it stored.
    let mut raised: Option<PyErr> = None;
    let outcomes = py.detach(|| {
        let mut on_progress = |p: Progress<'_>| {
            if raised.is_some() {
                return;
            }
            Python::attach(|py| {
                let outcome = py.check_signals().and_then(|()| match &progress {
                    Some(callback) => callback
                        .call1(py, (FetchProgress::from_progress(&p),))
                        .map(|_| ()),
                    None => Ok(()),
                });
                if let Err(e) = outcome {
                    raised = Some(e);
                    cancel.store(true, Ordering::Release);
                }
            });
        };
        popwire::fetch::run(&config, &only, &options, &mut on_progress)
    });
    if let Some(e) = raised {
        return Err(e);
    }
    let results = outcomes
        .into_iter()
        .map(|(name, outcome)| result(py, name, outcome))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((results, config.warnings))
}

/// Registers the fetch job.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FetchProgress>()?;
    m.add_class::<AccountResult>()?;
    m.add_function(wrap_pyfunction!(run_fetch, m)?)?;
    Ok(())
}

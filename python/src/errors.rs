//! Rust errors to Python exceptions, in one place.
//!
//! The exception classes live in `popwire/_errors.py`, because two of them need two bases
//! (`TimeoutError` is also the builtin `TimeoutError`, `NetworkError` is also `OSError`), which
//! `create_exception!` cannot express. Every instance carries `kind` (the engine's stable
//! `family:kind` name), `code` and `text` (a server's `-ERR`), `command`, and `temporary`.

use popwire::net::NetError;
use popwire::proto::{self, PolicyError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Which Python class an error becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Error,
    ServerError,
    AuthError,
    TlsError,
    ProtocolError,
    ConfigError,
    TimeoutError,
    NetworkError,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Error => "Error",
            Class::ServerError => "ServerError",
            Class::AuthError => "AuthError",
            Class::TlsError => "TlsError",
            Class::ProtocolError => "ProtocolError",
            Class::ConfigError => "ConfigError",
            Class::TimeoutError => "TimeoutError",
            Class::NetworkError => "NetworkError",
        }
    }

    fn class<'py>(self, py: Python<'py>) -> PyResult<&'py Bound<'py, PyType>> {
        static CLASSES: [PyOnceLock<Py<PyType>>; 8] = [const { PyOnceLock::new() }; 8];
        let slot = match self {
            Class::Error => &CLASSES[0],
            Class::ServerError => &CLASSES[1],
            Class::AuthError => &CLASSES[2],
            Class::TlsError => &CLASSES[3],
            Class::ProtocolError => &CLASSES[4],
            Class::ConfigError => &CLASSES[5],
            Class::TimeoutError => &CLASSES[6],
            Class::NetworkError => &CLASSES[7],
        };
        slot.import(py, "popwire._errors", self.name())
    }
}

/// Everything a Python exception needs, gathered without the GIL.
#[derive(Debug, Clone)]
pub(crate) struct ErrorInfo {
    pub(crate) class: Class,
    pub(crate) message: String,
    pub(crate) kind: String,
    pub(crate) code: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) command: Option<&'static str>,
    pub(crate) temporary: bool,
}

impl ErrorInfo {
    pub(crate) fn new(class: Class, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            kind: kind.into(),
            code: None,
            text: None,
            command: None,
            temporary: false,
        }
    }

    /// The exception instance, not raised (events carry these).
    pub(crate) fn to_object<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let exc = self.class.class(py)?.call1((self.message.as_str(),))?;
        exc.setattr("kind", self.kind.as_str())?;
        exc.setattr("code", self.code.as_deref())?;
        exc.setattr("text", self.text.as_deref())?;
        exc.setattr("command", self.command)?;
        exc.setattr("temporary", self.temporary)?;
        Ok(exc)
    }

    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self.to_object(py) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        }
    }
}

impl From<&proto::Error> for ErrorInfo {
    fn from(e: &proto::Error) -> Self {
        let kind = e.kind();
        let class = match e {
            proto::Error::Server(s) if s.is_auth_failure() && !s.is_temporary() => Class::AuthError,
            proto::Error::Server(_) => Class::ServerError,
            proto::Error::Protocol(_) => Class::ProtocolError,
            proto::Error::Usage(_) => Class::Error,
            proto::Error::Policy(p) => match p {
                PolicyError::TlsUnavailable(_) => Class::TlsError,
                PolicyError::CleartextForbidden => Class::ConfigError,
                PolicyError::NoMechanism(_) | PolicyError::Apop(_) => Class::AuthError,
                PolicyError::Excessive(_) => Class::ProtocolError,
                _ => Class::Error,
            },
            proto::Error::Sasl(_) => Class::AuthError,
            _ => Class::Error,
        };
        let mut info = ErrorInfo::new(class, kind, e.to_string());
        info.temporary = e.is_temporary();
        if let proto::Error::Server(s) = e {
            info.code = s.code.as_ref().map(|c| c.as_str().to_string());
            info.text = Some(s.text.clone());
            info.command = Some(s.command);
        }
        info
    }
}

impl From<&NetError> for ErrorInfo {
    fn from(e: &NetError) -> Self {
        let (class, kind) = match e {
            NetError::Pop3(inner) => return inner.into(),
            NetError::Resolve { .. } => (Class::NetworkError, "net:resolve"),
            NetError::Connect { .. } => (Class::NetworkError, "net:connect"),
            NetError::Io { .. } => (Class::NetworkError, "net:io"),
            NetError::Timeout(_) => (Class::TimeoutError, "net:timeout"),
            NetError::Certificate { .. } => (Class::TlsError, "tls:certificate"),
            NetError::Tls { .. } => (Class::TlsError, "tls:failed"),
            NetError::CaFile { .. } => (Class::ConfigError, "config:ca-file"),
            // NetError is non-exhaustive in spirit: anything new is at least a popwire.Error.
            #[allow(unreachable_patterns)]
            _ => (Class::Error, "net:other"),
        };
        let mut info = ErrorInfo::new(class, kind, e.to_string());
        info.temporary = e.is_temporary();
        info
    }
}

/// `?` on engine results inside `#[pymethods]`.
pub(crate) fn proto_err(e: proto::Error) -> PyErr {
    Python::attach(|py| ErrorInfo::from(&e).into_pyerr(py))
}

/// `?` on network results inside `#[pymethods]`.
pub(crate) fn net_err(e: NetError) -> PyErr {
    Python::attach(|py| ErrorInfo::from(&e).into_pyerr(py))
}

/// A misuse of the binding itself (e.g. a closed client), as `popwire.Error`.
pub(crate) fn usage(kind: &str, message: impl Into<String>) -> PyErr {
    Python::attach(|py| ErrorInfo::new(Class::Error, kind, message).into_pyerr(py))
}

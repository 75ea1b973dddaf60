//! Rust errors to Python exceptions, in one place.
//!
//! The core decides the class of every error ([`ErrorClass`], from `proto::Error::class()`,
//! `NetError::class()` and `FetchError::class()`); this module only maps each class to its one
//! Python exception, mechanically, and copies the details. The exception classes live in
//! `popwire/_errors.py`, because two of them need two bases (`TimeoutError` is also the builtin
//! `TimeoutError`, `NetworkError` is also `ConnectionError`), which `create_exception!` cannot
//! express. Every instance carries `kind` (the core's stable `family:kind` name),
//! `error_class` (the class's stable name), `code` and `text` (a server's `-ERR`), `command`,
//! and `temporary` (the error's own `is_temporary()`).

use popwire::fetch::FetchError;
use popwire::net::NetError;
use popwire::proto::{self, ErrorClass};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Which Python class an error becomes: one per [`ErrorClass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Auth,
    Tls,
    Protocol,
    Server,
    Network,
    Timeout,
    Config,
    Storage,
    Cancelled,
}

impl Class {
    const COUNT: usize = 9;

    /// The mapping, by the core's class. `ErrorClass` is non-exhaustive: a class added later
    /// is at least a `popwire.Error`; until this binding learns it, it becomes a `ProtocolError`
    /// (never silently a retryable one) and keeps its own name in `error_class`.
    pub(crate) fn of(class: &ErrorClass) -> Self {
        match class {
            ErrorClass::Auth => Class::Auth,
            ErrorClass::Tls => Class::Tls,
            ErrorClass::Protocol => Class::Protocol,
            ErrorClass::Server(_) => Class::Server,
            ErrorClass::Network => Class::Network,
            ErrorClass::Timeout => Class::Timeout,
            ErrorClass::Config => Class::Config,
            ErrorClass::Storage => Class::Storage,
            ErrorClass::Cancelled => Class::Cancelled,
            #[allow(unreachable_patterns)]
            _ => Class::Protocol,
        }
    }

    /// The Python class's name in `popwire._errors`.
    fn name(self) -> &'static str {
        match self {
            Class::Auth => "AuthError",
            Class::Tls => "TlsError",
            Class::Protocol => "ProtocolError",
            Class::Server => "ServerError",
            Class::Network => "NetworkError",
            Class::Timeout => "TimeoutError",
            Class::Config => "ConfigError",
            Class::Storage => "StorageError",
            Class::Cancelled => "Cancelled",
        }
    }

    /// The stable class name (`ErrorClass::as_str`), for errors the binding makes itself.
    fn class_name(self) -> &'static str {
        match self {
            Class::Auth => "auth",
            Class::Tls => "tls",
            Class::Protocol => "protocol",
            Class::Server => "server",
            Class::Network => "network",
            Class::Timeout => "timeout",
            Class::Config => "config",
            Class::Storage => "storage",
            Class::Cancelled => "cancelled",
        }
    }

    fn class<'py>(self, py: Python<'py>) -> PyResult<&'py Bound<'py, PyType>> {
        static CLASSES: [PyOnceLock<Py<PyType>>; Class::COUNT] =
            [const { PyOnceLock::new() }; Class::COUNT];
        let slot = match self {
            Class::Auth => &CLASSES[0],
            Class::Tls => &CLASSES[1],
            Class::Protocol => &CLASSES[2],
            Class::Server => &CLASSES[3],
            Class::Network => &CLASSES[4],
            Class::Timeout => &CLASSES[5],
            Class::Config => &CLASSES[6],
            Class::Storage => &CLASSES[7],
            Class::Cancelled => &CLASSES[8],
        };
        slot.import(py, "popwire._errors", self.name())
    }
}

/// Everything a Python exception needs, gathered without the GIL.
#[derive(Debug, Clone)]
pub(crate) struct ErrorInfo {
    pub(crate) class: Class,
    pub(crate) error_class: &'static str,
    pub(crate) message: String,
    pub(crate) kind: String,
    pub(crate) code: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) command: Option<&'static str>,
    pub(crate) temporary: bool,
}

impl ErrorInfo {
    /// An error the binding makes itself, of `class`.
    pub(crate) fn new(class: Class, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class,
            error_class: class.class_name(),
            message: message.into(),
            kind: kind.into(),
            code: None,
            text: None,
            command: None,
            temporary: false,
        }
    }

    /// An error the core classified: the class, its name and its response code from `class`.
    fn classified(
        class: &ErrorClass,
        kind: impl Into<String>,
        message: impl Into<String>,
        temporary: bool,
    ) -> Self {
        let mut info = Self::new(Class::of(class), kind, message);
        info.error_class = class.as_str();
        info.code = class.code().map(|c| c.as_str().to_string());
        info.temporary = temporary;
        info
    }

    /// The exception instance, not raised (events carry these).
    pub(crate) fn to_object<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let exc = self.class.class(py)?.call1((self.message.as_str(),))?;
        exc.setattr("kind", self.kind.as_str())?;
        exc.setattr("error_class", self.error_class)?;
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
        let mut info = ErrorInfo::classified(&e.class(), e.kind(), e.to_string(), e.is_temporary());
        if let proto::Error::Server(s) = e {
            // The server's own code, also when the class is `auth` (`[AUTH]`): what it sent.
            info.code = s.code.as_ref().map(|c| c.as_str().to_string());
            info.text = Some(s.text.clone());
            info.command = Some(s.command);
        }
        info
    }
}

impl From<&NetError> for ErrorInfo {
    fn from(e: &NetError) -> Self {
        if let NetError::Pop3(inner) = e {
            return inner.into();
        }
        ErrorInfo::classified(&e.class(), e.kind(), e.to_string(), e.is_temporary())
    }
}

impl From<&FetchError> for ErrorInfo {
    fn from(e: &FetchError) -> Self {
        let kind = match e {
            FetchError::Net(net) => return net.into(),
            FetchError::Credential(_) => "fetch:credential",
            FetchError::Store(_) => "fetch:store",
            FetchError::Journal(_) => "fetch:journal",
            FetchError::NoUidl => "fetch:no-uidl",
            FetchError::Cancelled => "fetch:cancelled",
            FetchError::Locked { .. } => "fetch:locked",
            #[allow(unreachable_patterns)]
            _ => "fetch:other",
        };
        ErrorInfo::classified(&e.class(), kind, e.to_string(), e.is_temporary())
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

/// A misuse of the binding itself (e.g. a closed client): the caller's use is wrong, class
/// `config`, as `popwire.ConfigError`.
pub(crate) fn usage(kind: &str, message: impl Into<String>) -> PyErr {
    Python::attach(|py| ErrorInfo::new(Class::Config, kind, message).into_pyerr(py))
}

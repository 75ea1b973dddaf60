//! `popwire.Engine`: the sans-IO client engine, for drivers written in Python (the asyncio
//! client, the poplib drop-in, transcript replay).
//!
//! The shape follows h11: `receive_data(bytes)`, then `next_event()` until it returns `None`;
//! commands return an id; `data_to_send()` returns what to write.

use popwire::proto::{
    AuthRequest, Client, ClientOptions, Event, Greeting as ProtoGreeting, Limits, Phase, Reply,
    Secret,
};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::convert;
use crate::errors::{ErrorInfo, proto_err};

/// The server's `+OK` greeting.
#[pyclass(module = "popwire._popwire", name = "Greeting", frozen)]
pub struct Greeting {
    /// The text after `+OK `.
    #[pyo3(get)]
    text: String,
    /// The APOP timestamp (`<...@...>`), when the server sent one.
    #[pyo3(get)]
    apop_timestamp: Option<String>,
}

impl From<&ProtoGreeting> for Greeting {
    fn from(g: &ProtoGreeting) -> Self {
        Self {
            text: g.text.clone(),
            apop_timestamp: g.apop_timestamp.clone(),
        }
    }
}

#[pymethods]
impl Greeting {
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("text", "apop_timestamp")
    }

    fn __repr__(&self) -> String {
        format!(
            "Greeting(text={:?}, apop_timestamp={:?})",
            self.text, self.apop_timestamp
        )
    }
}

/// Automatic negotiation finished; the session is ready to log in.
#[pyclass(module = "popwire._popwire", name = "Ready", frozen)]
pub struct Ready {
    /// `NAME -> [args]`, in the server's order.
    #[pyo3(get)]
    capabilities: Py<PyDict>,
}

#[pymethods]
impl Ready {
    #[classattr]
    fn __match_args__() -> (&'static str,) {
        ("capabilities",)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Ready(capabilities={})",
            self.capabilities.bind(py).repr()?
        ))
    }
}

/// The server accepted STLS: run the TLS handshake now, then call `Engine.tls_established()`.
#[pyclass(module = "popwire._popwire", name = "TlsReady", frozen)]
pub struct TlsReady;

#[pymethods]
impl TlsReady {
    fn __repr__(&self) -> &'static str {
        "TlsReady()"
    }
}

/// A piece of a RETR/TOP body: dot-unstuffed, CRLF line ends as sent.
#[pyclass(module = "popwire._popwire", name = "Body", frozen)]
pub struct Body {
    /// The RETR/TOP command's id.
    #[pyo3(get)]
    id: u64,
    /// The bytes.
    #[pyo3(get)]
    data: Py<PyBytes>,
}

#[pymethods]
impl Body {
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("id", "data")
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Body(id={}, data=<{} bytes>)",
            self.id,
            self.data.bind(py).as_bytes().len()
        )
    }
}

/// A command finished: `kind` and `value` on success, `error` (an exception instance) otherwise.
#[pyclass(module = "popwire._popwire", name = "Completed", frozen)]
pub struct Completed {
    /// The command's id.
    #[pyo3(get)]
    id: u64,
    /// What `value` is: "ok", "authenticated", "stat", "list", "list-one", "uidl", "uidl-one",
    /// "capa", "lang", "retrieved", "tls-ready", "closed"; "error" on failure.
    #[pyo3(get)]
    kind: &'static str,
    /// The reply, shaped by `kind`.
    #[pyo3(get)]
    value: Py<PyAny>,
    /// The `popwire.Error` for a refusal, else `None`.
    #[pyo3(get)]
    error: Option<Py<PyAny>>,
    /// The server's text on the reply's `+OK` line (empty for local refusals).
    #[pyo3(get)]
    text: String,
}

#[pymethods]
impl Completed {
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str, &'static str) {
        ("id", "kind", "value", "error")
    }

    /// The value, or raise the error.
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match &self.error {
            Some(e) => Err(PyErr::from_value(e.bind(py).clone())),
            None => Ok(self.value.clone_ref(py)),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(match &self.error {
            Some(e) => format!("Completed(id={}, error={})", self.id, e.bind(py).repr()?),
            None => format!(
                "Completed(id={}, kind={:?}, value={})",
                self.id,
                self.kind,
                self.value.bind(py).repr()?
            ),
        })
    }
}

/// A reply as `(kind, value)`.
pub(crate) fn reply_value<'py>(
    py: Python<'py>,
    reply: Reply,
) -> PyResult<(&'static str, Bound<'py, PyAny>)> {
    let none = || py.None().into_bound(py);
    Ok(match reply {
        Reply::Ok(text) => ("ok", text.into_pyobject(py)?.into_any()),
        Reply::Authenticated => ("authenticated", none()),
        Reply::Stat { count, size } => ("stat", (count, size).into_pyobject(py)?.into_any()),
        Reply::List(v) => {
            let items: Vec<(u32, u64)> = v.iter().map(|e| (e.number, e.size)).collect();
            ("list", PyList::new(py, items)?.into_any())
        }
        Reply::ListOne(e) => ("list-one", (e.number, e.size).into_pyobject(py)?.into_any()),
        Reply::Uidl(v) => {
            let items: Vec<(u32, String)> = v.into_iter().map(|e| (e.number, e.uid)).collect();
            ("uidl", PyList::new(py, items)?.into_any())
        }
        Reply::UidlOne(e) => ("uidl-one", (e.number, e.uid).into_pyobject(py)?.into_any()),
        Reply::Capabilities(c) => ("capa", convert::capabilities(py, &c)?.into_any()),
        Reply::Languages(v) => ("lang", PyList::new(py, v)?.into_any()),
        Reply::Retrieved { octets } => ("retrieved", octets.into_pyobject(py)?.into_any()),
        Reply::TlsReady => ("tls-ready", none()),
        Reply::Closed(text) => ("closed", text.into_pyobject(py)?.into_any()),
    })
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Greeting => "greeting",
        Phase::Authorization => "authorization",
        Phase::AwaitingTls => "awaiting-tls",
        Phase::Transaction => "transaction",
        Phase::Closed => "closed",
        Phase::Failed => "failed",
    }
}

/// The sans-IO POP3 client engine.
///
/// Feed what the server sends with `receive_data()` (and `receive_eof()`), take events with
/// `next_event()` until it returns `None`, issue commands (each returns an int id, completed in
/// order by a `Completed` event), and write `data_to_send()` to the server. No I/O happens here.
#[pyclass(module = "popwire._popwire", name = "Engine")]
pub struct Engine {
    client: Client,
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (
        security = "tls", *, negotiate = true, allow_cleartext = false, pipelining = true,
        max_in_flight = 128, lenient_uids = false, status_line_limit = None, data_line_limit = None,
        listing_limit = None, input_buffer_limit = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        security: &str,
        negotiate: bool,
        allow_cleartext: bool,
        pipelining: bool,
        max_in_flight: usize,
        lenient_uids: bool,
        status_line_limit: Option<usize>,
        data_line_limit: Option<usize>,
        listing_limit: Option<usize>,
        input_buffer_limit: Option<usize>,
    ) -> PyResult<Self> {
        let defaults = Limits::default();
        let options = ClientOptions {
            security: convert::security(security)?,
            allow_cleartext_password: allow_cleartext,
            negotiate,
            pipelining,
            max_in_flight,
            lenient_uids,
            sasl_initial_response: true,
            limits: Limits {
                status_line: status_line_limit.unwrap_or(defaults.status_line),
                data_line: data_line_limit.unwrap_or(defaults.data_line),
                listing: listing_limit.unwrap_or(defaults.listing),
                input_buffer: input_buffer_limit.unwrap_or(defaults.input_buffer),
            },
        };
        Ok(Self {
            client: Client::new(options),
        })
    }

    /// Hands bytes received from the server to the engine. Raises on a fatal error.
    fn receive_data(&mut self, data: PyBackedBytes) -> PyResult<()> {
        self.client.handle_input(&data).map_err(proto_err)
    }

    /// The server closed the connection. Raises unless the session had ended cleanly.
    fn receive_eof(&mut self) -> PyResult<()> {
        self.client.handle_eof().map_err(proto_err)
    }

    /// Bytes to write to the server now (`b""` when there is nothing).
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut out = Vec::new();
        while let Some(bytes) = self.client.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        PyBytes::new(py, &out)
    }

    /// The next event (`Greeting`, `Ready`, `TlsReady`, `Body`, `Completed`), or `None` when the
    /// engine needs more input. Raises on a fatal error: close the connection then.
    fn next_event(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let event = match self.client.poll_event().map_err(proto_err)? {
            None => return Ok(None),
            Some(event) => event,
        };
        let object = match event {
            Event::Greeting(g) => Py::new(py, Greeting::from(&g))?.into_any(),
            Event::Ready(caps) => Py::new(
                py,
                Ready {
                    capabilities: convert::capabilities(py, &caps)?.unbind(),
                },
            )?
            .into_any(),
            Event::TlsReady => Py::new(py, TlsReady)?.into_any(),
            Event::Body { id, data } => Py::new(
                py,
                Body {
                    id: id.get(),
                    data: PyBytes::new(py, data).unbind(),
                },
            )?
            .into_any(),
            Event::Completed { id, result } => {
                let completed = match result {
                    Ok(reply) => {
                        let (kind, value) = reply_value(py, reply)?;
                        Completed {
                            id: id.get(),
                            kind,
                            value: value.unbind(),
                            error: None,
                            text: self.client.status_text().to_string(),
                        }
                    }
                    Err(e) => Completed {
                        id: id.get(),
                        kind: "error",
                        value: py.None(),
                        error: Some(ErrorInfo::from(&e).to_object(py)?.unbind()),
                        text: String::new(),
                    },
                };
                Py::new(py, completed)?.into_any()
            }
        };
        Ok(Some(object))
    }

    /// The TLS handshake after STLS succeeded. Forgets the capabilities learnt in cleartext.
    fn tls_established(&mut self) -> PyResult<()> {
        self.client.tls_established().map_err(proto_err)
    }

    /// The session's state: "greeting", "authorization", "awaiting-tls", "transaction",
    /// "closed" or "failed".
    #[getter]
    fn phase(&self) -> &'static str {
        phase_name(self.client.phase())
    }

    /// The greeting, once received.
    #[getter]
    fn greeting(&self) -> Option<Greeting> {
        self.client.greeting().map(Greeting::from)
    }

    /// The latest capabilities, `NAME -> [args]` (empty before CAPA and right after STLS).
    #[getter]
    fn capabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        convert::capabilities(py, self.client.capabilities())
    }

    /// True once the transport is TLS (implicit, or after `tls_established()`).
    #[getter]
    fn is_tls(&self) -> bool {
        self.client.is_tls()
    }

    /// Commands issued and not yet completed.
    #[getter]
    fn pending(&self) -> usize {
        self.client.pending()
    }

    /// The error that ended the session, if any.
    #[getter]
    fn failure<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.client
            .failure()
            .map(|e| ErrorInfo::from(e).to_object(py))
            .transpose()
    }

    // ---- commands: each returns the id its `Completed` event will carry -------------------

    /// Logs in. `mechanism`: "auto" (the strongest offered, never APOP), "user", "apop", or a
    /// SASL name. Give `password`, or `token` for XOAUTH2/OAUTHBEARER.
    #[pyo3(signature = (mechanism, user, password = None, *, token = None, authzid = None, nonce = None, host = None, port = None))]
    #[allow(clippy::too_many_arguments)]
    fn auth(
        &mut self,
        mechanism: &str,
        user: String,
        password: Option<String>,
        token: Option<String>,
        authzid: Option<String>,
        nonce: Option<String>,
        host: Option<String>,
        port: Option<u16>,
    ) -> PyResult<u64> {
        let request = AuthRequest {
            username: user,
            credential: convert::credential(password, token)?,
            method: convert::auth_method(mechanism)?,
            authzid,
            nonce: match nonce {
                Some(n) => n,
                None => convert::fresh_nonce()?,
            },
            host,
            port,
        };
        id(self.client.authenticate(request))
    }

    /// `USER name`.
    fn user(&mut self, name: &str) -> PyResult<u64> {
        id(self.client.user(name))
    }

    /// `PASS password`.
    fn pass_(&mut self, password: String) -> PyResult<u64> {
        id(self.client.pass(Secret::from(password)))
    }

    /// `APOP name digest` (MD5: only when named).
    fn apop(&mut self, name: &str, password: String) -> PyResult<u64> {
        id(self.client.apop(name, &Secret::from(password)))
    }

    /// `CAPA`.
    fn capa(&mut self) -> PyResult<u64> {
        id(self.client.capa())
    }

    /// `STLS`.
    fn stls(&mut self) -> PyResult<u64> {
        id(self.client.stls())
    }

    /// `STAT`.
    fn stat(&mut self) -> PyResult<u64> {
        id(self.client.stat())
    }

    /// `LIST` or `LIST n`.
    #[pyo3(signature = (num = None))]
    fn list(&mut self, num: Option<u32>) -> PyResult<u64> {
        id(self.client.list(num))
    }

    /// `UIDL` or `UIDL n`.
    #[pyo3(signature = (num = None))]
    fn uidl(&mut self, num: Option<u32>) -> PyResult<u64> {
        id(self.client.uidl(num))
    }

    /// `RETR n`: `Body` events, then `Completed(kind="retrieved", value=octets)`.
    fn retr(&mut self, num: u32) -> PyResult<u64> {
        id(self.client.retr(num))
    }

    /// `TOP n lines`, streamed like RETR.
    fn top(&mut self, num: u32, lines: u32) -> PyResult<u64> {
        id(self.client.top(num, lines))
    }

    /// `DELE n`.
    fn dele(&mut self, num: u32) -> PyResult<u64> {
        id(self.client.dele(num))
    }

    /// `NOOP`.
    fn noop(&mut self) -> PyResult<u64> {
        id(self.client.noop())
    }

    /// `RSET`.
    fn rset(&mut self) -> PyResult<u64> {
        id(self.client.rset())
    }

    /// `QUIT`.
    fn quit(&mut self) -> PyResult<u64> {
        id(self.client.quit())
    }

    /// `UTF8` (RFC 6856), when the server advertised it.
    fn utf8(&mut self) -> PyResult<u64> {
        id(self.client.utf8())
    }

    /// `LANG` or `LANG tag` (RFC 6856), when the server advertised it.
    #[pyo3(signature = (tag = None))]
    fn lang(&mut self, tag: Option<&str>) -> PyResult<u64> {
        id(self.client.lang(tag))
    }

    fn __repr__(&self) -> String {
        format!(
            "<popwire.Engine phase={} tls={} pending={}>",
            phase_name(self.client.phase()),
            self.client.is_tls(),
            self.client.pending()
        )
    }
}

fn id(result: Result<popwire::proto::CommandId, popwire::proto::Error>) -> PyResult<u64> {
    result.map(|c| c.get()).map_err(proto_err)
}

/// Registers the engine's classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<Greeting>()?;
    m.add_class::<Ready>()?;
    m.add_class::<TlsReady>()?;
    m.add_class::<Body>()?;
    m.add_class::<Completed>()?;
    Ok(())
}

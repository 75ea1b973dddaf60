//! `popwire.Client`: the blocking adapter (`BlockingClient`) with the GIL released around every
//! network call, so threads that fetch in parallel really run in parallel.
//!
//! `iter_retr` pulls the body piece by piece on the caller's thread (`BlockingClient::
//! retr_stream`/`read_body`); an iterator closed early leaves the rest to the adapter, which
//! reads past it at the session's next call. `retr_many` runs the pipelined blocking call on a
//! helper thread that hands whole messages over a small bounded channel, so that a thousand
//! small messages cost a few dozen GIL round trips; the channel's bound keeps memory bounded.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use popwire::net::blocking::BlockingClient;
use popwire::net::{BodyRead, BodyStream, ConnectOptions, NetError, RetrPart};
use popwire::proto::{Secret, ServerError};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::convert;
use crate::errors::{ErrorInfo, net_err, usage};

type Session = Arc<Mutex<Option<BlockingClient>>>;

/// Chunks in flight between a streaming helper thread and its Python iterator.
const CHANNEL_DEPTH: usize = 4;

fn lock(session: &Session) -> MutexGuard<'_, Option<BlockingClient>> {
    session
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a call on the session could not run.
enum Failure {
    Closed,
    Net(NetError),
    Python(PyErr),
}

impl From<NetError> for Failure {
    fn from(e: NetError) -> Self {
        Failure::Net(e)
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Closed => usage("usage:closed", "the client is closed"),
            Failure::Net(e) => net_err(e),
            Failure::Python(e) => e,
        }
    }
}

/// Seconds (a Python float) to a `Duration`; `None` waits (practically) forever.
fn seconds(name: &str, value: Option<f64>) -> PyResult<Duration> {
    match value {
        None => Ok(Duration::from_secs(365 * 24 * 3600)),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, not {s}"
        ))),
    }
}

/// A synchronous POP3 client: connects, runs TLS, and negotiates on construction.
///
/// Use it as a context manager: on a clean exit it sends QUIT (committing deletions); when the
/// block raises, it closes without QUIT, so the server forgets the deletions.
#[pyclass(module = "popwire._popwire", name = "Client", frozen)]
pub struct Client {
    session: Session,
    /// An `iter_retr`/`retr_many` iterator is open on this session.
    streaming: Arc<AtomicBool>,
    /// `quit()` or `close()` ran. Kept apart from the session's lock, which another thread may
    /// hold for a long time, so that reading it never waits while holding the GIL.
    closed: AtomicBool,
    #[pyo3(get)]
    host: String,
    #[pyo3(get)]
    port: u16,
}

impl Client {
    /// Runs `f` on the live session with the GIL released.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut BlockingClient) -> Result<T, Failure> + Send,
    ) -> PyResult<T> {
        self.check_not_streaming()?;
        let session = &self.session;
        py.detach(move || match lock(session).as_mut() {
            Some(client) => f(client),
            None => Err(Failure::Closed),
        })
        .map_err(PyErr::from)
    }

    fn check_not_streaming(&self) -> PyResult<()> {
        if self.streaming.load(Ordering::Acquire) {
            return Err(usage(
                "usage:streaming",
                "a retrieval iterator is still open on this client: exhaust it or call its close() first",
            ));
        }
        Ok(())
    }

    /// Starts a helper thread that runs `job` on the session and sends its output to the
    /// returned receiver.
    fn spawn_stream<M: Send + 'static>(
        &self,
        job: impl FnOnce(&mut BlockingClient, &SyncSender<M>) -> Result<(), NetError> + Send + 'static,
        done: impl FnOnce(Result<(), Failure>) -> M + Send + 'static,
    ) -> PyResult<Receiver<M>> {
        self.check_not_streaming()?;
        let (tx, rx) = sync_channel(CHANNEL_DEPTH);
        let session = self.session.clone();
        self.streaming.store(true, Ordering::Release);
        std::thread::Builder::new()
            .name("popwire-stream".into())
            .spawn(move || {
                let result = match lock(&session).as_mut() {
                    Some(client) => job(client, &tx).map_err(Failure::Net),
                    None => Err(Failure::Closed),
                };
                let _ = tx.send(done(result));
            })
            .map_err(|e| {
                self.streaming.store(false, Ordering::Release);
                pyo3::exceptions::PyOSError::new_err(format!(
                    "cannot start a streaming thread: {e}"
                ))
            })?;
        Ok(rx)
    }
}

#[pymethods]
impl Client {
    /// Connects to `host` (port 995 for "tls", else 110), runs TLS ("tls": implicit;
    /// "starttls": STLS, required), and reads the capabilities. `ca_file` adds a PEM CA to the
    /// system roots. `timeout` bounds every wait, in seconds.
    #[new]
    #[pyo3(signature = (host, port = None, *, security = "tls", ca_file = None, timeout = Some(60.0), allow_cleartext = false, connect_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        host: String,
        port: Option<u16>,
        security: &str,
        ca_file: Option<PathBuf>,
        timeout: Option<f64>,
        allow_cleartext: bool,
        connect_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let mut options = ConnectOptions::new(host.clone());
        options.port = port;
        options.security = convert::security(security)?;
        options.ca_file = ca_file;
        options.timeout = seconds("timeout", timeout)?;
        options.connect_timeout = match connect_timeout {
            Some(_) => seconds("connect_timeout", connect_timeout)?,
            None => options.timeout,
        };
        options.engine.allow_cleartext_password = allow_cleartext;
        let port = options.port();
        let client = py
            .detach(move || BlockingClient::connect(options))
            .map_err(net_err)?;
        Ok(Self {
            session: Arc::new(Mutex::new(Some(client))),
            streaming: Arc::new(AtomicBool::new(false)),
            closed: AtomicBool::new(false),
            host,
            port,
        })
    }

    /// Logs in with the strongest mechanism the server offers for a password (never APOP).
    fn login(&self, py: Python<'_>, user: String, password: String) -> PyResult<()> {
        let password = Secret::from(password);
        self.call(py, move |c| Ok(c.login(&user, password)?))
    }

    /// Logs in with a chosen method: "auto", "user" (USER/PASS), "apop", or a SASL mechanism
    /// ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER").
    /// Give `password`, or `token` for the OAuth mechanisms.
    #[pyo3(signature = (mechanism, user, password = None, *, token = None))]
    fn auth(
        &self,
        py: Python<'_>,
        mechanism: &str,
        user: String,
        password: Option<String>,
        token: Option<String>,
    ) -> PyResult<()> {
        let method = convert::auth_method(mechanism)?;
        let credential = convert::credential(password, token)?;
        self.call(py, move |c| Ok(c.authenticate(&user, credential, method)?))
    }

    /// `CAPA`: `{NAME: [args]}`, and refreshes `capabilities`.
    fn capa<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let caps = self.call(py, |c| Ok(c.capa()?))?;
        convert::capabilities(py, &caps)
    }

    /// The capabilities learnt so far (after TLS, when TLS was negotiated).
    #[getter]
    fn capabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let caps = self.call(py, |c| Ok(c.capabilities().clone()))?;
        convert::capabilities(py, &caps)
    }

    /// The greeting text (after `+OK `).
    #[getter]
    fn greeting(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.call(py, |c| Ok(c.engine().greeting().map(|g| g.text.clone())))
    }

    /// True when the connection is TLS.
    #[getter]
    fn is_tls(&self, py: Python<'_>) -> PyResult<bool> {
        self.call(py, |c| Ok(c.engine().is_tls()))
    }

    /// True once `quit()` or `close()` ended the session.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// `STAT`: `(count, size)`.
    fn stat(&self, py: Python<'_>) -> PyResult<(u32, u64)> {
        self.call(py, |c| Ok(c.stat()?))
    }

    /// `LIST`: `[(num, size), ...]`; with `num`, that message's `(num, size)`.
    #[pyo3(signature = (num = None))]
    fn list<'py>(&self, py: Python<'py>, num: Option<u32>) -> PyResult<Bound<'py, PyAny>> {
        match num {
            Some(n) => {
                let e = self.call(py, move |c| Ok(c.list_one(n)?))?;
                Ok((e.number, e.size).into_pyobject(py)?.into_any())
            }
            None => {
                let all = self.call(py, |c| Ok(c.list()?))?;
                let items: Vec<(u32, u64)> = all.iter().map(|e| (e.number, e.size)).collect();
                Ok(PyList::new(py, items)?.into_any())
            }
        }
    }

    /// `UIDL`: `[(num, uid), ...]`; with `num`, that message's `(num, uid)`.
    #[pyo3(signature = (num = None))]
    fn uidl<'py>(&self, py: Python<'py>, num: Option<u32>) -> PyResult<Bound<'py, PyAny>> {
        match num {
            Some(n) => {
                let e = self.call(py, move |c| Ok(c.uidl_one(n)?))?;
                Ok((e.number, e.uid).into_pyobject(py)?.into_any())
            }
            None => {
                let all = self.call(py, |c| Ok(c.uidl()?))?;
                let items: Vec<(u32, String)> =
                    all.into_iter().map(|e| (e.number, e.uid)).collect();
                Ok(PyList::new(py, items)?.into_any())
            }
        }
    }

    /// `RETR num`: the message, dot-unstuffed, with CRLF line ends.
    fn retr<'py>(&self, py: Python<'py>, num: u32) -> PyResult<Bound<'py, PyBytes>> {
        let body = self.call(py, move |c| Ok(c.retr(num)?))?;
        Ok(PyBytes::new(py, &body))
    }

    /// `RETR num` streamed into `fileobj` (anything with `write(bytes)`), chunk by chunk;
    /// returns the octets written. Memory stays bounded whatever the message size.
    fn retr_to(&self, py: Python<'_>, num: u32, fileobj: Bound<'_, PyAny>) -> PyResult<u64> {
        let write = fileobj.getattr("write")?.unbind();
        self.call(py, move |c| {
            let mut sink = PyWriter { write, error: None };
            let result = c.retr_to(num, &mut sink);
            match (sink.error.take(), result) {
                (Some(e), _) => Err(Failure::Python(e)),
                (None, result) => Ok(result?),
            }
        })
    }

    /// `RETR num` as an iterator of `bytes` chunks (bounded memory). Finish or `close()` it
    /// before calling anything else on this client.
    fn iter_retr(&self, py: Python<'_>, num: u32) -> PyResult<RetrIterator> {
        self.check_not_streaming()?;
        let stream = self.call(py, move |c| Ok(c.retr_stream(num)?))?;
        self.streaming.store(true, Ordering::Release);
        Ok(RetrIterator {
            session: self.session.clone(),
            stream: Mutex::new(Some(stream)),
            streaming: self.streaming.clone(),
        })
    }

    /// Retrieves many messages, pipelined when the server allows: an iterator of
    /// `(num, bytes)` in the order given. A message the server refuses raises `ServerError` at
    /// its turn; calling `next()` again goes on with the rest.
    fn retr_many(&self, nums: Vec<u32>) -> PyResult<RetrManyIterator> {
        let rx = self.spawn_stream(
            move |c, tx| {
                let mut batch = Batcher::new(tx);
                let mut current: Vec<u8> = Vec::new();
                let result = c.retr_many(&nums, &mut |part| {
                    match part {
                        RetrPart::Data { bytes, .. } if batch.open => {
                            current.extend_from_slice(bytes)
                        }
                        RetrPart::Data { .. } => {}
                        RetrPart::End { number, .. } => {
                            batch.push(Item::Body(number, std::mem::take(&mut current)));
                        }
                        RetrPart::Refused { number, error } => {
                            batch.push(Item::Refused(number, error))
                        }
                    }
                    Ok(())
                });
                batch.flush();
                result
            },
            |result| match result {
                Ok(()) => Message::End,
                Err(e) => Message::Failed(e),
            },
        )?;
        Ok(RetrManyIterator {
            rx: Mutex::new(Some(rx)),
            ready: Mutex::new(VecDeque::new()),
            streaming: self.streaming.clone(),
        })
    }

    /// `TOP num lines`: the headers and the first `lines` lines of the body.
    fn top<'py>(&self, py: Python<'py>, num: u32, lines: u32) -> PyResult<Bound<'py, PyBytes>> {
        let body = self.call(py, move |c| Ok(c.top(num, lines)?))?;
        Ok(PyBytes::new(py, &body))
    }

    /// `DELE num`: marks the message; the server deletes it at `quit()`.
    fn dele(&self, py: Python<'_>, num: u32) -> PyResult<()> {
        self.call(py, move |c| Ok(c.dele(num)?))
    }

    /// `RSET`: unmarks every deletion.
    fn rset(&self, py: Python<'_>) -> PyResult<()> {
        self.call(py, |c| Ok(c.rset()?))
    }

    /// `NOOP`.
    fn noop(&self, py: Python<'_>) -> PyResult<()> {
        self.call(py, |c| Ok(c.noop()?))
    }

    /// `QUIT`: the server commits the deletions; the connection closes. Returns the server's
    /// goodbye text. Does nothing on a closed client.
    fn quit(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.check_not_streaming()?;
        self.closed.store(true, Ordering::Release);
        let session = &self.session;
        py.detach(move || match lock(session).take() {
            Some(client) => client.quit().map(Some),
            None => Ok(None),
        })
        .map_err(net_err)
    }

    /// Closes the connection without QUIT: the server forgets the deletions.
    fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Release);
        let session = &self.session;
        py.detach(move || drop(lock(session).take()));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if exc_type.is_some_and(|t| !t.is_none()) || self.streaming.load(Ordering::Acquire) {
            self.close(py);
        } else {
            self.quit(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "open" };
        format!("<popwire.Client {}:{} {state}>", self.host, self.port)
    }
}

/// `io::Write` onto a Python `write()` method, taking the GIL per chunk. Never fails: the
/// first Python error is kept in `error` (see `write`).
struct PyWriter {
    write: Py<PyAny>,
    error: Option<PyErr>,
}

impl Write for PyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_some() {
            // After a failed write, swallow the rest so the reply is still read to its end and
            // the session stays usable; the first error is raised once RETR completes.
            return Ok(buf.len());
        }
        let result = Python::attach(|py| -> PyResult<()> {
            let mut rest = buf;
            while !rest.is_empty() {
                let written = self.write.call1(py, (PyBytes::new(py, rest),))?;
                // Raw files may write less than asked; buffered ones return the length or None.
                match written.extract::<Option<usize>>(py).unwrap_or(None) {
                    Some(0) => {
                        return Err(pyo3::exceptions::PyOSError::new_err(
                            "write() accepted no bytes",
                        ));
                    }
                    Some(n) => rest = rest.get(n.min(rest.len())..).unwrap_or_default(),
                    None => break,
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            self.error = Some(e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The chunks of one message, from `Client.iter_retr()`.
#[pyclass(module = "popwire._popwire", name = "RetrIterator", frozen)]
pub struct RetrIterator {
    session: Session,
    /// `None` once the body ended, failed or was closed.
    stream: Mutex<Option<BodyStream>>,
    streaming: Arc<AtomicBool>,
}

/// How much `RetrIterator` reads before handing a chunk to Python.
const PULL_CHUNK: usize = 64 * 1024;

impl RetrIterator {
    fn finish(&self) {
        self.stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        self.streaming.store(false, Ordering::Release);
    }

    /// The next piece: `Ok(None)` at the end.
    fn pull(&self) -> Result<Option<Vec<u8>>, Failure> {
        let mut slot = self
            .stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(stream) = slot.as_mut() else {
            return Ok(None);
        };
        let mut guard = lock(&self.session);
        let client = guard.as_mut().ok_or(Failure::Closed)?;
        let mut out = Vec::new();
        let read = client.read_body(stream, &mut out, PULL_CHUNK);
        match read {
            Ok(BodyRead::More) => Ok(Some(out)),
            Ok(BodyRead::End { .. }) => {
                slot.take();
                Ok((!out.is_empty()).then_some(out))
            }
            Ok(BodyRead::Refused(error)) => {
                slot.take();
                Err(Failure::Net(popwire::proto::Error::Server(error).into()))
            }
            Err(e) => {
                slot.take();
                Err(Failure::Net(e))
            }
        }
    }
}

#[pymethods]
impl RetrIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        match py.detach(|| self.pull()) {
            Ok(Some(bytes)) => Ok(Some(PyBytes::new(py, &bytes))),
            Ok(None) => {
                self.finish();
                Ok(None)
            }
            Err(e) => {
                self.finish();
                Err(e.into())
            }
        }
    }

    /// Stops iterating; the client's next call reads past the rest of the message.
    fn close(&self) {
        self.finish();
    }
}

impl Drop for RetrIterator {
    fn drop(&mut self) {
        self.streaming.store(false, Ordering::Release);
    }
}

enum Item {
    Body(u32, Vec<u8>),
    Refused(u32, ServerError),
}

enum Message {
    Batch(Vec<Item>),
    End,
    Failed(Failure),
}

/// Hands finished messages over in batches (up to `BATCH_BYTES`, or `BATCH_WAIT` old), so a
/// thousand small messages cost a few dozen thread wake-ups rather than a thousand.
struct Batcher<'a> {
    tx: &'a SyncSender<Message>,
    items: Vec<Item>,
    bytes: usize,
    since: Option<Instant>,
    /// False once the iterator is gone: the rest is read and dropped.
    open: bool,
}

const BATCH_BYTES: usize = 256 * 1024;
const BATCH_WAIT: Duration = Duration::from_millis(5);

impl<'a> Batcher<'a> {
    fn new(tx: &'a SyncSender<Message>) -> Self {
        Self {
            tx,
            items: Vec::new(),
            bytes: 0,
            since: None,
            open: true,
        }
    }

    fn push(&mut self, item: Item) {
        if !self.open {
            return;
        }
        if let Item::Body(_, body) = &item {
            self.bytes += body.len();
        }
        self.items.push(item);
        let since = *self.since.get_or_insert_with(Instant::now);
        if self.bytes >= BATCH_BYTES || since.elapsed() >= BATCH_WAIT {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.open && !self.items.is_empty() {
            let items = std::mem::take(&mut self.items);
            self.open = self.tx.send(Message::Batch(items)).is_ok();
        }
        self.bytes = 0;
        self.since = None;
    }
}

/// `(num, bytes)` per message, from `Client.retr_many()`.
#[pyclass(module = "popwire._popwire", name = "RetrManyIterator", frozen)]
pub struct RetrManyIterator {
    /// Locked only with the GIL released (it may wait in `recv`).
    rx: Mutex<Option<Receiver<Message>>>,
    /// Received, not yet returned. Locked only briefly, with the GIL held.
    ready: Mutex<VecDeque<Item>>,
    streaming: Arc<AtomicBool>,
}

impl RetrManyIterator {
    fn finish(&self) {
        if let Ok(mut rx) = self.rx.lock() {
            rx.take();
        }
        if let Ok(mut ready) = self.ready.lock() {
            ready.clear();
        }
        self.streaming.store(false, Ordering::Release);
    }

    fn pop(&self) -> Option<Item> {
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }
}

#[pymethods]
impl RetrManyIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<(u32, Bound<'py, PyBytes>)>> {
        let item = match self.pop() {
            Some(item) => item,
            None => {
                let next = py.detach(|| {
                    let guard = self
                        .rx
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    guard.as_ref().map(|rx| rx.recv().unwrap_or(Message::End))
                });
                match next {
                    Some(Message::Batch(items)) => {
                        let mut ready = self
                            .ready
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        ready.extend(items);
                        match ready.pop_front() {
                            Some(item) => item,
                            None => return Ok(None),
                        }
                    }
                    None | Some(Message::End) => {
                        self.finish();
                        return Ok(None);
                    }
                    Some(Message::Failed(e)) => {
                        self.finish();
                        return Err(e.into());
                    }
                }
            }
        };
        match item {
            Item::Body(n, bytes) => Ok(Some((n, PyBytes::new(py, &bytes)))),
            Item::Refused(n, error) => {
                let info = ErrorInfo::from(&popwire::proto::Error::Server(error));
                let exc = info.to_object(py)?;
                exc.setattr("number", n)?;
                Err(PyErr::from_value(exc))
            }
        }
    }

    /// Stops iterating; the remaining replies are read and discarded in the background.
    fn close(&self) {
        self.finish();
    }
}

impl Drop for RetrManyIterator {
    fn drop(&mut self) {
        self.streaming.store(false, Ordering::Release);
    }
}

/// Registers the client's classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Client>()?;
    m.add_class::<RetrIterator>()?;
    m.add_class::<RetrManyIterator>()?;
    Ok(())
}

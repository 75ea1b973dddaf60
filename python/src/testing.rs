//! `popwire.testing.Server`'s engine: the server role over a shared in-memory maildrop, one
//! thread per connection, on a loopback port. Plain TCP only.
//!
//! The maildrop is shared by every session, so each session snapshots the unique-ids it was
//! shown at login and maps message numbers through them: a concurrent session's QUIT cannot make
//! another session read or delete the wrong message.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use popwire::proto::server::{MaildropError, MessageInfo};
use popwire::proto::{
    Maildrop, Mechanism, MemoryMaildrop, Secret, Server, ServerEvent, ServerOptions,
};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

/// What every session shares.
struct State {
    maildrop: MemoryMaildrop,
    deleted: Vec<(String, Vec<u8>)>,
    locked: bool,
    logins: Vec<String>,
    auth_failures: u64,
    sessions: u64,
}

struct Shared {
    state: Mutex<State>,
    options: ServerOptions,
    apop: bool,
    lock_maildrop: bool,
    latency: Duration,
    stop: AtomicBool,
    serial: AtomicU64,
    connections: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One session's view of the shared maildrop.
struct SessionDrop {
    shared: Arc<Shared>,
    uids: Vec<String>,
    holds_lock: bool,
}

impl SessionDrop {
    /// The message's current 0-based position in the shared maildrop.
    fn position(state: &State, uid: &str) -> Option<usize> {
        state.maildrop.uids().position(|u| u == uid)
    }
}

impl Maildrop for SessionDrop {
    fn password(&mut self, user: &str) -> Option<Secret> {
        self.shared.state().maildrop.password(user)
    }

    fn open(&mut self, user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        let mut state = self.shared.state();
        if self.shared.lock_maildrop {
            if state.locked {
                return Err(MaildropError::InUse);
            }
            state.locked = true;
            self.holds_lock = true;
        }
        let list = state.maildrop.open(user)?;
        self.uids = list.iter().map(|m| m.uid.clone()).collect();
        Ok(list)
    }

    fn read(&mut self, index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError> {
        let uid = self
            .uids
            .get(index)
            .ok_or_else(|| MaildropError::Permanent("no such message".into()))?;
        let mut state = self.shared.state();
        let position = SessionDrop::position(&state, uid)
            .ok_or_else(|| MaildropError::Permanent("message deleted by another session".into()))?;
        state.maildrop.read(position, offset, buf)
    }

    fn commit(&mut self, deleted: &[usize]) -> Result<(), MaildropError> {
        let mut state = self.shared.state();
        let mut positions: Vec<usize> = deleted
            .iter()
            .filter_map(|i| self.uids.get(*i))
            .filter_map(|uid| SessionDrop::position(&state, uid))
            .collect();
        positions.sort_unstable();
        positions.dedup();
        let gone: Vec<(String, Vec<u8>)> = {
            let uids: Vec<&str> = state.maildrop.uids().collect();
            let messages: Vec<&[u8]> = state.maildrop.messages().collect();
            positions
                .iter()
                .filter_map(|p| Some((uids.get(*p)?.to_string(), messages.get(*p)?.to_vec())))
                .collect()
        };
        state.maildrop.commit(&positions)?;
        state.deleted.extend(gone);
        if self.holds_lock {
            state.locked = false;
            self.holds_lock = false;
        }
        Ok(())
    }

    fn scram_nonce(&mut self) -> String {
        self.shared.state().maildrop.scram_nonce()
    }
}

impl Drop for SessionDrop {
    fn drop(&mut self) {
        if self.holds_lock {
            self.shared.state().locked = false;
        }
    }
}

/// Serves one connection until QUIT, EOF, an error, or `stop()`.
fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut options = shared.options.clone();
    if shared.apop {
        let n = shared.serial.fetch_add(1, Ordering::Relaxed);
        options.apop_timestamp = Some(format!("<{}.{n}@popwire.testing>", std::process::id()));
    }
    shared.state().sessions += 1;
    let maildrop = SessionDrop {
        shared: shared.clone(),
        uids: Vec::new(),
        holds_lock: false,
    };
    let mut server = Server::new(options, maildrop);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(out) = server.poll_transmit() {
            if stream.write_all(&out).is_err() {
                return;
            }
        }
        while let Some(event) = server.poll_event() {
            let mut state = shared.state();
            match event {
                ServerEvent::LoggedIn { user, .. } => state.logins.push(user),
                ServerEvent::AuthFailed { .. } => state.auth_failures += 1,
                _ => {}
            }
        }
        if server.is_closed() || shared.stop.load(Ordering::Acquire) {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Wait out the latency in small steps, so stop() need not wait for it.
        let until = std::time::Instant::now() + shared.latency;
        while !shared.stop.load(Ordering::Acquire) {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
        server.handle_input(buf.get(..n).unwrap_or_default());
    }
}

/// The in-process POP3 server behind `popwire.testing.Server`.
#[pyclass(module = "popwire._popwire", name = "TestServer", frozen)]
pub struct TestServer {
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
    address: SocketAddr,
}

impl TestServer {
    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }
}

#[pymethods]
impl TestServer {
    #[new]
    #[pyo3(signature = (
        messages, users, *, host = "127.0.0.1", port = 0, apop = false, pipelining = true,
        allow_cleartext = true, mechanisms = None, latency = 0.0, lock_maildrop = false,
        greeting = None, implementation = None, login_delay = None, expire_days = None,
        scram_iterations = 4096
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        messages: Vec<PyBackedBytes>,
        users: Vec<(String, String)>,
        host: &str,
        port: u16,
        apop: bool,
        pipelining: bool,
        allow_cleartext: bool,
        mechanisms: Option<Vec<String>>,
        latency: f64,
        lock_maildrop: bool,
        greeting: Option<String>,
        implementation: Option<String>,
        login_delay: Option<u64>,
        expire_days: Option<u32>,
        scram_iterations: u32,
    ) -> PyResult<Self> {
        let mut maildrop = MemoryMaildrop::new();
        maildrop.set_nonce_seed(crate::convert::fresh_nonce()?.replace(',', "."));
        for (user, password) in users {
            maildrop.add_user(user, password);
        }
        for message in messages {
            maildrop.add_message(message.to_vec());
        }
        let mut options = ServerOptions {
            allow_cleartext_password: allow_cleartext,
            pipelining,
            implementation,
            login_delay,
            expire: expire_days.map(popwire::proto::Expire::Days),
            scram_iterations,
            ..ServerOptions::default()
        };
        if let Some(text) = greeting {
            options.greeting = text;
        }
        if let Some(names) = mechanisms {
            options.mechanisms = names
                .iter()
                .map(|n| {
                    Mechanism::from_name(n).ok_or_else(|| {
                        PyValueError::new_err(format!("unknown SASL mechanism {n:?}"))
                    })
                })
                .collect::<PyResult<_>>()?;
        }
        if !latency.is_finite() || latency < 0.0 {
            return Err(PyValueError::new_err(
                "latency must be a non-negative number of seconds",
            ));
        }
        let listener = TcpListener::bind((host, port))
            .map_err(|e| PyOSError::new_err(format!("cannot listen on {host}:{port}: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                maildrop,
                deleted: Vec::new(),
                locked: false,
                logins: Vec::new(),
                auth_failures: 0,
                sessions: 0,
            }),
            options,
            apop,
            lock_maildrop,
            latency: Duration::from_secs_f64(latency),
            stop: AtomicBool::new(false),
            serial: AtomicU64::new(0),
            connections: Mutex::new(Vec::new()),
        });
        let accept_shared = shared.clone();
        let accept = py.detach(move || {
            std::thread::Builder::new()
                .name("popwire-testing-accept".into())
                .spawn(move || accept_loop(listener, accept_shared))
        });
        let accept = accept
            .map_err(|e| PyOSError::new_err(format!("cannot start the server thread: {e}")))?;
        Ok(Self {
            shared,
            accept: Mutex::new(Some(accept)),
            address,
        })
    }

    /// The address clients connect to.
    #[getter]
    fn host(&self) -> String {
        self.address.ip().to_string()
    }

    /// The port clients connect to.
    #[getter]
    fn port(&self) -> u16 {
        self.address.port()
    }

    /// The messages still in the maildrop, in order.
    #[getter]
    fn messages<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        let state = self.state();
        state
            .maildrop
            .messages()
            .map(|m| PyBytes::new(py, m))
            .collect()
    }

    /// Their unique-ids.
    #[getter]
    fn uids(&self) -> Vec<String> {
        self.state().maildrop.uids().map(str::to_string).collect()
    }

    /// Messages deleted by a QUIT, in order, as `(uid, bytes)`.
    #[getter]
    fn deleted<'py>(&self, py: Python<'py>) -> Vec<(String, Bound<'py, PyBytes>)> {
        let state = self.state();
        state
            .deleted
            .iter()
            .map(|(uid, m)| (uid.clone(), PyBytes::new(py, m)))
            .collect()
    }

    /// User names that logged in, one per successful login.
    #[getter]
    fn logins(&self) -> Vec<String> {
        self.state().logins.clone()
    }

    /// Failed login attempts.
    #[getter]
    fn auth_failures(&self) -> u64 {
        self.state().auth_failures
    }

    /// Connections accepted.
    #[getter]
    fn sessions(&self) -> u64 {
        self.state().sessions
    }

    /// Adds a message; returns its unique-id.
    #[pyo3(signature = (message, uid = None))]
    fn add_message(&self, message: PyBackedBytes, uid: Option<String>) -> String {
        let mut state = self.state();
        match uid {
            Some(uid) => {
                state
                    .maildrop
                    .add_message_with_uid(uid.clone(), message.to_vec());
                uid
            }
            None => state.maildrop.add_message(message.to_vec()),
        }
    }

    /// Adds or replaces a user.
    fn add_user(&self, user: String, password: String) {
        self.state().maildrop.add_user(user, password);
    }

    /// Stops accepting, closes every connection, and waits for the threads.
    fn stop(&self, py: Python<'_>) {
        let shared = self.shared.clone();
        let accept = self
            .accept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let address = self.address;
        py.detach(move || {
            shared.stop.store(true, Ordering::Release);
            if let Some(handle) = accept {
                // Wake the blocking accept() so it sees the stop flag.
                let _ = TcpStream::connect_timeout(&address, Duration::from_secs(1));
                let _ = handle.join();
            }
            let connections = std::mem::take(
                &mut *shared
                    .connections
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for (stream, _) in &connections {
                let _ = stream.shutdown(Shutdown::Both);
            }
            for (_, handle) in connections {
                let _ = handle.join();
            }
        });
    }

    fn __repr__(&self) -> String {
        format!("<popwire.testing.Server {}>", self.address)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if self.accept.get_mut().map(|a| a.is_some()).unwrap_or(false) {
            let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
        }
        if let Ok(connections) = self.shared.connections.lock() {
            for (stream, _) in connections.iter() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let Ok(watch) = stream.try_clone() else {
            continue;
        };
        let session_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("popwire-testing-session".into())
            .spawn(move || serve(stream, session_shared));
        if let Ok(handle) = spawned {
            let mut connections = shared
                .connections
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            connections.retain(|(_, h)| !h.is_finished());
            connections.push((watch, handle));
        }
    }
}

/// Registers the test server.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TestServer>()?;
    Ok(())
}

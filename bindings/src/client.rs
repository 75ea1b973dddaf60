//! `Client`: a POP3 session with async methods (Kotlin `suspend`, Swift `async`).
//!
//! Each call runs the core's [`BlockingClient`] on a worker thread (the `blocking` crate's
//! pool), so the foreign side never blocks its own threads and the socket timeouts of the
//! blocking adapter apply. Calls on one `Client` from several coroutines/tasks are serialised
//! by a mutex, in the order they take it.
//!
//! Cancelling the coroutine or task drops the call's future; a guard in it then stops the
//! worker: a call still waiting for the mutex never runs, and a running one is cancelled
//! through the session's [`Canceller`] (its socket is shut down, so a blocked read returns at
//! once). The session is closed afterwards: connect again.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use popwire::net::blocking::BlockingClient;
use popwire::net::{Canceller, ConnectOptions};
use popwire::proto::Secret;

use crate::errors::PopError;
use crate::types::{Capability, ListEntry, Security, UidlEntry, capabilities};

/// Receives the body of a streamed `RETR`, chunk by chunk (dot-unstuffed, CRLF line ends).
#[uniffi::export(with_foreign)]
pub trait ChunkSink: Send + Sync {
    /// One chunk. Throw (any `PopError`) to stop: the call then fails with that error.
    fn on_chunk(&self, chunk: Vec<u8>) -> Result<(), PopError>;
}

/// `STAT`: message count and total size.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MailboxStat {
    /// Messages in the mailbox.
    pub count: u32,
    /// Their total size in octets.
    pub size: u64,
}

type Slot = Arc<Mutex<Option<BlockingClient>>>;

/// A POP3 session. Create it with `Client()`, then `connect`, `login`, commands, `quit`.
#[derive(uniffi::Object)]
pub struct Client {
    slot: Slot,
    /// The canceller of the latest `connect`'s session, for [`Client::cancel`].
    canceller: Mutex<Canceller>,
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<BlockingClient>> {
    // A panic in another call cannot leave the session half-updated in a way the engine
    // would not report, so a poisoned lock is used as is.
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

fn not_connected() -> PopError {
    PopError::config("usage:not-connected", "not connected: call connect() first")
}

/// One call's link to its worker thread, so that cancelling the call stops the worker.
#[derive(Default)]
struct Call {
    state: AtomicU8,
    /// The canceller of the session the call runs on, stored before the call starts.
    canceller: Mutex<Option<Canceller>>,
}

const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const ABANDONED: u8 = 3;

impl Call {
    /// The worker claims the call; false when it was cancelled before it started.
    fn start(&self, canceller: Canceller) -> bool {
        *self
            .canceller
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(canceller);
        self.state
            .compare_exchange(IDLE, RUNNING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    fn finish(&self) {
        self.state.store(DONE, Ordering::SeqCst);
    }
}

/// Lives in the call's future: dropped before the call finished means cancelled.
struct CancelOnDrop(Arc<Call>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let call = &self.0;
        let claimed =
            call.state
                .compare_exchange(IDLE, ABANDONED, Ordering::SeqCst, Ordering::SeqCst);
        if claimed == Err(RUNNING) {
            let canceller = call
                .canceller
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(c) = canceller.as_ref() {
                c.cancel();
            }
        }
    }
}

impl Client {
    /// Runs `f` on the connected session, on a worker thread; cancellable (module docs).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut BlockingClient) -> Result<T, PopError> + Send + 'static,
    ) -> Result<T, PopError> {
        let slot = self.slot.clone();
        let call = Arc::new(Call::default());
        let _cancel_on_drop = CancelOnDrop(call.clone());
        blocking::unblock(move || {
            let mut guard = lock(&slot);
            let client = guard.as_mut().ok_or_else(not_connected)?;
            if !call.start(client.canceller()) {
                return Err(PopError::cancelled());
            }
            let result = f(client);
            call.finish();
            if client.canceller().is_cancelled() {
                // The socket is shut down: the session cannot go on.
                *guard = None;
            }
            result
        })
        .await
    }
}

#[uniffi::export]
impl Client {
    /// A client that is not connected yet.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            slot: Arc::default(),
            canceller: Mutex::default(),
        })
    }

    /// Connects, runs TLS (implicit or STLS), reads the greeting and the capabilities.
    /// `port` 0 means the default (995 for TLS, 110 otherwise). `ca_pem`: extra CA
    /// certificates (PEM) to trust besides the system roots. `timeout_ms`: for connecting and
    /// for every read or write.
    pub async fn connect(
        &self,
        host: String,
        port: u16,
        security: Security,
        ca_pem: Option<Vec<u8>>,
        timeout_ms: u64,
    ) -> Result<(), PopError> {
        let slot = self.slot.clone();
        let call = Arc::new(Call::default());
        let _cancel_on_drop = CancelOnDrop(call.clone());
        let canceller = Canceller::new();
        *self
            .canceller
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = canceller.clone();
        blocking::unblock(move || {
            if !call.start(canceller.clone()) {
                return Err(PopError::cancelled());
            }
            let mut options = ConnectOptions::new(host);
            options.port = (port != 0).then_some(port);
            options.security = security.into();
            options.ca_pem = ca_pem;
            let timeout = Duration::from_millis(timeout_ms.max(1));
            options.connect_timeout = timeout;
            options.timeout = timeout;
            let connected = BlockingClient::connect_cancellable(options, &canceller);
            call.finish();
            *lock(&slot) = Some(connected?);
            Ok(())
        })
        .await
    }

    /// Cancels the running call (connect included) and closes the session. Kotlin does not
    /// need it (cancelling the coroutine does this); Swift's async calls do not see Task
    /// cancellation, so its `cancellable` wrapper calls this.
    pub fn cancel(&self) {
        self.canceller
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .cancel();
    }

    /// True between a successful `connect` and `quit`.
    pub fn is_connected(&self) -> bool {
        lock(&self.slot).is_some()
    }

    /// Logs in with the strongest method the server offers for a password.
    pub async fn login(&self, user: String, password: String) -> Result<(), PopError> {
        self.with(move |c| Ok(c.login(&user, Secret::new(password))?))
            .await
    }

    /// `CAPA`.
    pub async fn capa(&self) -> Result<Vec<Capability>, PopError> {
        self.with(|c| Ok(capabilities(&c.capa()?))).await
    }

    /// `STAT`.
    pub async fn stat(&self) -> Result<MailboxStat, PopError> {
        self.with(|c| {
            let (count, size) = c.stat()?;
            Ok(MailboxStat { count, size })
        })
        .await
    }

    /// `LIST`.
    pub async fn list(&self) -> Result<Vec<ListEntry>, PopError> {
        self.with(|c| Ok(c.list()?.iter().map(ListEntry::from).collect()))
            .await
    }

    /// `UIDL`.
    pub async fn uidl(&self) -> Result<Vec<UidlEntry>, PopError> {
        self.with(|c| Ok(c.uidl()?.iter().map(UidlEntry::from).collect()))
            .await
    }

    /// `RETR num` into memory (dot-unstuffed, CRLF line ends).
    pub async fn retr(&self, num: u32) -> Result<Vec<u8>, PopError> {
        self.with(move |c| Ok(c.retr(num)?)).await
    }

    /// `RETR num`, streamed to `sink` as it arrives; returns the octets delivered.
    pub async fn retr_to(&self, num: u32, sink: Arc<dyn ChunkSink>) -> Result<u64, PopError> {
        self.with(move |c| {
            let mut writer = SinkWriter { sink, error: None };
            match c.retr_to(num, &mut writer) {
                Ok(n) => Ok(n),
                Err(e) => Err(writer.error.take().unwrap_or_else(|| e.into())),
            }
        })
        .await
    }

    /// `TOP num lines`: the headers and the first `lines` body lines.
    pub async fn top(&self, num: u32, lines: u32) -> Result<Vec<u8>, PopError> {
        self.with(move |c| Ok(c.top(num, lines)?)).await
    }

    /// `DELE num` (effective at `quit`).
    pub async fn dele(&self, num: u32) -> Result<(), PopError> {
        self.with(move |c| Ok(c.dele(num)?)).await
    }

    /// `RSET`: undoes the deletions of this session.
    pub async fn rset(&self) -> Result<(), PopError> {
        self.with(|c| Ok(c.rset()?)).await
    }

    /// `NOOP`.
    pub async fn noop(&self) -> Result<(), PopError> {
        self.with(|c| Ok(c.noop()?)).await
    }

    /// `QUIT`: the server commits deletions; returns its goodbye text. The client can connect
    /// again afterwards.
    pub async fn quit(&self) -> Result<String, PopError> {
        let slot = self.slot.clone();
        let call = Arc::new(Call::default());
        let _cancel_on_drop = CancelOnDrop(call.clone());
        blocking::unblock(move || {
            let client = lock(&slot).take().ok_or_else(not_connected)?;
            if !call.start(client.canceller()) {
                return Err(PopError::cancelled());
            }
            let result = client.quit();
            call.finish();
            Ok(result?)
        })
        .await
    }
}

/// Adapts a foreign [`ChunkSink`] to `io::Write`, keeping the foreign error to rethrow it.
struct SinkWriter {
    sink: Arc<dyn ChunkSink>,
    error: Option<PopError>,
}

impl io::Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.sink.on_chunk(buf.to_vec()) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                let msg = e.to_string();
                self.error = Some(e);
                Err(io::Error::other(msg))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

//! [`Canceller`]: stops a blocking call from another thread.
//!
//! A blocking read cannot be interrupted by a flag alone, so cancelling also shuts the socket
//! down: the read returns at once, and the call fails with [`NetError::Cancelled`]. The session
//! is over afterwards (a POP3 exchange cut in the middle cannot be resumed); connect again.
//! Async callers need none of this: dropping the future cancels the call.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::NetError;

/// A handle that cancels a [`BlockingClient`](super::blocking::BlockingClient)'s calls from any
/// thread. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct Canceller {
    inner: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    cancelled: AtomicBool,
    /// A second handle on the session's socket, to shut it down from another thread.
    socket: Mutex<Option<TcpStream>>,
}

impl Canceller {
    /// A handle not attached to any connection yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the running call and every later one: a blocked read or write returns at once.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        if let Some(socket) = self.socket().as_ref() {
            // Already closed by the peer is fine: the call then fails anyway.
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// True once [`Canceller::cancel`] was called.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Ties the handle to the connection; a cancel that came first shuts it down now.
    pub(crate) fn attach(&self, tcp: &TcpStream) -> Result<(), NetError> {
        let clone = tcp
            .try_clone()
            .map_err(|e| NetError::io("configuring the socket", e))?;
        *self.socket() = Some(clone);
        if self.is_cancelled() {
            self.cancel();
            return Err(NetError::Cancelled);
        }
        Ok(())
    }

    /// `error`, or [`NetError::Cancelled`] when the failure came from cancelling.
    pub(crate) fn explain(&self, error: NetError) -> NetError {
        if self.is_cancelled() {
            NetError::Cancelled
        } else {
            error
        }
    }

    fn socket(&self) -> MutexGuard<'_, Option<TcpStream>> {
        // A panic elsewhere cannot leave the Option half-written.
        self.inner
            .socket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    #[test]
    fn cancel_unblocks_a_read_on_another_thread() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut tcp = TcpStream::connect(addr).expect("connect");
        let _held = listener.accept().expect("accept");
        let canceller = Canceller::new();
        canceller.attach(&tcp).expect("attach");
        let c = canceller.clone();
        let started = Instant::now();
        let cancel = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            c.cancel();
        });
        let mut buf = [0u8; 16];
        let read = tcp.read(&mut buf);
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(canceller.is_cancelled());
        cancel.join().expect("join");
    }
}

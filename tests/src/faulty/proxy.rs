//! A fault-injecting TCP proxy in front of a real POP3 server (the test Dovecot): it passes
//! bytes through and cuts the connection at a chosen phase of the session.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Where a [`FaultProxy`] cuts a session: both sockets are shut down at once, so the client sees
/// the connection drop and the server sees the client vanish without QUIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// After the greeting line reached the client.
    AfterGreeting,
    /// In the middle of logging in: at the client's PASS or APOP line, or at its first line
    /// answering a SASL challenge (so the server has seen AUTH and the client is mid-exchange).
    /// The line is not forwarded.
    DuringAuth,
    /// After `octets` octets of the server's replies from the first RETR on reached the client
    /// (status lines included), i.e. in the middle of a message.
    MidRetr {
        /// Octets passed before the cut.
        octets: u64,
    },
    /// When the client sends QUIT after at least one DELE: the QUIT is not forwarded, so the
    /// server never commits the deletions.
    AfterDele,
    /// The QUIT is forwarded, but nothing the server sends from then on reaches the client
    /// (neither the answers to DELEs pipelined with it nor QUIT's); the cut comes when the
    /// server closes the connection, which is after it committed the deletions. The client
    /// never hears that it did.
    DuringQuit,
}

/// What one proxied session did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySession {
    /// 1-based, in accept order.
    pub number: usize,
    /// The cut planned for this session.
    pub cut: Option<Cut>,
    /// The cut happened.
    pub fired: bool,
    /// The verbs of the client's lines that were forwarded (upper case), with
    /// [`SASL_RESPONSE`](super::SASL_RESPONSE) for answers to SASL challenges.
    pub forwarded: Vec<String>,
    /// Octets forwarded from the server to the client.
    pub to_client: u64,
}

/// A TCP proxy that cuts sessions at a chosen [`Cut`], for dropped-connection tests against a
/// real server. It understands just enough POP3 to find the phases: it reads the client's
/// command lines and counts the server's octets. The client must speak plain POP3 to it
/// (`security = "none"`), since it cannot see into TLS.
///
/// Sessions without a cut pass through untouched, so "session 1 is cut mid-RETR, session 2
/// (the retry) goes through" is `FaultProxy::start(upstream, [(1, Cut::MidRetr { octets })])`.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct ProxyShared {
    log: Mutex<Vec<ProxySession>>,
    live: Mutex<Vec<TcpStream>>,
    stopping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards each connection to `upstream`, cutting session
    /// `n` as `cuts` says.
    pub fn start(
        upstream: SocketAddr,
        cuts: impl IntoIterator<Item = (usize, Cut)>,
    ) -> io::Result<FaultProxy> {
        let cuts: BTreeMap<usize, Cut> = cuts.into_iter().collect();
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(ProxyShared {
            log: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                for client in listener.incoming() {
                    if accept_shared.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let number = {
                        let mut log = lock(&accept_shared.log);
                        let number = log.len() + 1;
                        log.push(ProxySession {
                            number,
                            cut: cuts.get(&number).copied(),
                            ..ProxySession::default()
                        });
                        number
                    };
                    let Ok(server) = TcpStream::connect(upstream) else {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    for s in [&client, &server] {
                        if let Ok(clone) = s.try_clone() {
                            lock(&accept_shared.live).push(clone);
                        }
                    }
                    let _ = Pipe::spawn(
                        number,
                        cuts.get(&number).copied(),
                        client,
                        server,
                        &accept_shared,
                    );
                }
            })?;
        Ok(FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where it listens (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every session so far.
    pub fn log(&self) -> Vec<ProxySession> {
        lock(&self.shared.log).clone()
    }

    /// Session `n` (1-based).
    pub fn session(&self, n: usize) -> Option<ProxySession> {
        lock(&self.shared.log).get(n.wrapping_sub(1)).cloned()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for s in lock(&self.shared.live).iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

/// The two directions of one proxied session and what they tell each other.
struct Pipe {
    number: usize,
    cut: Option<Cut>,
    client: TcpStream,
    server: TcpStream,
    shared: Arc<ProxyShared>,
    /// The client sent RETR: server octets count towards [`Cut::MidRetr`].
    retr_started: AtomicBool,
    /// QUIT was forwarded under [`Cut::DuringQuit`]: the next server octets are its answer.
    quit_forwarded: AtomicBool,
    /// The server's last line was a SASL challenge (`+ `).
    challenged: AtomicBool,
    /// The client sent a transaction command: the login is over, and a line starting with `+ `
    /// is message data, not a challenge.
    transaction: AtomicBool,
    to_client: AtomicU64,
}

impl Pipe {
    fn spawn(
        number: usize,
        cut: Option<Cut>,
        client: TcpStream,
        server: TcpStream,
        shared: &Arc<ProxyShared>,
    ) -> io::Result<()> {
        let pipe = Arc::new(Pipe {
            number,
            cut,
            client,
            server,
            shared: Arc::clone(shared),
            retr_started: AtomicBool::new(false),
            quit_forwarded: AtomicBool::new(false),
            challenged: AtomicBool::new(false),
            transaction: AtomicBool::new(false),
            to_client: AtomicU64::new(0),
        });
        let up = Arc::clone(&pipe);
        std::thread::Builder::new()
            .name(format!("proxy-{number}-up"))
            .spawn(move || {
                let _ = up.client_to_server();
                up.close();
            })?;
        std::thread::Builder::new()
            .name(format!("proxy-{number}-down"))
            .spawn(move || {
                let _ = pipe.server_to_client();
                pipe.close();
            })?;
        Ok(())
    }

    /// Forwards the client's lines, cutting where the plan says.
    fn client_to_server(&self) -> io::Result<()> {
        let mut reader = BufReader::new(&self.client);
        let mut server = &self.server;
        let mut auth_open = false;
        let mut dele_seen = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            // The answer to a SASL challenge is base64, not a command: never logged.
            let challenged = self.challenged.load(Ordering::SeqCst);
            let verb = if challenged {
                super::SASL_RESPONSE.to_owned()
            } else {
                verb(&line)
            };
            let cut_here = match self.cut {
                Some(Cut::DuringAuth) => {
                    matches!(verb.as_str(), "PASS" | "APOP") || (auth_open && challenged)
                }
                Some(Cut::AfterDele) => verb == "QUIT" && dele_seen,
                _ => false,
            };
            if cut_here {
                return self.fire();
            }
            auth_open |= verb == "AUTH";
            dele_seen |= verb == "DELE";
            if verb == "RETR" {
                self.retr_started.store(true, Ordering::SeqCst);
            }
            if matches!(
                verb.as_str(),
                "STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "NOOP" | "RSET"
            ) {
                self.transaction.store(true, Ordering::SeqCst);
            }
            if verb == "QUIT" && self.cut == Some(Cut::DuringQuit) {
                self.quit_forwarded.store(true, Ordering::SeqCst);
            }
            server.write_all(&line)?;
            if let Some(s) = lock(&self.shared.log).get_mut(self.number - 1) {
                s.forwarded.push(verb);
            }
        }
    }

    /// Forwards the server's octets, cutting where the plan says.
    fn server_to_client(&self) -> io::Result<()> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut server = &self.server;
        let mut client = &self.client;
        let mut at_line_start = true;
        // Octets forwarded since the first RETR.
        let mut retr_octets = 0u64;
        loop {
            let n = server.read(&mut buf)?;
            let quitting =
                self.cut == Some(Cut::DuringQuit) && self.quit_forwarded.load(Ordering::SeqCst);
            if quitting {
                // Swallow the answers to the pipelined DELEs and to QUIT; the server closing
                // the connection is the sign that it carried out the QUIT.
                if n == 0 {
                    return self.fire();
                }
                continue;
            }
            if n == 0 {
                return Ok(());
            }
            let data = buf.get(..n).unwrap_or_default();
            let retr = self.retr_started.load(Ordering::SeqCst);
            // How much of `data` to forward before cutting, when the cut is in it.
            let limit = match self.cut {
                Some(Cut::AfterGreeting) => data.iter().position(|b| *b == b'\n').map(|i| i + 1),
                Some(Cut::MidRetr { octets }) if retr => {
                    let left = octets.saturating_sub(retr_octets);
                    (left < n as u64).then(|| usize::try_from(left).unwrap_or(n))
                }
                _ => None,
            };
            let forward = data.get(..limit.unwrap_or(n)).unwrap_or(data);
            // A SASL challenge is a reply line starting with "+ " before the transaction
            // (afterwards such a line is message data).
            if at_line_start && !forward.is_empty() {
                let challenge =
                    forward.starts_with(b"+ ") && !self.transaction.load(Ordering::SeqCst);
                self.challenged.store(challenge, Ordering::SeqCst);
            }
            if let Some(last) = forward.last() {
                at_line_start = *last == b'\n';
            }
            client.write_all(forward)?;
            self.to_client
                .fetch_add(forward.len() as u64, Ordering::SeqCst);
            if retr {
                retr_octets += forward.len() as u64;
            }
            if limit.is_some() {
                return self.fire();
            }
        }
    }

    /// Cuts: both sockets shut down, the session marked.
    fn fire(&self) -> io::Result<()> {
        if let Some(s) = lock(&self.shared.log).get_mut(self.number - 1) {
            s.fired = true;
        }
        self.close();
        Ok(())
    }

    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
        let octets = self.to_client.load(Ordering::SeqCst);
        if let Some(s) = lock(&self.shared.log).get_mut(self.number - 1) {
            s.to_client = s.to_client.max(octets);
        }
    }
}

/// The first word of a line, upper case.
fn verb(line: &[u8]) -> String {
    let first = line
        .split(|b| matches!(b, b' ' | b'\r' | b'\n'))
        .next()
        .unwrap_or_default();
    String::from_utf8_lossy(first).to_ascii_uppercase()
}

//! A POP3 server for `bench/watch-scale.sh` and `bench/watch-soak.sh`: users `u0` .. `u{N-1}`
//! (password `pw`), each of whom has exactly one new message at every login (the next one once
//! the last was deleted), so one poll of every account is one "cycle" of one message each. The
//! engine's server role driven by smol tasks: one thread serves thousands of connections.
//!
//! `popwire-manyusers ADDRESS USERS [--drop-percent P] [--stall-percent P] [--seed N]
//! [--control ADDRESS]`; prints `ready ADDRESS` when listening.
//!
//! Message `seq` of user `n` has Message-ID `<un-seq@manyusers>`; it is removed only by a
//! session whose QUIT committed its DELE (POP semantics). With faults, a share of the sessions
//! is dropped or stalled at a random point (`fault.rs`). A connection to the control address
//! gets a dump of what the server handed out and removed (`dump`), for the soak's check.

mod fault;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use fault::{Fault, Faults, Mode, Point};
use popwire::proto::Secret;
use popwire::proto::server::{Maildrop, MaildropError, MessageInfo, Server, ServerOptions};
use smol::io::{AsyncReadExt, AsyncWriteExt};

/// One user's mailbox: its current message's number, whether a session holds the mailbox, and
/// whether the current message was ever handed out (listed to a logged-in session).
#[derive(Default, Clone, Copy)]
struct User {
    seq: u64,
    busy: bool,
    handed: bool,
}

#[derive(Default)]
struct Shared {
    users: Mutex<Vec<User>>,
    faults: Faults,
    sessions: AtomicU64,
    open: AtomicU64,
    delivered: AtomicU64,
}

impl Shared {
    fn users(&self) -> std::sync::MutexGuard<'_, Vec<User>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The control connection's text: counters, faults, then `user N REMOVED HANDED` per user
    /// (REMOVED messages `0..REMOVED` are gone from the server; HANDED 1 means message REMOVED
    /// exists and is still on the server).
    fn dump(&self) -> String {
        let mut out = format!(
            "sessions_total {}\nsessions_open {}\ndeleted {}\n",
            self.sessions.load(Ordering::Relaxed),
            self.open.load(Ordering::Relaxed),
            self.delivered.load(Ordering::Relaxed),
        );
        self.faults.report(&mut out);
        for (n, user) in self.users().iter().enumerate() {
            out.push_str(&format!(
                "user {n} {} {}\n",
                user.seq,
                u8::from(user.handed)
            ));
        }
        out
    }
}

struct Drop1 {
    shared: Arc<Shared>,
    user: Option<usize>,
    body: Vec<u8>,
}

fn user_index(shared: &Shared, user: &str) -> Option<usize> {
    let n: usize = user.strip_prefix('u')?.parse().ok()?;
    (n < shared.users().len()).then_some(n)
}

impl Maildrop for Drop1 {
    fn password(&mut self, user: &str) -> Option<Secret> {
        user_index(&self.shared, user).map(|_| Secret::from("pw"))
    }

    fn open(&mut self, user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        let no_user = || MaildropError::Permanent("no such user".into());
        let n = user_index(&self.shared, user).ok_or_else(no_user)?;
        let mut users = self.shared.users();
        let entry = users.get_mut(n).ok_or_else(no_user)?;
        if entry.busy {
            return Err(MaildropError::InUse);
        }
        entry.busy = true;
        entry.handed = true;
        self.user = Some(n);
        let id = format!("<u{n}-{}@manyusers>", entry.seq);
        self.body = format!(
            "From: sender@example.com\r\nTo: u{n}@example.com\r\nSubject: message {} for u{n}\r\nMessage-ID: {id}\r\n\r\n{}\r\nend of {id}\r\n",
            entry.seq,
            "All work and no play makes a benchmark. ".repeat(20)
        )
        .into_bytes();
        Ok(vec![MessageInfo {
            size: popwire::proto::server::wire_size(&self.body),
            uid: format!("m{}-{n}", entry.seq),
        }])
    }

    fn read(&mut self, _index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let rest = self.body.get(start..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
            to.copy_from_slice(from);
        }
        Ok(n)
    }

    fn commit(&mut self, deleted: &[usize]) -> Result<(), MaildropError> {
        if let Some(n) = self.user.take()
            && let Some(entry) = self.shared.users().get_mut(n)
        {
            entry.busy = false;
            if !deleted.is_empty() {
                entry.seq += 1;
                entry.handed = false;
                self.shared.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn scram_nonce(&mut self) -> String {
        "benchmarknonce0123456789".into()
    }
}

impl Drop for Drop1 {
    fn drop(&mut self) {
        // A session that ended without QUIT releases the lock without deleting.
        if let Some(n) = self.user.take()
            && let Some(entry) = self.shared.users().get_mut(n)
        {
            entry.busy = false;
        }
    }
}

/// Counts a session as open while it lives (the soak checks none is left once watch stopped).
struct Open(Arc<Shared>);

impl Open {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.open.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(shared))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

type Session = Server<Drop1>;

async fn flush(server: &mut Session, stream: &mut async_net::TcpStream) -> std::io::Result<()> {
    while let Some(out) = server.poll_transmit() {
        stream.write_all(&out).await?;
    }
    while server.poll_event().is_some() {}
    Ok(())
}

/// A stalled session: reads and ignores everything until the client gives up and closes.
async fn stall(stream: &mut async_net::TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf).await? != 0 {}
    Ok(())
}

/// The fault at its point; `line` is the client's line that reached it (none at the greeting).
async fn fire(
    fault: Fault,
    server: &mut Session,
    stream: &mut async_net::TcpStream,
    line: &[u8],
) -> std::io::Result<()> {
    server.maildrop().shared.faults.fired(fault);
    // What the server would send now; half of it goes out, where that is the point.
    let half = match fault.point {
        Point::Greeting => server.poll_transmit(),
        Point::Retr => {
            server.handle_input(line);
            server.poll_transmit()
        }
        Point::QuitCommitted => {
            server.handle_input(line);
            let _committed = server.poll_transmit();
            None
        }
        Point::Login | Point::Quit => None,
    };
    if let Some(out) = half {
        let part = out.get(..out.len() / 2).unwrap_or_default();
        if fault.mode == Mode::Drop || fault.point != Point::Greeting {
            stream.write_all(part).await?;
        }
    }
    match fault.mode {
        Mode::Drop => Ok(()),
        Mode::Stall => stall(stream).await,
    }
}

async fn serve(mut stream: async_net::TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let _open = Open::new(&shared);
    let session = shared.sessions.fetch_add(1, Ordering::Relaxed);
    let plan = shared.faults.plan(session);
    let options = ServerOptions {
        allow_cleartext_password: true,
        ..Default::default()
    };
    let mut server = Server::new(
        options,
        Drop1 {
            shared,
            user: None,
            body: Vec::new(),
        },
    );
    if let Some(fault) = plan.filter(|f| f.point == Point::Greeting) {
        return fire(fault, &mut server, &mut stream, b"").await;
    }
    flush(&mut server, &mut stream).await?;
    let mut buf = vec![0u8; 16 * 1024];
    // The client's input, handed over a line at a time so a fault fires at its command even
    // when the client pipelines.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if server.is_closed() {
            return Ok(());
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        pending.extend_from_slice(buf.get(..n).unwrap_or_default());
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some(fault) = plan.filter(|f| f.point.fires_on(&line)) {
                return fire(fault, &mut server, &mut stream, &line).await;
            }
            server.handle_input(&line);
            flush(&mut server, &mut stream).await?;
        }
        if pending.len() > 4096 {
            // No line end in sight: the engine answers that (line too long).
            server.handle_input(&pending);
            pending.clear();
            flush(&mut server, &mut stream).await?;
        }
    }
}

/// Serves dumps on the control address: one per connection.
async fn control(listener: async_net::TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let text = shared.dump();
        let _ = stream.write_all(text.as_bytes()).await;
    }
}

struct Args {
    address: SocketAddr,
    users: usize,
    control: Option<SocketAddr>,
    faults: Faults,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut faults = Faults::default();
    let mut control = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--drop-percent" => {
                faults.drop_percent = value(&arg)?.parse().map_err(|e| format!("{arg}: {e}"))?;
            }
            "--stall-percent" => {
                faults.stall_percent = value(&arg)?.parse().map_err(|e| format!("{arg}: {e}"))?;
            }
            "--seed" => faults.seed = value(&arg)?.parse().map_err(|e| format!("{arg}: {e}"))?,
            "--control" => {
                control = Some(value(&arg)?.parse().map_err(|e| format!("{arg}: {e}"))?);
            }
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let address = match positional.next() {
        Some(a) => a.parse().map_err(|e| format!("address {a}: {e}"))?,
        None => SocketAddr::from(([127, 0, 0, 1], 11110)),
    };
    let users = match positional.next() {
        Some(n) => n.parse().map_err(|e| format!("users {n}: {e}"))?,
        None => 10_000,
    };
    Ok(Args {
        address,
        users,
        control,
        faults,
    })
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("popwire-manyusers: {e}");
            std::process::exit(2);
        }
    };
    let users = args.users;
    let shared = Arc::new(Shared {
        users: Mutex::new(vec![User::default(); users]),
        faults: args.faults,
        ..Shared::default()
    });
    let result: std::io::Result<()> = smol::block_on(async {
        if let Some(address) = args.control {
            let listener = async_net::TcpListener::bind(address).await?;
            smol::spawn(control(listener, Arc::clone(&shared))).detach();
        }
        let listener = async_net::TcpListener::bind(args.address).await?;
        println!("ready {} {users}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let shared = Arc::clone(&shared);
            smol::spawn(async move {
                let _ = serve(stream, shared).await;
            })
            .detach();
        }
    });
    if let Err(e) = result {
        eprintln!("popwire-manyusers: {e}");
        std::process::exit(1);
    }
}

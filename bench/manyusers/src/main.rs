//! A POP3 server for `bench/watch-scale.sh`: users `u0` .. `u{N-1}` (password `pw`), each of
//! whom has exactly one new message at every login (a fresh UID once the last was deleted), so
//! one poll of every account is one "cycle" of one message each. The engine's server role driven
//! by smol tasks: one thread serves thousands of connections.
//!
//! `popwire-manyusers ADDRESS USERS` (e.g. `127.0.0.1:11110 10000`); prints `ready ADDRESS` when
//! listening.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use popwire::proto::Secret;
use popwire::proto::server::{Maildrop, MaildropError, MessageInfo, Server, ServerOptions};
use smol::io::{AsyncReadExt, AsyncWriteExt};

/// Per user: the number of the current message (its UID) and whether a session holds it.
#[derive(Default)]
struct Shared {
    users: usize,
    state: Mutex<HashMap<usize, (u64, bool)>>,
    delivered: AtomicU64,
}

struct Drop1 {
    shared: Arc<Shared>,
    user: Option<usize>,
    body: Vec<u8>,
}

fn user_index(shared: &Shared, user: &str) -> Option<usize> {
    let n: usize = user.strip_prefix('u')?.parse().ok()?;
    (n < shared.users).then_some(n)
}

impl Maildrop for Drop1 {
    fn password(&mut self, user: &str) -> Option<Secret> {
        user_index(&self.shared, user).map(|_| Secret::from("pw"))
    }

    fn open(&mut self, user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        let n = user_index(&self.shared, user)
            .ok_or_else(|| MaildropError::Permanent("no such user".into()))?;
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = state.entry(n).or_insert((0, false));
        if entry.1 {
            return Err(MaildropError::InUse);
        }
        entry.1 = true;
        self.user = Some(n);
        self.body = format!(
            "From: sender@example.com\r\nTo: u{n}@example.com\r\nSubject: message {} for u{n}\r\nMessage-ID: <{}.u{n}@bench>\r\n\r\n{}\r\n",
            entry.0,
            entry.0,
            "All work and no play makes a benchmark. ".repeat(20)
        )
        .into_bytes();
        Ok(vec![MessageInfo {
            size: popwire::proto::server::wire_size(&self.body),
            uid: format!("m{}-{n}", entry.0),
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
        if let Some(n) = self.user.take() {
            let mut state = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = state.get_mut(&n) {
                entry.1 = false;
                if !deleted.is_empty() {
                    entry.0 += 1;
                    self.shared.delivered.fetch_add(1, Ordering::Relaxed);
                }
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
            && let Some(entry) = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(&n)
        {
            entry.1 = false;
        }
    }
}

async fn serve(mut stream: async_net::TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
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
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(out) = server.poll_transmit() {
            stream.write_all(&out).await?;
        }
        while server.poll_event().is_some() {}
        if server.is_closed() {
            return Ok(());
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        server.handle_input(buf.get(..n).unwrap_or_default());
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let address: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 11110)));
    let users: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let shared = Arc::new(Shared {
        users,
        ..Shared::default()
    });
    let result: std::io::Result<()> = smol::block_on(async {
        let listener = async_net::TcpListener::bind(address).await?;
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

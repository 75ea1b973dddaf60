//! `popwire serve` and the demo's embedded server: the engine's server role over TCP.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use popwire::proto::Secret;
use popwire::proto::server::{Maildrop, MaildropError, MessageInfo, Server, ServerOptions};

/// Serves one connection until the client quits or disconnects.
pub fn serve_connection<M: Maildrop>(
    mut stream: TcpStream,
    mut server: Server<M>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(out) = server.poll_transmit() {
            stream.write_all(&out)?;
        }
        while server.poll_event().is_some() {}
        if server.is_closed() {
            return Ok(());
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        server.handle_input(buf.get(..n).unwrap_or_default());
    }
}

/// Accepts connections forever, one thread each, all serving the same maildrop factory.
pub fn serve<M, F>(listener: TcpListener, make: F) -> io::Result<()>
where
    M: Maildrop + Send + 'static,
    F: Fn() -> (ServerOptions, M) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    for stream in listener.incoming() {
        let stream = stream?;
        let make = Arc::clone(&make);
        std::thread::spawn(move || {
            let (options, maildrop) = make();
            let _ = serve_connection(stream, Server::new(options, maildrop));
        });
    }
    Ok(())
}

/// A Maildir as a POP3 maildrop: `new/` and `cur/`, oldest first; UIDs are the file base names.
/// One lock per process stands in for Maildir's lack of one.
pub struct MaildirMaildrop {
    root: PathBuf,
    user: String,
    password: Secret,
    files: Vec<PathBuf>,
    lock: Arc<AtomicBool>,
    held: bool,
}

impl MaildirMaildrop {
    pub fn new(root: &Path, user: &str, password: Secret, lock: Arc<AtomicBool>) -> Self {
        Self {
            root: root.to_path_buf(),
            user: user.to_string(),
            password,
            files: Vec::new(),
            lock,
            held: false,
        }
    }
}

fn temporary(e: io::Error) -> MaildropError {
    MaildropError::Temporary(e.to_string())
}

impl Maildrop for MaildirMaildrop {
    fn password(&mut self, user: &str) -> Option<Secret> {
        (user == self.user).then(|| self.password.clone())
    }

    fn open(&mut self, _user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        if self
            .lock
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(MaildropError::InUse);
        }
        self.held = true;
        let mut files = Vec::new();
        for sub in ["cur", "new"] {
            let dir = self.root.join(sub);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry.map_err(temporary)?;
                if entry.file_type().map_err(temporary)?.is_file() {
                    files.push(entry.path());
                }
            }
        }
        files.sort();
        let mut infos = Vec::with_capacity(files.len());
        for path in &files {
            let data = std::fs::read(path).map_err(temporary)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let uid: String = name
                .split(':')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(70)
                .collect();
            infos.push(MessageInfo {
                size: popwire::proto::server::wire_size(&data),
                uid,
            });
        }
        self.files = files;
        Ok(infos)
    }

    fn read(&mut self, index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError> {
        use std::io::Seek;
        let path = self
            .files
            .get(index)
            .ok_or_else(|| MaildropError::Permanent("no such message".into()))?;
        let mut file = std::fs::File::open(path).map_err(temporary)?;
        file.seek(io::SeekFrom::Start(offset)).map_err(temporary)?;
        file.read(buf).map_err(temporary)
    }

    fn commit(&mut self, deleted: &[usize]) -> Result<(), MaildropError> {
        for &i in deleted {
            if let Some(path) = self.files.get(i) {
                std::fs::remove_file(path).map_err(temporary)?;
            }
        }
        Ok(())
    }

    fn scram_nonce(&mut self) -> String {
        random_token()
    }
}

impl Drop for MaildirMaildrop {
    fn drop(&mut self) {
        if self.held {
            self.lock.store(false, Ordering::Release);
        }
    }
}

/// 24 random bytes as hex: printable, no commas.
pub fn random_token() -> String {
    let mut bytes = [0u8; 24];
    let _ = getrandom::getrandom(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

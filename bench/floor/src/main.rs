//! `popwire-floor`: the floor of the end-to-end benchmark (`bench/run.sh`).
//!
//! Connects (plain, STLS or implicit TLS), logs in with USER/PASS, then sends `RETR 1..N`
//! (optionally each followed by `DELE i`) pipelined, and `QUIT` once the last RETR reply is
//! in, and reads everything the server sends until it closes, discarding it. The only parsing is counting the multi-line
//! terminators `CRLF . CRLF` (which cannot occur inside a dot-stuffed body), so it is the least
//! work any client can do to download the same mailbox: no decoding, no storing.
//!
//! ```text
//! popwire-floor --host 127.0.0.1 --port 110 --user u --pass pw --count 1000
//!               [--security none|starttls|tls] [--ca-file ca.pem] [--server-name localhost]
//!               [--dele] [--window 1024]
//! ```
//!
//! Prints `responses=N bytes=B` and exits 0 when exactly N multi-line responses arrived.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use memchr::memmem;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The terminator of a multi-line response.
const END: &[u8] = b"\r\n.\r\n";
/// Read buffer size.
const BUF: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    None,
    StartTls,
    Tls,
}

#[derive(Debug)]
struct Args {
    host: String,
    port: u16,
    user: String,
    pass: String,
    count: u64,
    security: Security,
    ca_file: Option<String>,
    server_name: String,
    dele: bool,
    window: u64,
}

fn usage() -> String {
    "usage: popwire-floor --host H --port P --user U --pass PW --count N \
     [--security none|starttls|tls] [--ca-file F] [--server-name NAME] [--dele] [--window W]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".to_owned(),
        port: 0,
        user: String::new(),
        pass: String::new(),
        count: 0,
        security: Security::None,
        ca_file: None,
        server_name: "localhost".to_owned(),
        dele: false,
        window: 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--dele" {
            args.dele = true;
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--host" => args.host = value,
            "--port" => {
                args.port =
                    u16::try_from(num(&value)?).map_err(|_| "--port: too big".to_owned())?;
            }
            "--user" => args.user = value,
            "--pass" => args.pass = value,
            "--count" => args.count = num(&value)?,
            "--window" => args.window = num(&value)?.max(1),
            "--ca-file" => args.ca_file = Some(value),
            "--server-name" => args.server_name = value,
            "--security" => {
                args.security = match value.as_str() {
                    "none" => Security::None,
                    "starttls" => Security::StartTls,
                    "tls" => Security::Tls,
                    _ => return Err(format!("--security: none, starttls or tls, not {value}")),
                }
            }
            _ => return Err(format!("unknown argument {flag}\n{}", usage())),
        }
    }
    if args.port == 0 || args.user.is_empty() {
        return Err(usage());
    }
    Ok(args)
}

/// A plain or TLS connection.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, BufferedSocket>>),
}

/// The socket under rustls, read in big chunks: rustls asks for a few KiB at a time, which
/// would cost the floor far more `recv` calls than popwire makes (popwire's `net::blocking`
/// reads its TLS socket the same way). Written again here on purpose: the floor is the
/// yardstick, so it uses none of popwire's code.
struct BufferedSocket {
    tcp: TcpStream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Read for BufferedSocket {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if out.len() >= self.buf.len() {
                return self.tcp.read(out);
            }
            self.end = self.tcp.read(&mut self.buf)?;
            self.start = 0;
        }
        let available = self.buf.get(self.start..self.end).unwrap_or_default();
        let n = available.len().min(out.len());
        if let (Some(to), Some(from)) = (out.get_mut(..n), available.get(..n)) {
            to.copy_from_slice(from);
        }
        self.start += n;
        Ok(n)
    }
}

impl Write for BufferedSocket {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.tcp.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

fn tls_config(ca_file: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    let path = ca_file.ok_or("TLS needs --ca-file")?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{path}: {e}"))? {
        let cert = cert.map_err(|e| format!("{path}: {e}"))?;
        roots.add(cert).map_err(|e| format!("{path}: {e}"))?;
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn wrap_tls(tcp: TcpStream, args: &Args) -> Result<Conn, String> {
    let name = ServerName::try_from(args.server_name.clone())
        .map_err(|e| format!("--server-name: {e}"))?;
    let conn = ClientConnection::new(tls_config(args.ca_file.as_deref())?, name)
        .map_err(|e| format!("TLS: {e}"))?;
    let sock = BufferedSocket {
        tcp,
        buf: vec![0; BUF].into_boxed_slice(),
        start: 0,
        end: 0,
    };
    Ok(Conn::Tls(Box::new(StreamOwned::new(conn, sock))))
}

/// Reads one status line (the login phase only), keeping any bytes after it in `pending`.
fn read_line(conn: &mut Conn, pending: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(i) = memchr::memchr(b'\n', pending) {
            let rest = pending.split_off(i + 1);
            return Ok(std::mem::replace(pending, rest));
        }
        let n = conn.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("server closed the connection during login".to_owned());
        }
        pending.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}

fn command(conn: &mut Conn, pending: &mut Vec<u8>, line: &str, shown: &str) -> Result<(), String> {
    conn.write_all(line.as_bytes())
        .and_then(|()| conn.flush())
        .map_err(|e| format!("write: {e}"))?;
    let reply = read_line(conn, pending)?;
    if reply.starts_with(b"+OK") {
        Ok(())
    } else {
        Err(format!(
            "{shown}: {}",
            String::from_utf8_lossy(&reply).trim_end()
        ))
    }
}

/// Counts terminators across read boundaries: `tail` holds the last (up to 4) bytes of the
/// stream so far, so a terminator split between two reads is counted once.
struct Counter {
    finder: memmem::Finder<'static>,
    tail: Vec<u8>,
    count: u64,
    bytes: u64,
}

impl Counter {
    fn new() -> Self {
        Counter {
            finder: memmem::Finder::new(END),
            tail: Vec::with_capacity(16),
            count: 0,
            bytes: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        // Terminators that start in the tail and end in this chunk.
        let keep = self.tail.len();
        self.tail.extend_from_slice(
            chunk
                .get(..chunk.len().min(END.len() - 1))
                .unwrap_or_default(),
        );
        self.count += self
            .finder
            .find_iter(&self.tail)
            .filter(|&p| p < keep)
            .count() as u64;
        // Terminators inside this chunk.
        self.count += self.finder.find_iter(chunk).count() as u64;
        // New tail: the last END.len() - 1 bytes of the stream.
        if chunk.len() >= END.len() - 1 {
            self.tail.clear();
            self.tail.extend_from_slice(
                chunk
                    .get(chunk.len() - (END.len() - 1)..)
                    .unwrap_or_default(),
            );
        } else {
            // `tail` already ends with the whole chunk (appended above): keep its last bytes.
            let start = self.tail.len().saturating_sub(END.len() - 1);
            self.tail.drain(..start);
        }
    }
}

fn run(args: &Args) -> Result<Counter, String> {
    let tcp = TcpStream::connect((args.host.as_str(), args.port))
        .map_err(|e| format!("connect {}:{}: {e}", args.host, args.port))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let mut conn = match args.security {
        Security::Tls => wrap_tls(tcp, args)?,
        _ => Conn::Plain(tcp),
    };
    let mut pending = Vec::new();
    let greeting = read_line(&mut conn, &mut pending)?;
    if !greeting.starts_with(b"+OK") {
        return Err(format!(
            "greeting: {}",
            String::from_utf8_lossy(&greeting).trim_end()
        ));
    }
    if args.security == Security::StartTls {
        command(&mut conn, &mut pending, "STLS\r\n", "STLS")?;
        if !pending.is_empty() {
            return Err("bytes after the STLS reply".to_owned());
        }
        conn = match conn {
            Conn::Plain(tcp) => wrap_tls(tcp, args)?,
            tls @ Conn::Tls(_) => tls,
        };
    }
    command(
        &mut conn,
        &mut pending,
        &format!("USER {}\r\n", args.user),
        "USER",
    )?;
    command(
        &mut conn,
        &mut pending,
        &format!("PASS {}\r\n", args.pass),
        "PASS",
    )?;

    let mut counter = Counter::new();
    counter.feed(&pending);
    let mut buf = vec![0u8; BUF];
    let mut sent = 0u64;
    let mut out = Vec::with_capacity(64 * 1024);
    let mut quit_sent = false;
    loop {
        // Keep up to `window` messages requested ahead of what has arrived.
        if sent < args.count && sent - counter.count.min(sent) <= args.window / 2 {
            let upto = (counter.count + args.window).min(args.count);
            out.clear();
            for i in sent + 1..=upto {
                out.extend_from_slice(format!("RETR {i}\r\n").as_bytes());
                if args.dele {
                    out.extend_from_slice(format!("DELE {i}\r\n").as_bytes());
                }
            }
            sent = upto;
            conn.write_all(&out)
                .and_then(|()| conn.flush())
                .map_err(|e| format!("write: {e}"))?;
        }
        if !quit_sent && sent == args.count && counter.count >= args.count {
            // QUIT goes out once every RETR reply is in: over TLS, Dovecot 2.3's login proxy
            // was seen to drop the last kilobyte of output when QUIT arrived pipelined.
            conn.write_all(b"QUIT\r\n")
                .and_then(|()| conn.flush())
                .map_err(|e| format!("write: {e}"))?;
            quit_sent = true;
        }
        let n = match conn.read(&mut buf) {
            Ok(n) => n,
            // A server that closes without close_notify after QUIT is done, not broken.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && counter.count >= args.count => 0,
            Err(e) => return Err(format!("read: {e}")),
        };
        if n == 0 {
            break;
        }
        counter.feed(buf.get(..n).unwrap_or_default());
    }
    Ok(counter)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("popwire-floor: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(c) => {
            println!("responses={} bytes={}", c.count, c.bytes);
            if c.count == args.count {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "popwire-floor: expected {} responses, got {}",
                    args.count, c.count
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("popwire-floor: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Counter;

    #[test]
    fn counts_terminators_at_every_split() {
        let stream = b"+OK 3\r\nab\r\n.\r\n+OK\r\n..x\r\n.\r\n+OK\r\n.\r\n";
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut c = Counter::new();
                c.feed(&stream[..a]);
                c.feed(&stream[a..b]);
                c.feed(&stream[b..]);
                assert_eq!(c.count, 3, "split at {a},{b}");
            }
        }
        // Byte by byte.
        let mut c = Counter::new();
        for byte in stream {
            c.feed(std::slice::from_ref(byte));
        }
        assert_eq!(c.count, 3);
    }
}

#[cfg(test)]
mod random_split_tests {
    use super::Counter;

    #[test]
    fn counts_at_random_splits() {
        let mut stream = Vec::new();
        for i in 0..200 {
            stream.extend_from_slice(format!("+OK {i} octets\r\n").as_bytes());
            for j in 0..(i % 7) {
                stream.extend_from_slice(format!("..{j}\r\nline\r\n\r\n").as_bytes());
            }
            stream.extend_from_slice(b".\r\n+OK Marked to be deleted.\r\n");
        }
        let mut seed: u64 = 12345;
        for _ in 0..200 {
            let mut c = Counter::new();
            let mut pos = 0;
            while pos < stream.len() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let n = ((seed >> 33) % 9) as usize;
                let end = (pos + n).min(stream.len());
                c.feed(&stream[pos..end]);
                pos = end;
            }
            assert_eq!(c.count, 200);
        }
    }
}

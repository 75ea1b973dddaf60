//! Replays every transcript in `tests/vectors/` through the client engine, with the server's bytes
//! split at every offset and fed one byte at a time. The format is in `tests/vectors/README.md`.
//! Also replays the error-class vectors of `tests/vectors/classes/` (format in its README).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use popwire::proto::{
    AuthMethod, AuthRequest, Capabilities, Capability, Client, ClientOptions, Credential, Error,
    Event, Mechanism, Reply, Secret, Security,
};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

/// Decodes the escapes of a `C:`/`S:` line and appends CRLF unless the line ends in `\`.
fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut crlf = true;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            match bytes.get(i + 1) {
                Some(b'r') => out.push(b'\r'),
                Some(b'n') => out.push(b'\n'),
                Some(b't') => out.push(b'\t'),
                Some(b'\\') => out.push(b'\\'),
                Some(b'x') => {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                None => {
                    crlf = false;
                    break;
                }
                Some(c) => panic!("bad escape \\{}", *c as char),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if crlf {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => write!(s, "\\x{b:02x}").unwrap(),
        }
    }
    s
}

fn caps_line(caps: &Capabilities) -> String {
    let names: Vec<String> = caps
        .list
        .iter()
        .map(|c| match c {
            Capability::Top => "TOP".into(),
            Capability::User => "USER".into(),
            Capability::Sasl(m) => format!("SASL:{}", m.join(",")),
            Capability::RespCodes => "RESP-CODES".into(),
            Capability::LoginDelay(n) => format!("LOGIN-DELAY:{n}"),
            Capability::Expire(popwire::proto::Expire::Never) => "EXPIRE:NEVER".into(),
            Capability::Expire(popwire::proto::Expire::Days(d)) => format!("EXPIRE:{d}"),
            Capability::Pipelining => "PIPELINING".into(),
            Capability::Uidl => "UIDL".into(),
            Capability::Implementation(t) => format!("IMPLEMENTATION:{}", t.replace(' ', "_")),
            Capability::Stls => "STLS".into(),
            Capability::AuthRespCode => "AUTH-RESP-CODE".into(),
            Capability::Utf8 => "UTF8".into(),
            Capability::Lang => "LANG".into(),
            Capability::Other(n, _) => n.clone(),
        })
        .collect();
    names.join(" ")
}

fn reply_line(reply: &Reply) -> String {
    match reply {
        Reply::Ok(t) => format!("text {}", escape(t.as_bytes())),
        Reply::Authenticated => "authenticated".into(),
        Reply::Stat { count, size } => format!("stat {count} {size}"),
        Reply::List(v) => {
            let e: Vec<String> = v
                .iter()
                .map(|e| format!("{}:{}", e.number, e.size))
                .collect();
            format!("list {}", e.join(" ")).trim_end().into()
        }
        Reply::ListOne(e) => format!("list-one {}:{}", e.number, e.size),
        Reply::Uidl(v) => {
            let e: Vec<String> = v
                .iter()
                .map(|e| format!("{}:{}", e.number, escape(e.uid.as_bytes())))
                .collect();
            format!("uidl {}", e.join(" ")).trim_end().into()
        }
        Reply::UidlOne(e) => format!("uidl-one {}:{}", e.number, escape(e.uid.as_bytes())),
        Reply::Capabilities(c) => format!("capa {}", caps_line(c)).trim_end().into(),
        Reply::Languages(v) => {
            let e: Vec<String> = v
                .iter()
                .map(|(t, d)| format!("{t}:{}", escape(d.as_bytes())))
                .collect();
            format!("lang {}", e.join(" "))
        }
        Reply::Retrieved { octets } => format!("retrieved {octets}"),
        Reply::TlsReady => "tls-ready".into(),
        Reply::Closed(t) => format!("closed {}", escape(t.as_bytes())),
    }
}

fn error_line(e: &Error) -> String {
    match e {
        Error::Server(s) => format!(
            "server {} {}",
            s.code.as_ref().map_or("-".to_string(), |c| c.to_string()),
            escape(s.text.as_bytes())
        ),
        other => other.kind().replacen(':', " ", 1),
    }
}

#[derive(Clone)]
enum Line {
    Option(String, String),
    Action(String),
    Client(Vec<u8>),
    Server(Vec<u8>),
    Event(String),
}

fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            if let Some(rest) = l.strip_prefix("option ") {
                let (k, v) = rest.split_once(' ').expect("option NAME VALUE");
                Line::Option(k.into(), v.trim().into())
            } else if let Some(rest) = l.strip_prefix("A: ") {
                Line::Action(rest.trim().into())
            } else if let Some(rest) = l.strip_prefix("C: ") {
                Line::Client(unescape(rest))
            } else if let Some(rest) = l.strip_prefix("S: ") {
                Line::Server(unescape(rest))
            } else if let Some(rest) = l.strip_prefix("E: ") {
                Line::Event(rest.trim_end().into())
            } else if l == "S:" {
                Line::Server(b"\r\n".to_vec())
            } else if l == "C:" {
                Line::Client(b"\r\n".to_vec())
            } else {
                panic!("unknown transcript line: {l}")
            }
        })
        .collect()
}

fn options(lines: &[Line]) -> ClientOptions {
    let mut o = ClientOptions::default();
    for l in lines {
        if let Line::Option(k, v) = l {
            let on = v == "on";
            match k.as_str() {
                "security" => {
                    o.security = match v.as_str() {
                        "tls" => Security::Tls,
                        "starttls" => Security::StartTls,
                        "none" => Security::None,
                        _ => panic!("security {v}"),
                    }
                }
                "negotiate" => o.negotiate = on,
                "allow-cleartext" => o.allow_cleartext_password = on,
                "pipelining" => o.pipelining = on,
                "lenient-uids" => o.lenient_uids = on,
                "initial-response" => o.sasl_initial_response = on,
                "status-line" => o.limits.status_line = v.parse().unwrap(),
                "data-line" => o.limits.data_line = v.parse().unwrap(),
                "listing" => o.limits.listing = v.parse().unwrap(),
                _ => panic!("unknown option {k}"),
            }
        }
    }
    o
}

struct Run {
    client: Client,
    log: Vec<String>,
    bodies: std::collections::HashMap<u64, Vec<u8>>,
    written: Vec<u8>,
    dead: bool,
    /// The first error the session produced: refused action, failed command or fatal.
    first_error: Option<Error>,
}

impl Run {
    fn drain_events(&mut self) {
        while !self.dead {
            match self.client.poll_event() {
                Ok(Some(ev)) => {
                    let line = match ev {
                        Event::Greeting(g) => format!("greeting {}", escape(g.text.as_bytes())),
                        Event::Ready(c) => format!("ready {}", caps_line(&c)).trim_end().into(),
                        Event::TlsReady => "tls-ready".into(),
                        Event::Body { id, data } => {
                            self.bodies
                                .entry(id.get())
                                .or_default()
                                .extend_from_slice(data);
                            continue;
                        }
                        Event::Completed { id, result } => {
                            if let Ok(Reply::Retrieved { .. }) = &result {
                                let body = self.bodies.remove(&id.get()).unwrap_or_default();
                                self.log.push(
                                    format!("body {} {}", id.get(), escape(&body))
                                        .trim_end()
                                        .to_string(),
                                );
                            }
                            match result {
                                Ok(r) => format!("ok {} {}", id.get(), reply_line(&r)),
                                Err(e) => {
                                    let line = format!("err {} {}", id.get(), error_line(&e));
                                    self.first_error.get_or_insert(e);
                                    line
                                }
                            }
                        }
                    };
                    self.log.push(line.trim_end().to_string());
                }
                Ok(None) => break,
                Err(e) => self.die(&e),
            }
        }
    }

    fn die(&mut self, e: &Error) {
        self.log.push(format!("fatal {}", e.kind()));
        self.first_error.get_or_insert_with(|| e.clone());
        self.dead = true;
    }

    fn refused(&mut self, e: Error) {
        self.log.push(format!("refused {}", e.kind()));
        self.first_error.get_or_insert(e);
    }

    /// Writes what the engine has to send and collects what that produced, until both are idle.
    fn pump(&mut self) {
        loop {
            let before = (self.written.len(), self.log.len());
            self.flush();
            self.drain_events();
            if (self.written.len(), self.log.len()) == before || self.dead {
                break;
            }
        }
    }

    fn flush(&mut self) {
        while let Some(bytes) = self.client.poll_transmit() {
            self.written.extend_from_slice(&bytes);
        }
    }

    fn act(&mut self, action: &str) {
        let words: Vec<&str> = action.split_whitespace().collect();
        let n = |i: usize| -> u32 { words[i].parse().unwrap() };
        let c = &mut self.client;
        let result = match words[0] {
            "capa" => c.capa(),
            "stls" => c.stls(),
            "user" => c.user(words[1]),
            "pass" => c.pass(Secret::new(words[1])),
            "apop" => c.apop(words[1], &Secret::new(words[2])),
            "auth" => {
                let method = match words[1] {
                    "auto" => AuthMethod::Auto,
                    "user" => AuthMethod::UserPass,
                    "apop" => AuthMethod::Apop,
                    m => AuthMethod::Sasl(Mechanism::from_name(m).unwrap()),
                };
                let credential = match words[3].strip_prefix("token:") {
                    Some(t) => Credential::Token(Secret::new(t)),
                    None => Credential::Password(Secret::new(words[3])),
                };
                c.authenticate(AuthRequest {
                    username: words[2].into(),
                    credential,
                    method,
                    authzid: None,
                    nonce: words.get(4).unwrap_or(&"0123456789abcdefghij").to_string(),
                    host: None,
                    port: None,
                })
            }
            "stat" => c.stat(),
            "list" => c.list(words.get(1).map(|_| n(1))),
            "uidl" => c.uidl(words.get(1).map(|_| n(1))),
            "retr" => c.retr(n(1)),
            "top" => c.top(n(1), n(2)),
            "dele" => c.dele(n(1)),
            "noop" => c.noop(),
            "rset" => c.rset(),
            "quit" => c.quit(),
            "utf8" => c.utf8(),
            "lang" => c.lang(words.get(1).copied()),
            "tls-established" => {
                if let Err(e) = c.tls_established() {
                    self.refused(e);
                }
                return;
            }
            "eof" => {
                if let Err(e) = c.handle_eof() {
                    self.die(&e);
                }
                return;
            }
            other => panic!("unknown action {other}"),
        };
        if let Err(e) = result {
            self.refused(e);
        }
    }
}

/// Runs a transcript with the server stream cut at `cut` (None: one byte per read).
fn replay(lines: &[Line], cut: Option<usize>) -> (Vec<String>, Vec<u8>, Vec<u8>) {
    let run = replay_run(lines, cut);
    (run.log, run.written, run.expected_written)
}

struct Replayed {
    log: Vec<String>,
    written: Vec<u8>,
    expected_written: Vec<u8>,
    first_error: Option<Error>,
}

fn replay_run(lines: &[Line], cut: Option<usize>) -> Replayed {
    let mut run = Run {
        client: Client::new(options(lines)),
        log: Vec::new(),
        bodies: Default::default(),
        written: Vec::new(),
        dead: false,
        first_error: None,
    };
    let mut expected_written = Vec::new();
    let mut fed = 0usize;
    let mut i = 0;
    while i < lines.len() {
        match &lines[i] {
            Line::Option(..) | Line::Event(_) => i += 1,
            Line::Action(a) => {
                if !run.dead {
                    run.act(a);
                    run.pump();
                }
                i += 1;
            }
            Line::Client(bytes) => {
                expected_written.extend_from_slice(bytes);
                i += 1;
            }
            Line::Server(_) => {
                run.flush();
                if run.written != expected_written {
                    break;
                }
                let mut block = Vec::new();
                while let Some(Line::Server(b)) = lines.get(i) {
                    block.extend_from_slice(b);
                    i += 1;
                }
                let pieces: Vec<&[u8]> = match cut {
                    None => block.chunks(1).collect(),
                    Some(c) if c > fed && c < fed + block.len() => {
                        let (a, b) = block.split_at(c - fed);
                        vec![a, b]
                    }
                    Some(_) => vec![&block[..]],
                };
                fed += block.len();
                for piece in pieces {
                    if run.dead {
                        break;
                    }
                    if let Err(e) = run.client.handle_input(piece) {
                        run.die(&e);
                        break;
                    }
                    run.pump();
                }
            }
        }
    }
    run.pump();
    Replayed {
        log: run.log,
        written: run.written,
        expected_written,
        first_error: run.first_error,
    }
}

fn server_len(lines: &[Line]) -> usize {
    lines
        .iter()
        .map(|l| if let Line::Server(b) = l { b.len() } else { 0 })
        .sum()
}

#[test]
fn every_vector_at_every_split() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pop3"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the full vector set, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines = parse(&text);
        let expected: Vec<String> = lines
            .iter()
            .filter_map(|l| {
                if let Line::Event(e) = l {
                    Some(e.clone())
                } else {
                    None
                }
            })
            .collect();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let cuts = (0..=server_len(&lines)).map(Some).chain([None]);
        for cut in cuts {
            let (log, written, want_written) = replay(&lines, cut);
            if log != expected || written != want_written {
                failures.push(format!(
                    "{name} (cut {cut:?}):\n  events:   {log:#?}\n  expected: {expected:#?}\n  written:  {:?}\n  expected: {:?}",
                    escape(&written),
                    escape(&want_written)
                ));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} transcript(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The vectors of `tests/vectors/engine-options/`: the same format, with options only the Rust
/// engine exposes (so the other languages' replayers, which read `tests/vectors/*.pop3`, skip
/// them), at every split as well.
#[test]
fn engine_option_vectors_at_every_split() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir().join("engine-options"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pop3"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in &files {
        let lines = parse(&std::fs::read_to_string(file).unwrap());
        let expected: Vec<String> = lines
            .iter()
            .filter_map(|l| match l {
                Line::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for cut in (0..=server_len(&lines)).map(Some).chain([None]) {
            let (log, written, want_written) = replay(&lines, cut);
            assert_eq!(log, expected, "{name} (cut {cut:?})");
            assert_eq!(
                escape(&written),
                escape(&want_written),
                "{name} (cut {cut:?})"
            );
        }
    }
}

/// `class NAME CODE temporary|permanent` for an error, as the class vectors write it.
fn class_line(e: &Error) -> String {
    let class = e.class();
    let code = class
        .code()
        .map_or("-".to_string(), |c| c.as_str().to_string());
    let temporary = if e.is_temporary() {
        "temporary"
    } else {
        "permanent"
    };
    format!("class {} {code} {temporary}", class.as_str())
}

#[test]
fn every_error_class_vector() {
    let dir = vectors_dir().join("classes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "class"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "found {} class vectors", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let (want, transcript): (Vec<&str>, Vec<&str>) =
            text.lines().partition(|l| l.starts_with("class "));
        assert_eq!(want.len(), 1, "{}: one class line", file.display());
        let lines = parse(&transcript.join("\n"));
        // Whole blocks only: the transcripts already prove split invariance.
        let got = replay_run(&lines, Some(0))
            .first_error
            .map_or("no error".to_string(), |e| class_line(&e));
        if got != want[0] {
            failures.push(format!(
                "{}: got `{got}`, want `{}`",
                file.display(),
                want[0]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! What the exactly-once tests share (`crash_dovecot.rs`, `concurrent_runs.rs`,
//! `mbox_interop.rs`): a `popwire fetch` account against the test Dovecot with any destination,
//! an mboxrd reader written from the format's definition (not from popwire's writer), the
//! lost/duplicated/unknown tally, and a replayable random source.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use popwire_tests::Dovecot;

/// The `popwire` binary under test: `POPWIRE_BIN` when set (e.g. to show that an older build
/// fails), else the one cargo built for these tests.
pub fn popwire_binary() -> PathBuf {
    std::env::var_os("POPWIRE_BIN")
        .or_else(|| std::env::var_os("POPWIRE_CRASH_BIN"))
        .map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_popwire")),
            PathBuf::from,
        )
}

/// xorshift64*: enough to spread kill moments and cut points, and replayable from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The seed from `var` (to replay a failure), else from the clock. Never 0 (xorshift's fixpoint).
pub fn seed(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

/// A count from `var`, else `default`.
pub fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Popwire stores LF line endings and ends every message with a newline; the originals are
/// compared in that form.
pub fn lf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 1);
    let mut bytes = message.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' && bytes.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(b);
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// `message` with body lines that mboxrd must quote (`From `, `>From `, `>>From `), so a
/// round trip through an mbox proves the quoting is exact and reversible.
pub fn with_from_lines(message: &[u8]) -> Vec<u8> {
    let split = message
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(message.len(), |i| i + 2);
    let (head, body) = message.split_at(split);
    let mut out = head.to_vec();
    out.extend_from_slice(b"From the first body line\n>From a quoted one\n>>From twice\nFrom\n");
    out.extend_from_slice(body);
    out
}

/// Where an account's mail goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// `maildir = DIR`.
    Maildir,
    /// `mbox = FILE`.
    Mbox,
    /// `mda = "sh line"` delivering each message to a Maildir-like directory as a unique file;
    /// with `pipeline`, through `cat | sh -c ...`, so killing only the shell would leave a
    /// `cat` and a writer behind that deliver a truncated message at end of input.
    Mda { pipeline: bool },
    /// Like `Mda { pipeline: false }`, but each MDA first creates `started` in the delivery
    /// directory and then waits for a file `go` there: a run holds its lock for as long as the
    /// test wants.
    MdaGated,
}

impl Destination {
    pub fn name(&self) -> &'static str {
        match self {
            Destination::Maildir => "maildir",
            Destination::Mbox => "mbox",
            Destination::Mda { pipeline: false } => "mda",
            Destination::Mda { pipeline: true } => "mda-pipeline",
            Destination::MdaGated => "mda-gated",
        }
    }
}

/// One account of one fresh Dovecot user, in its own directory with its own state directory.
pub struct Account {
    pub dir: tempfile::TempDir,
    pub user: String,
    pub name: String,
    pub config: PathBuf,
    pub destination: Destination,
}

impl Account {
    /// A fresh Dovecot user `prefix-…` fetched as account `name` on port `port` (Dovecot's plain
    /// port, or a proxy in front of it).
    pub fn new(prefix: &str, name: &str, destination: Destination, keep: bool) -> Self {
        let d = Dovecot::shared();
        let user = d.new_user(prefix);
        Self::for_user(user, name, destination, keep, d.plain_port)
    }

    pub fn for_user(
        user: String,
        name: &str,
        destination: Destination,
        keep: bool,
        port: u16,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let account = Self {
            config: dir.path().join("config.toml"),
            dir,
            user,
            name: name.to_owned(),
            destination,
        };
        account.write_config(keep, port, "");
        account
    }

    /// (Re)writes the config, with `extra` TOML lines in the account table.
    pub fn write_config(&self, keep: bool, port: u16, extra: &str) {
        let store = match &self.destination {
            Destination::Maildir => format!("maildir = {}", toml_string(&self.maildir())),
            Destination::Mbox => format!("mbox = {}", toml_string(&self.mbox())),
            Destination::Mda { .. } | Destination::MdaGated => {
                let target = self.mda_dir();
                for sub in ["tmp", "new", "cur"] {
                    std::fs::create_dir_all(target.join(sub)).unwrap();
                }
                let t = shell_quote(&target);
                // The message is complete in tmp/ before the rename makes it visible, so a
                // file in new/ is whatever the MDA read before its standard input ended.
                let deliver =
                    format!("f=$(mktemp {t}/tmp/XXXXXXXX) && cat > \"$f\" && mv \"$f\" {t}/new/");
                let line = match &self.destination {
                    Destination::Mda { pipeline: true } => {
                        format!("cat | sh -c {}", shell_quote_str(&deliver))
                    }
                    Destination::MdaGated => format!(
                        ": > {t}/started; while [ ! -e {t}/go ]; do sleep 0.02; done; {deliver}"
                    ),
                    _ => deliver,
                };
                format!("mda = {}", toml_str(&line))
            }
        };
        std::fs::write(
            &self.config,
            format!(
                "[accounts.{name}]\nemail = \"{user}@example.com\"\nusername = \"{user}\"\n\
                 server = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nauth = \"user\"\n\
                 password_env = \"POPWIRE_TEST_PW\"\n{store}\nkeep = {keep}\n{extra}",
                name = self.name,
                user = self.user,
            ),
        )
        .unwrap();
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    pub fn mbox(&self) -> PathBuf {
        self.dir.path().join("mail").join("inbox.mbox")
    }

    pub fn mda_dir(&self) -> PathBuf {
        self.dir.path().join("mda")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `popwire fetch --quiet --config … --state-dir …`, output piped.
    pub fn command(&self) -> Command {
        let mut command = Command::new(popwire_binary());
        command
            .args(["fetch", "--quiet", "--config"])
            .arg(&self.config)
            .arg("--state-dir")
            .arg(self.state_dir())
            .env("POPWIRE_TEST_PW", &Dovecot::shared().password)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// Runs to the end; panics with popwire's error output unless it succeeds. It waits for
    /// the account lock: a forked child of a killed run (between fork and exec) can hold the
    /// lock's file description for a moment after the run itself died, and a busy machine can
    /// stretch that moment (seen once as exit 75 under load).
    pub fn clean_run(&self) -> Duration {
        let started = Instant::now();
        let out = self.command().args(["--wait", "30s"]).output().unwrap();
        // For an mbox, what a lock left behind says about who holds it.
        let dotlock = match self.destination {
            Destination::Mbox => {
                let mut lock = self.mbox().into_os_string();
                lock.push(".lock");
                match std::fs::read(&lock) {
                    Ok(text) => format!(" (dotlock {lock:?} holds {:?})", preview(&text)),
                    Err(_) => String::new(),
                }
            }
            _ => String::new(),
        };
        assert!(
            out.status.success(),
            "clean run of {} failed ({}){dotlock}: {}",
            self.destination.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    }

    /// Every message stored locally, in stored form, with its count. An mbox that does not
    /// parse fails the test here.
    pub fn stored(&self) -> HashMap<Vec<u8>, usize> {
        let messages = match self.destination {
            Destination::Maildir => maildir_messages(&self.maildir()),
            Destination::Mda { .. } | Destination::MdaGated => maildir_messages(&self.mda_dir()),
            Destination::Mbox => match std::fs::read(self.mbox()) {
                Ok(bytes) => parse_mboxrd(&bytes)
                    .unwrap_or_else(|e| {
                        panic!("{} is not a valid mboxrd file: {e}", self.mbox().display())
                    })
                    .into_iter()
                    .map(|m| m.content)
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => panic!("cannot read {}: {e}", self.mbox().display()),
            },
        };
        let mut counts = HashMap::new();
        for m in messages {
            *counts.entry(m).or_insert(0) += 1;
        }
        counts
    }
}

/// The files in `dir/new` and `dir/cur`.
pub fn maildir_messages(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            out.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    out
}

/// A TOML basic string holding `path`.
pub fn toml_string(path: &Path) -> String {
    toml_str(&path.display().to_string())
}

pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn shell_quote(path: &Path) -> String {
    shell_quote_str(&path.display().to_string())
}

pub fn shell_quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// One message read from an mbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMessage {
    /// Its `From ` line, without the newline.
    pub from_line: Vec<u8>,
    /// The message, `>From ` quoting undone (mboxrd), without the blank line that separates it
    /// from the next.
    pub content: Vec<u8>,
}

/// Reads an mboxrd file strictly: it is empty or starts with a `From ` line; every `From ` line
/// after the first follows a blank line; every message ends with a newline and then that blank
/// line (the last one too: popwire, procmail and Python all write it); and one `>` is removed
/// from every line matching `^>+From `. The error says at which byte offset the file breaks
/// these rules, so a torn write or a truncation in the wrong place is reported where it is.
pub fn parse_mboxrd(bytes: &[u8]) -> Result<Vec<MboxMessage>, String> {
    let mut messages: Vec<MboxMessage> = Vec::new();
    let mut current: Option<(Vec<u8>, Vec<u8>, usize)> = None;
    let mut offset = 0;
    let mut previous_blank = true;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let at = offset;
        offset += line.len();
        if !line.ends_with(b"\n") {
            return Err(format!(
                "the file ends in the middle of a line at offset {at}: {:?}",
                String::from_utf8_lossy(&line[..line.len().min(80)])
            ));
        }
        if line.starts_with(b"From ") {
            if !previous_blank {
                return Err(format!(
                    "a From line at offset {at} does not follow a blank line: {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(80)])
                ));
            }
            if let Some((from_line, mut content, start)) = current.take() {
                // The blank line before this From line is the separator, not the message's.
                if content.pop() != Some(b'\n') || !content.ends_with(b"\n") {
                    return Err(format!(
                        "the message at offset {start} is not followed by a blank line"
                    ));
                }
                messages.push(MboxMessage { from_line, content });
            }
            current = Some((line[..line.len() - 1].to_vec(), Vec::new(), at));
            previous_blank = false;
            continue;
        }
        let Some((_, content, _)) = current.as_mut() else {
            return Err(format!(
                "the file does not start with a From line (offset {at})"
            ));
        };
        let unquoted = match line.iter().position(|&b| b != b'>') {
            Some(n) if n > 0 && line[n..].starts_with(b"From ") => &line[1..],
            _ => line,
        };
        content.extend_from_slice(unquoted);
        previous_blank = line == b"\n";
    }
    if let Some((from_line, mut content, start)) = current.take() {
        if content.pop() != Some(b'\n') || !content.ends_with(b"\n") {
            return Err(format!(
                "the last message (offset {start}) does not end with a blank line: the file ends \
                 in the middle of a message"
            ));
        }
        messages.push(MboxMessage { from_line, content });
    }
    Ok(messages)
}

/// Compares what was stored with what was sent: (lost, duplicated, unknown), where duplicated
/// counts every extra copy and unknown counts stored messages that match no original (a torn or
/// truncated message, or a foreign one).
pub fn tally(originals: &[Vec<u8>], stored: &HashMap<Vec<u8>, usize>) -> (usize, usize, usize) {
    let mut expected: HashMap<&[u8], usize> = HashMap::new();
    for m in originals {
        *expected.entry(m.as_slice()).or_insert(0) += 1;
    }
    let lost = expected
        .iter()
        .map(|(m, &n)| n.saturating_sub(stored.get(*m).copied().unwrap_or(0)))
        .sum();
    let duplicated = stored
        .iter()
        .filter_map(|(m, &n)| expected.get(m.as_slice()).map(|&e| n.saturating_sub(e)))
        .sum();
    let unknown = stored
        .iter()
        .filter(|(m, _)| !expected.contains_key(m.as_slice()))
        .map(|(_, &n)| n)
        .sum();
    (lost, duplicated, unknown)
}

/// The first bytes of a message, for failure messages.
pub fn preview(message: &[u8]) -> String {
    String::from_utf8_lossy(&message[..message.len().min(120)]).into_owned()
}

/// Waits up to `timeout` until no process has `path` in its command line (an MDA's shell and
/// everything it started do: the path is in the MDA command); returns those still left.
pub fn wait_for_no_process_mentioning(path: &Path, timeout: Duration) -> Vec<String> {
    let needle = path.display().to_string();
    let deadline = Instant::now() + timeout;
    loop {
        let mut left = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) {
                left.push(format!("{pid}: {cmdline}"));
            }
        }
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` up to `timeout`; `None` if it is still running then.
pub fn wait_until(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `condition` every 10 ms for up to `timeout`; whether it became true.
pub fn poll(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The standard error a finished child wrote (its `stderr` must be piped).
pub fn stderr_of(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut text);
    }
    text
}

#[cfg(test)]
mod reader_tests {
    use super::*;

    #[test]
    fn mboxrd_reader_follows_the_format() {
        let file =
            b"From a Thu Jan  1 00:00:00 1970\nSubject: x\n\n>From q\n>>From r\n> From s\n\n\
                     From b Thu Jan  1 00:00:00 1970\nSubject: y\n\nlast\n\n";
        let messages = parse_mboxrd(file).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0].content,
            b"Subject: x\n\nFrom q\n>From r\n> From s\n"
        );
        assert_eq!(messages[1].content, b"Subject: y\n\nlast\n");
        assert_eq!(parse_mboxrd(b"").unwrap(), vec![]);
        assert!(parse_mboxrd(b"From a\nx\n").is_err(), "no final blank line");
        assert!(
            parse_mboxrd(b"From a\nx\nFrom b\ny\n\n").is_err(),
            "From without blank"
        );
        assert!(parse_mboxrd(b"x\n").is_err(), "no From line first");
        assert!(
            parse_mboxrd(b"From a\nx\n\nFrom b\ny").is_err(),
            "torn line"
        );
    }

    #[test]
    fn tally_counts_each_kind() {
        let originals = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        let stored: HashMap<Vec<u8>, usize> =
            [(b"a".to_vec(), 2), (b"b".to_vec(), 1), (b"x".to_vec(), 1)].into();
        assert_eq!(tally(&originals, &stored), (1, 1, 1));
    }
}

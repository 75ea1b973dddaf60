//! Shared by the hostile-server and dropped-connection tests: an account in a temporary
//! directory, run through the fetch job in-process or through the `popwire` command.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use popwire::fetch::config;
use popwire::fetch::job::{AccountSummary, FetchError, FetchOptions, fetch_account};
use popwire_tests::TestCa;
use popwire_tests::process::{popwire_binary, run_with_peak_rss};

/// The user and password every fault-server maildrop has.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonder-land-7";

/// The test CA for fault servers, kept in the target directory between runs.
pub fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        TestCa::cached(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-ca"))
            .unwrap_or_else(|e| panic!("cannot make the test CA: {e}"))
    })
}

/// A maildrop for [`USER`] holding `messages`.
pub fn maildrop<M: AsRef<[u8]>>(messages: &[M]) -> popwire::proto::server::MemoryMaildrop {
    messages.iter().fold(
        popwire::proto::server::MemoryMaildrop::new().with_user(USER, PASSWORD),
        |d, m| d.with_message(m.as_ref().to_vec()),
    )
}

/// `n` small distinct messages with LF line ends, stored by popwire exactly as given.
pub fn messages(n: usize) -> Vec<Vec<u8>> {
    (1..=n)
        .map(|i| {
            format!(
                "From: sender{i}@example.com\nSubject: message {i}\n\nbody of message {i}\n.starts with a dot\n{}\n",
                "x".repeat(200 * i)
            )
            .into_bytes()
        })
        .collect()
}

/// What the `popwire` command printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The raw stderr, for checks on control characters.
    pub stderr_bytes: Vec<u8>,
    pub stdout_bytes: Vec<u8>,
    /// Peak resident set size in KiB, when measured.
    pub peak_kib: Option<u64>,
    pub elapsed: Duration,
}

impl Run {
    fn from(out: Output, peak_kib: Option<u64>, elapsed: Duration) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            stderr_bytes: out.stderr,
            stdout_bytes: out.stdout,
            peak_kib,
            elapsed,
        }
    }
}

/// One account in a fresh temporary directory: config, Maildir, state.
pub struct Account {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub security: String,
    pub extra: String,
    pub user: String,
    pub password: String,
    pub ca_file: PathBuf,
}

impl Account {
    /// An account for [`USER`] on `127.0.0.1:port` with `security = "none"`, trusting the test
    /// CA, with a 20 s timeout (generous: the tests that need a timeout set a short one).
    pub fn new(port: u16) -> Account {
        Account {
            dir: tempfile::Builder::new()
                .prefix("pw-fault")
                .tempdir()
                .unwrap(),
            port,
            security: "none".into(),
            extra: "timeout = \"20s\"".into(),
            user: USER.into(),
            password: PASSWORD.into(),
            ca_file: ca().ca_cert.clone(),
        }
    }

    pub fn security(mut self, security: &str) -> Account {
        self.security = security.into();
        self
    }

    /// Extra TOML lines for the account table (replacing the default `timeout = "20s"`
    /// only when they set a timeout themselves).
    pub fn with(mut self, lines: &str) -> Account {
        if lines.contains("timeout") {
            self.extra = lines.into();
        } else {
            self.extra = format!("{}\n{lines}", self.extra);
        }
        self
    }

    pub fn user(mut self, user: &str, password: &str) -> Account {
        self.user = user.into();
        self.password = password.into();
        self
    }

    pub fn ca_file(mut self, path: &Path) -> Account {
        self.ca_file = path.to_path_buf();
        self
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join("Maildir")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes the config file (mode 0600: it holds the password) and returns its path.
    pub fn config_path(&self) -> PathBuf {
        let path = self.dir.path().join("config.toml");
        let text = format!(
            "[accounts.test]\nemail = \"{user}@example.com\"\nusername = \"{user}\"\npassword = \"{pw}\"\n\
             server = \"127.0.0.1\"\nport = {port}\nsecurity = \"{security}\"\nca_file = \"{ca}\"\n\
             maildir = \"{maildir}\"\n{extra}\n",
            user = self.user,
            pw = self.password,
            port = self.port,
            security = self.security,
            ca = self.ca_file.display(),
            maildir = self.maildir().display(),
            extra = self.extra,
        );
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Runs the fetch job in this process with `batch` messages per group commit.
    pub fn fetch_batch(&self, batch: usize) -> Result<AccountSummary, FetchError> {
        let config = config::load(&self.config_path()).unwrap();
        let account = config.account("test").unwrap();
        let mut options = FetchOptions::new(self.state_dir());
        options.batch = batch;
        fetch_account(account, &options, &mut |_| {})
    }

    /// Runs the fetch job in this process.
    pub fn fetch(&self) -> Result<AccountSummary, FetchError> {
        self.fetch_batch(256)
    }

    fn command(&self, subcommand: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(popwire_binary().unwrap());
        cmd.arg(subcommand)
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .env("XDG_STATE_HOME", self.dir.path().join("xdg-state"))
            .env("NO_COLOR", "1");
        if subcommand == "fetch" {
            cmd.arg("--state-dir").arg(self.state_dir());
        }
        cmd
    }

    /// Runs `popwire <subcommand> --config ... <args>` (and `--state-dir` for fetch).
    pub fn cli(&self, subcommand: &str, args: &[&str]) -> Run {
        let mut command = self.command(subcommand, args);
        let start = Instant::now();
        let out = command.output().unwrap();
        Run::from(out, None, start.elapsed())
    }

    /// Like [`Account::cli`], measuring the peak memory of the process.
    pub fn cli_measured(&self, subcommand: &str, args: &[&str]) -> Run {
        let mut command = self.command(subcommand, args);
        let start = Instant::now();
        let (out, kib) = run_with_peak_rss(&mut command).unwrap();
        Run::from(out, Some(kib), start.elapsed())
    }

    /// The stored messages, sorted.
    pub fn stored(&self) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir().join(sub)) {
                for e in entries {
                    all.push(std::fs::read(e.unwrap().path()).unwrap());
                }
            }
        }
        all.sort();
        all
    }

    /// Files left in the Maildir's `tmp/` (half-written messages a crash or a cut left).
    pub fn tmp_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.maildir().join("tmp"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }
}

/// Asserts that nothing is lost: every message is still on the server or stored, and none is
/// stored more than once (and nothing stored is unknown).
#[track_caller]
pub fn assert_nothing_lost(all: &[Vec<u8>], on_server: &[Vec<u8>], stored: &[Vec<u8>]) {
    for (i, m) in all.iter().enumerate() {
        let kept = on_server.iter().filter(|s| *s == m).count();
        let copies = stored.iter().filter(|s| *s == m).count();
        assert!(
            kept + copies >= 1,
            "message {} was lost: neither on the server nor stored",
            i + 1
        );
        assert!(copies <= 1, "message {} stored {copies} times", i + 1);
    }
    for s in stored {
        assert!(
            all.contains(s),
            "a stored message is not one of the originals (truncated or corrupt?): {:?}",
            String::from_utf8_lossy(s.get(..s.len().min(200)).unwrap_or_default())
        );
    }
}

/// Asserts that every message is stored exactly once.
#[track_caller]
pub fn assert_all_stored_once(all: &[Vec<u8>], stored: &[Vec<u8>]) {
    let mut want = all.to_vec();
    want.sort();
    assert_eq!(
        stored.len(),
        want.len(),
        "stored {} messages, expected {}",
        stored.len(),
        want.len()
    );
    assert!(
        stored == want,
        "the stored messages differ from the originals"
    );
}

/// A stable name for a fetch error: the engine's `family:kind`, or the network error's kind.
pub fn kind(e: &FetchError) -> String {
    match e {
        FetchError::Net(n) => n.kind().to_owned(),
        other => format!("other:{other:?}"),
    }
}

/// True when `bytes` hold a byte that can drive a terminal: C0 controls other than newline
/// and tab, DEL, or a UTF-8 C1 control (U+0080 to U+009F, e.g. the 8-bit CSI).
pub fn has_terminal_controls(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

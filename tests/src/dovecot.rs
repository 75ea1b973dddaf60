//! A private Dovecot POP3 server for tests.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ca::TestCa;
use crate::maildir;
use crate::util::{context, err, file_tail, find_program, run_text, shell_safe};

/// The password every user of the test Dovecot has.
pub const DEFAULT_PASSWORD: &str = "popwire-test-pw";

/// Environment variable naming the env file of a running fixture instance
/// (`popwire-fixture start` prints its path); see [`Dovecot::shared`].
pub const ENV_VAR: &str = "POPWIRE_DOVECOT";

/// The configuration template, compiled in.
const TEMPLATE: &str = include_str!("../dovecot/dovecot.conf.in");

/// How long Dovecot may take to accept connections after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long Dovecot may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Which certificate Dovecot presents (for certificate-failure tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerCert {
    /// [`TestCa::server_cert`]: valid for localhost, 127.0.0.1 and ::1.
    #[default]
    Good,
    /// [`TestCa::expired_cert`].
    Expired,
    /// [`TestCa::self_signed_cert`].
    SelfSigned,
    /// [`TestCa::wrong_host_cert`] (only `wrong.example`).
    WrongHost,
}

/// A running Dovecot: a plain POP3 port offering STLS and an implicit-TLS
/// port, on 127.0.0.1 (and ::1 when the host has IPv6). Every user name
/// logs in with [`Dovecot::password`]; the mailbox of user `u` is the
/// Maildir `<home>/u/Maildir`.
///
/// Instances made by [`Dovecot::start`] stop when dropped; the shared
/// instance ([`Dovecot::shared`]) stops when the test process ends.
#[derive(Debug)]
pub struct Dovecot {
    /// IPv4 address to connect to: `"127.0.0.1"`.
    pub host: String,
    /// `Some("::1")` when Dovecot also listens on IPv6 loopback.
    pub host6: Option<String>,
    /// Plain POP3 port (greets `+OK`, offers STLS).
    pub plain_port: u16,
    /// Implicit-TLS POP3 port.
    pub tls_port: u16,
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca_file: PathBuf,
    /// The password of every user.
    pub password: String,
    /// The instance directory (config, logs, CA, homes).
    pub dir: PathBuf,
    /// The base of all home directories: user `u` lives in `home/u`.
    pub home: PathBuf,
    /// PID of the Dovecot master process.
    pub pid: u32,
    /// uid/gid that must own Maildir directories (only enforced when the
    /// tests run as root).
    mail_owner: (u32, u32),
    control: Control,
}

#[derive(Debug)]
enum Control {
    /// Started by this process; stopped by `stop()`/`Drop`, and by the
    /// watchdog if this process dies first.
    Child(Mutex<Option<Child>>),
    /// Started by this process to outlive it (`popwire-fixture start`).
    Detached,
    /// Started by another process (env file); never stopped from here.
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Launch {
    /// A watchdog stops Dovecot when this process exits; with `cleanup` it
    /// then also deletes the instance directory.
    Watched { cleanup: bool },
    /// Runs on after this process exits.
    Detached,
}

struct Identity {
    user: String,
    group: String,
    uid: u32,
    login_user: String,
    mail_uid: u32,
    mail_gid: u32,
}

fn current_uid() -> io::Result<u32> {
    static UID: OnceLock<u32> = OnceLock::new();
    if let Some(uid) = UID.get() {
        return Ok(*uid);
    }
    let uid = parse_id(&run_text("id", &["-u"])?)?;
    Ok(*UID.get_or_init(|| uid))
}

fn parse_id(s: &str) -> io::Result<u32> {
    s.trim()
        .parse()
        .map_err(|_| err(format!("`id` printed {s:?}, not a number")))
}

fn identity() -> io::Result<Identity> {
    let uid = current_uid()?;
    let gid = parse_id(&run_text("id", &["-g"])?)?;
    let user = run_text("id", &["-un"])?;
    let group = run_text("id", &["-gn"])?;
    if uid != 0 {
        return Ok(Identity {
            user: user.clone(),
            group,
            uid,
            login_user: user,
            mail_uid: uid,
            mail_gid: gid,
        });
    }
    // Dovecot refuses to run login processes as root and to give uid 0
    // mail access: use "nobody" for both.
    let nobody = "nobody";
    let mail_uid = parse_id(
        &run_text("id", &["-u", nobody])
            .map_err(|e| context(e, "running as root needs user nobody"))?,
    )?;
    let mail_gid = parse_id(&run_text("id", &["-g", nobody])?)?;
    Ok(Identity {
        user,
        group,
        uid,
        login_user: nobody.to_owned(),
        mail_uid,
        mail_gid,
    })
}

/// Two distinct free ports on 127.0.0.1 (and ::1 when `ipv6`).
fn free_ports(ipv6: bool) -> io::Result<(u16, u16)> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..100 {
        let v4 = TcpListener::bind("127.0.0.1:0")?;
        let port = v4.local_addr()?.port();
        if ipv6 {
            match TcpListener::bind(("::1", port)) {
                Ok(v6) => held.push(v6),
                Err(_) => continue,
            }
        }
        held.push(v4);
        ports.push(port);
        if let [a, b] = ports[..] {
            return Ok((a, b));
        }
    }
    Err(err("no free ports found"))
}

fn has_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Replaces `@NAME@` placeholders; fails if one is left unreplaced.
fn render(template: &str, vars: &[(&str, String)]) -> io::Result<String> {
    let mut out = template.to_owned();
    for (name, value) in vars {
        if value.contains('\n') {
            return Err(err(format!("config value for {name} contains a newline")));
        }
        out = out.replace(&format!("@{name}@"), value);
    }
    let mut rest = out.as_str();
    while let Some(i) = rest.find('@') {
        let after = rest.get(i + 1..).unwrap_or("");
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after.get(name_len..).is_some_and(|s| s.starts_with('@')) {
            return Err(err(format!(
                "unreplaced placeholder @{}@ in dovecot.conf.in",
                after.get(..name_len).unwrap_or("")
            )));
        }
        rest = after;
    }
    Ok(out)
}

fn path_str(p: &Path) -> io::Result<&str> {
    p.to_str()
        .ok_or_else(|| err(format!("path {} is not UTF-8", p.display())))
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends `signal` (a name like "TERM") with the shell's `kill` builtin.
fn signal(pid: u32, signal: &str) -> io::Result<()> {
    let status = Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" \"$2\" 2>/dev/null",
            "sh",
            signal,
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .status()?;
    if status.success() || !alive(pid) {
        Ok(())
    } else {
        Err(err(format!(
            "cannot send SIG{signal} to Dovecot (pid {pid})"
        )))
    }
}

/// Reads `<base_dir>/master.pid`.
fn read_master_pid(dir: &Path) -> io::Result<u32> {
    let f = dir.join("run").join("master.pid");
    let s = fs::read_to_string(&f).map_err(|e| context(e, f.display()))?;
    parse_id(&s)
}

/// Sends SIGTERM to `pid` and waits for it to go (SIGKILL after a timeout).
fn terminate(pid: u32) -> io::Result<()> {
    if !alive(pid) {
        return Ok(());
    }
    signal(pid, "TERM")?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    while alive(pid) {
        if Instant::now() > deadline {
            signal(pid, "KILL")?;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The watchdog wrapper: `sh -c WATCHDOG sh PARENT_PID CLEANUP DOVECOT ARGS..`.
///
/// It forks a subshell that polls the parent (the test process), then
/// `exec`s Dovecot, so Dovecot keeps the shell's PID (`$$`). When the parent
/// is gone the subshell sends Dovecot SIGTERM, waits for it to exit, and, if
/// CLEANUP is non-empty, deletes that directory (it then waits for the
/// parent even if Dovecot died early, so the log stays for diagnosis).
/// Without CLEANUP it also ends when Dovecot is stopped normally. Zombies
/// count as dead (an orphan's zombie may linger where PID 1 reaps slowly).
/// It ignores SIGINT/SIGHUP so that Ctrl-C still cleans up.
const WATCHDOG: &str = r#"parent=$1; cleanup=$2; shift 2
(
  trap '' INT HUP
  alive() {
    kill -0 "$1" 2>/dev/null || return 1
    { read -r st < "/proc/$1/stat"; } 2>/dev/null || return 0
    case "$st" in *") Z "*) return 1 ;; esac
    return 0
  }
  while alive "$parent" && { [ -n "$cleanup" ] || alive $$; }; do sleep 0.5; done
  if alive $$ && [ "$(cat /proc/$$/comm 2>/dev/null || echo dovecot)" = dovecot ]; then
    kill -TERM $$ 2>/dev/null
    i=0
    while alive $$ && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  fi
  if [ -n "$cleanup" ]; then rm -rf -- "$cleanup"; fi
) </dev/null >/dev/null 2>&1 &
exec "$@"
"#;

impl Dovecot {
    /// Starts a private Dovecot in `dir` (created if missing) presenting
    /// [`TestCa::server_cert`]. Stops when dropped, or when this process
    /// exits. `dir` should be short (Unix socket paths are limited to 107
    /// bytes) and, when running as root, reachable by user `nobody`.
    pub fn start(dir: &Path) -> io::Result<Dovecot> {
        Dovecot::start_with(dir, ServerCert::Good)
    }

    /// Like [`Dovecot::start`], presenting the chosen certificate.
    pub fn start_with(dir: &Path, cert: ServerCert) -> io::Result<Dovecot> {
        launch(dir, cert, Launch::Watched { cleanup: false })
    }

    /// Starts Dovecot in `dir` to run on after this process exits (what
    /// `popwire-fixture start` does); stop it with [`Dovecot::stop_dir`].
    pub fn start_detached(dir: &Path) -> io::Result<Dovecot> {
        launch(dir, ServerCert::Good, Launch::Detached)
    }

    /// The instance for this test process.
    ///
    /// If the environment variable `POPWIRE_DOVECOT` names an env file (or
    /// the directory holding `env`) written by `popwire-fixture start`, that
    /// running instance is used. Otherwise one instance is started on first
    /// use in a fresh temporary directory; it is stopped and its directory
    /// deleted shortly after this process exits.
    ///
    /// # Panics
    /// If Dovecot cannot be started or reached (the message says why); use
    /// [`Dovecot::try_shared`] to get the error instead.
    pub fn shared() -> &'static Dovecot {
        match Dovecot::try_shared() {
            Ok(d) => d,
            Err(e) => panic!("popwire-tests: no Dovecot for the tests: {e}"),
        }
    }

    /// [`Dovecot::shared`], returning the error instead of panicking.
    pub fn try_shared() -> io::Result<&'static Dovecot> {
        static SHARED: OnceLock<Result<Dovecot, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| open_shared().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| err(e.clone()))
    }

    /// Connects to an instance described by an env file (`KEY=value` or
    /// `export KEY=value` lines, see `tests/dovecot/README.md`).
    pub fn from_env_file(path: &Path) -> io::Result<Dovecot> {
        let text = fs::read_to_string(path)
            .map_err(|e| context(e, format_args!("env file {}", path.display())))?;
        let mut vars = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            if let Some((k, v)) = line.split_once('=') {
                vars.insert(
                    k.trim().to_owned(),
                    v.trim().trim_matches(['\'', '"']).to_owned(),
                );
            }
        }
        let get = |k: &str| -> io::Result<String> {
            vars.get(&format!("POPWIRE_DOVECOT_{k}"))
                .cloned()
                .ok_or_else(|| err(format!("{}: POPWIRE_DOVECOT_{k} missing", path.display())))
        };
        let num = |k: &str| -> io::Result<u32> {
            let v = get(k)?;
            v.parse().map_err(|_| {
                err(format!(
                    "{}: POPWIRE_DOVECOT_{k}={v} is not a number",
                    path.display()
                ))
            })
        };
        let port = |k: &str| -> io::Result<u16> {
            u16::try_from(num(k)?)
                .map_err(|_| err(format!("{}: bad POPWIRE_DOVECOT_{k}", path.display())))
        };
        let pid = num("PID")?;
        let home = PathBuf::from(get("HOME")?);
        let uid = current_uid()?;
        let d = Dovecot {
            host: get("HOST")?,
            host6: get("HOST6").ok().filter(|h| !h.is_empty()),
            plain_port: port("PLAIN_PORT")?,
            tls_port: port("TLS_PORT")?,
            ca_file: PathBuf::from(get("CA_FILE")?),
            password: get("PASSWORD")?,
            dir: get("DIR").map_or_else(
                |_| home.parent().map(Path::to_path_buf).unwrap_or_default(),
                PathBuf::from,
            ),
            mail_owner: (num("MAIL_UID").unwrap_or(uid), num("MAIL_GID").unwrap_or(0)),
            home,
            pid,
            control: Control::External,
        };
        if !alive(pid) {
            return Err(err(format!(
                "the Dovecot of {} (pid {pid}) is not running; run `popwire-fixture start --dir DIR` again",
                path.display()
            )));
        }
        TcpStream::connect_timeout(&d.plain_addr()?, Duration::from_secs(5)).map_err(|e| {
            context(
                e,
                format_args!("connecting to the Dovecot of {}", path.display()),
            )
        })?;
        Ok(d)
    }

    /// Stops this instance: SIGTERM to the PID in `<base_dir>/master.pid`,
    /// then waits for it to exit. Does nothing for an instance started by
    /// another process (env file) or already stopped.
    pub fn stop(&self) -> io::Result<()> {
        match &self.control {
            Control::External => Ok(()),
            Control::Detached => terminate(read_master_pid(&self.dir).unwrap_or(self.pid)),
            Control::Child(child) => {
                let Some(mut child) = child.lock().unwrap_or_else(PoisonError::into_inner).take()
                else {
                    return Ok(());
                };
                let pid = read_master_pid(&self.dir).unwrap_or(self.pid);
                signal(pid, "TERM")?;
                let deadline = Instant::now() + STOP_TIMEOUT;
                while child.try_wait()?.is_none() {
                    if Instant::now() > deadline {
                        child.kill()?;
                        child.wait()?;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(())
            }
        }
    }

    /// Stops the instance running in `dir` (as `popwire-fixture stop` does)
    /// and removes `dir/env`. Succeeds if none is running.
    pub fn stop_dir(dir: &Path) -> io::Result<()> {
        let pid = read_master_pid(dir).ok().or_else(|| {
            let d = Dovecot::from_env_file(&dir.join("env")).ok()?;
            Some(d.pid)
        });
        if let Some(pid) = pid {
            terminate(pid)?;
        }
        match fs::remove_file(dir.join("env")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The test CA whose certificate is [`Dovecot::ca_file`].
    pub fn ca(&self) -> TestCa {
        TestCa::at(self.ca_file.parent().unwrap_or(Path::new(".")))
    }

    /// `127.0.0.1:<plain_port>`.
    pub fn plain_addr(&self) -> io::Result<SocketAddr> {
        format!("{}:{}", self.host, self.plain_port)
            .parse()
            .map_err(|_| err("bad host address"))
    }

    /// `127.0.0.1:<tls_port>`.
    pub fn tls_addr(&self) -> io::Result<SocketAddr> {
        format!("{}:{}", self.host, self.tls_port)
            .parse()
            .map_err(|_| err("bad host address"))
    }

    /// The Dovecot log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dovecot.log")
    }

    /// The last `lines` lines of the Dovecot log.
    pub fn log_tail(&self, lines: usize) -> String {
        file_tail(&self.log_path(), lines)
    }

    /// A new user name, unique across calls and processes: `prefix` (with
    /// characters other than `[A-Za-z0-9._-]` replaced by `-`), the PID and
    /// a counter. Its empty Maildir is created.
    ///
    /// # Panics
    /// If the Maildir cannot be created; see [`Dovecot::try_new_user`].
    pub fn new_user(&self, prefix: &str) -> String {
        match self.try_new_user(prefix) {
            Ok(u) => u,
            Err(e) => panic!("popwire-tests: cannot create a test user: {e}"),
        }
    }

    /// [`Dovecot::new_user`], returning errors.
    pub fn try_new_user(&self, prefix: &str) -> io::Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let user = format!("{clean}-{}-{n}", std::process::id());
            let home = self.home.join(&user);
            match fs::create_dir(&home) {
                Ok(()) => {
                    maildir::create(&self.maildir_of(&user), self.chown_to()?)?;
                    return Ok(user);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(context(e, home.display())),
            }
        }
    }

    /// The Maildir of `user`: `<home>/<user>/Maildir`.
    pub fn maildir_of(&self, user: &str) -> PathBuf {
        self.home.join(user).join("Maildir")
    }

    /// Delivers `messages` in order into `user`'s `Maildir/new/`, stored
    /// byte for byte as given (LF or CRLF line endings); see [`maildir`] for
    /// the file names. The Maildir is created if missing.
    pub fn seed<M: AsRef<[u8]>>(&self, user: &str, messages: &[M]) -> io::Result<()> {
        self.seed_with_uidls(user, messages).map(drop)
    }

    /// [`Dovecot::seed`], returning the UIDL Dovecot will report for each
    /// message.
    pub fn seed_with_uidls<M: AsRef<[u8]>>(
        &self,
        user: &str,
        messages: &[M],
    ) -> io::Result<Vec<String>> {
        check_user(user)?;
        let md = self.maildir_of(user);
        let owner = self.chown_to()?;
        if !md.join("new").is_dir() {
            maildir::create(&md, owner)?;
        }
        messages
            .iter()
            .map(|m| maildir::deliver(&md, m.as_ref(), owner))
            .collect()
    }

    /// The messages still on the server for `user` (`new/` and `cur/`), in
    /// server order, as stored.
    pub fn server_messages(&self, user: &str) -> io::Result<Vec<Vec<u8>>> {
        check_user(user)?;
        Ok(maildir::read_all(&self.maildir_of(user))?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    /// The UIDLs of the messages still on the server for `user`.
    pub fn server_uidls(&self, user: &str) -> io::Result<Vec<String>> {
        check_user(user)?;
        Ok(maildir::read_all(&self.maildir_of(user))?
            .into_iter()
            .map(|(name, _)| maildir::uidl_of(&name).to_owned())
            .collect())
    }

    /// The uid/gid to chown Maildir entries to, when that is needed and
    /// possible (this process runs as root and Dovecot's mail uid differs).
    fn chown_to(&self) -> io::Result<Option<(u32, u32)>> {
        let uid = current_uid()?;
        Ok((uid == 0 && self.mail_owner.0 != 0).then_some(self.mail_owner))
    }

    fn env_file_text(&self) -> io::Result<String> {
        let vars: [(&str, String); 13] = [
            ("HOST", self.host.clone()),
            ("HOST6", self.host6.clone().unwrap_or_default()),
            ("PLAIN_PORT", self.plain_port.to_string()),
            ("TLS_PORT", self.tls_port.to_string()),
            ("CA_FILE", path_str(&self.ca_file)?.to_owned()),
            ("CA_DIR", path_str(&self.ca().dir)?.to_owned()),
            ("PASSWORD", self.password.clone()),
            ("HOME", path_str(&self.home)?.to_owned()),
            ("MAIL_UID", self.mail_owner.0.to_string()),
            ("MAIL_GID", self.mail_owner.1.to_string()),
            ("PID", self.pid.to_string()),
            ("DIR", path_str(&self.dir)?.to_owned()),
            ("LOG", path_str(&self.log_path())?.to_owned()),
        ];
        let mut out = String::from(
            "# Test Dovecot for popwire (written by popwire-tests). Shell: . ./env\n\
             # Format: `export KEY=value`, values unquoted, never containing spaces.\n",
        );
        for (k, v) in vars {
            if !v.is_empty() && !shell_safe(&v) {
                return Err(err(format!(
                    "value {v:?} of POPWIRE_DOVECOT_{k} is not shell-safe"
                )));
            }
            out.push_str(&format!("export POPWIRE_DOVECOT_{k}={v}\n"));
        }
        Ok(out)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if matches!(self.control, Control::Child(_)) {
            let _ = self.stop();
        }
    }
}

fn check_user(user: &str) -> io::Result<()> {
    if user.is_empty() || user.starts_with('.') || user.contains(['/', '\0']) {
        return Err(err(format!("bad user name {user:?}")));
    }
    Ok(())
}

fn open_shared() -> io::Result<Dovecot> {
    if let Some(v) = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        let mut path = PathBuf::from(v);
        if path.is_dir() {
            path.push("env");
        }
        return Dovecot::from_env_file(&path);
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("popwire-dovecot-{}-{nanos:x}", std::process::id()));
    launch(&dir, ServerCert::Good, Launch::Watched { cleanup: true })
}

fn launch(dir: &Path, cert: ServerCert, mode: Launch) -> io::Result<Dovecot> {
    launch_edited(dir, cert, mode, &Ok)
}

/// A rewrite of the rendered configuration (e.g. `dovecot_oauth`'s OAuth passdb).
pub(crate) type ConfigEdit<'a> = &'a dyn Fn(String) -> io::Result<String>;

/// Starts a watched Dovecot whose rendered configuration `edit` rewrites first; it stops, and
/// `dir` is deleted, when this process exits.
pub(crate) fn start_edited(dir: &Path, edit: ConfigEdit<'_>) -> io::Result<Dovecot> {
    launch_edited(
        dir,
        ServerCert::Good,
        Launch::Watched { cleanup: true },
        edit,
    )
}

fn launch_edited(
    dir: &Path,
    cert: ServerCert,
    mode: Launch,
    edit: ConfigEdit<'_>,
) -> io::Result<Dovecot> {
    let dovecot = find_program(
        "dovecot",
        "POPWIRE_DOVECOT_BIN",
        &["/usr/sbin", "/usr/local/sbin"],
    )?;
    fs::create_dir_all(dir).map_err(|e| context(e, dir.display()))?;
    let dir = fs::canonicalize(dir)?;
    let dir_str = path_str(&dir)?;
    if !dir_str
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
    {
        return Err(err(format!(
            "instance directory {dir_str:?} may only use [A-Za-z0-9/._+-]"
        )));
    }
    if dir_str.len() > 70 {
        return Err(err(format!(
            "instance directory {dir_str:?} is too long for Dovecot's socket paths (max 70 bytes)"
        )));
    }
    if let Ok(pid) = read_master_pid(&dir)
        && alive(pid)
    {
        return Err(err(format!(
            "a Dovecot (pid {pid}) already runs in {dir_str}; stop it first"
        )));
    }
    let id = identity()?;
    let home = dir.join("home");
    for d in [dir.join("run"), dir.join("state"), home.clone()] {
        fs::create_dir_all(&d).map_err(|e| context(e, d.display()))?;
    }
    if id.uid == 0 {
        // Login processes (user nobody) must reach <dir>/run; mail processes
        // (nobody) create home directories in <dir>/home.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        std::os::unix::fs::chown(&home, Some(id.mail_uid), Some(id.mail_gid))?;
    }
    let ca = TestCa::generate(&dir.join("ca"))?;
    let (cert_file, key_file) = ca.server_files(cert);
    let ipv6 = has_ipv6();
    let conf = dir.join("dovecot.conf");
    let log = dir.join("dovecot.log");
    let stderr_path = dir.join("dovecot.stderr");

    let mut attempt = 0;
    loop {
        attempt += 1;
        let (plain_port, tls_port) = free_ports(ipv6)?;
        let text = render(
            TEMPLATE,
            &[
                ("BASE", dir_str.to_owned()),
                ("USER", id.user.clone()),
                ("GROUP", id.group.clone()),
                ("LOGIN_USER", id.login_user.clone()),
                ("MAIL_UID", id.mail_uid.to_string()),
                ("MAIL_GID", id.mail_gid.to_string()),
                ("LISTEN", listen_addresses(ipv6)),
                ("PLAIN_PORT", plain_port.to_string()),
                ("TLS_PORT", tls_port.to_string()),
                ("CERT", path_str(cert_file)?.to_owned()),
                ("KEY", path_str(key_file)?.to_owned()),
                ("PASSWORD", DEFAULT_PASSWORD.to_owned()),
            ],
        )?;
        let text = edit(text)?;
        fs::write(&conf, text)?;
        let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let stderr_file = fs::File::create(&stderr_path)?;
        let mut cmd = match mode {
            Launch::Watched { cleanup } => {
                let mut c = Command::new("sh");
                c.args([
                    "-c",
                    WATCHDOG,
                    "sh",
                    &std::process::id().to_string(),
                    if cleanup { dir_str } else { "" },
                ]);
                c.arg(&dovecot);
                c
            }
            Launch::Detached => {
                let mut c = Command::new(&dovecot);
                // Own process group: Ctrl-C in the starting shell does not reach it.
                c.process_group(0);
                c
            }
        };
        cmd.arg("-F").arg("-c").arg(&conf);
        cmd.stdin(Stdio::null())
            .stdout(stderr_file.try_clone()?)
            .stderr(stderr_file);
        let mut child = cmd
            .spawn()
            .map_err(|e| context(e, format_args!("cannot run {}", dovecot.display())))?;

        let failure = |what: String| {
            let new_log = fs::read(&log)
                .ok()
                .and_then(|b| {
                    b.get(usize::try_from(log_start).unwrap_or(0)..)
                        .map(<[u8]>::to_vec)
                })
                .unwrap_or_default();
            let new_log = String::from_utf8_lossy(&new_log).into_owned();
            let lines: Vec<&str> = new_log.lines().collect();
            let tail = lines
                .get(lines.len().saturating_sub(30)..)
                .unwrap_or_default()
                .join("\n");
            let stderr = file_tail(&stderr_path, 20);
            (
                tail.contains("Address already in use")
                    || stderr.contains("Address already in use"),
                err(format!(
                    "{what}\n--- {} (tail) ---\n{tail}\n--- {} ---\n{stderr}\n--- config: {} ---",
                    log.display(),
                    stderr_path.display(),
                    conf.display()
                )),
            )
        };
        match wait_ready(&mut child, plain_port, tls_port, ipv6) {
            Ok(()) => {
                let pid = read_master_pid(&dir).unwrap_or_else(|_| child.id());
                let control = match mode {
                    Launch::Watched { .. } => Control::Child(Mutex::new(Some(child))),
                    Launch::Detached => Control::Detached,
                };
                let d = Dovecot {
                    host: "127.0.0.1".to_owned(),
                    host6: ipv6.then(|| "::1".to_owned()),
                    plain_port,
                    tls_port,
                    ca_file: ca.ca_cert.clone(),
                    password: DEFAULT_PASSWORD.to_owned(),
                    dir: dir.clone(),
                    home,
                    pid,
                    mail_owner: (id.mail_uid, id.mail_gid),
                    control,
                };
                let env = dir.join("env");
                let mut f = fs::File::create(&env)?;
                f.write_all(d.env_file_text()?.as_bytes())?;
                return Ok(d);
            }
            Err(e) => {
                if child.try_wait()?.is_none() {
                    let _ = terminate(child.id());
                }
                let _ = child.wait();
                let (port_clash, error) = failure(format!("Dovecot did not start: {e}"));
                if port_clash && attempt < 4 {
                    continue;
                }
                return Err(error);
            }
        }
    }
}

/// Environment variable with extra addresses for Dovecot to listen on besides loopback
/// (comma-separated), e.g. an address inside a network namespace (bench/run.sh uses it for the
/// RTT scenario). Unset or empty: loopback only.
const LISTEN_VAR: &str = "POPWIRE_DOVECOT_LISTEN";

/// Dovecot's `listen` setting: loopback plus the addresses in [`LISTEN_VAR`].
fn listen_addresses(ipv6: bool) -> String {
    let mut listen = if ipv6 { "127.0.0.1, ::1" } else { "127.0.0.1" }.to_owned();
    if let Ok(extra) = std::env::var(LISTEN_VAR) {
        for addr in extra.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            listen.push_str(", ");
            listen.push_str(addr);
        }
    }
    listen
}

/// Waits until the plain port greets `+OK` and the TLS port (and the IPv6
/// listener) accepts connections.
fn wait_ready(child: &mut Child, plain_port: u16, tls_port: u16, ipv6: bool) -> io::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(err(format!("dovecot exited early ({status})")));
        }
        let last_error = match probe(plain_port, tls_port, ipv6) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            return Err(err(format!(
                "not ready after {START_TIMEOUT:?}: {last_error}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn probe(plain_port: u16, tls_port: u16, ipv6: bool) -> io::Result<()> {
    let t = Duration::from_secs(2);
    let mut addrs = vec![SocketAddr::from(([127, 0, 0, 1], plain_port))];
    if ipv6 {
        addrs.push(SocketAddr::from((
            std::net::Ipv6Addr::LOCALHOST,
            plain_port,
        )));
    }
    for addr in addrs {
        let s = TcpStream::connect_timeout(&addr, t)?;
        s.set_read_timeout(Some(t))?;
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line)?;
        if !line.starts_with("+OK") {
            return Err(err(format!("{addr} greeted {line:?}")));
        }
        let _ = (&s).write_all(b"QUIT\r\n");
    }
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], tls_port)), t)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_renders_completely() {
        let names = [
            "BASE",
            "USER",
            "GROUP",
            "LOGIN_USER",
            "MAIL_UID",
            "MAIL_GID",
            "LISTEN",
            "PLAIN_PORT",
            "TLS_PORT",
            "CERT",
            "KEY",
            "PASSWORD",
        ];
        let vars: Vec<(&str, String)> = names.iter().map(|n| (*n, "x".to_owned())).collect();
        assert!(render(TEMPLATE, &vars).is_ok());
        assert!(render(TEMPLATE, vars.get(1..).unwrap_or_default()).is_err());
    }
}

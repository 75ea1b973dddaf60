//! `popwire auth` and `popwire fetch` with OAuth, end to end on loopback: the authorization
//! server stand-in (tests/src/oauth_server.rs), Dovecot checking the tokens with its oauth2
//! passdb, and the command itself. The device flow is approved through the stand-in's API; the
//! browser flow is played by the test (it reads the printed URL and follows the redirect).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use popwire_tests::Dovecot;
use popwire_tests::dovecot_oauth::start_oauth_dovecot;
use popwire_tests::oauth_server::{CLIENT_ID, OAuthServer};

struct Fixture {
    server: OAuthServer,
    dovecot: Dovecot,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let server = OAuthServer::start().unwrap();
        let dir = tempfile::Builder::new()
            .prefix("pw-cli-oauth")
            .tempdir()
            .unwrap()
            .keep();
        let dovecot = start_oauth_dovecot(&dir, &format!("{}/introspect", server.base)).unwrap();
        Fixture { server, dovecot }
    })
}

struct Setup {
    dir: tempfile::TempDir,
    user: String,
    config: PathBuf,
}

impl Setup {
    fn new(prefix: &str) -> Self {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let user = f.dovecot.new_user(prefix);
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[accounts.mail]\nemail = \"{user}@example.com\"\nusername = \"{user}\"\nserver = \"localhost\"\n\
                 port = {port}\nca_file = \"{ca}\"\nmaildir = \"{maildir}\"\n\n\
                 [accounts.mail.oauth]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nscopes = [\"mail\"]\n",
                port = f.dovecot.tls_port,
                ca = f.dovecot.ca_file.display(),
                maildir = dir.path().join("Maildir").display(),
                issuer = f.server.base,
            ),
        )
        .unwrap();
        Self { dir, user, config }
    }

    /// The default token file: $XDG_DATA_HOME/popwire/oauth/mail.json.
    fn token_file(&self) -> PathBuf {
        self.dir.path().join("data/popwire/oauth/mail.json")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_popwire"));
        c.args(args)
            .arg("--config")
            .arg(&self.config)
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Starts `popwire auth login mail ARGS`, stdout piped; returns it with a line reader.
    fn login(&self, args: &[&str]) -> (Child, Lines) {
        let mut all = vec!["auth", "login", "mail"];
        all.extend_from_slice(args);
        let mut child = self
            .command(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (
            child,
            Lines {
                stdout,
                seen: String::new(),
            },
        )
    }

    fn tokens(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.token_file()).unwrap()).unwrap()
    }

    /// Sets the stored access token's expiry `seconds` from now (a short-lived token).
    fn expire_in(&self, seconds: u64) {
        let mut tokens = self.tokens();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        tokens["expires_at"] = (now + seconds).into();
        std::fs::write(self.token_file(), tokens.to_string()).unwrap();
    }

    fn stored(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("Maildir/new"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

struct Lines {
    stdout: BufReader<std::process::ChildStdout>,
    seen: String,
}

impl Lines {
    /// Reads lines until one satisfies `find`; returns what it extracted.
    fn until(&mut self, find: impl Fn(&str) -> Option<String>) -> String {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "popwire ended before the expected line; it said:\n{}",
                self.seen
            );
            self.seen.push_str(&line);
            if let Some(found) = find(line.trim()) {
                return found;
            }
        }
    }

    fn finish(mut self, child: Child) -> (i32, String) {
        let out = child.wait_with_output().unwrap();
        std::io::Read::read_to_string(&mut self.stdout, &mut self.seen).unwrap();
        self.seen.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), self.seen)
    }
}

fn device_code(line: &str) -> Option<String> {
    line.split_once("enter the code ")
        .map(|(_, code)| code.trim().to_owned())
}

fn count(log: &[String], what: &str) -> usize {
    log.iter().filter(|l| l.as_str() == what).count()
}

#[test]
fn device_login_then_fetch_refresh_revocation_and_logout() {
    let f = fixture();
    let s = Setup::new("dev");
    f.dovecot
        .seed(&s.user, &[b"Subject: one\n\n1\n".to_vec()])
        .unwrap();

    let (code, status) = s.run(&["auth", "status", "mail"]);
    assert_eq!(code, 77, "{status}");
    assert!(status.contains("popwire auth login mail"), "{status}");

    // No display: the device flow without asking for it.
    let (child, mut lines) = s.login(&[]);
    let user_code = lines.until(device_code);
    assert!(f.server.approve(&user_code, &s.user), "code {user_code}");
    let (code, login_output) = lines.finish(child);
    assert_eq!(code, 0, "{login_output}");
    assert!(login_output.contains("Logged in"), "{login_output}");

    // The token file: only the user can read it, in a directory only the user can enter.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.token_file()), 0o600);
    assert_eq!(mode(s.token_file().parent().unwrap()), 0o700);
    let first = s.tokens();
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();

    let (code, status) = s.run(&["auth", "status", "mail"]);
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("expires in") && status.contains("scopes: mail"),
        "{status}"
    );

    // A fetch with the stored token: no refresh.
    let (code, fetch1) = s.run(&["fetch"]);
    assert_eq!(code, 0, "{fetch1}\n{}", f.dovecot.log_tail(20));
    assert_eq!(s.stored(), 1);
    assert_eq!(count(&f.server.log(), "POST /token refresh_token"), 0);

    // Under a minute left: the fetch refreshes first, transparently, and keeps the refresh
    // token (the stand-in, like Google, sends no new one).
    f.dovecot
        .seed(&s.user, &[b"Subject: two\n\n2\n".to_vec()])
        .unwrap();
    s.expire_in(30);
    let (code, fetch2) = s.run(&["fetch"]);
    assert_eq!(code, 0, "{fetch2}");
    assert_eq!(s.stored(), 2);
    let refreshes = count(&f.server.log(), "POST /token refresh_token");
    assert!(refreshes >= 1, "{:?}", f.server.log());
    let second = s.tokens();
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(mode(&s.token_file()), 0o600);

    // Revoked at the provider while the access token still looks fresh: Dovecot refuses it,
    // popwire refreshes once, gets invalid_grant, and asks for a new login with exit 77.
    f.dovecot
        .seed(&s.user, &[b"Subject: three\n\n3\n".to_vec()])
        .unwrap();
    f.server.revoke(&s.user);
    let (code, fetch3) = s.run(&["fetch"]);
    assert_eq!(code, 77, "{fetch3}");
    assert!(
        fetch3.contains("log in again with: popwire auth login mail"),
        "{fetch3}"
    );
    assert!(fetch3.contains("invalid_grant"), "{fetch3}");
    assert_eq!(
        fetch3.lines().filter(|l| l.contains("error")).count(),
        1,
        "{fetch3}"
    );
    assert_eq!(s.stored(), 2);
    assert_eq!(f.dovecot.server_messages(&s.user).unwrap().len(), 1);

    // Expired as well: the refresh at fetch time fails the same way.
    s.expire_in(10);
    let (code, fetch4) = s.run(&["fetch"]);
    assert_eq!(code, 77, "{fetch4}");
    assert!(fetch4.contains("popwire auth login mail"), "{fetch4}");

    // No token ever reaches the output.
    let second_access = second["access_token"].as_str().unwrap();
    for text in [&login_output, &status, &fetch1, &fetch2, &fetch3, &fetch4] {
        for secret in [access.as_str(), refresh.as_str(), second_access] {
            assert!(!text.contains(secret), "a token was printed:\n{text}");
        }
    }

    let (code, out) = s.run(&["auth", "logout", "mail"]);
    assert_eq!(code, 0, "{out}");
    assert!(!s.token_file().exists());
    let (code, out) = s.run(&["fetch"]);
    assert_eq!(code, 77, "{out}");
    assert!(out.contains("popwire auth login mail"), "{out}");
    assert_eq!(f.server.violations(), Vec::<String>::new());
}

#[test]
fn device_login_declined_after_slow_down_and_expired() {
    let f = fixture();
    let s = Setup::new("declined");
    f.server.slow_down_once();
    let started = Instant::now();
    let (child, mut lines) = s.login(&["--device"]);
    let user_code = lines.until(device_code);
    // The first poll gets slow_down: the next waits the interval plus 5 s (RFC 8628 3.5).
    std::thread::sleep(Duration::from_millis(300));
    assert!(f.server.deny(&user_code));
    let (code, out) = lines.finish(child);
    assert_eq!(code, 77, "{out}");
    assert!(out.contains("declined (access_denied)"), "{out}");
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(!s.token_file().exists());

    let (child, mut lines) = s.login(&["--device"]);
    lines.until(device_code);
    f.server.expire_device_codes();
    let (code, out) = lines.finish(child);
    assert_eq!(code, 77, "{out}");
    assert!(out.contains("expired_token"), "{out}");
    assert_eq!(f.server.violations(), Vec::<String>::new());
}

#[test]
fn browser_login_with_pkce_then_fetch() {
    let f = fixture();
    let s = Setup::new("browser");
    f.server.set_browser_user(&s.user);
    f.dovecot
        .seed(&s.user, &[b"Subject: web\n\nw\n".to_vec()])
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let args = ["--browser", "--no-browser", "--timeout", "60s"];

    // The user declines in the browser: the redirect says access_denied, the login ends (77).
    f.server.deny_browser_once();
    let (child, mut lines) = s.login(&args);
    let url = lines.until(|l| l.starts_with("http://").then(|| l.to_owned()));
    let response = agent.get(&url).call().unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("error=access_denied"), "{location}");
    agent.get(&location).call().unwrap();
    let (code, out) = lines.finish(child);
    assert_eq!(code, 77, "{out}");
    assert!(out.contains("access_denied"), "{out}");
    assert!(!s.token_file().exists());

    let (child, mut lines) = s.login(&args);
    let url = lines.until(|l| l.starts_with("http://").then(|| l.to_owned()));
    assert!(
        url.starts_with(&format!("{}/authorize?", f.server.base)),
        "{url}"
    );
    assert!(url.contains("code_challenge_method=S256"), "{url}");

    // The test is the browser: the authorization server redirects to the loopback listener.
    let response = agent.get(&url).call().unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    // A redirect with another state is not ours: refused, and the login still waits.
    let forged = location.replace("state=", "state=x");
    assert_eq!(agent.get(&forged).call().unwrap().status(), 400);
    let mut back = agent.get(&location).call().unwrap();
    assert_eq!(back.status(), 200);
    assert!(
        back.body_mut()
            .read_to_string()
            .unwrap()
            .contains("Signed in")
    );
    let (code, out) = lines.finish(child);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Logged in"), "{out}");

    // The two-step AUTH form, asked for in the oauth table (the last table of the file).
    let mut text = std::fs::read_to_string(&s.config).unwrap();
    text.push_str("sasl_initial_response = false\n");
    std::fs::write(&s.config, text).unwrap();
    let (code, out) = s.run(&["fetch"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.stored(), 1);
    let access = s.tokens()["access_token"].as_str().unwrap().to_owned();
    assert!(!out.contains(&access));
    assert_eq!(f.server.violations(), Vec::<String>::new());
}

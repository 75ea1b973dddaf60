//! `popwire auth login|status|logout ACCOUNT`: OAuth 2.0 tokens for accounts with an
//! `[accounts.NAME.oauth]` table, or else for their Gmail destination's login
//! (`[accounts.NAME.gmail]`, its own `oauth` table). The flows and the token file are the library's
//! (`popwire::fetch::oauth`); this file picks the flow, prints, and opens a browser.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use popwire::fetch::config::{self, CredentialSource, Destination, OAuthConfig};
use popwire::fetch::job::exit;
use popwire::fetch::oauth::{self, DeviceCode, LoginOptions, OAuthError, TokenStatus};

use crate::report::sanitize;

#[derive(Subcommand)]
pub enum AuthCommand {
    /// Log in to an account's authorization server and store its tokens.
    ///
    /// Without --device or --browser: the browser flow where there is a display, else the
    /// device-code flow.
    Login {
        /// The account (an [accounts.NAME] table with an oauth table, or else a gmail table),
        /// or NAME-imap for the login of its [accounts.NAME.imap.oauth] table.
        account: String,
        /// Config file [default: $XDG_CONFIG_HOME/popwire/config.toml]
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Device-code flow: print a URL and a code to enter on any device.
        #[arg(long, conflicts_with = "browser")]
        device: bool,
        /// Browser flow: the browser comes back to a listener on 127.0.0.1 (PKCE).
        #[arg(long)]
        browser: bool,
        /// With the browser flow, only print the URL; do not try to open a browser.
        #[arg(long)]
        no_browser: bool,
        /// How long the browser flow waits for the browser to come back (e.g. "5m").
        #[arg(long, value_name = "DURATION", value_parser = crate::parse_wait, default_value = "5m")]
        timeout: Duration,
    },
    /// Show whether an account is logged in, when its access token expires and its scopes.
    /// Never prints a token.
    Status {
        /// The account.
        account: String,
        /// Config file [default: $XDG_CONFIG_HOME/popwire/config.toml]
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Delete an account's stored tokens. (The grant stays at the provider until revoked there.)
    Logout {
        /// The account.
        account: String,
        /// Config file [default: $XDG_CONFIG_HOME/popwire/config.toml]
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Prints a line and flushes, so a reader of a pipe (a test, a wrapper) sees it at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn error(message: &str) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "popwire: error: {}",
        sanitize(message)
    );
}

/// The account's OAuth settings, or the exit code after saying why not.
fn oauth_config(config: Option<PathBuf>, account: &str) -> Result<OAuthConfig, i32> {
    let Some(path) = config.or_else(config::default_path) else {
        error("no config file: pass --config FILE or set $HOME");
        return Err(exit::CONFIG);
    };
    let loaded = config::load(&path).map_err(|e| {
        error(&e.to_string());
        exit::CONFIG
    })?;
    for warning in &loaded.warnings {
        let _ = writeln!(
            std::io::stderr().lock(),
            "popwire: warning: {}",
            sanitize(warning)
        );
    }
    // `NAME-imap` is the login of NAME's IMAP destination (its own token file).
    let imap = account
        .strip_suffix("-imap")
        .filter(|base| loaded.account(account).is_none() && loaded.account(base).is_some())
        .and_then(|base| match &loaded.account(base)?.destination {
            config::Destination::Imap(imap) => Some(imap.credential.clone()),
            _ => None,
        });
    let (credential, destination) = match (imap, loaded.account(account)) {
        (Some(credential), _) => (credential, None),
        (None, Some(found)) => (found.credential.clone(), Some(&found.destination)),
        (None, None) => {
            error(&format!("no account {account:?} in {}", path.display()));
            return Err(exit::CONFIG);
        }
    };
    match (&credential, destination) {
        (CredentialSource::OAuth(oauth), _) => Ok((**oauth).clone()),
        // The POP side logs in with a password: the login is the Gmail destination's.
        (_, Some(Destination::Gmail(gmail))) => Ok(gmail.oauth.clone()),
        (other, _) => {
            let imap_oauth = matches!(destination, Some(Destination::Imap(imap))
                if matches!(imap.credential, CredentialSource::OAuth(_)));
            let hint = if imap_oauth {
                format!("; for its IMAP destination's login use {account}-imap")
            } else {
                String::new()
            };
            error(&format!(
                "account {account} logs in with {}, not OAuth (add an [accounts.{account}.oauth] table instead){hint}",
                other.config_key()
            ));
            Err(exit::CONFIG)
        }
    }
}

fn fail(e: &OAuthError) -> i32 {
    error(&e.to_string());
    e.exit_code()
}

/// Runs an `auth` subcommand; returns the exit status.
pub fn run(command: AuthCommand) -> i32 {
    match command {
        AuthCommand::Login {
            account,
            config,
            device,
            browser,
            no_browser,
            timeout,
        } => {
            let oauth = match oauth_config(config, &account) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let display = has_display();
            // Unasked, the browser flow only where a browser can open and the server has it.
            let use_browser = browser
                || (!device
                    && display
                    && oauth::endpoints(&oauth).is_ok_and(|e| e.authorization.is_some()));
            let result = if use_browser {
                let options = LoginOptions { timeout };
                oauth::login_loopback(&oauth, &options, &mut |url| {
                    say(&format!(
                        "To log in to {account}, open this URL in a browser:"
                    ));
                    say(&format!("  {url}"));
                    if !no_browser && display && open_browser(url) {
                        say("(a browser was started; waiting for it to come back)");
                    } else {
                        say("(waiting for the browser to come back to this machine)");
                    }
                })
            } else {
                oauth::login_device(&oauth, &mut |code: &DeviceCode| {
                    say(&format!(
                        "To log in to {account}, open {} and enter the code {}",
                        sanitize(&code.verification_uri),
                        sanitize(&code.user_code)
                    ));
                    if let Some(complete) = &code.verification_uri_complete {
                        say(&format!("  (or open {})", sanitize(complete)));
                    }
                    say(&format!(
                        "(waiting for approval; the code expires in {} min)",
                        code.expires_in.as_secs().div_ceil(60)
                    ));
                })
            };
            match result {
                Ok(status) => {
                    say(&format!(
                        "Logged in: tokens for {account} saved in {}",
                        oauth.token_file.display()
                    ));
                    say(&describe(&status));
                    exit::OK
                }
                Err(e) => fail(&e),
            }
        }
        AuthCommand::Status { account, config } => {
            let oauth = match oauth_config(config, &account) {
                Ok(o) => o,
                Err(code) => return code,
            };
            match oauth::status(&oauth) {
                Ok(Some(status)) => {
                    say(&format!(
                        "{account}: logged in (token file {})",
                        oauth.token_file.display()
                    ));
                    say(&describe(&status));
                    exit::OK
                }
                Ok(None) => {
                    say(&format!(
                        "{account}: not logged in; log in with: popwire auth login {account}"
                    ));
                    exit::NOPERM
                }
                Err(e) => fail(&e),
            }
        }
        AuthCommand::Logout { account, config } => {
            let oauth = match oauth_config(config, &account) {
                Ok(o) => o,
                Err(code) => return code,
            };
            match oauth::logout(&oauth) {
                Ok(true) => {
                    say(&format!(
                        "{account}: tokens deleted ({}); revoke the grant at the provider to end it there too",
                        oauth.token_file.display()
                    ));
                    exit::OK
                }
                Ok(false) => {
                    say(&format!("{account}: was not logged in"));
                    exit::OK
                }
                Err(e) => fail(&e),
            }
        }
    }
}

/// Expiry, refresh token and scopes, in one line; never a token.
fn describe(status: &TokenStatus) -> String {
    let expiry = match status.expires_in {
        None => "access token: no expiry given".to_owned(),
        Some(left) if left > 0 => format!("access token: expires in {}", human(left)),
        Some(left) => format!(
            "access token: expired {} ago (refreshed at the next fetch)",
            human(-left)
        ),
    };
    let refresh = if status.has_refresh_token {
        "refresh token: stored"
    } else {
        "refresh token: none (log in again when the access token expires)"
    };
    let scopes = if status.scopes.is_empty() {
        "-".to_owned()
    } else {
        sanitize(&status.scopes.join(" "))
    };
    format!("{expiry}; {refresh}; scopes: {scopes}")
}

fn human(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// A graphical session is there to open a browser in.
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Starts `xdg-open URL` (macOS: `open`) without waiting; false when there is none.
fn open_browser(url: &str) -> bool {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let child = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(mut child) => {
            // Reaped in the background: xdg-open may stay until the browser exits.
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

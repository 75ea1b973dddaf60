//! The `popwire` command: fetch mail, check and list mailboxes, serve a Maildir, run the demo.

mod auth;
mod demo;
mod report;
mod serve;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use popwire::fetch::config::{self, Config};
use popwire::fetch::job::{self, FetchOptions, exit};

#[derive(Parser)]
#[command(
    name = "popwire",
    version,
    about = "Fetch mail over POP3, safely and fast"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Config file [default: $XDG_CONFIG_HOME/popwire/config.toml]
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Accounts to use [default: all].
    accounts: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Download new mail into each account's mail store, then delete it from the server unless
    /// the account keeps it.
    Fetch {
        #[command(flatten)]
        common: Common,
        /// Where UID journals live [default: $XDG_STATE_HOME/popwire].
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// When another popwire is fetching an account, wait this long for it (e.g. "30s",
        /// "5m") instead of skipping the account with exit status 75.
        #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
        wait: Option<std::time::Duration>,
    },
    /// Run as a service: poll every account on its interval until SIGTERM (SIGHUP reloads the
    /// config). See "Run as a service" in the README.
    Watch {
        /// Config file [default: $XDG_CONFIG_HOME/popwire/config.toml]
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Where UID journals and the watch state live [default: $XDG_STATE_HOME/popwire].
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Show each watched account's state (last success, last error, next poll, quarantined
    /// messages) from the state file `popwire watch` keeps. Exit status 75 when an account is
    /// in alert.
    Status {
        /// Where `popwire watch` keeps its state [default: $XDG_STATE_HOME/popwire].
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// One JSON object per account and line.
        #[arg(long)]
        json: bool,
    },
    /// Show the number and size of messages on each account's server.
    Check {
        #[command(flatten)]
        common: Common,
    },
    /// List each account's messages: number, size, unique-id.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Serve a Maildir over POP3 (plain TCP, for testing).
    Serve {
        /// The Maildir to serve.
        #[arg(long)]
        maildir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:1110")]
        listen: String,
        /// The one user name accepted.
        #[arg(long, default_value = "user")]
        user: String,
        /// Its password (or set POPWIRE_SERVE_PASSWORD).
        #[arg(long, env = "POPWIRE_SERVE_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Start an embedded server with sample mail and fetch it into a temporary Maildir.
    Demo {
        /// Keep the Maildir here instead of a temporary directory.
        #[arg(long)]
        maildir: Option<PathBuf>,
        /// Number of sample messages.
        #[arg(long, default_value_t = 25)]
        messages: usize,
    },
    /// OAuth 2.0: log in (device code or browser), show token status, log out.
    Auth {
        #[command(subcommand)]
        action: auth::AuthCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Fetch {
            common,
            state_dir,
            wait,
        } => fetch(&common, state_dir, wait),
        Command::Watch { config, state_dir } => {
            match (
                config.or_else(config::default_path),
                watch::state_dir(state_dir),
            ) {
                (Some(config), Some(state_dir)) => watch::run(config, state_dir),
                _ => {
                    eprintln!(
                        "popwire watch: pass --config FILE and --state-dir DIR, or set $HOME"
                    );
                    exit::CONFIG
                }
            }
        }
        Command::Status { state_dir, json } => match watch::state_dir(state_dir) {
            Some(dir) => watch::status(&dir, json),
            None => {
                eprintln!("popwire status: pass --state-dir DIR or set $HOME");
                exit::CONFIG
            }
        },
        Command::Check { common } => inspect(&common, false),
        Command::List { common } => inspect(&common, true),
        Command::Serve {
            maildir,
            listen,
            user,
            password,
        } => serve_maildir(&maildir, &listen, &user, password),
        Command::Demo { maildir, messages } => demo::run(maildir, messages),
        Command::Auth { action } => auth::run(action),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn load_config(common: &Common, out: &report::Reporter) -> Result<Config, i32> {
    let path = match common.config.clone().or_else(config::default_path) {
        Some(p) => p,
        None => {
            out.error(None, "no config file: pass --config FILE or set $HOME");
            return Err(exit::CONFIG);
        }
    };
    match config::load(&path) {
        Ok(c) => {
            for w in &c.warnings {
                out.warning(w);
            }
            for name in &common.accounts {
                if c.account(name).is_none() {
                    out.error(
                        Some(name),
                        &format!("no account {name:?} in {}", path.display()),
                    );
                    return Err(exit::CONFIG);
                }
            }
            Ok(c)
        }
        Err(e) => {
            out.error(None, &e.to_string());
            Err(exit::CONFIG)
        }
    }
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    popwire::fetch::duration::parse_duration(text).map_err(|e| e.to_string())
}

fn fetch(common: &Common, state_dir: Option<PathBuf>, wait: Option<std::time::Duration>) -> i32 {
    let out = report::Reporter::new(common.quiet, common.json);
    let config = match load_config(common, &out) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(state_dir) = state_dir.or_else(FetchOptions::default_state_dir) else {
        out.error(
            None,
            "no state directory: pass --state-dir DIR or set $HOME",
        );
        return exit::CONFIG;
    };
    let mut options = FetchOptions::new(state_dir);
    options.lock_wait = wait.unwrap_or_default();
    let mut worst = exit::OK;
    for (name, account) in &config.accounts {
        if !common.accounts.is_empty() && !common.accounts.contains(name) {
            continue;
        }
        let mut bar = out.progress(name);
        let result = job::fetch_account(account, &options, &mut |p| bar.update(p));
        bar.finish();
        match result {
            Ok(summary) => {
                for (uid, why) in &summary.refused {
                    out.error(
                        Some(name),
                        &format!("{name}: message {uid} left on the server: {why}"),
                    );
                }
                if summary.skipped_unidentified > 0 {
                    out.warning(&format!(
                        "{name}: {} message(s) left on the server and not fetched: the server gives them no unique UID, so with keep they would be stored again on every run (set keep = false to fetch and delete them)",
                        summary.skipped_unidentified
                    ));
                }
                if !summary.refused.is_empty() {
                    worst = worst.max(exit::DATAERR);
                }
                out.summary(&summary);
            }
            Err(e) => {
                out.error(
                    Some(name),
                    &format!("{} ({}:{}): {e}", name, account.server, account.port),
                );
                worst = worst.max(e.exit_code());
            }
        }
    }
    worst
}

fn inspect(common: &Common, listing: bool) -> i32 {
    let out = report::Reporter::new(common.quiet, common.json);
    let config = match load_config(common, &out) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut worst = exit::OK;
    for (name, account) in &config.accounts {
        if !common.accounts.is_empty() && !common.accounts.contains(name) {
            continue;
        }
        let result = (|| -> Result<(), job::FetchError> {
            let mut pop = job::login(account)?;
            let (count, size) = pop.stat()?;
            out.check(name, count, size);
            if listing {
                let sizes = pop.list()?;
                let uids = pop.uidl().unwrap_or_default();
                for entry in sizes {
                    let uid = uids
                        .iter()
                        .find(|u| u.number == entry.number)
                        .map_or("-", |u| u.uid.as_str());
                    out.entry(name, entry.number, entry.size, uid);
                }
            }
            pop.quit()?;
            Ok(())
        })();
        if let Err(e) = result {
            out.error(
                Some(name),
                &format!("{} ({}:{}): {e}", name, account.server, account.port),
            );
            worst = worst.max(e.exit_code());
        }
    }
    worst
}

fn serve_maildir(maildir: &std::path::Path, listen: &str, user: &str, password: String) -> i32 {
    let listener = match std::net::TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("popwire serve: cannot listen on {listen}: {e}");
            return exit::UNAVAILABLE;
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| listen.to_string());
    eprintln!(
        "popwire serve: serving {} on {local} (plain POP3, user {user})",
        maildir.display()
    );
    let lock = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let root = maildir.to_path_buf();
    let user = user.to_string();
    let password = popwire::proto::Secret::from(password);
    let result = serve::serve(listener, move || {
        let options = popwire::proto::server::ServerOptions {
            // Plain TCP for local tests: USER/PASS and PLAIN are offered, as the user chose.
            allow_cleartext_password: true,
            implementation: Some(format!("popwire {}", env!("CARGO_PKG_VERSION"))),
            ..Default::default()
        };
        let drop = serve::MaildirMaildrop::new(&root, &user, password.clone(), lock.clone());
        (options, drop)
    });
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("popwire serve: {e}");
            exit::IOERR
        }
    }
}

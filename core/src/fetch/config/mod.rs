//! The account configuration file: TOML, one `[accounts.NAME]` table per account.
//!
//! ```toml
//! [accounts.work]
//! email = "me@example.com"
//! server = "pop.example.com"
//! password_command = ["pass", "show", "mail/work"]
//! maildir = "~/Mail/work"
//! keep = "30d"
//! ```
//!
//! Every mistake is reported with the file, the line, the dotted key and a fix, for example
//! `/home/u/.config/popwire/config.toml:7: accounts.work.securty: unknown key (did you mean "security"?)`.
//! Secrets never appear in an error, a warning or `Debug` output.
//!
//! The file is read into toml's spanned tree (`toml::de::DeTable`: every key and value with its
//! place in the text) and then checked by hand, rather than with `#[derive(Deserialize)]`,
//! because serde's errors cannot say "did you mean", cannot name the conflicting key, and
//! would echo a mistyped password back in "invalid type: ..." messages.
//!
//! Here is the model; `load` reads the file, `check` walks the tree and its accounts, `values`
//! checks each key's value, `suggest` says "did you mean", and `error` is what all of them
//! return.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::proto::{AuthMethod, Mechanism, Secret};

mod check;
mod error;
mod gmail;
mod imap;
mod load;
mod oauth;
mod store_options;
mod suggest;
mod values;
mod watch;

/// The engine's own type: `security = "tls"`, `"starttls"` or `"none"` (default `"tls"`, per
/// RFC 8314).
pub use crate::proto::Security;
pub use error::{ConfigError, ConfigErrorKind};
pub use gmail::{GMAIL_ENDPOINT, GMAIL_IMPORT_CAP, GMAIL_SCOPE, GmailConfig, InternalDateSource};
pub use imap::{ImapAuth, ImapConfig};
pub use load::{default_path, load, parse};
pub use oauth::{ClientSecret, Endpoints, OAuthConfig, Provider, default_token_file};
pub use store_options::{DEFAULT_MDA_TIMEOUT, LockKind, StoreOptions};
pub use watch::{LogFormat, WatchConfig};

/// The timeout used when an account does not set `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed configuration file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The accounts, in the order the file lists them, each with its name.
    pub accounts: Vec<(String, Account)>,
    /// Things that work but deserve attention (a world-readable file holding a password, a
    /// password sent in clear text). Each names the file and what to do; print them to the user.
    pub warnings: Vec<String>,
    /// The `[watch]` table: settings of the service mode (defaults when absent).
    pub watch: WatchConfig,
}

impl Config {
    /// The account called `name`, if there is one.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, account)| account)
    }
}

/// One mail account: where to fetch from, how to log in, where to store, what to keep.
///
/// `Debug` is safe to log: a literal password prints as `Secret(..)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The account's name, the `NAME` of `[accounts.NAME]`.
    pub name: String,
    /// The e-mail address.
    pub email: String,
    /// The login name; the e-mail address unless `username` is set.
    pub username: String,
    /// Where the password or token comes from.
    pub credential: CredentialSource,
    /// The POP3 server's host name or IP address.
    pub server: String,
    /// The TCP port: `port`, else 995 for implicit TLS and 110 otherwise.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// A PEM file of CA certificates to trust in addition to the system and bundled (Mozilla)
    /// roots (the fetch job leaves `ConnectOptions::system_roots` on). Relative paths are
    /// resolved against the config file's directory and `~/` against `$HOME`.
    pub ca_file: Option<PathBuf>,
    /// Which login method to use.
    pub auth: AuthChoice,
    /// Whether and how long to leave messages on the server after storing them.
    pub keep: Keep,
    /// Where messages are stored.
    pub destination: Destination,
    /// Messages larger than this many octets (as the server reports them) are skipped.
    pub max_message_size: Option<u64>,
    /// How long to wait for the server before giving up on a connection.
    pub timeout: Duration,
    /// How the store behaves: `mbox_lock`, `mda_timeout`.
    pub store: StoreOptions,
    /// `poll = "5m"`: how often `popwire watch` polls it; `[watch] poll` when `None`.
    pub poll: Option<Duration>,
}

/// Where an account's password or token comes from. Exactly one per account.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialSource {
    /// `password = "..."`: a password written in the file.
    Password(Secret),
    /// `password_command`: a command whose standard output is the password.
    PasswordCommand(CommandLine),
    /// `password_env`: the name of an environment variable holding the password.
    PasswordEnv(String),
    /// `token_command`: a command whose standard output is an OAuth 2.0 access token, for
    /// XOAUTH2 or OAUTHBEARER. Run afresh for each connection, as tokens expire.
    TokenCommand(CommandLine),
    /// `[accounts.NAME.oauth]`: OAuth 2.0 tokens from `popwire auth login`, kept in a token
    /// file and refreshed before they expire (feature `oauth`).
    OAuth(Box<OAuthConfig>),
}

impl CredentialSource {
    /// True for an OAuth token source, which only the XOAUTH2 and OAUTHBEARER mechanisms can use.
    pub fn is_token(&self) -> bool {
        matches!(self, Self::TokenCommand(_) | Self::OAuth(_))
    }

    /// The config key this source was written as, for messages.
    pub fn config_key(&self) -> &'static str {
        match self {
            Self::Password(_) => "password",
            Self::PasswordCommand(_) => "password_command",
            Self::PasswordEnv(_) => "password_env",
            Self::TokenCommand(_) => "token_command",
            Self::OAuth(_) => "oauth",
        }
    }
}

/// A command to run: a string for `sh -c`, or an argument vector run directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Run with `sh -c`, so pipes and quoting work as in a shell.
    Shell(String),
    /// Run directly: the first element is the program, the rest its arguments. Never empty.
    Argv(Vec<String>),
}

impl CommandLine {
    /// The program's name, for error messages: the first word of a shell string, or `argv[0]`.
    /// Only this is ever shown for credential commands, as the rest may hold secrets.
    pub fn program(&self) -> &str {
        match self {
            Self::Shell(line) => line.split_whitespace().next().unwrap_or("sh"),
            Self::Argv(argv) => argv.first().map_or("", String::as_str),
        }
    }

    /// A [`Command`] ready to be given stdio settings and spawned.
    pub fn to_command(&self) -> Command {
        match self {
            Self::Shell(line) => {
                let mut command = Command::new("sh");
                command.arg("-c").arg(line);
                command
            }
            Self::Argv(argv) => {
                let mut parts = argv.iter();
                let mut command = Command::new(parts.next().map_or("", String::as_str));
                command.args(parts);
                command
            }
        }
    }
}

impl fmt::Display for CommandLine {
    /// The whole command as the user wrote it; for MDA messages, not for credential commands.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shell(line) => f.write_str(line),
            Self::Argv(argv) => f.write_str(&argv.join(" ")),
        }
    }
}

/// Which login method to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthChoice {
    /// Pick the strongest method the server offers that suits the credential; never APOP.
    #[default]
    Auto,
    /// `USER` + `PASS`.
    User,
    /// `APOP` (MD5-based and weak; only when asked for by name).
    Apop,
    /// `AUTH` with this SASL mechanism (`auth = "scram-sha-256"` and the like).
    Sasl(Mechanism),
}

impl From<AuthChoice> for AuthMethod {
    fn from(choice: AuthChoice) -> Self {
        match choice {
            AuthChoice::Auto => AuthMethod::Auto,
            AuthChoice::User => AuthMethod::UserPass,
            AuthChoice::Apop => AuthMethod::Apop,
            AuthChoice::Sasl(mechanism) => AuthMethod::Sasl(mechanism),
        }
    }
}

/// What to do with a message on the server once it is stored locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// `keep = false` (the default): delete it.
    #[default]
    Delete,
    /// `keep = true`: leave it there.
    Forever,
    /// `keep = "30d"`: leave it there for this long after it was first stored, then delete it.
    For(Duration),
}

/// Where an account's messages are stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// `maildir = "PATH"`: a Maildir, created if missing.
    Maildir(PathBuf),
    /// `mbox = "PATH"`: an mboxrd file, created if missing.
    Mbox(PathBuf),
    /// `mda = ...`: a mail delivery agent that reads each message on standard input.
    Mda(CommandLine),
    /// The program's own handler ([`Poller`](crate::fetch::poller::Poller)). Never read from a
    /// config file.
    Handler,
    /// `[accounts.NAME.imap]`: a folder on an IMAP server (delivered with feature `imap`).
    Imap(Box<ImapConfig>),
    /// `[accounts.NAME.gmail]`: Gmail's API, `users.messages.import` (feature `gmail`).
    Gmail(Box<GmailConfig>),
}

impl Destination {
    /// The largest message this destination takes, if it has a limit: bigger ones are left
    /// on the server and reported, never fetched.
    pub fn size_cap(&self) -> Option<u64> {
        match self {
            Self::Gmail(gmail) => Some(gmail.max_import_size),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;

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
//! The file is read into a small spanned tree first and then checked by hand, rather than with
//! `#[derive(Deserialize)]`, because serde's errors cannot say "did you mean", cannot name the
//! conflicting key, and would echo a mistyped password back in "invalid type: ..." messages.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::store::{LockKind, StoreOptions};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

use super::duration::{ParseError, parse_duration, parse_size};
use crate::proto::Secret;

/// The timeout used when an account does not set `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The accounts, in the order the file lists them, each with its name.
    pub accounts: Vec<(String, Account)>,
    /// Things that work but deserve attention (a world-readable file holding a password, a
    /// password sent in clear text). Each names the file and what to do; print them to the user.
    pub warnings: Vec<String>,
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
}

impl CredentialSource {
    /// True for an OAuth token source, which only the XOAUTH2 and OAUTHBEARER mechanisms can use.
    pub fn is_token(&self) -> bool {
        matches!(self, Self::TokenCommand(_))
    }

    /// The config key this source was written as, for messages.
    pub fn config_key(&self) -> &'static str {
        match self {
            Self::Password(_) => "password",
            Self::PasswordCommand(_) => "password_command",
            Self::PasswordEnv(_) => "password_env",
            Self::TokenCommand(_) => "token_command",
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

/// How the connection to the server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// `"tls"`: TLS from the first byte (POP3S, normally port 995). The default, per RFC 8314.
    #[default]
    Tls,
    /// `"starttls"`: plain connection upgraded with STLS before logging in (normally port 110).
    StartTls,
    /// `"none"`: no encryption at all. Must be asked for explicitly.
    None,
}

impl Security {
    /// The port used when the account does not set one.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 995,
            Self::StartTls | Self::None => 110,
        }
    }
}

/// Which login method to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthChoice {
    /// Pick the strongest method the server offers that suits the credential; never APOP.
    #[default]
    Auto,
    /// `USER` + `PASS`.
    User,
    /// `APOP` (MD5-based and weak; only when asked for by name).
    Apop,
    /// `AUTH` with this SASL mechanism, upper-cased: `PLAIN`, `LOGIN`, `CRAM-MD5`,
    /// `SCRAM-SHA-1`, `SCRAM-SHA-256`, `XOAUTH2` or `OAUTHBEARER`.
    Sasl(String),
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `maildir = "PATH"`: a Maildir, created if missing.
    Maildir(PathBuf),
    /// `mbox = "PATH"`: an mboxrd file, created if missing.
    Mbox(PathBuf),
    /// `mda = ...`: a mail delivery agent that reads each message on standard input.
    Mda(CommandLine),
}

/// What sort of mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Read,
    /// The file is not valid TOML.
    Syntax,
    /// A key that popwire does not know, often a misspelling.
    UnknownKey,
    /// A required key is missing, or there are no accounts.
    MissingKey,
    /// A value of the wrong TOML type, e.g. a quoted port.
    WrongType,
    /// Two keys that exclude each other, e.g. `maildir` and `mbox`.
    Conflict,
    /// A value of the right type that is not allowed, e.g. `port = 0`.
    BadValue,
}

/// A mistake in the config file, with where it is and how to fix it.
///
/// Displays as `FILE:LINE: KEY: MESSAGE (FIX)`, leaving out the parts that are unknown:
/// `/home/u/.config/popwire/config.toml:7: accounts.work.securty: unknown key (did you mean "security"?)`.
/// Boxed inside, so that `Result<_, ConfigError>` stays one pointer wide.
#[derive(Debug)]
pub struct ConfigError(Box<ErrorDetails>);

#[derive(Debug)]
struct ErrorDetails {
    path: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    kind: ConfigErrorKind,
    message: String,
    fix: Option<String>,
    source: Option<std::io::Error>,
}

impl ConfigError {
    /// The config file.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The 1-based line of the offending key or value, when known.
    pub fn line(&self) -> Option<usize> {
        self.0.line
    }

    /// The dotted key, e.g. `accounts.work.security`, when the error concerns one.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// What sort of mistake this is.
    pub fn kind(&self) -> ConfigErrorKind {
        self.0.kind
    }

    /// What is wrong. Never contains a secret.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// What to do about it, when there is a clear answer.
    pub fn fix(&self) -> Option<&str> {
        self.0.fix.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let details = &self.0;
        write!(f, "{}", details.path.display())?;
        if let Some(line) = details.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &details.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&details.message)?;
        if let Some(fix) = &details.fix {
            write!(f, " ({fix})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The config file's usual place: `$XDG_CONFIG_HOME/popwire/config.toml`, else
/// `$HOME/.config/popwire/config.toml`. `None` when neither variable is usable.
pub fn default_path() -> Option<PathBuf> {
    default_path_from(
        std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// [`default_path`] with the environment passed in, so it can be tested.
fn default_path_from(xdg_config_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    let base = xdg_config_home
        .filter(|p| p.is_absolute())
        .or_else(|| home.filter(|p| p.is_absolute()).map(|h| h.join(".config")))?;
    Some(base.join("popwire").join("config.toml"))
}

/// Reads and checks the config file at `path`. Adds a warning when the file holds a literal
/// password but is readable by group or others.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let read_error = |source: std::io::Error| {
        let message = if source.kind() == std::io::ErrorKind::InvalidData {
            "cannot read it: it is not UTF-8 text".to_owned()
        } else {
            format!("cannot read it: {source}")
        };
        let fix = (source.kind() == std::io::ErrorKind::NotFound)
            .then(|| "create it with an [accounts.NAME] table".to_owned());
        ConfigError(Box::new(ErrorDetails {
            path: path.to_owned(),
            line: None,
            key: None,
            kind: ConfigErrorKind::Read,
            message,
            fix,
            source: Some(source),
        }))
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    // Permissions come from the open file, not the path, so they describe what was read.
    let metadata = file.metadata().map_err(read_error)?;
    // The text may hold a password: wipe it once parsed.
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(read_error)?;
    let mut config = parse(&text, path)?;
    let has_literal_password = config
        .accounts
        .iter()
        .any(|(_, a)| matches!(a.credential, CredentialSource::Password(_)));
    if has_literal_password && readable_by_others(&metadata) {
        config.warnings.push(format!(
            "{}: holds a password but other users can read it (run chmod 600 {}, or use password_command)",
            path.display(),
            shell_quote(&path.display().to_string()),
        ));
    }
    Ok(config)
}

#[cfg(unix)]
fn readable_by_others(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o077 != 0
}

#[cfg(not(unix))]
fn readable_by_others(_metadata: &std::fs::Metadata) -> bool {
    false
}

/// Quotes `s` for a shell command the user may paste, when it needs it.
fn shell_quote(s: &str) -> String {
    let plain = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%~".contains(&b));
    if plain && !s.is_empty() {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Checks config text. `origin` is the file it came from: it names the file in errors and is the
/// base for relative paths. Reads `$HOME` to expand `~/` but touches no file.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    Parser {
        text,
        origin,
        home: std::env::var_os("HOME").map(PathBuf::from),
        warnings: Vec::new(),
    }
    .parse()
}

// ---------------------------------------------------------------------------------------------
// The spanned tree.
//
// toml 0.8's `Spanned<T>` fails outright on tables that are only implied (`accounts` in
// `[accounts.work]`, or `a` in `a.b = 1`), so `Item` speaks the same protocol but falls back to
// "no span" for those. The protocol's struct and field names are private to serde_spanned, so
// they are read from `Spanned`'s own `Deserialize` impl instead of being copied here.

/// A TOML value and where it sits in the text (when toml knows).
///
/// Deliberately not `Debug`: the tree holds the password as plain text.
struct Item {
    span: Option<Range<usize>>,
    node: Node,
}

enum Node {
    String(String),
    Integer(i64),
    Float,
    Boolean(bool),
    Datetime,
    Array(Vec<Item>),
    /// Entries in the order toml hands them over (not file order; see [`Item::offset`]).
    Table(Vec<(String, Item)>),
}

impl Node {
    /// The TOML type, with an article, for "expected X, found Y".
    fn type_name(&self) -> &'static str {
        match self {
            Node::String(_) => "a string",
            Node::Integer(_) => "an integer",
            Node::Float => "a float",
            Node::Boolean(_) => "a boolean",
            Node::Datetime => "a date-time",
            Node::Array(_) => "an array",
            Node::Table(_) => "a table",
        }
    }
}

impl Item {
    /// The first byte offset of this item, looking into children when it has no span itself.
    fn offset(&self) -> Option<usize> {
        if let Some(span) = &self.span {
            return Some(span.start);
        }
        match &self.node {
            Node::Table(entries) => entries.iter().filter_map(|(_, item)| item.offset()).min(),
            Node::Array(items) => items.iter().filter_map(Item::offset).min(),
            _ => None,
        }
    }
}

/// The datetime marker key toml uses; a datetime is never a valid popwire value.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

/// `Spanned`'s private protocol: the struct name and its three field names (start, end, value).
type SpannedProtocol = (&'static str, &'static [&'static str]);

/// Learns the protocol by letting `toml::Spanned` ask a probe deserializer for it.
fn spanned_protocol() -> Option<SpannedProtocol> {
    static PROTOCOL: OnceLock<Option<SpannedProtocol>> = OnceLock::new();
    *PROTOCOL.get_or_init(|| {
        let mut seen = None;
        let _ = toml::Spanned::<IgnoredAny>::deserialize(Probe(&mut seen));
        seen.filter(|(_, fields)| fields.len() == 3)
    })
}

struct Probe<'a>(&'a mut Option<SpannedProtocol>);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("probe"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some((name, fields));
        Err(de::Error::custom("probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match spanned_protocol() {
            Some((name, fields)) => deserializer.deserialize_struct(name, fields, ItemVisitor),
            None => Node::deserialize(deserializer).map(|node| Item { span: None, node }),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Reads an [`Item`]: either toml's spanned map, or (for implied tables) the value itself.
struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Item, E> {
        NodeVisitor.visit_bool(v).map(unspanned)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
        NodeVisitor.visit_i64(v).map(unspanned)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
        NodeVisitor.visit_u64(v).map(unspanned)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Item, E> {
        NodeVisitor.visit_f64(v).map(unspanned)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
        NodeVisitor.visit_str(v).map(unspanned)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item, A::Error> {
        NodeVisitor.visit_seq(seq).map(unspanned)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(unspanned(Node::Table(Vec::new())));
        };
        let start_field = spanned_protocol().and_then(|(_, fields)| fields.first().copied());
        if Some(first.as_str()) != start_field {
            // An implied table, handed over as a plain map.
            return read_table(first, map).map(unspanned);
        }
        let start: usize = map.next_value()?;
        let mut end = None;
        let mut node = None;
        while let Some(key) = map.next_key::<String>()? {
            match spanned_protocol().and_then(|(_, f)| f.iter().position(|&n| n == key)) {
                Some(1) => end = Some(map.next_value::<usize>()?),
                Some(2) => node = Some(map.next_value::<Node>()?),
                _ => return Err(de::Error::custom("unexpected field in a spanned value")),
            }
        }
        let node = node.ok_or_else(|| de::Error::custom("spanned value without a value"))?;
        let end = end.unwrap_or(start);
        Ok(Item {
            span: Some(start..end),
            node,
        })
    }
}

fn unspanned(node: Node) -> Item {
    Item { span: None, node }
}

/// Reads the rest of a table whose first key has already been taken.
fn read_table<'de, A: MapAccess<'de>>(first: String, mut map: A) -> Result<Node, A::Error> {
    if first == TOML_DATETIME_KEY {
        map.next_value::<IgnoredAny>()?;
        return Ok(Node::Datetime);
    }
    let mut entries = vec![(first, map.next_value::<Item>()?)];
    while let Some(key) = map.next_key::<String>()? {
        entries.push((key, map.next_value::<Item>()?));
    }
    Ok(Node::Table(entries))
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Boolean(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Integer(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        // TOML integers are i64; saturate rather than fail, range checks happen later.
        Ok(Node::Integer(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Node, E> {
        Ok(Node::Float)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Item>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        match map.next_key::<String>()? {
            Some(first) => read_table(first, map),
            None => Ok(Node::Table(Vec::new())),
        }
    }
}

/// Orders table entries as they appear in the file; entries toml gave no position go last.
fn in_file_order(entries: &[(String, Item)]) -> Vec<(&str, &Item)> {
    let mut sorted: Vec<(&str, &Item)> = entries
        .iter()
        .map(|(key, item)| (key.as_str(), item))
        .collect();
    sorted.sort_by_key(|(_, item)| item.offset().unwrap_or(usize::MAX));
    sorted
}

// ---------------------------------------------------------------------------------------------
// Checking.

/// Every key an account table accepts, with an example used in "write it like ..." fixes.
const ACCOUNT_KEYS: &[(&str, &str)] = &[
    ("email", r#"email = "you@example.com""#),
    ("username", r#"username = "you""#),
    ("password", r#"password = "...""#),
    (
        "password_command",
        r#"password_command = ["pass", "show", "mail"]"#,
    ),
    ("password_env", r#"password_env = "MAIL_PASSWORD""#),
    (
        "token_command",
        r#"token_command = ["oauth2-token", "you@example.com"]"#,
    ),
    ("server", r#"server = "pop.example.com""#),
    ("port", "port = 995"),
    ("security", r#"security = "tls""#),
    ("ca_file", r#"ca_file = "~/certs/ca.pem""#),
    ("auth", r#"auth = "auto""#),
    ("keep", r#"keep = false, keep = true or keep = "30d""#),
    ("maildir", r#"maildir = "~/Mail/inbox""#),
    ("mbox", r#"mbox = "~/mbox""#),
    ("mda", r#"mda = ["procmail", "-d", "you"]"#),
    ("max_message_size", r#"max_message_size = "10M""#),
    ("timeout", r#"timeout = "60s""#),
    ("mbox_lock", r#"mbox_lock = ["dotlock", "fcntl", "flock"]"#),
    ("mda_timeout", r#"mda_timeout = "5m""#),
];

/// Names people bring from other mail tools, mapped to ours, for "did you mean".
const KEY_ALIASES: &[(&str, &str)] = &[
    ("host", "server"),
    ("hostname", "server"),
    ("user", "username"),
    ("login", "username"),
    ("pass", "password"),
    ("passwordeval", "password_command"),
    ("tls", "security"),
    ("ssl", "security"),
    ("from", "email"),
    ("address", "email"),
    ("tls_trust_file", "ca_file"),
    ("delete", "keep"),
    ("path", "maildir"),
];

const CREDENTIAL_KEYS: &[&str] = &[
    "password",
    "password_command",
    "password_env",
    "token_command",
];
const DESTINATION_KEYS: &[&str] = &["maildir", "mbox", "mda"];
const SECURITY_VALUES: &str = r#"expected one of "tls", "starttls", "none""#;
const AUTH_VALUES: &str = r#"expected one of "auto", "user", "apop", "plain", "login", "cram-md5", "scram-sha-1", "scram-sha-256", "xoauth2", "oauthbearer""#;

/// The closest known key to a misspelt one, if any is close enough to be a likely typo.
fn suggest<'k>(unknown: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let normalised = unknown.to_ascii_lowercase().replace('-', "_");
    let best = known
        .into_iter()
        .map(|k| (edit_distance(&normalised, k), k))
        .min_by_key(|&(distance, _)| distance)
        .filter(|&(distance, k)| distance <= (k.chars().count() / 3).max(1))
        .map(|(_, k)| k);
    best.or_else(|| {
        KEY_ALIASES
            .iter()
            .find(|(alias, _)| *alias == normalised)
            .map(|&(_, key)| key)
    })
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        let mut left = i + 1;
        current.push(left);
        for ((&diagonal, &up), &cb) in previous.iter().zip(previous.iter().skip(1)).zip(&b) {
            let cost = (diagonal + usize::from(ca != cb)).min(up + 1).min(left + 1);
            current.push(cost);
            left = cost;
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

/// Writes a TOML key segment, quoting it when it is not a bare key.
fn key_segment(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

struct Parser<'a> {
    text: &'a str,
    origin: &'a Path,
    home: Option<PathBuf>,
    warnings: Vec<String>,
}

/// One account table being checked.
struct AccountTable<'a> {
    name: &'a str,
    /// `accounts.NAME`, quoted as needed.
    key: String,
    offset: Option<usize>,
    fields: Vec<(&'a str, &'a Item)>,
}

impl AccountTable<'_> {
    fn get(&self, key: &str) -> Option<&Item> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, item)| item)
    }

    fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.key)
    }
}

fn example_for(key: &str) -> &'static str {
    ACCOUNT_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |&(_, example)| example)
}

impl<'a> Parser<'a> {
    fn line_of(&self, offset: usize) -> usize {
        let before = self
            .text
            .as_bytes()
            .get(..offset)
            .unwrap_or(self.text.as_bytes());
        before.iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn error(
        &self,
        kind: ConfigErrorKind,
        offset: Option<usize>,
        key: Option<String>,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> ConfigError {
        ConfigError(Box::new(ErrorDetails {
            path: self.origin.to_owned(),
            line: offset.map(|o| self.line_of(o)),
            key,
            kind,
            message: message.into(),
            fix,
            source: None,
        }))
    }

    fn wrong_type(
        &self,
        table: &AccountTable<'_>,
        key: &str,
        item: &Item,
        expected: &str,
    ) -> ConfigError {
        self.error(
            ConfigErrorKind::WrongType,
            item.offset(),
            Some(table.path(key)),
            format!("expected {expected}, found {}", item.node.type_name()),
            Some(format!("write it like {}", example_for(key))),
        )
    }

    fn bad_value(
        &self,
        table: &AccountTable<'_>,
        key: &str,
        item: &Item,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        self.error(
            ConfigErrorKind::BadValue,
            item.offset(),
            Some(table.path(key)),
            message,
            Some(fix.into()),
        )
    }

    fn parse(mut self) -> Result<Config, ConfigError> {
        let root: Node = toml::from_str(self.text).map_err(|e| self.syntax_error(&e))?;
        let Node::Table(entries) = &root else {
            return Err(self.error(
                ConfigErrorKind::Syntax,
                None,
                None,
                "not a TOML table",
                None,
            ));
        };
        let mut accounts_item = None;
        for (key, item) in in_file_order(entries) {
            if key == "accounts" {
                accounts_item = Some(item);
                continue;
            }
            let fix = if ACCOUNT_KEYS.iter().any(|(k, _)| *k == key) {
                "account settings go in an [accounts.NAME] table".to_owned()
            } else if let Some(s) = suggest(key, ["accounts"]) {
                format!("did you mean {s:?}?")
            } else {
                "the file holds only [accounts.NAME] tables".to_owned()
            };
            return Err(self.error(
                ConfigErrorKind::UnknownKey,
                item.offset(),
                Some(key_segment(key)),
                "unknown key",
                Some(fix),
            ));
        }
        let no_accounts = || {
            self.error(
                ConfigErrorKind::MissingKey,
                None,
                None,
                "no accounts",
                Some(
                    "add an [accounts.NAME] table with email, server, a password and a maildir"
                        .to_owned(),
                ),
            )
        };
        let accounts_item = accounts_item.ok_or_else(no_accounts)?;
        let Node::Table(account_entries) = &accounts_item.node else {
            let fix = if matches!(accounts_item.node, Node::Array(_)) {
                "write [accounts.NAME], not [[accounts]]"
            } else {
                "write one [accounts.NAME] table per account"
            };
            return Err(self.error(
                ConfigErrorKind::WrongType,
                accounts_item.offset(),
                Some("accounts".to_owned()),
                format!("expected a table, found {}", accounts_item.node.type_name()),
                Some(fix.to_owned()),
            ));
        };
        if account_entries.is_empty() {
            return Err(no_accounts());
        }
        let mut accounts = Vec::with_capacity(account_entries.len());
        for (name, item) in in_file_order(account_entries) {
            let account = self.account(name, item)?;
            accounts.push((name.to_owned(), account));
        }
        Ok(Config {
            accounts,
            warnings: self.warnings,
        })
    }

    fn syntax_error(&self, error: &toml::de::Error) -> ConfigError {
        // Only toml's message, never its Display: that quotes the source line, which may hold a
        // password (e.g. an unterminated `password = "...`).
        let message = error.message().trim_end();
        let message = if message.contains(TOML_DATETIME_KEY) {
            "a date-time is not a valid value here".to_owned()
        } else {
            // toml names keys as written, and a quoted key may hold any character.
            escape_controls(&message.replace('\n', "; "))
        };
        self.error(
            ConfigErrorKind::Syntax,
            error.span().map(|s| s.start),
            None,
            format!("invalid TOML: {message}"),
            None,
        )
    }

    fn account(&mut self, name: &str, item: &Item) -> Result<Account, ConfigError> {
        let key = format!("accounts.{}", key_segment(name));
        let Node::Table(entries) = &item.node else {
            return Err(self.error(
                ConfigErrorKind::WrongType,
                item.offset(),
                Some(key),
                format!("expected a table, found {}", item.node.type_name()),
                Some(format!(
                    "write [accounts.{}] and the settings below it",
                    key_segment(name)
                )),
            ));
        };
        // The name ends up in file names (the UID journal) and in logs.
        let bad_name = name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\\'])
            || name.chars().any(char::is_control);
        if bad_name {
            return Err(self.error(
                ConfigErrorKind::BadValue,
                item.offset(),
                Some(key),
                "unusable account name",
                Some(
                    "use a name without slashes or control characters that does not start with a dot"
                        .to_owned(),
                ),
            ));
        }
        let table = AccountTable {
            name,
            key,
            offset: item.offset(),
            fields: in_file_order(entries),
        };
        for &(field, value) in &table.fields {
            if ACCOUNT_KEYS.iter().all(|(k, _)| *k != field) {
                let fix = suggest(field, ACCOUNT_KEYS.iter().map(|&(k, _)| k)).map_or_else(
                    || {
                        let known: Vec<&str> = ACCOUNT_KEYS.iter().map(|&(k, _)| k).collect();
                        format!("known keys: {}", known.join(", "))
                    },
                    |s| format!("did you mean {s:?}?"),
                );
                return Err(self.error(
                    ConfigErrorKind::UnknownKey,
                    value.offset(),
                    Some(table.path(&key_segment(field))),
                    "unknown key",
                    Some(fix),
                ));
            }
        }

        let email = self.email(&table)?;
        let username = match self.string(&table, "username")? {
            Some((username, item)) if username.is_empty() => {
                return Err(self.bad_value(
                    &table,
                    "username",
                    item,
                    "empty username",
                    "remove the key to log in with the e-mail address",
                ));
            }
            Some((username, _)) => username,
            None => email.clone(),
        };
        let server = self.server(&table)?;
        let security = self.security(&table)?;
        let port = self
            .port(&table)?
            .unwrap_or_else(|| security.default_port());
        let ca_file = self.path(&table, "ca_file")?;
        let auth = self.auth(&table)?;
        let credential = self.credential(&table, &auth)?;
        let keep = self.keep(&table)?;
        let destination = self.destination(&table)?;
        let max_message_size = self.max_message_size(&table)?;
        let timeout = self.timeout(&table)?.unwrap_or(DEFAULT_TIMEOUT);
        let store = self.store_options(&table, &destination)?;

        if security == Security::None && !is_loopback(&server) {
            let offset = table.get("security").and_then(Item::offset);
            let place = match offset {
                Some(o) => format!("{}:{}", self.origin.display(), self.line_of(o)),
                None => self.origin.display().to_string(),
            };
            self.warnings.push(format!(
                "{place}: {}: security = \"none\" sends the {} to {server} in clear text (use \"tls\" or \"starttls\")",
                table.path("security"),
                if credential.is_token() { "token" } else { "password" },
            ));
        }

        Ok(Account {
            name: table.name.to_owned(),
            email,
            username,
            credential,
            server,
            port,
            security,
            ca_file,
            auth,
            keep,
            destination,
            max_message_size,
            timeout,
            store,
        })
    }

    fn string<'t>(
        &self,
        table: &'t AccountTable<'_>,
        key: &str,
    ) -> Result<Option<(String, &'t Item)>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(item) => match &item.node {
                Node::String(s) => Ok(Some((s.clone(), item))),
                _ => Err(self.wrong_type(table, key, item, "a string")),
            },
        }
    }

    fn required_string<'t>(
        &self,
        table: &'t AccountTable<'_>,
        key: &str,
    ) -> Result<(String, &'t Item), ConfigError> {
        self.string(table, key)?.ok_or_else(|| {
            self.error(
                ConfigErrorKind::MissingKey,
                table.offset,
                Some(table.key.clone()),
                format!("missing key {key:?}"),
                Some(format!("add {}", example_for(key))),
            )
        })
    }

    fn email(&self, table: &AccountTable<'_>) -> Result<String, ConfigError> {
        let (email, item) = self.required_string(table, "email")?;
        let email = email.trim().to_owned();
        if !email.contains('@') || email.contains(char::is_whitespace) {
            return Err(self.bad_value(
                table,
                "email",
                item,
                format!("{email:?} is not an e-mail address"),
                "write the whole address, e.g. you@example.com",
            ));
        }
        Ok(email)
    }

    fn server(&self, table: &AccountTable<'_>) -> Result<String, ConfigError> {
        let (server, item) = self.required_string(table, "server")?;
        let server = server.trim().to_owned();
        let fix = "write only the host name, e.g. server = \"pop.example.com\"";
        if server.is_empty()
            || server.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err(self.bad_value(
                table,
                "server",
                item,
                format!("{server:?} is not a host name"),
                fix,
            ));
        }
        // One colon is "host:port"; more is an IPv6 address.
        if server.matches(':').count() == 1 {
            return Err(self.bad_value(
                table,
                "server",
                item,
                format!("{server:?} includes a port"),
                "put the port in its own key: port = 995",
            ));
        }
        Ok(server)
    }

    fn security(&self, table: &AccountTable<'_>) -> Result<Security, ConfigError> {
        let Some((value, item)) = self.string(table, "security")? else {
            return Ok(Security::default());
        };
        match value.to_ascii_lowercase().as_str() {
            "tls" => Ok(Security::Tls),
            "starttls" => Ok(Security::StartTls),
            "none" => Ok(Security::None),
            _ => Err(self.bad_value(
                table,
                "security",
                item,
                format!("unknown security {value:?}"),
                SECURITY_VALUES,
            )),
        }
    }

    fn port(&self, table: &AccountTable<'_>) -> Result<Option<u16>, ConfigError> {
        let Some(item) = table.get("port") else {
            return Ok(None);
        };
        let Node::Integer(port) = item.node else {
            return Err(self.wrong_type(table, "port", item, "an integer"));
        };
        match u16::try_from(port) {
            Ok(port) if port != 0 => Ok(Some(port)),
            _ => Err(self.bad_value(
                table,
                "port",
                item,
                format!("port {port} is out of range"),
                "use a port from 1 to 65535, usually 995 for tls or 110 for starttls",
            )),
        }
    }

    fn path(&self, table: &AccountTable<'_>, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some((raw, item)) = self.string(table, key)? else {
            return Ok(None);
        };
        self.resolve_path(&raw)
            .map(Some)
            .map_err(|(message, fix)| self.bad_value(table, key, item, message, fix))
    }

    /// Expands `~/` and makes relative paths relative to the config file's directory, so the
    /// meaning of the file does not depend on the directory popwire happens to be run from.
    fn resolve_path(&self, raw: &str) -> Result<PathBuf, (String, String)> {
        if raw.is_empty() {
            return Err((
                "empty path".to_owned(),
                "write a file or directory path".to_owned(),
            ));
        }
        if raw == "~" || raw.starts_with("~/") {
            let home = self
                .home
                .as_ref()
                .filter(|h| h.is_absolute())
                .ok_or_else(|| {
                    (
                        format!("cannot expand {raw:?}: $HOME is not set"),
                        "write the full path".to_owned(),
                    )
                })?;
            return Ok(match raw.strip_prefix("~/") {
                Some(rest) => home.join(rest),
                None => home.clone(),
            });
        }
        if raw.starts_with('~') {
            return Err((
                format!("{raw:?}: only ~/ is expanded, not ~user/"),
                "write the full path".to_owned(),
            ));
        }
        let path = Path::new(raw);
        if path.is_absolute() {
            return Ok(path.to_owned());
        }
        Ok(self
            .origin
            .parent()
            .map_or_else(|| path.to_owned(), |dir| dir.join(path)))
    }

    fn auth(&self, table: &AccountTable<'_>) -> Result<AuthChoice, ConfigError> {
        let Some((value, item)) = self.string(table, "auth")? else {
            return Ok(AuthChoice::Auto);
        };
        let upper = value.to_ascii_uppercase();
        match upper.as_str() {
            "AUTO" => Ok(AuthChoice::Auto),
            "USER" => Ok(AuthChoice::User),
            "APOP" => Ok(AuthChoice::Apop),
            "PLAIN" | "LOGIN" | "CRAM-MD5" | "SCRAM-SHA-1" | "SCRAM-SHA-256" | "XOAUTH2"
            | "OAUTHBEARER" => Ok(AuthChoice::Sasl(upper)),
            _ => Err(self.bad_value(
                table,
                "auth",
                item,
                format!("unknown auth {value:?}"),
                AUTH_VALUES,
            )),
        }
    }

    /// Exactly one of [`CREDENTIAL_KEYS`], and a token only with an OAuth mechanism.
    fn credential(
        &self,
        table: &AccountTable<'_>,
        auth: &AuthChoice,
    ) -> Result<CredentialSource, ConfigError> {
        let (key, item) = self.exactly_one(
            table,
            CREDENTIAL_KEYS,
            r#"add one of password_command = ["pass", "show", "mail"], password_env = "VAR", password = "..." or token_command = [...]"#,
        )?;
        let credential = match key {
            "password" => {
                let Node::String(password) = &item.node else {
                    return Err(self.wrong_type(table, key, item, "a string"));
                };
                if password.is_empty() {
                    return Err(self.bad_value(
                        table,
                        key,
                        item,
                        "empty password",
                        "write the password, or use password_command",
                    ));
                }
                CredentialSource::Password(Secret::from(password.as_str()))
            }
            "password_env" => {
                let Node::String(var) = &item.node else {
                    return Err(self.wrong_type(table, key, item, "a string"));
                };
                if var.is_empty() || var.contains(['=', '\0']) {
                    return Err(self.bad_value(
                        table,
                        key,
                        item,
                        format!("{var:?} is not an environment variable name"),
                        "write the variable's name, e.g. password_env = \"MAIL_PASSWORD\"",
                    ));
                }
                CredentialSource::PasswordEnv(var.clone())
            }
            "token_command" => CredentialSource::TokenCommand(self.command(table, key, item)?),
            _ => CredentialSource::PasswordCommand(self.command(table, key, item)?),
        };
        if credential.is_token() {
            let oauth = matches!(auth, AuthChoice::Auto)
                || matches!(auth, AuthChoice::Sasl(m) if m == "XOAUTH2" || m == "OAUTHBEARER");
            if !oauth {
                let auth_item = table.get("auth").unwrap_or(item);
                return Err(self.error(
                    ConfigErrorKind::Conflict,
                    auth_item.offset(),
                    Some(table.path("auth")),
                    "this login method needs a password, but the account has token_command",
                    Some(
                        r#"set auth = "xoauth2" or "oauthbearer", or use password_command"#
                            .to_owned(),
                    ),
                ));
            }
        }
        Ok(credential)
    }

    /// Finds the one key of `keys` the table sets; two is a conflict, none is missing.
    fn exactly_one<'t>(
        &self,
        table: &'t AccountTable<'_>,
        keys: &[&str],
        fix_missing: &str,
    ) -> Result<(&'t str, &'t Item), ConfigError> {
        let mut present = table.fields.iter().filter(|(k, _)| keys.contains(k));
        let Some(&(first, first_item)) = present.next() else {
            return Err(self.error(
                ConfigErrorKind::MissingKey,
                table.offset,
                Some(table.key.clone()),
                format!(
                    "missing one of {}",
                    keys.iter()
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(fix_missing.to_owned()),
            ));
        };
        if let Some(&(second, second_item)) = present.next() {
            let first_place = first_item
                .offset()
                .map(|o| format!(" on line {}", self.line_of(o)))
                .unwrap_or_default();
            return Err(self.error(
                ConfigErrorKind::Conflict,
                second_item.offset(),
                Some(table.path(second)),
                format!("conflicts with {first:?}{first_place}"),
                Some(format!(
                    "keep only one of {}",
                    keys.iter()
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
        }
        Ok((first, first_item))
    }

    fn command(
        &self,
        table: &AccountTable<'_>,
        key: &str,
        item: &Item,
    ) -> Result<CommandLine, ConfigError> {
        match &item.node {
            Node::String(line) if line.trim().is_empty() => Err(self.bad_value(
                table,
                key,
                item,
                "empty command",
                format!("write it like {}", example_for(key)),
            )),
            Node::String(line) => Ok(CommandLine::Shell(line.clone())),
            Node::Array(items) => {
                let mut argv = Vec::with_capacity(items.len());
                for (index, element) in items.iter().enumerate() {
                    let Node::String(arg) = &element.node else {
                        return Err(self.error(
                            ConfigErrorKind::WrongType,
                            element.offset().or(item.offset()),
                            Some(format!("{}[{index}]", table.path(key))),
                            format!("expected a string, found {}", element.node.type_name()),
                            Some("quote every word of the command".to_owned()),
                        ));
                    };
                    argv.push(arg.clone());
                }
                if argv.first().is_none_or(|program| program.is_empty()) {
                    return Err(self.bad_value(
                        table,
                        key,
                        item,
                        "empty command",
                        format!("write it like {}", example_for(key)),
                    ));
                }
                Ok(CommandLine::Argv(argv))
            }
            _ => Err(self.wrong_type(table, key, item, "a string or an array of strings")),
        }
    }

    fn keep(&self, table: &AccountTable<'_>) -> Result<Keep, ConfigError> {
        let Some(item) = table.get("keep") else {
            return Ok(Keep::Delete);
        };
        match &item.node {
            Node::Boolean(false) => Ok(Keep::Delete),
            Node::Boolean(true) => Ok(Keep::Forever),
            Node::String(text) => match parse_duration(text) {
                Ok(d) if d.is_zero() => Err(self.bad_value(
                    table,
                    "keep",
                    item,
                    "a zero duration would delete at once",
                    "write keep = false",
                )),
                Ok(d) => Ok(Keep::For(d)),
                Err(e) => Err(self.bad_duration(table, "keep", item, text, &e)),
            },
            Node::Integer(n) => Err(self.bad_value(
                table,
                "keep",
                item,
                format!("{n} has no unit"),
                format!(r#"write keep = "{n}d" for days, or true to keep forever"#),
            )),
            _ => Err(self.wrong_type(table, "keep", item, "a boolean or a duration string")),
        }
    }

    fn bad_duration(
        &self,
        table: &AccountTable<'_>,
        key: &str,
        item: &Item,
        text: &str,
        e: &ParseError,
    ) -> ConfigError {
        self.bad_value(
            table,
            key,
            item,
            format!("{text:?} is not a duration: {e}"),
            r#"write a number and a unit: "45s", "90m", "12h", "30d" or "2w""#,
        )
    }

    fn destination(&self, table: &AccountTable<'_>) -> Result<Destination, ConfigError> {
        let (key, item) = self.exactly_one(
            table,
            DESTINATION_KEYS,
            r#"add maildir = "~/Mail/inbox", mbox = "~/mbox" or mda = ["procmail"]"#,
        )?;
        match key {
            "mda" => Ok(Destination::Mda(self.command(table, key, item)?)),
            _ => {
                let path = self.path(table, key)?.unwrap_or_default();
                Ok(if key == "mbox" {
                    Destination::Mbox(path)
                } else {
                    Destination::Maildir(path)
                })
            }
        }
    }

    fn max_message_size(&self, table: &AccountTable<'_>) -> Result<Option<u64>, ConfigError> {
        let key = "max_message_size";
        let Some(item) = table.get(key) else {
            return Ok(None);
        };
        let fix = r#"write a positive size: 1048576, "512K", "10M" or "1G""#;
        let size = match &item.node {
            Node::Integer(n) => u64::try_from(*n).unwrap_or(0),
            Node::String(text) => parse_size(text).map_err(|e| {
                self.bad_value(
                    table,
                    key,
                    item,
                    format!("{text:?} is not a size: {e}"),
                    fix,
                )
            })?,
            _ => return Err(self.wrong_type(table, key, item, "an integer or a size string")),
        };
        if size == 0 {
            return Err(self.bad_value(table, key, item, "the size must be positive", fix));
        }
        Ok(Some(size))
    }

    fn timeout(&self, table: &AccountTable<'_>) -> Result<Option<Duration>, ConfigError> {
        self.positive_duration(table, "timeout")
    }

    fn positive_duration(
        &self,
        table: &AccountTable<'_>,
        key: &str,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(item) = table.get(key) else {
            return Ok(None);
        };
        let timeout = match &item.node {
            Node::Integer(n) => Duration::from_secs(u64::try_from(*n).unwrap_or(0)),
            Node::String(text) => {
                parse_duration(text).map_err(|e| self.bad_duration(table, key, item, text, &e))?
            }
            _ => return Err(self.wrong_type(table, key, item, "a duration string or seconds")),
        };
        if timeout.is_zero() {
            return Err(self.bad_value(
                table,
                key,
                item,
                "the timeout must be positive",
                format!("write e.g. {key} = \"60s\""),
            ));
        }
        Ok(Some(timeout))
    }

    /// `mbox_lock` and `mda_timeout`, each only beside the destination it is for.
    fn store_options(
        &self,
        table: &AccountTable<'_>,
        destination: &Destination,
    ) -> Result<StoreOptions, ConfigError> {
        let mut options = StoreOptions::default();
        for (key, applies, fix) in [
            (
                "mbox_lock",
                matches!(destination, Destination::Mbox(_)),
                "it only applies to mbox = ...: remove it",
            ),
            (
                "mda_timeout",
                matches!(destination, Destination::Mda(_)),
                "it only applies to mda = ...: remove it",
            ),
        ] {
            if let Some(item) = table.get(key).filter(|_| !applies) {
                return Err(self.bad_value(table, key, item, "not used by this destination", fix));
            }
        }
        if let Some(timeout) = self.positive_duration(table, "mda_timeout")? {
            options.mda_timeout = timeout;
        }
        let key = "mbox_lock";
        if let Some(item) = table.get(key) {
            let fix = r#"write mbox_lock = ["dotlock", "fcntl", "flock"], or a part of that list"#;
            let Node::Array(items) = &item.node else {
                return Err(self.wrong_type(table, key, item, "an array of strings"));
            };
            let mut locks = Vec::new();
            for element in items {
                let Node::String(name) = &element.node else {
                    return Err(self.wrong_type(table, key, item, "an array of strings"));
                };
                let Ok(kind) = name.parse::<LockKind>() else {
                    return Err(self.bad_value(
                        table,
                        key,
                        item,
                        format!("{:?} is not a lock kind", escape_controls(name)),
                        fix,
                    ));
                };
                if !locks.contains(&kind) {
                    locks.push(kind);
                }
            }
            if locks.is_empty() {
                return Err(self.bad_value(
                    table,
                    key,
                    item,
                    "an mbox appended to without any lock gets cut by other programs' writes",
                    fix,
                ));
            }
            options.mbox_locks = locks;
        }
        Ok(options)
    }
}

/// `text` with control characters escaped (`\t`, `\u{1b}`), so that a message cannot drive the
/// terminal it is printed on.
fn escape_controls(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// True for names that cannot leave the machine: `localhost` and loopback addresses.
fn is_loopback(server: &str) -> bool {
    let host = server.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    const ORIGIN: &str = "/home/u/.config/popwire/config.toml";

    fn parse_at(text: &str) -> Result<Config, ConfigError> {
        Parser {
            text,
            origin: Path::new(ORIGIN),
            home: Some(PathBuf::from("/home/u")),
            warnings: Vec::new(),
        }
        .parse()
    }

    /// A valid account with `extra` lines added to its table.
    fn account_with(extra: &str) -> String {
        format!(
            "[accounts.work]\nemail = \"me@example.com\"\nserver = \"pop.example.com\"\n{extra}\n"
        )
    }

    fn one(text: &str) -> Account {
        let config = parse_at(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.accounts.len(), 1);
        config.accounts.into_iter().next().unwrap().1
    }

    fn error(text: &str) -> ConfigError {
        parse_at(text).expect_err("should be rejected")
    }

    const BASICS: &str = "password = \"hunter2\"\nmaildir = \"~/Mail/work\"";

    #[test]
    fn minimal_account_gets_defaults() {
        let account = one(&account_with(BASICS));
        assert_eq!(account.name, "work");
        assert_eq!(account.email, "me@example.com");
        assert_eq!(account.username, "me@example.com");
        assert_eq!(
            account.credential,
            CredentialSource::Password(Secret::new("hunter2"))
        );
        assert_eq!(account.server, "pop.example.com");
        assert_eq!(account.port, 995);
        assert_eq!(account.security, Security::Tls);
        assert_eq!(account.ca_file, None);
        assert_eq!(account.auth, AuthChoice::Auto);
        assert_eq!(account.keep, Keep::Delete);
        assert_eq!(
            account.destination,
            Destination::Maildir("/home/u/Mail/work".into())
        );
        assert_eq!(account.max_message_size, None);
        assert_eq!(account.timeout, Duration::from_secs(60));
    }

    #[test]
    fn every_key() {
        let account = one(&account_with(
            r#"username = "me"
password_command = ["pass", "show", "mail"]
port = 1995
security = "StartTLS"
ca_file = "certs/ca.pem"
auth = "scram-sha-256"
keep = "30d"
mbox = "/var/mail/me"
max_message_size = "10M"
timeout = 90"#,
        ));
        assert_eq!(account.username, "me");
        assert_eq!(
            account.credential,
            CredentialSource::PasswordCommand(CommandLine::Argv(vec![
                "pass".into(),
                "show".into(),
                "mail".into()
            ]))
        );
        assert_eq!(account.port, 1995);
        assert_eq!(account.security, Security::StartTls);
        assert_eq!(
            account.ca_file,
            Some(PathBuf::from("/home/u/.config/popwire/certs/ca.pem"))
        );
        assert_eq!(account.auth, AuthChoice::Sasl("SCRAM-SHA-256".into()));
        assert_eq!(account.keep, Keep::For(Duration::from_secs(30 * 86_400)));
        assert_eq!(
            account.destination,
            Destination::Mbox("/var/mail/me".into())
        );
        assert_eq!(account.max_message_size, Some(10 * 1024 * 1024));
        assert_eq!(account.timeout, Duration::from_secs(90));
    }

    #[test]
    fn accounts_keep_file_order() {
        let text = ["zeta", "alpha", "mid"]
            .iter()
            .map(|name| {
                format!(
                    "[accounts.{name}]\nemail = \"{name}@x.org\"\nserver = \"pop.x.org\"\n{BASICS}\n\n"
                )
            })
            .collect::<String>();
        let config = parse_at(&text).unwrap();
        let names: Vec<&str> = config.accounts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "mid"]);
        assert_eq!(config.account("alpha").unwrap().email, "alpha@x.org");
        assert!(config.account("nope").is_none());
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn dotted_keys_and_inline_tables_work_too() {
        let text = "[accounts]\n\
             home = { email = \"h@x.org\", server = \"pop.x.org\", password_env = \"PW\", mbox = \"/mb\" }\n\
             work.email = \"me@example.com\"\nwork.server = \"pop.example.com\"\n\
             work.password = \"pw\"\nwork.maildir = \"/m\"\n";
        let config = parse_at(text).unwrap();
        let names: Vec<&str> = config.accounts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["home", "work"]);
        assert_eq!(
            config.accounts[1].1.destination,
            Destination::Maildir("/m".into())
        );
        // Errors in an implied table still find their line.
        let e = error(
            "accounts.work.email = \"me@example.com\"\naccounts.work.server = \"s\"\n\
             accounts.work.password = \"pw\"\naccounts.work.port = \"x\"\n",
        );
        assert_eq!(e.line(), Some(4));
        assert_eq!(e.key(), Some("accounts.work.port"));
    }

    #[test]
    fn spans_are_available() {
        assert!(
            spanned_protocol().is_some(),
            "toml's Spanned protocol changed"
        );
    }

    #[test]
    fn port_defaults_follow_security() {
        for (security, port) in [("tls", 995), ("starttls", 110), ("none", 110)] {
            let account = one(&account_with(&format!(
                "{BASICS}\nsecurity = \"{security}\""
            )));
            assert_eq!(account.port, port, "{security}");
        }
    }

    #[test]
    fn auth_values() {
        let cases = [
            ("auto", AuthChoice::Auto),
            ("USER", AuthChoice::User),
            ("apop", AuthChoice::Apop),
            ("plain", AuthChoice::Sasl("PLAIN".into())),
            ("login", AuthChoice::Sasl("LOGIN".into())),
            ("Cram-MD5", AuthChoice::Sasl("CRAM-MD5".into())),
            ("scram-sha-1", AuthChoice::Sasl("SCRAM-SHA-1".into())),
            ("scram-sha-256", AuthChoice::Sasl("SCRAM-SHA-256".into())),
            ("xoauth2", AuthChoice::Sasl("XOAUTH2".into())),
            ("oauthbearer", AuthChoice::Sasl("OAUTHBEARER".into())),
        ];
        for (text, expected) in cases {
            let account = one(&account_with(&format!("{BASICS}\nauth = \"{text}\"")));
            assert_eq!(account.auth, expected);
        }
        let e = error(&account_with(&format!("{BASICS}\nauth = \"gssapi\"")));
        assert_eq!(e.kind(), ConfigErrorKind::BadValue);
        assert_eq!(
            e.to_string(),
            format!("{ORIGIN}:6: accounts.work.auth: unknown auth \"gssapi\" ({AUTH_VALUES})")
        );
    }

    #[test]
    fn keep_values() {
        let cases = [
            ("false", Keep::Delete),
            ("true", Keep::Forever),
            ("\"12h\"", Keep::For(Duration::from_secs(43_200))),
            ("\"90m\"", Keep::For(Duration::from_secs(5_400))),
            ("\"2w\"", Keep::For(Duration::from_secs(1_209_600))),
            ("\"45s\"", Keep::For(Duration::from_secs(45))),
        ];
        for (text, expected) in cases {
            let account = one(&account_with(&format!("{BASICS}\nkeep = {text}")));
            assert_eq!(account.keep, expected, "{text}");
        }
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nkeep = 30"))).to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.keep: 30 has no unit (write keep = \"30d\" for days, or true to keep forever)"
            )
        );
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nkeep = \"0d\""))).to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.keep: a zero duration would delete at once (write keep = false)"
            )
        );
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nkeep = \"3 months\""))).to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.keep: \"3 months\" is not a duration: unknown unit \"months\" \
                 (write a number and a unit: \"45s\", \"90m\", \"12h\", \"30d\" or \"2w\")"
            )
        );
        let e = error(&account_with(&format!("{BASICS}\nkeep = 1.5")));
        assert_eq!(e.kind(), ConfigErrorKind::WrongType);
        assert_eq!(
            e.message(),
            "expected a boolean or a duration string, found a float"
        );
    }

    #[test]
    fn destinations() {
        let account = one(&account_with("password = \"pw\"\nmbox = \"mail/inbox\""));
        assert_eq!(
            account.destination,
            Destination::Mbox("/home/u/.config/popwire/mail/inbox".into())
        );
        let account = one(&account_with("password = \"pw\"\nmda = \"procmail -d me\""));
        assert_eq!(
            account.destination,
            Destination::Mda(CommandLine::Shell("procmail -d me".into()))
        );
        let account = one(&account_with("password = \"pw\"\nmda = [\"maildrop\"]"));
        assert_eq!(
            account.destination,
            Destination::Mda(CommandLine::Argv(vec!["maildrop".into()]))
        );

        assert_eq!(
            error(&account_with(
                "password = \"pw\"\nmaildir = \"/m\"\nmbox = \"/b\""
            ))
            .to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.mbox: conflicts with \"maildir\" on line 5 \
                 (keep only one of \"maildir\", \"mbox\", \"mda\")"
            )
        );
        let e = error(&account_with("password = \"pw\""));
        assert_eq!(e.kind(), ConfigErrorKind::MissingKey);
        assert_eq!(
            e.to_string(),
            format!(
                "{ORIGIN}:1: accounts.work: missing one of \"maildir\", \"mbox\", \"mda\" \
                 (add maildir = \"~/Mail/inbox\", mbox = \"~/mbox\" or mda = [\"procmail\"])"
            )
        );
        let e = error(&account_with("password = \"pw\"\nmda = [\"procmail\", 5]"));
        assert_eq!(e.key(), Some("accounts.work.mda[1]"));
        assert_eq!(e.message(), "expected a string, found an integer");
        let e = error(&account_with("password = \"pw\"\nmda = []"));
        assert_eq!(e.message(), "empty command");
        let e = error(&account_with("password = \"pw\"\nmaildir = \"\""));
        assert_eq!(e.message(), "empty path");
        let e = error(&account_with("password = \"pw\"\nmaildir = \"~bob/Mail\""));
        assert_eq!(e.fix(), Some("write the full path"));
    }

    #[test]
    fn credentials() {
        let account = one(&account_with(
            "maildir = \"/m\"\npassword_command = \"pass show mail | head -1\"",
        ));
        assert_eq!(
            account.credential,
            CredentialSource::PasswordCommand(CommandLine::Shell(
                "pass show mail | head -1".into()
            ))
        );
        let account = one(&account_with(
            "maildir = \"/m\"\npassword_env = \"MAIL_PW\"",
        ));
        assert_eq!(
            account.credential,
            CredentialSource::PasswordEnv("MAIL_PW".into())
        );
        let account = one(&account_with(
            "maildir = \"/m\"\ntoken_command = [\"oauth2\", \"me\"]",
        ));
        assert!(account.credential.is_token());
        assert_eq!(account.credential.config_key(), "token_command");
        let account = one(&account_with(
            "maildir = \"/m\"\ntoken_command = \"get-token\"\nauth = \"oauthbearer\"",
        ));
        assert_eq!(account.auth, AuthChoice::Sasl("OAUTHBEARER".into()));

        assert_eq!(
            error(&account_with(
                "maildir = \"/m\"\npassword = \"a\"\npassword_env = \"B\""
            ))
            .to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.password_env: conflicts with \"password\" on line 5 \
                 (keep only one of \"password\", \"password_command\", \"password_env\", \"token_command\")"
            )
        );
        let e = error(&account_with("maildir = \"/m\""));
        assert_eq!(e.kind(), ConfigErrorKind::MissingKey);
        assert_eq!(
            e.message(),
            "missing one of \"password\", \"password_command\", \"password_env\", \"token_command\""
        );
        assert_eq!(
            error(&account_with(
                "maildir = \"/m\"\ntoken_command = \"t\"\nauth = \"plain\""
            ))
            .to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.auth: this login method needs a password, but the account \
                 has token_command (set auth = \"xoauth2\" or \"oauthbearer\", or use password_command)"
            )
        );
        assert_eq!(
            error(&account_with("maildir = \"/m\"\npassword = \"\"")).message(),
            "empty password"
        );
        assert_eq!(
            error(&account_with("maildir = \"/m\"\npassword_env = \"A=B\"")).kind(),
            ConfigErrorKind::BadValue
        );
        assert_eq!(
            error(&account_with("maildir = \"/m\"\npassword_command = \"  \"")).message(),
            "empty command"
        );
    }

    #[test]
    fn sizes_and_timeouts() {
        for (text, size) in [
            ("1048576", 1_048_576),
            ("\"512K\"", 524_288),
            ("\"1G\"", 1 << 30),
        ] {
            let account = one(&account_with(&format!(
                "{BASICS}\nmax_message_size = {text}"
            )));
            assert_eq!(account.max_message_size, Some(size));
        }
        for text in ["0", "-5", "\"0K\"", "\"10X\""] {
            let e = error(&account_with(&format!(
                "{BASICS}\nmax_message_size = {text}"
            )));
            assert_eq!(e.kind(), ConfigErrorKind::BadValue, "{text}");
            assert_eq!(e.key(), Some("accounts.work.max_message_size"));
        }
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nmax_message_size = true"))).kind(),
            ConfigErrorKind::WrongType
        );
        let account = one(&account_with(&format!("{BASICS}\ntimeout = \"2m\"")));
        assert_eq!(account.timeout, Duration::from_secs(120));
        assert_eq!(
            error(&account_with(&format!("{BASICS}\ntimeout = 0"))).to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.timeout: the timeout must be positive (write e.g. timeout = \"60s\")"
            )
        );
        assert_eq!(
            error(&account_with(&format!("{BASICS}\ntimeout = \"soon\""))).kind(),
            ConfigErrorKind::BadValue
        );
    }

    #[test]
    fn ca_file_paths() {
        let account = one(&account_with(&format!("{BASICS}\nca_file = \"~/ca.pem\"")));
        assert_eq!(account.ca_file, Some(PathBuf::from("/home/u/ca.pem")));
        let account = one(&account_with(&format!(
            "{BASICS}\nca_file = \"/etc/ca.pem\""
        )));
        assert_eq!(account.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        let e = Parser {
            text: &account_with(&format!("{BASICS}\nca_file = \"~/ca.pem\"")),
            origin: Path::new(ORIGIN),
            home: None,
            warnings: Vec::new(),
        }
        .parse()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.ca_file: cannot expand \"~/ca.pem\": $HOME is not set (write the full path)"
            )
        );
    }

    #[test]
    fn unknown_keys_get_suggestions() {
        let text = format!("# popwire\n\n{}securty = \"tls\"\n", account_with(BASICS));
        assert_eq!(
            error(&text).to_string(),
            "/home/u/.config/popwire/config.toml:8: accounts.work.securty: unknown key (did you mean \"security\"?)"
        );
        let e = error(&account_with(&format!("{BASICS}\npasswordcommand = \"x\"")));
        assert_eq!(e.kind(), ConfigErrorKind::UnknownKey);
        assert_eq!(e.fix(), Some("did you mean \"password_command\"?"));
        let e = error(&account_with(&format!("{BASICS}\nhost = \"x\"")));
        assert_eq!(e.fix(), Some("did you mean \"server\"?"));
        let e = error(&account_with(&format!("{BASICS}\nflavour = \"x\"")));
        assert!(
            e.fix()
                .unwrap()
                .starts_with("known keys: email, username, "),
            "{e}"
        );
        let e = error(&account_with(&format!("{BASICS}\n\"odd key\" = 1")));
        assert_eq!(e.key(), Some("accounts.work.\"odd key\""));

        assert_eq!(
            error(&format!("acounts = 1\n{}", account_with(BASICS))).to_string(),
            format!("{ORIGIN}:1: acounts: unknown key (did you mean \"accounts\"?)")
        );
        assert_eq!(
            error("email = \"me@example.com\"\n").to_string(),
            format!(
                "{ORIGIN}:1: email: unknown key (account settings go in an [accounts.NAME] table)"
            )
        );
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nport = \"995\""))).to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.port: expected an integer, found a string (write it like port = 995)"
            )
        );
        let e = error(&account_with("maildir = \"/m\"\npassword = 1234"));
        assert_eq!(
            e.to_string(),
            format!(
                "{ORIGIN}:5: accounts.work.password: expected a string, found an integer (write it like password = \"...\")"
            )
        );
        assert!(!e.to_string().contains("1234"));
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nsecurity = true"))).kind(),
            ConfigErrorKind::WrongType
        );
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nemail2 = 1979-05-27"))).kind(),
            ConfigErrorKind::UnknownKey
        );
        let e = error(&account_with(&format!("{BASICS}\nusername = 1979-05-27")));
        assert_eq!(e.message(), "expected a string, found a date-time");
        assert_eq!(
            error("[[accounts]]\nemail = \"x@y\"\n").to_string(),
            format!(
                "{ORIGIN}:1: accounts: expected a table, found an array (write [accounts.NAME], not [[accounts]])"
            )
        );
        assert_eq!(
            error("[accounts]\nwork = 5\n").to_string(),
            format!(
                "{ORIGIN}:2: accounts.work: expected a table, found an integer (write [accounts.work] and the settings below it)"
            )
        );
    }

    #[test]
    fn bad_values() {
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nport = 0"))).to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.port: port 0 is out of range (use a port from 1 to 65535, usually 995 for tls or 110 for starttls)"
            )
        );
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nport = 70000"))).kind(),
            ConfigErrorKind::BadValue
        );
        assert_eq!(
            error(&account_with(&format!("{BASICS}\nsecurity = \"ssl\""))).to_string(),
            format!(
                "{ORIGIN}:6: accounts.work.security: unknown security \"ssl\" (expected one of \"tls\", \"starttls\", \"none\")"
            )
        );
        let e = error("[accounts.work]\nemail = \"me\"\n");
        assert_eq!(
            e.to_string(),
            format!(
                "{ORIGIN}:2: accounts.work.email: \"me\" is not an e-mail address (write the whole address, e.g. you@example.com)"
            )
        );
        let with_server = |server: &str| {
            format!("[accounts.work]\nemail = \"a@b\"\nserver = \"{server}\"\n{BASICS}\n")
        };
        assert_eq!(
            error(&with_server("pop.example.com:995")).fix(),
            Some("put the port in its own key: port = 995")
        );
        assert_eq!(
            error(&with_server("pop3s://x")).kind(),
            ConfigErrorKind::BadValue
        );
        assert_eq!(error(&with_server("a b")).kind(), ConfigErrorKind::BadValue);
        assert_eq!(one(&with_server("::1")).server, "::1");
        assert_eq!(
            error("[accounts.\"a/b\"]\nemail = \"a@b\"\n").key(),
            Some("accounts.\"a/b\"")
        );
        let e = error("[accounts.work]\nserver = \"x\"\n");
        assert_eq!(
            e.to_string(),
            format!(
                "{ORIGIN}:1: accounts.work: missing key \"email\" (add email = \"you@example.com\")"
            )
        );
    }

    #[test]
    fn syntax_errors_never_echo_the_line() {
        let e = error("[accounts.work]\nemail = \"a@b\"\npassword = \"hunter2\n");
        assert_eq!(e.kind(), ConfigErrorKind::Syntax);
        assert_eq!(e.line(), Some(3));
        assert!(
            e.to_string()
                .starts_with(&format!("{ORIGIN}:3: invalid TOML: ")),
            "{e}"
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = error("[accounts.work]\nport = 1\nport = 2\n");
        assert_eq!(e.line(), Some(3));
        assert!(e.message().contains("duplicate key"), "{e}");
    }

    /// Found by fuzz/fuzz_targets/config.rs: toml names a duplicate key's table as written, so a
    /// quoted key with a tab or an escape sequence reached the terminal raw.
    #[test]
    fn syntax_errors_escape_control_characters() {
        let e = error(
            "[accounts.\"a\tb\\u001b[31m\"]\nport = 1\nport = 2\n[accounts.\"\\u001b]0;x\\u0007\"]\n",
        );
        assert_eq!(e.kind(), ConfigErrorKind::Syntax);
        let shown = e.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains(r"a\tb\u{1b}[31m"), "{shown}");
    }

    /// Seen while writing the config fuzz target's oracle: a server name with an escape
    /// sequence passed the host name check and was printed raw in the `security = "none"`
    /// warning.
    #[test]
    fn server_names_with_control_characters_are_refused() {
        let e = error(
            &account_with("password = \"pw\"\nmaildir = \"/m\"\nsecurity = \"none\"")
                .replace("pop.example.com", "pop\\u001b[2Jexample.com"),
        );
        assert_eq!(e.kind(), ConfigErrorKind::BadValue);
        assert_eq!(e.key(), Some("accounts.work.server"));
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
    }

    #[test]
    fn no_accounts() {
        for text in ["", "[accounts]\n"] {
            assert_eq!(
                error(text).to_string(),
                format!(
                    "{ORIGIN}: no accounts (add an [accounts.NAME] table with email, server, a password and a maildir)"
                )
            );
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let config = parse_at(&account_with(BASICS)).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("Secret(..)"));
    }

    #[test]
    fn clear_text_warning() {
        let config = parse_at(&account_with(&format!("{BASICS}\nsecurity = \"none\""))).unwrap();
        assert_eq!(
            config.warnings,
            [format!(
                "{ORIGIN}:6: accounts.work.security: security = \"none\" sends the password to \
                 pop.example.com in clear text (use \"tls\" or \"starttls\")"
            )]
        );
        for server in ["localhost", "127.0.0.1", "[::1]", "mail.localhost"] {
            let text = format!(
                "[accounts.t]\nemail = \"a@b\"\nserver = \"{server}\"\nsecurity = \"none\"\n{BASICS}\n"
            );
            assert!(parse_at(&text).unwrap().warnings.is_empty(), "{server}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn load_warns_about_readable_password_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, account_with("password = \"pw\"\nmaildir = \"Mail\"")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let config = load(&path).unwrap();
        assert_eq!(
            config.warnings,
            [format!(
                "{0}: holds a password but other users can read it (run chmod 600 {0}, or use password_command)",
                path.display()
            )]
        );
        assert_eq!(
            config.accounts[0].1.destination,
            Destination::Maildir(dir.path().join("Mail"))
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&path).unwrap().warnings.is_empty());

        std::fs::write(
            &path,
            account_with("password_env = \"PW\"\nmaildir = \"Mail\""),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&path).unwrap().warnings.is_empty());
    }

    #[test]
    fn load_missing_file() {
        let e = load(Path::new("/nonexistent/popwire/config.toml")).unwrap_err();
        assert_eq!(e.kind(), ConfigErrorKind::Read);
        assert_eq!(
            e.to_string(),
            "/nonexistent/popwire/config.toml: cannot read it: No such file or directory (os error 2) \
             (create it with an [accounts.NAME] table)"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn default_paths() {
        assert_eq!(
            default_path_from(Some("/xdg".into()), Some("/home/u".into())),
            Some(PathBuf::from("/xdg/popwire/config.toml"))
        );
        assert_eq!(
            default_path_from(Some("relative".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.config/popwire/config.toml"))
        );
        assert_eq!(
            default_path_from(None, Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.config/popwire/config.toml"))
        );
        assert_eq!(default_path_from(None, None), None);
    }

    #[test]
    fn suggestions() {
        let keys = ACCOUNT_KEYS.iter().map(|&(k, _)| k);
        assert_eq!(suggest("Server", keys.clone()), Some("server"));
        assert_eq!(
            suggest("max-message-size", keys.clone()),
            Some("max_message_size")
        );
        assert_eq!(suggest("pasword", keys.clone()), Some("password"));
        assert_eq!(suggest("zzz", keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn command_lines() {
        let shell = CommandLine::Shell("pass show mail | head -1".into());
        assert_eq!(shell.program(), "pass");
        assert_eq!(shell.to_string(), "pass show mail | head -1");
        let argv = CommandLine::Argv(vec!["gpg".into(), "-d".into()]);
        assert_eq!(argv.program(), "gpg");
        assert_eq!(argv.to_string(), "gpg -d");
        let output = argv.to_command().arg("--version").output();
        drop(output); // gpg may not be installed; building the command is what is tested
        let output = CommandLine::Shell("echo $((1+2))".into())
            .to_command()
            .output()
            .unwrap();
        assert_eq!(output.stdout, b"3\n");
    }
}

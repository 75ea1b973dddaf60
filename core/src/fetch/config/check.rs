//! The checker: walks toml's spanned tree, refuses unknown keys, and builds each [`Account`]
//! from its table. Each key's own value checks are in [`super::values`].
//!
//! `toml::de::DeTable` keeps the span of every key and value, tables only implied by a header
//! or a dotted key included (they get the span of the key that implies them), so every error
//! can name its line.

use std::net::IpAddr;
use std::num::ParseIntError;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeInteger, DeTable, DeValue};

use super::error::{ConfigError, ConfigErrorKind, ErrorDetails};
use super::suggest::{ACCOUNT_KEYS, example_for, suggest};
use super::{Account, Config, DEFAULT_TIMEOUT, Security};

/// A TOML value and the byte range it spans in the text.
///
/// Never printed with `Debug`: it would show a password as plain text.
pub(super) type Item<'i> = Spanned<DeValue<'i>>;

/// Where `item` starts in the text, for the line of an error about it.
pub(super) fn at(item: &Item<'_>) -> Option<usize> {
    Some(item.span().start)
}

/// The TOML type, with an article, for "expected X, found Y".
pub(super) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// toml keeps integers as digits and a radix, so that its reader picks the range.
fn to_i64(integer: &DeInteger<'_>) -> Result<i64, ParseIntError> {
    i64::from_str_radix(integer.as_str(), integer.radix())
}

/// An integer's value. Every integer of the file fits: [`Checker::check`] refuses the file
/// otherwise (see [`first_bad_integer`]) before any account is read.
pub(super) fn integer(integer: &DeInteger<'_>) -> i64 {
    to_i64(integer).unwrap_or(i64::MAX)
}

/// The first integer in the file that fits no i64, and why. TOML integers are 64-bit, and
/// toml 0.8 refused such a file as invalid TOML, so this keeps doing so.
fn first_bad_integer(item: &Item<'_>) -> Option<(usize, ParseIntError)> {
    match item.get_ref() {
        DeValue::Integer(integer) => to_i64(integer).err().map(|e| (item.span().start, e)),
        DeValue::Array(items) => items
            .iter()
            .filter_map(first_bad_integer)
            .min_by_key(|b| b.0),
        DeValue::Table(table) => table
            .iter()
            .filter_map(|(_, value)| first_bad_integer(value))
            .min_by_key(|b| b.0),
        _ => None,
    }
}

/// A table's entries in file order (toml hands them over sorted by key).
pub(super) fn in_file_order<'t>(table: &'t DeTable<'_>) -> Vec<(&'t str, &'t Item<'t>)> {
    let mut entries: Vec<(&str, &Item<'_>)> = table
        .iter()
        .map(|(key, value)| (key.get_ref().as_ref(), value))
        .collect();
    entries.sort_by_key(|(_, value)| value.span().start);
    entries
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

/// Checks one file's text and collects its warnings.
pub(super) struct Checker<'a> {
    text: &'a str,
    /// The file: named in errors, and the base of relative paths.
    pub(super) origin: &'a Path,
    /// `$HOME`, to expand `~/`.
    pub(super) home: Option<PathBuf>,
    warnings: Vec<String>,
}

/// One account table being checked.
pub(super) struct AccountTable<'a> {
    pub(super) name: &'a str,
    /// `accounts.NAME`, quoted as needed.
    pub(super) key: String,
    pub(super) offset: Option<usize>,
    pub(super) fields: Vec<(&'a str, &'a Item<'a>)>,
}

impl<'a> AccountTable<'a> {
    pub(super) fn get(&self, key: &str) -> Option<&'a Item<'a>> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, item)| item)
    }

    pub(super) fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.key)
    }
}

impl<'a> Checker<'a> {
    /// A checker for `text` read from `origin`, expanding `~/` with `home`.
    pub(super) fn new(text: &'a str, origin: &'a Path, home: Option<PathBuf>) -> Self {
        Self {
            text,
            origin,
            home,
            warnings: Vec::new(),
        }
    }

    /// Adds a warning for the user (never holding a secret).
    pub(super) fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    pub(super) fn line_of(&self, offset: usize) -> usize {
        let before = self
            .text
            .as_bytes()
            .get(..offset)
            .unwrap_or(self.text.as_bytes());
        before.iter().filter(|&&b| b == b'\n').count() + 1
    }

    pub(super) fn error(
        &self,
        kind: ConfigErrorKind,
        offset: Option<usize>,
        key: Option<String>,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> ConfigError {
        ConfigError::new(ErrorDetails {
            path: self.origin.to_owned(),
            line: offset.map(|o| self.line_of(o)),
            key,
            kind,
            message: message.into(),
            fix,
            source: None,
        })
    }

    pub(super) fn wrong_type(
        &self,
        table: &AccountTable<'_>,
        key: &str,
        item: &Item<'_>,
        expected: &str,
    ) -> ConfigError {
        self.error(
            ConfigErrorKind::WrongType,
            at(item),
            Some(table.path(key)),
            format!("expected {expected}, found {}", type_name(item.get_ref())),
            Some(format!("write it like {}", example_for(key))),
        )
    }

    pub(super) fn bad_value(
        &self,
        table: &AccountTable<'_>,
        key: &str,
        item: &Item<'_>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        self.error(
            ConfigErrorKind::BadValue,
            at(item),
            Some(table.path(key)),
            message,
            Some(fix.into()),
        )
    }

    /// Checks the whole file and builds its accounts.
    pub(super) fn check(mut self) -> Result<Config, ConfigError> {
        let root = DeTable::parse(self.text).map_err(|e| self.syntax_error(&e))?;
        let entries = root.get_ref();
        let bad_integer = entries
            .iter()
            .filter_map(|(_, value)| first_bad_integer(value))
            .min_by_key(|b| b.0);
        if let Some((offset, e)) = bad_integer {
            return Err(self.error(
                ConfigErrorKind::Syntax,
                Some(offset),
                None,
                format!("invalid TOML: {e}"),
                None,
            ));
        }
        let mut accounts_item = None;
        let mut watch = super::WatchConfig::default();
        for (key, item) in in_file_order(entries) {
            if key == "accounts" {
                accounts_item = Some(item);
                continue;
            }
            if key == "watch" {
                watch = self.watch(item)?;
                continue;
            }
            let fix = if ACCOUNT_KEYS.iter().any(|(k, _)| *k == key) {
                "account settings go in an [accounts.NAME] table".to_owned()
            } else if let Some(s) = suggest(key, ["accounts", "watch"]) {
                format!("did you mean {s:?}?")
            } else {
                "the file holds [accounts.NAME] tables and a [watch] table".to_owned()
            };
            return Err(self.error(
                ConfigErrorKind::UnknownKey,
                at(item),
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
        let DeValue::Table(account_entries) = accounts_item.get_ref() else {
            let fix = if matches!(accounts_item.get_ref(), DeValue::Array(_)) {
                "write [accounts.NAME], not [[accounts]]"
            } else {
                "write one [accounts.NAME] table per account"
            };
            return Err(self.error(
                ConfigErrorKind::WrongType,
                at(accounts_item),
                Some("accounts".to_owned()),
                format!(
                    "expected a table, found {}",
                    type_name(accounts_item.get_ref())
                ),
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
            watch,
        })
    }

    fn syntax_error(&self, error: &toml::de::Error) -> ConfigError {
        // Only toml's message, never its Display: that quotes the source line, which may hold a
        // password (e.g. an unterminated `password = "...`).
        // toml's messages are its own words today, but a quoted key may hold any character,
        // and toml 0.8 did name keys.
        let message = escape_controls(&error.message().trim_end().replace('\n', "; "));
        self.error(
            ConfigErrorKind::Syntax,
            error.span().map(|s| s.start),
            None,
            format!("invalid TOML: {message}"),
            None,
        )
    }

    fn account(&mut self, name: &str, item: &Item<'_>) -> Result<Account, ConfigError> {
        let key = format!("accounts.{}", key_segment(name));
        let DeValue::Table(entries) = item.get_ref() else {
            return Err(self.error(
                ConfigErrorKind::WrongType,
                at(item),
                Some(key),
                format!("expected a table, found {}", type_name(item.get_ref())),
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
                at(item),
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
            offset: at(item),
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
                    at(value),
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
        let credential = self.credential(&table, auth)?;
        let keep = self.keep(&table)?;
        let destination = self.destination(&table)?;
        let max_message_size = self.max_message_size(&table)?;
        let timeout = self.timeout(&table)?.unwrap_or(DEFAULT_TIMEOUT);
        let store = self.store_options(&table, &destination)?;
        let poll = self.poll(&table)?;

        if security == Security::None && !is_loopback(&server) {
            let offset = table.get("security").and_then(at);
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
            poll,
        })
    }

    pub(super) fn string<'t>(
        &self,
        table: &'t AccountTable<'_>,
        key: &str,
    ) -> Result<Option<(String, &'t Item<'t>)>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(item) => match item.get_ref() {
                DeValue::String(s) => Ok(Some((s.to_string(), item))),
                _ => Err(self.wrong_type(table, key, item, "a string")),
            },
        }
    }

    pub(super) fn required_string<'t>(
        &self,
        table: &'t AccountTable<'_>,
        key: &str,
    ) -> Result<(String, &'t Item<'t>), ConfigError> {
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
}

/// `text` with control characters escaped (`\t`, `\u{1b}`), so that a message cannot drive the
/// terminal it is printed on.
pub(super) fn escape_controls(text: &str) -> String {
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

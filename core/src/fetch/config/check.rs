//! The checker: walks the spanned tree, refuses unknown keys, and builds each [`Account`] from
//! its table. Each key's own value checks are in [`super::values`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigErrorKind, ErrorDetails};
use super::suggest::{ACCOUNT_KEYS, example_for, suggest};
use super::tree::{Item, Node, TOML_DATETIME_KEY, in_file_order};
use super::{Account, Config, DEFAULT_TIMEOUT, Security};

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
    name: &'a str,
    /// `accounts.NAME`, quoted as needed.
    pub(super) key: String,
    pub(super) offset: Option<usize>,
    pub(super) fields: Vec<(&'a str, &'a Item)>,
}

impl AccountTable<'_> {
    pub(super) fn get(&self, key: &str) -> Option<&Item> {
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

    pub(super) fn bad_value(
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

    /// Checks the whole file and builds its accounts.
    pub(super) fn check(mut self) -> Result<Config, ConfigError> {
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
        let credential = self.credential(&table, auth)?;
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

    pub(super) fn string<'t>(
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

    pub(super) fn required_string<'t>(
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

//! Each account key's value: its type, its range, its meaning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::duration::{ParseError, parse_duration, parse_size};
use super::store_options::{LockKind, StoreOptions};
use toml::de::DeValue;

use super::check::{AccountTable, Checker, Item, at, escape_controls, integer, type_name};
use super::error::{ConfigError, ConfigErrorKind};
use super::suggest::example_for;
use super::{AuthChoice, CommandLine, CredentialSource, Destination, Keep, Security};
use crate::proto::{Mechanism, Secret};

const CREDENTIAL_KEYS: &[&str] = &[
    "password",
    "password_command",
    "password_env",
    "token_command",
    "oauth",
];
const DESTINATION_KEYS: &[&str] = &["maildir", "mbox", "mda", "imap", "gmail"];
const SECURITY_VALUES: &str = r#"expected one of "tls", "starttls", "none""#;

/// The fix for an unknown `auth`: the three plain methods, then every mechanism the engine has.
fn auth_values() -> String {
    let mut values = r#"expected one of "auto", "user", "apop""#.to_owned();
    for mechanism in Mechanism::ALL {
        values.push_str(&format!(", {:?}", mechanism.name().to_ascii_lowercase()));
    }
    values
}

impl Checker<'_> {
    pub(super) fn email(&self, table: &AccountTable<'_>) -> Result<String, ConfigError> {
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

    pub(super) fn server(&self, table: &AccountTable<'_>) -> Result<String, ConfigError> {
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

    pub(super) fn security(&self, table: &AccountTable<'_>) -> Result<Security, ConfigError> {
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

    pub(super) fn port(&self, table: &AccountTable<'_>) -> Result<Option<u16>, ConfigError> {
        let Some(item) = table.get("port") else {
            return Ok(None);
        };
        let DeValue::Integer(port) = item.get_ref() else {
            return Err(self.wrong_type(table, "port", item, "an integer"));
        };
        let port = integer(port);
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

    pub(super) fn path(
        &self,
        table: &AccountTable<'_>,
        key: &str,
    ) -> Result<Option<PathBuf>, ConfigError> {
        let Some((raw, item)) = self.string(table, key)? else {
            return Ok(None);
        };
        self.resolve_path(&raw)
            .map(Some)
            .map_err(|(message, fix)| self.bad_value(table, key, item, message, fix))
    }

    /// Expands `~/` and makes relative paths relative to the config file's directory, so the
    /// meaning of the file does not depend on the directory popwire happens to be run from.
    pub(super) fn resolve_path(&self, raw: &str) -> Result<PathBuf, (String, String)> {
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

    pub(super) fn auth(&self, table: &AccountTable<'_>) -> Result<AuthChoice, ConfigError> {
        let Some((value, item)) = self.string(table, "auth")? else {
            return Ok(AuthChoice::Auto);
        };
        let upper = value.to_ascii_uppercase();
        match upper.as_str() {
            "AUTO" => Ok(AuthChoice::Auto),
            "USER" => Ok(AuthChoice::User),
            "APOP" => Ok(AuthChoice::Apop),
            // The engine's own list, so a name accepted here is one the engine speaks.
            _ => Mechanism::from_name(&value)
                .map(AuthChoice::Sasl)
                .ok_or_else(|| {
                    self.bad_value(
                        table,
                        "auth",
                        item,
                        format!("unknown auth {value:?}"),
                        auth_values(),
                    )
                }),
        }
    }

    /// Exactly one of [`CREDENTIAL_KEYS`], and a token only with an OAuth mechanism.
    pub(super) fn credential(
        &self,
        table: &AccountTable<'_>,
        auth: AuthChoice,
    ) -> Result<CredentialSource, ConfigError> {
        let (key, item) = self.exactly_one(
            table,
            CREDENTIAL_KEYS,
            r#"add one of password_command = ["pass", "show", "mail"], password_env = "VAR", password = "...", token_command = [...] or an [accounts.NAME.oauth] table"#,
        )?;
        let credential = match key {
            "password" => {
                let DeValue::String(password) = item.get_ref() else {
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
                CredentialSource::Password(Secret::from(password.as_ref()))
            }
            "password_env" => {
                let DeValue::String(var) = item.get_ref() else {
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
                CredentialSource::PasswordEnv(var.to_string())
            }
            "token_command" => CredentialSource::TokenCommand(self.command(table, key, item)?),
            "oauth" => CredentialSource::OAuth(Box::new(self.oauth(table, key, item, table.name)?)),
            _ => CredentialSource::PasswordCommand(self.command(table, key, item)?),
        };
        if credential.is_token() {
            let oauth = match auth {
                AuthChoice::Auto => true,
                AuthChoice::Sasl(mechanism) => mechanism.uses_token(),
                AuthChoice::User | AuthChoice::Apop => false,
            };
            if !oauth {
                let auth_item = table.get("auth").unwrap_or(item);
                return Err(self.error(
                    ConfigErrorKind::Conflict,
                    at(auth_item),
                    Some(table.path("auth")),
                    format!(
                        "this login method needs a password, but the account has {}",
                        credential.config_key()
                    ),
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
    ) -> Result<(&'t str, &'t Item<'t>), ConfigError> {
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
            let first_place = format!(" on line {}", self.line_of(first_item.span().start));
            return Err(self.error(
                ConfigErrorKind::Conflict,
                at(second_item),
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
        item: &Item<'_>,
    ) -> Result<CommandLine, ConfigError> {
        match item.get_ref() {
            DeValue::String(line) if line.trim().is_empty() => Err(self.bad_value(
                table,
                key,
                item,
                "empty command",
                format!("write it like {}", example_for(key)),
            )),
            DeValue::String(line) => Ok(CommandLine::Shell(line.to_string())),
            DeValue::Array(items) => {
                let mut argv = Vec::with_capacity(items.len());
                for (index, element) in items.iter().enumerate() {
                    let DeValue::String(arg) = element.get_ref() else {
                        return Err(self.error(
                            ConfigErrorKind::WrongType,
                            at(element),
                            Some(format!("{}[{index}]", table.path(key))),
                            format!("expected a string, found {}", type_name(element.get_ref())),
                            Some("quote every word of the command".to_owned()),
                        ));
                    };
                    argv.push(arg.to_string());
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

    pub(super) fn keep(&self, table: &AccountTable<'_>) -> Result<Keep, ConfigError> {
        let Some(item) = table.get("keep") else {
            return Ok(Keep::Delete);
        };
        match item.get_ref() {
            DeValue::Boolean(false) => Ok(Keep::Delete),
            DeValue::Boolean(true) => Ok(Keep::Forever),
            DeValue::String(text) => match parse_duration(text) {
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
            DeValue::Integer(n) => {
                let n = integer(n);
                Err(self.bad_value(
                    table,
                    "keep",
                    item,
                    format!("{n} has no unit"),
                    format!(r#"write keep = "{n}d" for days, or true to keep forever"#),
                ))
            }
            _ => Err(self.wrong_type(table, "keep", item, "a boolean or a duration string")),
        }
    }

    fn bad_duration(
        &self,
        table: &AccountTable<'_>,
        key: &str,
        item: &Item<'_>,
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

    pub(super) fn destination(&self, table: &AccountTable<'_>) -> Result<Destination, ConfigError> {
        let (key, item) = self.exactly_one(
            table,
            DESTINATION_KEYS,
            r#"add maildir = "~/Mail/inbox", mbox = "~/mbox", mda = ["procmail"], an [accounts.NAME.imap] or an [accounts.NAME.gmail] table"#,
        )?;
        match key {
            "mda" => Ok(Destination::Mda(self.command(table, key, item)?)),
            "imap" => Ok(Destination::Imap(Box::new(self.imap(
                table,
                item,
                self.timeout(table)?,
            )?))),
            "gmail" => Ok(Destination::Gmail(Box::new(self.gmail(table, item)?))),
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

    pub(super) fn max_message_size(
        &self,
        table: &AccountTable<'_>,
    ) -> Result<Option<u64>, ConfigError> {
        let key = "max_message_size";
        let Some(item) = table.get(key) else {
            return Ok(None);
        };
        let fix = r#"write a positive size: 1048576, "512K", "10M" or "1G""#;
        let size = match item.get_ref() {
            DeValue::Integer(n) => u64::try_from(integer(n)).unwrap_or(0),
            DeValue::String(text) => parse_size(text).map_err(|e| {
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

    pub(super) fn timeout(
        &self,
        table: &AccountTable<'_>,
    ) -> Result<Option<Duration>, ConfigError> {
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
        let timeout = match item.get_ref() {
            DeValue::Integer(n) => Duration::from_secs(u64::try_from(integer(n)).unwrap_or(0)),
            DeValue::String(text) => {
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
    pub(super) fn store_options(
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
            let DeValue::Array(items) = item.get_ref() else {
                return Err(self.wrong_type(table, key, item, "an array of strings"));
            };
            let mut locks = Vec::new();
            for element in items {
                let DeValue::String(name) = element.get_ref() else {
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

//! `[accounts.NAME.imap]`: an IMAP folder as the destination (feature `imap` delivers there).
//!
//! ```toml
//! [accounts.home.imap]
//! server = "imap.gmail.com"
//! username = "me@gmail.com"
//! folder = "From ISP"
//! [accounts.home.imap.oauth]
//! provider = "google"
//! client_id = "1234-abc.apps.googleusercontent.com"
//! ```
//!
//! The credential keys are the account's own (`password`, `password_command`, `password_env`,
//! `token_command`, an `oauth` table), checked by the same code; OAuth tokens default to the
//! file `NAME-imap.json`, so the POP and IMAP logins never overwrite each other.

use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;

use super::check::{AccountTable, Checker, Item, at, escape_controls, in_file_order, type_name};
use super::error::{ConfigError, ConfigErrorKind};
use super::suggest::suggest;
use super::{AuthChoice, CredentialSource, DEFAULT_TIMEOUT, Security};

/// How popwire logs in to the IMAP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImapAuth {
    /// LOGIN for a password (AUTHENTICATE PLAIN when LOGIN is disabled), XOAUTH2 for a token.
    #[default]
    Auto,
    /// `LOGIN`.
    Login,
    /// `AUTHENTICATE PLAIN`.
    Plain,
    /// `AUTHENTICATE XOAUTH2` (Google, Microsoft).
    XOAuth2,
    /// `AUTHENTICATE OAUTHBEARER` (RFC 7628).
    OAuthBearer,
}

/// An IMAP destination: `[accounts.NAME.imap]`.
///
/// `Debug` is safe to log: a literal password prints as `Secret(..)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImapConfig {
    /// `server`: the IMAP server's host name.
    pub server: String,
    /// `port`: 993 for `tls`, 143 for `starttls` unless set.
    pub port: u16,
    /// `security`: `tls` (default) or `starttls`; `none` only with `allow_plaintext = true`.
    pub security: Security,
    /// `username`: the IMAP login.
    pub username: String,
    /// Where the password or token comes from.
    pub credential: CredentialSource,
    /// `auth`.
    pub auth: ImapAuth,
    /// `ca_file`: a PEM file of extra CA certificates.
    pub ca_file: Option<PathBuf>,
    /// `folder` (default `INBOX`).
    pub folder: String,
    /// `create_folder` (default true): CREATE the folder when it does not exist.
    pub create_folder: bool,
    /// `flags` set on each message (default none: it arrives unread), e.g. `["\\Seen"]`.
    pub flags: Vec<String>,
    /// The account's `timeout`, for connecting and each reply.
    pub timeout: Duration,
}

/// Every key the table accepts, with an example for fixes.
const IMAP_KEYS: &[(&str, &str)] = &[
    ("server", r#"server = "imap.example.com""#),
    ("port", "port = 993"),
    ("security", r#"security = "tls""#),
    ("allow_plaintext", "allow_plaintext = true"),
    ("username", r#"username = "you@example.com""#),
    ("password", r#"password = "...""#),
    (
        "password_command",
        r#"password_command = ["pass", "show", "imap"]"#,
    ),
    ("password_env", r#"password_env = "IMAP_PASSWORD""#),
    (
        "token_command",
        r#"token_command = ["oauth2-token", "imap"]"#,
    ),
    (
        "oauth",
        r#"[accounts.NAME.imap.oauth] with provider = "google" and client_id = "...""#,
    ),
    ("auth", r#"auth = "auto""#),
    ("ca_file", r#"ca_file = "~/certs/ca.pem""#),
    ("folder", r#"folder = "INBOX""#),
    ("create_folder", "create_folder = true"),
    ("flags", r#"flags = ["\\Seen"]"#),
];

const SYSTEM_FLAGS: &[&str] = &["\\Seen", "\\Answered", "\\Flagged", "\\Draft", "\\Deleted"];

impl Checker<'_> {
    /// Checks the `imap` table `item` of `account`.
    pub(super) fn imap(
        &self,
        account: &AccountTable<'_>,
        item: &Item<'_>,
        timeout: Option<Duration>,
    ) -> Result<ImapConfig, ConfigError> {
        let key = "imap";
        let DeValue::Table(entries) = item.get_ref() else {
            return Err(self.error(
                ConfigErrorKind::WrongType,
                at(item),
                Some(account.path(key)),
                format!("expected a table, found {}", type_name(item.get_ref())),
                Some(format!(
                    "write [{}] with server, username and a password below it",
                    account.path(key)
                )),
            ));
        };
        // The OAuth token file defaults to `NAME-imap.json`: its own login, not the POP one.
        let stem = format!("{}-imap", account.name);
        let sub = AccountTable {
            name: &stem,
            key: account.path(key),
            offset: at(item),
            fields: in_file_order(entries),
        };
        for &(field, value) in &sub.fields {
            if IMAP_KEYS.iter().all(|(k, _)| *k != field) {
                let fix = suggest(field, IMAP_KEYS.iter().map(|&(k, _)| k)).map_or_else(
                    || {
                        let known: Vec<&str> = IMAP_KEYS.iter().map(|&(k, _)| k).collect();
                        format!("known keys: {}", known.join(", "))
                    },
                    |s| format!("did you mean {s:?}?"),
                );
                return Err(self.error(
                    ConfigErrorKind::UnknownKey,
                    at(value),
                    Some(sub.path(&escape_controls(field))),
                    "unknown key",
                    Some(fix),
                ));
            }
        }
        let example = |k: &str| {
            IMAP_KEYS
                .iter()
                .find(|(key, _)| *key == k)
                .map_or("", |&(_, e)| e)
        };
        let wrong = |k: &str, item: &Item<'_>, expected: &str| {
            self.error(
                ConfigErrorKind::WrongType,
                at(item),
                Some(sub.path(k)),
                format!("expected {expected}, found {}", type_name(item.get_ref())),
                Some(format!("write it like {}", example(k))),
            )
        };
        let boolean = |k: &str, default: bool| match sub.get(k) {
            None => Ok(default),
            Some(item) => match item.get_ref() {
                DeValue::Boolean(b) => Ok(*b),
                _ => Err(wrong(k, item, "a boolean")),
            },
        };

        let server = self.server(&sub)?;
        let security = self.security(&sub)?;
        let allow_plaintext = boolean("allow_plaintext", false)?;
        if security == Security::None && !allow_plaintext {
            let item = sub.get("security").unwrap_or(item);
            return Err(self.bad_value(
                &sub,
                "security",
                item,
                "security = \"none\" would send the IMAP password and your mail in clear text",
                "use \"tls\" or \"starttls\"; only for a server on a trusted network, also set allow_plaintext = true",
            ));
        }
        let port = self.port(&sub)?.unwrap_or(match security {
            Security::Tls => 993,
            _ => 143,
        });
        let (username, username_item) = self.required_string(&sub, "username")?;
        if username.is_empty() {
            return Err(self.bad_value(
                &sub,
                "username",
                username_item,
                "empty username",
                "write the IMAP login, usually your address there",
            ));
        }
        let auth = match self.string(&sub, "auth")? {
            None => ImapAuth::Auto,
            Some((value, item)) => match value.to_ascii_lowercase().as_str() {
                "auto" => ImapAuth::Auto,
                "login" => ImapAuth::Login,
                "plain" => ImapAuth::Plain,
                "xoauth2" => ImapAuth::XOAuth2,
                "oauthbearer" => ImapAuth::OAuthBearer,
                _ => {
                    return Err(self.bad_value(
                        &sub,
                        "auth",
                        item,
                        format!("unknown auth {:?}", escape_controls(&value)),
                        r#"expected one of "auto", "login", "plain", "xoauth2", "oauthbearer""#,
                    ));
                }
            },
        };
        let credential = self.credential(&sub, AuthChoice::Auto)?;
        let needs_token = matches!(auth, ImapAuth::XOAuth2 | ImapAuth::OAuthBearer);
        if auth != ImapAuth::Auto && needs_token != credential.is_token() {
            let item = sub.get("auth").unwrap_or(item);
            let (message, fix) = if needs_token {
                (
                    format!(
                        "this login method needs an OAuth token, but the table has {}",
                        credential.config_key()
                    ),
                    "add an [accounts.NAME.imap.oauth] table or token_command, or set auth = \"login\"",
                )
            } else {
                (
                    format!(
                        "this login method needs a password, but the table has {}",
                        credential.config_key()
                    ),
                    "set auth = \"xoauth2\" or \"oauthbearer\", or use password_command",
                )
            };
            return Err(self.error(
                ConfigErrorKind::Conflict,
                at(item),
                Some(sub.path("auth")),
                message,
                Some(fix.to_owned()),
            ));
        }
        let ca_file = self.path(&sub, "ca_file")?;
        let folder = match self.string(&sub, "folder")? {
            None => "INBOX".to_owned(),
            Some((folder, item)) => {
                if folder.is_empty() || folder.chars().any(char::is_control) {
                    return Err(self.bad_value(
                        &sub,
                        "folder",
                        item,
                        "unusable folder name",
                        "write the folder's name as your mail program shows it, e.g. folder = \"INBOX\" (Gmail: a label name)",
                    ));
                }
                folder
            }
        };
        let create_folder = boolean("create_folder", true)?;
        let flags = match sub.get("flags") {
            None => Vec::new(),
            Some(item) => {
                let DeValue::Array(items) = item.get_ref() else {
                    return Err(wrong("flags", item, "an array of strings"));
                };
                let mut flags = Vec::with_capacity(items.len());
                for element in items {
                    let DeValue::String(flag) = element.get_ref() else {
                        return Err(wrong("flags", item, "an array of strings"));
                    };
                    flags.push(self.flag(&sub, element, flag)?);
                }
                flags
            }
        };
        Ok(ImapConfig {
            server,
            port,
            security,
            username,
            credential,
            auth,
            ca_file,
            folder,
            create_folder,
            flags,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// A system flag (`\Seen`) or a keyword (an IMAP atom: `$Forwarded`, `popwire`).
    fn flag(
        &self,
        sub: &AccountTable<'_>,
        item: &Item<'_>,
        flag: &str,
    ) -> Result<String, ConfigError> {
        let fix = r#"write system flags with a backslash (in TOML "\\Seen" or '\Seen'): \Seen, \Answered, \Flagged, \Draft; or a keyword of letters, digits and $_-."#;
        if let Some(name) = flag.strip_prefix('\\') {
            return SYSTEM_FLAGS
                .iter()
                .find(|f| f.get(1..).is_some_and(|n| n.eq_ignore_ascii_case(name)))
                .map(|f| (*f).to_owned())
                .ok_or_else(|| {
                    self.bad_value(
                        sub,
                        "flags",
                        item,
                        format!("{:?} is not a system flag", escape_controls(flag)),
                        fix,
                    )
                });
        }
        let atom = !flag.is_empty()
            && flag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"$_-.".contains(&b));
        if !atom {
            return Err(self.bad_value(
                sub,
                "flags",
                item,
                format!("{:?} is not a flag", escape_controls(flag)),
                fix,
            ));
        }
        Ok(flag.to_owned())
    }
}

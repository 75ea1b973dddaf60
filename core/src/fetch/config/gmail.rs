//! `[accounts.NAME.gmail]`: deliver into Gmail with the API's `users.messages.import`, so that
//! Gmail's spam classification and filters apply as to mail it received itself.
//!
//! ```toml
//! [accounts.home.gmail]
//! labels = ["INBOX", "UNREAD", "From POP"]
//! create_labels = true
//!
//! [accounts.home.gmail.oauth]
//! provider = "google"
//! client_id = "1234-abc.apps.googleusercontent.com"
//! client_secret_env = "POPWIRE_GOOGLE_SECRET"
//! ```
//!
//! Without its own `oauth` table the destination uses the account's `[accounts.NAME.oauth]`
//! (a Google login for the POP side too). The store itself is `fetch::store::gmail`.

use toml::de::DeValue;

use super::OAuthConfig;
use super::check::{AccountTable, Checker, Item, at, in_file_order, type_name};
use super::error::{ConfigError, ConfigErrorKind};
use super::oauth::is_loopback_http;
use super::suggest::suggest;

/// Google's limit on one imported message (the API's "maximum file size" for
/// `users.messages.import`): larger messages are left on the POP server and reported.
pub const GMAIL_IMPORT_CAP: u64 = 150 * 1024 * 1024;

/// The API's address when the table sets no `endpoint`.
pub const GMAIL_ENDPOINT: &str = "https://gmail.googleapis.com";

/// The scope asked for when the `oauth` table sets none: importing, resolving and creating
/// labels, and the `rfc822msgid:` search recovery needs (gmail.insert alone cannot search).
pub const GMAIL_SCOPE: &str = "https://www.googleapis.com/auth/gmail.modify";

/// Where Gmail takes an imported message's date from (`internalDateSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InternalDateSource {
    /// `dateHeader` (default): the message's `Date:` header.
    #[default]
    DateHeader,
    /// `receivedTime`: the time of the import.
    ReceivedTime,
}

impl InternalDateSource {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DateHeader => "dateHeader",
            Self::ReceivedTime => "receivedTime",
        }
    }
}

/// An account's Gmail destination: `[accounts.NAME.gmail]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GmailConfig {
    /// The account (`NAME`), named in errors.
    pub account: String,
    /// `user`: the mailbox, `"me"` (the token's owner) by default.
    pub user: String,
    /// `labels`: label ids or names given to each message; `["INBOX", "UNREAD"]` by default,
    /// where Gmail's own POP fetcher put mail.
    pub labels: Vec<String>,
    /// `create_labels`: create a named label that does not exist (default false: an error).
    pub create_labels: bool,
    /// `internal_date_source`.
    pub internal_date_source: InternalDateSource,
    /// `never_mark_spam` (default false: Gmail's spam filter decides).
    pub never_mark_spam: bool,
    /// `process_for_calendar` (default false).
    pub process_for_calendar: bool,
    /// `endpoint`: the API's base URL, without a trailing slash.
    pub endpoint: String,
    /// `max_import_size`: messages larger than this are left on the server and reported; at
    /// most (and by default) [`GMAIL_IMPORT_CAP`].
    pub max_import_size: u64,
    /// Where the access token comes from.
    pub oauth: OAuthConfig,
    /// The account's `timeout`: how long to wait for a connection and for each read of an
    /// answer (an answer's start may take longer: Google processes the message first).
    pub timeout: std::time::Duration,
}

const GMAIL_KEYS: &[(&str, &str)] = &[
    ("user", r#"user = "me""#),
    ("labels", r#"labels = ["INBOX", "UNREAD"]"#),
    ("create_labels", "create_labels = true"),
    (
        "internal_date_source",
        r#"internal_date_source = "dateHeader""#,
    ),
    ("never_mark_spam", "never_mark_spam = false"),
    ("process_for_calendar", "process_for_calendar = false"),
    ("endpoint", r#"endpoint = "https://gmail.googleapis.com""#),
    ("max_import_size", r#"max_import_size = "25M""#),
    (
        "oauth",
        r#"[accounts.NAME.gmail.oauth] with provider = "google" and client_id = "...""#,
    ),
];

impl Checker<'_> {
    /// Checks the `gmail` table `item` of the account `table`.
    pub(super) fn gmail(
        &self,
        table: &AccountTable<'_>,
        item: &Item<'_>,
    ) -> Result<GmailConfig, ConfigError> {
        let DeValue::Table(entries) = item.get_ref() else {
            return Err(self.error(
                ConfigErrorKind::WrongType,
                at(item),
                Some(table.path("gmail")),
                format!("expected a table, found {}", type_name(item.get_ref())),
                Some(format!(
                    "write [{}] and its settings below it",
                    table.path("gmail")
                )),
            ));
        };
        let sub = AccountTable {
            name: table.name,
            key: table.path("gmail"),
            offset: at(item),
            fields: in_file_order(entries),
        };
        let example = |k: &str| {
            GMAIL_KEYS
                .iter()
                .find(|(key, _)| *key == k)
                .map_or("", |&(_, e)| e)
        };
        for &(field, value) in &sub.fields {
            if GMAIL_KEYS.iter().all(|(k, _)| *k != field) {
                let fix = suggest(field, GMAIL_KEYS.iter().map(|&(k, _)| k)).map_or_else(
                    || {
                        let known: Vec<&str> = GMAIL_KEYS.iter().map(|&(k, _)| k).collect();
                        format!("known keys: {}", known.join(", "))
                    },
                    |s| format!("did you mean {s:?}?"),
                );
                return Err(self.error(
                    ConfigErrorKind::UnknownKey,
                    at(value),
                    Some(sub.path(field)),
                    "unknown key",
                    Some(fix),
                ));
            }
        }
        let wrong_type = |k: &str, item: &Item<'_>, expected: &str| {
            self.error(
                ConfigErrorKind::WrongType,
                at(item),
                Some(sub.path(k)),
                format!("expected {expected}, found {}", type_name(item.get_ref())),
                Some(format!("write it like {}", example(k))),
            )
        };
        let bad = |k: &str, item: &Item<'_>, message: String, fix: &str| {
            self.error(
                ConfigErrorKind::BadValue,
                at(item),
                Some(sub.path(k)),
                message,
                Some(fix.to_owned()),
            )
        };
        let string = |k: &str| -> Result<Option<(String, &Item<'_>)>, ConfigError> {
            match sub.get(k) {
                None => Ok(None),
                Some(item) => match item.get_ref() {
                    DeValue::String(s) => Ok(Some((s.to_string(), item))),
                    _ => Err(wrong_type(k, item, "a string")),
                },
            }
        };
        let boolean = |k: &str| -> Result<bool, ConfigError> {
            match sub.get(k) {
                None => Ok(false),
                Some(item) => match item.get_ref() {
                    DeValue::Boolean(b) => Ok(*b),
                    _ => Err(wrong_type(k, item, "a boolean")),
                },
            }
        };

        let user = match string("user")? {
            None => "me".to_owned(),
            Some((user, item)) => {
                let user = user.trim().to_owned();
                if user.is_empty()
                    || user.contains(|c: char| {
                        c.is_whitespace() || c.is_control() || "/?#%".contains(c)
                    })
                {
                    return Err(bad(
                        "user",
                        item,
                        format!("{user:?} is not a Gmail user"),
                        r#"write "me" (the account that logged in) or its e-mail address"#,
                    ));
                }
                user
            }
        };

        let labels = match sub.get("labels") {
            None => vec!["INBOX".to_owned(), "UNREAD".to_owned()],
            Some(item) => {
                let DeValue::Array(items) = item.get_ref() else {
                    return Err(wrong_type("labels", item, "an array of strings"));
                };
                let mut labels: Vec<String> = Vec::with_capacity(items.len());
                for element in items {
                    let DeValue::String(label) = element.get_ref() else {
                        return Err(wrong_type("labels", element, "a string"));
                    };
                    let label = label.trim();
                    if label.is_empty() || label.contains(char::is_control) {
                        return Err(bad(
                            "labels",
                            element,
                            format!("{label:?} is not a label"),
                            "write a label id (\"INBOX\") or a label's name",
                        ));
                    }
                    if !labels.iter().any(|l| l == label) {
                        labels.push(label.to_owned());
                    }
                }
                labels
            }
        };
        let create_labels = boolean("create_labels")?;
        let internal_date_source = match string("internal_date_source")? {
            None => InternalDateSource::DateHeader,
            Some((value, item)) => match value.to_ascii_lowercase().as_str() {
                "dateheader" => InternalDateSource::DateHeader,
                "receivedtime" => InternalDateSource::ReceivedTime,
                _ => {
                    return Err(bad(
                        "internal_date_source",
                        item,
                        format!("unknown internal_date_source {value:?}"),
                        r#"expected "dateHeader" or "receivedTime""#,
                    ));
                }
            },
        };
        let never_mark_spam = boolean("never_mark_spam")?;
        let process_for_calendar = boolean("process_for_calendar")?;
        let endpoint = match string("endpoint")? {
            None => GMAIL_ENDPOINT.to_owned(),
            Some((url, item)) => {
                let https = url.starts_with("https://") && url.len() > "https://".len();
                if !https && !is_loopback_http(&url) || url.contains(['?', '#']) {
                    return Err(bad(
                        "endpoint",
                        item,
                        format!("{url:?} is not an https:// base URL"),
                        "remove it to use https://gmail.googleapis.com (plain http:// only for localhost)",
                    ));
                }
                url.trim_end_matches('/').to_owned()
            }
        };
        let max_import_size = match sub.get("max_import_size") {
            None => GMAIL_IMPORT_CAP,
            Some(item) => {
                let fix = r#"write a positive size up to "150M", e.g. "25M""#;
                let size = match item.get_ref() {
                    DeValue::Integer(n) => u64::try_from(super::check::integer(n)).unwrap_or(0),
                    DeValue::String(text) => {
                        super::super::duration::parse_size(text).map_err(|e| {
                            bad(
                                "max_import_size",
                                item,
                                format!("{text:?} is not a size: {e}"),
                                fix,
                            )
                        })?
                    }
                    _ => return Err(wrong_type("max_import_size", item, "a size string")),
                };
                if size == 0 || size > GMAIL_IMPORT_CAP {
                    return Err(bad(
                        "max_import_size",
                        item,
                        format!("{size} is not between 1 and Gmail's cap of {GMAIL_IMPORT_CAP}"),
                        fix,
                    ));
                }
                size
            }
        };

        let oauth = match (sub.get("oauth"), table.get("oauth")) {
            (Some(own), _) => {
                let mut oauth = self.oauth(&sub, "oauth", own, &format!("{}-gmail", table.name))?;
                let has_scopes = matches!(own.get_ref(), DeValue::Table(t) if t.iter().any(|(k, _)| k.get_ref() == "scopes"));
                if !has_scopes {
                    oauth.scopes = vec![GMAIL_SCOPE.to_owned()];
                }
                oauth
            }
            (None, Some(account_oauth)) => self.oauth(table, "oauth", account_oauth, table.name)?,
            (None, None) => {
                return Err(self.error(
                    ConfigErrorKind::MissingKey,
                    sub.offset,
                    Some(sub.key.clone()),
                    "no OAuth login for the Gmail API",
                    Some(format!(
                        "add [{}.oauth] with provider = \"google\" and client_id = \"...\", then run popwire auth login {}",
                        sub.key, table.name
                    )),
                ));
            }
        };

        let timeout = self.timeout(table)?.unwrap_or(super::DEFAULT_TIMEOUT);

        Ok(GmailConfig {
            account: table.name.to_owned(),
            user,
            labels,
            create_labels,
            internal_date_source,
            never_mark_spam,
            process_for_calendar,
            endpoint,
            max_import_size,
            oauth,
            timeout,
        })
    }
}

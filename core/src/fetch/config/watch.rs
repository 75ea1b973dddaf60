//! The `[watch]` table (settings of `popwire watch`, the service mode) and each account's `poll`.
//!
//! ```toml
//! [watch]
//! max_sessions = 16          # sessions at once, overall
//! max_per_host = 4           # sessions at once to one server host
//! poll = "5m"                # accounts without their own `poll`
//! alert_after = "1d"         # no success for this long: an alert
//! metrics = "127.0.0.1:9187" # Prometheus text endpoint (off when absent)
//! log_format = "json"        # or "text"
//! quarantine_after = 3       # refusals of one message before it is left alone
//! stop_grace = "30s"         # SIGTERM: how long the sessions in progress may take
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use toml::de::DeValue;

use super::check::{AccountTable, Checker, Item, at, escape_controls, in_file_order, type_name};
use super::error::ConfigError;
use super::suggest::suggest;
use super::{Config, ConfigErrorKind};
use crate::fetch::duration::parse_duration;

/// How `popwire watch` writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `log_format = "text"`: one readable line per event.
    #[default]
    Text,
    /// `log_format = "json"`: one JSON object per line.
    Json,
}

/// The `[watch]` table. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// Sessions at once overall (the worker pool's size).
    pub max_sessions: usize,
    /// Sessions at once to one server host.
    pub max_per_host: usize,
    /// The poll interval of accounts that set no `poll`.
    pub poll: Duration,
    /// An account without a success for this long is reported as an alert.
    pub alert_after: Duration,
    /// Where to serve Prometheus metrics; none when absent.
    pub metrics: Option<SocketAddr>,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// Times a message may be refused before it is quarantined (left on the server, skipped).
    pub quarantine_after: u32,
    /// How long sessions in progress may take to finish after SIGTERM.
    pub stop_grace: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            max_sessions: 16,
            max_per_host: 4,
            poll: Duration::from_secs(300),
            alert_after: Duration::from_secs(86_400),
            metrics: None,
            log_format: LogFormat::Text,
            quarantine_after: 3,
            stop_grace: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// An account's poll interval: its own `poll`, else the `[watch]` table's.
    pub fn poll_of(&self, account: &super::Account) -> Duration {
        account.poll.unwrap_or(self.watch.poll)
    }
}

/// The keys of `[watch]`, with examples for fixes.
const WATCH_KEYS: &[(&str, &str)] = &[
    ("max_sessions", "max_sessions = 16"),
    ("max_per_host", "max_per_host = 4"),
    ("poll", r#"poll = "5m""#),
    ("alert_after", r#"alert_after = "1d""#),
    ("metrics", r#"metrics = "127.0.0.1:9187""#),
    ("log_format", r#"log_format = "json""#),
    ("quarantine_after", "quarantine_after = 3"),
    ("stop_grace", r#"stop_grace = "30s""#),
];

fn example(key: &str) -> &'static str {
    WATCH_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |&(_, e)| e)
}

/// The shortest poll interval accepted: faster is abuse of a mail server.
const MIN_POLL: Duration = Duration::from_secs(1);

impl Checker<'_> {
    /// An account's `poll = "5m"`.
    pub(super) fn poll(&self, table: &AccountTable<'_>) -> Result<Option<Duration>, ConfigError> {
        let Some(item) = table.get("poll") else {
            return Ok(None);
        };
        self.watch_duration(item, &table.path("poll"), "poll")
            .map(Some)
    }

    /// The `[watch]` table.
    pub(super) fn watch(&mut self, item: &Item<'_>) -> Result<WatchConfig, ConfigError> {
        let DeValue::Table(entries) = item.get_ref() else {
            return Err(self.error(
                ConfigErrorKind::WrongType,
                at(item),
                Some("watch".to_owned()),
                format!("expected a table, found {}", type_name(item.get_ref())),
                Some("write [watch] and its settings below it".to_owned()),
            ));
        };
        let mut watch = WatchConfig::default();
        for (key, value) in in_file_order(entries) {
            let path = format!("watch.{key}");
            match key {
                "max_sessions" => watch.max_sessions = self.count(value, &path, key)?,
                "max_per_host" => watch.max_per_host = self.count(value, &path, key)?,
                "quarantine_after" => {
                    let n = self.count(value, &path, key)?;
                    watch.quarantine_after = u32::try_from(n).unwrap_or(u32::MAX);
                }
                "poll" => watch.poll = self.watch_duration(value, &path, key)?,
                "alert_after" => watch.alert_after = self.watch_duration(value, &path, key)?,
                "stop_grace" => watch.stop_grace = self.watch_duration(value, &path, key)?,
                "log_format" => {
                    watch.log_format = match value.get_ref() {
                        DeValue::String(s) if s.eq_ignore_ascii_case("text") => LogFormat::Text,
                        DeValue::String(s) if s.eq_ignore_ascii_case("json") => LogFormat::Json,
                        DeValue::String(s) => {
                            return Err(self.watch_bad(
                                value,
                                &path,
                                format!("unknown log format {:?}", escape_controls(s)),
                                r#"write log_format = "text" or log_format = "json""#,
                            ));
                        }
                        _ => return Err(self.watch_type(value, &path, key, "a string")),
                    }
                }
                "metrics" => watch.metrics = self.metrics(value, &path)?,
                _ => {
                    let fix = suggest(key, WATCH_KEYS.iter().map(|&(k, _)| k)).map_or_else(
                        || {
                            let known: Vec<&str> = WATCH_KEYS.iter().map(|&(k, _)| k).collect();
                            format!("known keys: {}", known.join(", "))
                        },
                        |s| format!("did you mean {s:?}?"),
                    );
                    return Err(self.error(
                        ConfigErrorKind::UnknownKey,
                        at(value),
                        Some(path),
                        "unknown key",
                        Some(fix),
                    ));
                }
            }
        }
        if watch.max_per_host > watch.max_sessions {
            // Not an error: the overall limit simply binds first.
            watch.max_per_host = watch.max_sessions;
        }
        Ok(watch)
    }

    fn watch_bad(
        &self,
        item: &Item<'_>,
        path: &str,
        message: impl Into<String>,
        fix: &str,
    ) -> ConfigError {
        self.error(
            ConfigErrorKind::BadValue,
            at(item),
            Some(path.to_owned()),
            message,
            Some(fix.to_owned()),
        )
    }

    fn watch_type(&self, item: &Item<'_>, path: &str, key: &str, expected: &str) -> ConfigError {
        self.error(
            ConfigErrorKind::WrongType,
            at(item),
            Some(path.to_owned()),
            format!("expected {expected}, found {}", type_name(item.get_ref())),
            Some(format!("write it like {}", example(key))),
        )
    }

    /// A positive whole number.
    fn count(&self, item: &Item<'_>, path: &str, key: &str) -> Result<usize, ConfigError> {
        let DeValue::Integer(n) = item.get_ref() else {
            return Err(self.watch_type(item, path, key, "a positive integer"));
        };
        match usize::try_from(super::check::integer(n)) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(self.watch_bad(
                item,
                path,
                "must be at least 1",
                &format!("write e.g. {}", example(key)),
            )),
        }
    }

    /// A duration string (`"5m"`) or whole seconds, at least [`MIN_POLL`].
    fn watch_duration(
        &self,
        item: &Item<'_>,
        path: &str,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        let fix = format!("write e.g. {}", example(key));
        let duration = match item.get_ref() {
            DeValue::Integer(n) => {
                Duration::from_secs(u64::try_from(super::check::integer(n)).unwrap_or(0))
            }
            DeValue::String(text) => parse_duration(text).map_err(|e| {
                self.watch_bad(
                    item,
                    path,
                    format!("{:?} is not a duration: {e}", escape_controls(text)),
                    &fix,
                )
            })?,
            _ => return Err(self.watch_type(item, path, key, "a duration string or seconds")),
        };
        if duration < MIN_POLL {
            return Err(self.watch_bad(item, path, "must be at least one second", &fix));
        }
        Ok(duration)
    }

    /// `metrics = "127.0.0.1:9187"`, or a bare port for loopback.
    fn metrics(&mut self, item: &Item<'_>, path: &str) -> Result<Option<SocketAddr>, ConfigError> {
        let fix = r#"write metrics = "127.0.0.1:9187" (an IP address and a port), or remove it"#;
        let address = match item.get_ref() {
            DeValue::Integer(n) => match u16::try_from(super::check::integer(n)) {
                Ok(port) if port > 0 => SocketAddr::from(([127, 0, 0, 1], port)),
                _ => return Err(self.watch_bad(item, path, "not a port number", fix)),
            },
            DeValue::String(text) => text.parse::<SocketAddr>().map_err(|_| {
                self.watch_bad(
                    item,
                    path,
                    format!("{:?} is not an address and port", escape_controls(text)),
                    fix,
                )
            })?,
            DeValue::Boolean(false) => return Ok(None),
            DeValue::Boolean(true) => SocketAddr::from(([127, 0, 0, 1], 9187)),
            _ => return Err(self.watch_type(item, path, "metrics", "a string")),
        };
        if !address.ip().is_loopback() {
            let line = self.line_of(item.span().start);
            self.warn(format!(
                "{}:{line}: {path}: the metrics endpoint on {address} is reachable from other hosts and has no authentication (bind 127.0.0.1 and scrape through a proxy, or firewall it)",
                self.origin.display()
            ));
        }
        Ok(Some(address))
    }
}

//! The service's log: one event per line on standard error, as text or JSON, each with the
//! account, the event's name, the error class when there is one, and a message. Server text and
//! errors are sanitized (no terminal control), and nothing here ever holds a secret: errors
//! never carry one (see `ConfigError` and `FetchError`).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use popwire::fetch::config::LogFormat;

use crate::report::{json_line, sanitize};

/// How loud an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One event. `fields` are extra numbers and strings (messages, bytes, uid).
pub struct Event<'a> {
    pub level: Level,
    pub account: Option<&'a str>,
    pub event: &'a str,
    pub class: Option<&'a str>,
    pub message: &'a str,
    pub fields: &'a [(&'a str, serde_json::Value)],
}

/// Writes events in the configured format.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub format: LogFormat,
}

impl Log {
    pub fn write(&self, e: &Event<'_>) {
        let line = match self.format {
            LogFormat::Json => {
                let ts = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                let mut object = serde_json::Map::new();
                object.insert(
                    "ts".into(),
                    serde_json::json!((ts * 1000.0).round() / 1000.0),
                );
                object.insert("level".into(), e.level.name().into());
                object.insert("event".into(), e.event.into());
                if let Some(account) = e.account {
                    object.insert("account".into(), account.into());
                }
                if let Some(class) = e.class {
                    object.insert("class".into(), class.into());
                }
                object.insert("message".into(), e.message.into());
                for (key, value) in e.fields {
                    object.insert((*key).into(), value.clone());
                }
                json_line(&serde_json::Value::Object(object))
            }
            LogFormat::Text => {
                let mut line = format!("popwire watch: {}: {}", e.level.name(), e.event);
                if let Some(account) = e.account {
                    line.push_str(&format!(" [{}]", sanitize(account)));
                }
                if !e.message.is_empty() {
                    line.push_str(&format!(": {}", sanitize(e.message)));
                }
                if let Some(class) = e.class {
                    line.push_str(&format!(" (class {class})"));
                }
                for (key, value) in e.fields {
                    let value = match value {
                        serde_json::Value::String(s) => sanitize(s),
                        other => other.to_string(),
                    };
                    line.push_str(&format!(" {key}={value}"));
                }
                line
            }
        };
        // A closed stderr must not stop the service.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    pub fn info(&self, account: Option<&str>, event: &str, message: &str) {
        self.write(&Event {
            level: Level::Info,
            account,
            event,
            class: None,
            message,
            fields: &[],
        });
    }
}

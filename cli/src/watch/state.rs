//! The state file `popwire watch` keeps for `popwire status` (`STATE_DIR/watch-state.json`),
//! replaced atomically after every change, so a reader never sees half of it. It holds times,
//! counts and error messages, never a secret.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use popwire::fetch::job::exit;
use serde_json::{Value, json};

use crate::report::{json_line, sanitize};

pub const FILE: &str = "watch-state.json";

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What `popwire status` shows of one account.
#[derive(Debug, Clone, Default)]
pub struct AccountState {
    pub last_success: Option<u64>,
    /// (Unix time, class, message).
    pub last_error: Option<(u64, String, String)>,
    pub next_poll: Option<u64>,
    pub failures: u32,
    pub quarantined: usize,
    pub alert: bool,
    pub messages: u64,
    pub running: bool,
}

impl AccountState {
    fn to_json(&self) -> Value {
        json!({
            "last_success": self.last_success,
            "last_error": self.last_error.as_ref().map(|(at, class, message)| json!({
                "at": at, "class": class, "message": message,
            })),
            "next_poll": self.next_poll,
            "failures": self.failures,
            "quarantined": self.quarantined,
            "alert": self.alert,
            "messages": self.messages,
            "running": self.running,
        })
    }

    /// Reads back what `to_json` wrote (for the restart of watch: last success survives).
    pub fn from_json(value: &Value) -> Self {
        let u = |key: &str| value.get(key).and_then(Value::as_u64);
        Self {
            last_success: u("last_success"),
            last_error: value.get("last_error").and_then(|e| {
                Some((
                    e.get("at")?.as_u64()?,
                    e.get("class")?.as_str()?.to_owned(),
                    e.get("message")?.as_str()?.to_owned(),
                ))
            }),
            next_poll: u("next_poll"),
            failures: u("failures")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            quarantined: u("quarantined")
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            alert: value.get("alert").and_then(Value::as_bool).unwrap_or(false),
            messages: u("messages").unwrap_or(0),
            running: false,
        }
    }
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Writes the file: temporary file, then rename over the old one.
pub fn write(state_dir: &Path, accounts: &BTreeMap<String, AccountState>) -> std::io::Result<()> {
    let doc = json!({
        "format": 1,
        "pid": std::process::id(),
        "written": unix_now(),
        "accounts": accounts
            .iter()
            .map(|(name, s)| (name.clone(), s.to_json()))
            .collect::<serde_json::Map<String, Value>>(),
    });
    let target = path(state_dir);
    let tmp = state_dir.join(format!(".{FILE}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(doc.to_string().as_bytes())?;
    file.write_all(b"\n")?;
    drop(file);
    std::fs::rename(&tmp, &target)
}

/// Reads the accounts back, for a restart.
pub fn read(state_dir: &Path) -> BTreeMap<String, AccountState> {
    let Ok(text) = std::fs::read_to_string(path(state_dir)) else {
        return BTreeMap::new();
    };
    let Ok(doc) = serde_json::from_str::<Value>(&text) else {
        return BTreeMap::new();
    };
    doc.get("accounts")
        .and_then(Value::as_object)
        .map(|accounts| {
            accounts
                .iter()
                .map(|(name, v)| (name.clone(), AccountState::from_json(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn ago(now: u64, at: Option<u64>) -> String {
    match at {
        None => "never".to_owned(),
        Some(at) if at <= now => format!("{}s ago", now - at),
        Some(at) => format!("in {}s", at - now),
    }
}

/// `popwire status`: each account's state, as text or JSON lines.
pub fn status(state_dir: &Path, json: bool) -> i32 {
    let text = match std::fs::read_to_string(path(state_dir)) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "popwire status: no state file {} ({e}); is popwire watch running with this --state-dir?",
                path(state_dir).display()
            );
            return exit::UNAVAILABLE;
        }
    };
    let Ok(doc) = serde_json::from_str::<Value>(&text) else {
        eprintln!("popwire status: {} is damaged", path(state_dir).display());
        return exit::SOFTWARE;
    };
    let now = unix_now();
    let accounts = doc.get("accounts").and_then(Value::as_object);
    let mut worst = exit::OK;
    for (name, value) in accounts.into_iter().flatten() {
        let s = AccountState::from_json(value);
        if s.alert {
            worst = exit::TEMPFAIL;
        }
        if json {
            let mut line = value.clone();
            if let Some(object) = line.as_object_mut() {
                object.insert("account".into(), name.clone().into());
            }
            println!("{}", json_line(&line));
            continue;
        }
        let error = s.last_error.as_ref().map_or_else(
            || "none".to_owned(),
            |(at, class, message)| {
                format!("{} ({class}, {})", sanitize(message), ago(now, Some(*at)))
            },
        );
        println!(
            "{}{}: last success {}, next poll {}, quarantined {}, failures in a row {}, last error: {error}",
            sanitize(name),
            if s.alert { " [ALERT]" } else { "" },
            ago(now, s.last_success),
            if s.running {
                "running now".to_owned()
            } else {
                ago(now, s.next_poll)
            },
            s.quarantined,
            s.failures,
        );
    }
    if let Some(written) = doc.get("written").and_then(Value::as_u64)
        && !json
    {
        println!("(state written {})", ago(now, Some(written)));
    }
    worst
}

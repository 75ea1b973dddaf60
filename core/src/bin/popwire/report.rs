//! Output: text with progress bars on a terminal, plain text otherwise, or JSON lines.
//! Server text is escaped before it reaches the terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use popwire::fetch::job::{AccountSummary, Progress};
use serde_json::json;

pub struct Reporter {
    quiet: bool,
    json: bool,
    tty: bool,
}

/// One JSON object as a line. serde_json escapes only U+0000 to U+001F, but DEL and the C1
/// controls (U+0080 to U+009F, e.g. U+009B, the 8-bit CSI) can drive a terminal too, and server
/// text reaches this output: they are written as `\u00XX` escapes, which decode to the same string.
pub fn json_line(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if !text.chars().any(is_c1_or_del) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_c1_or_del(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn is_c1_or_del(c: char) -> bool {
    ('\u{7f}'..='\u{9f}').contains(&c)
}

/// Escapes control characters (ANSI escapes included) so a server cannot drive the terminal.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

impl Reporter {
    pub fn new(quiet: bool, json: bool) -> Self {
        Self {
            quiet,
            json,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn error(&self, account: Option<&str>, message: &str) {
        if self.json {
            println!(
                "{}",
                json_line(&json!({"event": "error", "account": account, "message": message}))
            );
        } else {
            eprintln!("popwire: error: {}", sanitize(message));
        }
    }

    pub fn warning(&self, message: &str) {
        if self.json {
            println!(
                "{}",
                json_line(&json!({"event": "warning", "message": message}))
            );
        } else if !self.quiet {
            eprintln!("popwire: warning: {}", sanitize(message));
        }
    }

    pub fn summary(&self, s: &AccountSummary) {
        if self.json {
            println!(
                "{}",
                json_line(
                    &json!({"event": "done", "account": s.account, "fetched": s.fetched, "bytes": s.bytes,
                    "deleted": s.deleted, "kept": s.kept, "skipped_too_large": s.skipped_too_large,
                    "sessions": s.sessions})
                )
            );
        } else if !self.quiet {
            println!(
                "{}: fetched {} message{} ({}), deleted {}, kept {}{}",
                sanitize(&s.account),
                s.fetched,
                if s.fetched == 1 { "" } else { "s" },
                human_bytes(s.bytes),
                s.deleted,
                s.kept,
                if s.skipped_too_large > 0 {
                    format!(", skipped {} too large", s.skipped_too_large)
                } else {
                    String::new()
                }
            );
        }
    }

    pub fn check(&self, account: &str, count: u32, size: u64) {
        if self.json {
            println!(
                "{}",
                json_line(
                    &json!({"event": "check", "account": account, "messages": count, "bytes": size})
                )
            );
        } else if !self.quiet {
            println!(
                "{}: {count} messages, {}",
                sanitize(account),
                human_bytes(size)
            );
        }
    }

    pub fn entry(&self, account: &str, number: u32, size: u64, uid: &str) {
        if self.json {
            println!(
                "{}",
                json_line(
                    &json!({"event": "message", "account": account, "number": number, "bytes": size, "uid": uid})
                )
            );
        } else if !self.quiet {
            println!("{number:>6} {size:>10} {}", sanitize(uid));
        }
    }

    pub fn progress(&self, account: &str) -> Bar {
        let bar = if self.tty && !self.quiet && !self.json {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix}: {bar:30} {pos}/{len} messages, {msg} {elapsed}",
            ) {
                b.set_style(style);
            }
            b.set_prefix(sanitize(account));
            Some(b)
        } else {
            None
        };
        Bar {
            bar,
            json: self.json,
            bytes: 0,
        }
    }
}

pub struct Bar {
    bar: Option<ProgressBar>,
    json: bool,
    bytes: u64,
}

impl Bar {
    pub fn update(&mut self, p: Progress<'_>) {
        match p {
            Progress::Listed {
                account,
                total,
                new,
                new_bytes,
            } => {
                if let Some(b) = &self.bar {
                    b.set_length(new as u64);
                    b.set_message(human_bytes(0));
                }
                if self.json {
                    println!(
                        "{}",
                        json_line(
                            &json!({"event": "listed", "account": account, "total": total, "new": new, "new_bytes": new_bytes})
                        )
                    );
                }
            }
            Progress::Message { bytes, .. } => {
                self.bytes += bytes;
                if let Some(b) = &self.bar {
                    b.inc(1);
                    b.set_message(human_bytes(self.bytes));
                }
            }
            Progress::Committed { account, count } if self.json => {
                println!(
                    "{}",
                    json_line(&json!({"event": "committed", "account": account, "count": count}))
                );
            }
            Progress::Deleted { account, count } if self.json => {
                println!(
                    "{}",
                    json_line(&json!({"event": "deleted", "account": account, "count": count}))
                );
            }
            Progress::LoggedIn { account, tls } if self.json => {
                println!(
                    "{}",
                    json_line(&json!({"event": "logged_in", "account": account, "tls": tls}))
                );
            }
            _ => {}
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("B"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_escape_every_control_and_still_decode_to_the_same_text() {
        let text = "a\u{1b}[2J\u{7}\u{9b}1m\u{7f}\u{85}é\u{a0}";
        let line = json_line(&json!({"event": "error", "message": text}));
        assert!(!line.chars().any(char::is_control), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["message"], text);
        // Nothing to escape: serde_json's own output.
        let plain = json!({"message": "plain é"});
        assert_eq!(json_line(&plain), plain.to_string());
    }

    #[test]
    fn sanitize_leaves_no_control_character() {
        let s = sanitize("\u{1b}]0;title\u{7}\r\u{8}\u{9b}2J ok é");
        assert!(!s.chars().any(char::is_control), "{s}");
        assert!(s.ends_with(" ok é"), "{s}");
    }
}

//! Output: text with progress bars on a terminal, plain text otherwise, or JSON lines.
//! Server text is escaped before it reaches the terminal.

use std::io::{IsTerminal, Write};

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
/// Bidi overrides and line separators get the same treatment: they reorder or break what the
/// terminal shows (U+202E turns "gpj.exe" into "exe.jpg").
pub fn json_line(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if !text
        .chars()
        .any(|c| is_c1_or_del(c) || is_invisible_format(c))
    {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_c1_or_del(c) || is_invisible_format(c) {
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

/// Characters that change how the text around them is shown without being seen: bidirectional
/// controls (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069), line and paragraph separators
/// (U+2028, U+2029), zero-width and other format characters (U+00AD, U+180E, U+200B-U+200D,
/// U+2060-U+2064, U+206A-U+206F, U+FEFF, U+FFF9-U+FFFB).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// Escapes control characters (ANSI escapes included) and invisible format characters (bidi
/// overrides, line separators) so a server cannot drive or garble the terminal.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else if is_invisible_format(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A line on standard output. Errors are dropped: a closed pipe (`popwire fetch --json | head -1`)
/// must neither panic nor stop a fetch half-way through its commit.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}

/// A line on standard error, on the same terms.
fn say_err(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
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
            say(&json_line(
                &json!({"event": "error", "account": account, "message": message}),
            ));
        } else {
            say_err(&format!("popwire: error: {}", sanitize(message)));
        }
    }

    pub fn warning(&self, message: &str) {
        if self.json {
            say(&json_line(&json!({"event": "warning", "message": message})));
        } else if !self.quiet {
            say_err(&format!("popwire: warning: {}", sanitize(message)));
        }
    }

    pub fn summary(&self, s: &AccountSummary) {
        if self.json {
            say(&json_line(
                &json!({"event": "done", "account": s.account, "fetched": s.fetched, "bytes": s.bytes,
                    "deleted": s.deleted, "kept": s.kept, "skipped_too_large": s.skipped_too_large,
                    "skipped_unidentified": s.skipped_unidentified, "refused": s.refused.len(),
                    "sessions": s.sessions}),
            ));
        } else if !self.quiet {
            say(&format!(
                "{}: fetched {} message{} ({}), deleted {}, kept {}{}{}",
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
                },
                if s.refused.is_empty() {
                    String::new()
                } else {
                    format!(", {} refused by the destination", s.refused.len())
                }
            ));
        }
    }

    pub fn check(&self, account: &str, count: u32, size: u64) {
        if self.json {
            say(&json_line(
                &json!({"event": "check", "account": account, "messages": count, "bytes": size}),
            ));
        } else if !self.quiet {
            say(&format!(
                "{}: {count} messages, {}",
                sanitize(account),
                human_bytes(size)
            ));
        }
    }

    pub fn entry(&self, account: &str, number: u32, size: u64, uid: &str) {
        if self.json {
            say(&json_line(
                &json!({"event": "message", "account": account, "number": number, "bytes": size, "uid": uid}),
            ));
        } else if !self.quiet {
            say(&format!("{number:>6} {size:>10} {}", sanitize(uid)));
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
                    say(&json_line(
                        &json!({"event": "listed", "account": account, "total": total, "new": new, "new_bytes": new_bytes}),
                    ));
                }
            }
            Progress::Message { bytes, .. } => {
                self.bytes += bytes;
                if let Some(b) = &self.bar {
                    b.inc(1);
                    b.set_message(human_bytes(self.bytes));
                }
            }
            Progress::Committed {
                account,
                count,
                bytes,
            } if self.json => {
                say(&json_line(&json!({
                    "event": "committed",
                    "account": account,
                    "count": count,
                    "bytes": bytes,
                })));
            }
            Progress::Deleted { account, count } if self.json => {
                say(&json_line(
                    &json!({"event": "deleted", "account": account, "count": count}),
                ));
            }
            Progress::LoggedIn { account, tls } if self.json => {
                say(&json_line(
                    &json!({"event": "logged_in", "account": account, "tls": tls}),
                ));
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
    fn bidi_and_separators_are_escaped_in_text_and_json() {
        let text = "invoice\u{202e}fdp.exe\u{2028}next\u{200b}";
        let s = sanitize(text);
        assert!(!s.chars().any(is_invisible_format), "{s}");
        assert!(s.contains("\\u{202e}") && s.contains("\\u{2028}"), "{s}");
        let line = json_line(&json!({ "message": text }));
        assert!(!line.chars().any(is_invisible_format), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["message"], text);
    }

    #[test]
    fn sanitize_leaves_no_control_character() {
        let s = sanitize("\u{1b}]0;title\u{7}\r\u{8}\u{9b}2J ok é");
        assert!(!s.chars().any(char::is_control), "{s}");
        assert!(s.ends_with(" ok é"), "{s}");
    }
}

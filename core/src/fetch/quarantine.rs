//! Messages that keep failing: counted per UID, and after `N` refusals quarantined (left on the
//! server and skipped by UID through [`FetchOptions::skip_uids`](super::FetchOptions)), so one
//! message an MDA will never take does not cost a session every poll.
//!
//! One small file per account next to its journal (`<journal>.quarantine`), replaced atomically:
//! a line per message, `COUNT STATE HEX-UID REASON`, where `STATE` is `q` once quarantined and
//! `-` before. The UID is hex because it is the server's bytes.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Reasons are cut to this many characters: they are for people, and the file stays small.
const REASON_MAX: usize = 300;

/// Reading or writing the quarantine file failed.
#[derive(Debug, thiserror::Error)]
#[error("quarantine file {}: cannot {action}: {source}", path.display())]
pub struct QuarantineError {
    /// The file.
    pub path: PathBuf,
    /// What was being done.
    pub action: &'static str,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    count: u32,
    quarantined: bool,
    reason: String,
}

/// The refusal counts and quarantined UIDs of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

/// A message just quarantined: report it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Its UID.
    pub uid: String,
    /// The last refusal.
    pub reason: String,
    /// Refusals counted.
    pub count: u32,
}

impl Quarantine {
    /// The quarantine file that belongs to a journal.
    pub fn path_for(journal: &Path) -> PathBuf {
        let mut name = journal.as_os_str().to_owned();
        name.push(".quarantine");
        PathBuf::from(name)
    }

    /// Reads the file; a missing file is an empty quarantine. Lines that do not parse are
    /// dropped (the worst case is a message counted afresh).
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, QuarantineError> {
        let path = path.into();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(QuarantineError {
                    path,
                    action: "read it",
                    source,
                });
            }
        };
        let entries = text.lines().filter_map(parse_line).collect();
        Ok(Self { path, entries })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts one session's refusals (UID, reason) and returns the messages that reached
    /// `after` refusals in this call. UIDs not refused this time keep their counts.
    pub fn record(&mut self, refused: &[(String, String)], after: u32) -> Vec<Quarantined> {
        let mut newly = Vec::new();
        for (uid, reason) in refused {
            // `#N`: the server gave no usable UID, so nothing identifies it next session.
            if uid.starts_with('#') {
                continue;
            }
            let entry = self.entries.entry(uid.clone()).or_insert(Entry {
                count: 0,
                quarantined: false,
                reason: String::new(),
            });
            entry.count = entry.count.saturating_add(1);
            entry.reason = clean(reason);
            if !entry.quarantined && entry.count >= after.max(1) {
                entry.quarantined = true;
                newly.push(Quarantined {
                    uid: uid.clone(),
                    reason: entry.reason.clone(),
                    count: entry.count,
                });
            }
        }
        newly
    }

    /// Forgets UIDs the server no longer lists (someone deleted the message by hand).
    pub fn retain_only(&mut self, present: &HashSet<String>) {
        self.entries.retain(|uid, _| present.contains(uid));
    }

    /// The quarantined UIDs, for [`FetchOptions::skip_uids`](super::FetchOptions).
    pub fn uids(&self) -> HashSet<String> {
        self.entries
            .iter()
            .filter(|(_, e)| e.quarantined)
            .map(|(uid, _)| uid.clone())
            .collect()
    }

    /// How many messages are quarantined.
    pub fn len(&self) -> usize {
        self.entries.values().filter(|e| e.quarantined).count()
    }

    /// True when no message is quarantined.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the file: a temporary file, fsync, rename over the old one.
    pub fn save(&self) -> Result<(), QuarantineError> {
        let err = |action, source| QuarantineError {
            path: self.path.clone(),
            action,
            source,
        };
        if self.entries.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err("remove it", e)),
                _ => Ok(()),
            };
        }
        let mut text = String::new();
        for (uid, e) in &self.entries {
            let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
            let state = if e.quarantined { 'q' } else { '-' };
            text.push_str(&format!("{} {state} {hex} {}\n", e.count, e.reason));
        }
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file =
            std::fs::File::create(&tmp).map_err(|e| err("create a temporary file", e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| err("write it", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| err("replace it", e))
    }
}

/// One line of reason, without control characters.
fn clean(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(REASON_MAX)
        .collect()
}

fn parse_line(line: &str) -> Option<(String, Entry)> {
    let mut parts = line.splitn(4, ' ');
    let count = parts.next()?.parse().ok()?;
    let quarantined = match parts.next()? {
        "q" => true,
        "-" => false,
        _ => return None,
    };
    let hex = parts.next()?.as_bytes();
    if hex.is_empty() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes = hex
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let uid = String::from_utf8(bytes).ok()?;
    let reason = parts.next().unwrap_or("").to_owned();
    Some((
        uid,
        Entry {
            count,
            quarantined,
            reason,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_nth_refusal_quarantines_once_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = Quarantine::path_for(&dir.path().join("a.uids"));
        assert!(path.ends_with("a.uids.quarantine"));
        let mut q = Quarantine::load(&path).unwrap();
        let refused = vec![
            ("uid 1\u{1b}".to_owned(), "mda exited 65\nboom".to_owned()),
            ("#4".to_owned(), "no uid".to_owned()),
        ];
        assert!(q.record(&refused, 3).is_empty());
        assert!(q.record(&refused, 3).is_empty());
        let newly = q.record(&refused, 3);
        assert_eq!(newly.len(), 1);
        assert_eq!(newly[0].uid, "uid 1\u{1b}");
        assert_eq!(newly[0].reason, "mda exited 65 boom");
        assert!(q.record(&refused, 3).is_empty(), "reported once");
        q.save().unwrap();
        let again = Quarantine::load(&path).unwrap();
        assert_eq!(again, q);
        assert_eq!(again.uids(), HashSet::from(["uid 1\u{1b}".to_owned()]));
        assert_eq!(again.len(), 1);
        let mut gone = again.clone();
        gone.retain_only(&HashSet::new());
        gone.save().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn damaged_lines_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q");
        std::fs::write(&path, "x q 41 r\n2 z 41 r\n3 q 4 r\n1 q 41 fine\n").unwrap();
        let q = Quarantine::load(&path).unwrap();
        assert_eq!(q.uids(), HashSet::from(["A".to_owned()]));
    }
}

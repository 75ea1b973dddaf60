//! The journal's text format: one line per entry, `%XX` escapes, and the reader that tells a
//! torn tail from corruption.

use std::collections::HashMap;
use std::path::Path;

use super::{Entry, JournalError};

/// The first line of every journal; the number is the format version.
pub(super) const HEADER: &str = "popwire-uid-journal 3";
/// Older headers this version reads.
const OLD_HEADERS: [&str; 2] = ["popwire-uid-journal 1", "popwire-uid-journal 2"];
/// The line that marks every receipt above it as published.
pub(super) const PUBLISHED: &[u8] = b"+";
/// The line that voids every write-ahead mark above it (its batch was rolled back).
pub(super) const VOID: &[u8] = b"+c";
/// The start of a write-ahead mark line.
pub(super) const MARK: &[u8] = b"+w=";
const HEADER_PREFIX: &str = "popwire-uid-journal ";

/// Appends `uid<TAB>time[<TAB>s=size][<TAB>r=receipt][<TAB>p=place]\n` to `out`, escaping the
/// UID, the receipt and the place.
pub(super) fn write_line(
    out: &mut Vec<u8>,
    uid: &str,
    entry: Entry,
    receipt: Option<&str>,
    place: Option<&str>,
) {
    write_escaped(out, uid);
    out.push(b'\t');
    out.extend_from_slice(entry.time.to_string().as_bytes());
    if let Some(size) = entry.size {
        out.extend_from_slice(b"\ts=");
        out.extend_from_slice(size.to_string().as_bytes());
    }
    if let Some(receipt) = receipt {
        out.extend_from_slice(b"\tr=");
        write_escaped(out, receipt);
    }
    if let Some(place) = place {
        out.extend_from_slice(b"\tp=");
        write_escaped(out, place);
    }
    out.push(b'\n');
}

/// Every byte outside 0x21-0x7E, and `%`, as `%XX`: the field can never hold a tab or newline.
pub(super) fn write_escaped(out: &mut Vec<u8>, field: &str) {
    for &byte in field.as_bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte);
        } else {
            out.push(b'%');
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0xf));
        }
    }
}

fn hex_digit(nibble: u8) -> u8 {
    match nibble {
        0..=9 => b'0' + nibble,
        _ => b'A' + (nibble - 10),
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn unescape(escaped: &[u8]) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.iter();
    while let Some(&byte) = rest.next() {
        match byte {
            b'%' => {
                let high = rest.next().copied().and_then(hex_value);
                let low = rest.next().copied().and_then(hex_value);
                match (high, low) {
                    (Some(high), Some(low)) => bytes.push(high << 4 | low),
                    _ => return Err("bad %-escape in the UID".to_owned()),
                }
            }
            0x21..=0x7e => bytes.push(byte),
            _ => return Err(format!("unexpected byte 0x{byte:02X} in the UID")),
        }
    }
    String::from_utf8(bytes).map_err(|_| "the UID is not UTF-8".to_owned())
}

/// A journal file's contents.
pub(super) struct Parsed {
    pub(super) entries: HashMap<String, Entry>,
    pub(super) pending: Vec<(String, String)>,
    pub(super) marks: Vec<String>,
    pub(super) places: HashMap<String, String>,
    /// Header, one line per entry, no duplicates, no torn tail: it can be appended to as it is.
    pub(super) clean: bool,
}

/// Parses a journal file.
pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Parsed, JournalError> {
    let mut parsed = Parsed {
        entries: HashMap::new(),
        pending: Vec::new(),
        marks: Vec::new(),
        places: HashMap::new(),
        clean: false,
    };
    if bytes.is_empty() {
        return Ok(parsed);
    }
    let corrupt = |line: usize, reason: String| JournalError::Corrupt {
        path: path.to_owned(),
        line,
        reason,
    };
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // The piece after the last newline: empty for a clean file, else a torn append to ignore.
    let torn = lines.pop().is_some_and(|tail| !tail.is_empty());
    let mut clean = !torn;
    let mut numbered = lines.into_iter().enumerate().map(|(i, line)| (i + 1, line));
    match numbered.next() {
        Some((_, header)) if header == HEADER.as_bytes() => {}
        // Rewritten in the current format at the next append.
        Some((_, header)) if OLD_HEADERS.iter().any(|old| header == old.as_bytes()) => {
            clean = false;
        }
        Some((_, header)) if header.starts_with(HEADER_PREFIX.as_bytes()) => {
            let found =
                String::from_utf8_lossy(header.get(HEADER_PREFIX.len()..).unwrap_or_default());
            return Err(JournalError::UnsupportedVersion {
                path: path.to_owned(),
                found: found.into_owned(),
            });
        }
        Some(_) => {
            return Err(corrupt(
                1,
                format!("not a popwire UID journal (the first line should be {HEADER:?})"),
            ));
        }
        // Only a torn header: the file was being created. An atomic save never leaves this, but
        // a header prefix is still nothing but an empty journal.
        None if HEADER.as_bytes().starts_with(bytes) => return Ok(parsed),
        None => {
            return Err(corrupt(
                1,
                format!("not a popwire UID journal (the first line should be {HEADER:?})"),
            ));
        }
    }
    for (number, line) in numbered {
        if line == PUBLISHED {
            parsed.pending.clear();
            parsed.marks.clear();
            continue;
        }
        if line == VOID {
            parsed.marks.clear();
            continue;
        }
        if let Some(escaped) = line.strip_prefix(MARK) {
            let mark = unescape(escaped)
                .map_err(|reason| corrupt(number, reason.replace("the UID", "the mark")))?;
            parsed.marks.push(mark);
            continue;
        }
        let mut fields = line.split(|&b| b == b'\t');
        let (Some(uid), Some(time)) = (fields.next(), fields.next()) else {
            return Err(corrupt(
                number,
                "expected UID, a tab, and a time".to_owned(),
            ));
        };
        let uid = unescape(uid).map_err(|reason| corrupt(number, reason))?;
        let time = std::str::from_utf8(time)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| corrupt(number, "the time is not a number of seconds".to_owned()))?;
        let mut size = None;
        let mut place = None;
        for field in fields {
            match field.split_first() {
                Some((b's', [b'=', digits @ ..])) => {
                    size = Some(
                        std::str::from_utf8(digits)
                            .ok()
                            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|d| d.parse::<u64>().ok())
                            .ok_or_else(|| {
                                corrupt(number, "the size is not a number of octets".to_owned())
                            })?,
                    );
                }
                Some((b'r', [b'=', escaped @ ..])) => {
                    let receipt = unescape(escaped).map_err(|reason| {
                        corrupt(number, reason.replace("the UID", "the receipt"))
                    })?;
                    parsed.pending.push((uid.clone(), receipt));
                }
                Some((b'p', [b'=', escaped @ ..])) => {
                    place = Some(unescape(escaped).map_err(|reason| {
                        corrupt(number, reason.replace("the UID", "the place"))
                    })?);
                }
                // A field a newer popwire added.
                _ => {}
            }
        }
        let entry = Entry { time, size };
        match parsed.entries.get_mut(&uid) {
            // Where the message just recorded was published: a second line by design, so
            // appending can go on (one such line per message).
            Some(existing) if place.is_some() && *existing == entry => {}
            // The same message twice: the first time it was stored is what `keep` counts from.
            Some(existing) if existing.size == size || size.is_none() => {
                existing.time = time.min(existing.time);
                clean = false;
            }
            // The server reused the UID for another message: the later line is the truth.
            Some(existing) => {
                *existing = entry;
                parsed.places.remove(&uid);
                clean = false;
            }
            None => {
                parsed.entries.insert(uid.clone(), entry);
            }
        }
        if let Some(place) = place {
            parsed.places.insert(uid, place);
        }
    }
    parsed.clean = clean;
    Ok(parsed)
}

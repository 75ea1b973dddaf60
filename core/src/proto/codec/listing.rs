//! STAT, LIST and UIDL reply lines: `+OK 2 320`, `1 120`, `1 whqtswO00WBw418f9t5JxYwZ`.

use alloc::string::String;

use crate::proto::error::ProtocolError;
use crate::proto::types::{ListEntry, MessageNumber, UidlEntry};

/// A server line for an error message: lossy, control characters escaped, at most 120 chars.
pub(crate) fn printable(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line.get(..120).unwrap_or(line));
    text.chars().flat_map(char::escape_default).collect()
}

fn parse_number(word: Option<&[u8]>, what: &'static str) -> Result<u64, ProtocolError> {
    let word = word.ok_or_else(|| ProtocolError::Malformed {
        what,
        line: String::new(),
    })?;
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::Malformed {
            what,
            line: printable(word),
        });
    }
    word.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(ProtocolError::NumberOverflow(what))
    })
}

fn words(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| *b == b' ' || *b == b'\t')
        .filter(|w| !w.is_empty())
}

fn parse_two_numbers(text: &[u8], what: &'static str) -> Result<(u64, u64), ProtocolError> {
    let mut w = words(text);
    let a = parse_number(w.next(), what)?;
    let b = parse_number(w.next(), what)?;
    Ok((a, b))
}

/// STAT's status text: `count size`.
pub fn parse_stat(text: &[u8]) -> Result<(u32, u64), ProtocolError> {
    let (count, size) = parse_two_numbers(text, "STAT")?;
    let count = u32::try_from(count).map_err(|_| ProtocolError::NumberOverflow("STAT"))?;
    Ok((count, size))
}

fn message_number(n: u64, what: &'static str) -> Result<MessageNumber, ProtocolError> {
    match MessageNumber::try_from(n) {
        Ok(0) => Err(ProtocolError::Malformed {
            what,
            line: "message number 0".into(),
        }),
        Ok(n) => Ok(n),
        Err(_) => Err(ProtocolError::NumberOverflow(what)),
    }
}

/// One LIST entry (`n size`), from `LIST n`'s status text or a line of `LIST`.
pub fn parse_list_entry(text: &[u8]) -> Result<ListEntry, ProtocolError> {
    let (number, size) = parse_two_numbers(text, "LIST entry")?;
    Ok(ListEntry {
        number: message_number(number, "LIST entry")?,
        size,
    })
}

/// One UIDL entry (`n unique-id`). The unique-id must be RFC 1939's 1-70 octets of
/// 0x21-0x7E, or with `lenient` up to 255 octets without controls or spaces.
pub fn parse_uidl_entry(text: &[u8], lenient: bool) -> Result<UidlEntry, ProtocolError> {
    let mut w = words(text);
    let number = message_number(parse_number(w.next(), "UIDL entry")?, "UIDL entry")?;
    let uid = w.next().ok_or_else(|| ProtocolError::Malformed {
        what: "UIDL entry",
        line: printable(text),
    })?;
    let valid = if lenient {
        (1..=255).contains(&uid.len()) && uid.iter().all(|b| *b > 0x20 && *b != 0x7f)
    } else {
        (1..=70).contains(&uid.len()) && uid.iter().all(|b| (0x21..=0x7e).contains(b))
    };
    if !valid {
        return Err(ProtocolError::InvalidUid(printable(uid)));
    }
    Ok(UidlEntry {
        number,
        uid: String::from_utf8_lossy(uid).into_owned(),
    })
}

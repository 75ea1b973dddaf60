//! Status lines: `+OK`, `-ERR`, and the SASL continuation `+ `.

use alloc::string::String;

use crate::proto::types::ResponseCode;

/// The kind of a status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `+OK`
    Ok,
    /// `-ERR`
    Err,
    /// `+ base64` during an AUTH exchange (RFC 5034).
    Continuation,
}

/// A parsed status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine<'a> {
    /// `+OK`, `-ERR` or `+ `.
    pub status: Status,
    /// The RFC 2449 response code, if the text starts with `[...]`.
    pub code: Option<ResponseCode>,
    /// The text after the status (and after the code). For a continuation, the base64 payload.
    pub text: &'a [u8],
}

impl<'a> StatusLine<'a> {
    /// Parses a line without its CRLF. Returns `None` for anything that is not a status line.
    ///
    /// Matching is case-insensitive for `+OK`/`-ERR`, as several servers send `+ok`.
    pub fn parse(line: &'a [u8]) -> Option<Self> {
        let (status, rest) = if starts_with_ignore_case(line, b"+OK") {
            (Status::Ok, line.get(3..)?)
        } else if starts_with_ignore_case(line, b"-ERR") {
            (Status::Err, line.get(4..)?)
        } else if line == b"+" {
            return Some(Self {
                status: Status::Continuation,
                code: None,
                text: b"",
            });
        } else if let Some(payload) = line.strip_prefix(b"+ ") {
            return Some(Self {
                status: Status::Continuation,
                code: None,
                text: payload,
            });
        } else {
            return None;
        };
        // `+OKAY` is not `+OK`: the status word must end there.
        let text = match rest.first() {
            None => rest,
            Some(b' ' | b'\t') => rest.get(1..).unwrap_or(b""),
            Some(_) => return None,
        };
        let (code, text) = split_code(text);
        Some(Self { status, code, text })
    }

    /// The text as (lossy) UTF-8.
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(self.text).into_owned()
    }
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Splits `[CODE] rest` into the code and the rest. The code must be printable ASCII without
/// spaces or brackets; otherwise the brackets are just text.
fn split_code(text: &[u8]) -> (Option<ResponseCode>, &[u8]) {
    let Some(inner) = text.strip_prefix(b"[") else {
        return (None, text);
    };
    let Some(end) = memchr::memchr(b']', inner) else {
        return (None, text);
    };
    let (code, after) = inner.split_at(end);
    let valid = !code.is_empty() && code.iter().all(|b| (0x21..=0x7e).contains(b) && *b != b'[');
    match (valid, core::str::from_utf8(code)) {
        (true, Ok(code)) => {
            let after = after.get(1..).unwrap_or(b"");
            let after = after.strip_prefix(b" ").unwrap_or(after);
            (Some(ResponseCode::parse(code)), after)
        }
        _ => (None, text),
    }
}

/// Writes a status line (server role).
pub fn write_status(
    out: &mut alloc::vec::Vec<u8>,
    ok: bool,
    code: Option<&ResponseCode>,
    text: &str,
) {
    out.extend_from_slice(if ok { b"+OK" } else { b"-ERR" });
    if let Some(code) = code {
        out.extend_from_slice(b" [");
        out.extend_from_slice(code.as_str().as_bytes());
        out.push(b']');
    }
    if !text.is_empty() {
        out.push(b' ');
        // Text that starts like `[CODE]` must not read back as one: a second space keeps it text.
        let visible = text.bytes().find(|b| *b != b'\r' && *b != b'\n');
        if code.is_none() && visible == Some(b'[') {
            out.push(b' ');
        }
        // Never let our own text break the framing.
        out.extend(text.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_looks_like_a_code_after_a_dropped_cr_stays_text() {
        let mut wire = alloc::vec::Vec::new();
        write_status(&mut wire, false, None, "\r[AUTH] no");
        assert_eq!(wire, b"-ERR  [AUTH] no\r\n");
        let s = StatusLine::parse(wire.strip_suffix(b"\r\n").unwrap()).unwrap();
        assert_eq!(s.code, None);
    }

    #[test]
    fn parses_ok_err_and_codes() {
        let s = StatusLine::parse(b"+OK 2 320").unwrap();
        assert_eq!((s.status, s.text), (Status::Ok, &b"2 320"[..]));
        let s = StatusLine::parse(b"-ERR [IN-USE] locked").unwrap();
        assert_eq!(s.status, Status::Err);
        assert_eq!(s.code, Some(ResponseCode::InUse));
        assert_eq!(s.text, b"locked");
        let s = StatusLine::parse(b"-ERR [SYS/TEMP]").unwrap();
        assert_eq!(s.code, Some(ResponseCode::SysTemp));
        let s = StatusLine::parse(b"+ok").unwrap();
        assert_eq!(s.status, Status::Ok);
        let s = StatusLine::parse(b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+").unwrap();
        assert_eq!(s.status, Status::Continuation);
        assert!(StatusLine::parse(b"+OKAY").is_none());
        assert!(StatusLine::parse(b"hello").is_none());
        let s = StatusLine::parse(b"-ERR [not a code] x").unwrap();
        assert_eq!(s.code, None);
        assert_eq!(s.text, b"[not a code] x");
    }
}

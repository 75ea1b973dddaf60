//! Multi-line bodies: dot-unstuffing on the way in, dot-stuffing on the way out.
//!
//! Both are streaming: they hold a few bits of state, never a line or a message, so any split of
//! the input (down to one byte per call) gives the same output.

use alloc::vec::Vec;
use core::ops::Range;

use crate::proto::error::ProtocolError;

/// One step of [`BodyDecoder::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Emit `buf[data]` as message bytes, then drop `consumed` octets from the front of the input.
    Chunk {
        /// Octets of the body to hand out (a sub-range of the input).
        data: Range<usize>,
        /// Octets of input used up (at least `data.end`).
        consumed: usize,
    },
    /// The terminating `.CRLF` was read; drop `consumed` octets.
    End {
        /// Octets of input used up.
        consumed: usize,
    },
    /// Nothing can be decided until more input arrives.
    NeedMore,
}

/// Decodes a dot-stuffed multi-line body (RFC 1939 section 3).
///
/// Every line starting with `.` loses that dot, except the lone `.` line that ends the body. Only
/// CRLF ends a line here: a bare LF inside a message is message data, so a crafted message with
/// `\n.\n` in it cannot end its body early and have its tail read as the server's next reply.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    at_line_start: bool,
    /// The byte before the next one to decode was a CR (so an LF there ends a line).
    after_cr: bool,
    line_len: usize,
    max_line: usize,
    octets: u64,
}

impl BodyDecoder {
    /// A decoder positioned at the start of the first line; `max_line` caps a line, CRLF included.
    pub fn new(max_line: usize) -> Self {
        Self {
            at_line_start: true,
            after_cr: false,
            line_len: 0,
            max_line,
            octets: 0,
        }
    }

    /// Starts over at the beginning of a new body, keeping the prepared searcher.
    pub fn reset(&mut self, max_line: usize) {
        self.at_line_start = true;
        self.after_cr = false;
        self.line_len = 0;
        self.max_line = max_line;
        self.octets = 0;
    }

    /// Octets of body handed out so far.
    pub fn octets(&self) -> u64 {
        self.octets
    }

    /// Decodes from the front of `buf`. Call again with the unconsumed rest until it says
    /// [`Decoded::NeedMore`] or [`Decoded::End`].
    pub fn decode(&mut self, buf: &[u8]) -> Result<Decoded, ProtocolError> {
        let mut start = 0;
        if self.at_line_start {
            match buf {
                [] | [b'.'] | [b'.', b'\r'] => return Ok(Decoded::NeedMore),
                [b'.', b'\r', b'\n', ..] => return Ok(Decoded::End { consumed: 3 }),
                // A stuffed dot: drop it, and the rest of the line is ordinary data.
                [b'.', ..] => {
                    start = 1;
                    self.after_cr = false;
                }
                _ => {}
            }
            self.at_line_start = false;
            self.line_len = 0;
        }
        let rest = buf.get(start..).unwrap_or_default();
        if let Some(decoded) = self.skip_to_dot_line(start, buf) {
            return Ok(decoded);
        }
        let mut line_start = 0usize;
        for lf in memchr::memchr_iter(b'\n', rest) {
            self.check_line(lf + 1 - line_start)?;
            self.line_len = 0;
            line_start = lf + 1;
            if !self.crlf_at(rest, lf) {
                continue;
            }
            match rest.get(lf + 1) {
                // The next line starts with a dot: stop here so the next call can look at it.
                Some(b'.') | None => {
                    self.at_line_start = true;
                    self.after_cr = false;
                    return Ok(self.chunk(start, start + lf + 1));
                }
                Some(_) => {}
            }
        }
        self.check_line(rest.len() - line_start)?;
        self.line_len += rest.len() - line_start;
        if let Some(&last) = rest.last() {
            self.after_cr = last == b'\r';
        }
        if rest.is_empty() {
            return Ok(if start > 0 {
                Decoded::Chunk {
                    data: start..start,
                    consumed: start,
                }
            } else {
                Decoded::NeedMore
            });
        }
        Ok(self.chunk(start, buf.len()))
    }

    /// Fast path: when no line in the rest of `buf` can pass the cap, only dot-lines matter, so
    /// jump from dot to dot instead of visiting every line end. (memchr's `memmem` searcher was
    /// faster still, but crashed inside its AVX2 code when driven from the Python extension.)
    fn skip_to_dot_line(&mut self, start: usize, buf: &[u8]) -> Option<Decoded> {
        let rest = buf.get(start..).unwrap_or_default();
        if rest.is_empty() || self.line_len.saturating_add(rest.len()) > self.max_line {
            return None;
        }
        let dot_line = memchr::memchr_iter(b'.', rest).find(|&dot| {
            dot > 0 && rest.get(dot - 1) == Some(&b'\n') && self.crlf_at(rest, dot - 1)
        });
        if let Some(lf) = dot_line.map(|dot| dot - 1) {
            self.line_len = 0;
            self.at_line_start = true;
            self.after_cr = false;
            return Some(self.chunk(start, start + lf + 1));
        }
        match memchr::memrchr(b'\n', rest) {
            Some(lf) => {
                self.line_len = rest.len() - lf - 1;
                // Ends with CRLF: the next byte may be a dot, so look at it next call.
                self.at_line_start = lf + 1 == rest.len() && self.crlf_at(rest, lf);
            }
            None => self.line_len += rest.len(),
        }
        if let Some(&last) = rest.last() {
            self.after_cr = last == b'\r';
        }
        Some(self.chunk(start, buf.len()))
    }

    /// Whether the LF at `rest[lf]` ends a line, i.e. follows a CR (in `rest`, or at the end of
    /// the previous input when `lf` is 0).
    fn crlf_at(&self, rest: &[u8], lf: usize) -> bool {
        match lf.checked_sub(1) {
            Some(before) => rest.get(before) == Some(&b'\r'),
            None => self.after_cr,
        }
    }

    fn chunk(&mut self, start: usize, end: usize) -> Decoded {
        self.octets += (end - start) as u64;
        Decoded::Chunk {
            data: start..end,
            consumed: end,
        }
    }

    fn check_line(&self, more: usize) -> Result<(), ProtocolError> {
        if self.line_len.saturating_add(more) > self.max_line {
            return Err(ProtocolError::DataLineTooLong {
                limit: self.max_line,
            });
        }
        Ok(())
    }
}

/// Dot-stuffs a message for sending (server role), turning bare LF into CRLF on the way.
#[derive(Debug, Clone, Default)]
pub struct DotStuffer {
    mid_line: bool,
    last_was_cr: bool,
}

impl DotStuffer {
    /// A stuffer at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the stuffed form of `chunk` to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + chunk.len() / 64 + 4);
        let mut from = 0;
        for lf in memchr::memchr_iter(b'\n', chunk) {
            let line = chunk.get(from..lf).unwrap_or_default();
            self.push_partial(line, out);
            let had_cr = if line.is_empty() {
                self.last_was_cr
            } else {
                line.last() == Some(&b'\r')
            };
            out.extend_from_slice(if had_cr { b"\n" } else { b"\r\n" });
            self.mid_line = false;
            self.last_was_cr = false;
            from = lf + 1;
        }
        self.push_partial(chunk.get(from..).unwrap_or_default(), out);
    }

    fn push_partial(&mut self, part: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = part.last() else { return };
        if !self.mid_line && part.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(part);
        self.mid_line = true;
        self.last_was_cr = last == b'\r';
    }

    /// Ends the body: completes an unterminated last line, then writes `.CRLF`.
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.mid_line {
            // A lone CR at the very end becomes CRLF rather than CR CRLF.
            out.extend_from_slice(if self.last_was_cr { b"\n" } else { b"\r\n" });
        }
        out.extend_from_slice(b".\r\n");
    }

    /// The size the stuffed-and-CRLF'd message counts as in LIST (RFC 1939: octets before
    /// stuffing, with CRLF line ends): every bare LF counts two, and a missing final CRLF counts.
    pub fn wire_size(message: &[u8]) -> u64 {
        let mut size = message.len() as u64;
        let mut prev = 0u8;
        for lf in memchr::memchr_iter(b'\n', message) {
            let before = if lf == 0 {
                prev
            } else {
                message.get(lf - 1).copied().unwrap_or(0)
            };
            if before != b'\r' {
                size += 1;
            }
            prev = b'\n';
        }
        match message.last() {
            None | Some(b'\n') => {}
            Some(b'\r') => size += 1,
            Some(_) => size += 2,
        }
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Decodes `wire` fed in pieces of `step` bytes, the way the client engine drives it.
    fn decode_split(wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), ProtocolError> {
        let mut dec = BodyDecoder::new(1000);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut total = 0;
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&buf)? {
                    Decoded::Chunk { data, consumed } => {
                        out.extend_from_slice(&buf[data]);
                        buf.drain(..consumed);
                        total += consumed;
                    }
                    Decoded::End { consumed } => {
                        assert_eq!(dec.octets(), out.len() as u64);
                        return Ok((out, total + consumed));
                    }
                    Decoded::NeedMore => break,
                }
            }
        }
        panic!("no terminator");
    }

    #[test]
    fn unstuffs_under_every_split() {
        let wire = b"From: a\r\n..dot\r\n..\r\nx.\r\n...\r\n\r\n.\r\nNEXT";
        let want = b"From: a\r\n.dot\r\n.\r\nx.\r\n..\r\n\r\n";
        for step in 1..wire.len() {
            let (got, consumed) = decode_split(wire, step).unwrap();
            assert_eq!(got, want, "step {step}");
            assert_eq!(consumed, wire.len() - 4, "step {step}");
        }
    }

    #[test]
    fn empty_body_and_bare_lf() {
        assert_eq!(decode_split(b".\r\n", 1).unwrap().0, b"");
        // A bare LF is data: neither a line end for the terminator nor for unstuffing.
        let wire = b"a\n.\n+OK forged\n..x\r\n..y\r\n.\r\nNEXT";
        let want = b"a\n.\n+OK forged\n..x\r\n.y\r\n";
        for step in 1..wire.len() {
            let (got, consumed) = decode_split(wire, step).unwrap();
            assert_eq!(got, want, "step {step}");
            assert_eq!(consumed, wire.len() - 4, "step {step}");
        }
    }

    #[test]
    fn line_cap() {
        let mut wire = vec![b'a'; 2000];
        wire.extend_from_slice(b"\r\n.\r\n");
        for step in [1, 7, 999, 5000] {
            assert!(matches!(
                decode_split(&wire, step),
                Err(ProtocolError::DataLineTooLong { .. })
            ));
        }
    }

    #[test]
    fn stuffer_round_trips_through_decoder() {
        let msg = b"a\n.b\n..c\r\n.\r\nlast";
        for step in 1..msg.len() {
            let mut s = DotStuffer::new();
            let mut wire = Vec::new();
            for piece in msg.chunks(step) {
                s.push(piece, &mut wire);
            }
            s.finish(&mut wire);
            assert_eq!(
                wire, b"a\r\n..b\r\n...c\r\n..\r\nlast\r\n.\r\n",
                "step {step}"
            );
            let (decoded, _) = decode_split(&wire, 3).unwrap();
            assert_eq!(decoded, b"a\r\n.b\r\n..c\r\n.\r\nlast\r\n");
            assert_eq!(DotStuffer::wire_size(msg), decoded.len() as u64);
        }
    }
}

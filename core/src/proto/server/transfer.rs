//! Sending one message for RETR or TOP: the bytes the backend reads go through the
//! [`DotStuffer`], and TOP stops after the header, the blank line and `n` body lines.
//!
//! Like the codec, this holds a few bits of state and never a line, so the backend's read
//! sizes do not change a single output byte.

use alloc::vec::Vec;

use crate::proto::codec::DotStuffer;

/// A RETR or TOP in progress.
#[derive(Debug, Clone)]
pub(super) struct Transfer {
    /// The message's 0-based index in the maildrop.
    pub(super) index: usize,
    offset: u64,
    stuffer: DotStuffer,
    top: Option<TopCut>,
}

/// Whether a transfer goes on after [`Transfer::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// Read more from the backend.
    More,
    /// The terminating `.CRLF` was written.
    Done,
}

impl Transfer {
    /// The whole message (RETR).
    pub(super) fn retr(index: usize) -> Self {
        Self {
            index,
            offset: 0,
            stuffer: DotStuffer::new(),
            top: None,
        }
    }

    /// The header, the blank line, and at most `lines` body lines (TOP).
    pub(super) fn top(index: usize, lines: u32) -> Self {
        Self {
            top: Some(TopCut {
                lines_left: lines,
                in_body: false,
                line: LineStart::Empty,
            }),
            ..Self::retr(index)
        }
    }

    /// Where the next backend read starts.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// Takes bytes the backend just read (empty at the end of the message) and appends their
    /// wire form to `out`.
    pub(super) fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Progress {
        if data.is_empty() {
            core::mem::take(&mut self.stuffer).finish(out);
            return Progress::Done;
        }
        self.offset = self.offset.saturating_add(data.len() as u64);
        match self.top.as_mut().and_then(|cut| cut.scan(data)) {
            Some(end) => {
                self.stuffer.push(data.get(..end).unwrap_or(data), out);
                core::mem::take(&mut self.stuffer).finish(out);
                Progress::Done
            }
            None => {
                self.stuffer.push(data, out);
                Progress::More
            }
        }
    }
}

/// How the current line has started: a line of nothing but an optional CR is blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineStart {
    Empty,
    Cr,
    Text,
}

/// TOP's stopping point: the end of the `lines`-th line after the blank line.
#[derive(Debug, Clone)]
struct TopCut {
    lines_left: u32,
    in_body: bool,
    line: LineStart,
}

impl TopCut {
    /// Looks through `data`; returns the length of its part that still belongs to the reply
    /// when the reply ends inside it.
    fn scan(&mut self, data: &[u8]) -> Option<usize> {
        let mut start = 0;
        while let Some(rest) = data.get(start..) {
            let Some(lf) = memchr::memchr(b'\n', rest) else {
                self.note(rest);
                return None;
            };
            self.note(rest.get(..lf).unwrap_or_default());
            let blank = self.line != LineStart::Text;
            self.line = LineStart::Empty;
            let end = start + lf + 1;
            if self.in_body {
                self.lines_left = self.lines_left.saturating_sub(1);
            } else if blank {
                self.in_body = true;
            }
            if self.in_body && self.lines_left == 0 {
                return Some(end);
            }
            start = end;
        }
        None
    }

    /// Records part of a line (no LF in it).
    fn note(&mut self, part: &[u8]) {
        self.line = match (self.line, part) {
            (_, []) => self.line,
            (LineStart::Empty, b"\r") => LineStart::Cr,
            _ => LineStart::Text,
        };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn send(mut t: Transfer, message: &[u8], step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in message.chunks(step) {
            if t.feed(piece, &mut out) == Progress::Done {
                return out;
            }
        }
        assert_eq!(t.feed(b"", &mut out), Progress::Done);
        out
    }

    #[test]
    fn top_cuts_after_n_body_lines_under_every_split() {
        let msg = b"Subject: x\r\nFrom: y\n\r\n.one\ntwo\r\nthree\n";
        for step in 1..=msg.len() {
            assert_eq!(
                send(Transfer::top(0, 0), msg, step),
                b"Subject: x\r\nFrom: y\r\n\r\n.\r\n"
            );
            assert_eq!(
                send(Transfer::top(0, 1), msg, step),
                b"Subject: x\r\nFrom: y\r\n\r\n..one\r\n.\r\n"
            );
            assert_eq!(
                send(Transfer::top(0, 2), msg, step),
                b"Subject: x\r\nFrom: y\r\n\r\n..one\r\ntwo\r\n.\r\n"
            );
            let all = b"Subject: x\r\nFrom: y\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n";
            assert_eq!(send(Transfer::top(0, 3), msg, step), all);
            assert_eq!(send(Transfer::top(0, 99), msg, step), all);
            assert_eq!(send(Transfer::retr(0), msg, step), all);
        }
    }

    #[test]
    fn top_edge_cases() {
        // No blank line: the whole message is header.
        assert_eq!(
            send(Transfer::top(0, 0), b"A: b\nC: d", 3),
            b"A: b\r\nC: d\r\n.\r\n"
        );
        // A CR inside a line does not make it blank; an empty message is just the terminator.
        assert_eq!(
            send(Transfer::top(0, 0), b"A\r: b\n\nx\n", 1),
            b"A\r: b\r\n\r\n.\r\n"
        );
        assert_eq!(send(Transfer::top(0, 5), b"", 1), b".\r\n");
        // Unterminated last body line.
        assert_eq!(
            send(Transfer::top(0, 5), b"H: v\n\nbody", 4),
            b"H: v\r\n\r\nbody\r\n.\r\n"
        );
    }
}

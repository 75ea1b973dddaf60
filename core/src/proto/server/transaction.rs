//! The transaction state (RFC 1939 section 5): the open maildrop, DELE marks, and the
//! multi-line replies (LIST, UIDL, RETR, TOP) written a bounded piece at a time.

use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

use super::transfer::{Progress, Transfer};
use super::{CloseReason, Maildrop, MaildropError, MessageInfo, Server};
use crate::proto::codec::command::push_decimal;
use crate::proto::types::MessageNumber;

/// A multi-line reply being written a piece at a time.
pub(super) enum Streaming {
    Body(Transfer),
    Listing { uidl: bool, next: usize },
}

/// The open maildrop of a logged-in user.
#[derive(Default)]
pub(super) struct Mailbox {
    pub(super) user: alloc::string::String,
    pub(super) messages: Vec<MessageInfo>,
    pub(super) deleted: Vec<bool>,
}

impl Mailbox {
    pub(super) fn visible(&self) -> impl Iterator<Item = (usize, &MessageInfo)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted.get(*i).copied().unwrap_or(false))
    }

    pub(super) fn stat(&self) -> (usize, u64) {
        self.visible().fold((0, 0), |(n, size), (_, m)| {
            (n + 1, size.saturating_add(m.size))
        })
    }

    /// The index of message `number`, or the `-ERR` text.
    pub(super) fn index(&self, number: MessageNumber) -> Result<usize, &'static str> {
        let index = usize::try_from(number)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|i| *i < self.messages.len())
            .ok_or("no such message")?;
        if self.deleted.get(index).copied().unwrap_or(false) {
            return Err("message already deleted");
        }
        Ok(index)
    }
}

impl<M: Maildrop> Server<M> {
    pub(super) fn dele(&mut self, number: MessageNumber) {
        match self.mailbox.index(number) {
            Ok(index) => {
                if let Some(d) = self.mailbox.deleted.get_mut(index) {
                    *d = true;
                }
                self.ok(&format!("message {number} deleted"));
            }
            Err(text) => self.err(None, text),
        }
    }

    pub(super) fn listing(&mut self, number: Option<MessageNumber>, uidl: bool) {
        let Some(number) = number else {
            if uidl {
                self.ok("");
            } else {
                let (count, size) = self.mailbox.stat();
                self.ok(&format!("{count} messages ({size} octets)"));
            }
            self.streaming = Some(Streaming::Listing { uidl, next: 0 });
            return;
        };
        let entry = self
            .mailbox
            .index(number)
            .and_then(|i| self.mailbox.messages.get(i).ok_or("no such message"));
        match entry {
            Ok(m) if uidl => {
                let text = format!("{number} {}", m.uid);
                self.ok(&text);
            }
            Ok(m) => {
                let text = format!("{number} {}", m.size);
                self.ok(&text);
            }
            Err(text) => self.err(None, text),
        }
    }

    pub(super) fn retrieve(&mut self, number: MessageNumber, top: Option<u32>) {
        let index = match self.mailbox.index(number) {
            Ok(index) => index,
            Err(text) => return self.err(None, text),
        };
        let mut transfer = match top {
            Some(lines) => Transfer::top(index, lines),
            None => Transfer::retr(index),
        };
        // Read the first piece before answering, so a failing maildrop still gets a clean -ERR.
        let n = match self.read_piece(index, 0) {
            Ok(n) => n,
            Err(e) => return self.err(Some(e.code()), &e.to_string()),
        };
        match (top, self.mailbox.messages.get(index)) {
            (None, Some(m)) => {
                let text = format!("{} octets", m.size);
                self.ok(&text);
            }
            _ => self.ok(""),
        }
        let data = self.scratch.get(..n).unwrap_or_default();
        if transfer.feed(data, &mut self.out) == Progress::More {
            self.streaming = Some(Streaming::Body(transfer));
        }
    }

    /// Reads the next piece of a message into `scratch`, within what this `poll_transmit` may
    /// still hand out.
    fn read_piece(&mut self, index: usize, offset: u64) -> Result<usize, MaildropError> {
        let chunk = self.options.chunk_size.max(1);
        if self.scratch.len() != chunk {
            self.scratch = alloc::vec![0; chunk];
        }
        let want = chunk.saturating_sub(self.out.len()).max(1);
        let buf = self.scratch.get_mut(..want).unwrap_or_default();
        let n = self.maildrop.read(index, offset, buf)?;
        Ok(n.min(want))
    }

    pub(super) fn continue_streaming(&mut self, budget: usize) {
        match self.streaming.take() {
            None => {}
            Some(Streaming::Listing { uidl, mut next }) => {
                while self.out.len() < budget {
                    let Some(m) = self.mailbox.messages.get(next) else {
                        self.out.extend_from_slice(b".\r\n");
                        return;
                    };
                    if !self.mailbox.deleted.get(next).copied().unwrap_or(false) {
                        push_decimal(&mut self.out, next as u64 + 1);
                        self.out.push(b' ');
                        if uidl {
                            // The uid comes from the maildrop; it must not break the framing.
                            self.out
                                .extend(m.uid.bytes().filter(|b| !matches!(b, b'\r' | b'\n')));
                        } else {
                            push_decimal(&mut self.out, m.size);
                        }
                        self.out.extend_from_slice(b"\r\n");
                    }
                    next += 1;
                }
                self.streaming = Some(Streaming::Listing { uidl, next });
            }
            Some(Streaming::Body(mut transfer)) => {
                match self.read_piece(transfer.index, transfer.offset()) {
                    Ok(n) => {
                        let data = self.scratch.get(..n).unwrap_or_default();
                        if transfer.feed(data, &mut self.out) == Progress::More {
                            self.streaming = Some(Streaming::Body(transfer));
                        }
                    }
                    // Half a reply is out: no -ERR can follow, only closing the connection.
                    Err(e) => self.close(CloseReason::ReadFailed(e)),
                }
            }
        }
    }
}

//! Staging one message for APPEND: a spool file with CRLF line ends (IMAP's), its size and
//! SHA-256 counted while it is written, and its Date header kept for the internal date.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use imap_codec::imap_types::datetime::DateTime;
use sha2::{Digest, Sha256};

use super::ImapStore;
use crate::fetch::store::{Draft, Finished, StoreError};
use crate::fetch::sys;

/// Headers kept to find the Date header; a message whose header block is longer gets the
/// fetch time as its internal date.
const HEADER_LIMIT: usize = 64 * 1024;
/// Bytes gathered before each write to the spool file.
const WRITE_BUFFER: usize = 64 * 1024;

/// A message in the spool, ready to APPEND.
#[derive(Debug)]
pub(super) struct Spooled {
    pub(super) path: PathBuf,
    pub(super) size: u64,
    pub(super) sha256: [u8; 32],
    pub(super) date: Option<DateTime>,
    /// The POP UID, for errors.
    pub(super) label: String,
}

/// A draft being written into the spool.
pub(super) struct SpoolDraft<'s> {
    store: &'s mut ImapStore,
    file: Option<File>,
    path: PathBuf,
    label: String,
    buffer: Vec<u8>,
    hasher: Sha256,
    size: u64,
    /// The previous byte was CR.
    after_cr: bool,
    headers: Vec<u8>,
    headers_done: bool,
    poisoned: bool,
}

impl<'s> SpoolDraft<'s> {
    pub(super) fn create(
        store: &'s mut ImapStore,
        path: PathBuf,
        label: String,
    ) -> Result<Self, StoreError> {
        let file = sys::create_new(&path).map_err(|source| StoreError::Io {
            action: "create",
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            store,
            file: Some(file),
            path,
            label,
            buffer: Vec::with_capacity(WRITE_BUFFER),
            hasher: Sha256::new(),
            size: 0,
            after_cr: false,
            headers: Vec::new(),
            headers_done: false,
            poisoned: false,
        })
    }

    fn push(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        self.buffer.extend_from_slice(bytes);
        if !self.headers_done {
            let room = HEADER_LIMIT.saturating_sub(self.headers.len());
            self.headers
                .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
            if memchr::memmem::find(&self.headers, b"\r\n\r\n").is_some()
                || self.headers.len() >= HEADER_LIMIT
            {
                self.headers_done = true;
            }
        }
    }

    fn drain(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = match &self.file {
            Some(file) => sys::write_all(file, &self.buffer),
            None => Err(io::Error::other("the draft was finished")),
        };
        self.buffer.clear();
        result.map_err(|source| {
            self.poisoned = true;
            StoreError::Io {
                action: "write",
                path: self.path.clone(),
                source,
            }
        })
    }
}

impl io::Write for SpoolDraft<'_> {
    fn write(&mut self, input: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(io::Error::other("an earlier write failed"));
        }
        // LF without CR becomes CRLF: IMAP messages end lines with CRLF, and the size and hash
        // must be those of the bytes the server stores.
        let mut rest = input;
        while let Some(at) = memchr::memchr(b'\n', rest) {
            let (line, from_lf) = rest.split_at(at);
            let cr_before = match line.last() {
                Some(&b) => b == b'\r',
                None => self.after_cr,
            };
            self.push(line);
            self.push(if cr_before { b"\n" } else { b"\r\n" });
            self.after_cr = false;
            rest = from_lf.get(1..).unwrap_or_default();
        }
        if let Some(&last) = rest.last() {
            self.after_cr = last == b'\r';
        }
        self.push(rest);
        if self.buffer.len() >= WRITE_BUFFER {
            self.drain().map_err(StoreError::into_io)?;
        }
        Ok(input.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Draft for SpoolDraft<'_> {
    fn finish(mut self: Box<Self>) -> Result<Finished, StoreError> {
        if self.poisoned {
            return Err(StoreError::Other(io::Error::other(
                "an earlier write to the message failed",
            )));
        }
        self.drain()?;
        self.file = None;
        // Over the server's limit: the spool file goes with the draft (Drop).
        self.store
            .check_size(self.size, &self.label)
            .map_err(StoreError::from)?;
        let date = date_header(&self.headers);
        let spooled = Spooled {
            path: std::mem::take(&mut self.path),
            size: self.size,
            sha256: std::mem::take(&mut self.hasher).finalize().into(),
            date: Some(date.unwrap_or_else(now)),
            label: std::mem::take(&mut self.label),
        };
        self.store.staged.push(spooled);
        Ok(Finished::Staged)
    }
}

impl Drop for SpoolDraft<'_> {
    fn drop(&mut self) {
        // Unfinished: discard. Finished: the path was moved out.
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn now() -> DateTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let utc = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0)
        .unwrap_or_default()
        .fixed_offset();
    DateTime::unvalidated(utc)
}

/// The Date header of a header block, as an IMAP date-time, when it is readable.
pub(super) fn date_header(headers: &[u8]) -> Option<DateTime> {
    let text = String::from_utf8_lossy(headers);
    let mut value: Option<String> = None;
    for line in text.split("\r\n") {
        if line.is_empty() {
            break;
        }
        match &mut value {
            // A folded continuation of the Date header.
            Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
            Some(_) => break,
            None => {
                if let Some((name, rest)) = line.split_once(':')
                    && name.trim().eq_ignore_ascii_case("date")
                {
                    value = Some(rest.to_owned());
                }
            }
        }
    }
    let value = value?;
    // A trailing comment, "(UTC)", is common and not always accepted by the parser.
    let value = value.split('(').next().unwrap_or("").trim();
    let parsed = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    DateTime::try_from(parsed).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn date_headers_are_read_folded_and_with_comments() {
        let d = date_header(
            b"From: a\r\nDate: Tue, 1 Jul 2003 10:52:37\r\n +0200 (CEST)\r\n\r\nDate: x",
        )
        .unwrap();
        assert_eq!(d.as_ref().to_rfc3339(), "2003-07-01T10:52:37+02:00");
        assert!(
            date_header(b"Subject: x\r\n\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n").is_none()
        );
        assert!(date_header(b"Date: not a date\r\n\r\n").is_none());
    }
}

//! Delivery into Gmail with the API's `users.messages.import`: Gmail files each message as if
//! it had received it, spam classification and filters included (feature `gmail`).
//!
//! Each message is streamed into an unnamed spool file (bounded memory whatever its size),
//! hashed (SHA-256) and its `Message-ID` noted on the way. [`Draft::finish`] hands the fetch a
//! write-ahead intent ([`Finished::Outbound`]); the fetch journals it durably and only then
//! calls [`MailStore::deliver`], which uploads the spool file. Gmail's answer (200 with a
//! message id) becomes the receipt the journal records; only then may the POP message go.
//!
//! After a crash between an import and its journal line, [`MailStore::recover`] finds the
//! intent without a receipt and searches Gmail for its `Message-ID` (`rfc822msgid:`): found,
//! the message is recorded as delivered; not found, it is fetched again. A message without a
//! `Message-ID` cannot be searched for (Gmail has no content search), so in that one case a
//! crash at that moment may import it twice: at least once, never lost (ARCHITECTURE.md).

use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::{Draft, Finished, MailStore, Recovered, StoreError};
use crate::fetch::config::GmailConfig;
use crate::fetch::sys;

mod api;
mod error;

use api::{Api, Staged, hex};
pub use error::GmailError;

/// Receipts: `gmail:<id>:<sha256>`.
const RECEIPT_PREFIX: &str = "gmail:";
/// Write-ahead intents: `gmail-intent:<sha256>:<octets>:<message-id, base64url>`.
const INTENT_PREFIX: &str = "gmail-intent:";
/// The most of a header kept to find its `Message-ID`.
const HEADER_KEEP: usize = 64 * 1024;
/// Bytes collected before a write to the spool file.
const BUFFER_SIZE: usize = 64 * 1024;

/// Gmail as a mail store. See the module docs.
pub struct Gmail {
    config: Box<GmailConfig>,
    api: Api,
    /// The label ids, once resolved (once per store, i.e. per fetch of the account).
    label_ids: Option<Vec<String>>,
    /// The finished draft awaiting [`MailStore::deliver`].
    staged: Option<Staged>,
    delivered: usize,
    prepared: usize,
    recovered: Vec<Recovered>,
}

impl std::fmt::Debug for Gmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gmail")
            .field("account", &self.config.account)
            .field("endpoint", &self.config.endpoint)
            .finish_non_exhaustive()
    }
}

impl Gmail {
    /// A store importing into the mailbox `config` names. Nothing is sent until a message is.
    pub fn new(config: &GmailConfig) -> Self {
        Self {
            api: Api::new(config),
            config: Box::new(config.clone()),
            label_ids: None,
            staged: None,
            delivered: 0,
            prepared: 0,
            recovered: Vec::new(),
        }
    }

    /// The configured labels as ids: ids and names looked up in `users.labels.list`, missing
    /// names created when `create_labels` is set.
    fn label_ids(&mut self) -> Result<Vec<String>, GmailError> {
        if let Some(ids) = &self.label_ids {
            return Ok(ids.clone());
        }
        let mut known = self.api.labels()?;
        let mut ids = Vec::with_capacity(self.config.labels.len());
        for label in &self.config.labels {
            let found = |known: &[(String, String)]| {
                known
                    .iter()
                    .find(|(id, _)| id == label)
                    .or_else(|| {
                        known
                            .iter()
                            .find(|(_, name)| name.eq_ignore_ascii_case(label))
                    })
                    .map(|(id, _)| id.clone())
            };
            let id = match found(&known) {
                Some(id) => id,
                None if self.config.create_labels => match self.api.create_label(label)? {
                    Some(id) => id,
                    // Created meanwhile by someone else: look again.
                    None => {
                        known = self.api.labels()?;
                        found(&known).ok_or_else(|| self.no_such_label(label))?
                    }
                },
                None => return Err(self.no_such_label(label)),
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        self.label_ids = Some(ids.clone());
        Ok(ids)
    }

    fn no_such_label(&self, label: &str) -> GmailError {
        GmailError::NoSuchLabel {
            account: self.config.account.clone(),
            label: label.to_owned(),
        }
    }
}

impl MailStore for Gmail {
    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError> {
        self.staged = None;
        let spool = super::mda::spool_file().map_err(|source| StoreError::Io {
            action: "create a spool file in",
            path: std::env::temp_dir(),
            source,
        })?;
        Ok(Box::new(GmailDraft {
            cap: self.config.max_import_size,
            account: self.config.account.clone(),
            store: self,
            spool,
            buffer: Vec::with_capacity(BUFFER_SIZE),
            hasher: Sha256::new(),
            size: 0,
            header: Vec::new(),
            header_done: false,
            poisoned: false,
        }))
    }

    fn deliver(&mut self) -> Result<Option<String>, StoreError> {
        let Some(staged) = self.staged.take() else {
            return Err(StoreError::Other(io::Error::other(
                "no finished message to deliver",
            )));
        };
        let labels = self.label_ids()?;
        let id = self.api.import(&staged, &labels, &self.config)?;
        self.delivered += 1;
        Ok(Some(format!("{RECEIPT_PREFIX}{id}:{}", staged.sha_hex())))
    }

    fn prepare(&mut self) -> Result<Vec<String>, StoreError> {
        // Each import was final when Google answered 200.
        self.prepared = std::mem::take(&mut self.delivered);
        Ok(Vec::new())
    }

    fn publish(&mut self) -> Result<usize, StoreError> {
        Ok(std::mem::take(&mut self.prepared))
    }

    fn rollback(&mut self) -> bool {
        // An import cannot be taken back: a live intent is one whose outcome is unknown, and
        // only recovery's search may settle it.
        false
    }

    fn owns(&self, receipt: &str) -> bool {
        receipt.starts_with(RECEIPT_PREFIX) || receipt.starts_with(INTENT_PREFIX)
    }

    fn recover(&mut self, receipts: &[String], marks: &[String]) -> Result<Vec<bool>, StoreError> {
        // A receipt is Google's own word that the message is there.
        let found = receipts
            .iter()
            .map(|r| r.starts_with(RECEIPT_PREFIX))
            .collect();
        let recorded: Vec<&str> = receipts
            .iter()
            .filter_map(|r| r.rsplit(':').next())
            .collect();
        for mark in marks {
            let Some((intent, size, uid)) = super::parse_outbound_mark(mark) else {
                continue;
            };
            let Some(fields) = intent.strip_prefix(INTENT_PREFIX) else {
                continue;
            };
            let mut parts = fields.split(':');
            let (Some(sha), Some(_octets), encoded_id) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if recorded.contains(&sha) {
                continue;
            }
            let message_id = encoded_id
                .and_then(|e| URL_SAFE_NO_PAD.decode(e).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|m| !m.is_empty());
            // Without a Message-ID there is nothing to search: fetched and imported again.
            let Some(message_id) = message_id else {
                continue;
            };
            if let Some(id) = self.api.find(&message_id)? {
                self.recovered.push(Recovered {
                    uid: uid.to_owned(),
                    size,
                    receipt: format!("{RECEIPT_PREFIX}{id}:{sha}"),
                });
            }
        }
        Ok(found)
    }

    fn take_recovered(&mut self) -> Vec<Recovered> {
        std::mem::take(&mut self.recovered)
    }
}

impl From<GmailError> for StoreError {
    fn from(error: GmailError) -> Self {
        StoreError::Gmail(Box::new(error))
    }
}

/// A message being spooled for import.
struct GmailDraft<'s> {
    store: &'s mut Gmail,
    account: String,
    cap: u64,
    spool: std::fs::File,
    buffer: Vec<u8>,
    hasher: Sha256,
    /// Octets received.
    size: u64,
    /// The header so far, up to [`HEADER_KEEP`].
    header: Vec<u8>,
    header_done: bool,
    poisoned: bool,
}

impl GmailDraft<'_> {
    fn flush_buffer(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if let Err(source) = sys::write_all(&self.spool, &self.buffer) {
            self.poisoned = true;
            return Err(StoreError::Io {
                action: "spool the message in",
                path: std::env::temp_dir(),
                source,
            });
        }
        self.buffer.clear();
        Ok(())
    }

    fn keep_header(&mut self, data: &[u8]) {
        if self.header_done {
            return;
        }
        let room = HEADER_KEEP.saturating_sub(self.header.len());
        self.header
            .extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
        let ends = memchr::memmem::find(&self.header, b"\r\n\r\n").is_some()
            || memchr::memmem::find(&self.header, b"\n\n").is_some();
        if ends || self.header.len() >= HEADER_KEEP {
            self.header_done = true;
        }
    }
}

impl Write for GmailDraft<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(io::Error::other("an earlier write failed"));
        }
        self.size = self.size.saturating_add(data.len() as u64);
        // Past the cap nothing more is kept: the message will be refused, not sent.
        if self.size > self.cap {
            return Ok(data.len());
        }
        self.hasher.update(data);
        self.keep_header(data);
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= BUFFER_SIZE {
            self.flush_buffer().map_err(StoreError::into_io)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Draft for GmailDraft<'_> {
    fn finish(mut self: Box<Self>) -> Result<Finished, StoreError> {
        if self.poisoned {
            return Err(StoreError::Other(io::Error::other(
                "the message could not be spooled",
            )));
        }
        if self.size > self.cap {
            return Err(GmailError::TooLarge {
                account: self.account.clone(),
                size: self.size,
                cap: self.cap,
            }
            .into());
        }
        self.flush_buffer()?;
        let sha256: [u8; 32] = self.hasher.clone().finalize().into();
        let message_id = message_id(&self.header);
        let intent = format!(
            "{INTENT_PREFIX}{}:{}:{}",
            hex(&sha256),
            self.size,
            message_id
                .as_deref()
                .map(|m| URL_SAFE_NO_PAD.encode(m))
                .unwrap_or_default()
        );
        let Self {
            store, spool, size, ..
        } = *self;
        store.staged = Some(Staged {
            spool,
            size,
            sha256,
            message_id,
        });
        Ok(Finished::Outbound { intent })
    }
}

/// The `Message-ID` of a header, without its angle brackets, when it is one Gmail's
/// `rfc822msgid:` search can take (no spaces, quotes or control characters).
fn message_id(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim_end().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let mut value = value.trim().to_owned();
        // A folded header continues on lines that start with white space.
        for next in lines.by_ref() {
            if next.starts_with([' ', '\t']) {
                value.push_str(next.trim());
            } else {
                break;
            }
        }
        let id = value.trim().trim_start_matches('<').trim_end_matches('>');
        let usable = !id.is_empty()
            && id.len() <= 998
            && id
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"\"<>()\\".contains(c));
        return usable.then(|| id.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn message_ids_are_found_unfolded_and_checked() {
        assert_eq!(
            message_id(b"From: a\r\nMessage-ID: <abc@example.com>\r\n\r\nbody").as_deref(),
            Some("abc@example.com")
        );
        assert_eq!(
            message_id(b"message-id:\r\n <x.y@z>\r\nSubject: s\r\n\r\n").as_deref(),
            Some("x.y@z")
        );
        assert_eq!(
            message_id(b"Subject: s\r\n\r\nMessage-ID: <no@body>\r\n"),
            None
        );
        assert_eq!(message_id(b"Message-ID: <two words@x>\r\n\r\n"), None);
        assert_eq!(message_id(b"Message-ID: <>\r\n\r\n"), None);
    }
}

//! The IMAP destination: each message APPENDed to a folder, exactly once.
//!
//! How it fits the commit protocol (`fetch::commit`):
//! - a draft streams the message into a spool file beside the journal (the APPEND literal
//!   needs its size up front, and a 200 MB message must not sit in memory), with CRLF line
//!   ends, its size and SHA-256 counted on the way;
//! - [`prepare`](MailStore::prepare) connects, makes sure the folder exists, and hands out a
//!   *content receipt* per message: size, SHA-256, and the folder's UIDVALIDITY and UIDNEXT as
//!   an anchor. The journal writes them and fsyncs *before* any APPEND (write-ahead);
//! - [`publish`](MailStore::publish) APPENDs the batch (pipelined with LITERAL+); only when the
//!   server answered OK to every APPEND is the batch committed, so the POP message is deleted
//!   (or recorded seen) only after that;
//! - after a crash, [`recover`](MailStore::recover) looks for each pending receipt in the
//!   folder from its anchor UID (sizes first, then a SHA-256 of the candidates' bytes, read in
//!   1 MiB partial FETCHes): found means delivered, not found means fetch it again from the POP
//!   server, which still has it. No Message-ID is needed, and nothing is appended twice.

mod client;
mod error;
mod message;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::num::NonZeroU32;
use std::path::PathBuf;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Literal;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use sha2::{Digest, Sha256};

pub use error::ImapError;

use super::{Draft, MailStore, StoreError};
use crate::fetch::config::ImapConfig;
use crate::fetch::sys;
use client::{APPEND_WINDOW, Connection, FETCH_CHUNK};
use message::Spooled;

/// How long recovery waits before looking again for receipts it did not find.
const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_millis(1500);

/// What every IMAP receipt starts with.
pub(super) const RECEIPT_PREFIX: &str = "imap:1 ";

/// A folder on an IMAP server, as a [`MailStore`].
pub struct ImapStore {
    config: ImapConfig,
    spool: PathBuf,
    connection: Option<Connection>,
    /// Finished drafts, awaiting `prepare`.
    staged: Vec<Spooled>,
    /// Receipts handed out, awaiting `publish`.
    prepared: Vec<Spooled>,
    /// Where the last published batch landed (APPENDUID), for the journal.
    places: Vec<Option<String>>,
    /// The POP UID of the next draft, for errors.
    label: Option<String>,
    counter: u64,
}

impl std::fmt::Debug for ImapStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapStore")
            .field("server", &self.config.server)
            .field("folder", &self.config.folder)
            .finish_non_exhaustive()
    }
}

impl ImapStore {
    /// A store for `config`, staging messages in `spool` (created when needed). Connects at the
    /// first batch, not here.
    pub fn new(config: ImapConfig, spool: PathBuf) -> Self {
        Self {
            config,
            spool,
            connection: None,
            staged: Vec::new(),
            prepared: Vec::new(),
            places: Vec::new(),
            label: None,
            counter: 0,
        }
    }

    fn server(&self) -> String {
        format!("{}:{}", self.config.server, self.config.port)
    }

    /// The folder as an RFC 5092 IMAP URL, `imap://user@host:port/folder` (percent-encoded,
    /// the folder in UTF-8), to which a message's `;UIDVALIDITY=v/;UID=u` is added.
    fn url_base(&self) -> String {
        use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
        const USER: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        const FOLDER: &AsciiSet = &USER.remove(b'/');
        let host = if self.config.server.contains(':') {
            format!("[{}]", self.config.server)
        } else {
            self.config.server.clone()
        };
        format!(
            "imap://{}@{host}:{}/{}",
            utf8_percent_encode(&self.config.username, USER),
            self.config.port,
            utf8_percent_encode(&self.config.folder, FOLDER),
        )
    }

    /// Who this store logs in as, as written into its receipts.
    fn login_id(&self) -> String {
        hex(format!(
            "{}@{}:{}",
            self.config.username, self.config.server, self.config.port
        )
        .as_bytes())
    }

    fn connection(&mut self) -> Result<&mut Connection, ImapError> {
        if self.connection.is_none() {
            let connection = match Connection::open(&self.config) {
                Ok(c) => c,
                // A token refused before it expired: one forced refresh tells a new token from
                // a revoked grant (as for POP).
                #[cfg(feature = "oauth")]
                Err(e) if e.is_auth_failure() => match &self.config.credential {
                    crate::fetch::config::CredentialSource::OAuth(oauth) => {
                        crate::fetch::oauth::refresh_now(oauth)
                            .map_err(crate::fetch::secret_source::CredentialError::from)?;
                        Connection::open(&self.config)?
                    }
                    _ => return Err(e),
                },
                Err(e) => return Err(e),
            };
            self.connection = Some(connection);
        }
        self.connection.as_mut().ok_or_else(|| ImapError::Protocol {
            server: String::new(),
            what: "no connection".into(),
        })
    }

    /// Refuses a message over the server's APPENDLIMIT before anything is sent (connecting
    /// first, if this is the batch's first message).
    fn check_size(&mut self, size: u64, label: &str) -> Result<(), ImapError> {
        let server = self.server();
        match self.connection()?.append_limit() {
            Some(limit) if size > limit => Err(ImapError::TooBig {
                server,
                message: label.to_owned(),
                size,
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// The folder's UIDVALIDITY and UIDNEXT, creating the folder when it is missing and allowed.
    fn anchor(&mut self) -> Result<(u32, u32), ImapError> {
        let folder = self.config.folder.clone();
        let create = self.config.create_folder;
        let server = self.server();
        let status = |connection: &mut Connection| {
            let mailbox = mailbox(&folder, &server)?;
            connection.run(
                CommandBody::status(
                    mailbox,
                    vec![StatusDataItemName::UidValidity, StatusDataItemName::UidNext],
                )
                .map_err(|_| bad_folder(&folder, &server))?,
            )
        };
        let connection = self.connection()?;
        let mut done = status(connection)?;
        if !done.is_ok() {
            if !create {
                return Err(ImapError::Folder {
                    server,
                    folder,
                    reason: format!(
                        "{} (create it, or set create_folder = true in [accounts.NAME.imap])",
                        done.reason()
                    ),
                });
            }
            let created = connection.run(
                CommandBody::create(mailbox(&folder, &server)?)
                    .map_err(|_| bad_folder(&folder, &server))?,
            )?;
            if !created.is_ok() {
                return Err(ImapError::Folder {
                    server,
                    folder,
                    reason: format!("cannot create it: {}", created.reason()),
                });
            }
            done = status(connection)?;
            if !done.is_ok() {
                return Err(ImapError::Folder {
                    server,
                    folder,
                    reason: done.reason(),
                });
            }
        }
        let (mut validity, mut next) = (None, None);
        for data in &done.data {
            if let Data::Status { items, .. } = data {
                for item in items.iter() {
                    match item {
                        StatusDataItem::UidValidity(v) => validity = Some(v.get()),
                        StatusDataItem::UidNext(n) => next = Some(n.get()),
                        _ => {}
                    }
                }
            }
        }
        match (validity, next) {
            (Some(v), Some(n)) => Ok((v, n)),
            _ => Err(ImapError::Protocol {
                server,
                what: "STATUS without UIDVALIDITY and UIDNEXT".into(),
            }),
        }
    }

    /// APPENDs every prepared message; the first refusal is reported after the rest were tried.
    fn append_all(&mut self) -> Result<usize, ImapError> {
        let prepared = std::mem::take(&mut self.prepared);
        let folder = self.config.folder.clone();
        let server = self.server();
        let names = self.config.flags.clone();
        let flags: Vec<Flag<'_>> = names
            .iter()
            .filter_map(|f| Flag::try_from(f.as_str()).ok())
            .collect();
        let url_base = self.url_base();
        let mut places: Vec<Option<String>> = vec![None; prepared.len()];
        let connection = self.connection()?;
        let mut pending: std::collections::VecDeque<(String, usize)> = Default::default();
        let mut refused: Option<ImapError> = None;
        let mut local: Option<ImapError> = None;
        let mut settle = |connection: &mut Connection,
                          (tag, index): (String, usize),
                          refused: &mut Option<ImapError>|
         -> Result<(), ImapError> {
            let done = connection.finish(&tag)?;
            if !done.is_ok() {
                if refused.is_none() {
                    *refused = Some(refusal(&prepared, index, &folder, &server, &done));
                }
            } else if let Some(Code::AppendUid { uid_validity, uid }) = &done.code
                && let Some(slot) = places.get_mut(index)
            {
                // RFC 4315 UIDPLUS: where the message is now, for the journal.
                *slot = Some(format!("{url_base};UIDVALIDITY={uid_validity}/;UID={uid}"));
            }
            Ok(())
        };
        for (index, message) in prepared.iter().enumerate() {
            // A synchronizing literal (no LITERAL+; LITERAL- over 4096 octets, as on Gmail)
            // waits for the server's `+`, and the replies to the APPENDs before it are read
            // on the way: one round trip per message, not two.
            let non_sync = connection.non_sync(message.size);
            let body = CommandBody::append(
                mailbox(&folder, &server)?,
                flags.clone(),
                message.date.clone(),
                Literal::unvalidated(&b""[..]),
            )
            .map_err(|_| bad_folder(&folder, &server))?;
            let file = match sys::open_append(&message.path, false) {
                Ok(file) => file,
                Err(source) => {
                    // A local failure with the connection between commands: the APPENDs already
                    // sent are answered first, so none lands after a later run looked for it.
                    local = Some(ImapError::Spool {
                        path: message.path.clone(),
                        source,
                    });
                    break;
                }
            };
            let mut read_failure = None;
            let mut write_body =
                |out: &mut dyn Write| copy_spool(&file, message.size, out, &mut read_failure);
            let sent = connection.send_append(body, message.size, non_sync, &mut write_body);
            if let Some(source) = read_failure {
                // Mid-literal: the server still answers the earlier APPENDs, then waits for
                // bytes that never come; the connection is dropped after those answers.
                local = Some(ImapError::Spool {
                    path: message.path.clone(),
                    source,
                });
                break;
            }
            match sent? {
                Ok(tag) => pending.push_back((tag, index)),
                // Refused before the literal was sent (a synchronizing literal).
                Err(done) => {
                    if refused.is_none() {
                        refused = Some(refusal(&prepared, index, &folder, &server, &done));
                    }
                }
            }
            if pending.len() >= APPEND_WINDOW {
                connection.flush()?;
                if let Some(p) = pending.pop_front() {
                    settle(connection, p, &mut refused)?;
                }
            }
        }
        connection.flush()?;
        while let Some(p) = pending.pop_front() {
            settle(connection, p, &mut refused)?;
        }
        for message in &prepared {
            let _ = std::fs::remove_file(&message.path);
        }
        match local.or(refused) {
            Some(e) => Err(e),
            None => {
                self.places = places;
                Ok(prepared.len())
            }
        }
    }

    /// Which receipts are in their folder (see the module docs).
    fn find(&mut self, receipts: &[Receipt]) -> Result<Vec<bool>, ImapError> {
        let mut found = vec![false; receipts.len()];
        let mut folders: Vec<&str> = receipts.iter().map(|r| r.folder.as_str()).collect();
        folders.sort_unstable();
        folders.dedup();
        let server = self.server();
        for folder in folders {
            let connection = self.connection()?;
            let done = connection.run(
                CommandBody::examine(mailbox(folder, &server)?)
                    .map_err(|_| bad_folder(folder, &server))?,
            )?;
            if !done.is_ok() {
                // No folder, so none of its messages landed.
                continue;
            }
            let validity = done
                .codes
                .iter()
                .chain(done.code.iter())
                .find_map(|c| match c {
                    Code::UidValidity(v) => Some(v.get()),
                    _ => None,
                });
            let mine: Vec<usize> = (0..receipts.len())
                .filter(|&i| receipts.get(i).is_some_and(|r| r.folder == folder))
                .collect();
            // Another UIDVALIDITY: UIDs were renumbered, so the anchor says nothing; look at all.
            let from = mine
                .iter()
                .filter_map(|&i| receipts.get(i))
                .map(|r| {
                    if Some(r.uid_validity) == validity {
                        r.uid_next
                    } else {
                        1
                    }
                })
                .min()
                .unwrap_or(1)
                .max(1);
            let sizes = uid_sizes(connection, from, &server)?;
            let mut hashes: std::collections::HashMap<u32, [u8; 32]> = Default::default();
            let mut taken: std::collections::HashSet<u32> = Default::default();
            for &i in &mine {
                let Some(receipt) = receipts.get(i) else {
                    continue;
                };
                let floor = if Some(receipt.uid_validity) == validity {
                    receipt.uid_next
                } else {
                    1
                };
                for &(uid, size) in &sizes {
                    if uid < floor || size != receipt.size || taken.contains(&uid) {
                        continue;
                    }
                    let hash = match hashes.get(&uid) {
                        Some(h) => *h,
                        None => {
                            let h = hash_on_server(connection, uid, size, &server)?;
                            hashes.insert(uid, h);
                            h
                        }
                    };
                    if hash == receipt.sha256 {
                        taken.insert(uid);
                        if let Some(slot) = found.get_mut(i) {
                            *slot = true;
                        }
                        break;
                    }
                }
            }
        }
        Ok(found)
    }
}

/// Copies a spool file into an APPEND literal; a read failure is kept apart from the
/// connection's write failures, since only the connection's mean the server is gone.
fn copy_spool(
    mut file: &std::fs::File,
    size: u64,
    out: &mut dyn Write,
    read_failure: &mut Option<io::Error>,
) -> io::Result<()> {
    use std::io::Read;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let kind = e.kind();
                *read_failure = Some(e);
                return Err(io::Error::from(kind));
            }
        };
        out.write_all(buffer.get(..n).unwrap_or_default())?;
        copied += n as u64;
    }
    if copied != size {
        *read_failure = Some(io::Error::other("the staged message changed size"));
        return Err(io::Error::other("the staged message changed size"));
    }
    Ok(())
}

fn refusal(
    prepared: &[Spooled],
    index: usize,
    folder: &str,
    server: &str,
    done: &client::Done,
) -> ImapError {
    let message = prepared
        .get(index)
        .map_or_else(|| format!("#{}", index + 1), |m| m.label.clone());
    if done.code == Some(Code::TryCreate) {
        return ImapError::Folder {
            server: server.to_owned(),
            folder: folder.to_owned(),
            reason: format!("it is gone ({}); run again to create it", done.reason()),
        };
    }
    ImapError::Refused {
        server: server.to_owned(),
        folder: folder.to_owned(),
        message,
        reason: done.reason(),
    }
}

fn mailbox(folder: &str, server: &str) -> Result<Mailbox<'static>, ImapError> {
    Mailbox::try_from(modified_utf7(folder)).map_err(|_| bad_folder(folder, server))
}

/// A folder name as IMAP4rev1 spells it (RFC 3501 section 5.1.3, modified UTF-7): `Privé` is
/// `Priv&AOk-`, `&` is `&-`. Gmail labels and Dovecot folders with accents need it.
fn modified_utf7(name: &str) -> String {
    use base64::Engine;
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        out.push('&');
        out.push_str(&encoded.replace('/', ","));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            pending.extend(c.encode_utf16(&mut [0; 2]).iter());
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn bad_folder(folder: &str, server: &str) -> ImapError {
    ImapError::Folder {
        server: server.to_owned(),
        folder: folder.to_owned(),
        reason: "not a usable IMAP folder name (change folder in [accounts.NAME.imap])".into(),
    }
}

/// `UID FETCH from:* (UID RFC822.SIZE)`: the folder's messages from `from` on.
fn uid_sizes(
    connection: &mut Connection,
    from: u32,
    server: &str,
) -> Result<Vec<(u32, u64)>, ImapError> {
    let set = format!("{from}:*");
    let body = CommandBody::fetch(
        set.as_str(),
        MacroOrMessageDataItemNames::MessageDataItemNames(vec![
            MessageDataItemName::Uid,
            MessageDataItemName::Rfc822Size,
        ]),
        true,
    )
    .map_err(|_| ImapError::Protocol {
        server: server.to_owned(),
        what: "bad sequence set".into(),
    })?;
    let done = connection.run(body)?;
    if !done.is_ok() {
        return Err(ImapError::Command {
            server: server.to_owned(),
            command: "UID FETCH",
            reason: done.reason(),
        });
    }
    let mut out = Vec::new();
    for data in &done.data {
        if let Data::Fetch { items, .. } = data {
            let uid = client::fetched_uid(items);
            let size = items.as_ref().iter().find_map(|i| match i {
                MessageDataItem::Rfc822Size(s) => Some(u64::from(*s)),
                _ => None,
            });
            // `n:*` names the last message even when its UID is below n.
            if let (Some(uid), Some(size)) = (uid, size)
                && uid.get() >= from
            {
                out.push((uid.get(), size));
            }
        }
    }
    Ok(out)
}

/// SHA-256 of a message on the server, read in [`FETCH_CHUNK`] pieces (bounded memory).
fn hash_on_server(
    connection: &mut Connection,
    uid: u32,
    size: u64,
    server: &str,
) -> Result<[u8; 32], ImapError> {
    let mut hasher = Sha256::new();
    let mut offset: u64 = 0;
    let chunk = NonZeroU32::new(FETCH_CHUNK).unwrap_or(NonZeroU32::MIN);
    while offset < size {
        let start = u32::try_from(offset).map_err(|_| ImapError::Protocol {
            server: server.to_owned(),
            what: "a message over 4 GiB".into(),
        })?;
        let body = CommandBody::fetch(
            uid,
            MacroOrMessageDataItemNames::MessageDataItemNames(vec![MessageDataItemName::BodyExt {
                section: None,
                partial: Some((start, chunk)),
                peek: true,
            }]),
            true,
        )
        .map_err(|_| ImapError::Protocol {
            server: server.to_owned(),
            what: "bad UID".into(),
        })?;
        let done = connection.run(body)?;
        let bytes = done.data.iter().find_map(|d| match d {
            Data::Fetch { items, .. } => items.as_ref().iter().find_map(|i| match i {
                MessageDataItem::BodyExt { data, .. } => Some(
                    data.0
                        .as_ref()
                        .map(|s| s.as_ref().to_vec())
                        .unwrap_or_default(),
                ),
                _ => None,
            }),
            _ => None,
        });
        let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
            break;
        };
        hasher.update(&bytes);
        offset += bytes.len() as u64;
    }
    Ok(hasher.finalize().into())
}

/// A parsed receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Receipt {
    login: String,
    folder: String,
    uid_validity: u32,
    uid_next: u32,
    size: u64,
    sha256: [u8; 32],
}

impl Receipt {
    /// `imap:1 LOGIN FOLDER UIDVALIDITY UIDNEXT SIZE SHA256`, login and folder in hex.
    fn to_line(&self) -> String {
        format!(
            "{RECEIPT_PREFIX}{} {} {} {} {} {}",
            self.login,
            hex(self.folder.as_bytes()),
            self.uid_validity,
            self.uid_next,
            self.size,
            hex(&self.sha256)
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let mut parts = line.strip_prefix(RECEIPT_PREFIX)?.split(' ');
        let login = parts.next()?.to_owned();
        let folder = String::from_utf8(unhex(parts.next()?)?).ok()?;
        let uid_validity = parts.next()?.parse().ok()?;
        let uid_next = parts.next()?.parse().ok()?;
        let size = parts.next()?.parse().ok()?;
        let sha256 = unhex(parts.next()?)?.try_into().ok()?;
        Some(Self {
            login,
            folder,
            uid_validity,
            uid_next,
            size,
            sha256,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl MailStore for ImapStore {
    fn label(&mut self, message: &str) {
        self.label = Some(message.to_owned());
    }

    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError> {
        if !self.spool.is_dir() {
            match sys::create_dir(&self.spool) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(StoreError::Io {
                        action: "create the IMAP spool directory",
                        path: self.spool.clone(),
                        source,
                    });
                }
            }
        }
        self.counter += 1;
        let path = self
            .spool
            .join(format!("{}.{}.eml", std::process::id(), self.counter));
        let label = self
            .label
            .take()
            .unwrap_or_else(|| format!("#{}", self.counter));
        let draft = message::SpoolDraft::create(self, path, label)?;
        Ok(Box::new(draft))
    }

    fn prepare(&mut self) -> Result<Vec<String>, StoreError> {
        if self.staged.is_empty() {
            return Ok(Vec::new());
        }
        let (uid_validity, uid_next) = self.anchor().map_err(StoreError::from)?;
        let login = self.login_id();
        let folder = self.config.folder.clone();
        let receipts = self
            .staged
            .iter()
            .map(|m| {
                Receipt {
                    login: login.clone(),
                    folder: folder.clone(),
                    uid_validity,
                    uid_next,
                    size: m.size,
                    sha256: m.sha256,
                }
                .to_line()
            })
            .collect();
        self.prepared.append(&mut self.staged);
        Ok(receipts)
    }

    fn publish(&mut self) -> Result<usize, StoreError> {
        if self.prepared.is_empty() {
            return Ok(0);
        }
        let result = self.append_all();
        if result.is_err() {
            // The connection may be mid-reply: a later batch (recovery) starts afresh.
            self.connection = None;
        }
        Ok(result?)
    }

    fn take_places(&mut self) -> Vec<Option<String>> {
        std::mem::take(&mut self.places)
    }

    fn rollback(&mut self) -> bool {
        for message in self.staged.drain(..).chain(self.prepared.drain(..)) {
            let _ = std::fs::remove_file(&message.path);
        }
        true
    }

    fn owns(&self, receipt: &str) -> bool {
        Receipt::parse(receipt).is_some_and(|r| r.login == self.login_id())
    }

    fn recover(&mut self, receipts: &[String], _marks: &[String]) -> Result<Vec<bool>, StoreError> {
        let parsed: Vec<Option<Receipt>> = receipts.iter().map(|r| Receipt::parse(r)).collect();
        let valid: Vec<Receipt> = parsed.iter().flatten().cloned().collect();
        if valid.is_empty() {
            return Ok(vec![false; receipts.len()]);
        }
        let mut found = self.find(&valid).map_err(StoreError::from)?;
        if found.contains(&false) {
            // A killed run's last APPENDs may still be in the server's queue for the old
            // connection: look once more after they had time to land (a rare path: crashes).
            std::thread::sleep(RECHECK_AFTER);
            found = self.find(&valid).map_err(StoreError::from)?;
        }
        // Recovery selected a folder; start the fetch's batches on a fresh connection.
        if let Some(connection) = self.connection.take() {
            connection.logout();
        }
        let mut found = found.into_iter();
        Ok(parsed
            .iter()
            .map(|p| p.is_some() && found.next().unwrap_or(false))
            .collect())
    }

    fn tidy(&mut self) -> Result<(), StoreError> {
        // Spool files only matter within a session; the account lock is held, so any left
        // are from a run that died.
        if let Ok(entries) = std::fs::read_dir(&self.spool) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

impl Drop for ImapStore {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.logout();
        }
    }
}

impl From<ImapError> for StoreError {
    fn from(e: ImapError) -> Self {
        StoreError::Imap(Box::new(e))
    }
}

#[cfg(test)]
mod receipt_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn folder_names_are_modified_utf7() {
        assert_eq!(modified_utf7("INBOX"), "INBOX");
        assert_eq!(modified_utf7("Privé"), "Priv&AOk-");
        assert_eq!(modified_utf7("A&B"), "A&-B");
        assert_eq!(modified_utf7("日本語"), "&ZeVnLIqe-");
        assert_eq!(modified_utf7("Lists/ISP"), "Lists/ISP");
    }

    #[test]
    fn receipts_round_trip() {
        let receipt = Receipt {
            login: hex(b"me@example.com@imap.example.com:993"),
            folder: "From ISP/2026 ü".into(),
            uid_validity: 1_700_000_000,
            uid_next: 42,
            size: 5_000,
            sha256: [7; 32],
        };
        let line = receipt.to_line();
        assert!(line.starts_with(RECEIPT_PREFIX));
        assert_eq!(Receipt::parse(&line), Some(receipt));
        assert_eq!(Receipt::parse("imap:1 x"), None);
        assert_eq!(Receipt::parse("maildir:/x/new/y"), None);
    }
}

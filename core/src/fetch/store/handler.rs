//! The caller's handler as a destination: the store behind [`Poller`](crate::fetch::poller).
//!
//! A draft stages the body as received (CRLF, dot-unstuffed): in memory up to a limit, then in
//! an unnamed temporary file. [`Draft::finish`] calls the handler with the message; `Ok` means
//! the handler took it, so the message counts as stored ([`Finished::Stored`], journaled by the
//! commit protocol before any DELE); `Err` means it did not, and the message stays on the server.
//!
//! The handler is told which message it gets (UID, listed size, number) through
//! [`NextMessage`], set by the session before each draft: the [`MailStore`] trait knows nothing
//! of UIDs, and a shared slot keeps it that way.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Draft, Finished, MailStore, StoreError};
use crate::proto::MessageNumber;

/// What a handler returns when it did not take a message: any error, kept as the reason.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// The caller's handler: `Ok` once the message is safely in the caller's hands.
pub type Handler<'h> = dyn FnMut(Message<'_>) -> Result<(), HandlerError> + Send + 'h;

/// Bodies up to this size stay in memory before the handler sees them (1 MiB).
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 20;

/// Which message the next draft is, as the session knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    /// Its UID (UIDL).
    pub uid: String,
    /// Its size as the server listed it.
    pub size: u64,
    /// Its message number in this session.
    pub number: MessageNumber,
}

/// The slot through which the session names the next draft's message.
pub type NextMessage = Arc<Mutex<Option<Incoming>>>;

/// A body staged for the handler.
#[derive(Debug)]
enum Staged {
    Memory(Vec<u8>),
    File { file: File, len: u64 },
}

/// One message, as the handler gets it.
pub struct Message<'a> {
    incoming: &'a Incoming,
    body: &'a mut Staged,
}

impl Message<'_> {
    /// The message's UID: stable across sessions, so a handler can skip one it has seen (see
    /// the exactly-once notes in `ARCHITECTURE.md`).
    pub fn uid(&self) -> &str {
        &self.incoming.uid
    }

    /// Its size as the server listed it (octets on the wire).
    pub fn size(&self) -> u64 {
        self.incoming.size
    }

    /// Its message number in this session.
    pub fn number(&self) -> MessageNumber {
        self.incoming.number
    }

    /// Octets of the body as staged (CRLF line ends, dot-unstuffed).
    pub fn len(&self) -> u64 {
        match &*self.body {
            Staged::Memory(bytes) => bytes.len() as u64,
            Staged::File { len, .. } => *len,
        }
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body, when it was small enough to stay in memory.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &*self.body {
            Staged::Memory(bytes) => Some(bytes),
            Staged::File { .. } => None,
        }
    }

    /// A reader over the whole body, from its start.
    pub fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        match &mut *self.body {
            Staged::Memory(bytes) => Ok(Box::new(io::Cursor::new(bytes.as_slice()))),
            Staged::File { file, len } => {
                file.seek(SeekFrom::Start(0))?;
                Ok(Box::new((&*file).take(*len)))
            }
        }
    }

    /// The whole body in memory.
    pub fn to_vec(&mut self) -> io::Result<Vec<u8>> {
        if let Some(bytes) = self.bytes() {
            return Ok(bytes.to_vec());
        }
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        self.reader()?.read_to_end(&mut out)?;
        Ok(out)
    }
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("uid", &self.incoming.uid)
            .field("size", &self.incoming.size)
            .field("len", &self.len())
            .finish()
    }
}

/// A [`MailStore`] whose destination is a handler (see the module docs).
pub struct HandlerStore<'h> {
    handler: &'h mut Handler<'h>,
    next: NextMessage,
    memory_limit: usize,
    spill_dir: PathBuf,
}

impl<'h> HandlerStore<'h> {
    /// A store calling `handler`, keeping bodies up to `memory_limit` octets in memory and
    /// larger ones in a temporary file in `spill_dir` (a private directory: it is mail).
    pub fn new(handler: &'h mut Handler<'h>, memory_limit: usize, spill_dir: &Path) -> Self {
        Self {
            handler,
            next: NextMessage::default(),
            memory_limit,
            spill_dir: spill_dir.to_owned(),
        }
    }

    /// The slot to name the next draft's message in.
    pub fn next_message(&self) -> NextMessage {
        Arc::clone(&self.next)
    }
}

impl MailStore for HandlerStore<'_> {
    fn draft(&mut self) -> Result<Box<dyn Draft + '_>, StoreError> {
        let incoming = match self.next.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let incoming = incoming.ok_or_else(|| {
            StoreError::Other(io::Error::other(
                "a handler draft was started without naming its message",
            ))
        })?;
        Ok(Box::new(HandlerDraft {
            store: self,
            incoming,
            body: Staged::Memory(Vec::new()),
            failed: false,
        }))
    }

    fn prepare(&mut self) -> Result<Vec<String>, StoreError> {
        // Every message was final when its handler returned.
        Ok(Vec::new())
    }

    fn publish(&mut self) -> Result<usize, StoreError> {
        Ok(0)
    }

    fn owns(&self, _receipt: &str) -> bool {
        // Handler messages have no receipt; any receipt is another destination's.
        false
    }

    fn recover(&mut self, receipts: &[String], _marks: &[String]) -> Result<Vec<bool>, StoreError> {
        Ok(vec![false; receipts.len()])
    }
}

struct HandlerDraft<'s, 'h> {
    store: &'s mut HandlerStore<'h>,
    incoming: Incoming,
    body: Staged,
    failed: bool,
}

impl HandlerDraft<'_, '_> {
    fn spill(&mut self, buffered: &[u8]) -> io::Result<()> {
        let mut file = unnamed_file(&self.store.spill_dir).map_err(|source| {
            StoreError::Io {
                action: "create a temporary file in",
                path: self.store.spill_dir.clone(),
                source,
            }
            .into_io()
        })?;
        file.write_all(buffered)?;
        self.body = Staged::File {
            file,
            len: buffered.len() as u64,
        };
        Ok(())
    }
}

/// A new file in `dir` that no name points to, so it goes when closed, however the process
/// ends: `O_TMPFILE` where the file system has it, else a file removed right after creation.
fn unnamed_file(dir: &Path) -> io::Result<File> {
    use std::fs::OpenOptions;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    let mut options = OpenOptions::new();
    options.read(true).write(true);
    #[cfg(unix)]
    options.mode(0o600);
    #[cfg(target_os = "linux")]
    {
        let mut unnamed = options.clone();
        match unnamed.custom_flags(libc::O_TMPFILE).open(dir) {
            Ok(file) => return Ok(file),
            // Not every file system has O_TMPFILE.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    options.create_new(true);
    loop {
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".popwire-spill-{}-{n}", std::process::id()));
        match options.open(&path) {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

impl Write for HandlerDraft<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier write of this message failed"));
        }
        let result = match &mut self.body {
            Staged::Memory(bytes)
                if bytes.len().saturating_add(buf.len()) > self.store.memory_limit =>
            {
                let mut all = std::mem::take(bytes);
                all.extend_from_slice(buf);
                self.spill(&all)
            }
            Staged::Memory(bytes) => {
                bytes.extend_from_slice(buf);
                Ok(())
            }
            Staged::File { file, len } => file.write_all(buf).map(|()| {
                *len = len.saturating_add(buf.len() as u64);
            }),
        };
        match result {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Draft for HandlerDraft<'_, '_> {
    fn finish(mut self: Box<Self>) -> Result<Finished, StoreError> {
        if self.failed {
            return Err(StoreError::Other(io::Error::other(
                "an earlier write of this message failed",
            )));
        }
        let this = &mut *self;
        let message = Message {
            incoming: &this.incoming,
            body: &mut this.body,
        };
        match (this.store.handler)(message) {
            Ok(()) => Ok(Finished::Stored { receipt: None }),
            Err(source) => Err(StoreError::Handler {
                uid: this.incoming.uid.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn deliver(
        store: &mut HandlerStore<'_>,
        uid: &str,
        body: &[u8],
    ) -> Result<Finished, StoreError> {
        *store.next_message().lock().unwrap() = Some(Incoming {
            uid: uid.into(),
            size: body.len() as u64,
            number: 1,
        });
        let mut draft = store.draft()?;
        // In pieces, as the network hands them over.
        for piece in body.chunks(7) {
            draft.write_all(piece)?;
        }
        draft.finish()
    }

    #[test]
    fn small_bodies_stay_in_memory_large_ones_spill_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let mut handler = |mut m: Message<'_>| -> Result<(), HandlerError> {
            seen.push((m.uid().to_owned(), m.bytes().is_some(), m.to_vec()?));
            Ok(())
        };
        let mut store = HandlerStore::new(&mut handler, 16, dir.path());
        let small = b"Subject: a\r\n\r\n".to_vec();
        let large = b"Subject: b\r\n\r\nlonger than sixteen octets\r\n".to_vec();
        assert_eq!(
            deliver(&mut store, "u1", &small).unwrap(),
            Finished::Stored { receipt: None }
        );
        assert_eq!(
            deliver(&mut store, "u2", &large).unwrap(),
            Finished::Stored { receipt: None }
        );
        assert_eq!(store.commit().unwrap(), 0);
        drop(store);
        assert_eq!(
            seen,
            [
                ("u1".to_owned(), true, small),
                ("u2".to_owned(), false, large)
            ]
        );
    }

    #[test]
    fn a_handler_error_is_a_store_error_naming_the_uid() {
        let dir = tempfile::tempdir().unwrap();
        let mut handler =
            |_: Message<'_>| -> Result<(), HandlerError> { Err("ticket system down".into()) };
        let mut store = HandlerStore::new(&mut handler, 16, dir.path());
        let error = deliver(&mut store, "u9", b"x\r\n").unwrap_err();
        assert!(error.is_message_refused());
        assert_eq!(
            error.to_string(),
            "the handler did not take message u9: ticket system down (it stays on the server and is retried)"
        );
    }

    #[test]
    fn a_draft_without_a_named_message_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut handler = |_: Message<'_>| -> Result<(), HandlerError> { Ok(()) };
        let mut store = HandlerStore::new(&mut handler, 16, dir.path());
        assert!(store.draft().is_err());
    }
}

//! What the server role stores mail in: the [`Maildrop`] trait, and [`MemoryMaildrop`], an
//! in-memory implementation for tests, fixtures and the demo.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::proto::codec::DotStuffer;
use crate::proto::secret::Secret;
use crate::proto::types::ResponseCode;

/// The size a stored message counts as in LIST and STAT (RFC 1939): with CRLF line ends (a bare
/// LF counts two, a missing final CRLF counts), before dot-stuffing.
pub fn wire_size(message: &[u8]) -> u64 {
    DotStuffer::wire_size(message)
}

/// One message as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// Size in octets as LIST and STAT report it: the message with CRLF line ends, before
    /// dot-stuffing (RFC 1939). For stored bytes, [`wire_size`] computes it.
    pub size: u64,
    /// The unique-id for UIDL: 1 to 70 octets in 0x21..=0x7E, stable across sessions.
    pub uid: String,
}

/// A maildrop operation failed. The variant picks the RFC 2449 response code the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaildropError {
    /// Another session holds the lock: `-ERR [IN-USE]`.
    #[error("maildrop already locked by another session")]
    InUse,
    /// A failure that may go away by itself: `-ERR [SYS/TEMP] <text>`.
    #[error("{0}")]
    Temporary(String),
    /// A failure that will not go away without an administrator: `-ERR [SYS/PERM] <text>`.
    #[error("{0}")]
    Permanent(String),
}

impl MaildropError {
    /// The response code sent with the `-ERR`.
    pub fn code(&self) -> ResponseCode {
        match self {
            Self::InUse => ResponseCode::InUse,
            Self::Temporary(_) => ResponseCode::SysTemp,
            Self::Permanent(_) => ResponseCode::SysPerm,
        }
    }
}

/// The storage behind a [`Server`](super::Server): users, their passwords, and their messages.
///
/// The server calls it only from [`Server::poll_transmit`](super::Server::poll_transmit), one
/// call at a time, and never holds more of a message than one [`read`](Self::read) returns.
/// Message indices are 0-based positions in the list [`open`](Self::open) returned; they stay
/// valid for the whole session (deleted messages keep their index).
///
/// A session that ends without QUIT never calls [`commit`](Self::commit): release any lock when
/// the maildrop (or the server owning it) is dropped.
pub trait Maildrop {
    /// The password of `user`, or `None` for an unknown user. Plaintext, because SCRAM and APOP
    /// must compute with it.
    fn password(&mut self, user: &str) -> Option<Secret>;

    /// Opens (and locks) `user`'s maildrop after a successful login, listing its messages.
    fn open(&mut self, user: &str) -> Result<Vec<MessageInfo>, MaildropError>;

    /// Copies message `index`'s stored bytes starting at `offset` into `buf`, like
    /// `std::io::Read::read`, and returns how many were copied; 0 means the end of the message.
    /// Line ends may be LF or CRLF: the server converts to CRLF and dot-stuffs on the way out.
    fn read(&mut self, index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError>;

    /// QUIT in the transaction state: deletes the messages at these indices (ascending, maybe
    /// none) and releases the lock. An error becomes `-ERR <code> some deleted messages not
    /// removed` (RFC 1939 lets deletion fail).
    fn commit(&mut self, deleted: &[usize]) -> Result<(), MaildropError>;

    /// A fresh server nonce for one SCRAM exchange: at least 16 printable ASCII characters
    /// other than `,`, from a cryptographically secure random source (the engine has none).
    fn scram_nonce(&mut self) -> String;

    /// The SCRAM salt for `user`. Passwords are stored in plaintext here, so the salt protects
    /// nothing at rest; the default derives a stable one from the user name, which is what a
    /// client caching its salted password expects. Must not be empty.
    fn scram_salt(&mut self, user: &str) -> Vec<u8> {
        let mut salt = b"popwire-salt:".to_vec();
        salt.extend_from_slice(user.as_bytes());
        salt
    }
}

impl<M: Maildrop + ?Sized> Maildrop for &mut M {
    fn password(&mut self, user: &str) -> Option<Secret> {
        (**self).password(user)
    }
    fn open(&mut self, user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        (**self).open(user)
    }
    fn read(&mut self, index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError> {
        (**self).read(index, offset, buf)
    }
    fn commit(&mut self, deleted: &[usize]) -> Result<(), MaildropError> {
        (**self).commit(deleted)
    }
    fn scram_nonce(&mut self) -> String {
        (**self).scram_nonce()
    }
    fn scram_salt(&mut self, user: &str) -> Vec<u8> {
        (**self).scram_salt(user)
    }
}

/// A maildrop held in memory: a list of users sharing one list of messages.
///
/// Messages are stored as given (LF or CRLF line ends); their unique-ids are
/// `<serial>-<hash>` (the 1-based order of insertion and an FNV-1a hash of the content), so
/// the same messages added in the same order get the same ids in every run. QUIT removes the
/// deleted messages.
///
/// SCRAM nonces are a seed plus a counter: predictable, so fine for tests and fixtures. Anything
/// reachable from an untrusted network should call [`set_nonce_seed`](Self::set_nonce_seed)
/// with random text first, and again now and then.
///
/// ```
/// use popwire::proto::server::MemoryMaildrop;
/// let mut drop = MemoryMaildrop::new().with_user("alice", "wonderland");
/// let uid = drop.add_message("Subject: hi\n\nhello\n");
/// assert_eq!(uid, "1-8f52e4d4");
/// assert_eq!(drop.len(), 1);
/// ```
#[derive(Clone)]
pub struct MemoryMaildrop {
    users: Vec<(String, Secret)>,
    messages: Vec<(String, Vec<u8>)>,
    serial: u64,
    nonce_seed: String,
    nonces: u64,
}

impl Default for MemoryMaildrop {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            messages: Vec::new(),
            serial: 0,
            nonce_seed: String::from("popwire-memory-nonce-"),
            nonces: 0,
        }
    }
}

impl MemoryMaildrop {
    /// An empty maildrop with no users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user, builder style.
    pub fn with_user(mut self, name: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.add_user(name, password);
        self
    }

    /// Adds a message, builder style.
    pub fn with_message(mut self, message: impl Into<Vec<u8>>) -> Self {
        self.add_message(message);
        self
    }

    /// Adds (or replaces) a user.
    pub fn add_user(&mut self, name: impl Into<String>, password: impl Into<Secret>) {
        let name = name.into();
        let password = password.into();
        match self.users.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = password,
            None => self.users.push((name, password)),
        }
    }

    /// Adds a message and returns its unique-id.
    pub fn add_message(&mut self, message: impl Into<Vec<u8>>) -> String {
        let message = message.into();
        self.serial += 1;
        let uid = format!("{}-{:08x}", self.serial, fnv1a32(&message));
        self.messages.push((uid.clone(), message));
        uid
    }

    /// Adds a message under a unique-id of the caller's choice (1 to 70 octets in 0x21..=0x7E).
    pub fn add_message_with_uid(&mut self, uid: impl Into<String>, message: impl Into<Vec<u8>>) {
        self.serial += 1;
        self.messages.push((uid.into(), message.into()));
    }

    /// The stored messages, in order, as given.
    pub fn messages(&self) -> impl Iterator<Item = &[u8]> {
        self.messages.iter().map(|(_, m)| m.as_slice())
    }

    /// The unique-ids, in order.
    pub fn uids(&self) -> impl Iterator<Item = &str> {
        self.messages.iter().map(|(u, _)| u.as_str())
    }

    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when no message is stored.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Sets the text SCRAM nonces start with (printable ASCII other than `,`); a counter
    /// follows it. Use fresh random text when the server faces an untrusted network.
    pub fn set_nonce_seed(&mut self, seed: impl Into<String>) {
        self.nonce_seed = seed.into();
    }
}

impl fmt::Debug for MemoryMaildrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryMaildrop")
            .field(
                "users",
                &self
                    .users
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("messages", &self.messages.len())
            .finish_non_exhaustive()
    }
}

impl Maildrop for MemoryMaildrop {
    fn password(&mut self, user: &str) -> Option<Secret> {
        self.users
            .iter()
            .find(|(n, _)| n == user)
            .map(|(_, p)| p.clone())
    }

    fn open(&mut self, _user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        Ok(self
            .messages
            .iter()
            .map(|(uid, m)| MessageInfo {
                size: DotStuffer::wire_size(m),
                uid: uid.clone(),
            })
            .collect())
    }

    fn read(&mut self, index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError> {
        let (_, message) = self
            .messages
            .get(index)
            .ok_or_else(|| MaildropError::Permanent(String::from("no such message")))?;
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|o| message.get(o..))
            .unwrap_or_default();
        let n = rest.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
            to.copy_from_slice(from);
        }
        Ok(n)
    }

    fn commit(&mut self, deleted: &[usize]) -> Result<(), MaildropError> {
        if deleted.iter().any(|i| *i >= self.messages.len()) {
            return Err(MaildropError::Permanent(String::from(
                "message index out of range",
            )));
        }
        let mut gone = alloc::vec![false; self.messages.len()];
        for i in deleted {
            if let Some(g) = gone.get_mut(*i) {
                *g = true;
            }
        }
        let mut marks = gone.into_iter();
        self.messages.retain(|_| !marks.next().unwrap_or(false));
        Ok(())
    }

    fn scram_nonce(&mut self) -> String {
        self.nonces += 1;
        format!("{}{:016x}", self.nonce_seed, self.nonces)
    }
}

/// FNV-1a, 32 bits: a stable, dependency-free content hash for unique-ids.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

//! `Engine`: the sans-IO client engine, for drivers written in Kotlin or Swift and for replaying
//! the shared transcripts. Bytes in (`handle_input`), events out (`poll_event`); commands in
//! (each returns its id), bytes out (`poll_transmit`). No I/O, no threads, no clock.

use std::sync::{Arc, Mutex, MutexGuard};

use popwire::proto::{
    self, AuthMethod, AuthRequest, ClientOptions, CommandId, Credential, Event, Limits, Reply,
    Secret,
};

use crate::errors::PopError;
use crate::types::{Capability, ListEntry, Security, UidlEntry, capabilities};

/// The engine's options. `EngineOptions()` gives the core's defaults.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EngineOptions {
    /// Implicit TLS (the driver runs TLS before any byte), STLS, or none.
    pub security: Security,
    /// Run CAPA (and STLS) automatically after the greeting.
    #[uniffi(default = true)]
    pub negotiate: bool,
    /// Allow sending a password without TLS (tests, loopback only).
    #[uniffi(default = false)]
    pub allow_cleartext_password: bool,
    /// Pipeline commands when the server offers PIPELINING.
    #[uniffi(default = true)]
    pub pipelining: bool,
    /// Accept UIDs outside RFC 1939's character set.
    #[uniffi(default = false)]
    pub lenient_uids: bool,
    /// Longest status line; 0: the default (512).
    #[uniffi(default = 0)]
    pub status_line_limit: u64,
    /// Longest body line; 0: the default.
    #[uniffi(default = 0)]
    pub data_line_limit: u64,
    /// Largest multi-line listing; 0: the default.
    #[uniffi(default = 0)]
    pub listing_limit: u64,
}

impl From<EngineOptions> for ClientOptions {
    fn from(o: EngineOptions) -> Self {
        let d = Limits::default();
        let pick = |v: u64, default: usize| {
            if v == 0 {
                default
            } else {
                usize::try_from(v).unwrap_or(usize::MAX)
            }
        };
        ClientOptions {
            security: o.security.into(),
            negotiate: o.negotiate,
            allow_cleartext_password: o.allow_cleartext_password,
            pipelining: o.pipelining,
            lenient_uids: o.lenient_uids,
            sasl_initial_response: true,
            limits: Limits {
                status_line: pick(o.status_line_limit, d.status_line),
                data_line: pick(o.data_line_limit, d.data_line),
                listing: pick(o.listing_limit, d.listing),
                input_buffer: d.input_buffer,
            },
            ..ClientOptions::default()
        }
    }
}

/// A successful reply.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum EngineReply {
    /// `+OK` with its text (DELE, NOOP, RSET, UTF8, LANG with a tag, ...).
    Ok {
        /// The text.
        text: String,
    },
    /// Logged in.
    Authenticated,
    /// `STAT`.
    Stat {
        /// Messages.
        count: u32,
        /// Octets.
        size: u64,
    },
    /// `LIST`.
    Listing {
        /// Entries.
        entries: Vec<ListEntry>,
    },
    /// `LIST n`.
    ListingOne {
        /// Entry.
        entry: ListEntry,
    },
    /// `UIDL`.
    Uidl {
        /// Entries.
        entries: Vec<UidlEntry>,
    },
    /// `UIDL n`.
    UidlOne {
        /// Entry.
        entry: UidlEntry,
    },
    /// `CAPA`.
    Capabilities {
        /// Capabilities.
        capabilities: Vec<Capability>,
    },
    /// `LANG` without a tag: (tag, description) pairs.
    Languages {
        /// Languages.
        languages: Vec<Language>,
    },
    /// `RETR`/`TOP` finished; the body came as `Body` events.
    Retrieved {
        /// Octets delivered.
        octets: u64,
    },
    /// `STLS` accepted: run the TLS handshake, then call `tls_established()`.
    TlsReady,
    /// `QUIT` done.
    Closed {
        /// The server's goodbye.
        text: String,
    },
}

/// One `LANG` entry.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Language {
    /// The tag.
    pub tag: String,
    /// The description.
    pub description: String,
}

/// Why a command failed, as data (in `Completed` events).
#[derive(Debug, Clone, uniffi::Record)]
pub struct EngineFailure {
    /// The core's stable `family:kind` name, e.g. `server:refused`, `policy:apop`.
    pub kind: String,
    /// The core's error class (`auth`, `server`, `config`, ...), the same that picks the
    /// `PopError` variant.
    pub error_class: String,
    /// True when trying again later may work.
    pub temporary: bool,
    /// For `-ERR`: the response code, when sent.
    pub code: Option<String>,
    /// For `-ERR`: the server's text; otherwise the message.
    pub text: String,
}

impl From<&proto::Error> for EngineFailure {
    fn from(e: &proto::Error) -> Self {
        let (code, text) = match e {
            proto::Error::Server(s) => (
                s.code.as_ref().map(|c| c.as_str().to_string()),
                s.text.clone(),
            ),
            other => (None, other.to_string()),
        };
        Self {
            kind: e.kind().into(),
            error_class: e.class().as_str().into(),
            temporary: e.is_temporary(),
            code,
            text,
        }
    }
}

/// What the engine has to report.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum EngineEvent {
    /// The server's greeting.
    Greeting {
        /// Text after `+OK `.
        text: String,
        /// The APOP timestamp, when sent.
        apop_timestamp: Option<String>,
    },
    /// Negotiation finished: ready to log in.
    Ready {
        /// The capabilities.
        capabilities: Vec<Capability>,
    },
    /// Negotiation asks the driver to run the TLS handshake now (then `tls_established()`).
    TlsReady,
    /// Body bytes of a `RETR`/`TOP`.
    Body {
        /// The command id.
        id: u64,
        /// The bytes (dot-unstuffed, CRLF line ends).
        data: Vec<u8>,
    },
    /// A command finished: exactly one of `reply` and `failure` is set.
    Completed {
        /// The command id.
        id: u64,
        /// The reply on success.
        reply: Option<EngineReply>,
        /// The failure otherwise.
        failure: Option<EngineFailure>,
    },
}

fn reply(r: Reply) -> EngineReply {
    match r {
        Reply::Ok(text) => EngineReply::Ok { text },
        Reply::Authenticated => EngineReply::Authenticated,
        Reply::Stat { count, size } => EngineReply::Stat { count, size },
        Reply::List(v) => EngineReply::Listing {
            entries: v.iter().map(ListEntry::from).collect(),
        },
        Reply::ListOne(e) => EngineReply::ListingOne { entry: (&e).into() },
        Reply::Uidl(v) => EngineReply::Uidl {
            entries: v.iter().map(UidlEntry::from).collect(),
        },
        Reply::UidlOne(e) => EngineReply::UidlOne { entry: (&e).into() },
        Reply::Capabilities(c) => EngineReply::Capabilities {
            capabilities: capabilities(&c),
        },
        Reply::Languages(v) => EngineReply::Languages {
            languages: v
                .into_iter()
                .map(|(tag, description)| Language { tag, description })
                .collect(),
        },
        Reply::Retrieved { octets } => EngineReply::Retrieved { octets },
        Reply::TlsReady => EngineReply::TlsReady,
        Reply::Closed(text) => EngineReply::Closed { text },
    }
}

fn event(e: Event<'_>) -> EngineEvent {
    match e {
        Event::Greeting(g) => EngineEvent::Greeting {
            text: g.text,
            apop_timestamp: g.apop_timestamp,
        },
        Event::Ready(c) => EngineEvent::Ready {
            capabilities: capabilities(&c),
        },
        Event::TlsReady => EngineEvent::TlsReady,
        Event::Body { id, data } => EngineEvent::Body {
            id: id.get(),
            data: data.to_vec(),
        },
        Event::Completed { id, result } => match result {
            Ok(r) => EngineEvent::Completed {
                id: id.get(),
                reply: Some(reply(r)),
                failure: None,
            },
            Err(e) => EngineEvent::Completed {
                id: id.get(),
                reply: None,
                failure: Some((&e).into()),
            },
        },
    }
}

/// The sans-IO POP3 client engine.
#[derive(uniffi::Object)]
pub struct Engine {
    inner: Mutex<proto::Client>,
}

fn id(r: Result<CommandId, proto::Error>) -> Result<u64, PopError> {
    Ok(r?.get())
}

impl Engine {
    fn client(&self) -> MutexGuard<'_, proto::Client> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[uniffi::export]
impl Engine {
    /// A fresh engine waiting for the greeting (after the TLS handshake, for implicit TLS).
    #[uniffi::constructor]
    pub fn new(options: EngineOptions) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(proto::Client::new(options.into())),
        })
    }

    /// Bytes read from the server (decrypted).
    pub fn handle_input(&self, data: Vec<u8>) -> Result<(), PopError> {
        Ok(self.client().handle_input(&data)?)
    }

    /// The server closed the connection.
    pub fn handle_eof(&self) -> Result<(), PopError> {
        Ok(self.client().handle_eof()?)
    }

    /// The TLS handshake that `TlsReady` asked for is done.
    pub fn tls_established(&self) -> Result<(), PopError> {
        Ok(self.client().tls_established()?)
    }

    /// The next bytes to write to the server, or null when there is nothing to send.
    pub fn poll_transmit(&self) -> Option<Vec<u8>> {
        self.client().poll_transmit().map(|b| b.to_vec())
    }

    /// The next event, or null when the engine needs more input. Throws when the session
    /// failed (the error is then sticky).
    pub fn poll_event(&self) -> Result<Option<EngineEvent>, PopError> {
        Ok(self.client().poll_event()?.map(event))
    }

    /// The session's state: `greeting`, `authorization`, `awaiting-tls`, `transaction`,
    /// `closed` or `failed`.
    pub fn phase(&self) -> String {
        self.client().phase().as_str().to_string()
    }

    /// True after TLS (implicit or STLS).
    pub fn is_tls(&self) -> bool {
        self.client().is_tls()
    }

    /// Commands issued and not completed yet.
    pub fn pending(&self) -> u64 {
        self.client().pending() as u64
    }

    /// Logs in. `method`: `auto`, `user`, `apop`, or a SASL name (`PLAIN`, `SCRAM-SHA-256`,
    /// `XOAUTH2`, ...). `is_token`: `secret` is an OAuth token. `nonce`: the SCRAM client
    /// nonce (printable, no `,`; random in real use).
    pub fn authenticate(
        &self,
        method: String,
        username: String,
        secret: String,
        is_token: bool,
        nonce: String,
    ) -> Result<u64, PopError> {
        let method: AuthMethod = method.parse().map_err(|e: proto::UnknownName| {
            PopError::config("usage:unknown-mechanism", e.to_string())
        })?;
        let secret = Secret::new(secret);
        let credential = if is_token {
            Credential::Token(secret)
        } else {
            Credential::Password(secret)
        };
        id(self.client().authenticate(AuthRequest {
            username,
            credential,
            method,
            authzid: None,
            nonce,
            host: None,
            port: None,
        }))
    }

    /// `USER name`.
    pub fn user(&self, name: String) -> Result<u64, PopError> {
        id(self.client().user(&name))
    }

    /// `PASS password`.
    pub fn pass(&self, password: String) -> Result<u64, PopError> {
        id(self.client().pass(Secret::new(password)))
    }

    /// `APOP name digest(password)`.
    pub fn apop(&self, name: String, password: String) -> Result<u64, PopError> {
        id(self.client().apop(&name, &Secret::new(password)))
    }

    /// `CAPA`.
    pub fn capa(&self) -> Result<u64, PopError> {
        id(self.client().capa())
    }

    /// `STLS`.
    pub fn stls(&self) -> Result<u64, PopError> {
        id(self.client().stls())
    }

    /// `STAT`.
    pub fn stat(&self) -> Result<u64, PopError> {
        id(self.client().stat())
    }

    /// `LIST` or `LIST n`.
    pub fn list(&self, num: Option<u32>) -> Result<u64, PopError> {
        id(self.client().list(num))
    }

    /// `UIDL` or `UIDL n`.
    pub fn uidl(&self, num: Option<u32>) -> Result<u64, PopError> {
        id(self.client().uidl(num))
    }

    /// `RETR n`.
    pub fn retr(&self, num: u32) -> Result<u64, PopError> {
        id(self.client().retr(num))
    }

    /// `TOP n lines`.
    pub fn top(&self, num: u32, lines: u32) -> Result<u64, PopError> {
        id(self.client().top(num, lines))
    }

    /// `DELE n`.
    pub fn dele(&self, num: u32) -> Result<u64, PopError> {
        id(self.client().dele(num))
    }

    /// `NOOP`.
    pub fn noop(&self) -> Result<u64, PopError> {
        id(self.client().noop())
    }

    /// `RSET`.
    pub fn rset(&self) -> Result<u64, PopError> {
        id(self.client().rset())
    }

    /// `QUIT`.
    pub fn quit(&self) -> Result<u64, PopError> {
        id(self.client().quit())
    }

    /// `UTF8`.
    pub fn utf8(&self) -> Result<u64, PopError> {
        id(self.client().utf8())
    }

    /// `LANG` or `LANG tag`.
    pub fn lang(&self, tag: Option<String>) -> Result<u64, PopError> {
        id(self.client().lang(tag.as_deref()))
    }
}

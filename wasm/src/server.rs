//! The server role for JS: [`Server`] over a shared in-memory [`Maildrop`].

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Object, Uint8Array};
use popwire::proto::server::{CloseReason, LoginMethod, MaildropError, MessageInfo};
use popwire::proto::{Expire, Mechanism, MemoryMaildrop, Secret, ServerEvent, ServerOptions};
use wasm_bindgen::prelude::*;

use crate::convert::{self, Options, set};

/// Users and messages in memory, shared by every [`Server`] session made over it (QUIT in one
/// session removes the deleted messages for the next).
#[wasm_bindgen]
#[derive(Default)]
pub struct Maildrop {
    shared: Rc<RefCell<MemoryMaildrop>>,
}

#[wasm_bindgen]
impl Maildrop {
    /// An empty maildrop with no users.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Maildrop {
        Maildrop::default()
    }

    /// Adds (or replaces) a user.
    #[wasm_bindgen(js_name = addUser)]
    pub fn add_user(&self, name: String, password: String) {
        self.shared
            .borrow_mut()
            .add_user(name, Secret::from(password));
    }

    /// Adds a message (LF or CRLF line ends) and returns its unique-id.
    #[wasm_bindgen(js_name = addMessage)]
    pub fn add_message(&self, message: Vec<u8>) -> String {
        self.shared.borrow_mut().add_message(message)
    }

    /// Adds a message under a unique-id of the caller's choice.
    #[wasm_bindgen(js_name = addMessageWithUid)]
    pub fn add_message_with_uid(&self, uid: String, message: Vec<u8>) {
        self.shared.borrow_mut().add_message_with_uid(uid, message);
    }

    /// The unique-ids, in order.
    pub fn uids(&self) -> Array {
        self.shared.borrow().uids().map(JsValue::from).collect()
    }

    /// Number of stored messages.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> usize {
        self.shared.borrow().len()
    }

    /// Sets the text SCRAM nonces start with: use fresh random text on an untrusted network.
    #[wasm_bindgen(js_name = setNonceSeed)]
    pub fn set_nonce_seed(&self, seed: String) {
        self.shared.borrow_mut().set_nonce_seed(seed);
    }
}

/// The [`popwire::proto::Maildrop`] a session sees: the shared [`MemoryMaildrop`].
struct Shared(Rc<RefCell<MemoryMaildrop>>);

// Each call borrows for its own duration only; the engine never calls back into JS, so no
// borrow can overlap another.
impl popwire::proto::Maildrop for Shared {
    fn password(&mut self, user: &str) -> Option<Secret> {
        self.0.borrow_mut().password(user)
    }
    fn open(&mut self, user: &str) -> Result<Vec<MessageInfo>, MaildropError> {
        self.0.borrow_mut().open(user)
    }
    fn read(&mut self, index: usize, offset: u64, buf: &mut [u8]) -> Result<usize, MaildropError> {
        self.0.borrow_mut().read(index, offset, buf)
    }
    fn commit(&mut self, deleted: &[usize]) -> Result<(), MaildropError> {
        self.0.borrow_mut().commit(deleted)
    }
    fn scram_nonce(&mut self) -> String {
        self.0.borrow_mut().scram_nonce()
    }
    fn scram_salt(&mut self, user: &str) -> Vec<u8> {
        self.0.borrow_mut().scram_salt(user)
    }
}

/// One POP3 server session, sans-IO: write what [`Server::poll_transmit`] returns, feed the
/// client's bytes to [`Server::handle_input`], and read [`Server::poll_event`].
#[wasm_bindgen]
pub struct Server {
    inner: popwire::proto::Server<Shared>,
}

#[wasm_bindgen]
impl Server {
    /// A session that has just accepted a connection. `options` (all optional): `greeting`,
    /// `apopTimestamp`, `offerStls`, `tlsActive`, `allowCleartextPassword`, `pipelining`,
    /// `mechanisms` (SASL names), `scramIterations`, `implementation`, `expire` (`"never"` or
    /// days), `loginDelay`, `maxLine`, `chunkSize`, `maxInput`.
    #[wasm_bindgen(constructor)]
    pub fn new(maildrop: &Maildrop, options: JsValue) -> Result<Server, JsValue> {
        let o = Options(&options);
        let mut s = ServerOptions::default();
        s.greeting = o.string("greeting")?.unwrap_or(s.greeting);
        s.apop_timestamp = o.string("apopTimestamp")?.or(s.apop_timestamp);
        s.offer_stls = o.bool("offerStls")?.unwrap_or(s.offer_stls);
        s.tls_active = o.bool("tlsActive")?.unwrap_or(s.tls_active);
        s.allow_cleartext_password = o
            .bool("allowCleartextPassword")?
            .unwrap_or(s.allow_cleartext_password);
        s.pipelining = o.bool("pipelining")?.unwrap_or(s.pipelining);
        if let Some(names) = o.strings("mechanisms")? {
            s.mechanisms = names
                .iter()
                .map(|n| {
                    Mechanism::from_name(n)
                        .ok_or_else(|| convert::usage(&format!("unknown SASL mechanism {n}")))
                })
                .collect::<Result<_, _>>()?;
        }
        s.scram_iterations = o.u32("scramIterations")?.unwrap_or(s.scram_iterations);
        s.implementation = o.string("implementation")?.or(s.implementation);
        s.expire = match o.value("expire")? {
            None => s.expire,
            Some(v)
                if v.as_string()
                    .is_some_and(|t| t.eq_ignore_ascii_case("never")) =>
            {
                Some(Expire::Never)
            }
            Some(_) => o.u32("expire")?.map(Expire::Days),
        };
        s.login_delay = o.u32("loginDelay")?.map(u64::from).or(s.login_delay);
        s.max_line = o.usize("maxLine")?.unwrap_or(s.max_line);
        s.chunk_size = o.usize("chunkSize")?.unwrap_or(s.chunk_size);
        s.max_input = o.usize("maxInput")?.unwrap_or(s.max_input);
        Ok(Server {
            inner: popwire::proto::Server::new(s, Shared(maildrop.shared.clone())),
        })
    }

    /// Hands over bytes received from the client.
    #[wasm_bindgen(js_name = handleInput)]
    pub fn handle_input(&mut self, data: &[u8]) {
        self.inner.handle_input(data);
    }

    /// The next bytes to write (at most about `chunkSize`), or `undefined` until more input.
    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<Uint8Array> {
        self.inner
            .poll_transmit()
            .map(|bytes| Uint8Array::from(&bytes[..]))
    }

    /// The next event as an object with a `type`, or `undefined`.
    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> JsValue {
        self.inner
            .poll_event()
            .map_or(JsValue::UNDEFINED, server_event)
    }

    /// The TLS handshake after STLS succeeded.
    #[wasm_bindgen(js_name = tlsEstablished)]
    pub fn tls_established(&mut self) -> Result<(), JsValue> {
        self.inner
            .tls_established()
            .map_err(|e| convert::error(&popwire::proto::Error::Usage(e)))
    }

    /// True once the session is over: write what `pollTransmit` still returns, then close.
    #[wasm_bindgen(getter, js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// True when the connection is TLS.
    #[wasm_bindgen(getter, js_name = isTls)]
    pub fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }

    /// The logged-in user, in the transaction state.
    #[wasm_bindgen(getter)]
    pub fn user(&self) -> Option<String> {
        self.inner.user().map(String::from)
    }
}

fn login_method(m: LoginMethod) -> &'static str {
    match m {
        LoginMethod::UserPass => "user",
        LoginMethod::Apop => "apop",
        LoginMethod::Sasl(m) => m.name(),
    }
}

fn server_event(event: ServerEvent) -> JsValue {
    let obj: JsValue = Object::new().into();
    match event {
        ServerEvent::LoggedIn { user, method } => {
            set(&obj, "type", "logged-in");
            set(&obj, "user", user);
            set(&obj, "method", login_method(method));
        }
        ServerEvent::AuthFailed { user, method } => {
            set(&obj, "type", "auth-failed");
            set(&obj, "user", user.map_or(JsValue::NULL, JsValue::from));
            set(&obj, "method", login_method(method));
        }
        ServerEvent::StlsRequested { discarded } => {
            set(&obj, "type", "stls-requested");
            set(&obj, "discarded", discarded);
        }
        ServerEvent::Committed { deleted } => {
            set(&obj, "type", "committed");
            let deleted: Array = deleted.into_iter().map(JsValue::from).collect();
            set(&obj, "deleted", deleted);
        }
        ServerEvent::Closed(reason) => {
            set(&obj, "type", "closed");
            let (name, detail) = match reason {
                CloseReason::Quit => ("quit", None),
                CloseReason::CommitFailed(e) => ("commit-failed", Some(e)),
                CloseReason::LineTooLong => ("line-too-long", None),
                CloseReason::InputOverflow => ("input-overflow", None),
                CloseReason::ReadFailed(e) => ("read-failed", Some(e)),
            };
            set(&obj, "reason", name);
            if let Some(e) = detail {
                set(&obj, "detail", e.to_string());
            }
        }
    }
    obj
}

//! The client role for JS: [`Engine`] over [`popwire::proto::Client`].

use js_sys::{Array, Float64Array, Uint8Array};
use popwire::proto::{
    AuthMethod, AuthRequest, Client, ClientOptions, CommandId, Credential, Error, Event, Mechanism,
    Reply, Secret, Security,
};
use wasm_bindgen::prelude::*;

use crate::convert::{self, Options};

// Events cross as 5-slot arrays `[tag, id, a, b, c]`; `lib/engine.js` decodes them (keep the
// two tables in step). Flat arrays of numbers and strings are cheaper to build than objects.
const EV_GREETING: u8 = 0; // a: text, b: APOP timestamp or undefined
const EV_READY: u8 = 1; // a: capabilities
const EV_TLS_READY: u8 = 2;
const EV_BODY: u8 = 3; // id, a: Uint8Array
const EV_OK: u8 = 4; // id, a: reply tag, b and c: the reply's fields (below)
const EV_ERR: u8 = 5; // id, a: error

const R_TEXT: u8 = 0; // b: text
const R_AUTHENTICATED: u8 = 1;
const R_STAT: u8 = 2; // b: count, c: size
const R_LIST: u8 = 3; // b: Float64Array [number, size, ...]
const R_LIST_ONE: u8 = 4; // b: number, c: size
const R_UIDL: u8 = 5; // b: Float64Array of numbers, c: the uids joined by "\n"
const R_UIDL_ONE: u8 = 6; // b: number, c: uid
const R_CAPA: u8 = 7; // b: capabilities
const R_LANG: u8 = 8; // b: [tag, description, ...]
const R_RETRIEVED: u8 = 9; // b: octets
const R_TLS_READY: u8 = 10;
const R_CLOSED: u8 = 11; // b: text

/// A POP3 client session, sans-IO: feed it the server's bytes, write what it hands back, and
/// read its events. See `lib/engine.js` for the JS face of it.
#[wasm_bindgen]
pub struct Engine {
    inner: Client,
    /// Body bytes of consecutive `Event::Body` chunks, merged by [`Engine::poll_events`].
    body: Vec<u8>,
    body_id: Option<CommandId>,
}

#[wasm_bindgen]
impl Engine {
    /// A session waiting for the greeting. `options` (all optional): `security` (`"tls"`,
    /// `"starttls"`, `"none"`), `negotiate`, `allowCleartextPassword`, `pipelining`,
    /// `maxInFlight`, `lenientUids`, `statusLine`, `dataLine`, `listing`, `inputBuffer`.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Engine, JsValue> {
        let o = Options(&options);
        let mut c = ClientOptions::default();
        if let Some(s) = o.string("security")? {
            c.security = match s.as_str() {
                "tls" => Security::Tls,
                "starttls" => Security::StartTls,
                "none" => Security::None,
                _ => {
                    return Err(convert::usage(
                        "option security must be 'tls', 'starttls' or 'none'",
                    ));
                }
            };
        }
        c.negotiate = o.bool("negotiate")?.unwrap_or(c.negotiate);
        c.allow_cleartext_password = o
            .bool("allowCleartextPassword")?
            .unwrap_or(c.allow_cleartext_password);
        c.pipelining = o.bool("pipelining")?.unwrap_or(c.pipelining);
        c.max_in_flight = o.usize("maxInFlight")?.unwrap_or(c.max_in_flight);
        c.lenient_uids = o.bool("lenientUids")?.unwrap_or(c.lenient_uids);
        c.limits.status_line = o.usize("statusLine")?.unwrap_or(c.limits.status_line);
        c.limits.data_line = o.usize("dataLine")?.unwrap_or(c.limits.data_line);
        c.limits.listing = o.usize("listing")?.unwrap_or(c.limits.listing);
        c.limits.input_buffer = o.usize("inputBuffer")?.unwrap_or(c.limits.input_buffer);
        Ok(Engine {
            inner: Client::new(c),
            body: Vec::new(),
            body_id: None,
        })
    }

    /// Hands received bytes to the engine. Throws (fatal) on a protocol violation.
    #[wasm_bindgen(js_name = handleInput)]
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), JsValue> {
        self.inner
            .handle_input(data)
            .map_err(|e| convert::error(&e))
    }

    /// The server closed the connection. Throws unless the session ended with QUIT.
    #[wasm_bindgen(js_name = handleEof)]
    pub fn handle_eof(&mut self) -> Result<(), JsValue> {
        self.inner.handle_eof().map_err(|e| convert::error(&e))
    }

    /// The TLS handshake after STLS succeeded.
    #[wasm_bindgen(js_name = tlsEstablished)]
    pub fn tls_established(&mut self) -> Result<(), JsValue> {
        self.inner.tls_established().map_err(|e| convert::error(&e))
    }

    /// Bytes to write to the server now, if any.
    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<Uint8Array> {
        self.inner
            .poll_transmit()
            .map(|bytes| Uint8Array::from(&bytes[..]))
    }

    /// The next event as a 5-slot array, or `undefined` when more input is needed.
    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> Result<JsValue, JsValue> {
        Ok(
            match self.inner.poll_event().map_err(|e| convert::error(&e))? {
                None => JsValue::UNDEFINED,
                Some(Event::Body { id, data }) => {
                    Array::of3(&EV_BODY.into(), &id_value(id), &Uint8Array::from(data)).into()
                }
                Some(other) => encode(other).into(),
            },
        )
    }

    /// Every event until more input is needed, with consecutive body chunks of one command
    /// merged into one. Throws on a fatal error only when no event precedes it (the next call
    /// throws it otherwise).
    #[wasm_bindgen(js_name = pollEvents)]
    pub fn poll_events(&mut self) -> Result<Array, JsValue> {
        let out = Array::new();
        loop {
            match self.inner.poll_event() {
                Ok(Some(Event::Body { id, data })) => {
                    if self.body_id != Some(id) {
                        flush_body(&out, &mut self.body, &mut self.body_id);
                        self.body_id = Some(id);
                    }
                    self.body.extend_from_slice(data);
                }
                Ok(Some(other)) => {
                    flush_body(&out, &mut self.body, &mut self.body_id);
                    out.push(&encode(other));
                }
                Ok(None) => break,
                Err(e) => {
                    flush_body(&out, &mut self.body, &mut self.body_id);
                    if out.length() == 0 {
                        return Err(convert::error(&e));
                    }
                    break;
                }
            }
        }
        flush_body(&out, &mut self.body, &mut self.body_id);
        Ok(out)
    }

    /// The session's state: `greeting`, `authorization`, `awaiting-tls`, `transaction`,
    /// `closed` or `failed`.
    #[wasm_bindgen(getter)]
    pub fn phase(&self) -> String {
        use popwire::proto::Phase;
        match self.inner.phase() {
            Phase::Greeting => "greeting",
            Phase::Authorization => "authorization",
            Phase::AwaitingTls => "awaiting-tls",
            Phase::Transaction => "transaction",
            Phase::Closed => "closed",
            Phase::Failed => "failed",
        }
        .into()
    }

    /// True once the transport is TLS.
    #[wasm_bindgen(getter, js_name = isTls)]
    pub fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }

    /// The latest capabilities.
    #[wasm_bindgen(getter)]
    pub fn capabilities(&self) -> Array {
        convert::capabilities(self.inner.capabilities())
    }

    /// The greeting text, once received.
    #[wasm_bindgen(getter)]
    pub fn greeting(&self) -> Option<String> {
        self.inner.greeting().map(|g| g.text.clone())
    }

    /// Commands issued and not yet completed.
    #[wasm_bindgen(getter)]
    pub fn pending(&self) -> usize {
        self.inner.pending()
    }

    /// Logs in. `method`: `auto`, `user`, `apop` or a SASL mechanism name; `secret` is a
    /// password, or an OAuth token when `isToken`. `nonce`: fresh random printable text.
    #[allow(clippy::too_many_arguments)]
    pub fn authenticate(
        &mut self,
        username: String,
        secret: String,
        is_token: bool,
        method: &str,
        nonce: String,
        authzid: Option<String>,
        host: Option<String>,
        port: Option<u16>,
    ) -> Result<f64, JsValue> {
        let method = match method.to_ascii_lowercase().as_str() {
            "auto" => AuthMethod::Auto,
            "user" => AuthMethod::UserPass,
            "apop" => AuthMethod::Apop,
            name => AuthMethod::Sasl(
                Mechanism::from_name(name)
                    .ok_or_else(|| convert::usage(&format!("unknown login method {method}")))?,
            ),
        };
        let secret = Secret::from(secret);
        let credential = if is_token {
            Credential::Token(secret)
        } else {
            Credential::Password(secret)
        };
        let request = AuthRequest {
            username,
            credential,
            method,
            authzid,
            nonce,
            host,
            port,
        };
        id(self.inner.authenticate(request))
    }

    /// `USER name`.
    pub fn user(&mut self, name: &str) -> Result<f64, JsValue> {
        id(self.inner.user(name))
    }

    /// `PASS password`.
    pub fn pass(&mut self, password: String) -> Result<f64, JsValue> {
        id(self.inner.pass(Secret::from(password)))
    }

    /// `APOP name digest` (only when asked: MD5 is broken).
    pub fn apop(&mut self, name: &str, password: String) -> Result<f64, JsValue> {
        id(self.inner.apop(name, &Secret::from(password)))
    }

    /// `CAPA`.
    pub fn capa(&mut self) -> Result<f64, JsValue> {
        id(self.inner.capa())
    }

    /// `STLS`.
    pub fn stls(&mut self) -> Result<f64, JsValue> {
        id(self.inner.stls())
    }

    /// `STAT`.
    pub fn stat(&mut self) -> Result<f64, JsValue> {
        id(self.inner.stat())
    }

    /// `LIST` or `LIST n`.
    pub fn list(&mut self, number: Option<f64>) -> Result<f64, JsValue> {
        let number = number.map(message_number).transpose()?;
        id(self.inner.list(number))
    }

    /// `UIDL` or `UIDL n`.
    pub fn uidl(&mut self, number: Option<f64>) -> Result<f64, JsValue> {
        let number = number.map(message_number).transpose()?;
        id(self.inner.uidl(number))
    }

    /// `RETR n`.
    pub fn retr(&mut self, number: f64) -> Result<f64, JsValue> {
        id(self.inner.retr(message_number(number)?))
    }

    /// `TOP n lines`.
    pub fn top(&mut self, number: f64, lines: f64) -> Result<f64, JsValue> {
        let lines = integer(lines, "TOP line count")?;
        id(self.inner.top(message_number(number)?, lines))
    }

    /// `DELE n`.
    pub fn dele(&mut self, number: f64) -> Result<f64, JsValue> {
        id(self.inner.dele(message_number(number)?))
    }

    /// `NOOP`.
    pub fn noop(&mut self) -> Result<f64, JsValue> {
        id(self.inner.noop())
    }

    /// `RSET`.
    pub fn rset(&mut self) -> Result<f64, JsValue> {
        id(self.inner.rset())
    }

    /// `QUIT`.
    pub fn quit(&mut self) -> Result<f64, JsValue> {
        id(self.inner.quit())
    }

    /// `UTF8`.
    pub fn utf8(&mut self) -> Result<f64, JsValue> {
        id(self.inner.utf8())
    }

    /// `LANG` or `LANG tag`.
    pub fn lang(&mut self, tag: Option<String>) -> Result<f64, JsValue> {
        id(self.inner.lang(tag.as_deref()))
    }
}

/// Command ids count from 0; a JS number holds them exactly far beyond any session's length.
fn id_value(id: CommandId) -> JsValue {
    (id.get() as f64).into()
}

fn id(result: Result<CommandId, Error>) -> Result<f64, JsValue> {
    result
        .map(|id| id.get() as f64)
        .map_err(|e| convert::error(&e))
}

fn integer(n: f64, what: &str) -> Result<u32, JsValue> {
    if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) {
        Ok(n as u32)
    } else {
        Err(convert::usage(&format!(
            "{what} must be an integer from 0 to 2^32-1"
        )))
    }
}

fn message_number(n: f64) -> Result<u32, JsValue> {
    match integer(n, "a message number")? {
        0 => Err(convert::usage("message numbers start at 1")),
        n => Ok(n),
    }
}

fn flush_body(out: &Array, body: &mut Vec<u8>, body_id: &mut Option<CommandId>) {
    if let Some(id) = body_id.take() {
        if !body.is_empty() {
            out.push(&Array::of3(
                &EV_BODY.into(),
                &id_value(id),
                &Uint8Array::from(&body[..]),
            ));
        }
        body.clear();
    }
}

fn encode(event: Event<'_>) -> Array {
    let none = JsValue::UNDEFINED;
    let no_id = JsValue::from(-1);
    match event {
        Event::Greeting(g) => Array::of4(
            &EV_GREETING.into(),
            &no_id,
            &g.text.into(),
            &g.apop_timestamp.map_or(none, JsValue::from),
        ),
        Event::Ready(caps) => Array::of3(&EV_READY.into(), &no_id, &convert::capabilities(&caps)),
        Event::TlsReady => Array::of2(&EV_TLS_READY.into(), &no_id),
        Event::Body { id, data } => {
            Array::of3(&EV_BODY.into(), &id_value(id), &Uint8Array::from(data))
        }
        Event::Completed { id, result: Err(e) } => {
            Array::of3(&EV_ERR.into(), &id_value(id), &convert::error(&e))
        }
        Event::Completed {
            id,
            result: Ok(reply),
        } => {
            let (tag, b, c) = reply_slots(reply);
            Array::of5(&EV_OK.into(), &id_value(id), &tag.into(), &b, &c)
        }
    }
}

fn reply_slots(reply: Reply) -> (u8, JsValue, JsValue) {
    let none = JsValue::UNDEFINED;
    match reply {
        Reply::Ok(text) => (R_TEXT, text.into(), none),
        Reply::Authenticated => (R_AUTHENTICATED, none.clone(), none),
        Reply::Stat { count, size } => (R_STAT, count.into(), (size as f64).into()),
        Reply::List(entries) => {
            let flat: Vec<f64> = entries
                .iter()
                .flat_map(|e| [f64::from(e.number), e.size as f64])
                .collect();
            (R_LIST, Float64Array::from(&flat[..]).into(), none)
        }
        Reply::ListOne(e) => (R_LIST_ONE, e.number.into(), (e.size as f64).into()),
        Reply::Uidl(entries) => {
            let numbers: Vec<f64> = entries.iter().map(|e| f64::from(e.number)).collect();
            // Unique-ids never hold a control character (the engine checks), so "\n" separates.
            let uids = entries
                .iter()
                .map(|e| e.uid.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            (R_UIDL, Float64Array::from(&numbers[..]).into(), uids.into())
        }
        Reply::UidlOne(e) => (R_UIDL_ONE, e.number.into(), e.uid.into()),
        Reply::Capabilities(caps) => (R_CAPA, convert::capabilities(&caps).into(), none),
        Reply::Languages(langs) => {
            let flat: Array = langs
                .into_iter()
                .flat_map(|(t, d)| [JsValue::from(t), JsValue::from(d)])
                .collect();
            (R_LANG, flat.into(), none)
        }
        Reply::Retrieved { octets } => (R_RETRIEVED, (octets as f64).into(), none),
        Reply::TlsReady => (R_TLS_READY, none.clone(), none),
        Reply::Closed(text) => (R_CLOSED, text.into(), none),
    }
}

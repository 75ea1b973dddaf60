//! A local **stand-in** for Google's Gmail API (which the tests cannot reach), on 127.0.0.1
//! over plain HTTP. It serves what popwire's Gmail destination calls and checks each request
//! the way Google documents it, answering like Google:
//! - `POST /upload/gmail/v1/users/{userId}/messages/import?uploadType=multipart&...`
//!   (`users.messages.import`): a Bearer token the authorization stand-in issued; the query
//!   switches `internalDateSource` (`dateHeader`|`receivedTime`), `neverMarkSpam`,
//!   `processForCalendar` (`true`|`false`); a `multipart/related` body with a boundary, a
//!   JSON part holding `labelIds` (each an existing label id) and a `message/rfc822` part, the
//!   whole as long as `Content-Length` says. The answer is `{"id","threadId","labelIds"}`.
//! - `GET /gmail/v1/users/{userId}/labels` and `POST` there (`users.labels.list`, `.create`,
//!   409 when the name exists).
//! - `GET /gmail/v1/users/{userId}/messages?q=rfc822msgid:ID` (`users.messages.list`).
//!
//! A request that breaks the documented form gets a 400 and is recorded in
//! [`GmailServer::violations`] (tests assert it stays empty). Failures are injected per
//! request ([`Fault`]): 401 expired token, 429 and 403 rate limits, 500, 400, 413, and an answer cut off after
//! the import was carried out, before the client learns its id (the crash-between case).

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::util::err;

/// A failure the stand-in gives the next matching request instead of its normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 401 `UNAUTHENTICATED`, as for an expired or revoked token.
    Unauthorized,
    /// 429 `RESOURCE_EXHAUSTED` (rate limit).
    TooManyRequests,
    /// 403 with reason `userRateLimitExceeded` (Google's other way to say slow down).
    UserRateLimit,
    /// 500 backend error, the message not imported.
    ServerError,
    /// 400 `INVALID_ARGUMENT`, the message not imported.
    BadRequest,
    /// 413 request too large.
    TooLarge,
    /// The message is imported, then the answer breaks off after its status line and
    /// headers: the client never learns the id (it waits out its read timeout).
    DropAfterImport,
}

/// One imported message, as Gmail holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Gmail's id.
    pub id: String,
    /// The label ids it was given.
    pub labels: Vec<String>,
    /// The `message/rfc822` part, byte for byte.
    pub raw: Vec<u8>,
    /// The query switches, as sent: `internalDateSource`, `neverMarkSpam`,
    /// `processForCalendar`.
    pub switches: (String, String, String),
}

#[derive(Default)]
struct State {
    imported: Vec<Imported>,
    /// (id, name, type)
    labels: Vec<(String, String, String)>,
    import_faults: VecDeque<Fault>,
    search_faults: VecDeque<Fault>,
    violations: Vec<String>,
    log: Vec<String>,
    next_id: u64,
}

type Checker = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The running stand-in. Stops when dropped.
pub struct GmailServer {
    /// `http://127.0.0.1:PORT`: the `endpoint` to configure.
    pub base: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for GmailServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmailServer")
            .field("base", &self.base)
            .finish()
    }
}

impl GmailServer {
    /// Starts the stand-in; `token_ok` decides whether a Bearer token is valid (e.g.
    /// `OAuthServer::token_checker`).
    pub fn start(token_ok: impl Fn(&str) -> bool + Send + Sync + 'static) -> io::Result<Self> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| err(e.to_string()))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| err("no port"))?;
        let base = format!("http://127.0.0.1:{port}");
        let mut initial = State::default();
        for system in ["INBOX", "UNREAD", "STARRED", "IMPORTANT", "SPAM", "TRASH"] {
            initial
                .labels
                .push((system.into(), system.into(), "system".into()));
        }
        let state = Arc::new(Mutex::new(initial));
        let stop = Arc::new(AtomicBool::new(false));
        let checker: Checker = Box::new(token_ok);
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(100)) {
                        Ok(Some(request)) => handle(&state, &checker, request),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
            })
        };
        Ok(Self {
            base,
            state,
            stop,
            thread: Some(thread),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Queues failures for the next import requests, one each.
    pub fn fail_imports(&self, faults: &[Fault]) {
        self.with(|s| s.import_faults.extend(faults));
    }

    /// Queues failures for the next `messages.list` searches, one each.
    pub fn fail_searches(&self, faults: &[Fault]) {
        self.with(|s| s.search_faults.extend(faults));
    }

    /// Adds a user label as if made in Gmail; returns its id.
    pub fn add_label(&self, name: &str) -> String {
        self.with(|s| add_label(s, name))
    }

    /// Every label as (id, name).
    pub fn labels(&self) -> Vec<(String, String)> {
        self.with(|s| {
            s.labels
                .iter()
                .map(|(id, name, _)| (id.clone(), name.clone()))
                .collect()
        })
    }

    /// The messages imported so far, in order.
    pub fn imported(&self) -> Vec<Imported> {
        self.with(|s| s.imported.clone())
    }

    /// Every request, as `METHOD PATH -> STATUS`, in order.
    pub fn log(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }

    /// Requests that broke Google's documented form, with why.
    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }
}

impl Drop for GmailServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn add_label(s: &mut State, name: &str) -> String {
    s.next_id += 1;
    let id = format!("Label_{}", s.next_id);
    s.labels.push((id.clone(), name.to_owned(), "user".into()));
    id
}

/// Google's error body.
fn google_error(code: u16, status: &str, message: &str) -> (u16, String) {
    (
        code,
        serde_json::json!({"error": {"code": code, "message": message, "status": status}})
            .to_string(),
    )
}

fn fault_answer(fault: Fault) -> (u16, String) {
    match fault {
        Fault::Unauthorized => google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        ),
        Fault::TooManyRequests => google_error(429, "RESOURCE_EXHAUSTED", "Too many requests"),
        Fault::UserRateLimit => (
            403,
            serde_json::json!({"error": {"code": 403, "message": "User-rate limit exceeded",
                "errors": [{"reason": "userRateLimitExceeded", "domain": "usageLimits"}]}})
            .to_string(),
        ),
        Fault::ServerError | Fault::DropAfterImport => {
            google_error(500, "INTERNAL", "Backend Error")
        }
        Fault::BadRequest => google_error(400, "INVALID_ARGUMENT", "Invalid message"),
        Fault::TooLarge => google_error(413, "FAILED_PRECONDITION", "Request too large"),
    }
}

/// A reader that fails at once: the answer's headers go out, its body never does (tiny_http
/// keeps the connection, so the client sees a body that stops coming).
struct Cut;

impl Read for Cut {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut"))
    }
}

fn handle(state: &Mutex<State>, token_ok: &Checker, mut request: tiny_http::Request) {
    let method = request.method().to_string();
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_owned())
    };
    let authorization = header("Authorization");
    let content_type = header("Content-Type").unwrap_or_default();
    let content_length = header("Content-Length").and_then(|v| v.parse::<usize>().ok());
    let mut body = Vec::new();
    let read = request.as_reader().read_to_end(&mut body);
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    let mut drop_answer = false;
    let (status, answer) = if read.is_err() {
        google_error(400, "INVALID_ARGUMENT", "unreadable body")
    } else if !authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(token_ok)
    {
        fault_answer(Fault::Unauthorized)
    } else {
        answer(
            &mut s,
            &method,
            path,
            &query,
            &content_type,
            content_length,
            &body,
            &mut drop_answer,
        )
    };
    s.log.push(format!("{method} {path} -> {status}"));
    drop(s);
    let header = tiny_http::Header::from_bytes("Content-Type", "application/json; charset=UTF-8");
    if drop_answer {
        let response = tiny_http::Response::new(
            tiny_http::StatusCode(200),
            header.into_iter().collect(),
            Cut,
            Some(100),
            None,
        );
        let _ = request.respond(response);
        return;
    }
    let mut response = tiny_http::Response::from_string(answer).with_status_code(status);
    if let Ok(h) = header {
        response.add_header(h);
    }
    let _ = request.respond(response);
}

#[allow(clippy::too_many_arguments)]
fn answer(
    s: &mut State,
    method: &str,
    path: &str,
    query: &[(String, String)],
    content_type: &str,
    content_length: Option<usize>,
    body: &[u8],
    drop_answer: &mut bool,
) -> (u16, String) {
    let get = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let mut violation = |why: String| {
        s.violations.push(why.clone());
        google_error(400, "INVALID_ARGUMENT", &why)
    };
    let Some(rest) = path
        .strip_prefix("/upload/gmail/v1/users/")
        .or_else(|| path.strip_prefix("/gmail/v1/users/"))
    else {
        return google_error(404, "NOT_FOUND", "no such method");
    };
    let Some((user, tail)) = rest.split_once('/') else {
        return google_error(404, "NOT_FOUND", "no such method");
    };
    if user.is_empty() {
        return violation("empty userId".into());
    }
    let upload = path.starts_with("/upload/");
    match (method, upload, tail) {
        ("POST", true, "messages/import") => {
            if get("uploadType") != Some("multipart") {
                return violation(format!("import: uploadType {:?}", get("uploadType")));
            }
            let source = get("internalDateSource").unwrap_or("receivedTime");
            if !["dateHeader", "receivedTime"].contains(&source) {
                return violation(format!("import: internalDateSource {source:?}"));
            }
            let mut switches = Vec::new();
            for name in ["neverMarkSpam", "processForCalendar"] {
                let value = get(name).unwrap_or("false");
                if !["true", "false"].contains(&value) {
                    return violation(format!("import: {name} {value:?}"));
                }
                switches.push(value.to_owned());
            }
            if content_length != Some(body.len()) {
                return violation(format!(
                    "import: Content-Length {content_length:?} for a body of {}",
                    body.len()
                ));
            }
            let (labels, raw) = match multipart(content_type, body) {
                Ok(parts) => parts,
                Err(why) => return violation(format!("import: {why}")),
            };
            if let Some(unknown) = labels
                .iter()
                .find(|l| !s.labels.iter().any(|(id, _, _)| id == *l))
            {
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Invalid label: {unknown}"),
                );
            }
            match s.import_faults.pop_front() {
                Some(Fault::DropAfterImport) => *drop_answer = true,
                Some(fault) => return fault_answer(fault),
                None => {}
            }
            s.next_id += 1;
            let id = format!("{:016x}", 0x18c0_0000_0000_0000u64 + s.next_id);
            s.imported.push(Imported {
                id: id.clone(),
                labels: labels.clone(),
                raw,
                switches: (
                    source.to_owned(),
                    switches.first().cloned().unwrap_or_default(),
                    switches.get(1).cloned().unwrap_or_default(),
                ),
            });
            (
                200,
                serde_json::json!({"id": id, "threadId": id, "labelIds": labels}).to_string(),
            )
        }
        ("GET", false, "labels") => {
            let labels: Vec<serde_json::Value> = s
                .labels
                .iter()
                .map(|(id, name, kind)| serde_json::json!({"id": id, "name": name, "type": kind}))
                .collect();
            (200, serde_json::json!({ "labels": labels }).to_string())
        }
        ("POST", false, "labels") => {
            if !content_type.starts_with("application/json") {
                return violation(format!("labels.create: Content-Type {content_type:?}"));
            }
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
                return violation("labels.create: body is not JSON".into());
            };
            let Some(name) = value.get("name").and_then(|n| n.as_str()) else {
                return violation("labels.create: no name".into());
            };
            if s.labels
                .iter()
                .any(|(_, existing, _)| existing.eq_ignore_ascii_case(name))
            {
                return google_error(409, "ALREADY_EXISTS", "Label name exists or conflicts");
            }
            let id = add_label(s, name);
            (
                200,
                serde_json::json!({"id": id, "name": name, "type": "user"}).to_string(),
            )
        }
        ("GET", false, "messages") => {
            if let Some(fault) = s.search_faults.pop_front() {
                return fault_answer(fault);
            }
            let Some(wanted) = get("q").and_then(|q| q.strip_prefix("rfc822msgid:")) else {
                return violation(format!("messages.list: q {:?}", get("q")));
            };
            let found: Vec<serde_json::Value> = s
                .imported
                .iter()
                .filter(|m| message_id(&m.raw).as_deref() == Some(wanted))
                .map(|m| serde_json::json!({"id": m.id, "threadId": m.id}))
                .collect();
            if found.is_empty() {
                (
                    200,
                    serde_json::json!({"resultSizeEstimate": 0}).to_string(),
                )
            } else {
                let n = found.len();
                (
                    200,
                    serde_json::json!({"messages": found, "resultSizeEstimate": n}).to_string(),
                )
            }
        }
        _ => google_error(404, "NOT_FOUND", "no such method"),
    }
}

/// The label ids and the raw message of a `multipart/related` import body, checked as RFC
/// 2046/2387 and Google's upload guide describe it.
fn multipart(content_type: &str, body: &[u8]) -> Result<(Vec<String>, Vec<u8>), String> {
    let mut params = content_type.split(';').map(str::trim);
    if !params
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case("multipart/related"))
    {
        return Err(format!("Content-Type {content_type:?}"));
    }
    let boundary = params
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| (1..=70).contains(&b.len()))
        .ok_or("no boundary (RFC 2046: 1 to 70 characters)")?;
    let open = format!("--{boundary}\r\n");
    let rest = body
        .strip_prefix(open.as_bytes())
        .ok_or("the body does not start with the boundary")?;
    let (json_headers, rest) = split_once(rest, b"\r\n\r\n").ok_or("JSON part: no header end")?;
    if !String::from_utf8_lossy(json_headers)
        .to_ascii_lowercase()
        .contains("content-type: application/json")
    {
        return Err("the first part is not application/json".into());
    }
    let next = format!("\r\n--{boundary}\r\n");
    let (json, rest) = split_once(rest, next.as_bytes()).ok_or("no second part")?;
    let metadata: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("metadata is not JSON: {e}"))?;
    let labels = match metadata.get("labelIds") {
        None => Vec::new(),
        Some(serde_json::Value::Array(ids)) => ids
            .iter()
            .map(|id| id.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("labelIds holds a non-string")?,
        Some(_) => return Err("labelIds is not an array".into()),
    };
    let (part_headers, rest) =
        split_once(rest, b"\r\n\r\n").ok_or("message part: no header end")?;
    if !String::from_utf8_lossy(part_headers)
        .to_ascii_lowercase()
        .contains("content-type: message/rfc822")
    {
        return Err("the second part is not message/rfc822".into());
    }
    let close = format!("\r\n--{boundary}--\r\n");
    let raw = rest
        .strip_suffix(close.as_bytes())
        .ok_or("the body does not end with the closing boundary")?;
    if split_once(raw, format!("--{boundary}").as_bytes()).is_some() {
        return Err("the boundary occurs inside the message".into());
    }
    Ok((labels, raw.to_vec()))
}

fn split_once<'a>(haystack: &'a [u8], needle: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = haystack.windows(needle.len()).position(|w| w == needle)?;
    Some((haystack.get(..at)?, haystack.get(at + needle.len()..)?))
}

/// The Message-ID of a raw message, without brackets.
fn message_id(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n")
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("message-id").then(|| {
                value
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
        })
}

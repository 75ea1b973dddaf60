//! A local OAuth 2.0 authorization server: a **stand-in** for Google's and Microsoft's (which
//! the tests cannot reach), on 127.0.0.1 over plain HTTP.
//!
//! It serves what popwire and Dovecot use, and checks each request the way the RFCs say,
//! answering a malformed one with `400 invalid_request` and recording it in
//! [`OAuthServer::violations`] (tests assert that list is empty):
//! - `GET /.well-known/oauth-authorization-server`: metadata (RFC 8414);
//! - `POST /device`: device authorization (RFC 8628 section 3.1/3.2);
//! - `POST /token`: the device-code grant (with `authorization_pending`, `slow_down`,
//!   `access_denied`, `expired_token`, RFC 8628 section 3.4/3.5), the refresh-token grant
//!   (RFC 6749 section 6; `invalid_grant` once revoked) and the authorization-code grant with
//!   PKCE S256 (RFC 6749 section 4.1.3, RFC 7636 section 4.6);
//! - `GET /authorize`: the authorization endpoint; it approves at once (the test plays the
//!   user) and redirects to the loopback `redirect_uri` with `code` and `state`;
//! - `POST /introspect`: token introspection (RFC 7662) for Dovecot's `oauth2` passdb.
//!
//! The test side approves device codes ([`OAuthServer::approve`]), revokes a user's tokens
//! ([`OAuthServer::revoke`]) and sets how long access tokens live.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;

use crate::util::err;

/// The client id the stand-in accepts.
pub const CLIENT_ID: &str = "popwire-test-client";
/// The device-code grant type (RFC 8628 section 3.4).
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Debug, Clone, PartialEq, Eq)]
enum DeviceState {
    Pending,
    Approved(String),
    Denied,
}

#[derive(Debug)]
struct Device {
    user_code: String,
    scope: String,
    state: DeviceState,
    expires: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Grant {
    user: String,
    scope: String,
    revoked: bool,
}

#[derive(Debug)]
struct Code {
    user: String,
    scope: String,
    redirect_uri: String,
    challenge: String,
    client_id: String,
}

#[derive(Debug, Default)]
struct State {
    devices: HashMap<String, Device>,
    /// Access token → (grant id, expiry).
    access: HashMap<String, (u64, Instant)>,
    /// Refresh token → grant id.
    refresh: HashMap<String, u64>,
    grants: HashMap<u64, Grant>,
    codes: HashMap<String, Code>,
    log: Vec<String>,
    violations: Vec<String>,
    access_ttl: Option<Duration>,
    /// Answer the next device poll with `slow_down`.
    slow_down_once: bool,
    /// The user the authorization endpoint signs in.
    browser_user: Option<String>,
    /// The authorization endpoint's next answer is `error=access_denied`.
    deny_browser_once: bool,
}

/// The running stand-in. Stops when dropped.
pub struct OAuthServer {
    /// `http://127.0.0.1:PORT`, the issuer.
    pub base: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for OAuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthServer")
            .field("base", &self.base)
            .finish()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A token nobody can guess across runs (tests only need them distinct and opaque).
fn token(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hasher = sha2::Sha256::new();
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(n.to_le_bytes());
    hasher.update(format!("{:?}", Instant::now()).as_bytes());
    let digest = hasher.finalize();
    format!("{prefix}.{}", URL_SAFE_NO_PAD.encode(digest))
}

struct Reply {
    status: u16,
    body: String,
    location: Option<String>,
}

fn json(status: u16, value: &serde_json::Value) -> Reply {
    Reply {
        status,
        body: value.to_string(),
        location: None,
    }
}

fn oauth_error(code: &str, description: &str) -> Reply {
    json(
        400,
        &serde_json::json!({"error": code, "error_description": description}),
    )
}

impl OAuthServer {
    /// Starts the stand-in on 127.0.0.1, on a port the system picks.
    pub fn start() -> io::Result<OAuthServer> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| err(e.to_string()))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| err("no port"))?;
        let base = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop, base) = (state.clone(), stop.clone(), base.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(100)) {
                        Ok(Some(request)) => handle(&base, &state, request),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
            })
        };
        Ok(OAuthServer {
            base,
            state,
            stop,
            thread: Some(thread),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The user approves the device code `user_code` as `user`. False when no such code.
    pub fn approve(&self, user_code: &str, user: &str) -> bool {
        self.with(|s| {
            s.devices
                .values_mut()
                .find(|d| d.user_code == user_code)
                .map(|d| d.state = DeviceState::Approved(user.to_owned()))
                .is_some()
        })
    }

    /// The user declines the device code `user_code`.
    pub fn deny(&self, user_code: &str) -> bool {
        self.with(|s| {
            s.devices
                .values_mut()
                .find(|d| d.user_code == user_code)
                .map(|d| d.state = DeviceState::Denied)
                .is_some()
        })
    }

    /// Makes every pending device code expire now.
    pub fn expire_device_codes(&self) {
        self.with(|s| {
            for d in s.devices.values_mut() {
                d.expires = Instant::now();
            }
        });
    }

    /// The next device poll gets `slow_down`.
    pub fn slow_down_once(&self) {
        self.with(|s| s.slow_down_once = true);
    }

    /// How long access tokens issued from now on live (default one hour).
    pub fn set_access_ttl(&self, ttl: Duration) {
        self.with(|s| s.access_ttl = Some(ttl));
    }

    /// The user the authorization endpoint signs in (the browser flow).
    pub fn set_browser_user(&self, user: &str) {
        self.with(|s| s.browser_user = Some(user.to_owned()));
    }

    /// The next browser sign-in is declined: the redirect carries `error=access_denied`.
    pub fn deny_browser_once(&self) {
        self.with(|s| s.deny_browser_once = true);
    }

    /// Revokes every grant of `user`: its refresh tokens get `invalid_grant`, its access
    /// tokens introspect as inactive.
    pub fn revoke(&self, user: &str) {
        self.with(|s| {
            for g in s.grants.values_mut().filter(|g| g.user == user) {
                g.revoked = true;
            }
        });
    }

    /// Issues tokens for `user` directly (for tests of the mail server alone).
    pub fn issue(&self, user: &str) -> (String, String) {
        self.with(|s| {
            let (access, refresh, _) = issue(s, user, "mail");
            (access, refresh)
        })
    }

    /// A check of access tokens for a resource server (the Gmail stand-in): true while the
    /// token is one this server issued, unexpired and not revoked, as introspection says.
    pub fn token_checker(&self) -> impl Fn(&str) -> bool + Send + Sync + 'static {
        let state = self.state.clone();
        move |token: &str| {
            let s = state.lock().unwrap_or_else(PoisonError::into_inner);
            s.access.get(token).is_some_and(|&(id, expires)| {
                Instant::now() < expires && s.grants.get(&id).is_some_and(|g| !g.revoked)
            })
        }
    }

    /// Every request, as `METHOD PATH grant_type`, in order.
    pub fn log(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }

    /// Requests that broke the RFCs, with why.
    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn issue(s: &mut State, user: &str, scope: &str) -> (String, String, u64) {
    let id = COUNTER.fetch_add(1, Ordering::Relaxed);
    s.grants.insert(
        id,
        Grant {
            user: user.to_owned(),
            scope: scope.to_owned(),
            revoked: false,
        },
    );
    let access = token("at");
    let refresh = token("rt");
    let ttl = s.access_ttl.unwrap_or(Duration::from_secs(3600));
    s.access.insert(access.clone(), (id, Instant::now() + ttl));
    s.refresh.insert(refresh.clone(), id);
    (access, refresh, ttl.as_secs())
}

fn token_reply(access: &str, refresh: Option<&str>, ttl: u64, scope: &str) -> Reply {
    let mut body = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    });
    if let (Some(r), Some(map)) = (refresh, body.as_object_mut()) {
        map.insert("refresh_token".into(), r.into());
    }
    json(200, &body)
}

fn handle(base: &str, state: &Mutex<State>, mut request: tiny_http::Request) {
    let method = request.method().to_string();
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let content_type = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .map(|h| h.value.as_str().to_owned());
    let authorization = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_owned());
    let mut body = Vec::new();
    let _ = request.as_reader().take(1 << 20).read_to_end(&mut body);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let query: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    s.log.push(format!(
        "{method} {path} {}",
        form.get("grant_type").map_or("", String::as_str)
    ));
    let reply = route(
        base,
        &mut s,
        &method,
        path,
        content_type.as_deref(),
        authorization.as_deref(),
        &form,
        &query,
    );
    drop(s);
    let mut response = tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
    let content = if reply.location.is_some() {
        "text/plain"
    } else {
        "application/json"
    };
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content.as_bytes()) {
        response = response.with_header(h);
    }
    // RFC 6749 section 5.1: token responses must not be cached.
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Cache-Control"[..], &b"no-store"[..]) {
        response = response.with_header(h);
    }
    if let Some(location) = reply.location
        && let Ok(h) = tiny_http::Header::from_bytes(&b"Location"[..], location.as_bytes())
    {
        response = response.with_header(h);
    }
    let _ = request.respond(response);
}

#[allow(clippy::too_many_arguments)]
fn route(
    base: &str,
    s: &mut State,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    authorization: Option<&str>,
    form: &HashMap<String, String>,
    query: &HashMap<String, String>,
) -> Reply {
    let violation = |s: &mut State, why: String| {
        s.violations.push(why.clone());
        oauth_error("invalid_request", &why)
    };
    let form_post = || {
        if method != "POST" {
            return Err(format!("{path}: method {method}, RFC 6749 requires POST"));
        }
        let ct = content_type.unwrap_or("");
        if !ct
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(format!(
                "{path}: content type {ct:?}, RFC 6749 requires application/x-www-form-urlencoded"
            ));
        }
        Ok(())
    };
    // A public client sends client_id in the body (RFC 6749 section 2.3.1 and 3.2.1).
    let client_ok = || {
        form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            || authorization.is_some_and(|a| a.starts_with("Basic "))
    };
    match path {
        "/.well-known/oauth-authorization-server" => {
            if method != "GET" {
                return violation(s, format!("metadata: method {method}"));
            }
            json(
                200,
                &serde_json::json!({
                    "issuer": base,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "device_authorization_endpoint": format!("{base}/device"),
                    "token_endpoint": format!("{base}/token"),
                    "introspection_endpoint": format!("{base}/introspect"),
                    "code_challenge_methods_supported": ["S256"],
                    "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
                }),
            )
        }
        "/device" => {
            if let Err(why) = form_post() {
                return violation(s, why);
            }
            if !client_ok() {
                return violation(s, "device: no or unknown client_id".into());
            }
            let device_code = token("dc");
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let user_code = format!("WDJB-{n:04}");
            let scope = form.get("scope").cloned().unwrap_or_default();
            s.devices.insert(
                device_code.clone(),
                Device {
                    user_code: user_code.clone(),
                    scope,
                    state: DeviceState::Pending,
                    expires: Instant::now() + Duration::from_secs(600),
                    interval: Duration::from_secs(1),
                    last_poll: None,
                },
            );
            json(
                200,
                &serde_json::json!({
                    "device_code": device_code,
                    "user_code": user_code,
                    "verification_uri": format!("{base}/activate"),
                    "verification_uri_complete": format!("{base}/activate?user_code={user_code}"),
                    "expires_in": 600,
                    "interval": 1,
                }),
            )
        }
        "/authorize" => {
            if method != "GET" {
                return violation(s, format!("authorize: method {method}"));
            }
            for required in [
                "response_type",
                "client_id",
                "redirect_uri",
                "state",
                "code_challenge",
                "code_challenge_method",
            ] {
                if !query.contains_key(required) {
                    return violation(s, format!("authorize: missing {required}"));
                }
            }
            let get = |k: &str| query.get(k).cloned().unwrap_or_default();
            if get("response_type") != "code" || get("code_challenge_method") != "S256" {
                return violation(s, "authorize: response_type must be code, PKCE S256".into());
            }
            let redirect = get("redirect_uri");
            // RFC 8252 section 7.3: a loopback IP literal, any port.
            if !redirect.starts_with("http://127.0.0.1:") {
                return violation(
                    s,
                    format!("authorize: redirect_uri {redirect:?} is not loopback"),
                );
            }
            let challenge = get("code_challenge");
            if challenge.len() < 43 {
                return violation(
                    s,
                    "authorize: code_challenge too short (RFC 7636 4.2)".into(),
                );
            }
            if std::mem::take(&mut s.deny_browser_once) {
                let Ok(mut target) = url::Url::parse(&redirect) else {
                    return violation(
                        s,
                        format!("authorize: redirect_uri {redirect:?} is not a URL"),
                    );
                };
                target
                    .query_pairs_mut()
                    .append_pair("error", "access_denied")
                    .append_pair("state", &get("state"));
                return Reply {
                    status: 302,
                    body: String::new(),
                    location: Some(target.to_string()),
                };
            }
            let code = token("code");
            let user = s.browser_user.clone().unwrap_or_else(|| "nobody".into());
            s.codes.insert(
                code.clone(),
                Code {
                    user,
                    scope: get("scope"),
                    redirect_uri: redirect.clone(),
                    challenge,
                    client_id: get("client_id"),
                },
            );
            let Ok(mut target) = url::Url::parse(&redirect) else {
                return violation(
                    s,
                    format!("authorize: redirect_uri {redirect:?} is not a URL"),
                );
            };
            target
                .query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &get("state"));
            Reply {
                status: 302,
                body: String::new(),
                location: Some(target.to_string()),
            }
        }
        "/token" => {
            if let Err(why) = form_post() {
                return violation(s, why);
            }
            if !client_ok() {
                return violation(s, "token: no or unknown client_id".into());
            }
            let grant = form.get("grant_type").cloned().unwrap_or_default();
            match grant.as_str() {
                DEVICE_GRANT => {
                    let Some(code) = form.get("device_code") else {
                        return violation(s, "token: device grant without device_code".into());
                    };
                    let slow = std::mem::take(&mut s.slow_down_once);
                    let Some(device) = s.devices.get_mut(code) else {
                        return oauth_error("invalid_grant", "unknown device_code");
                    };
                    let now = Instant::now();
                    let too_fast = device.last_poll.is_some_and(|t| {
                        now.duration_since(t) + Duration::from_millis(200) < device.interval
                    });
                    device.last_poll = Some(now);
                    if now >= device.expires {
                        return oauth_error("expired_token", "the device code expired");
                    }
                    if slow || too_fast {
                        device.interval += Duration::from_secs(5);
                        if too_fast {
                            s.violations.push(
                                "token: polled faster than the interval (RFC 8628 3.5)".into(),
                            );
                        }
                        return oauth_error("slow_down", "poll less often");
                    }
                    match device.state.clone() {
                        DeviceState::Pending => oauth_error("authorization_pending", "not yet"),
                        DeviceState::Denied => oauth_error("access_denied", "the user declined"),
                        DeviceState::Approved(user) => {
                            let scope = device.scope.clone();
                            s.devices.remove(code);
                            let (access, refresh, ttl) = issue(s, &user, &scope);
                            token_reply(&access, Some(&refresh), ttl, &scope)
                        }
                    }
                }
                "refresh_token" => {
                    let Some(refresh) = form.get("refresh_token") else {
                        return violation(s, "token: refresh grant without refresh_token".into());
                    };
                    let Some(&id) = s.refresh.get(refresh) else {
                        return oauth_error("invalid_grant", "unknown refresh token");
                    };
                    let Some(grant) = s.grants.get(&id).cloned() else {
                        return oauth_error("invalid_grant", "unknown grant");
                    };
                    if grant.revoked {
                        return oauth_error("invalid_grant", "Token has been expired or revoked.");
                    }
                    let access = token("at");
                    let ttl = s.access_ttl.unwrap_or(Duration::from_secs(3600));
                    s.access.insert(access.clone(), (id, Instant::now() + ttl));
                    // Like Google: no new refresh token on refresh.
                    token_reply(&access, None, ttl.as_secs(), &grant.scope)
                }
                "authorization_code" => {
                    for required in ["code", "redirect_uri", "code_verifier"] {
                        if !form.contains_key(required) {
                            return violation(s, format!("token: code grant without {required}"));
                        }
                    }
                    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
                    let Some(code) = s.codes.remove(&get("code")) else {
                        return oauth_error("invalid_grant", "unknown or used code");
                    };
                    if code.redirect_uri != get("redirect_uri")
                        || code.client_id != get("client_id")
                    {
                        return oauth_error("invalid_grant", "redirect_uri or client_id differs");
                    }
                    let verifier = get("code_verifier");
                    // RFC 7636 section 4.1: 43 to 128 unreserved characters.
                    if !(43..=128).contains(&verifier.len())
                        || !verifier
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                    {
                        return violation(s, "token: malformed code_verifier".into());
                    }
                    let computed =
                        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
                    if computed != code.challenge {
                        return oauth_error("invalid_grant", "PKCE verification failed");
                    }
                    let (access, refresh, ttl) = issue(s, &code.user, &code.scope);
                    token_reply(&access, Some(&refresh), ttl, &code.scope)
                }
                other => oauth_error("unsupported_grant_type", &format!("grant {other:?}")),
            }
        }
        "/introspect" => {
            if let Err(why) = form_post() {
                return violation(s, why);
            }
            let Some(token) = form.get("token") else {
                return violation(s, "introspect: missing token (RFC 7662 2.1)".into());
            };
            let active = s.access.get(token).and_then(|&(id, expires)| {
                let grant = s.grants.get(&id)?;
                (!grant.revoked && Instant::now() < expires).then(|| grant.clone())
            });
            match active {
                Some(grant) => json(
                    200,
                    &serde_json::json!({
                        "active": true,
                        "username": grant.user,
                        "scope": grant.scope,
                        "client_id": CLIENT_ID,
                    }),
                ),
                None => json(200, &serde_json::json!({"active": false})),
            }
        }
        _ => json(404, &serde_json::json!({"error": "not_found"})),
    }
}

//! The Gmail API calls the store makes, as Google documents them: `users.messages.import`
//! (multipart upload), `users.labels.list` and `.create`, and `users.messages.list` with an
//! `rfc822msgid:` query for recovery. Over ureq 3 + rustls, the client the OAuth feature
//! already brings; no redirects (a token must not follow one elsewhere).
//!
//! Every call takes a fresh token from the token file (refreshed when under a minute is
//! left); a 401 gets one forced refresh. 429 and 5xx are retried with exponential backoff a
//! bounded number of times; before an import is retried after an answer that may hide a
//! success (5xx, a dropped connection), Gmail is searched for the message first.

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::time::Duration;

use zeroize::Zeroizing;

use super::error::{GmailError, clean};
use crate::fetch::config::{GMAIL_SCOPE, GmailConfig, OAuthConfig};
use crate::fetch::oauth;

/// Requests per call before giving up for this run.
const MAX_ATTEMPTS: u32 = 4;
/// The first backoff; doubled each time (Google's advice for 429 and 5xx).
const BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait a `Retry-After` may ask for within a run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The most read of a JSON answer (label lists are the biggest: a few hundred KB at most).
const MAX_ANSWER: u64 = 4 << 20;
/// The least time Google gets to answer an upload (it files the message first).
const ANSWER_WAIT: Duration = Duration::from_secs(120);
/// The slowest upload speed allowed before a send times out (octets per second).
const MIN_UPLOAD_RATE: u64 = 64 * 1024;

/// A message staged for import: the spool file, its size and SHA-256, its Message-ID.
pub(super) struct Staged {
    pub(super) spool: File,
    pub(super) size: u64,
    pub(super) sha256: [u8; 32],
    pub(super) message_id: Option<String>,
}

impl Staged {
    pub(super) fn sha_hex(&self) -> String {
        hex(&self.sha256)
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a request carries.
enum Body<'a> {
    None,
    Json(Vec<u8>),
    Import(&'a Staged, &'a [u8]),
}

/// How a call ended when it did not fail.
enum Answer {
    /// A status below 500 other than 401 and 429, and the body.
    Status(u16, Vec<u8>),
    /// An import's retry found the message in Gmail already, with this id.
    Found(String),
}

pub(super) struct Api {
    agent: ureq::Agent,
    account: String,
    endpoint: String,
    /// The `userId` path segment, percent-encoded.
    user: String,
    oauth: OAuthConfig,
}

/// Percent-encodes a path segment: RFC 3986 unreserved characters and `@` stay.
fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Api {
    pub(super) fn new(config: &GmailConfig) -> Self {
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(config.timeout))
            .timeout_send_request(Some(config.timeout))
            .timeout_recv_response(Some(config.timeout.max(ANSWER_WAIT)))
            .timeout_recv_body(Some(config.timeout))
            .user_agent(concat!("popwire/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: ureq::Agent::new_with_config(agent_config),
            account: config.account.clone(),
            endpoint: config.endpoint.clone(),
            user: segment(&config.user),
            oauth: config.oauth.clone(),
        }
    }

    /// Imports `staged` with these label ids; returns Gmail's message id.
    pub(super) fn import(
        &self,
        staged: &Staged,
        labels: &[String],
        config: &GmailConfig,
    ) -> Result<String, GmailError> {
        let url = format!(
            "{}/upload/gmail/v1/users/{}/messages/import",
            self.endpoint, self.user
        );
        let query = [
            ("uploadType", "multipart".to_owned()),
            (
                "internalDateSource",
                config.internal_date_source.as_str().to_owned(),
            ),
            ("neverMarkSpam", config.never_mark_spam.to_string()),
            (
                "processForCalendar",
                config.process_for_calendar.to_string(),
            ),
        ];
        let metadata = serde_json::json!({ "labelIds": labels }).to_string();
        match self.call(
            &url,
            &query,
            Body::Import(staged, metadata.as_bytes()),
            staged.message_id.as_deref(),
        )? {
            Answer::Found(id) => Ok(id),
            Answer::Status(200, body) => self.id_in(&url, &body),
            Answer::Status(status, body) if status == 400 || status == 413 => {
                Err(GmailError::Refused {
                    account: self.account.clone(),
                    status,
                    reason: reason(&body),
                })
            }
            Answer::Status(status, body) => Err(self.unexpected(&url, status, &body)),
        }
    }

    /// The id of a message whose `Message-ID` is `message_id`, if Gmail has one (spam and
    /// trash included).
    pub(super) fn find(&self, message_id: &str) -> Result<Option<String>, GmailError> {
        let url = format!("{}/gmail/v1/users/{}/messages", self.endpoint, self.user);
        let query = [
            ("q", format!("rfc822msgid:{message_id}")),
            ("includeSpamTrash", "true".to_owned()),
        ];
        match self.call(&url, &query, Body::None, None)? {
            Answer::Status(200, body) => {
                let value = self.json(&url, &body)?;
                let first = value
                    .get("messages")
                    .and_then(|m| m.as_array())
                    .and_then(|m| m.first());
                match first {
                    None => Ok(None),
                    Some(m) => self.id_in(&url, m.to_string().as_bytes()).map(Some),
                }
            }
            Answer::Status(status, body) => Err(self.unexpected(&url, status, &body)),
            Answer::Found(id) => Ok(Some(id)),
        }
    }

    /// Every label as (id, name).
    pub(super) fn labels(&self) -> Result<Vec<(String, String)>, GmailError> {
        let url = format!("{}/gmail/v1/users/{}/labels", self.endpoint, self.user);
        match self.call(&url, &[], Body::None, None)? {
            Answer::Status(200, body) => {
                let value = self.json(&url, &body)?;
                let labels = value
                    .get("labels")
                    .and_then(|l| l.as_array())
                    .map(|labels| {
                        labels
                            .iter()
                            .filter_map(|l| {
                                Some((
                                    l.get("id")?.as_str()?.to_owned(),
                                    l.get("name")?.as_str()?.to_owned(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(labels)
            }
            Answer::Status(status, body) => Err(self.unexpected(&url, status, &body)),
            Answer::Found(_) => Ok(Vec::new()),
        }
    }

    /// Creates a user label; returns its id, or `None` when Gmail says it exists (409).
    pub(super) fn create_label(&self, name: &str) -> Result<Option<String>, GmailError> {
        let url = format!("{}/gmail/v1/users/{}/labels", self.endpoint, self.user);
        let body = serde_json::json!({
            "name": name,
            "labelListVisibility": "labelShow",
            "messageListVisibility": "show",
        })
        .to_string()
        .into_bytes();
        match self.call(&url, &[], Body::Json(body), None)? {
            Answer::Status(200, body) => self.id_in(&url, &body).map(Some),
            Answer::Status(409, _) => Ok(None),
            Answer::Status(status, body) => Err(self.unexpected(&url, status, &body)),
            Answer::Found(_) => Ok(None),
        }
    }

    /// One call with its retries. `recheck`: an import's Message-ID, searched for before a
    /// retry that could otherwise import the message twice.
    fn call(
        &self,
        url: &str,
        query: &[(&str, String)],
        body: Body<'_>,
        recheck: Option<&str>,
    ) -> Result<Answer, GmailError> {
        let import = matches!(body, Body::Import(..));
        let mut refreshed = false;
        let mut in_doubt = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let token = oauth::access_token(&self.oauth)?;
            let bearer = Zeroizing::new(format!("Bearer {}", token.expose_str().unwrap_or("")));
            let outcome = self.send(url, query, &body, &bearer);
            let (status, retry_after, answer) = match outcome {
                Ok(answer) => answer,
                Err(message) => {
                    in_doubt |= import;
                    if attempts >= MAX_ATTEMPTS {
                        return Err(GmailError::Transport {
                            account: self.account.clone(),
                            url: url.to_owned(),
                            message,
                            in_doubt,
                        });
                    }
                    (0, None, Vec::new())
                }
            };
            let rate_limited = status == 429 || (status == 403 && is_rate_limit(&answer));
            match status {
                0 => {}
                401 if !refreshed => {
                    // Revoked early, or the clock is off: one refresh tells which.
                    refreshed = true;
                    oauth::refresh_now(&self.oauth)?;
                    attempts -= 1;
                    continue;
                }
                401 | 403 if !rate_limited => {
                    return Err(GmailError::Unauthorized {
                        account: self.account.clone(),
                        status,
                        reason: reason(&answer),
                        scope: GMAIL_SCOPE,
                    });
                }
                _ if rate_limited => {}
                500..=599 => in_doubt |= import,
                _ => return Ok(Answer::Status(status, answer)),
            }
            if attempts >= MAX_ATTEMPTS {
                return Err(GmailError::Unavailable {
                    account: self.account.clone(),
                    status,
                    attempts,
                    in_doubt,
                });
            }
            let wait = retry_after
                .unwrap_or(BACKOFF.saturating_mul(1 << (attempts - 1).min(4)))
                .min(MAX_RETRY_AFTER);
            std::thread::sleep(wait);
            if in_doubt && let Some(message_id) = recheck {
                match self.find(message_id) {
                    Ok(Some(id)) => return Ok(Answer::Found(id)),
                    Ok(None) => {}
                    // Still unknown whether it went in: recovery settles it next run.
                    Err(e) => {
                        return Err(GmailError::Transport {
                            account: self.account.clone(),
                            url: url.to_owned(),
                            message: format!(
                                "the import's answer was lost and the search for the message failed: {e}"
                            ),
                            in_doubt: true,
                        });
                    }
                }
            }
        }
    }

    /// One request (GET without a body, POST with one): (status, Retry-After, body), or a
    /// transport failure's words.
    fn send(
        &self,
        url: &str,
        query: &[(&str, String)],
        body: &Body<'_>,
        bearer: &str,
    ) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
        let mut response = match body {
            Body::None => {
                let mut request = self.agent.get(url);
                for (k, v) in query {
                    request = request.query(*k, v);
                }
                request
                    .header("Authorization", bearer)
                    .header("Accept", "application/json")
                    .call()
            }
            Body::Json(json) => {
                let mut request = self.agent.post(url);
                for (k, v) in query {
                    request = request.query(*k, v);
                }
                request
                    .header("Authorization", bearer)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json; charset=UTF-8")
                    .send(&json[..])
            }
            Body::Import(staged, metadata) => {
                // Half the message's own hash (RFC 2046: at most 70 characters): it cannot
                // occur in the message by accident.
                let hash = staged.sha_hex();
                let boundary = format!("popwire-{}", hash.get(..32).unwrap_or(&hash));
                let preamble = format!(
                    "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n",
                    String::from_utf8_lossy(metadata)
                );
                let epilogue = format!("\r\n--{boundary}--\r\n");
                let total = preamble.len() as u64 + staged.size + epilogue.len() as u64;
                let mut file = &staged.spool;
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| format!("cannot rewind the staged message: {e}"))?;
                let mut reader = Cursor::new(preamble.into_bytes())
                    .chain(file.take(staged.size))
                    .chain(Cursor::new(epilogue.into_bytes()));
                let mut request = self.agent.post(url);
                for (k, v) in query {
                    request = request.query(*k, v);
                }
                let send_time = Duration::from_secs(120 + total / MIN_UPLOAD_RATE);
                request
                    .config()
                    .timeout_send_body(Some(send_time))
                    .build()
                    .header("Authorization", bearer)
                    .header("Accept", "application/json")
                    .header(
                        "Content-Type",
                        format!("multipart/related; boundary={boundary}"),
                    )
                    .header("Content-Length", total.to_string())
                    .send(ureq::SendBody::from_reader(&mut reader))
            }
        }
        .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok((status, retry_after, answer))
    }

    fn json(&self, url: &str, body: &[u8]) -> Result<serde_json::Value, GmailError> {
        serde_json::from_slice(body).map_err(|e| GmailError::BadResponse {
            url: url.to_owned(),
            message: format!("not JSON ({e})"),
        })
    }

    /// The `id` of a JSON answer (a message's, a label's): short and alphanumeric.
    fn id_in(&self, url: &str, body: &[u8]) -> Result<String, GmailError> {
        let value = self.json(url, body)?;
        match value.get("id").and_then(|v| v.as_str()) {
            Some(id)
                if !id.is_empty()
                    && id.len() <= 128
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Ok(id.to_owned())
            }
            _ => Err(GmailError::BadResponse {
                url: url.to_owned(),
                message: "no usable \"id\" in the answer".to_owned(),
            }),
        }
    }

    fn unexpected(&self, url: &str, status: u16, body: &[u8]) -> GmailError {
        GmailError::BadResponse {
            url: url.to_owned(),
            message: format!(
                "HTTP {status}{}",
                reason(body).map(|r| format!(": {r}")).unwrap_or_default()
            ),
        }
    }
}

/// Google's error message (`error.message`, else `error.status`), cleaned.
fn reason(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    error
        .get("message")
        .or_else(|| error.get("status"))
        .and_then(|m| m.as_str())
        .map(clean)
}

/// A 403 that only asks to slow down (Google's `rateLimitExceeded`, `userRateLimitExceeded`).
fn is_rate_limit(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    value
        .pointer("/error/errors")
        .and_then(|e| e.as_array())
        .is_some_and(|errors| {
            errors.iter().any(|e| {
                e.get("reason")
                    .and_then(|r| r.as_str())
                    .is_some_and(|r| r.ends_with("ateLimitExceeded"))
            })
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn user_ids_are_percent_encoded_as_path_segments() {
        assert_eq!(segment("me"), "me");
        assert_eq!(segment("a.b@example.com"), "a.b@example.com");
        assert_eq!(segment("a b/c?"), "a%20b%2Fc%3F");
    }

    #[test]
    fn google_errors_are_read_and_cleaned() {
        let body = br#"{"error":{"code":400,"message":"Invalid\u001b[31m label","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(reason(body).as_deref(), Some("Invalid\\u{1b}[31m label"));
        assert_eq!(reason(b"<html>"), None);
        let limited = br#"{"error":{"code":403,"errors":[{"reason":"userRateLimitExceeded"}]}}"#;
        assert!(is_rate_limit(limited));
        let scope = br#"{"error":{"code":403,"errors":[{"reason":"insufficientPermissions"}]}}"#;
        assert!(!is_rate_limit(scope));
    }
}

//! The HTTP client the oauth2 crate's flows run over: ureq 3 with rustls (ring), no redirects,
//! a time limit and a size limit.
//!
//! Written here rather than oauth2's own `ureq` feature (ureq 2), which turns every HTTP 400
//! into a transport error, losing the `invalid_grant` body that tells a revoked refresh token
//! from a network failure.

use std::time::Duration;

use oauth2::{HttpRequest, HttpResponse};

/// How long one request to the authorization server may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The most popwire reads of an answer: token responses are a few KB.
const MAX_BODY: u64 = 1 << 20;

/// A transport failure, with the words of ureq (no body, no header values).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub(super) String);

/// A blocking HTTP client for the token, device and metadata endpoints.
pub(super) struct HttpClient {
    agent: ureq::Agent,
}

impl HttpClient {
    pub(super) fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The token endpoint must not send the client's secrets elsewhere (RFC 6749 s. 3.2).
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .user_agent(concat!("popwire/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// A GET returning the status and body (metadata discovery).
    pub(super) fn get(&self, url: &str) -> Result<(u16, Vec<u8>), HttpError> {
        let mut response = self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| HttpError(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| HttpError(e.to_string()))?;
        Ok((status, body))
    }
}

impl oauth2::SyncHttpClient for HttpClient {
    type Error = HttpError;

    fn call(&self, request: HttpRequest) -> Result<HttpResponse, Self::Error> {
        let response = self
            .agent
            .run(request)
            .map_err(|e| HttpError(e.to_string()))?;
        let (parts, mut body) = response.into_parts();
        let bytes = body
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| HttpError(e.to_string()))?;
        Ok(HttpResponse::from_parts(parts, bytes))
    }
}

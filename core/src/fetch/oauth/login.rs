//! The two login flows of `popwire auth login`: the device code (RFC 8628: a URL and a code to
//! enter on any other device, for servers and SSH sessions) and the loopback redirect (RFC
//! 8252 with PKCE, RFC 7636: the browser comes back to a listener on 127.0.0.1). Each saves the
//! tokens in the account's token file.

use std::time::{Duration, Instant};

use oauth2::basic::BasicErrorResponse;
use oauth2::{
    AuthUrl, AuthorizationCode, CsrfToken, DeviceAuthorizationUrl, DeviceCodeErrorResponse,
    DeviceCodeErrorResponseType, PkceCodeChallenge, RedirectUrl, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse,
};

use super::error::clean;
use super::http::{HttpClient, HttpError};
use super::{
    OAuthError, TokenFile, TokenStatus, client, endpoints, refused, status, token_error, token_set,
};
use crate::fetch::config::{OAuthConfig, Provider};

/// What the user must do for the device flow: open `verification_uri`, enter `user_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The page to open.
    pub verification_uri: String,
    /// The page with the code filled in, when the server offers one.
    pub verification_uri_complete: Option<String>,
    /// The code to enter (short-lived and single-use, so safe to show).
    pub user_code: String,
    /// How long the code is valid.
    pub expires_in: Duration,
}

/// Settings of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    /// How long the loopback flow waits for the browser to come back.
    pub timeout: Duration,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
        }
    }
}

fn scopes(config: &OAuthConfig) -> impl Iterator<Item = Scope> + '_ {
    config.scopes.iter().map(|s| Scope::new(s.clone()))
}

fn missing(config: &OAuthConfig, what: &str, fix: &str) -> OAuthError {
    OAuthError::Config {
        account: config.account.clone(),
        message: format!("the authorization server has no {what}"),
        fix: fix.to_owned(),
    }
}

fn bad_url(config: &OAuthConfig, url: &str, e: impl std::fmt::Display) -> OAuthError {
    OAuthError::Config {
        account: config.account.clone(),
        message: format!("{url:?} is not a URL: {e}"),
        fix: "fix the endpoint in [accounts.NAME.oauth]".to_owned(),
    }
}

fn failed(config: &OAuthConfig, reason: impl Into<String>) -> OAuthError {
    OAuthError::LoginFailed {
        account: config.account.clone(),
        reason: reason.into(),
    }
}

/// Saves freshly obtained tokens and reports their status.
fn keep(config: &OAuthConfig, tokens: &super::TokenSet) -> Result<TokenStatus, OAuthError> {
    let file = TokenFile::new(&config.token_file);
    let lock = file.lock()?;
    file.save(tokens)?;
    drop(lock);
    status(config)?.ok_or_else(|| failed(config, "the token file vanished after it was written"))
}

/// The device-code flow: asks for a code, hands it to `show` (print it), then polls the
/// token endpoint as RFC 8628 says (the server's `interval`, 5 s more on `slow_down`, going on
/// through `authorization_pending`) until the user approves, declines (`access_denied`) or
/// the code expires (`expired_token`).
pub fn login_device(
    config: &OAuthConfig,
    show: &mut dyn FnMut(&DeviceCode),
) -> Result<TokenStatus, OAuthError> {
    let endpoints = endpoints(config)?;
    let token = endpoints
        .token
        .ok_or_else(|| missing(config, "token endpoint", "set token_endpoint or issuer"))?;
    let device = endpoints.device_authorization.ok_or_else(|| {
        missing(
            config,
            "device authorization endpoint",
            "log in with --browser, or set device_authorization_endpoint",
        )
    })?;
    let device_url =
        DeviceAuthorizationUrl::new(device.clone()).map_err(|e| bad_url(config, &device, e))?;
    let client = client(config, &token)?.set_device_authorization_url(device_url);
    let http = HttpClient::new();
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(scopes(config))
        .request(&http)
        .map_err(|e| request_error(config, &device, e))?;
    show(&DeviceCode {
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|u| u.secret().to_owned()),
        user_code: details.user_code().secret().to_owned(),
        expires_in: details.expires_in(),
    });
    let response = client
        .exchange_device_access_token(&details)
        .request(&http, std::thread::sleep, None)
        .map_err(|e| device_error(config, &token, e))?;
    keep(config, &token_set(config, &token, &response))
}

/// A failed device authorization request (before any code was shown).
fn request_error(
    config: &OAuthConfig,
    url: &str,
    error: RequestTokenError<HttpError, BasicErrorResponse>,
) -> OAuthError {
    match error {
        RequestTokenError::ServerResponse(response) => refused(
            config,
            response.error().as_ref(),
            response.error_description().map(|d| clean(d)),
        ),
        other => token_error(config, url, other),
    }
}

/// A failed poll of the device flow.
fn device_error(
    config: &OAuthConfig,
    url: &str,
    error: RequestTokenError<HttpError, DeviceCodeErrorResponse>,
) -> OAuthError {
    let response = match error {
        RequestTokenError::ServerResponse(response) => response,
        RequestTokenError::Request(e) => {
            return OAuthError::Http {
                url: url.to_owned(),
                message: e.0,
            };
        }
        RequestTokenError::Parse(e, _) => {
            return OAuthError::BadResponse {
                url: url.to_owned(),
                message: format!("not an OAuth 2.0 token response ({})", e.path()),
            };
        }
        RequestTokenError::Other(message) => {
            return OAuthError::BadResponse {
                url: url.to_owned(),
                message: clean(&message),
            };
        }
    };
    let description = response.error_description().map(|d| clean(d));
    match response.error() {
        DeviceCodeErrorResponseType::AccessDenied => {
            failed(config, "the sign-in was declined (access_denied)")
        }
        DeviceCodeErrorResponseType::ExpiredToken => failed(
            config,
            "the code expired before it was approved (expired_token); run the command again",
        ),
        DeviceCodeErrorResponseType::Basic(basic) => refused(config, basic.as_ref(), description),
        other => refused(config, other.as_ref(), description),
    }
}

/// The page the browser shows once it came back.
const DONE_PAGE: &str = "<!doctype html><title>popwire</title><p>Signed in. You can close this window and go back to the terminal.</p>";
const FAILED_PAGE: &str =
    "<!doctype html><title>popwire</title><p>The sign-in did not complete. See the terminal.</p>";

fn respond(request: tiny_http::Request, status: u16, page: &str) {
    let mut response = tiny_http::Response::from_string(page).with_status_code(status);
    if let Ok(header) =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/html; charset=utf-8"[..])
    {
        response = response.with_header(header);
    }
    // The browser going away does not change the outcome.
    let _ = request.respond(response);
}

/// The loopback-redirect flow with PKCE (S256): listens on 127.0.0.1 on a port the system
/// picks, hands the authorization URL to `show` (print it, open a browser), waits up to
/// `options.timeout` for the browser to come back with a code whose `state` matches, and
/// exchanges the code with the PKCE verifier.
pub fn login_loopback(
    config: &OAuthConfig,
    options: &LoginOptions,
    show: &mut dyn FnMut(&str),
) -> Result<TokenStatus, OAuthError> {
    let endpoints = endpoints(config)?;
    let token = endpoints
        .token
        .ok_or_else(|| missing(config, "token endpoint", "set token_endpoint or issuer"))?;
    let authorization = endpoints.authorization.ok_or_else(|| {
        missing(
            config,
            "authorization endpoint",
            "log in with --device, or set authorization_endpoint",
        )
    })?;
    let listener = tiny_http::Server::http("127.0.0.1:0")
        .map_err(|e| failed(config, format!("cannot listen on 127.0.0.1: {e}")))?;
    let port = listener
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or_else(|| failed(config, "the loopback listener has no port"))?;
    let redirect = format!("http://127.0.0.1:{port}/");
    let auth_url =
        AuthUrl::new(authorization.clone()).map_err(|e| bad_url(config, &authorization, e))?;
    let redirect_url =
        RedirectUrl::new(redirect.clone()).map_err(|e| bad_url(config, &redirect, e))?;
    let client = client(config, &token)?
        .set_auth_uri(auth_url)
        .set_redirect_uri(redirect_url);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(scopes(config))
        .set_pkce_challenge(challenge);
    if config.provider == Some(Provider::Google) {
        // Google issues a refresh token to this flow only when asked for offline access.
        request = request
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent");
    }
    let (url, state) = request.url();
    show(url.as_str());

    let deadline = Instant::now() + options.timeout;
    let code = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = match listener.recv_timeout(left) {
            Ok(Some(request)) => request,
            Ok(None) => {
                return Err(failed(
                    config,
                    format!(
                        "the browser did not come back within {} s",
                        options.timeout.as_secs()
                    ),
                ));
            }
            Err(e) => return Err(failed(config, format!("the loopback listener failed: {e}"))),
        };
        let Ok(target) = oauth2::url::Url::parse(&format!("http://127.0.0.1{}", request.url()))
        else {
            respond(request, 400, FAILED_PAGE);
            continue;
        };
        if target.path() != "/" {
            // A favicon or a stray request: not the redirect.
            respond(request, 404, FAILED_PAGE);
            continue;
        }
        let param = |name: &str| {
            target
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        // A redirect without our state is not the one we started (RFC 6749 s. 10.12): ignore it.
        if param("state").as_deref() != Some(state.secret().as_str()) {
            respond(request, 400, FAILED_PAGE);
            continue;
        }
        if let Some(error) = param("error") {
            respond(request, 200, FAILED_PAGE);
            let description = param("error_description")
                .map(|d| format!(": {}", clean(&d)))
                .unwrap_or_default();
            return Err(failed(
                config,
                format!(
                    "the authorization server said {}{description}",
                    clean(&error)
                ),
            ));
        }
        match param("code") {
            Some(code) => {
                respond(request, 200, DONE_PAGE);
                break code;
            }
            None => {
                respond(request, 400, FAILED_PAGE);
            }
        }
    };
    let http = HttpClient::new();
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request(&http)
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => refused(
                config,
                r.error().as_ref(),
                r.error_description().map(|d| clean(d)),
            ),
            other => token_error(config, &token, other),
        })?;
    keep(config, &token_set(config, &token, &response))
}

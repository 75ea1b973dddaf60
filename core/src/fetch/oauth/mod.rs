//! OAuth 2.0 for the fetch job (feature `oauth`): logging in (device code, RFC 8628, and
//! loopback redirect with PKCE, RFC 8252 + 7636), keeping the tokens in a private file, and
//! refreshing the access token before it expires, transparently, when a fetch needs it.
//!
//! The flows themselves are the `oauth2` crate's; this module chooses the endpoints (presets,
//! explicit URLs or RFC 8414 metadata), runs them over [`http`]'s client, maps every failure
//! to an [`OAuthError`] whose class says what to do, and never lets a token reach a message.
//!
//! ```no_run
//! # fn demo(config: &popwire::fetch::config::OAuthConfig) -> Result<(), popwire::fetch::oauth::OAuthError> {
//! // Once: `popwire auth login NAME` runs a login flow and writes the token file.
//! // At each connection: a fresh access token (refreshed when under a minute is left).
//! let token = popwire::fetch::oauth::access_token(config)?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, ClientId, EndpointNotSet, EndpointSet, RefreshToken, RequestTokenError,
    TokenResponse, TokenUrl,
};

use crate::fetch::config::{ClientSecret, OAuthConfig};
use crate::proto::Secret;

mod error;
mod http;
mod login;
mod tokens;

pub use error::OAuthError;
pub use http::{HTTP_TIMEOUT, HttpError};
pub use login::{DeviceCode, LoginOptions, login_device, login_loopback};
pub use tokens::{TokenFile, TokenSet};

use error::clean;
use http::HttpClient;

/// An access token with less than this left is refreshed before it is used: enough for a
/// connection, the TLS handshake and the AUTH exchange to finish while it is still valid.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A token for the mail server: the stored access token while it has more than
/// [`REFRESH_MARGIN`] left, else a refreshed one (saved before it is returned). Errors that
/// only a new login fixes are [`OAuthError::LoginRequired`] (class `auth`, exit 77).
pub fn access_token(config: &OAuthConfig) -> Result<Secret, OAuthError> {
    let file = TokenFile::new(&config.token_file);
    let _lock = file.lock()?;
    let Some(tokens) = file.load(&config.account)? else {
        return Err(OAuthError::LoginRequired {
            account: config.account.clone(),
            reason: "no OAuth tokens yet".to_owned(),
        });
    };
    if tokens.fresh_for(REFRESH_MARGIN, tokens::now()) {
        return Ok(tokens.access_token);
    }
    let refreshed = refresh(config, &tokens)?;
    file.save(&refreshed)?;
    Ok(refreshed.access_token)
}

/// A new access token now, whatever the stored one's expiry: for a token the mail server
/// refused before it expired. Saved before it is returned.
pub fn refresh_now(config: &OAuthConfig) -> Result<Secret, OAuthError> {
    let file = TokenFile::new(&config.token_file);
    let _lock = file.lock()?;
    let Some(tokens) = file.load(&config.account)? else {
        return Err(OAuthError::LoginRequired {
            account: config.account.clone(),
            reason: "no OAuth tokens yet".to_owned(),
        });
    };
    let refreshed = refresh(config, &tokens)?;
    file.save(&refreshed)?;
    Ok(refreshed.access_token)
}

/// Exchanges the refresh token of `tokens` for new tokens (RFC 6749 section 6). Keeps the old
/// refresh token when the server sends no new one, as Google does.
pub fn refresh(config: &OAuthConfig, tokens: &TokenSet) -> Result<TokenSet, OAuthError> {
    let Some(refresh_token) = &tokens.refresh_token else {
        return Err(OAuthError::LoginRequired {
            account: config.account.clone(),
            reason: "the access token expired and the server issued no refresh token".to_owned(),
        });
    };
    let refresh_text = refresh_token
        .expose_str()
        .ok_or_else(|| OAuthError::LoginRequired {
            account: config.account.clone(),
            reason: "the stored refresh token is not text".to_owned(),
        })?;
    let endpoint = &tokens.token_endpoint;
    let client = client(config, endpoint)?;
    let http = HttpClient::new();
    let response = client
        .exchange_refresh_token(&RefreshToken::new(refresh_text.to_owned()))
        .request(&http)
        .map_err(|e| token_error(config, endpoint, e))?;
    let mut fresh = token_set(config, endpoint, &response);
    if fresh.refresh_token.is_none() {
        fresh.refresh_token = Some(refresh_token.clone());
    }
    if response.scopes().is_none() {
        fresh.scopes.clone_from(&tokens.scopes);
    }
    Ok(fresh)
}

/// The client secret, from the file or its environment variable.
fn client_secret(config: &OAuthConfig) -> Result<Option<oauth2::ClientSecret>, OAuthError> {
    match &config.client_secret {
        None => Ok(None),
        Some(ClientSecret::Literal(secret)) => Ok(Some(oauth2::ClientSecret::new(
            secret.expose_str().unwrap_or_default().to_owned(),
        ))),
        Some(ClientSecret::Env(var)) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(Some(oauth2::ClientSecret::new(value))),
            _ => Err(OAuthError::Config {
                account: config.account.clone(),
                message: format!("environment variable {var} (client_secret_env) is not set"),
                fix: format!("export {var} with the OAuth client secret"),
            }),
        },
    }
}

/// The oauth2 client for `token_endpoint`, with the user's client id and secret. The secret
/// goes in the request body: Google and Microsoft both take it there, and public clients
/// (no secret) send their id there anyway.
type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn client(config: &OAuthConfig, token_endpoint: &str) -> Result<TokenClient, OAuthError> {
    let token_url = TokenUrl::new(token_endpoint.to_owned()).map_err(|e| OAuthError::Config {
        account: config.account.clone(),
        message: format!("token endpoint {token_endpoint:?} is not a URL: {e}"),
        fix: "fix token_endpoint or issuer".to_owned(),
    })?;
    let mut client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(token_url);
    if let Some(secret) = client_secret(config)? {
        client = client.set_client_secret(secret);
    }
    Ok(client)
}

/// New tokens from a token response; scopes the server did not list are those requested.
fn token_set(config: &OAuthConfig, endpoint: &str, response: &BasicTokenResponse) -> TokenSet {
    let now = tokens::now();
    TokenSet {
        access_token: Secret::from(response.access_token().secret().as_str()),
        refresh_token: response
            .refresh_token()
            .map(|r| Secret::from(r.secret().as_str())),
        expires_at: response
            .expires_in()
            .map(|d| now.saturating_add(d.as_secs())),
        scopes: response.scopes().map_or_else(
            || config.scopes.clone(),
            |s| s.iter().map(|s| s.to_string()).collect(),
        ),
        token_endpoint: endpoint.to_owned(),
        obtained_at: now,
    }
}

/// A failed token request as an [`OAuthError`]: `invalid_grant` asks for a new login.
fn token_error(
    config: &OAuthConfig,
    url: &str,
    error: RequestTokenError<HttpError, BasicErrorResponse>,
) -> OAuthError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let description = response.error_description().map(|d| clean(d));
            match response.error() {
                BasicErrorResponseType::InvalidGrant => OAuthError::LoginRequired {
                    account: config.account.clone(),
                    reason: format!(
                        "the authorization server refused the refresh token (invalid_grant{}): it was revoked or expired",
                        description.map(|d| format!(": {d}")).unwrap_or_default()
                    ),
                },
                other => refused(config, other.as_ref(), description),
            }
        }
        RequestTokenError::Request(e) => OAuthError::Http {
            url: url.to_owned(),
            message: e.0,
        },
        // The body is not quoted: it may hold a token.
        RequestTokenError::Parse(e, _) => OAuthError::BadResponse {
            url: url.to_owned(),
            message: format!("not an OAuth 2.0 token response ({})", e.path()),
        },
        RequestTokenError::Other(message) => OAuthError::BadResponse {
            url: url.to_owned(),
            message: clean(&message),
        },
    }
}

/// An OAuth error code other than `invalid_grant`, with what to check.
fn refused(config: &OAuthConfig, code: &str, description: Option<String>) -> OAuthError {
    let fix = match code {
        "invalid_client" | "unauthorized_client" => {
            "check client_id and client_secret, and that the client may use this flow"
        }
        "invalid_scope" => "check scopes: the client may not be allowed them",
        _ => "check the [accounts.NAME.oauth] settings",
    };
    OAuthError::Refused {
        account: config.account.clone(),
        code: clean(code),
        description,
        fix,
    }
}

/// The endpoints to use: the configured ones, completed from the issuer's metadata (RFC 8414,
/// then OpenID Connect discovery) when some are missing.
pub fn endpoints(config: &OAuthConfig) -> Result<crate::fetch::config::Endpoints, OAuthError> {
    let mut endpoints = config.endpoints.clone();
    let complete = endpoints.token.is_some()
        && endpoints.device_authorization.is_some()
        && endpoints.authorization.is_some();
    let Some(issuer) = config.issuer.as_deref().filter(|_| !complete) else {
        return Ok(endpoints);
    };
    let http = HttpClient::new();
    let base = issuer.trim_end_matches('/');
    let mut last = None;
    for well_known in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let url = format!("{base}{well_known}");
        let (status, body) = http.get(&url).map_err(|e| OAuthError::Http {
            url: url.clone(),
            message: e.0,
        })?;
        if status != 200 {
            last = Some(OAuthError::BadResponse {
                url,
                message: format!("HTTP status {status}"),
            });
            continue;
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| OAuthError::BadResponse {
                url: url.clone(),
                message: format!("not JSON metadata ({e})"),
            })?;
        // RFC 8414 section 3.3: the metadata must name the issuer it was fetched for.
        let named = metadata.get("issuer").and_then(|v| v.as_str());
        if named.map(|n| n.trim_end_matches('/')) != Some(base) {
            return Err(OAuthError::BadResponse {
                url,
                message: format!(
                    "the metadata names issuer {:?}, not {issuer:?}",
                    named.map(clean).unwrap_or_default()
                ),
            });
        }
        let field = |name: &str| -> Result<Option<String>, OAuthError> {
            match metadata.get(name).and_then(|v| v.as_str()) {
                None => Ok(None),
                Some(u) if u.starts_with("https://") || loopback_http(u) => Ok(Some(u.to_owned())),
                Some(u) => Err(OAuthError::BadResponse {
                    url: url.clone(),
                    message: format!("{name} {:?} is not an https:// URL", clean(u)),
                }),
            }
        };
        endpoints.token = endpoints.token.or(field("token_endpoint")?);
        endpoints.device_authorization = endpoints
            .device_authorization
            .or(field("device_authorization_endpoint")?);
        endpoints.authorization = endpoints.authorization.or(field("authorization_endpoint")?);
        return Ok(endpoints);
    }
    Err(last.unwrap_or_else(|| OAuthError::BadResponse {
        url: issuer.to_owned(),
        message: "no metadata".to_owned(),
    }))
}

/// Plain HTTP is allowed only to this machine (the issuer was checked the same way).
fn loopback_http(url: &str) -> bool {
    url.strip_prefix("http://").is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        host == "127.0.0.1" || host == "[::1]" || host.eq_ignore_ascii_case("localhost")
    })
}

/// What `popwire auth status` shows: never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    /// Seconds the access token has left (negative: expired), when known.
    pub expires_in: Option<i64>,
    /// Whether a refresh token is stored.
    pub has_refresh_token: bool,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When the tokens were obtained or last refreshed (seconds since the epoch).
    pub obtained_at: u64,
}

/// The stored tokens' status, or `None` before the first login.
pub fn status(config: &OAuthConfig) -> Result<Option<TokenStatus>, OAuthError> {
    let file = TokenFile::new(&config.token_file);
    Ok(file.load(&config.account)?.map(|t| TokenStatus {
        expires_in: t.remaining(tokens::now()),
        has_refresh_token: t.refresh_token.is_some(),
        scopes: t.scopes.clone(),
        obtained_at: t.obtained_at,
    }))
}

/// Forgets the account's tokens (deletes the token file). `Ok(false)` when there were none.
/// The grant stays valid at the provider until the user revokes it there.
pub fn logout(config: &OAuthConfig) -> Result<bool, OAuthError> {
    let file = TokenFile::new(&config.token_file);
    let _lock = file.lock()?;
    file.remove()
}

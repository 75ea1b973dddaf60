//! `[accounts.NAME.oauth]`: where an OAuth 2.0 access token comes from.
//!
//! ```toml
//! [accounts.gmail.oauth]
//! provider = "google"
//! client_id = "1234-abc.apps.googleusercontent.com"
//! client_secret_env = "POPWIRE_GOOGLE_SECRET"
//! ```
//!
//! popwire ships no client id: each user registers their own (a "desktop" or "TV and limited
//! input" client at Google, a public client at Microsoft), so no provider has to review popwire
//! and no shared id can be revoked for everyone at once. The table is checked here, the same way
//! as the account; `fetch::oauth` (feature `oauth`) runs the flows and keeps the tokens.

use std::path::PathBuf;

use toml::de::DeValue;

use super::check::{AccountTable, Checker, Item, at, in_file_order, type_name};
use super::error::{ConfigError, ConfigErrorKind};
use super::suggest::suggest;
use crate::proto::Secret;

/// An authorization server popwire knows the endpoints and mail scopes of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Google (Gmail, Workspace).
    Google,
    /// Microsoft identity platform (Outlook.com, Microsoft 365).
    Microsoft,
}

impl Provider {
    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Microsoft => "microsoft",
        }
    }

    /// The scopes requested when the table sets none: POP and IMAP alike, and a refresh token.
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            // One scope covers POP, IMAP and SMTP; Google grants refresh tokens without asking.
            Self::Google => &["https://mail.google.com/"],
            Self::Microsoft => &[
                "https://outlook.office.com/POP.AccessAsUser.All",
                "https://outlook.office.com/IMAP.AccessAsUser.All",
                "offline_access",
            ],
        }
    }

    /// The endpoints, for `tenant` (Microsoft only; `common` by default).
    pub fn endpoints(self, tenant: &str) -> Endpoints {
        match self {
            Self::Google => Endpoints {
                authorization: Some("https://accounts.google.com/o/oauth2/v2/auth".to_owned()),
                device_authorization: Some("https://oauth2.googleapis.com/device/code".to_owned()),
                token: Some("https://oauth2.googleapis.com/token".to_owned()),
            },
            Self::Microsoft => {
                let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
                Endpoints {
                    authorization: Some(format!("{base}/authorize")),
                    device_authorization: Some(format!("{base}/devicecode")),
                    token: Some(format!("{base}/token")),
                }
            }
        }
    }
}

/// The authorization server's endpoints (RFC 6749, RFC 8628). Missing ones come from the
/// issuer's metadata (RFC 8414) when an issuer is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoints {
    /// The authorization endpoint, for the loopback-redirect flow.
    pub authorization: Option<String>,
    /// The device authorization endpoint, for the device-code flow.
    pub device_authorization: Option<String>,
    /// The token endpoint: every flow and every refresh.
    pub token: Option<String>,
}

/// Where the OAuth client secret comes from, if the client has one.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientSecret {
    /// `client_secret = "..."`. Google's desktop clients have one that is not really secret.
    Literal(Secret),
    /// `client_secret_env = "VAR"`.
    Env(String),
}

/// An account's OAuth 2.0 settings: `[accounts.NAME.oauth]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthConfig {
    /// The account these tokens are for (`NAME`), named in "log in again" hints.
    pub account: String,
    /// `provider`, when a preset was named.
    pub provider: Option<Provider>,
    /// `issuer`: the authorization server's issuer URL, for metadata discovery (RFC 8414).
    pub issuer: Option<String>,
    /// The endpoints: the preset's, overridden by any set in the table.
    pub endpoints: Endpoints,
    /// `client_id`: the user's own registered client.
    pub client_id: String,
    /// `client_secret` or `client_secret_env`.
    pub client_secret: Option<ClientSecret>,
    /// `scopes`: the preset's when not set.
    pub scopes: Vec<String>,
    /// `token_file`: where the tokens are kept; by default
    /// `$XDG_DATA_HOME/popwire/oauth/NAME.json` (`~/.local/share/...`).
    pub token_file: PathBuf,
    /// `sasl_initial_response` (default true): false sends `AUTH XOAUTH2` (or OAUTHBEARER)
    /// alone and the token after the server's `+`, for a server that refuses the one-line
    /// form. A token too long for the AUTH line always goes this way.
    pub sasl_initial_response: bool,
}

/// Every key the table accepts, with an example for fixes.
const OAUTH_KEYS: &[(&str, &str)] = &[
    ("provider", r#"provider = "google""#),
    ("tenant", r#"tenant = "common""#),
    ("issuer", r#"issuer = "https://auth.example.com""#),
    (
        "authorization_endpoint",
        r#"authorization_endpoint = "https://auth.example.com/authorize""#,
    ),
    (
        "device_authorization_endpoint",
        r#"device_authorization_endpoint = "https://auth.example.com/device""#,
    ),
    (
        "token_endpoint",
        r#"token_endpoint = "https://auth.example.com/token""#,
    ),
    ("client_id", r#"client_id = "your-client-id""#),
    ("client_secret", r#"client_secret = "...""#),
    (
        "client_secret_env",
        r#"client_secret_env = "OAUTH_CLIENT_SECRET""#,
    ),
    ("scopes", r#"scopes = ["https://mail.google.com/"]"#),
    (
        "token_file",
        r#"token_file = "~/.local/share/popwire/oauth/work.json""#,
    ),
    ("sasl_initial_response", "sasl_initial_response = false"),
];

const PROVIDER_VALUES: &str =
    r#"expected "google" or "microsoft" (or set issuer or token_endpoint for another server)"#;

/// The default token file for `stem` (the account name, or e.g. `NAME-imap` for a second login):
/// `$XDG_DATA_HOME/popwire/oauth/STEM.json`, else `~/.local/share/popwire/oauth/STEM.json`.
pub fn default_token_file(stem: &str, home: Option<&std::path::Path>) -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.filter(|h| h.is_absolute())
                .map(|h| h.join(".local").join("share"))
        })?;
    Some(
        data.join("popwire")
            .join("oauth")
            .join(format!("{stem}.json")),
    )
}

/// True for `http://` URLs that stay on this machine: the only plain-HTTP endpoints allowed.
pub(super) fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                host
            } else {
                authority
            }
        }
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Checker<'_> {
    /// Checks the `oauth` table `item` of `table`, whose tokens default to `stem`'s file.
    /// Public to the config module so another table (e.g. an IMAP destination) can reuse it.
    pub(super) fn oauth(
        &self,
        table: &AccountTable<'_>,
        key: &str,
        item: &Item<'_>,
        stem: &str,
    ) -> Result<OAuthConfig, ConfigError> {
        let DeValue::Table(entries) = item.get_ref() else {
            return Err(self.error(
                ConfigErrorKind::WrongType,
                at(item),
                Some(table.path(key)),
                format!("expected a table, found {}", type_name(item.get_ref())),
                Some(format!(
                    "write [{}] with provider and client_id below it",
                    table.path(key)
                )),
            ));
        };
        let sub = AccountTable {
            name: table.name,
            key: table.path(key),
            offset: at(item),
            fields: in_file_order(entries),
        };
        for &(field, value) in &sub.fields {
            if OAUTH_KEYS.iter().all(|(k, _)| *k != field) {
                let fix = suggest(field, OAUTH_KEYS.iter().map(|&(k, _)| k)).map_or_else(
                    || {
                        let known: Vec<&str> = OAUTH_KEYS.iter().map(|&(k, _)| k).collect();
                        format!("known keys: {}", known.join(", "))
                    },
                    |s| format!("did you mean {s:?}?"),
                );
                return Err(self.error(
                    ConfigErrorKind::UnknownKey,
                    at(value),
                    Some(sub.path(field)),
                    "unknown key",
                    Some(fix),
                ));
            }
        }
        let example = |k: &str| {
            OAUTH_KEYS
                .iter()
                .find(|(key, _)| *key == k)
                .map_or("", |&(_, e)| e)
        };
        let string = |k: &str| -> Result<Option<(String, &Item<'_>)>, ConfigError> {
            match sub.get(k) {
                None => Ok(None),
                Some(item) => match item.get_ref() {
                    DeValue::String(s) => Ok(Some((s.to_string(), item))),
                    other => Err(self.error(
                        ConfigErrorKind::WrongType,
                        at(item),
                        Some(sub.path(k)),
                        format!("expected a string, found {}", type_name(other)),
                        Some(format!("write it like {}", example(k))),
                    )),
                },
            }
        };
        let bad = |k: &str, item: &Item<'_>, message: String, fix: &str| {
            self.error(
                ConfigErrorKind::BadValue,
                at(item),
                Some(sub.path(k)),
                message,
                Some(fix.to_owned()),
            )
        };

        let provider = match string("provider")? {
            None => None,
            Some((name, item)) => match name.to_ascii_lowercase().as_str() {
                "google" | "gmail" => Some(Provider::Google),
                "microsoft" | "outlook" | "office365" => Some(Provider::Microsoft),
                _ => {
                    return Err(bad(
                        "provider",
                        item,
                        format!("unknown provider {name:?}"),
                        PROVIDER_VALUES,
                    ));
                }
            },
        };
        let tenant = match string("tenant")? {
            Some((_, item)) if provider != Some(Provider::Microsoft) => {
                return Err(bad(
                    "tenant",
                    item,
                    "tenant only applies to provider = \"microsoft\"".to_owned(),
                    "remove it",
                ));
            }
            Some((tenant, item))
                if tenant.is_empty()
                    || !tenant
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) =>
            {
                return Err(bad(
                    "tenant",
                    item,
                    format!("{tenant:?} is not a tenant name or id"),
                    r#"write "common", "organizations", "consumers" or the directory (tenant) id"#,
                ));
            }
            Some((tenant, _)) => tenant,
            None => "common".to_owned(),
        };
        let url = |k: &str| -> Result<Option<String>, ConfigError> {
            let Some((value, item)) = string(k)? else {
                return Ok(None);
            };
            if value.starts_with("https://") && value.len() > "https://".len() {
                return Ok(Some(value));
            }
            if is_loopback_http(&value) {
                return Ok(Some(value));
            }
            Err(bad(
                k,
                item,
                format!("{value:?} is not an https:// URL"),
                "write the full https:// URL (plain http:// only for localhost)",
            ))
        };
        let issuer = url("issuer")?;
        let mut endpoints = provider.map(|p| p.endpoints(&tenant)).unwrap_or_default();
        if let Some(e) = url("authorization_endpoint")? {
            endpoints.authorization = Some(e);
        }
        if let Some(e) = url("device_authorization_endpoint")? {
            endpoints.device_authorization = Some(e);
        }
        if let Some(e) = url("token_endpoint")? {
            endpoints.token = Some(e);
        }
        if provider.is_none() && issuer.is_none() && endpoints.token.is_none() {
            return Err(self.error(
                ConfigErrorKind::MissingKey,
                sub.offset,
                Some(sub.key.clone()),
                "no authorization server: missing \"provider\", \"issuer\" or \"token_endpoint\"",
                Some(
                    r#"add provider = "google" or "microsoft", or issuer = "https://..." for another server"#
                        .to_owned(),
                ),
            ));
        }

        let client_id = match string("client_id")? {
            Some((id, item)) if id.trim().is_empty() => {
                return Err(bad(
                    "client_id",
                    item,
                    "empty client_id".to_owned(),
                    "register an OAuth client with the provider and write its id",
                ));
            }
            Some((id, _)) => id.trim().to_owned(),
            None => {
                return Err(self.error(
                    ConfigErrorKind::MissingKey,
                    sub.offset,
                    Some(sub.key.clone()),
                    "missing key \"client_id\"",
                    Some(
                        "popwire ships no client id: register your own OAuth client with the provider (see README, OAuth) and add client_id = \"...\""
                            .to_owned(),
                    ),
                ));
            }
        };

        let client_secret = match (sub.get("client_secret"), sub.get("client_secret_env")) {
            (Some(_), Some(second)) => {
                return Err(self.error(
                    ConfigErrorKind::Conflict,
                    at(second),
                    Some(sub.path("client_secret_env")),
                    "conflicts with \"client_secret\"",
                    Some("keep only one of \"client_secret\", \"client_secret_env\"".to_owned()),
                ));
            }
            (Some(item), None) => match item.get_ref() {
                DeValue::String(s) if s.is_empty() => {
                    return Err(bad(
                        "client_secret",
                        item,
                        "empty client_secret".to_owned(),
                        "remove it for a public client, or write the secret",
                    ));
                }
                DeValue::String(s) => Some(ClientSecret::Literal(Secret::from(s.as_ref()))),
                other => {
                    return Err(self.error(
                        ConfigErrorKind::WrongType,
                        at(item),
                        Some(sub.path("client_secret")),
                        format!("expected a string, found {}", type_name(other)),
                        Some(format!("write it like {}", example("client_secret"))),
                    ));
                }
            },
            (None, Some(item)) => match item.get_ref() {
                DeValue::String(var) if var.is_empty() || var.contains(['=', '\0']) => {
                    return Err(bad(
                        "client_secret_env",
                        item,
                        format!("{var:?} is not an environment variable name"),
                        "write the variable's name, e.g. client_secret_env = \"OAUTH_CLIENT_SECRET\"",
                    ));
                }
                DeValue::String(var) => Some(ClientSecret::Env(var.to_string())),
                other => {
                    return Err(self.error(
                        ConfigErrorKind::WrongType,
                        at(item),
                        Some(sub.path("client_secret_env")),
                        format!("expected a string, found {}", type_name(other)),
                        Some(format!("write it like {}", example("client_secret_env"))),
                    ));
                }
            },
            (None, None) => None,
        };

        let scopes = match sub.get("scopes") {
            None => provider
                .map(|p| p.default_scopes().iter().map(|s| (*s).to_owned()).collect())
                .unwrap_or_default(),
            Some(item) => {
                let fix = format!("write it like {}", example("scopes"));
                let DeValue::Array(items) = item.get_ref() else {
                    return Err(self.error(
                        ConfigErrorKind::WrongType,
                        at(item),
                        Some(sub.path("scopes")),
                        format!(
                            "expected an array of strings, found {}",
                            type_name(item.get_ref())
                        ),
                        Some(fix),
                    ));
                };
                let mut scopes = Vec::with_capacity(items.len());
                for element in items {
                    match element.get_ref() {
                        // RFC 6749 3.3: scope tokens are printable ASCII without space, " or \.
                        DeValue::String(s)
                            if !s.is_empty()
                                && s.bytes().all(|b| {
                                    (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\'
                                }) =>
                        {
                            scopes.push(s.to_string());
                        }
                        DeValue::String(s) => {
                            return Err(bad(
                                "scopes",
                                element,
                                format!(
                                    "{s:?} is not a scope (RFC 6749: no spaces, quotes or backslashes)"
                                ),
                                "write one scope per string",
                            ));
                        }
                        other => {
                            return Err(self.error(
                                ConfigErrorKind::WrongType,
                                at(element),
                                Some(sub.path("scopes")),
                                format!("expected a string, found {}", type_name(other)),
                                Some(fix),
                            ));
                        }
                    }
                }
                scopes
            }
        };

        let token_file = match string("token_file")? {
            Some((raw, item)) => self
                .resolve_path(&raw)
                .map_err(|(message, fix)| bad("token_file", item, message, &fix))?,
            None => default_token_file(stem, self.home.as_deref()).ok_or_else(|| {
                self.error(
                    ConfigErrorKind::MissingKey,
                    sub.offset,
                    Some(sub.key.clone()),
                    "cannot place the token file: neither $XDG_DATA_HOME nor $HOME is set",
                    Some(format!("add {}", example("token_file"))),
                )
            })?,
        };

        let sasl_initial_response = match sub.get("sasl_initial_response") {
            None => true,
            Some(item) => match item.get_ref() {
                DeValue::Boolean(b) => *b,
                other => {
                    return Err(self.error(
                        ConfigErrorKind::WrongType,
                        at(item),
                        Some(sub.path("sasl_initial_response")),
                        format!("expected a boolean, found {}", type_name(other)),
                        Some(format!(
                            "write it like {}",
                            example("sasl_initial_response")
                        )),
                    ));
                }
            },
        };

        Ok(OAuthConfig {
            account: table.name.to_owned(),
            provider,
            issuer,
            endpoints,
            client_id,
            client_secret,
            scopes,
            token_file,
            sasl_initial_response,
        })
    }
}

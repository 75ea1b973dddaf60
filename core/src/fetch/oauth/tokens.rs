//! The token file: one JSON object per account, mode 0600 in a 0700 directory, replaced
//! atomically (temporary file, fsync, rename, fsync of the directory), so a crash or a full
//! disk leaves the old tokens or the new ones, never half of each.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::OAuthError;
use crate::fetch::private_fs::{create_private_dir, private_options, sync_dir};
use crate::proto::Secret;

/// The token file format this code writes; a file with another is refused (log in again).
const FORMAT: u32 = 1;

/// The largest token file read: tokens are a few KB.
const MAX_FILE: u64 = 1 << 20;

/// An account's tokens. `Debug` shows neither token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSet {
    /// The bearer token sent to the mail server.
    pub access_token: Secret,
    /// The token that gets new access tokens, when the server issued one.
    pub refresh_token: Option<Secret>,
    /// When the access token expires (seconds since the epoch), when the server said.
    pub expires_at: Option<u64>,
    /// The scopes granted (the server's `scope`, else those requested).
    pub scopes: Vec<String>,
    /// The token endpoint these tokens refresh at (kept so a discovered endpoint need not be
    /// discovered again).
    pub token_endpoint: String,
    /// When the tokens were obtained or last refreshed (seconds since the epoch).
    pub obtained_at: u64,
}

impl TokenSet {
    /// Seconds left before the access token expires at `now`; `None` when unknown.
    pub fn remaining(&self, now: u64) -> Option<i64> {
        self.expires_at
            .map(|at| i64::try_from(at).unwrap_or(i64::MAX) - i64::try_from(now).unwrap_or(0))
    }

    /// True when the access token is good for at least `margin` more at `now`. A token
    /// without an expiry is taken as good: the server did not say otherwise.
    pub fn fresh_for(&self, margin: Duration, now: u64) -> bool {
        self.remaining(now)
            .is_none_or(|left| left > i64::try_from(margin.as_secs()).unwrap_or(i64::MAX))
    }
}

/// The file's JSON form. Strings are wiped once moved into a [`Secret`].
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    format: u32,
    #[serde(borrow)]
    access_token: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    refresh_token: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    scopes: Vec<String>,
    token_endpoint: String,
    obtained_at: u64,
}

/// Seconds since the epoch.
pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The account's token file at `path`.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// The token file at `path` (it need not exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, action: &'static str) -> impl Fn(std::io::Error) -> OAuthError + '_ {
        move |source| OAuthError::TokenFile {
            action,
            path: self.path.clone(),
            source,
        }
    }

    /// Takes the file's lock (`FILE.lock`, flock), waiting for another popwire that is
    /// refreshing, so two runs never spend one refresh token twice. Released on drop.
    pub fn lock(&self) -> Result<File, OAuthError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(self.error("create the directory of the"))?;
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let file = private_options()
            .create(true)
            .append(true)
            .open(PathBuf::from(name))
            .map_err(self.error("lock the"))?;
        file.lock().map_err(self.error("lock the"))?;
        Ok(file)
    }

    /// The tokens, or `None` when there is no file yet. A file that is not one popwire wrote
    /// (or of another format) is an error that asks for a new login.
    pub fn load(&self, account: &str) -> Result<Option<TokenSet>, OAuthError> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error("read the")(e)),
        };
        let mut text = Zeroizing::new(Vec::new());
        file.by_ref()
            .take(MAX_FILE)
            .read_to_end(&mut text)
            .map_err(self.error("read the"))?;
        let damaged = |why: &str| OAuthError::LoginRequired {
            account: account.to_owned(),
            reason: format!("the token file {} {why}", self.path.display()),
        };
        // serde_json's message never quotes the input, only line and column.
        let stored: Stored<'_> =
            serde_json::from_slice(&text).map_err(|e| damaged(&format!("is damaged ({e})")))?;
        if stored.format != FORMAT {
            return Err(damaged(&format!(
                "has format {}, this popwire reads {FORMAT}",
                stored.format
            )));
        }
        Ok(Some(TokenSet {
            access_token: Secret::from(stored.access_token.as_ref()),
            refresh_token: stored.refresh_token.as_deref().map(Secret::from),
            expires_at: stored.expires_at,
            scopes: stored.scopes,
            token_endpoint: stored.token_endpoint,
            obtained_at: stored.obtained_at,
        }))
    }

    /// Replaces the file with `tokens`: a new 0600 file beside it, written and synced, renamed
    /// over the old one, and the directory synced.
    pub fn save(&self, tokens: &TokenSet) -> Result<(), OAuthError> {
        let text = |secret: &Secret| -> Result<String, OAuthError> {
            secret
                .expose_str()
                .map(str::to_owned)
                .ok_or_else(|| OAuthError::BadResponse {
                    url: tokens.token_endpoint.clone(),
                    message: "a token is not UTF-8".to_owned(),
                })
        };
        let access = Zeroizing::new(text(&tokens.access_token)?);
        let refresh = match &tokens.refresh_token {
            Some(r) => Some(Zeroizing::new(text(r)?)),
            None => None,
        };
        let stored = Stored {
            format: FORMAT,
            access_token: access.as_str().into(),
            refresh_token: refresh.as_ref().map(|r| r.as_str().into()),
            expires_at: tokens.expires_at,
            scopes: tokens.scopes.clone(),
            token_endpoint: tokens.token_endpoint.clone(),
            obtained_at: tokens.obtained_at,
        };
        let bytes = Zeroizing::new(serde_json::to_vec_pretty(&stored).map_err(|e| {
            OAuthError::TokenFile {
                action: "encode the",
                path: self.path.clone(),
                source: std::io::Error::other(e.to_string()),
            }
        })?);
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        create_private_dir(&dir).map_err(self.error("create the directory of the"))?;
        let mut temp_name = self.path.as_os_str().to_owned();
        temp_name.push(format!(".tmp.{}", std::process::id()));
        let temp = PathBuf::from(temp_name);
        let write = || -> std::io::Result<()> {
            let _ = std::fs::remove_file(&temp);
            let mut file = private_options().write(true).create_new(true).open(&temp)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)?;
            sync_dir(&dir)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            self.error("write the")(e)
        })
    }

    /// Deletes the file (logout). `Ok(false)` when there was none.
    pub fn remove(&self) -> Result<bool, OAuthError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = sync_dir(dir);
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.error("remove the")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sample() -> TokenSet {
        TokenSet {
            access_token: Secret::new("access-canary-123"),
            refresh_token: Some(Secret::new("refresh-canary-456")),
            expires_at: Some(1_000_000),
            scopes: vec!["https://mail.google.com/".into()],
            token_endpoint: "https://oauth2.googleapis.com/token".into(),
            obtained_at: 999_000,
        }
    }

    #[test]
    fn round_trip_private_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("sub/acct.json"));
        assert!(file.load("acct").unwrap().is_none());
        file.save(&sample()).unwrap();
        assert_eq!(file.load("acct").unwrap().unwrap(), sample());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(dir.path().join("sub"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // Only the file and its lock remain: no temporary file left behind.
        let _lock = file.lock().unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["acct.json", "acct.json.lock"]);
        assert!(file.remove().unwrap());
        assert!(!file.remove().unwrap());
    }

    #[test]
    fn debug_never_shows_tokens() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("canary"), "{text}");
    }

    #[test]
    fn damaged_file_asks_for_login_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("a.json"));
        std::fs::write(
            file.path(),
            b"{\"access_token\": \"secret-canary\", \"format\": ",
        )
        .unwrap();
        let error = file.load("a").unwrap_err();
        assert!(error.needs_login());
        let text = error.to_string();
        assert!(text.contains("popwire auth login a"), "{text}");
        assert!(!text.contains("canary"), "{text}");
    }

    #[test]
    fn freshness_margin() {
        let tokens = sample();
        assert!(tokens.fresh_for(Duration::from_secs(60), 1_000_000 - 61));
        assert!(!tokens.fresh_for(Duration::from_secs(60), 1_000_000 - 60));
        assert!(!tokens.fresh_for(Duration::from_secs(60), 2_000_000));
    }
}

//! Finding and reading the config file: its default place, its permissions, its text.

use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::check::Checker;
use super::error::{ConfigError, ConfigErrorKind, ErrorDetails};
use super::{Config, CredentialSource};

/// The config file's usual place: `$XDG_CONFIG_HOME/popwire/config.toml`, else
/// `$HOME/.config/popwire/config.toml`. `None` when neither variable is usable.
pub fn default_path() -> Option<PathBuf> {
    default_path_from(
        std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// [`default_path`] with the environment passed in, so it can be tested.
pub(super) fn default_path_from(
    xdg_config_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    let base = xdg_config_home
        .filter(|p| p.is_absolute())
        .or_else(|| home.filter(|p| p.is_absolute()).map(|h| h.join(".config")))?;
    Some(base.join("popwire").join("config.toml"))
}

/// Reads and checks the config file at `path`. Adds a warning when the file holds a literal
/// password but is readable by group or others.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let read_error = |source: std::io::Error| {
        let message = if source.kind() == std::io::ErrorKind::InvalidData {
            "cannot read it: it is not UTF-8 text".to_owned()
        } else {
            format!("cannot read it: {source}")
        };
        let fix = (source.kind() == std::io::ErrorKind::NotFound)
            .then(|| "create it with an [accounts.NAME] table".to_owned());
        ConfigError::new(ErrorDetails {
            path: path.to_owned(),
            line: None,
            key: None,
            kind: ConfigErrorKind::Read,
            message,
            fix,
            source: Some(source),
        })
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    // Permissions come from the open file, not the path, so they describe what was read.
    let metadata = file.metadata().map_err(read_error)?;
    // The text may hold a password: wipe it once parsed.
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(read_error)?;
    let mut config = parse(&text, path)?;
    let has_literal_password = config.accounts.iter().any(|(_, a)| {
        matches!(a.credential, CredentialSource::Password(_))
            || matches!(&a.destination, super::Destination::Imap(imap)
                    if matches!(imap.credential, CredentialSource::Password(_)))
    });
    if has_literal_password && readable_by_others(&metadata) {
        config.warnings.push(format!(
            "{}: holds a password but other users can read it (run chmod 600 {}, or use password_command)",
            path.display(),
            shell_quote(&path.display().to_string()),
        ));
    }
    Ok(config)
}

#[cfg(unix)]
fn readable_by_others(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o077 != 0
}

#[cfg(not(unix))]
fn readable_by_others(_metadata: &std::fs::Metadata) -> bool {
    false
}

/// Quotes `s` for a shell command the user may paste, when it needs it.
fn shell_quote(s: &str) -> String {
    let plain = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%~".contains(&b));
    if plain && !s.is_empty() {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Checks config text. `origin` is the file it came from: it names the file in errors and is the
/// base for relative paths. Reads `$HOME` to expand `~/` but touches no file.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    Checker::new(text, origin, std::env::var_os("HOME").map(PathBuf::from)).check()
}

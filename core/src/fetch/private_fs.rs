//! Files and directories only the user can read, and making directory entries durable: what the
//! journal and every store need, written once; and where that state lives by default.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Creates `dir` and its parents, mode 0700 on Unix (mail is private).
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates `dir` and its missing parents (mode 0700), then makes each new entry durable by
/// syncing the directory that holds it: a new Maildir or state directory must not vanish in a
/// power loss after messages were recorded in it.
pub(crate) fn create_private_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path);
        at = path.parent();
    }
    super::sys::create_dir(dir)?;
    for created in missing.iter().rev() {
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        super::sys::sync_dir(parent)?;
    }
    Ok(())
}

/// `OpenOptions` whose newly created files get mode 0600 on Unix.
pub(crate) fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Makes a directory's entries (a rename, a new file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `$XDG_STATE_HOME/popwire`, else `~/.local/state/popwire`: where journals, locks and spools
/// live by default (`FetchOptions::default_state_dir`).
pub(crate) fn default_state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("popwire"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state/popwire"))
}

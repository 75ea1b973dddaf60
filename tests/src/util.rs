//! Small helpers shared by the modules: running programs, error values.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An `io::Error` of kind `Other` with `msg`.
pub(crate) fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Adds `context` in front of an error's message, keeping its kind.
pub(crate) fn context(e: io::Error, context: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{context}: {e}"))
}

/// Runs `cmd` to completion; fails with its stderr if it exits non-zero.
pub(crate) fn run(cmd: &mut Command) -> io::Result<Vec<u8>> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| context(e, format_args!("cannot run {shown}")))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(err(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Runs `program args..` and returns its trimmed stdout as a string.
pub(crate) fn run_text<S: AsRef<OsStr>>(program: &str, args: &[S]) -> io::Result<String> {
    let out = run(Command::new(program).args(args))?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// Finds an executable: `$env_override` if set, else in `PATH`, else in
/// `extra_dirs` (e.g. `/usr/sbin`, often missing from a normal user's PATH).
pub(crate) fn find_program(
    name: &str,
    env_override: &str,
    extra_dirs: &[&str],
) -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os(env_override) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(extra_dirs.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "`{name}` not found in PATH or {extra_dirs:?} (set {env_override}, or run tests/install-deps.sh)"
        ),
    ))
}

/// The last `n` lines of a text file, or a note why it could not be read.
pub(crate) fn file_tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines.get(start..).unwrap_or_default().join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Whether `s` can be written unquoted into a shell-sourceable `KEY=value`
/// line (and read back by a naive parser).
pub(crate) fn shell_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:@%+,=-".contains(&b))
}

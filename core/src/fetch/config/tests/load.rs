//! Reading the file: its default place, missing files, permission warnings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::super::load::default_path_from;
use super::*;

#[cfg(unix)]
#[test]
fn load_warns_about_readable_password_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, account_with("password = \"pw\"\nmaildir = \"Mail\"")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = load(&path).unwrap();
    assert_eq!(
        config.warnings,
        [format!(
            "{0}: holds a password but other users can read it (run chmod 600 {0}, or use password_command)",
            path.display()
        )]
    );
    assert_eq!(
        config.accounts[0].1.destination,
        Destination::Maildir(dir.path().join("Mail"))
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(load(&path).unwrap().warnings.is_empty());

    std::fs::write(
        &path,
        account_with("password_env = \"PW\"\nmaildir = \"Mail\""),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(load(&path).unwrap().warnings.is_empty());
}

#[test]
fn load_missing_file() {
    let e = load(Path::new("/nonexistent/popwire/config.toml")).unwrap_err();
    assert_eq!(e.kind(), ConfigErrorKind::Read);
    assert_eq!(
        e.to_string(),
        "/nonexistent/popwire/config.toml: cannot read it: No such file or directory (os error 2) \
         (create it with an [accounts.NAME] table)"
    );
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn default_paths() {
    assert_eq!(
        default_path_from(Some("/xdg".into()), Some("/home/u".into())),
        Some(PathBuf::from("/xdg/popwire/config.toml"))
    );
    assert_eq!(
        default_path_from(Some("relative".into()), Some("/home/u".into())),
        Some(PathBuf::from("/home/u/.config/popwire/config.toml"))
    );
    assert_eq!(
        default_path_from(None, Some("/home/u".into())),
        Some(PathBuf::from("/home/u/.config/popwire/config.toml"))
    );
    assert_eq!(default_path_from(None, None), None);
}

//! A private Dovecot that serves IMAP too (implicit TLS with the test CA), for the IMAP
//! destination: POP from one user, APPEND into another user's folders, same password.
//!
//! The same instance as [`Dovecot::start`] with `imap` added to `protocols`, an `imaps`
//! listener, and optionally the quota plugin (to make APPEND fail with `[OVERQUOTA]`).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Dovecot;
use crate::dovecot::start_edited;
use crate::util::err;

/// A running Dovecot with POP3 and IMAP.
#[derive(Debug)]
pub struct ImapDovecot {
    /// The POP3 side (ports, CA, password, users' Maildirs).
    pub dovecot: Dovecot,
    /// The implicit-TLS IMAP port (imaps).
    pub imaps_port: u16,
    /// The plain IMAP port (offers STARTTLS).
    pub imap_port: u16,
}

impl ImapDovecot {
    /// Starts one in `dir`; with `quota` (e.g. `"200K"`) every user's mail storage is capped
    /// so that APPENDs past it are refused.
    pub fn start(dir: &Path, quota: Option<&str>) -> io::Result<Self> {
        Self::start_with(dir, quota, None)
    }

    /// [`ImapDovecot::start`], also taking OAuth bearer tokens (XOAUTH2, OAUTHBEARER) checked
    /// at `introspection_url` as [`start_oauth_dovecot`](crate::dovecot_oauth::start_oauth_dovecot)
    /// does.
    pub fn start_with(
        dir: &Path,
        quota: Option<&str>,
        introspection_url: Option<&str>,
    ) -> io::Result<Self> {
        Self::start_full(dir, quota, introspection_url, None)
    }

    /// [`ImapDovecot::start`] announcing `capability` after login instead of Dovecot's own
    /// list (`imap_capability`), e.g. LITERAL- without LITERAL+ as Gmail does, and keeping
    /// what each IMAP session received in [`rawlog_dir`](Self::rawlog_dir).
    pub fn start_announcing(dir: &Path, capability: &str) -> io::Result<Self> {
        // Dovecot does not create the rawlog directory: the home exists.
        let conf =
            format!("protocol imap {{\n  imap_capability = {capability}\n  rawlog_dir = %h\n}}\n");
        Self::start_full(dir, None, None, Some(conf))
    }

    /// [`ImapDovecot::start`] refusing to save any message over `max` (e.g. `"50k"`) with the
    /// quota plugin's `quota_max_mail_size`, storage otherwise unlimited.
    pub fn start_with_max_mail_size(dir: &Path, max: &str) -> io::Result<Self> {
        let conf = format!(
            "mail_plugins = $mail_plugins quota\nplugin {{\n  quota = maildir:User quota\n  quota_rule = *:storage=0\n  quota_max_mail_size = {max}\n}}\n"
        );
        Self::start_full(dir, None, None, Some(conf))
    }

    /// Where Dovecot keeps raw logs of IMAP sessions (only for [`start_announcing`](Self::start_announcing)):
    /// one `*.in` file per session with the bytes the client sent.
    pub fn rawlog_dir(&self, user: &str) -> PathBuf {
        let maildir = self.dovecot.maildir_of(user);
        maildir.parent().map_or(maildir.clone(), Path::to_path_buf)
    }

    fn start_full(
        dir: &Path,
        quota: Option<&str>,
        introspection_url: Option<&str>,
        extra_conf: Option<String>,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let dir = std::fs::canonicalize(dir)?;
        let oauth = match introspection_url {
            Some(url) => Some(crate::dovecot_oauth::oauth_edit(&dir, url)?),
            None => None,
        };
        let imaps_port = free_port()?;
        let imap_port = free_port()?;
        let quota = quota.map(str::to_owned);
        let edit = move |text: String| -> io::Result<String> {
            let text = match &oauth {
                Some(oauth) => oauth(text)?,
                None => text,
            };
            let protocols = "protocols = pop3\n";
            if !text.contains(protocols) {
                return Err(err("dovecot.conf.in changed: no `protocols = pop3` line"));
            }
            let mut text = text.replacen(protocols, "protocols = pop3 imap\n", 1);
            // One process per login: Dovecot 2.3.19's shared imap-login crashed under load.
            text.push_str(&format!(
                "\nservice imap-login {{\n  chroot =\n  service_count = 1\n  inet_listener imap {{\n    port = {imap_port}\n  }}\n  inet_listener imaps {{\n    port = {imaps_port}\n    ssl = yes\n  }}\n}}\nservice imap {{\n  process_limit = 1000\n}}\n"
            ));
            if std::env::var_os("POPWIRE_IMAPD_NO_FSYNC").is_some() {
                text.push_str("mail_fsync = never\n");
            }
            if let Some(extra) = &extra_conf {
                text.push_str(extra);
            }
            if let Some(quota) = &quota {
                text.push_str(&format!(
                    "mail_plugins = $mail_plugins quota\nprotocol imap {{\n  mail_plugins = $mail_plugins imap_quota\n}}\nplugin {{\n  quota = maildir:User quota\n  quota_rule = *:storage={quota}\n}}\n"
                ));
            }
            Ok(text)
        };
        let dovecot = start_edited(&dir, &edit)?;
        wait_imap(imaps_port)?;
        wait_imap(imap_port)?;
        Ok(Self {
            dovecot,
            imaps_port,
            imap_port,
        })
    }

    /// The Maildir folder `folder` of `user` (`INBOX` is the Maildir itself; others are
    /// Maildir++ `.folder` directories).
    pub fn folder_dir(&self, user: &str, folder: &str) -> PathBuf {
        let maildir = self.dovecot.maildir_of(user);
        if folder.eq_ignore_ascii_case("INBOX") {
            maildir
        } else {
            maildir.join(format!(".{folder}"))
        }
    }

    /// Every message file in a folder (`new/` and `cur/`), with its file name.
    pub fn folder_files(&self, user: &str, folder: &str) -> Vec<(String, Vec<u8>)> {
        let dir = self.folder_dir(user, folder);
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    out.push((entry.file_name().to_string_lossy().into_owned(), bytes));
                }
            }
        }
        out
    }
}

impl ImapDovecot {
    /// A folder's UIDVALIDITY and its messages by IMAP UID, from Dovecot's own record
    /// (`dovecot-uidlist`: a `3 V<uidvalidity> ...` header, then `<uid> [fields] :<file base>`).
    pub fn folder_by_uid(
        &self,
        user: &str,
        folder: &str,
    ) -> io::Result<(u32, HashMap<u32, Vec<u8>>)> {
        let dir = self.folder_dir(user, folder);
        let list = std::fs::read_to_string(dir.join("dovecot-uidlist"))?;
        let mut lines = list.lines();
        let validity = lines
            .next()
            .and_then(|h| h.split(' ').find_map(|f| f.strip_prefix('V')))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| err("dovecot-uidlist without a V<uidvalidity> header"))?;
        let files = self.folder_files(user, folder);
        let mut out = HashMap::new();
        for line in lines {
            let (Some(uid), Some((_, base))) = (
                line.split(' ').next().and_then(|u| u.parse::<u32>().ok()),
                line.split_once(" :"),
            ) else {
                continue;
            };
            // A file's name is its base, then `:2,<flags>` once it is in cur/.
            if let Some((_, bytes)) = files
                .iter()
                .find(|(name, _)| name.split(':').next() == Some(base))
            {
                out.insert(uid, bytes.clone());
            }
        }
        Ok((validity, out))
    }
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until the imaps port accepts connections (the TLS greeting is the test's business).
fn wait_imap(port: u16) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => {
                drop(BufReader::new(stream).lines());
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => {
                return Err(err(format!("imaps port {port} not ready: {e}")));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

//! A private Dovecot that also takes OAuth 2.0 bearer tokens (XOAUTH2, OAUTHBEARER), checked
//! by its `oauth2` passdb against an introspection endpoint (RFC 7662): in the tests, the
//! [`OAuthServer`](crate::oauth_server::OAuthServer) stand-in's `/introspect`.
//!
//! The same instance as [`Dovecot::start`] (plain and TLS ports, every user's password), with
//! the oauth2 passdb in front: password logins work as before.

use std::io;
use std::path::Path;

use crate::Dovecot;
use crate::dovecot::start_edited;
use crate::util::err;

/// Starts Dovecot in `dir` checking bearer tokens at `introspection_url` (`post` mode: the
/// token as the form field `token`, the answer's `active` and `username` checked).
pub fn start_oauth_dovecot(dir: &Path, introspection_url: &str) -> io::Result<Dovecot> {
    std::fs::create_dir_all(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    let edit = oauth_edit(&dir, introspection_url)?;
    start_edited(&dir, &edit)
}

/// The configuration rewrite that puts the oauth2 passdb in front (see
/// [`start_oauth_dovecot`]); its `.conf.ext` file is written into `dir`.
pub(crate) fn oauth_edit(
    dir: &Path,
    introspection_url: &str,
) -> io::Result<impl Fn(String) -> io::Result<String> + use<>> {
    let ext = dir.join("dovecot-oauth2.conf.ext");
    std::fs::write(
        &ext,
        format!(
            "introspection_mode = post\n\
             introspection_url = {introspection_url}\n\
             username_attribute = username\n\
             active_attribute = active\n\
             active_value = true\n\
             force_introspection = yes\n"
        ),
    )?;
    let ext = ext
        .to_str()
        .ok_or_else(|| err("instance directory is not UTF-8"))?
        .to_owned();
    let edit = move |text: String| -> io::Result<String> {
        let mechanisms = "auth_mechanisms = plain";
        let first_passdb = "\npassdb {";
        if !text.contains(mechanisms) || !text.contains(first_passdb) {
            return Err(err(
                "dovecot.conf.in changed: no auth_mechanisms line or passdb to extend",
            ));
        }
        // The oauth2 passdb goes first and only for the token mechanisms; a token it refuses
        // falls through to the static passdbs, which refuse it too (it is not the password).
        let passdb = format!(
            "\npassdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {ext}\n}}\npassdb {{"
        );
        Ok(text
            .replacen(mechanisms, "auth_mechanisms = xoauth2 oauthbearer plain", 1)
            .replacen(first_passdb, &passdb, 1))
    };
    Ok(edit)
}

//! "Did you mean": the keys an account accepts, the names other mail tools use for them, and
//! the closest known key to a misspelt one.

/// Every key an account table accepts, with an example used in "write it like ..." fixes.
pub(super) const ACCOUNT_KEYS: &[(&str, &str)] = &[
    ("email", r#"email = "you@example.com""#),
    ("username", r#"username = "you""#),
    ("password", r#"password = "...""#),
    (
        "password_command",
        r#"password_command = ["pass", "show", "mail"]"#,
    ),
    ("password_env", r#"password_env = "MAIL_PASSWORD""#),
    (
        "token_command",
        r#"token_command = ["oauth2-token", "you@example.com"]"#,
    ),
    (
        "oauth",
        r#"[accounts.NAME.oauth] with provider = "google" and client_id = "...""#,
    ),
    ("server", r#"server = "pop.example.com""#),
    ("port", "port = 995"),
    ("security", r#"security = "tls""#),
    ("ca_file", r#"ca_file = "~/certs/ca.pem""#),
    ("auth", r#"auth = "auto""#),
    ("keep", r#"keep = false, keep = true or keep = "30d""#),
    ("maildir", r#"maildir = "~/Mail/inbox""#),
    ("mbox", r#"mbox = "~/mbox""#),
    ("mda", r#"mda = ["procmail", "-d", "you"]"#),
    (
        "imap",
        r#"[accounts.NAME.imap] with server, username and a password"#,
    ),
    (
        "gmail",
        r#"[accounts.NAME.gmail] with labels = ["INBOX", "UNREAD"]"#,
    ),
    ("max_message_size", r#"max_message_size = "10M""#),
    ("timeout", r#"timeout = "60s""#),
    ("mbox_lock", r#"mbox_lock = ["dotlock", "fcntl", "flock"]"#),
    ("mda_timeout", r#"mda_timeout = "5m""#),
    ("poll", r#"poll = "5m""#),
];

/// Names people bring from other mail tools, mapped to ours, for "did you mean".
const KEY_ALIASES: &[(&str, &str)] = &[
    ("host", "server"),
    ("hostname", "server"),
    ("user", "username"),
    ("login", "username"),
    ("pass", "password"),
    ("passwordeval", "password_command"),
    ("tls", "security"),
    ("ssl", "security"),
    ("from", "email"),
    ("address", "email"),
    ("tls_trust_file", "ca_file"),
    ("delete", "keep"),
    ("path", "maildir"),
];

/// The closest known key to a misspelt one, if any is close enough to be a likely typo.
pub(super) fn suggest<'k>(
    unknown: &str,
    known: impl IntoIterator<Item = &'k str>,
) -> Option<&'k str> {
    let normalised = unknown.to_ascii_lowercase().replace('-', "_");
    let best = known
        .into_iter()
        .map(|k| (edit_distance(&normalised, k), k))
        .min_by_key(|&(distance, _)| distance)
        .filter(|&(distance, k)| distance <= (k.chars().count() / 3).max(1))
        .map(|(_, k)| k);
    best.or_else(|| {
        KEY_ALIASES
            .iter()
            .find(|(alias, _)| *alias == normalised)
            .map(|&(_, key)| key)
    })
}

/// Levenshtein distance over chars.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        let mut left = i + 1;
        current.push(left);
        for ((&diagonal, &up), &cb) in previous.iter().zip(previous.iter().skip(1)).zip(&b) {
            let cost = (diagonal + usize::from(ca != cb)).min(up + 1).min(left + 1);
            current.push(cost);
            left = cost;
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

/// The example for `key` from [`ACCOUNT_KEYS`], for "write it like ..." and "add ..." fixes.
pub(super) fn example_for(key: &str) -> &'static str {
    ACCOUNT_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |&(_, example)| example)
}

//! `[watch]` and each account's `poll`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

#[test]
fn watch_table_and_poll() {
    let text = format!(
        "[watch]\nmax_sessions = 32\nmax_per_host = 2\npoll = \"10m\"\nalert_after = \"2h\"\nmetrics = \"127.0.0.1:9187\"\nlog_format = \"json\"\nquarantine_after = 5\nstop_grace = 10\n\n{}",
        account_with(&format!("{BASICS}\npoll = \"1m\""))
    );
    let config = parse_at(&text).unwrap();
    let w = &config.watch;
    assert_eq!((w.max_sessions, w.max_per_host), (32, 2));
    assert_eq!(w.poll, Duration::from_secs(600));
    assert_eq!(w.alert_after, Duration::from_secs(7200));
    assert_eq!(w.metrics, Some("127.0.0.1:9187".parse().unwrap()));
    assert_eq!(w.log_format, LogFormat::Json);
    assert_eq!(w.quarantine_after, 5);
    assert_eq!(w.stop_grace, Duration::from_secs(10));
    let account = &config.accounts[0].1;
    assert_eq!(account.poll, Some(Duration::from_secs(60)));
    assert_eq!(config.poll_of(account), Duration::from_secs(60));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn watch_defaults_without_the_table() {
    let config = parse_at(&account_with(BASICS)).unwrap();
    assert_eq!(config.watch, WatchConfig::default());
    assert_eq!(
        config.poll_of(&config.accounts[0].1),
        Duration::from_secs(300)
    );
}

#[test]
fn watch_mistakes_name_file_line_key_and_fix() {
    let cases = [
        (
            "[watch]\nmax_sesions = 3\n",
            ":2: watch.max_sesions: unknown key (did you mean \"max_sessions\"?)",
        ),
        (
            "[watch]\nmax_sessions = 0\n",
            ":2: watch.max_sessions: must be at least 1 (write e.g. max_sessions = 16)",
        ),
        (
            "[watch]\nlog_format = \"xml\"\n",
            ":2: watch.log_format: unknown log format \"xml\" (write log_format = \"text\" or log_format = \"json\")",
        ),
        (
            "[watch]\nmetrics = \"localhost\"\n",
            ":2: watch.metrics: \"localhost\" is not an address and port",
        ),
        (
            "[watch]\npoll = \"5 minutes\"\n",
            ":2: watch.poll: \"5 minutes\" is not a duration",
        ),
        (
            "[watch]\nstop_grace = true\n",
            ":2: watch.stop_grace: expected a duration string or seconds, found a boolean",
        ),
        (
            "watch = 3\n",
            ":1: watch: expected a table, found an integer",
        ),
        (
            "[wach]\n",
            ":1: wach: unknown key (did you mean \"watch\"?)",
        ),
    ];
    for (head, expected) in cases {
        let e = error(&format!("{head}\n{}", account_with(BASICS)));
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{ORIGIN}{expected}")),
            "{shown}\nwanted {expected}"
        );
    }
    let e = error(&account_with(&format!("{BASICS}\npoll = \"0s\"")));
    assert_eq!(e.key(), Some("accounts.work.poll"));
    assert_eq!(e.kind(), ConfigErrorKind::BadValue);
}

#[test]
fn metrics_off_loopback_is_warned_about() {
    let config = parse_at(&format!(
        "[watch]\nmetrics = \"0.0.0.0:9187\"\n{}",
        account_with(BASICS)
    ))
    .unwrap();
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("watch.metrics") && w.contains("reachable from other hosts")),
        "{:?}",
        config.warnings
    );
    let config = parse_at(&format!(
        "[watch]\nmetrics = 9100\n{}",
        account_with(BASICS)
    ))
    .unwrap();
    assert_eq!(
        config.watch.metrics,
        Some("127.0.0.1:9100".parse().unwrap())
    );
}

//! The account config parser (`popwire::fetch::config::parse`) fed arbitrary text.
//!
//! The first byte picks the file name errors are reported against (absolute, relative, bare,
//! empty); the rest, decoded as UTF-8 with replacement characters, is the file. Checks:
//! - no panic, and the same text parses the same way twice;
//! - an error renders (`Display`, `Debug`, every accessor), names a line that exists, and, like
//!   every warning, holds no control character (a config value must not be able to send
//!   escape sequences to the terminal the error is printed on);
//! - secrets stay out: when the text is valid TOML, every `password` string is replaced by a
//!   canary and every argument after the program of `password_command`/`token_command` by
//!   another, and the text parsed again. The password canary must not appear in the error, the
//!   warnings or the `Debug` of the parsed config; the command canary must not appear in the
//!   error or the warnings (`Debug` shows a credential command in full, by design);
//! - `parse_duration` and `parse_size` (the value parsers the config uses for `keep`, `timeout`
//!   and `max_message_size`) take the same text and their errors render.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use popwire::fetch::config::{self, Config, ConfigError};
use popwire::fetch::duration::{parse_duration, parse_size};

const ORIGINS: &[&str] = &[
    "/home/u/.config/popwire/config.toml",
    "config.toml",
    "conf/popwire.toml",
    "",
];

const PASSWORD_CANARY: &str = "pw-canary-7Qx2";
const COMMAND_CANARY: &str = "arg-canary-9Wv4";

/// Everything an error can say, as the CLI and the bindings would show it.
fn render(error: &ConfigError) -> String {
    let shown = error.to_string();
    assert!(!shown.is_empty());
    let _ = (error.path(), error.key(), error.kind(), error.fix());
    assert!(!error.message().is_empty(), "an error without a message");
    let source = std::error::Error::source(error).map(ToString::to_string);
    format!("{shown}\n{error:?}\n{source:?}")
}

/// Parses `text`, checks what the parser must always do, and returns everything it printed:
/// error or warnings, and the config's `Debug` (separately, as credential commands may show).
fn parse(text: &str, origin: &Path) -> (String, String) {
    let result = config::parse(text, origin);
    match &result {
        Ok(Config {
            accounts,
            warnings,
            watch,
        }) => {
            assert!(
                !accounts.is_empty(),
                "a config without accounts was accepted"
            );
            assert!(
                watch.max_sessions > 0 && watch.max_per_host > 0,
                "a zero session limit accepted"
            );
            assert!(!watch.poll.is_zero(), "a zero poll interval accepted");
            for warning in warnings {
                assert!(
                    !warning.chars().any(char::is_control),
                    "a warning holds a control character: {warning:?}"
                );
            }
            for (name, account) in accounts {
                assert_eq!(name, &account.name);
                assert_ne!(account.port, 0, "port 0 accepted");
                assert!(!account.timeout.is_zero(), "a zero timeout accepted");
                let _ = account.credential.config_key();
                assert!(
                    account.poll.is_none_or(|p| !p.is_zero()),
                    "a zero poll accepted"
                );
            }
        }
        Err(error) => {
            let shown = error.to_string();
            assert!(
                !shown.chars().any(char::is_control),
                "an error holds a control character: {shown:?}"
            );
            if let Some(line) = error.line() {
                let lines = text.matches('\n').count() + 1;
                assert!(
                    (1..=lines).contains(&line),
                    "error on line {line} of a {lines}-line text: {shown}"
                );
            }
        }
    }
    // Deterministic: nothing depends on hash order or on state left by the first call.
    let again = config::parse(text, origin);
    match (&result, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the same text parsed differently"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("the same text parsed once and failed once"),
    }
    match result {
        Ok(config) => (config.warnings.join("\n"), format!("{config:?}")),
        Err(error) => (render(&error), String::new()),
    }
}

/// Replaces secrets in a parsed TOML document by the canaries; true if any was placed.
fn plant_canaries(doc: &mut toml::Table) -> bool {
    let mut planted = false;
    let Some(toml::Value::Table(accounts)) = doc.get_mut("accounts") else {
        return false;
    };
    for (_, account) in accounts.iter_mut() {
        let toml::Value::Table(account) = account else {
            continue;
        };
        if let Some(password @ toml::Value::String(_)) = account.get_mut("password") {
            *password = toml::Value::String(PASSWORD_CANARY.into());
            planted = true;
        }
        for key in ["password_command", "token_command"] {
            if let Some(toml::Value::Array(argv)) = account.get_mut(key) {
                for arg in argv.iter_mut().skip(1) {
                    if arg.is_str() {
                        *arg = toml::Value::String(COMMAND_CANARY.into());
                        planted = true;
                    }
                }
            }
        }
    }
    planted
}

fuzz_target!(|data: &[u8]| {
    let (choice, rest) = data.split_first().unwrap_or((&0, &[]));
    let origin = Path::new(ORIGINS[usize::from(*choice) % ORIGINS.len()]);
    let text = String::from_utf8_lossy(rest);

    let _ = parse(&text, origin);

    for result in [
        parse_duration(&text).map(|d| d.as_secs()),
        parse_size(&text),
    ] {
        if let Err(e) = result {
            assert!(!e.to_string().is_empty());
        }
    }

    if text.contains(PASSWORD_CANARY) || text.contains(COMMAND_CANARY) {
        return;
    }
    let Ok(mut doc) = text.parse::<toml::Table>() else {
        return;
    };
    if !plant_canaries(&mut doc) {
        return;
    }
    let Ok(planted) = toml::to_string(&doc) else {
        return;
    };
    let (printed, debug) = parse(&planted, origin);
    assert!(
        !printed.contains(PASSWORD_CANARY) && !debug.contains(PASSWORD_CANARY),
        "the password leaked:\n{printed}\n{debug}"
    );
    assert!(
        !printed.contains(COMMAND_CANARY),
        "a credential command's argument leaked:\n{printed}"
    );
});

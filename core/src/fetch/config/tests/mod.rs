//! The config module's tests, by topic; the helpers here build small files around one account.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::check::Checker;
use super::*;
use crate::proto::{Mechanism, Secret};

mod accounts;
mod gmail;
mod imap;
mod keys;
mod load;
mod mistakes;
mod oauth;
mod watch;

const ORIGIN: &str = "/home/u/.config/popwire/config.toml";

fn parse_at(text: &str) -> Result<Config, ConfigError> {
    Checker::new(text, Path::new(ORIGIN), Some(PathBuf::from("/home/u"))).check()
}

/// A valid account with `extra` lines added to its table.
fn account_with(extra: &str) -> String {
    format!("[accounts.work]\nemail = \"me@example.com\"\nserver = \"pop.example.com\"\n{extra}\n")
}

fn one(text: &str) -> Account {
    let config = parse_at(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.accounts.len(), 1);
    config.accounts.into_iter().next().unwrap().1
}

fn error(text: &str) -> ConfigError {
    parse_at(text).expect_err("should be rejected")
}

const BASICS: &str = "password = \"hunter2\"\nmaildir = \"~/Mail/work\"";

//! POP3's vocabulary: response codes, capabilities, and the entries of LIST and UIDL.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// A message number as POP3 counts them: 1-based, stable for the whole session.
pub type MessageNumber = u32;

/// An RFC 2449 extended response code, e.g. `-ERR [IN-USE] mailbox locked`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResponseCode {
    /// `[IN-USE]`: another session holds the maildrop lock. Retry later.
    InUse,
    /// `[LOGIN-DELAY]`: logged in too recently. Retry later.
    LoginDelay,
    /// `[SYS/TEMP]`: a temporary server-side failure. Retry later.
    SysTemp,
    /// `[SYS/PERM]`: a permanent server-side failure.
    SysPerm,
    /// `[AUTH]`: the credentials are wrong (RFC 3206).
    Auth,
    /// `[UTF8]` (RFC 6856).
    Utf8,
    /// Any other code, kept verbatim (hierarchical, e.g. `FOO/BAR`).
    Other(String),
}

impl ResponseCode {
    /// Parses the text between `[` and `]`.
    pub fn parse(code: &str) -> Self {
        match code.to_ascii_uppercase().as_str() {
            "IN-USE" => Self::InUse,
            "LOGIN-DELAY" => Self::LoginDelay,
            "SYS/TEMP" => Self::SysTemp,
            "SYS/PERM" => Self::SysPerm,
            "AUTH" => Self::Auth,
            "UTF8" => Self::Utf8,
            _ => Self::Other(code.to_string()),
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InUse => "IN-USE",
            Self::LoginDelay => "LOGIN-DELAY",
            Self::SysTemp => "SYS/TEMP",
            Self::SysPerm => "SYS/PERM",
            Self::Auth => "AUTH",
            Self::Utf8 => "UTF8",
            Self::Other(s) => s,
        }
    }

    /// True when the same request may succeed later without any change.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::InUse | Self::LoginDelay | Self::SysTemp)
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The EXPIRE capability's policy (RFC 2449 section 6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expire {
    /// `EXPIRE NEVER`: the server never deletes on its own.
    Never,
    /// `EXPIRE n`: retrieved messages may be deleted after `n` days (0 = at QUIT even without DELE).
    Days(u32),
}

/// One capability from a CAPA listing (RFC 2449, 2595, 5034, 6856).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// `TOP`
    Top,
    /// `USER`
    User,
    /// `SASL mech...`: the offered mechanisms, verbatim.
    Sasl(Vec<String>),
    /// `RESP-CODES`
    RespCodes,
    /// `LOGIN-DELAY n [USER]`: minimum seconds between logins.
    LoginDelay(u64),
    /// `PIPELINING`
    Pipelining,
    /// `EXPIRE ...`
    Expire(Expire),
    /// `UIDL`
    Uidl,
    /// `IMPLEMENTATION text`
    Implementation(String),
    /// `STLS` (RFC 2595)
    Stls,
    /// `AUTH-RESP-CODE` (RFC 3206)
    AuthRespCode,
    /// `UTF8 [USER]` (RFC 6856)
    Utf8,
    /// `LANG` (RFC 6856)
    Lang,
    /// Anything else, name upper-cased, arguments verbatim.
    Other(String, Vec<String>),
}

impl Capability {
    /// Parses one CAPA line (without CRLF).
    pub fn parse(line: &str) -> Self {
        let mut words = line.split_ascii_whitespace();
        let name = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<String> = words.map(ToString::to_string).collect();
        let first_number = || args.first().and_then(|a| a.parse::<u64>().ok());
        match name.as_str() {
            "TOP" => Self::Top,
            "USER" => Self::User,
            "SASL" => Self::Sasl(args),
            "RESP-CODES" => Self::RespCodes,
            "LOGIN-DELAY" => Self::LoginDelay(first_number().unwrap_or(0)),
            "PIPELINING" => Self::Pipelining,
            "EXPIRE" => match args.first().map(String::as_str) {
                Some(n) if n.eq_ignore_ascii_case("NEVER") => Self::Expire(Expire::Never),
                Some(n) => match n.parse() {
                    Ok(days) => Self::Expire(Expire::Days(days)),
                    Err(_) => Self::Other(name, args),
                },
                None => Self::Other(name, args),
            },
            "UIDL" => Self::Uidl,
            "IMPLEMENTATION" => {
                let text = line.get("IMPLEMENTATION".len()..).unwrap_or("").trim();
                Self::Implementation(text.to_string())
            }
            "STLS" => Self::Stls,
            "AUTH-RESP-CODE" => Self::AuthRespCode,
            "UTF8" => Self::Utf8,
            "LANG" => Self::Lang,
            _ => Self::Other(name, args),
        }
    }
}

/// What the server said it can do.
///
/// Empty until CAPA succeeds, and emptied again when TLS starts (RFC 2595: the
/// pre-TLS list may have been forged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Each capability in the order the server listed them.
    pub list: Vec<Capability>,
}

impl Capabilities {
    /// True when `cap` (compared by kind, ignoring arguments) was advertised.
    pub fn has(&self, cap: &Capability) -> bool {
        self.list
            .iter()
            .any(|c| core::mem::discriminant(c) == core::mem::discriminant(cap))
    }

    /// True for PIPELINING.
    pub fn pipelining(&self) -> bool {
        self.has(&Capability::Pipelining)
    }

    /// True for STLS.
    pub fn stls(&self) -> bool {
        self.has(&Capability::Stls)
    }

    /// The SASL mechanisms offered, in the server's order.
    pub fn sasl(&self) -> impl Iterator<Item = &str> {
        self.list
            .iter()
            .filter_map(|c| match c {
                Capability::Sasl(m) => Some(m),
                _ => None,
            })
            .flatten()
            .map(String::as_str)
    }

    /// The LOGIN-DELAY in seconds, if advertised.
    pub fn login_delay(&self) -> Option<u64> {
        self.list.iter().find_map(|c| match c {
            Capability::LoginDelay(s) => Some(*s),
            _ => None,
        })
    }

    /// The EXPIRE policy, if advertised.
    pub fn expire(&self) -> Option<Expire> {
        self.list.iter().find_map(|c| match c {
            Capability::Expire(e) => Some(*e),
            _ => None,
        })
    }

    /// The IMPLEMENTATION text, if advertised.
    pub fn implementation(&self) -> Option<&str> {
        self.list.iter().find_map(|c| match c {
            Capability::Implementation(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

/// One `LIST` entry: a message and its size in octets (as the server counts them, CRLF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListEntry {
    /// The message number.
    pub number: MessageNumber,
    /// The size in octets.
    pub size: u64,
}

/// One `UIDL` entry: a message and its unique-id, stable across sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidlEntry {
    /// The message number.
    pub number: MessageNumber,
    /// The unique-id (1-70 octets in 0x21-0x7E unless the engine is lenient).
    pub uid: String,
}

/// The `+OK` greeting, with the APOP timestamp if the server sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The greeting text after `+OK `.
    pub text: String,
    /// `<...@...>` for APOP, when present.
    pub apop_timestamp: Option<String>,
}

impl Greeting {
    /// Parses the text after `+OK`.
    pub fn parse(text: &str) -> Self {
        let apop_timestamp = text.find('<').and_then(|start| {
            let rest = text.get(start..)?;
            let end = rest.find('>')?;
            let stamp = rest.get(..=end)?;
            stamp.contains('@').then(|| stamp.to_string())
        });
        Self {
            text: text.to_string(),
            apop_timestamp,
        }
    }
}

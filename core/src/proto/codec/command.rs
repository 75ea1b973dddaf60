//! Commands: typed values, their encoding, and (for the server role) their parsing.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::proto::error::UsageError;
use crate::proto::secret::Secret;
use crate::proto::types::MessageNumber;

/// Longest argument we send. RFC 2449 caps a command line at 255 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 255;

/// A POP3 command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`
    User(String),
    /// `PASS secret`
    Pass(Secret),
    /// `APOP name digest`
    Apop {
        /// The mailbox name.
        name: String,
        /// Lowercase hex MD5 digest.
        digest: String,
    },
    /// `AUTH mechanism [initial-response]` (RFC 5034). The response is already base64 (or `=`).
    Auth {
        /// Mechanism name, e.g. `SCRAM-SHA-256`.
        mechanism: String,
        /// Base64 initial response, `=` for an empty one.
        initial_response: Option<Secret>,
    },
    /// A line answering a SASL challenge: base64, `=` (empty) or `*` (cancel).
    SaslResponse(Secret),
    /// `STAT`
    Stat,
    /// `LIST [n]`
    List(Option<MessageNumber>),
    /// `RETR n`
    Retr(MessageNumber),
    /// `DELE n`
    Dele(MessageNumber),
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset,
    /// `QUIT`
    Quit,
    /// `TOP n lines`
    Top(MessageNumber, u32),
    /// `UIDL [n]`
    Uidl(Option<MessageNumber>),
    /// `CAPA`
    Capa,
    /// `STLS`
    Stls,
    /// `UTF8` (RFC 6856)
    Utf8,
    /// `LANG [tag]` (RFC 6856)
    Lang(Option<String>),
}

/// A command's name, for errors and logs (never its arguments: they may be secret).
pub type CommandName = &'static str;

impl Command {
    /// The command word, e.g. `"RETR"`.
    pub fn name(&self) -> CommandName {
        match self {
            Self::User(_) => "USER",
            Self::Pass(_) => "PASS",
            Self::Apop { .. } => "APOP",
            Self::Auth { .. } | Self::SaslResponse(_) => "AUTH",
            Self::Stat => "STAT",
            Self::List(_) => "LIST",
            Self::Retr(_) => "RETR",
            Self::Dele(_) => "DELE",
            Self::Noop => "NOOP",
            Self::Rset => "RSET",
            Self::Quit => "QUIT",
            Self::Top(..) => "TOP",
            Self::Uidl(_) => "UIDL",
            Self::Capa => "CAPA",
            Self::Stls => "STLS",
            Self::Utf8 => "UTF8",
            Self::Lang(_) => "LANG",
        }
    }

    /// True for the commands RFC 1939 allows only in the TRANSACTION state (after login):
    /// STAT, LIST, UIDL, RETR, TOP, DELE, NOOP, RSET. Only these are pipelined.
    pub fn needs_transaction(&self) -> bool {
        matches!(
            self,
            Self::Stat
                | Self::List(_)
                | Self::Uidl(_)
                | Self::Retr(_)
                | Self::Top(..)
                | Self::Dele(_)
                | Self::Noop
                | Self::Rset
        )
    }

    /// True when the line carries a credential (so buffers holding it get wiped).
    pub fn is_sensitive(&self) -> bool {
        matches!(
            self,
            Self::Pass(_) | Self::Apop { .. } | Self::Auth { .. } | Self::SaslResponse(_)
        )
    }

    /// Checks the arguments: no CR, LF or NUL anywhere (they would smuggle in a second command),
    /// no empty or space-containing words where POP3 has no way to quote them.
    pub fn validate(&self) -> Result<(), UsageError> {
        let command = self.name();
        let check = |arg: &[u8], allow_space: bool| -> Result<(), UsageError> {
            if arg.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(UsageError::ForbiddenByte { command });
            }
            if !allow_space && arg.contains(&b' ') {
                return Err(UsageError::InvalidArgument {
                    command,
                    reason: "contains a space",
                });
            }
            Ok(())
        };
        // POP3 has no way to write an empty word: it would vanish on the wire.
        let non_empty = |arg: &str| -> Result<(), UsageError> {
            if arg.is_empty() {
                Err(UsageError::InvalidArgument {
                    command,
                    reason: "empty argument",
                })
            } else {
                Ok(())
            }
        };
        match self {
            // RFC 1939 lets a PASS argument contain spaces; a user name may not (USER takes one word,
            // but real servers accept spaces, so we only forbid line breaks).
            Self::User(name) => {
                check(name.as_bytes(), true)?;
                if name.is_empty() {
                    return Err(UsageError::InvalidArgument {
                        command,
                        reason: "empty user name",
                    });
                }
            }
            Self::Pass(secret) => check(secret.expose(), true)?,
            Self::Apop { name, digest } => {
                check(name.as_bytes(), false)?;
                check(digest.as_bytes(), false)?;
                non_empty(name)?;
                non_empty(digest)?;
            }
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                check(mechanism.as_bytes(), false)?;
                non_empty(mechanism)?;
                if let Some(r) = initial_response {
                    check(r.expose(), false)?;
                    // RFC 5034 writes an empty initial response as `=`.
                    if r.is_empty() {
                        return Err(UsageError::InvalidArgument {
                            command,
                            reason: "an empty initial response is written `=`",
                        });
                    }
                }
            }
            // An empty continuation response is an empty line (RFC 5034 section 4).
            Self::SaslResponse(r) => check(r.expose(), false)?,
            Self::Lang(Some(tag)) => {
                check(tag.as_bytes(), false)?;
                non_empty(tag)?;
            }
            Self::Retr(0)
            | Self::Dele(0)
            | Self::Top(0, _)
            | Self::List(Some(0))
            | Self::Uidl(Some(0)) => {
                return Err(UsageError::InvalidArgument {
                    command,
                    reason: "message numbers start at 1",
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Appends the command line, CRLF included, after validating it.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.validate()?;
        let start = out.len();
        self.encode_unchecked(out);
        // AUTH initial responses are left out before this point when too long; anything else
        // this long would be refused by the server anyway.
        if out.len() - start > MAX_COMMAND_LINE
            && !matches!(self, Self::SaslResponse(_) | Self::Pass(_))
        {
            out.truncate(start);
            return Err(UsageError::InvalidArgument {
                command: self.name(),
                reason: "command line longer than 255 octets",
            });
        }
        Ok(())
    }

    fn encode_unchecked(&self, out: &mut Vec<u8>) {
        let number = |out: &mut Vec<u8>, n: u32| {
            out.push(b' ');
            push_decimal(out, u64::from(n));
        };
        match self {
            Self::SaslResponse(r) => out.extend_from_slice(r.expose()),
            _ => out.extend_from_slice(self.name().as_bytes()),
        }
        match self {
            Self::User(name) => {
                out.push(b' ');
                out.extend_from_slice(name.as_bytes());
            }
            Self::Pass(secret) => {
                out.push(b' ');
                out.extend_from_slice(secret.expose());
            }
            Self::Apop { name, digest } => {
                out.push(b' ');
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
                out.extend_from_slice(digest.as_bytes());
            }
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                out.push(b' ');
                out.extend_from_slice(mechanism.as_bytes());
                if let Some(r) = initial_response {
                    out.push(b' ');
                    out.extend_from_slice(r.expose());
                }
            }
            Self::List(Some(n)) | Self::Uidl(Some(n)) | Self::Retr(n) | Self::Dele(n) => {
                number(out, *n)
            }
            Self::Top(n, lines) => {
                number(out, *n);
                number(out, *lines);
            }
            Self::Lang(Some(tag)) => {
                out.push(b' ');
                out.extend_from_slice(tag.as_bytes());
            }
            _ => {}
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Parses a command line without its CRLF (server role).
    ///
    /// Command words are case-insensitive. A SASL response line is not a command: the server role
    /// reads those itself while an AUTH exchange is open.
    pub fn parse(line: &[u8]) -> Result<Self, ParseCommandError> {
        // A password is octets (RFC 1939), not necessarily UTF-8: take it before decoding.
        if line
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"PASS "))
        {
            return Ok(Self::Pass(Secret::new(line.get(5..).unwrap_or_default())));
        }
        let text = core::str::from_utf8(line).map_err(|_| ParseCommandError::NotUtf8)?;
        let (word, rest) = match text.split_once(' ') {
            Some((w, r)) => (w, Some(r)),
            None => (text, None),
        };
        let word = word.to_ascii_uppercase();
        let args: Vec<&str> = rest
            .map(|r| r.split(' ').filter(|a| !a.is_empty()).collect())
            .unwrap_or_default();
        let number = |i: usize| -> Result<MessageNumber, ParseCommandError> {
            args.get(i)
                .ok_or(ParseCommandError::MissingArgument)?
                .parse::<MessageNumber>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ParseCommandError::BadNumber)
        };
        let optional_number = || -> Result<Option<MessageNumber>, ParseCommandError> {
            if args.is_empty() {
                Ok(None)
            } else {
                number(0).map(Some)
            }
        };
        let no_args = |cmd: Command| -> Result<Command, ParseCommandError> {
            if args.is_empty() {
                Ok(cmd)
            } else {
                Err(ParseCommandError::UnexpectedArgument)
            }
        };
        match word.as_str() {
            "USER" => rest
                .filter(|r| !r.is_empty())
                .map(|r| Self::User(r.to_string()))
                .ok_or(ParseCommandError::MissingArgument),
            // PASS keeps everything after the first space, spaces included (RFC 1939).
            "PASS" => rest
                .map(|r| Self::Pass(Secret::new(r.as_bytes())))
                .ok_or(ParseCommandError::MissingArgument),
            "APOP" => match args.as_slice() {
                [name, digest] => Ok(Self::Apop {
                    name: (*name).to_string(),
                    digest: (*digest).to_string(),
                }),
                _ => Err(ParseCommandError::MissingArgument),
            },
            "AUTH" => match args.as_slice() {
                [] => Ok(Self::Auth {
                    mechanism: String::new(),
                    initial_response: None,
                }),
                [mech] => Ok(Self::Auth {
                    mechanism: mech.to_ascii_uppercase(),
                    initial_response: None,
                }),
                [mech, ir] => Ok(Self::Auth {
                    mechanism: mech.to_ascii_uppercase(),
                    initial_response: Some(Secret::new(ir.as_bytes())),
                }),
                _ => Err(ParseCommandError::UnexpectedArgument),
            },
            "STAT" => no_args(Self::Stat),
            "LIST" => optional_number().map(Self::List),
            "RETR" => number(0).map(Self::Retr),
            "DELE" => number(0).map(Self::Dele),
            "NOOP" => no_args(Self::Noop),
            "RSET" => no_args(Self::Rset),
            "QUIT" => no_args(Self::Quit),
            "TOP" => {
                let n = number(0)?;
                let lines = args
                    .get(1)
                    .ok_or(ParseCommandError::MissingArgument)?
                    .parse::<u32>()
                    .map_err(|_| ParseCommandError::BadNumber)?;
                Ok(Self::Top(n, lines))
            }
            "UIDL" => optional_number().map(Self::Uidl),
            "CAPA" => no_args(Self::Capa),
            "STLS" => no_args(Self::Stls),
            "UTF8" => no_args(Self::Utf8),
            "LANG" => Ok(Self::Lang(args.first().map(|t| (*t).to_string()))),
            _ => Err(ParseCommandError::Unknown),
        }
    }
}

/// Why a command line could not be parsed (server role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseCommandError {
    /// Not a POP3 command.
    #[error("unknown command")]
    Unknown,
    /// A required argument is missing.
    #[error("missing argument")]
    MissingArgument,
    /// An argument where none is allowed.
    #[error("unexpected argument")]
    UnexpectedArgument,
    /// A message number that is not a positive integer.
    #[error("invalid number")]
    BadNumber,
    /// The line is not UTF-8.
    #[error("command is not UTF-8")]
    NotUtf8,
}

/// Appends `n` in decimal without going through `fmt` (hot path for RETR/DELE).
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(b"0"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(c: &Command) -> Vec<u8> {
        let mut out = Vec::new();
        c.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn encodes_every_command() {
        assert_eq!(encoded(&Command::Retr(17)), b"RETR 17\r\n");
        assert_eq!(encoded(&Command::Top(1, 0)), b"TOP 1 0\r\n");
        assert_eq!(encoded(&Command::List(None)), b"LIST\r\n");
        assert_eq!(
            encoded(&Command::Uidl(Some(4_294_967_295))),
            b"UIDL 4294967295\r\n"
        );
        assert_eq!(encoded(&Command::Pass(Secret::new("a b"))), b"PASS a b\r\n");
        assert_eq!(
            encoded(&Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some(Secret::new("=")),
            }),
            b"AUTH PLAIN =\r\n"
        );
    }

    #[test]
    fn refuses_injection() {
        for bad in [
            Command::User("a\r\nDELE 1".into()),
            Command::Pass(Secret::new("x\ny")),
            Command::User("nul\0".into()),
            Command::Lang(Some("en\r".into())),
        ] {
            assert!(matches!(
                bad.encode(&mut Vec::new()),
                Err(UsageError::ForbiddenByte { .. })
            ));
        }
        assert!(Command::Retr(0).encode(&mut Vec::new()).is_err());
    }

    #[test]
    fn parses_what_it_encodes() {
        for c in [
            Command::Stat,
            Command::List(Some(3)),
            Command::Retr(9),
            Command::Top(2, 10),
            Command::Uidl(None),
            Command::User("bob".into()),
            Command::Pass(Secret::new("pass word")),
        ] {
            let line = encoded(&c);
            let parsed = Command::parse(line.strip_suffix(b"\r\n").unwrap()).unwrap();
            assert_eq!(parsed, c);
        }
        assert_eq!(Command::parse(b"retr 1"), Ok(Command::Retr(1)));
        assert_eq!(Command::parse(b"RETR x"), Err(ParseCommandError::BadNumber));
        assert_eq!(Command::parse(b"XYZZY"), Err(ParseCommandError::Unknown));
    }
}

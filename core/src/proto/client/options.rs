//! What a [`Client`](super::Client) is configured with: security, limits, pipelining.

use core::fmt;
use core::str::FromStr;

/// How the connection is, or will be, protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// The transport is TLS from the first byte (port 995). The default.
    #[default]
    Tls,
    /// Plain TCP upgraded with STLS before any credential is sent. Missing or refused STLS is fatal.
    StartTls,
    /// No encryption, chosen explicitly. Cleartext passwords still need
    /// [`ClientOptions::allow_cleartext_password`].
    None,
}

impl Security {
    /// The stable name: `tls`, `starttls` or `none`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::StartTls => "starttls",
            Self::None => "none",
        }
    }

    /// The port a server listens on for this security: 995 for implicit TLS (POP3S, RFC 8314),
    /// 110 otherwise (RFC 1939).
    #[must_use]
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 995,
            Self::StartTls | Self::None => 110,
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Security {
    type Err = super::types::UnknownName;

    /// Parses [`Security::as_str`]'s names, ignoring case; `stls` is accepted for `starttls`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tls" => Ok(Self::Tls),
            "starttls" | "stls" => Ok(Self::StartTls),
            "none" => Ok(Self::None),
            _ => Err(super::types::UnknownName::new(
                "security",
                "tls, starttls, none",
            )),
        }
    }
}

/// Caps that keep a hostile or broken server from making the engine buffer without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest status line or listing line, CRLF included. RFC 2449 says 512.
    pub status_line: usize,
    /// Longest line inside a RETR/TOP body, CRLF included.
    pub data_line: usize,
    /// Largest LIST/UIDL/CAPA listing: octets as received plus [`LISTING_ENTRY_COST`] per
    /// entry, about the memory the parsed listing takes (a short line such as `1 a` parses into
    /// far more memory than its five octets).
    pub listing: usize,
    /// Most unprocessed input the engine will hold.
    pub input_buffer: usize,
}

/// What one parsed listing entry costs beyond its octets, for [`Limits::listing`]: its slot in
/// the `Vec` and its own heap allocation.
pub const LISTING_ENTRY_COST: usize = 64;

impl Default for Limits {
    fn default() -> Self {
        Self {
            status_line: 512,
            // Far beyond RFC 5322's 998, because real mail has megabyte lines; still bounded.
            data_line: 4 << 20,
            listing: 64 << 20,
            input_buffer: 4 << 20,
        }
    }
}

/// Options for a [`Client`](crate::proto::Client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// How the transport is protected.
    pub security: Security,
    /// Allow USER/PASS, PLAIN and LOGIN without TLS. Off by default.
    pub allow_cleartext_password: bool,
    /// After the greeting, send CAPA (and STLS for [`Security::StartTls`]) automatically, and
    /// report [`Event::Ready`](crate::proto::Event::Ready). Turn off to drive every command by hand.
    pub negotiate: bool,
    /// Pipeline transaction commands when the server advertises PIPELINING.
    pub pipelining: bool,
    /// Most commands in flight when pipelining.
    pub max_in_flight: usize,
    /// Accept unique-ids outside RFC 1939's 1-70 printable octets (up to 255 octets, no
    /// controls or spaces), as some servers send them.
    pub lenient_uids: bool,
    /// Buffer caps.
    pub limits: Limits,
    /// Send a SASL initial response on the AUTH line when the line fits 255 octets (RFC 5034).
    /// Off: always the two-step form, `AUTH MECH`, then the response after the server's `+`,
    /// which is how Microsoft documents XOAUTH2 for its POP and IMAP servers. On by default
    /// (one round trip fewer); a longer response always goes the two-step way.
    pub sasl_initial_response: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            security: Security::Tls,
            allow_cleartext_password: false,
            negotiate: true,
            pipelining: true,
            max_in_flight: 128,
            lenient_uids: false,
            limits: Limits::default(),
            sasl_initial_response: true,
        }
    }
}

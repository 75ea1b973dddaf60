//! Records and enums shared by the client, the engine and the fetch job.

use popwire::proto;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Security {
    /// Implicit TLS (pop3s, port 995).
    Tls,
    /// Plain connection upgraded with `STLS` (port 110).
    StartTls,
    /// No TLS at all (tests and trusted networks only).
    None,
}

impl From<Security> for proto::Security {
    fn from(s: Security) -> Self {
        match s {
            Security::Tls => proto::Security::Tls,
            Security::StartTls => proto::Security::StartTls,
            Security::None => proto::Security::None,
        }
    }
}

/// One `LIST` entry.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ListEntry {
    /// The message number.
    pub number: u32,
    /// The size in octets, as the server counts them.
    pub size: u64,
}

impl From<&proto::ListEntry> for ListEntry {
    fn from(e: &proto::ListEntry) -> Self {
        Self {
            number: e.number,
            size: e.size,
        }
    }
}

/// One `UIDL` entry.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UidlEntry {
    /// The message number.
    pub number: u32,
    /// The unique-id, stable across sessions.
    pub uid: String,
}

impl From<&proto::UidlEntry> for UidlEntry {
    fn from(e: &proto::UidlEntry) -> Self {
        Self {
            number: e.number,
            uid: e.uid.clone(),
        }
    }
}

/// One capability: its name (upper case, e.g. `SASL`) and its arguments as the engine parsed
/// them (`SASL` mechanisms, the `LOGIN-DELAY` seconds, `EXPIRE` days or `NEVER`, the
/// `IMPLEMENTATION` text).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Capability {
    /// The name.
    pub name: String,
    /// The arguments.
    pub args: Vec<String>,
}

pub(crate) fn capabilities(caps: &proto::Capabilities) -> Vec<Capability> {
    caps.list.iter().map(capability).collect()
}

fn capability(c: &proto::Capability) -> Capability {
    use proto::Capability as C;
    let (name, args): (&str, Vec<String>) = match c {
        C::Top => ("TOP", vec![]),
        C::User => ("USER", vec![]),
        C::Sasl(m) => ("SASL", m.clone()),
        C::RespCodes => ("RESP-CODES", vec![]),
        C::LoginDelay(n) => ("LOGIN-DELAY", vec![n.to_string()]),
        C::Pipelining => ("PIPELINING", vec![]),
        C::Expire(proto::Expire::Never) => ("EXPIRE", vec!["NEVER".into()]),
        C::Expire(proto::Expire::Days(d)) => ("EXPIRE", vec![d.to_string()]),
        C::Uidl => ("UIDL", vec![]),
        C::Implementation(t) => ("IMPLEMENTATION", vec![t.clone()]),
        C::Stls => ("STLS", vec![]),
        C::AuthRespCode => ("AUTH-RESP-CODE", vec![]),
        C::Utf8 => ("UTF8", vec![]),
        C::Lang => ("LANG", vec![]),
        C::Other(n, a) => {
            return Capability {
                name: n.clone(),
                args: a.clone(),
            };
        }
    };
    Capability {
        name: name.into(),
        args,
    }
}

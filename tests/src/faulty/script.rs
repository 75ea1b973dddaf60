//! What a [`FaultServer`](super::FaultServer) does wrong: a [`Faults`] script per session, made of
//! [`Step`]s (where in the session) and [`Action`]s (what happens there), plus ready-made
//! reply rewriters in [`rewrite`].

use std::fmt;
use std::sync::Arc;

/// Where in a session a fault fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Right after the TCP connection is accepted: before the implicit-TLS handshake and before
    /// the greeting. The only actions that make sense here are [`Action::Close`],
    /// [`Action::Stall`] and [`Action::Replace`] (raw bytes, then the session goes on).
    Connect,
    /// The greeting. "Carrying it out" means writing the engine's greeting.
    Greeting,
    /// A line from the client whose first word is `verb` (compared in upper case), e.g.
    /// `RETR`. A line sent inside an AUTH exchange (after a `+ ` continuation) has the verb
    /// [`SASL_RESPONSE`]. `nth` counts such lines in this session, from 1; `None` means
    /// every one.
    Command {
        /// The command, upper case.
        verb: String,
        /// Which occurrence, 1-based; `None` for all.
        nth: Option<usize>,
    },
}

/// The pseudo-verb of a client line inside an AUTH exchange (the answer to a `+ ` challenge).
pub const SASL_RESPONSE: &str = "(SASL)";

impl Step {
    /// The `nth` (1-based) `verb` line of the session.
    pub fn command(verb: &str, nth: usize) -> Step {
        Step::Command {
            verb: verb.to_ascii_uppercase(),
            nth: Some(nth),
        }
    }

    /// Every `verb` line of the session.
    pub fn every(verb: &str) -> Step {
        Step::Command {
            verb: verb.to_ascii_uppercase(),
            nth: None,
        }
    }

    /// True when this step is the `count`th line with `verb`.
    pub(super) fn matches_command(&self, line_verb: &str, count: usize) -> bool {
        match self {
            Step::Command { verb, nth } => verb == line_verb && nth.is_none_or(|n| n == count),
            Step::Connect | Step::Greeting => false,
        }
    }
}

/// A function from the engine's reply (every octet of it, status line included) to what is
/// written instead.
pub type RewriteFn = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// What happens at a [`Step`].
///
/// "Carried out" means the line goes to the engine (so QUIT commits, DELE marks, STLS switches
/// the engine to the handshake); actions that do not carry out a command leave the engine as if
/// the line never arrived.
#[derive(Clone)]
pub enum Action {
    /// Close the connection instead of answering. Not carried out.
    Close,
    /// Carry out, write the first `n` octets of the reply, then close. `Truncate(0)` on QUIT is
    /// "the server committed, but the client never hears it"; `usize::MAX` (see
    /// [`Action::close_after_reply`]) writes all of it first.
    Truncate(usize),
    /// Neither answer nor close: read and discard whatever arrives until the client gives up
    /// (or the server is dropped). Not carried out.
    Stall,
    /// Write these octets instead of the reply. Not carried out; the session goes on.
    Replace(Vec<u8>),
    /// Carry out and write the reply followed by these octets, in one write (e.g. a response
    /// injected after the `+OK` to STLS, where it lands in the same TCP segment).
    Append(Vec<u8>),
    /// Carry out and write `f(reply)` instead of the reply.
    Rewrite(RewriteFn),
    /// For STLS: answer `+OK` but never start TLS; every octet the client sends afterwards (a
    /// TLS ClientHello, from a client that was not fooled) is answered with a plaintext `-ERR`.
    /// Not carried out.
    FakeStls,
    /// Write `prefix`, then `len` octets of `fill` without any line end, then stall as
    /// [`Action::Stall`] does. Not carried out. For "100 MB without CRLF" tests: a client that
    /// buffered it all would be waiting, its memory full, when the test measures it.
    Flood {
        /// Written first, e.g. `+OK ` or a RETR status line.
        prefix: Vec<u8>,
        /// How many filler octets follow.
        len: u64,
        /// The filler octet.
        fill: u8,
    },
}

impl Action {
    /// Carry out, write the whole reply, then close.
    pub fn close_after_reply() -> Action {
        Action::Truncate(usize::MAX)
    }

    /// [`Action::Replace`] with `-ERR [code] text` (no code when `code` is empty).
    pub fn err(code: &str, text: &str) -> Action {
        Action::Replace(err_line(code, text))
    }

    /// [`Action::Rewrite`] with a closure.
    pub fn rewrite(f: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) -> Action {
        Action::Rewrite(Arc::new(f))
    }

    /// True when the line goes to the engine.
    pub(super) fn carries_out(&self) -> bool {
        matches!(
            self,
            Action::Truncate(_) | Action::Append(_) | Action::Rewrite(_)
        )
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Close => f.write_str("Close"),
            Action::Truncate(n) => f.debug_tuple("Truncate").field(n).finish(),
            Action::Stall => f.write_str("Stall"),
            Action::Replace(b) => f
                .debug_tuple("Replace")
                .field(&String::from_utf8_lossy(b))
                .finish(),
            Action::Append(b) => f
                .debug_tuple("Append")
                .field(&String::from_utf8_lossy(b))
                .finish(),
            Action::Rewrite(_) => f.write_str("Rewrite(..)"),
            Action::FakeStls => f.write_str("FakeStls"),
            Action::Flood { prefix, len, fill } => f
                .debug_struct("Flood")
                .field("prefix", &String::from_utf8_lossy(prefix))
                .field("len", len)
                .field("fill", fill)
                .finish(),
        }
    }
}

/// The faults of one session: rules tried in order, the first matching one fires. A session
/// with no rules behaves.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub(super) rules: Vec<(Step, Action)>,
}

impl Faults {
    /// No faults: the session behaves.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Adds a rule: `action` at `step`.
    pub fn on(mut self, step: Step, action: Action) -> Faults {
        self.rules.push((step, action));
        self
    }

    /// Shorthand for `Faults::none().on(step, action)`.
    pub fn at(step: Step, action: Action) -> Faults {
        Faults::none().on(step, action)
    }

    /// The action for the greeting or connect step, if any.
    pub(super) fn at_fixed(&self, step: &Step) -> Option<&Action> {
        self.rules.iter().find(|(s, _)| s == step).map(|(_, a)| a)
    }

    /// The action for the `count`th `verb` line, if any.
    pub(super) fn for_command(&self, verb: &str, count: usize) -> Option<&Action> {
        self.rules
            .iter()
            .find(|(s, _)| s.matches_command(verb, count))
            .map(|(_, a)| a)
    }
}

/// `-ERR [code] text\r\n` (no brackets when `code` is empty).
pub fn err_line(code: &str, text: &str) -> Vec<u8> {
    if code.is_empty() {
        format!("-ERR {text}\r\n").into_bytes()
    } else {
        format!("-ERR [{code}] {text}\r\n").into_bytes()
    }
}

/// Ready-made [`Action::Rewrite`]s for multi-line replies.
pub mod rewrite {
    use super::Action;

    /// Applies `f` to each line of a multi-line reply between the status line and the final
    /// `.`; lines for which it returns `None` are dropped. Line ends are kept as CRLF.
    pub fn lines(f: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Action {
        Action::rewrite(move |reply| {
            let text = String::from_utf8_lossy(reply);
            let mut parts = text.split_inclusive("\r\n");
            let mut out = String::new();
            let Some(status) = parts.next() else {
                return reply.to_vec();
            };
            out.push_str(status);
            if !status.starts_with("+OK") {
                return reply.to_vec();
            }
            for line in parts {
                let body = line.trim_end_matches("\r\n");
                if body == "." {
                    out.push_str(line);
                    continue;
                }
                if let Some(new) = f(body) {
                    out.push_str(&new);
                    out.push_str("\r\n");
                }
            }
            out.into_bytes()
        })
    }

    /// For LIST: every size replaced by `f(number, size)`.
    pub fn list_sizes(f: impl Fn(u32, u64) -> u64 + Send + Sync + 'static) -> Action {
        lines(move |line| {
            let (n, size) = line.split_once(' ')?;
            match (n.parse(), size.trim().parse()) {
                (Ok(n), Ok(size)) => Some(format!("{n} {}", f(n, size))),
                _ => Some(line.to_owned()),
            }
        })
    }

    /// For UIDL: every unique-id replaced by `f(number, uid)`.
    pub fn uidls(f: impl Fn(u32, &str) -> String + Send + Sync + 'static) -> Action {
        lines(move |line| {
            let (n, uid) = line.split_once(' ')?;
            match n.parse() {
                Ok(number) => Some(format!("{n} {}", f(number, uid.trim()))),
                Err(_) => Some(line.to_owned()),
            }
        })
    }

    /// For CAPA: the capability `name` (e.g. `STLS`) removed, as a stripping attacker does.
    pub fn strip_capability(name: &'static str) -> Action {
        lines(move |line| {
            let first = line.split_whitespace().next().unwrap_or("");
            (!first.eq_ignore_ascii_case(name)).then(|| line.to_owned())
        })
    }
}

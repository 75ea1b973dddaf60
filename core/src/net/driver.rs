//! The part of the event loop both adapters share: routing engine events.

use std::collections::VecDeque;

use crate::proto::{Client, CommandId, Error, Event, Reply};

use super::NetError;

/// What the event loop should do next.
pub(crate) enum Next {
    /// Read more input from the socket.
    Read,
    /// Start TLS now (the engine accepted STLS).
    StartTls,
    /// A command completed: let the caller look before more events (bodies of the next
    /// pipelined message may follow, and may need another sink).
    Completed,
}

/// Completions the caller has not collected yet, kept in order.
#[derive(Debug, Default)]
pub(crate) struct Completions {
    done: VecDeque<(CommandId, Result<Reply, Error>)>,
    ready: bool,
}

impl Completions {
    pub(crate) fn take(&mut self, id: CommandId) -> Option<Result<Reply, Error>> {
        let at = self.done.iter().position(|(i, _)| *i == id)?;
        self.done.remove(at).map(|(_, r)| r)
    }

    pub(crate) fn take_ready(&mut self) -> bool {
        std::mem::take(&mut self.ready)
    }
}

/// Drains the engine's events: body bytes go to `on_body`, completions are stored.
pub(crate) fn drain(
    engine: &mut Client,
    completions: &mut Completions,
    on_body: &mut dyn FnMut(CommandId, &[u8]) -> std::io::Result<()>,
) -> Result<Next, NetError> {
    loop {
        match engine.poll_event()? {
            None => return Ok(Next::Read),
            Some(Event::Body { id, data }) => {
                on_body(id, data).map_err(NetError::sink)?;
            }
            Some(Event::Completed { id, result }) => {
                if matches!(result, Ok(Reply::TlsReady)) {
                    completions.done.push_back((id, result));
                    return Ok(Next::StartTls);
                }
                completions.done.push_back((id, result));
                return Ok(Next::Completed);
            }
            Some(Event::TlsReady) => return Ok(Next::StartTls),
            Some(Event::Ready(_)) => completions.ready = true,
            Some(Event::Greeting(_)) => {}
        }
    }
}

/// Reports, in order, the RETRs at the front of `ids` that have completed: `End` or `Refused`.
/// A failure other than the server refusing one message ends the session.
pub(crate) fn report_retrieved(
    completions: &mut Completions,
    ids: &mut VecDeque<(CommandId, crate::proto::MessageNumber)>,
    on_part: &mut dyn FnMut(super::RetrPart<'_>) -> std::io::Result<()>,
) -> Result<(), NetError> {
    use super::RetrPart;
    while let Some(&(id, number)) = ids.front() {
        let part = match completions.take(id) {
            None => return Ok(()),
            Some(Ok(Reply::Retrieved { octets })) => Some(RetrPart::End { number, octets }),
            Some(Ok(_)) => None,
            Some(Err(Error::Server(error))) => Some(RetrPart::Refused { number, error }),
            Some(Err(e)) => return Err(e.into()),
        };
        if let Some(part) = part {
            on_part(part).map_err(NetError::sink)?;
        }
        ids.pop_front();
    }
    Ok(())
}

/// Reply shapes, shared by both adapters so each method is one line of plumbing.
pub(crate) mod shape {
    use crate::proto::{Capabilities, ListEntry, MessageNumber, Reply, UidlEntry};

    pub(crate) fn stat(r: Reply) -> (u32, u64) {
        match r {
            Reply::Stat { count, size } => (count, size),
            _ => (0, 0),
        }
    }

    pub(crate) fn list(r: Reply) -> Vec<ListEntry> {
        match r {
            Reply::List(v) => v,
            _ => Vec::new(),
        }
    }

    pub(crate) fn list_one(r: Reply, number: MessageNumber) -> ListEntry {
        match r {
            Reply::ListOne(e) => e,
            _ => ListEntry { number, size: 0 },
        }
    }

    pub(crate) fn uidl(r: Reply) -> Vec<UidlEntry> {
        match r {
            Reply::Uidl(v) => v,
            _ => Vec::new(),
        }
    }

    pub(crate) fn uidl_one(r: Reply, number: MessageNumber) -> UidlEntry {
        match r {
            Reply::UidlOne(e) => e,
            _ => UidlEntry {
                number,
                uid: String::new(),
            },
        }
    }

    pub(crate) fn capabilities(r: Reply, current: &Capabilities) -> Capabilities {
        match r {
            Reply::Capabilities(c) => c,
            _ => current.clone(),
        }
    }

    pub(crate) fn octets(r: Reply) -> u64 {
        match r {
            Reply::Retrieved { octets } => octets,
            _ => 0,
        }
    }

    pub(crate) fn closed(r: Reply) -> String {
        match r {
            Reply::Closed(t) => t,
            _ => String::new(),
        }
    }
}

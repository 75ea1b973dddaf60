//! One poll: the fetch job's session with the caller's handler as the destination.
//!
//! The same commit protocol as `popwire fetch` (`super::super::commit`): the account lock, then
//! recovery, then every RETR pipelined, each body staged and handed to the handler; a message
//! the handler took is journaled at once (a line, not yet fsynced), the journal is fsynced at
//! the batch's end, and only then are the DELEs sent with QUIT. A message the handler refused is
//! not journaled: it stays on the server and is retried at a later poll, after its backoff.

use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{Failure, PollReport, Poller};
use crate::fetch::commit::{self, AccountLock, Delivery, Identity};
use crate::fetch::config::Keep;
use crate::fetch::job::{self, FetchError};
use crate::fetch::journal::Journal;
use crate::fetch::store::StoreError;
use crate::fetch::store::handler::{Handler, HandlerStore, Incoming};
use crate::net::NetError;
use crate::proto::MessageNumber;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) fn poll(
    poller: &mut Poller,
    handler: &mut Handler<'_>,
) -> Result<PollReport, FetchError> {
    let account = &poller.account;
    let state_dir = &poller.state_dir;
    crate::fetch::private_fs::create_private_dir_durably(state_dir).map_err(|source| {
        StoreError::Io {
            action: "create the state directory",
            path: state_dir.clone(),
            source,
        }
    })?;
    let path = job::journal_path(state_dir, account);
    let _lock = AccountLock::acquire(&commit::lock_path(&path), &account.name, poller.lock_wait)?;
    let mut journal = Journal::open(&path)?;
    let mut store = HandlerStore::new(handler, poller.memory_limit, state_dir);
    let next = store.next_message();
    // Receipts of another destination this account's journal once had are finished there.
    commit::recover(&mut store, &mut journal)?;

    let mut report = PollReport::default();
    let mut pop = job::login(account)?;
    report.login_delay = pop
        .capabilities()
        .login_delay()
        .map(std::time::Duration::from_secs);
    let (listing, uidls) = pop.list_and_uidl()?;
    // Without UIDs the handler could not tell a message it saw from a new one.
    let uidls = match uidls {
        Ok(u) => u,
        Err(NetError::Pop3(crate::proto::Error::Server(_))) => return Err(FetchError::NoUidl),
        Err(e) => return Err(e.into()),
    };
    let mut uid_counts: HashMap<&str, usize> = HashMap::new();
    for u in &uidls {
        *uid_counts.entry(u.uid.as_str()).or_default() += 1;
    }
    let uid_index: HashMap<MessageNumber, &str> = uidls
        .iter()
        .filter(|u| uid_counts.get(u.uid.as_str()) == Some(&1))
        .map(|u| (u.number, u.uid.as_str()))
        .collect();
    let sizes: HashMap<MessageNumber, u64> = listing.iter().map(|e| (e.number, e.size)).collect();

    let now = unix_now();
    let instant = Instant::now();
    let mut wanted = Vec::new();
    let mut wanted_bytes = 0u64;
    let mut to_delete = Vec::new();
    report.listed = listing.len();
    for entry in &listing {
        let Some(uid) = uid_index.get(&entry.number).copied() else {
            // No UID, or one shared with another message: the handler could not dedupe it.
            report.skipped_unidentified += 1;
            continue;
        };
        if journal.contains_message(uid, entry.size) {
            let expired = match account.keep {
                Keep::Delete => true,
                Keep::Forever => false,
                Keep::For(age) => journal
                    .first_seen(uid)
                    .is_some_and(|t| now.saturating_sub(t) >= age.as_secs()),
            };
            if expired {
                // Handled in an earlier poll that ended before QUIT: delete, never hand again.
                to_delete.push(entry.number);
            } else {
                report.kept += 1;
            }
        } else if account.max_message_size.is_some_and(|max| entry.size > max) {
            report.skipped_too_large += 1;
        } else if poller.retry.waiting(uid, instant) {
            report.deferred += 1;
        } else {
            wanted.push(entry.number);
            wanted_bytes = wanted_bytes.saturating_add(entry.size);
        }
    }

    pop.set_max_in_flight(job::pipeline_window(wanted.len(), wanted_bytes));
    let mut delivery = Delivery::new(
        &mut store,
        &mut journal,
        now,
        poller.batch,
        poller.batch_bytes,
    );
    let stop = &poller.stop;
    let retry = &mut poller.retry;
    let mut handled = Vec::new();
    let retrieved = pop.retr_each(&wanted, &mut |body| -> Result<(), FetchError> {
        if stop.is_stopped() {
            return Err(FetchError::Cancelled);
        }
        let number = body.number();
        let (Some(uid), Some(size)) =
            (uid_index.get(&number).copied(), sizes.get(&number).copied())
        else {
            return Ok(());
        };
        if let Ok(mut slot) = next.lock() {
            *slot = Some(Incoming {
                uid: uid.to_owned(),
                size,
                number,
            });
        }
        let mut draft = delivery.draft()?;
        let copied = body.copy_to(&mut draft).map_err(|e| match e {
            NetError::Sink { source } if source.get_ref().is_some_and(|r| r.is::<StoreError>()) => {
                FetchError::Store(StoreError::from(source))
            }
            other => FetchError::Net(other),
        })?;
        let Ok(octets) = copied else {
            // Deleted by another client meanwhile, or refused: leave it.
            return Ok(());
        };
        report.fetched += 1;
        match draft.finish() {
            Ok(finished) => {
                delivery.finished(number, Some(Identity { uid, size }), finished, octets)?;
                retry.forget(uid);
                handled.push((number, uid.to_owned()));
            }
            // A handler cut short by a stop (Ctrl-C in Python) did not judge the message.
            Err(StoreError::Handler { .. }) if stop.is_stopped() => {
                return Err(FetchError::Cancelled);
            }
            Err(StoreError::Handler { source, .. }) => {
                let (attempts, retry_after) = retry.failed(uid, Instant::now());
                report.failed.push(Failure {
                    uid: uid.to_owned(),
                    reason: source.to_string(),
                    error: source,
                    attempts,
                    retry_after,
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    });
    // Whatever ended the stream, what the handler took is committed: never handed again.
    let last = delivery.commit();
    if last.is_err() || retrieved.is_err() {
        delivery.abandon();
    }
    let committed: HashSet<MessageNumber> = delivery.committed().iter().copied().collect();
    drop(delivery);
    report.handled = handled
        .into_iter()
        .filter(|(n, _)| committed.contains(n))
        .map(|(_, uid)| uid)
        .collect();
    // The connection is dropped without QUIT on failure: the server deletes nothing, and the
    // next poll deletes what the journal now holds.
    retrieved?;
    last?;

    if account.keep == Keep::Delete {
        to_delete.extend(committed.iter().copied());
        to_delete.sort_unstable();
    }
    if to_delete.is_empty() {
        pop.quit()?;
    } else {
        let (outcomes, _) = pop.dele_many_and_quit(&to_delete)?;
        report.deleted = outcomes.iter().filter(|o| o.is_ok()).count();
        journal.forget(
            to_delete
                .iter()
                .zip(&outcomes)
                .filter(|(_, outcome)| outcome.is_ok())
                .filter_map(|(number, _)| uid_index.get(number).copied()),
        );
    }
    let present: HashSet<&str> = uidls.iter().map(|u| u.uid.as_str()).collect();
    if !present.is_empty() {
        journal.retain_only(&present);
    }
    poller.retry.retain(&present);
    journal.save_if_changed()?;
    Ok(report)
}

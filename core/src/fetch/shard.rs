//! Which machine polls which account, when one service runs on several (`--shard I/N`).
//!
//! Rendezvous (highest-random-weight) hashing over the account's identity: every machine
//! computes the same owner from the account alone, with no coordination, and when `N` changes
//! only the accounts of the added or removed shard move (about `1/N` of them), where a plain
//! `hash % N` would move almost all. The hash is SHA-256, so the split does not depend on the
//! Rust version, the platform or a per-process random seed.

use sha2::{Digest, Sha256};

/// One machine's share: shard `index` of `count` (0-based index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A `--shard` value that is not `I/N` with `0 <= I < N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard {given:?} is not I/N with 0 <= I < N (for example 0/4 … 3/4)")]
pub struct ShardError {
    given: String,
}

impl Shard {
    /// Shard `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Self> {
        (index < count).then_some(Self { index, count })
    }

    /// The whole: one machine polls every account.
    pub fn whole() -> Self {
        Self { index: 0, count: 1 }
    }

    /// Whether this shard polls the account whose identity is `key` (use the journal key,
    /// `NAME~USER@SERVER~PORT`, so that two names for one mailbox land on one machine).
    pub fn owns(&self, key: &str) -> bool {
        owner(key, self.count) == self.index
    }

    /// This shard's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(&self) -> u32 {
        self.count
    }
}

impl std::str::FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || ShardError {
            given: s.to_owned(),
        };
        let (index, count) = s.split_once('/').ok_or_else(error)?;
        let index = index.trim().parse().map_err(|_| error())?;
        let count = count.trim().parse().map_err(|_| error())?;
        Shard::new(index, count).ok_or_else(error)
    }
}

/// The shard (of `count`) that owns `key`: the one whose weight for the key is highest.
pub fn owner(key: &str, count: u32) -> u32 {
    (0..count.max(1))
        .max_by_key(|shard| weight(key, *shard))
        .unwrap_or(0)
}

fn weight(key: &str, shard: u32) -> u64 {
    let digest = Sha256::new()
        .chain_update(shard.to_be_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    digest
        .first_chunk::<8>()
        .map_or(0, |first| u64::from_be_bytes(*first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_i_of_n_and_refuses_the_rest() {
        assert_eq!("2/4".parse::<Shard>().ok(), Shard::new(2, 4));
        for bad in ["4/4", "1", "a/2", "1/0", "-1/2", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert!(Shard::whole().owns("anything"));
    }

    #[test]
    fn every_account_has_exactly_one_owner_and_the_split_is_even() {
        let count = 8;
        let mut per_shard = [0u32; 8];
        for i in 0..8_000 {
            let key = format!("acct{i}~user{i}@pop.example~995");
            let owners: Vec<u32> = (0..count)
                .filter(|s| Shard::new(*s, count).is_some_and(|sh| sh.owns(&key)))
                .collect();
            assert_eq!(owners.len(), 1, "{key}");
            per_shard[owners[0] as usize] += 1;
        }
        // 1,000 expected each; a fair hash stays well within ±15 %.
        assert!(
            per_shard.iter().all(|n| (850..1150).contains(n)),
            "{per_shard:?}"
        );
    }

    #[test]
    fn adding_a_shard_moves_only_accounts_to_the_new_one() {
        let mut moved = 0;
        for i in 0..8_000 {
            let key = format!("acct{i}");
            let (before, after) = (owner(&key, 8), owner(&key, 9));
            if before != after {
                assert_eq!(after, 8, "{key} moved between old shards");
                moved += 1;
            }
        }
        // About 1/9 move (889 expected).
        assert!((700..1100).contains(&moved), "{moved}");
    }
}

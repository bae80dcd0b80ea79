//! Expiry order: which stored values outlive their time to live, and which cached errors
//! their retry window, found a few at a time on the write path.
//!
//! Every value of a cache has the same time to live, and every error the same retry window,
//! so storing order *is* expiry order: a FIFO queue of `(key, stamp)` items per kind is the
//! whole timer. The head is the next to expire; an upkeep step pops heads that are due, at
//! most [`STEP`] items per call, and removes their entries if the stamp still matches (an
//! entry replaced or removed since leaves a *stale* item, dropped when it comes up).
//!
//! Items outnumbering live entries by more than two to one (keys replaced much faster than
//! they expire) are tidied a few per push: stale items go, live ones that are not due go to
//! the back. That breaks the storing order for them only, which delays their removal (a
//! lookup still checks the time itself, so a late removal never serves a stale answer).

use crate::blocks::BlockQueue;

/// Items an upkeep step may pop per call.
pub(crate) const STEP: u32 = 64;

/// What became of a popped item's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Popped {
    /// Removed: it was due.
    Removed,
    /// Stale: the entry was replaced or removed since.
    Stale,
}

/// The expiry order of one kind of entry (values, or cached errors).
#[derive(Debug)]
pub(crate) struct ExpiryQueue<K> {
    items: BlockQueue<(K, u64)>,
    /// How long an entry lives, in nanoseconds.
    period: u64,
}

impl<K> ExpiryQueue<K> {
    pub(crate) fn new(period: u64) -> Self {
        Self {
            items: BlockQueue::default(),
            period,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// When the head is due; `u64::MAX` when empty.
    pub(crate) fn due(&self) -> u64 {
        self.items
            .front()
            .map_or(u64::MAX, |(_, stamp)| stamp.saturating_add(self.period))
    }

    /// Queues an entry stored at `stamp`. With `live` entries of this kind stored, tidies a
    /// few items if stale ones have piled up; `is_live` tells them apart.
    pub(crate) fn push(
        &mut self,
        key: K,
        stamp: u64,
        live: u64,
        mut is_live: impl FnMut(&K, u64) -> bool,
    ) {
        self.items.push_back((key, stamp));
        let now = stamp;
        if self.items.len() as u64 > live.saturating_mul(2).saturating_add(64) {
            for _ in 0..4 {
                // NOTE: a due head is left for the expiry step: moved to the back, it would
                // wait there behind entries that are not due.
                if self.due() <= now {
                    break;
                }
                let Some((key, stamp)) = self.items.pop_front() else {
                    break;
                };
                if is_live(&key, stamp) {
                    self.items.push_back((key, stamp));
                }
            }
        }
    }

    /// Pops due items at time `now`, at most `budget`, handing each to `remove`. Returns the
    /// number popped.
    pub(crate) fn expire(
        &mut self,
        now: u64,
        budget: u32,
        mut remove: impl FnMut(&K, u64) -> Popped,
    ) -> u32 {
        let mut popped = 0;
        while popped < budget && self.due() <= now {
            let Some((key, stamp)) = self.items.pop_front() else {
                break;
            };
            remove(&key, stamp);
            popped += 1;
        }
        popped
    }

    /// Pops items from the head until `remove` removed one (used to make room under a limit),
    /// looking at most at `budget` items. Whether one was removed.
    pub(crate) fn remove_oldest(
        &mut self,
        budget: u32,
        mut remove: impl FnMut(&K, u64) -> Popped,
    ) -> bool {
        for _ in 0..budget {
            let Some((key, stamp)) = self.items.pop_front() else {
                return false;
            };
            if remove(&key, stamp) == Popped::Removed {
                return true;
            }
        }
        false
    }

    /// Empties the queue, handing back its items (to be dropped outside the lock).
    pub(crate) fn take(&mut self) -> BlockQueue<(K, u64)> {
        std::mem::take(&mut self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_due_items_in_storing_order_within_the_budget() {
        let mut queue = ExpiryQueue::new(10);
        for (key, stamp) in [(1, 0), (2, 4), (3, 8), (4, 20)] {
            queue.push(key, stamp, 100, |_, _| true);
        }
        let mut seen = Vec::new();
        let popped = queue.expire(14, 2, |key, _| {
            seen.push(*key);
            Popped::Removed
        });
        assert_eq!((popped, seen.as_slice()), (2, &[1, 2][..]));
        assert_eq!(queue.due(), 18);
        assert_eq!(
            queue.expire(17, 64, |_, _| Popped::Removed),
            0,
            "not due yet"
        );
        let popped = queue.expire(18, 64, |key, _| {
            seen.push(*key);
            Popped::Removed
        });
        assert_eq!((popped, seen.as_slice()), (1, &[1, 2, 3][..]));
        assert_eq!(queue.due(), 30, "the last item is not due before 30");
    }

    #[test]
    fn stale_items_are_tidied_once_they_outnumber_live_ones() {
        let mut queue = ExpiryQueue::new(1_000_000);
        // One live entry, replaced 200 times: every item but the last is stale.
        for stamp in 0..200 {
            queue.push(0, stamp * 16, 1, |_, s| s == 199 * 16);
        }
        assert!(queue.len() <= 2 + 64 + 4, "{} items kept", queue.len());
        // Due heads are left for the expiry step, not tidied to the back.
        let mut due = ExpiryQueue::new(10);
        for stamp in 0..200 {
            due.push(0, stamp * 16, 1, |_, _| true);
        }
        assert_eq!(due.len(), 200);
        assert_eq!(due.expire(200 * 16, 1_000, |_, _| Popped::Removed), 200);
    }

    #[test]
    fn remove_oldest_skips_stale_items() {
        let mut queue = ExpiryQueue::new(10);
        for key in 0..5 {
            queue.push(key, 0, 100, |_, _| true);
        }
        let removed = queue.remove_oldest(8, |key, _| {
            if *key < 3 {
                Popped::Stale
            } else {
                Popped::Removed
            }
        });
        assert!(removed);
        assert_eq!(queue.len(), 1);
        assert!(!queue.remove_oldest(8, |_, _| Popped::Stale));
    }
}

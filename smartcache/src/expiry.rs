//! Expiry order: which stored values outlive their time to live, and which cached errors
//! their retry window, found a few at a time on the write path.
//!
//! Every value of a cache has the same time to live, so storing order *is* expiry order: a
//! FIFO queue of `(key, stamp)` items is the whole timer. Cached errors have windows of
//! their own (backoff doubles them, an error's hint sets them), so they go in one FIFO lane
//! per doubling of the window ([`ErrorQueue`]): within a lane, windows differ by at most
//! two to one, so an error is removed at most one window late, never early. The head is the next to expire; an upkeep step pops heads that are due, at
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

    /// Queues an entry of `stamp` at time `now`. With `live` entries of this kind stored,
    /// tidies a few items if stale ones have piled up; `is_live` tells them apart.
    pub(crate) fn push(
        &mut self,
        key: K,
        stamp: u64,
        now: u64,
        live: u64,
        mut is_live: impl FnMut(&K, u64) -> bool,
    ) {
        self.items.push_back((key, stamp));
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

/// Lanes of [`ErrorQueue`]: windows up to 2^6 times the retry interval have a lane of their
/// own; longer ones share the last.
const LANES: usize = 8;

/// The expiry order of cached errors: items are `(key, due)`, in one FIFO lane per doubling
/// of their window over the retry interval.
#[derive(Debug)]
pub(crate) struct ErrorQueue<K> {
    lanes: [ExpiryQueue<K>; LANES],
    /// The retry interval, in nanoseconds: lane 0 holds windows up to it.
    retry: u64,
}

impl<K> ErrorQueue<K> {
    pub(crate) fn new(retry: u64) -> Self {
        Self {
            lanes: std::array::from_fn(|_| ExpiryQueue::new(0)),
            retry: retry.max(1),
        }
    }

    /// When the first head is due; `u64::MAX` when empty.
    pub(crate) fn due(&self) -> u64 {
        self.lanes
            .iter()
            .map(ExpiryQueue::due)
            .min()
            .unwrap_or(u64::MAX)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lanes.iter().map(ExpiryQueue::len).sum()
    }

    /// Queues an error due at `due`, cached at `now` (so its window is `due - now`); see
    /// [`ExpiryQueue::push`].
    pub(crate) fn push(
        &mut self,
        key: K,
        due: u64,
        now: u64,
        live: u64,
        is_live: impl FnMut(&K, u64) -> bool,
    ) {
        let doublings = due.saturating_sub(now) / self.retry;
        // 0 for windows up to the retry interval, then one lane per doubling.
        let lane = (u64::BITS - doublings.leading_zeros()) as usize;
        self.lanes[lane.min(LANES - 1)].push(key, due, now, live, is_live);
    }

    /// Pops due items at `now` from every lane, at most `budget` in all; see
    /// [`ExpiryQueue::expire`].
    pub(crate) fn expire(
        &mut self,
        now: u64,
        budget: u32,
        mut remove: impl FnMut(&K, u64) -> Popped,
    ) -> u32 {
        let mut popped = 0;
        for lane in &mut self.lanes {
            popped += lane.expire(now, budget - popped, &mut remove);
        }
        popped
    }

    /// Removes the error due first among the lane heads (to make room under the bound),
    /// looking at most at `budget` items; see [`ExpiryQueue::remove_oldest`].
    pub(crate) fn remove_oldest(
        &mut self,
        budget: u32,
        mut remove: impl FnMut(&K, u64) -> Popped,
    ) -> bool {
        for _ in 0..budget {
            let Some(lane) = self
                .lanes
                .iter_mut()
                .filter(|l| l.due() != u64::MAX)
                .min_by_key(|l| l.due())
            else {
                return false;
            };
            if lane.remove_oldest(1, &mut remove) {
                return true;
            }
        }
        false
    }

    /// Empties every lane, handing back their items (to be dropped outside the lock).
    pub(crate) fn take(&mut self) -> Vec<BlockQueue<(K, u64)>> {
        self.lanes.iter_mut().map(ExpiryQueue::take).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_due_items_in_storing_order_within_the_budget() {
        let mut queue = ExpiryQueue::new(10);
        for (key, stamp) in [(1, 0), (2, 4), (3, 8), (4, 20)] {
            queue.push(key, stamp, stamp, 100, |_, _| true);
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
            queue.push(0, stamp * 16, stamp * 16, 1, |_, s| s == 199 * 16);
        }
        assert!(queue.len() <= 2 + 64 + 4, "{} items kept", queue.len());
        // Due heads are left for the expiry step, not tidied to the back.
        let mut due = ExpiryQueue::new(10);
        for stamp in 0..200 {
            due.push(0, stamp * 16, stamp * 16, 1, |_, _| true);
        }
        assert_eq!(due.len(), 200);
        assert_eq!(due.expire(200 * 16, 1_000, |_, _| Popped::Removed), 200);
    }

    #[test]
    fn remove_oldest_skips_stale_items() {
        let mut queue = ExpiryQueue::new(10);
        for key in 0..5 {
            queue.push(key, 0, 0, 100, |_, _| true);
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

    #[test]
    fn errors_expire_by_their_own_window_in_lanes_of_doublings() {
        let mut queue = ErrorQueue::new(10);
        // Cached at 0: a long window first, then short ones that must not wait behind it.
        for (key, due) in [(1, 80), (2, 10), (3, 12), (4, 40)] {
            queue.push(key, due, 0, 100, |_, _| true);
        }
        assert_eq!(queue.due(), 10);
        let mut seen = Vec::new();
        queue.expire(12, 64, |key, _| {
            seen.push(*key);
            Popped::Removed
        });
        assert_eq!(
            seen,
            [2, 3],
            "the short windows, though queued after a long one"
        );
        assert_eq!(queue.due(), 40);
        assert!(queue.remove_oldest(8, |key, _| {
            seen.push(*key);
            Popped::Removed
        }));
        assert_eq!(seen, [2, 3, 4], "the bound removes the error due first");
        assert_eq!(queue.len(), 1);
    }
}

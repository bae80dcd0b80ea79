//! [`BlockQueue`]: a FIFO queue in fixed-size blocks, so that growing it never copies what it
//! holds.
//!
//! A `VecDeque` doubles its buffer when full and moves every item across: at a million
//! items, one push copies some 16 MB, milliseconds in one caller's path. The upkeep queues
//! (policy segments, expiry order) grow to the size of the cache, so they use this instead:
//! a push allocates at most one block of [`BLOCK`] items, and a pop frees at most one.

use std::collections::VecDeque;

/// Items per block.
const BLOCK: usize = 1024;

/// A FIFO queue (with `push_front` for a victim put back) stored in blocks of [`BLOCK`]
/// items.
#[derive(Debug)]
pub(crate) struct BlockQueue<T> {
    // INVARIANT: no block is empty, and no block holds more than BLOCK items, so no block
    // ever reallocates (each is created with room for BLOCK).
    blocks: VecDeque<VecDeque<T>>,
    len: usize,
}

impl<T> Default for BlockQueue<T> {
    fn default() -> Self {
        Self {
            blocks: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> BlockQueue<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push_back(&mut self, item: T) {
        match self.blocks.back_mut() {
            Some(block) if block.len() < BLOCK => block.push_back(item),
            _ => {
                let mut block = VecDeque::with_capacity(BLOCK);
                block.push_back(item);
                self.blocks.push_back(block);
            }
        }
        self.len += 1;
    }

    pub(crate) fn push_front(&mut self, item: T) {
        match self.blocks.front_mut() {
            Some(block) if block.len() < BLOCK => block.push_front(item),
            _ => {
                let mut block = VecDeque::with_capacity(BLOCK);
                block.push_front(item);
                self.blocks.push_front(block);
            }
        }
        self.len += 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let block = self.blocks.front_mut()?;
        let item = block.pop_front();
        if block.is_empty() {
            self.blocks.pop_front();
            // The block index shrinks with the queue (a copy of a few pointers at most).
            if self.blocks.capacity() > 4 * self.blocks.len().max(16) {
                self.blocks.shrink_to(2 * self.blocks.len());
            }
        }
        self.len -= 1;
        item
    }

    pub(crate) fn front(&self) -> Option<&T> {
        self.blocks.front().and_then(VecDeque::front)
    }

    /// The items, front first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_fifo_order_across_blocks_and_frees_emptied_blocks() {
        let mut queue = BlockQueue::default();
        for i in 0..3 * BLOCK + 5 {
            queue.push_back(i);
        }
        queue.push_front(usize::MAX);
        assert_eq!(queue.len(), 3 * BLOCK + 6);
        assert_eq!(queue.front(), Some(&usize::MAX));
        assert_eq!(queue.pop_front(), Some(usize::MAX));
        let order: Vec<usize> = queue.iter().copied().collect();
        assert_eq!(order, (0..3 * BLOCK + 5).collect::<Vec<_>>());
        for i in 0..3 * BLOCK + 5 {
            assert_eq!(queue.pop_front(), Some(i));
            assert!(
                queue
                    .blocks
                    .iter()
                    .all(|b| !b.is_empty() && b.capacity() >= BLOCK)
            );
        }
        assert!(queue.is_empty() && queue.blocks.is_empty());
        assert_eq!(queue.pop_front(), None);
    }
}

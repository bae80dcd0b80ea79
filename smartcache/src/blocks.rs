//! [`BlockQueue`]: a FIFO queue in fixed-size blocks, so that growing it never copies what it
//! holds.
//!
//! A `VecDeque` doubles its buffer when full and moves every item across: at a million
//! items, one push copies some 16 MB, milliseconds in one caller's path. The upkeep queues
//! (policy segments, expiry order) grow to the size of the cache, so they use this instead:
//! a push allocates at most one block of [`BLOCK`] items (fewer for items over 64 bytes, see
//! [`MAX_BLOCK_BYTES`]), and a pop frees at most one.
//!
//! # Which block is freed
//!
//! When the front block empties, the queue frees the block whose buffer lies at the highest
//! address, not necessarily the emptied one: the items of the highest block move into the
//! emptied buffer (one block's worth, in order, at the same place in the queue). A queue that
//! grew by pushes holds its oldest items in its lowest buffers, so freeing the emptied front
//! block would free memory from the bottom up. glibc's malloc gives memory back to the
//! kernel only from the top of its heap, so bottom-up frees pile up below the last live
//! block, and the free of that block hands all of it back at once, in one caller's path
//! (measured: 8 MB, 0.9 ms of kernel time, when a drained million-entry expiry queue freed
//! its last blocks). Freed from the top down, the memory goes back a little at a time. Other
//! allocators lose nothing but the move (microseconds per [`BLOCK`] pops).

use std::collections::{BTreeMap, VecDeque};

/// Items per block, at most (see [`Block::ITEMS`]).
const BLOCK: usize = 1024;

/// Bytes of items per block, at most: 64 KiB.
///
/// NOTE: a block must stay below glibc's default mapping threshold (128 KiB). glibc serves a
/// larger request with its own `mmap`, and the `free` of such a chunk raises the process's
/// mapping threshold to its size and its trim threshold to twice that, for good, after which
/// the heap goes back to the kernel in larger trims, each in one caller's path
/// (`docs/benchmarks.md`, "Worst call under housekeeping"). 1,024 items of `(u64, u64)` take
/// 16 KiB; only items over 64 bytes (keys of some 56 bytes and more held inline) get fewer
/// per block.
const MAX_BLOCK_BYTES: usize = 64 * 1024;

/// One block: its items, and where its buffer lies (which never moves: no block holds more
/// than [`Block::ITEMS`] items, and each is created with room for that many).
#[derive(Debug)]
struct Block<T> {
    items: VecDeque<T>,
    address: usize,
}

impl<T> Block<T> {
    /// Items per block: [`BLOCK`], or as many as fit in [`MAX_BLOCK_BYTES`] (one at least).
    const ITEMS: usize = match MAX_BLOCK_BYTES.checked_div(size_of::<T>()) {
        Some(0) => 1,
        Some(fit) if fit < BLOCK => fit,
        _ => BLOCK,
    };

    fn new() -> Self {
        let items = VecDeque::with_capacity(Self::ITEMS);
        let address = items.as_slices().0.as_ptr() as usize;
        Self { items, address }
    }
}

/// A FIFO queue (with `push_front` for a victim put back) stored in blocks of
/// [`Block::ITEMS`] items.
#[derive(Debug)]
pub(crate) struct BlockQueue<T> {
    // INVARIANT: no block is empty, and no block holds more than Block::<T>::ITEMS items, so
    // no block ever reallocates (each is created with room for that many).
    blocks: VecDeque<Block<T>>,
    len: usize,
    /// The number of the front block; the block at index `i` has number `first + i`
    /// (wrapping: `push_front` numbers a new front block one below).
    first: u64,
    // INVARIANT (for items of non-zero size): holds exactly one entry per block, its buffer
    // address to its number.
    by_address: BTreeMap<usize, u64>,
}

impl<T> Default for BlockQueue<T> {
    fn default() -> Self {
        Self {
            blocks: VecDeque::new(),
            len: 0,
            first: 0,
            by_address: BTreeMap::new(),
        }
    }
}

impl<T> BlockQueue<T> {
    /// Whether blocks are told apart by address: items of zero size have no buffer at all.
    const BY_ADDRESS: bool = size_of::<T>() != 0;

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes its blocks' buffers take (each has room for [`Block::ITEMS`] items).
    pub(crate) fn footprint(&self) -> usize {
        self.blocks.len() * Block::<T>::ITEMS * size_of::<T>()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push_back(&mut self, item: T) {
        match self.blocks.back_mut() {
            Some(block) if block.items.len() < Block::<T>::ITEMS => block.items.push_back(item),
            _ => {
                let mut block = Block::new();
                block.items.push_back(item);
                let number = self.first.wrapping_add(self.blocks.len() as u64);
                self.track(&block, number);
                self.blocks.push_back(block);
            }
        }
        self.len += 1;
    }

    pub(crate) fn push_front(&mut self, item: T) {
        match self.blocks.front_mut() {
            Some(block) if block.items.len() < Block::<T>::ITEMS => block.items.push_front(item),
            _ => {
                let mut block = Block::new();
                block.items.push_front(item);
                self.first = self.first.wrapping_sub(1);
                self.track(&block, self.first);
                self.blocks.push_front(block);
            }
        }
        self.len += 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let block = self.blocks.front_mut()?;
        let item = block.items.pop_front();
        if block.items.is_empty() {
            let emptied = self.blocks.pop_front().expect("the front block");
            self.first = self.first.wrapping_add(1);
            self.release(emptied);
            // The block index shrinks with the queue (a copy of a few pointers at most).
            if self.blocks.capacity() > 4 * self.blocks.len().max(16) {
                self.blocks.shrink_to(2 * self.blocks.len());
            }
        }
        self.len -= 1;
        item
    }

    pub(crate) fn front(&self) -> Option<&T> {
        self.blocks.front().and_then(|block| block.items.front())
    }

    /// The items, front first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().flat_map(|block| &block.items)
    }

    fn track(&mut self, block: &Block<T>, number: u64) {
        if Self::BY_ADDRESS {
            self.by_address.insert(block.address, number);
        }
    }

    /// Frees the buffer at the highest address, given the emptied front block (out of the
    /// queue already): if another block's buffer lies higher, its items move into the
    /// emptied buffer, which takes its place, and the higher buffer is freed instead.
    fn release(&mut self, mut emptied: Block<T>) {
        if !Self::BY_ADDRESS {
            return;
        }
        self.by_address.remove(&emptied.address);
        let Some((&highest, &number)) = self.by_address.last_key_value() else {
            return;
        };
        if highest < emptied.address {
            return;
        }
        let index = usize::try_from(number.wrapping_sub(self.first)).expect("a block index");
        let block = &mut self.blocks[index];
        // NOTE: at most Block::ITEMS items into a buffer made for as many: no reallocation.
        emptied.items.extend(block.items.drain(..));
        std::mem::swap(block, &mut emptied);
        self.by_address.remove(&highest);
        self.by_address.insert(block.address, number);
        drop(emptied); // the highest buffer, now empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the invariants: no block empty or over its items or reallocated, `len`
    /// right, and `by_address` exactly the blocks' addresses and numbers.
    fn check<T>(queue: &BlockQueue<T>) {
        let mut expected = BTreeMap::new();
        for (index, block) in queue.blocks.iter().enumerate() {
            assert!(!block.items.is_empty() && block.items.len() <= Block::<T>::ITEMS);
            assert!(block.items.capacity() >= Block::<T>::ITEMS);
            if size_of::<T>() != 0 {
                let front = block.items.as_slices().0.as_ptr() as usize;
                let size = size_of::<T>() * block.items.capacity();
                assert!(
                    (block.address..block.address + size).contains(&front),
                    "a block's buffer never moves"
                );
                expected.insert(block.address, queue.first.wrapping_add(index as u64));
            }
        }
        assert_eq!(queue.by_address, expected);
        let len: usize = queue.blocks.iter().map(|block| block.items.len()).sum();
        assert_eq!(queue.len(), len);
    }

    fn addresses<T>(queue: &BlockQueue<T>) -> Vec<usize> {
        queue.by_address.keys().copied().collect()
    }

    #[test]
    fn keeps_fifo_order_across_blocks_and_frees_emptied_blocks() {
        let mut queue = BlockQueue::default();
        for i in 0..3 * BLOCK + 5 {
            queue.push_back(i);
        }
        queue.push_front(usize::MAX);
        check(&queue);
        assert_eq!(queue.len(), 3 * BLOCK + 6);
        assert_eq!(queue.front(), Some(&usize::MAX));
        assert_eq!(queue.pop_front(), Some(usize::MAX));
        let order: Vec<usize> = queue.iter().copied().collect();
        assert_eq!(order, (0..3 * BLOCK + 5).collect::<Vec<_>>());
        for i in 0..3 * BLOCK + 5 {
            assert_eq!(queue.pop_front(), Some(i));
            check(&queue);
        }
        assert!(queue.is_empty() && queue.blocks.is_empty());
        assert!(queue.by_address.is_empty());
        assert_eq!(queue.pop_front(), None);
    }

    #[test]
    fn an_emptied_block_frees_the_highest_buffer() {
        let mut queue = BlockQueue::default();
        for i in 0..8 * BLOCK {
            queue.push_back(i);
        }
        for round in 0..7 {
            let before = addresses(&queue);
            for _ in 0..BLOCK {
                queue.pop_front();
            }
            check(&queue);
            let after = addresses(&queue);
            assert_eq!(
                after,
                before[..before.len() - 1],
                "round {round}: the highest buffer went, every other stayed"
            );
            let order: Vec<usize> = queue.iter().copied().collect();
            assert_eq!(order, ((round + 1) * BLOCK..8 * BLOCK).collect::<Vec<_>>());
        }
    }

    #[test]
    fn mixed_pushes_and_pops_keep_order_and_invariants() {
        let mut queue = BlockQueue::default();
        let mut model = VecDeque::new();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for step in 0..200_000_u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 8 {
                0..=2 => {
                    queue.push_back(step);
                    model.push_back(step);
                }
                3 => {
                    queue.push_front(step);
                    model.push_front(step);
                }
                _ => assert_eq!(queue.pop_front(), model.pop_front()),
            }
            if step % 4_096 == 0 {
                check(&queue);
                assert!(queue.iter().eq(model.iter()));
            }
        }
        check(&queue);
        assert!(queue.iter().eq(model.iter()));
        while let Some(item) = model.pop_front() {
            assert_eq!(queue.pop_front(), Some(item));
        }
        check(&queue);
        assert!(queue.is_empty());
    }

    #[test]
    fn blocks_of_large_items_stay_under_glibcs_mapping_threshold() {
        type Large = ([u64; 32], usize); // 264 bytes: 248 to a block
        assert_eq!(Block::<(u64, u64)>::ITEMS, BLOCK);
        assert_eq!(Block::<()>::ITEMS, BLOCK);
        assert_eq!(Block::<[u8; 200 * 1024]>::ITEMS, 1);
        let items = Block::<Large>::ITEMS;
        assert_eq!(items, 248);
        let mut queue = BlockQueue::<Large>::default();
        for i in 0..3 * items + 7 {
            queue.push_back(([0; 32], i));
        }
        check(&queue);
        assert_eq!(queue.blocks.len(), 4);
        for block in &queue.blocks {
            assert!(block.items.capacity() * size_of::<Large>() <= MAX_BLOCK_BYTES);
        }
        for i in 0..3 * items + 7 {
            assert_eq!(queue.pop_front().map(|(_, i)| i), Some(i));
            check(&queue);
        }
        assert!(queue.is_empty());
    }

    #[test]
    fn items_of_zero_size() {
        let mut queue = BlockQueue::default();
        for _ in 0..3 * BLOCK {
            queue.push_back(());
        }
        queue.push_front(());
        check(&queue);
        for _ in 0..=3 * BLOCK {
            assert_eq!(queue.pop_front(), Some(()));
        }
        assert!(queue.is_empty() && queue.blocks.is_empty());
        assert_eq!(queue.pop_front(), None);
    }
}

//! A notification in a connection thread's hands, and one waiting for its
//! retry in the heap of retries.

use std::cmp::Ordering;
use std::time::Instant;

use crate::binary::shard::Item;

/// A notification with the sends it has had.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) item: Item,
    pub(super) tries: u32,
}

/// A notification waiting for its retry; the heap's top is the earliest due.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) due: Instant,
    /// Breaks ties in order of arrival.
    pub(super) seq: u64,
    pub(super) entry: Entry,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Waiting) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Waiting) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    /// Reversed: `BinaryHeap` is a max-heap.
    fn cmp(&self, other: &Waiting) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

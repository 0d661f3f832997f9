//! Deadlines for connections, kept in one heap. Entries are never removed early: each
//! connection remembers its current deadline and stale entries are skipped when they pop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::slab::Key;

/// A heap of (deadline, connection) pairs.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl Timers {
    /// Adds a deadline for a connection.
    pub fn schedule(&mut self, at: Instant, key: Key) {
        self.heap.push(Reverse((at, key.index, key.generation)));
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns every entry due at `now`.
    pub fn pop_due(&mut self, now: Instant, due: &mut Vec<(Instant, Key)>) {
        while let Some(Reverse((at, index, generation))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            due.push((at, Key { index, generation }));
        }
    }
}

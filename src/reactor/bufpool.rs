//! Large buffers kept for reuse on the reactor thread.
//!
//! A connection gives its input or output buffer back as soon as it is empty, so idle
//! connections hold no buffer memory. Connections busy with large messages would then
//! allocate, page-fault and zero-fill a fresh megabyte-sized buffer per message; instead
//! released large buffers wait here (bounded in count and bytes) for the next large message
//! on any connection of the same reactor.

use std::cell::RefCell;

/// Buffers smaller than this are cheap to allocate and are simply dropped.
pub(crate) const POOLED_MIN: usize = 64 * 1024;
/// Most buffers kept per kind.
const MAX_BUFFERS: usize = 8;
/// Most bytes (by capacity) kept per kind.
const MAX_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pool {
    /// The smallest kept buffer whose capacity is at least `min`.
    fn take(&mut self, min: usize) -> Option<Vec<u8>> {
        let (i, _) =
            self.free.iter().enumerate().filter(|(_, b)| b.capacity() >= min).min_by_key(|(_, b)| b.capacity())?;
        let buf = self.free.swap_remove(i);
        self.bytes -= buf.capacity();
        Some(buf)
    }

    fn give(&mut self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if !(POOLED_MIN..=MAX_BYTES).contains(&cap) {
            return;
        }
        // Make room by dropping the smallest buffers first: large ones are the costly ones.
        while self.free.len() >= MAX_BUFFERS || self.bytes + cap > MAX_BYTES {
            let Some((i, _)) = self.free.iter().enumerate().min_by_key(|(_, b)| b.capacity()) else { break };
            if self.free[i].capacity() >= cap {
                return;
            }
            self.bytes -= self.free.swap_remove(i).capacity();
        }
        self.bytes += cap;
        self.free.push(buf);
    }
}

thread_local! {
    // Input buffers keep their initialized length, so reuse needs no zero-filling.
    static INPUT: RefCell<Pool> = RefCell::new(Pool::default());
    static OUTPUT: RefCell<Pool> = RefCell::new(Pool::default());
}

/// An input buffer with capacity for at least `min` bytes, if one is kept.
pub fn take_input(min: usize) -> Option<Vec<u8>> {
    INPUT.with(|p| p.borrow_mut().take(min))
}

/// Keeps an emptied input buffer (its contents are garbage, its length initialized).
pub fn give_input(buf: Vec<u8>) {
    INPUT.with(|p| p.borrow_mut().give(buf));
}

/// An empty output buffer with capacity for at least `min` bytes, if one is kept.
pub fn take_output(min: usize) -> Option<Vec<u8>> {
    OUTPUT.with(|p| p.borrow_mut().take(min)).map(|mut b| {
        b.clear();
        b
    })
}

/// Keeps an emptied output buffer.
pub fn give_output(buf: Vec<u8>) {
    OUTPUT.with(|p| p.borrow_mut().give(buf));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_buffers_are_not_kept_and_large_ones_are_reused() {
        let mut p = Pool::default();
        p.give(vec![0; 100]);
        assert!(p.take(1).is_none());
        p.give(vec![1; 1 << 20]);
        p.give(vec![2; 128 << 10]);
        let b = p.take(100 << 10).unwrap();
        assert_eq!(b.capacity(), 128 << 10, "the smallest that fits");
        assert_eq!(b.len(), 128 << 10, "initialized length is kept");
        assert!(p.take(2 << 20).is_none());
        assert_eq!(p.take(1 << 20).unwrap()[0], 1);
        assert_eq!(p.bytes, 0);
    }

    #[test]
    fn the_pool_is_bounded() {
        let mut p = Pool::default();
        for _ in 0..20 {
            p.give(Vec::with_capacity(POOLED_MIN));
        }
        assert_eq!(p.free.len(), MAX_BUFFERS);
        for _ in 0..20 {
            p.give(Vec::with_capacity(16 << 20));
        }
        assert!(p.bytes <= MAX_BYTES);
        assert!(p.free.iter().all(|b| b.capacity() == 16 << 20), "large buffers displace small ones");
        p.give(Vec::with_capacity(POOLED_MIN));
        assert!(p.free.iter().all(|b| b.capacity() == 16 << 20), "a small one does not displace a large one");
    }
}

//! Memory per subscription: 100,000 subscriptions over 10,000 connections, measured with a
//! counting allocator, must stay within 64 bytes per subscriber-topic pair beyond the names.
//! The registry is driven directly (the reactor keeps one per server, with the connection as
//! the value: a pointer, as here).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;

use wsffi::reactor::slab::Key;
use wsffi::reactor::topics::Topics;

struct Counting;

thread_local! {
    // Per thread, so the test harness's own allocations on other threads do not count.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    let _ = LIVE.try_with(|c| c.set(c.get() + n));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CONNECTIONS: u32 = 10_000;
const PER_CONNECTION: u32 = 10;

/// Bytes per subscription beyond the topic names, for `topics` distinct topics.
fn bytes_per_subscription(topics: u32) -> f64 {
    let names: Vec<String> = (0..topics).map(|t| format!("room/{t:06}")).collect();
    let name_bytes: usize = names.iter().map(String::len).sum();
    let conns: Vec<Rc<()>> = (0..CONNECTIONS).map(|_| Rc::new(())).collect();
    let before = live();
    let mut registry: Topics<Key, Rc<()>> = Topics::default();
    for (i, conn) in conns.iter().enumerate() {
        let key = Key { index: i as u32, generation: 1 };
        for j in 0..PER_CONNECTION {
            let topic = &names[((i as u32 * 7 + j * 13) % topics) as usize];
            assert_eq!(registry.subscribe(key, conn.clone(), topic, 10_000), Ok(true));
        }
    }
    let pairs = (CONNECTIONS * PER_CONNECTION) as usize;
    assert_eq!(registry.subscription_count(), pairs);
    assert_eq!(registry.topic_count(), topics as usize);
    let used = live() - before;
    let per_pair = (used as f64 - name_bytes as f64) / pairs as f64;
    // Closing every connection gives all of it back.
    for i in 0..CONNECTIONS {
        registry.remove_member(Key { index: i, generation: 1 });
    }
    assert_eq!(registry.subscription_count(), 0);
    drop(registry);
    assert_eq!(live(), before);
    println!("{topics} topics: {per_pair:.1} bytes per subscription beyond the names");
    per_pair
}

#[test]
fn a_subscription_costs_at_most_64_bytes() {
    // 100,000 subscriptions over 10,000 connections, in rooms of 1,000 and 100 members.
    for topics in [100, 1_000] {
        let per_pair = bytes_per_subscription(topics);
        assert!(per_pair <= 64.0, "{topics} topics: {per_pair:.1} bytes per subscription");
    }
}

#[test]
fn a_topic_of_its_own_costs_a_fixed_amount() {
    // A topic per pair of members (50,000 topics): each topic's own record (its slot, its
    // entry in the name index, the name's counts) is shared by only two subscriptions.
    let per_pair = bytes_per_subscription(50_000);
    let per_topic = per_pair * 2.0;
    println!("a topic with two subscribers: {per_topic:.0} bytes beyond its name");
    assert!(per_topic <= 200.0, "{per_topic:.1} bytes per topic of two");
}

//! The library's log: handshakes, refusals, protocol errors, TLS failures and timeouts, at
//! error, warn, info and debug, handed to one application function. Off by default; below
//! the chosen level a log site costs one relaxed atomic load and formats nothing.
//!
//! A record made on a reactor thread waits until the loop is between events (no connection
//! state borrowed, no callback on the stack) and is delivered there, so the log function may
//! call back into the library like any callback. Records made on other threads are
//! delivered at once, on that thread.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

/// How much a record matters; a sink set at a level gets that level and the ones above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// The library cannot do what it should (a listener that cannot accept).
    Error = 1,
    /// A connection failed: protocol errors, TLS failures, resets, DNS.
    Warn = 2,
    /// The life of connections: opened, refused, timed out.
    Info = 3,
    /// Close handshakes and HTTP answers.
    Debug = 4,
}

impl Level {
    /// The level of a number (1 = error ... 4 = debug); None otherwise.
    pub fn from_number(n: u32) -> Option<Level> {
        match n {
            1 => Some(Level::Error),
            2 => Some(Level::Warn),
            3 => Some(Level::Info),
            4 => Some(Level::Debug),
            _ => None,
        }
    }
}

/// Where records go.
pub type LogFn = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// The most detailed level wanted; 0 while no sink is set.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static SINK: RwLock<Option<LogFn>> = RwLock::new(None);

thread_local! {
    /// Reactor threads: records waiting for the loop to be between events.
    static PENDING: RefCell<Option<Vec<(Level, String)>>> = const { RefCell::new(None) };
}

/// Sets the sink and its level, or turns logging off (`None`). The previous sink is dropped
/// once no delivery uses it any more.
pub fn set_sink(sink: Option<(Level, LogFn)>) {
    let mut slot = SINK.write().unwrap_or_else(|e| e.into_inner());
    let level = sink.as_ref().map_or(0, |(l, _)| *l as u8);
    let old = std::mem::replace(&mut *slot, sink.map(|(_, f)| f));
    MAX_LEVEL.store(level, Ordering::Release);
    drop(slot);
    drop(old);
}

/// Would a record at `level` go anywhere?
#[inline]
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Formats and hands over a record (call through [`log!`](crate::log), which checks the level first).
pub fn emit(level: Level, args: fmt::Arguments<'_>) {
    let text = args.to_string();
    // Held on a reactor thread; handed over at once elsewhere.
    let now = PENDING.with(|p| match p.borrow_mut().as_mut() {
        Some(queue) => {
            queue.push((level, text));
            None
        }
        None => Some(text),
    });
    if let Some(text) = now {
        deliver(level, &text);
    }
}

fn deliver(level: Level, text: &str) {
    if !enabled(level) {
        return;
    }
    // Cloned out of the lock: the sink may set a new sink.
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(sink) = sink {
        sink(level, text);
    }
}

/// Makes the calling thread (a reactor thread) hold its records for [`flush_pending`].
pub fn hold_on_this_thread() {
    PENDING.with(|p| *p.borrow_mut() = Some(Vec::new()));
}

/// Delivers the records this thread holds; the loop calls it between events.
pub fn flush_pending() {
    // Called after every event: with the log off, one atomic load and nothing else.
    if MAX_LEVEL.load(Ordering::Relaxed) == 0 {
        return;
    }
    loop {
        let batch = PENDING.with(|p| p.borrow_mut().as_mut().map(std::mem::take).unwrap_or_default());
        if batch.is_empty() {
            return;
        }
        // Records the sink itself causes land in the queue again and go out next round.
        for (level, text) in batch {
            deliver(level, &text);
        }
    }
}

/// Text from a peer (a URL, a reason), quoted with control characters escaped so a record
/// stays one line and cannot fake another.
pub fn quoted(s: &str) -> impl fmt::Display + '_ {
    struct Quoted<'a>(&'a str);
    impl fmt::Display for Quoted<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "\"{}\"", self.0.escape_debug())
        }
    }
    Quoted(s)
}

/// `log!(Level::Warn, "format", args...)`: formats only when the level is enabled.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {{
        let level = $level;
        if $crate::reactor::log::enabled(level) {
            $crate::reactor::log::emit(level, format_args!($($arg)+));
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    // One test drives the global sink, so the cases cannot race each other.
    #[test]
    fn levels_deferral_and_reentrant_sinks() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        set_sink(Some((
            Level::Info,
            Arc::new(move |l, t: &str| {
                // Only this test's records (other tests' reactors may log meanwhile).
                if t.starts_with("t:") {
                    s2.lock().unwrap().push((l, t.to_string()))
                }
            }),
        )));
        crate::log!(Level::Warn, "t:w {}", 1);
        crate::log!(Level::Debug, "not wanted {}", panic_if_formatted());
        assert_eq!(*seen.lock().unwrap(), vec![(Level::Warn, "t:w 1".to_string())]);

        // A reactor thread holds records until flushed.
        let seen_on_thread = seen.clone();
        std::thread::spawn(move || {
            hold_on_this_thread();
            crate::log!(Level::Info, "t:held");
            assert_eq!(seen_on_thread.lock().unwrap().len(), 1);
            flush_pending();
            assert_eq!(seen_on_thread.lock().unwrap().len(), 2);
        })
        .join()
        .unwrap();

        // A sink that replaces itself from inside a delivery.
        let count = Arc::new(Mutex::new(0));
        let c2 = count.clone();
        set_sink(Some((
            Level::Error,
            Arc::new(move |_, t: &str| {
                if t.starts_with("t:") {
                    *c2.lock().unwrap() += 1;
                    set_sink(None);
                }
            }),
        )));
        crate::log!(Level::Error, "t:once");
        crate::log!(Level::Error, "t:twice");
        assert_eq!(*count.lock().unwrap(), 1);
        assert!(!enabled(Level::Error));
        assert_eq!(quoted("a\"b\r\nc").to_string(), "\"a\\\"b\\r\\nc\"");
    }

    fn panic_if_formatted() -> &'static str {
        panic!("a disabled record was formatted")
    }
}

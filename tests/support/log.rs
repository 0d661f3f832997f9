//! The event log of the Rust tests that drive the C API: C callbacks push a line per event
//! (the log travels as their user data) and the test waits for the lines it expects.
// Each test binary compiles this module and uses its own part of it.
#![allow(dead_code)]

use std::ffi::c_void;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How long a test waits for an event before it fails, listing what it saw.
const WAIT: Duration = Duration::from_secs(20);

/// What the callbacks saw, behind a lock, with a condvar to wait on.
#[derive(Default)]
pub struct Log {
    events: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Log {
    /// A log that lives for the rest of the test process, as user data must.
    pub fn new() -> &'static Log {
        Box::leak(Box::default())
    }

    /// The log a test passed as `user`.
    pub fn of(user: *mut c_void) -> &'static Log {
        // SAFETY: every test passes a leaked `Log` (from `Log::new`) as user data.
        unsafe { &*(user as *const Log) }
    }

    /// This log as callback user data.
    pub fn ptr(&'static self) -> *mut c_void {
        self as *const Log as *mut c_void
    }

    /// Records one event.
    pub fn push(&self, event: String) {
        self.events.lock().unwrap().push(event);
        self.changed.notify_all();
    }

    /// The events so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the events so far, and returns them.
    pub fn wait_for(&self, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let guard = self.events.lock().unwrap();
        let (guard, timeout) = self.changed.wait_timeout_while(guard, WAIT, |ev| !pred(ev)).unwrap();
        assert!(!timeout.timed_out(), "timed out; events so far: {:?}", *guard);
        guard.clone()
    }

    /// Waits for the first event starting with `prefix` and returns it.
    pub fn wait_event(&self, prefix: &str) -> String {
        let ev = self.wait_for(|ev| ev.iter().any(|e| e.starts_with(prefix)));
        ev.into_iter().find(|e| e.starts_with(prefix)).unwrap()
    }
}

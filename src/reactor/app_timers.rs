//! Timers the application sets on the reactor (a heartbeat, a `setInterval`), run where the
//! reactor's other callbacks run: on the reactor thread, or in dispatch mode as jobs on the
//! dispatching thread.
//!
//! The loop owns the schedule; each timer's callback sits in a shared [`TimerTarget`] so a
//! dispatched job can carry it to another thread. Cancelling removes the timer from the
//! schedule at once (stale heap entries are skipped when they pop) and flags the target, so a
//! job already queued runs nothing. The callback is dropped exactly once: after a one-shot's
//! run, when cancelled, or when the reactor stops; in dispatch mode always on the
//! dispatching thread.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::dispatch::DispatchQueue;

/// Identifies a timer of one reactor; never reused by that reactor.
pub type TimerId = u64;

/// What a timer runs; gets its own id (so it can cancel itself).
pub type TimerFn = Box<dyn FnMut(TimerId) + Send>;

/// A timer's callback, shared with the jobs that run it in dispatch mode.
pub struct TimerTarget {
    callback: Mutex<Option<TimerFn>>,
    cancelled: AtomicBool,
    /// Dispatch mode: a job for this timer waits in the queue (a slow dispatcher gets one
    /// run per backlog, not one per missed interval).
    queued: AtomicBool,
}

impl TimerTarget {
    fn new(callback: TimerFn) -> Self {
        TimerTarget {
            callback: Mutex::new(Some(callback)),
            cancelled: AtomicBool::new(false),
            queued: AtomicBool::new(false),
        }
    }

    /// Runs the callback unless cancelled; drops it when this was the last run.
    fn fire(&self, id: TimerId, last: bool) {
        self.queued.store(false, Ordering::Release);
        let finished = {
            let mut slot = self.callback.lock().unwrap_or_else(|e| e.into_inner());
            if !self.cancelled.load(Ordering::Acquire) {
                if let Some(cb) = slot.as_mut() {
                    // A panicking Rust callback must not take the loop or the dispatcher down.
                    let _ = catch_unwind(AssertUnwindSafe(|| cb(id)));
                }
            }
            // Cancelled while it ran (from inside itself), or a one-shot: this was the end.
            if last || self.cancelled.load(Ordering::Acquire) {
                slot.take()
            } else {
                None
            }
        };
        // Dropped outside the lock: a destroy function may call back into the library.
        drop(finished);
    }

    /// Marks the timer cancelled and takes its callback unless it is running right now (the
    /// run then drops it when it returns).
    fn cancel(&self) -> Option<TimerFn> {
        self.cancelled.store(true, Ordering::Release);
        match self.callback.try_lock() {
            Ok(mut slot) => slot.take(),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().take(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// `at + d`, or about thirty years on when that does not fit (a delay of `u64::MAX` ms).
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or_else(|| at + Duration::from_secs(30 * 365 * 86_400))
}

struct Entry {
    repeat: Option<Duration>,
    target: Arc<TimerTarget>,
}

/// The schedule of application timers of one loop.
#[derive(Default)]
pub struct AppTimers {
    next_id: TimerId,
    heap: BinaryHeap<Reverse<(Instant, TimerId)>>,
    entries: HashMap<TimerId, Entry>,
}

/// One run that is due: what to call and whether it is the timer's last.
pub struct DueRun {
    id: TimerId,
    target: Arc<TimerTarget>,
    last: bool,
}

impl AppTimers {
    /// Schedules `callback` after `delay`, then every `repeat` if given; returns its id.
    pub fn add(&mut self, now: Instant, delay: Duration, repeat: Option<Duration>, callback: TimerFn) -> TimerId {
        self.next_id += 1;
        let id = self.next_id;
        self.heap.push(Reverse((later(now, delay), id)));
        self.entries.insert(id, Entry { repeat, target: Arc::new(TimerTarget::new(callback)) });
        id
    }

    /// Removes a pending timer; its callback (if not running) is handed back to be dropped
    /// where callbacks run. None when no such timer is pending.
    pub fn cancel(&mut self, id: TimerId) -> Option<Option<TimerFn>> {
        let entry = self.entries.remove(&id)?;
        Some(entry.target.cancel())
    }

    /// The earliest deadline (possibly of a cancelled timer: waking early is harmless).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the runs due at `now`, rescheduling repeating timers. A repeating timer that
    /// fell behind (a long callback, a suspended process) runs once and resumes one interval
    /// from now instead of catching up in a burst.
    pub fn take_due(&mut self, now: Instant, into: &mut Vec<DueRun>) {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(entry) = self.entries.get(&id) else { continue };
            let target = entry.target.clone();
            let last = match entry.repeat {
                Some(every) => {
                    let next = if later(at, every) > now { later(at, every) } else { later(now, every) };
                    self.heap.push(Reverse((next, id)));
                    false
                }
                None => {
                    self.entries.remove(&id);
                    true
                }
            };
            into.push(DueRun { id, target, last });
        }
    }

    /// Removes every timer; their callbacks are returned to be dropped where callbacks run.
    pub fn drain(&mut self) -> Vec<TimerFn> {
        self.heap.clear();
        self.entries.drain().filter_map(|(_, e)| e.target.cancel()).collect()
    }
}

impl DueRun {
    /// Runs it here (the reactor thread).
    pub fn run(self) {
        self.target.fire(self.id, self.last);
    }

    /// Queues it for the dispatching thread, unless a run of the same timer already waits
    /// there (a last run always goes, so the callback is dropped on that thread).
    pub fn dispatch(self, queue: &DispatchQueue) {
        if !self.last && self.target.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let DueRun { id, target, last } = self;
        queue.push(Box::new(move || target.fire(id, last)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Dropped(Arc<AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting(runs: &Arc<AtomicUsize>, drops: &Arc<AtomicUsize>) -> TimerFn {
        let runs = runs.clone();
        let guard = Dropped(drops.clone());
        Box::new(move |_| {
            let _ = &guard;
            runs.fetch_add(1, Ordering::SeqCst);
        })
    }

    fn run_due(t: &mut AppTimers, now: Instant) {
        let mut due = Vec::new();
        t.take_due(now, &mut due);
        due.into_iter().for_each(DueRun::run);
    }

    #[test]
    fn one_shot_runs_once_then_drops_its_callback() {
        let (runs, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut t = AppTimers::default();
        let start = Instant::now();
        t.add(start, Duration::from_millis(10), None, counting(&runs, &drops));
        run_due(&mut t, start + Duration::from_millis(5));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        run_due(&mut t, start + Duration::from_millis(10));
        run_due(&mut t, start + Duration::from_millis(50));
        assert_eq!((runs.load(Ordering::SeqCst), drops.load(Ordering::SeqCst)), (1, 1));
        assert!(t.is_empty());
    }

    #[test]
    fn repeating_timer_skips_missed_intervals_instead_of_bursting() {
        let (runs, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut t = AppTimers::default();
        let start = Instant::now();
        let ms = Duration::from_millis;
        t.add(start, ms(10), Some(ms(10)), counting(&runs, &drops));
        run_due(&mut t, start + ms(10));
        run_due(&mut t, start + ms(20));
        // 100 ms late: one run, then the next a full interval later.
        run_due(&mut t, start + ms(120));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(t.next_deadline(), Some(start + ms(130)));
        assert_eq!(drops.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn cancel_stops_future_runs_and_hands_back_the_callback_once() {
        let (runs, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut t = AppTimers::default();
        let start = Instant::now();
        let id = t.add(start, Duration::ZERO, Some(Duration::from_millis(1)), counting(&runs, &drops));
        run_due(&mut t, start);
        let callback = t.cancel(id).expect("pending");
        drop(callback);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(t.cancel(id).is_none(), "a second cancel finds nothing");
        run_due(&mut t, start + Duration::from_secs(1));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_callback_cancelling_itself_is_dropped_after_it_returns() {
        let drops = Arc::new(AtomicUsize::new(0));
        let timers = Arc::new(Mutex::new(AppTimers::default()));
        let start = Instant::now();
        let (t2, guard) = (timers.clone(), Dropped(drops.clone()));
        let seen_alive = Arc::new(AtomicBool::new(false));
        let seen = seen_alive.clone();
        let d2 = drops.clone();
        let id = timers.lock().unwrap().add(
            start,
            Duration::ZERO,
            Some(Duration::from_millis(1)),
            Box::new(move |id| {
                let _ = &guard;
                // The schedule lock is not held while callbacks run (as in the loop).
                let handed_back = t2.lock().unwrap().cancel(id).expect("pending");
                assert!(handed_back.is_none(), "a running callback is not handed back");
                seen.store(d2.load(Ordering::SeqCst) == 0, Ordering::SeqCst);
            }),
        );
        let mut due = Vec::new();
        timers.lock().unwrap().take_due(start, &mut due);
        due.into_iter().for_each(DueRun::run);
        assert!(seen_alive.load(Ordering::SeqCst));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(timers.lock().unwrap().cancel(id).is_none());
    }

    #[test]
    fn dispatch_coalesces_runs_of_a_slow_dispatcher_and_honours_cancel() {
        let (runs, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let queue = DispatchQueue::new(None).unwrap();
        let mut t = AppTimers::default();
        let start = Instant::now();
        let ms = Duration::from_millis;
        let id = t.add(start, ms(1), Some(ms(1)), counting(&runs, &drops));
        for i in 1..=5 {
            let mut due = Vec::new();
            t.take_due(start + ms(i), &mut due);
            due.into_iter().for_each(|d| d.dispatch(&queue));
        }
        assert_eq!(queue.len(), 1, "one waiting job per timer");
        queue.run(usize::MAX).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let mut due = Vec::new();
        t.take_due(start + ms(10), &mut due);
        due.into_iter().for_each(|d| d.dispatch(&queue));
        drop(t.cancel(id));
        queue.run(usize::MAX).unwrap();
        assert_eq!((runs.load(Ordering::SeqCst), drops.load(Ordering::SeqCst)), (1, 1));
    }

    #[test]
    fn drain_returns_every_callback() {
        let (runs, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut t = AppTimers::default();
        let now = Instant::now();
        t.add(now, Duration::from_secs(5), None, counting(&runs, &drops));
        t.add(now, Duration::from_secs(5), Some(Duration::from_secs(1)), counting(&runs, &drops));
        let left = t.drain();
        assert_eq!(left.len(), 2);
        drop(left);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        assert!(t.is_empty() && t.next_deadline().is_none());
    }
}

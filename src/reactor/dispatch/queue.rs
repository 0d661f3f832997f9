//! The queue of dispatch mode: jobs pushed by the reactor thread, run by the application's.
//!
//! Runtimes that own their thread (Python's asyncio, Node, GUI loops, libuv) cannot take
//! calls from a foreign thread. For them the reactor pushes each event as a [`Job`] onto a
//! [`DispatchQueue`]; the application learns that jobs wait either by polling
//! [`DispatchQueue::fd`] (readable while jobs wait) or through a wake function, and runs them
//! with [`DispatchQueue::run`] on its own thread.
//!
//! Signalling is per batch, not per job: the reactor pushes every job of a wake-up and then
//! calls [`DispatchQueue::signal`] once. The descriptor is a socket pair that holds at most one
//! byte: written when a signalled batch finds the queue without one, read back when a run
//! empties the queue. The wake function is called at most once per batch and never again
//! until a run has answered it, so a runtime that posts a task per wake never piles them up.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;

/// One queued event: a closure that delivers it.
pub type Job = Box<dyn FnOnce() + Send>;

/// Tells the application that jobs wait. Called on the reactor thread; it must not block.
pub type WakeFn = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Jobs pushed since the last [`DispatchQueue::signal`].
    unsignalled: bool,
    /// The socket pair holds its byte: the descriptor is readable.
    readable: bool,
    /// The wake function was called and no run has started since.
    wake_outstanding: bool,
    /// The reactor has stopped: the run in progress goes on until the queue is empty.
    finishing: bool,
}

/// Why [`DispatchQueue::run`] ran nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunError {
    /// Called from inside a job this queue is running on the same thread.
    Reentrant,
}

/// The queue between the reactor thread (producer) and the dispatching thread (consumer).
pub struct DispatchQueue {
    state: Mutex<State>,
    /// Held for the length of a run, so runs from several threads take turns.
    running: Mutex<()>,
    /// The thread inside `run`, to refuse a run from inside one of its own jobs.
    runner: Mutex<Option<ThreadId>>,
    reader: UnixStream,
    writer: UnixStream,
    /// Dropped by [`Self::finish`]: the application's wake state ends with the reactor.
    wake: Mutex<Option<WakeFn>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A job that panicked is caught by its own guard; a poisoned lock holds no broken state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DispatchQueue {
    /// A queue with its descriptor and an optional wake function.
    pub fn new(wake: Option<WakeFn>) -> std::io::Result<Self> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(DispatchQueue {
            state: Mutex::new(State::default()),
            running: Mutex::new(()),
            runner: Mutex::new(None),
            reader,
            writer,
            wake: Mutex::new(wake),
        })
    }

    /// The descriptor that is readable while jobs wait. It stays owned by the queue.
    pub fn fd(&self) -> RawFd {
        self.reader.as_raw_fd()
    }

    /// Queues a job; it becomes visible to the application at the next [`Self::signal`].
    pub fn push(&self, job: Job) {
        let mut st = lock(&self.state);
        st.jobs.push_back(job);
        st.unsignalled = true;
    }

    /// Ends a batch: makes the descriptor readable and calls the wake function, if jobs were
    /// pushed since the last signal. Called by the reactor thread once per wake-up.
    pub fn signal(&self) {
        let call_wake = {
            let mut st = lock(&self.state);
            if !st.unsignalled {
                return;
            }
            st.unsignalled = false;
            if st.jobs.is_empty() {
                return;
            }
            if !st.readable {
                // One byte in an empty socket buffer always fits.
                let _ = (&self.writer).write(&[1]);
                st.readable = true;
            }
            if st.wake_outstanding {
                return;
            }
            let wake = lock(&self.wake).clone();
            st.wake_outstanding = wake.is_some();
            wake
        };
        if let Some(wake) = call_wake {
            wake();
        }
    }

    /// Runs up to `max` queued jobs on the calling thread, in order, and returns how many ran.
    /// When it returns `max`, more may wait: the descriptor stays readable until the queue is
    /// empty.
    pub fn run(&self, max: usize) -> Result<usize, RunError> {
        let me = std::thread::current().id();
        if *lock(&self.runner) == Some(me) {
            return Err(RunError::Reentrant);
        }
        let _turn = lock(&self.running);
        *lock(&self.runner) = Some(me);
        lock(&self.state).wake_outstanding = false;
        // Jobs leave the queue in batches, so the reactor thread meets the lock once per
        // batch rather than once per job.
        let mut batch = VecDeque::new();
        let mut ran = 0;
        loop {
            if !self.take_batch(&mut batch, max.saturating_sub(ran)) {
                break;
            }
            while let Some(job) = batch.pop_front() {
                job();
                ran += 1;
            }
        }
        *lock(&self.runner) = None;
        Ok(ran)
    }

    /// The producer is gone: runs every job left, on this thread, or (called from inside a
    /// job) lets the run in progress go on until the queue is empty, whatever its `max`.
    pub fn finish(&self) {
        lock(&self.state).finishing = true;
        drop(lock(&self.wake).take());
        if !self.is_running_on_current_thread() {
            let _ = self.run(usize::MAX);
        }
    }

    /// Is the calling thread inside [`Self::run`]?
    pub fn is_running_on_current_thread(&self) -> bool {
        *lock(&self.runner) == Some(std::thread::current().id())
    }

    /// Jobs waiting, signalled or not.
    pub fn len(&self) -> usize {
        lock(&self.state).jobs.len()
    }

    /// No job waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves up to `budget` jobs (all of them once the reactor is finishing) into `batch`;
    /// false when there is nothing to take. Reads the descriptor's byte back when the queue
    /// is left empty.
    fn take_batch(&self, batch: &mut VecDeque<Job>, budget: usize) -> bool {
        let mut st = lock(&self.state);
        let budget = if st.finishing { usize::MAX } else { budget };
        let n = budget.min(st.jobs.len());
        if n == 0 {
            return false;
        }
        batch.extend(st.jobs.drain(..n));
        if st.jobs.is_empty() && st.readable {
            let mut byte = [0u8; 8];
            loop {
                match (&self.reader).read(&mut byte) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            st.readable = false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Asks the kernel, as an application's poll loop would.
    fn readable(q: &DispatchQueue) -> bool {
        let mut poll = mio::Poll::new().unwrap();
        let fd = q.fd();
        poll.registry().register(&mut mio::unix::SourceFd(&fd), mio::Token(0), mio::Interest::READABLE).unwrap();
        let mut events = mio::Events::with_capacity(1);
        poll.poll(&mut events, Some(std::time::Duration::ZERO)).unwrap();
        !events.is_empty()
    }

    fn recorder() -> (Arc<Mutex<Vec<u32>>>, impl Fn(u32) -> Job) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        (log, move |n| {
            let l = l.clone();
            Box::new(move || l.lock().unwrap().push(n)) as Job
        })
    }

    #[test]
    fn jobs_become_visible_at_the_signal_and_run_in_order() {
        let q = DispatchQueue::new(None).unwrap();
        let (log, job) = recorder();
        q.push(job(1));
        q.push(job(2));
        assert!(!readable(&q), "not readable before the batch is signalled");
        q.signal();
        assert!(readable(&q));
        assert_eq!(q.run(usize::MAX), Ok(2));
        assert_eq!(*log.lock().unwrap(), vec![1, 2]);
        assert!(!readable(&q), "an empty queue is not readable");
    }

    #[test]
    fn a_partial_run_leaves_the_descriptor_readable() {
        let q = DispatchQueue::new(None).unwrap();
        let (log, job) = recorder();
        for n in 0..5 {
            q.push(job(n));
        }
        q.signal();
        assert_eq!(q.run(2), Ok(2));
        assert!(readable(&q));
        assert_eq!(q.len(), 3);
        assert_eq!(q.run(10), Ok(3));
        assert!(!readable(&q));
        assert_eq!(*log.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn wake_is_called_once_per_batch_and_not_while_unanswered() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let q = DispatchQueue::new(Some(Arc::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        })))
        .unwrap();
        let (_log, job) = recorder();
        q.push(job(1));
        q.push(job(2));
        q.signal();
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        q.push(job(3));
        q.signal();
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "the first wake is still unanswered");
        assert_eq!(q.run(1), Ok(1));
        q.push(job(4));
        q.signal();
        assert_eq!(wakes.load(Ordering::SeqCst), 2, "a run answered the first wake");
        q.signal();
        assert_eq!(wakes.load(Ordering::SeqCst), 2, "an empty batch wakes nobody");
    }

    #[test]
    fn a_run_from_inside_a_job_is_refused() {
        let q = Arc::new(DispatchQueue::new(None).unwrap());
        let inner = Arc::new(Mutex::new(None));
        let (q2, inner2) = (q.clone(), inner.clone());
        q.push(Box::new(move || {
            assert!(q2.is_running_on_current_thread());
            *inner2.lock().unwrap() = Some(q2.run(1));
        }));
        q.signal();
        assert_eq!(q.run(1), Ok(1));
        assert_eq!(*inner.lock().unwrap(), Some(Err(RunError::Reentrant)));
        assert!(!q.is_running_on_current_thread());
    }

    #[test]
    fn pushes_from_another_thread_are_all_delivered() {
        let q = Arc::new(DispatchQueue::new(None).unwrap());
        let (log, job) = recorder();
        let producer = {
            let q = q.clone();
            let jobs: Vec<Job> = (0..1000).map(&job).collect();
            std::thread::spawn(move || {
                for (i, j) in jobs.into_iter().enumerate() {
                    q.push(j);
                    if i % 7 == 0 {
                        q.signal();
                    }
                }
                q.signal();
            })
        };
        let mut ran = 0;
        while ran < 1000 {
            ran += q.run(64).unwrap();
            std::thread::yield_now();
        }
        producer.join().unwrap();
        assert_eq!(*log.lock().unwrap(), (0..1000).collect::<Vec<_>>());
        assert!(!readable(&q));
    }
}

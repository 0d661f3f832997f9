//! The reactor: one thread that owns every socket, timer and connection of a
//! `wsffi_reactor`. Other threads talk to it through [`Shared::post`]; code already running on
//! the reactor thread (callbacks) reaches the loop directly through [`with_loop`].

#![forbid(unsafe_code)]

pub mod api;
pub mod app_timers;
pub mod bufpool;
pub mod client;
pub mod config;
pub mod conn;
pub mod dispatch;
pub mod ending;
pub mod error;
pub mod event_loop;
pub mod events;
pub mod log;
mod proxy;
pub mod pubsub;
pub mod reconnect;
pub mod server;
pub mod slab;
pub mod stats;
pub mod stream;
pub mod timers;
pub mod tls;
pub mod topics;
pub mod views;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};

use once_cell::sync::OnceCell;

use crate::reactor::error::Error;
use config::ReactorConfig;
use event_loop::EventLoop;

/// Work handed to the reactor thread.
pub enum Command {
    /// Run a closure on the loop.
    Call(Box<dyn FnOnce(&EventLoop) + Send>),
    /// A send from another thread (kept apart from `Call` to skip a boxed closure).
    Send {
        /// Target connection.
        conn: Arc<conn::ConnHandle>,
        /// What to send.
        op: conn::SendOp,
        /// Payload, already copied.
        data: Vec<u8>,
    },
    /// Stop: close everything and leave the loop.
    Shutdown,
}

/// The part of a reactor every thread can see.
pub struct Shared {
    id: u64,
    queue: Mutex<Vec<Command>>,
    queued: AtomicUsize,
    waker: OnceCell<mio::Waker>,
    thread: OnceCell<ThreadId>,
    stopped: AtomicBool,
    config: ReactorConfig,
    /// Dispatch mode: where events wait for the application's thread.
    dispatch: Option<Arc<dispatch::DispatchQueue>>,
    /// Counters of every connection and server of the reactor.
    pub(crate) stats: stats::ReactorStats,
    /// The servers attached and not yet finished, for reading their counters from any
    /// thread (weak: a server's handle refers back to this).
    servers: Mutex<Vec<std::sync::Weak<server::ServerHandle>>>,
}

static NEXT_REACTOR_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: RefCell<Option<Rc<EventLoop>>> = const { RefCell::new(None) };
}

/// Runs `f` with the loop if the calling thread is `shared`'s reactor thread.
pub fn with_loop<R>(shared: &Shared, f: impl FnOnce(&Rc<EventLoop>) -> R) -> Option<R> {
    let lp = CURRENT.with(|c| c.borrow().as_ref().filter(|lp| lp.shared.id == shared.id).cloned())?;
    Some(f(&lp))
}

/// Is the calling thread the reactor thread of any reactor (i.e. inside a callback)?
pub fn on_any_reactor_thread() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

impl Shared {
    /// The reactor's counters now (see [`stats`]); from any thread, without waiting for the
    /// reactor.
    pub fn stats(&self) -> stats::ReactorCounters {
        self.stats.snapshot()
    }

    /// The servers attached and not finished, in attach order.
    pub fn servers(&self) -> Vec<Arc<server::ServerHandle>> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(|w| w.upgrade()).collect()
    }

    /// The reactor's counters and its servers' in the Prometheus text format.
    pub fn prometheus_text(&self) -> String {
        let servers: Vec<stats::prometheus::ServerEntry> = self
            .servers()
            .iter()
            .map(|s| stats::prometheus::ServerEntry {
                id: s.id,
                path: s.path.to_string_lossy().into_owned(),
                counters: s.stats(),
            })
            .collect();
        stats::prometheus::exposition(&self.stats(), &servers)
    }

    pub(crate) fn register_server(&self, handle: &Arc<server::ServerHandle>) {
        self.servers.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(handle));
    }

    pub(crate) fn unregister_server(&self, handle: &Arc<server::ServerHandle>) {
        let mut list = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(handle)));
    }

    /// The queue of dispatch mode; `None` when callbacks run on the reactor thread.
    pub fn dispatch_queue(&self) -> Option<&Arc<dispatch::DispatchQueue>> {
        self.dispatch.as_ref()
    }

    /// Has the reactor stopped accepting work?
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Is the calling thread this reactor's thread?
    pub fn is_current_thread(&self) -> bool {
        self.thread.get() == Some(&std::thread::current().id())
    }

    /// Queues a command and wakes the reactor if the queue was empty.
    pub fn post(&self, cmd: Command) -> Result<(), Error> {
        if self.queued.load(Ordering::Relaxed) >= self.config.max_queued_commands {
            return Err(Error::QueueFull);
        }
        let was_empty = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            // Checked under the lock: once `close_queue` ran, nothing can be left behind.
            if self.is_stopped() {
                return Err(Error::ShutDown);
            }
            q.push(cmd);
            // Counted under the lock: `take_commands` subtracts under it too, so the count
            // can never drop below zero (and wrap) between a push and its count.
            self.queued.fetch_add(1, Ordering::Relaxed);
            q.len() == 1
        };
        if was_empty {
            if let Some(w) = self.waker.get() {
                let _ = w.wake();
            }
        }
        Ok(())
    }

    /// Takes every queued command.
    fn take_commands(&self, into: &mut Vec<Command>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *q, into);
        self.queued.fetch_sub(into.len(), Ordering::Relaxed);
    }

    /// Refuses further commands and returns those still queued.
    fn close_queue(&self) -> Vec<Command> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.stopped.store(true, Ordering::Release);
        self.queued.store(0, Ordering::Relaxed);
        std::mem::take(&mut *q)
    }

    /// Runs `f` on the loop: directly when called on the reactor thread, else through the
    /// queue, waiting for the result.
    pub fn run_sync<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Rc<EventLoop>) -> R + Send + 'static,
    ) -> Result<R, Error> {
        // `f` is moved into whichever path runs it.
        let mut f = Some(f);
        if let Some(r) = with_loop(self, |lp| (f.take().expect("closure present"))(lp)) {
            return Ok(r);
        }
        let f = f.take().expect("closure present");
        let (tx, rx) = mpsc::sync_channel(1);
        self.post(Command::Call(Box::new(move |lp: &EventLoop| {
            let lp = lp.rc();
            let _ = tx.send(f(&lp));
        })))?;
        rx.recv().map_err(|_| Error::ShutDown)
    }

    /// Runs `f` on the loop without waiting: directly on the reactor thread, else queued.
    pub fn run_async(&self, f: impl FnOnce(&Rc<EventLoop>) + Send + 'static) -> Result<(), Error> {
        let mut f = Some(f);
        if with_loop(self, |lp| (f.take().expect("closure present"))(lp)).is_some() {
            return Ok(());
        }
        let f = f.take().expect("closure present");
        self.post(Command::Call(Box::new(move |lp: &EventLoop| f(&lp.rc()))))
    }
}

/// The owner's side of a reactor: starts and joins the thread.
pub struct Reactor {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reactor {
    /// Starts a reactor thread.
    pub fn start(mut config: ReactorConfig) -> std::io::Result<Reactor> {
        // Kept by the queue only, so the wake function goes when the reactor stops.
        let dispatch = match config.dispatch.take() {
            Some(settings) => Some(Arc::new(dispatch::DispatchQueue::new(settings.wake.clone())?)),
            None => None,
        };
        let shared = Arc::new(Shared {
            id: NEXT_REACTOR_ID.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::new(Vec::new()),
            queued: AtomicUsize::new(0),
            waker: OnceCell::new(),
            thread: OnceCell::new(),
            stopped: AtomicBool::new(false),
            config,
            dispatch,
            stats: stats::ReactorStats::default(),
            servers: Mutex::new(Vec::new()),
        });
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), event_loop::WAKER_TOKEN)?;
        let _ = shared.waker.set(waker);
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new().name("wsffi-reactor".into()).spawn(move || {
            let _ = thread_shared.thread.set(std::thread::current().id());
            let lp = Rc::new(EventLoop::new(thread_shared, poll));
            CURRENT.with(|c| *c.borrow_mut() = Some(lp.clone()));
            log::hold_on_this_thread();
            let _ = ready_tx.send(());
            lp.run();
            lp.finish();
            log::flush_pending();
            CURRENT.with(|c| c.borrow_mut().take());
            log::flush_pending();
        })?;
        let _ = ready_rx.recv();
        Ok(Reactor { shared, thread: Mutex::new(Some(thread)) })
    }

    /// The reactor's counters now (see [`Shared::stats`]).
    pub fn stats(&self) -> stats::ReactorCounters {
        self.shared.stats()
    }

    /// The shared part, for handles.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Closes everything and joins the thread. Refused on the reactor thread itself. In
    /// dispatch mode the events still queued then run on the calling thread (called from a
    /// dispatched event, they run before the dispatch in progress returns).
    pub fn stop(&self) -> Result<(), Error> {
        if self.shared.is_current_thread() {
            return Err(Error::CalledFromCallback);
        }
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = self.shared.post(Command::Shutdown);
            let _ = handle.join();
        }
        if let Some(queue) = &self.shared.dispatch {
            queue.finish();
        }
        Ok(())
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        if !self.shared.is_current_thread() {
            let _ = self.stop();
        }
    }
}

//! Dispatch mode: events queued for the application's own thread instead of being run on the
//! reactor thread. [`queue`] is the hand-over between the two threads; [`forward`] holds the
//! event objects that turn each event into a queued job.

pub mod forward;
pub mod queue;

pub use forward::{ConnForwarder, ConnTarget, ServerForwarder};
pub use queue::{DispatchQueue, Job, RunError, WakeFn};

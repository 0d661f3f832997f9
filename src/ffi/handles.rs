//! How C holds each object the library hands out, written into the type system.
//!
//! Every pointer type of the header has one ownership, declared here with `Handle`:
//! - `Counted`: C holds counted references (`Arc::into_raw`), taken back by a release,
//!   accept/reject or close function: connections, servers, listeners, deferred
//!   handshakes, copied requests.
//! - `Owned`: C owns the one object (`Box::into_raw`) and frees it with its `_free`:
//!   reactors, options, error details.
//! - `Lent`: C only ever borrows it, for a call or while its owner lives: responses and
//!   plain HTTP answers.
//!
//! The conversions below accept only the ownership they are for, so taking a Box back
//! from a counted handle, or counting a boxed one, does not compile:
//!
//! ```
//! use wsffi::ffi::handles::{owned, take_counted};
//! use wsffi::ffi::reactor::wsffi_reactor;
//! use wsffi::reactor::conn::ConnHandle;
//! let reactor: *mut wsffi_reactor = std::ptr::null_mut();
//! assert!(unsafe { owned(reactor) }.is_err()); // NULL: WSFFI_STATUS_ERR_NULL_PARAMETER
//! let conn: *const ConnHandle = std::ptr::null();
//! assert!(unsafe { take_counted(conn) }.is_none());
//! ```
//!
//! ```compile_fail
//! use wsffi::ffi::handles::owned;
//! use wsffi::reactor::conn::ConnHandle;
//! let conn: *mut ConnHandle = std::ptr::null_mut();
//! let _ = unsafe { owned(conn) }; // a connection is counted, not owned
//! ```
//!
//! ```compile_fail
//! use wsffi::ffi::handles::take_counted;
//! use wsffi::ffi::reactor::wsffi_reactor;
//! let reactor: *const wsffi_reactor = std::ptr::null();
//! let _ = unsafe { take_counted(reactor) }; // a reactor is owned, not counted
//! ```

use std::mem::ManuallyDrop;
use std::sync::Arc;

use super::boundary::wsffi_error;
use super::options::{wsffi_client_options, wsffi_listener_options, wsffi_server_options};
use super::reactor::{wsffi_reactor, wsffi_reactor_options};
use super::status::Status;
use crate::reactor::conn::ConnHandle;
use crate::reactor::server::{HandshakeHandle, ListenerHandle, ServerHandle};
use crate::reactor::views::{HttpResponse, RequestView, ResponseView};

/// Held by C as counted references.
pub enum Counted {}
/// Owned by C alone until its `_free`.
pub enum Owned {}
/// Borrowed by C, never owned.
pub enum Lent {}

/// A type the header names, and how C holds it.
pub trait Handle {
    /// `Counted`, `Owned` or `Lent`.
    type Ownership;
}

macro_rules! handles {
    ($ownership:ty: $($t:ty),+ $(,)?) => {
        $(impl Handle for $t { type Ownership = $ownership; })+
    };
}
handles!(Counted: ConnHandle, ServerHandle, ListenerHandle, HandshakeHandle, RequestView);
handles!(Owned: wsffi_reactor, wsffi_reactor_options, wsffi_client_options, wsffi_server_options,
    wsffi_listener_options, wsffi_error);
handles!(Lent: ResponseView, HttpResponse);

/// Hands C one counted reference.
pub fn into_counted<T: Handle<Ownership = Counted>>(handle: Arc<T>) -> *mut T {
    Arc::into_raw(handle).cast_mut()
}

/// Borrows a counted handle as an `Arc` without touching its count.
///
/// # Safety
/// `p` is NULL or came from `into_counted` and still has a live reference.
pub unsafe fn counted<T: Handle<Ownership = Counted>>(p: *const T) -> Result<ManuallyDrop<Arc<T>>, Status> {
    if p.is_null() {
        return Err(Status::ErrNullParameter);
    }
    // SAFETY: per the caller's contract; ManuallyDrop keeps the count unchanged.
    Ok(ManuallyDrop::new(unsafe { Arc::from_raw(p) }))
}

/// Takes back one reference handed out with `into_counted`; NULL gives `None`.
///
/// # Safety
/// `p` is NULL or came from `into_counted`, and the caller gives up that reference.
pub unsafe fn take_counted<T: Handle<Ownership = Counted>>(p: *const T) -> Option<Arc<T>> {
    // SAFETY: per the caller's contract.
    (!p.is_null()).then(|| unsafe { Arc::from_raw(p) })
}

/// Adds one reference to a counted handle (NULL: nothing).
///
/// # Safety
/// `p` is NULL or a counted handle with a live reference.
pub unsafe fn retain<T: Handle<Ownership = Counted>>(p: *const T) {
    if !p.is_null() {
        // SAFETY: per the caller's contract.
        unsafe { Arc::increment_strong_count(p) };
    }
}

/// Hands C the one owner of `object`.
pub fn into_owned<T: Handle<Ownership = Owned>>(object: Box<T>) -> *mut T {
    Box::into_raw(object)
}

/// Borrows an owned object mutably.
///
/// # Safety
/// `p` is NULL or a live pointer from `into_owned`, not used elsewhere meanwhile.
pub unsafe fn owned<'a, T: Handle<Ownership = Owned>>(p: *mut T) -> Result<&'a mut T, Status> {
    // SAFETY: per the caller's contract.
    unsafe { p.as_mut() }.ok_or(Status::ErrNullParameter)
}

/// Frees an owned object (NULL: nothing).
///
/// # Safety
/// `p` is NULL or came from `into_owned`, and the caller gives it up.
pub unsafe fn free_owned<T: Handle<Ownership = Owned>>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per the caller's contract.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Borrows any handle read-only; NULL gives `None`.
///
/// # Safety
/// `p` is NULL or valid for `'a`.
pub unsafe fn peek<'a, T: Handle>(p: *const T) -> Option<&'a T> {
    // SAFETY: per the caller's contract.
    unsafe { p.as_ref() }
}

/// Borrows any handle read-only; NULL is `WSFFI_STATUS_ERR_NULL_PARAMETER`.
///
/// # Safety
/// `p` is NULL or valid for `'a`.
pub unsafe fn borrowed<'a, T: Handle>(p: *const T) -> Result<&'a T, Status> {
    // SAFETY: per the caller's contract.
    unsafe { peek(p) }.ok_or(Status::ErrNullParameter)
}

/// Borrows a lent object mutably (the answer a handler fills in).
///
/// # Safety
/// `p` is NULL or valid and unaliased for `'a`.
pub unsafe fn lent_mut<'a, T: Handle<Ownership = Lent>>(p: *mut T) -> Result<&'a mut T, Status> {
    // SAFETY: per the caller's contract.
    unsafe { p.as_mut() }.ok_or(Status::ErrNullParameter)
}

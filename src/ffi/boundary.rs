//! The boundary every exported function goes through: panic capture, pointer and string
//! checks, and the `wsffi_error` detail object.

use std::ffi::{c_char, CStr, CString};

use super::status::{wsffi_status, Status};

/// Runs an exported function body; a panic returns `$default` instead of unwinding into C.
macro_rules! boundary {
    ($default:expr, $body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(value) => value,
            Err(_) => $default,
        }
    }};
}
pub(crate) use boundary;

/// Runs a body that returns `Result<(), Status>`; maps it to a plain status.
macro_rules! status_boundary {
    ($body:block) => {{
        $crate::ffi::boundary::boundary!($crate::ffi::status::Status::ErrPanic, {
            // The closure gives `?` inside the body a function to return from.
            #[allow(clippy::redundant_closure_call)]
            let r: Result<(), $crate::ffi::status::Status> = (|| $body)();
            match r {
                Ok(()) => $crate::ffi::status::Status::Ok,
                Err(s) => s,
            }
        })
    }};
}
pub(crate) use status_boundary;

/// A borrowed NUL-terminated UTF-8 string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub unsafe fn text<'a>(p: *const c_char) -> Result<&'a str, Status> {
    if p.is_null() {
        return Err(Status::ErrNullParameter);
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| Status::ErrInvalidUtf8)
}

/// Like [`text`], but NULL gives `None`.
///
/// # Safety
/// As for [`text`].
pub unsafe fn opt_text<'a>(p: *const c_char) -> Result<Option<&'a str>, Status> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { text(p) }.map(Some)
    }
}

/// A borrowed byte buffer; `(NULL, 0)` is empty.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that outlive `'a`.
pub unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], Status> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Status::ErrNullParameter);
    }
    // SAFETY: non-NULL with `len` readable bytes per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes `value` through an output pointer.
///
/// # Safety
/// `out` is NULL (checked) or writable.
pub unsafe fn write_out<T>(out: *mut T, value: T) -> Result<(), Status> {
    if out.is_null() {
        return Err(Status::ErrNullParameter);
    }
    // SAFETY: non-NULL and writable per the caller's contract.
    unsafe { out.write(value) };
    Ok(())
}

/// Error detail: a status plus a sentence. Free with `wsffi_error_free`.
pub struct wsffi_error {
    pub(crate) status: Status,
    pub(crate) message: CString,
}

/// Stores an error detail in `*out_err` when the caller asked for one.
///
/// # Safety
/// `out_err` is NULL or writable.
pub unsafe fn report(out_err: *mut *mut wsffi_error, status: Status, message: impl Into<String>) -> wsffi_status {
    if !out_err.is_null() {
        let message = super::callbacks::c_text(&message.into());
        let e = super::handles::into_owned(Box::new(wsffi_error { status, message }));
        // SAFETY: non-NULL and writable per the caller's contract.
        unsafe { out_err.write(e) };
    }
    status
}

/// Why the reactor refused a call, for the error message.
pub fn refusal(status: Status) -> &'static str {
    match status {
        Status::ErrQueueFull => "the reactor's command queue is full (see max_queued_commands)",
        _ => "the reactor is shut down",
    }
}

/// Static text pointer for a `&'static str` ending in NUL.
pub fn static_text(s: &'static str) -> *const c_char {
    debug_assert!(s.ends_with('\0'));
    s.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status() {
        let status = status_boundary!({
            if std::hint::black_box(true) {
                panic!("boom");
            }
            Ok(())
        });
        assert_eq!(status, Status::ErrPanic);
        let value: i32 = boundary!(-1, { panic!("boom") });
        assert_eq!(value, -1);
    }

    #[test]
    fn pointer_checks() {
        // SAFETY: NULL and a valid buffer are the two cases under test.
        unsafe {
            assert_eq!(text(std::ptr::null()), Err(Status::ErrNullParameter));
            assert_eq!(text(c"ok".as_ptr()), Ok("ok"));
            assert_eq!(text(c"\xff".as_ptr()), Err(Status::ErrInvalidUtf8));
            assert_eq!(bytes(std::ptr::null(), 0), Ok(&[][..]));
            assert_eq!(bytes(std::ptr::null(), 3), Err(Status::ErrNullParameter));
            let mut out = 0;
            assert_eq!(write_out(std::ptr::null_mut::<i32>(), 1), Err(Status::ErrNullParameter));
            assert_eq!(write_out(&mut out, 7), Ok(()));
            assert_eq!(out, 7);
        }
    }
}

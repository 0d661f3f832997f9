//! Accessors of the handshake request view (`wsffi_request`: method, target, headers and
//! peer of an HTTP upgrade request) and of a refused upgrade's response (`wsffi_response`).
//! Returned strings live as long as the view; NULL views give NULL (or 0 / false).

use std::ffi::{c_char, CString};
use std::ptr::null;

use super::boundary::{boundary, status_boundary, text};
use super::handles::{peek, retain, take_counted};
use super::status::{wsffi_status, Status};
use crate::reactor::server::{RequestView, ResponseView};
use crate::reactor::views::HeaderList;

fn field(req: *const RequestView, pick: fn(&RequestView) -> &CString) -> *const c_char {
    // SAFETY: NULL or a live request view.
    boundary!(null(), { unsafe { peek(req) }.map_or(null(), |r| pick(r).as_ptr()) })
}

/// The request method ("GET"); NULL for a NULL view. The string belongs to the view and
/// lives as long as it (the callback that received the view, or until `wsffi_request_free`
/// of a copy).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_method(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.method)
}

/// The request target as sent ("/chat?room=1"), like `request.url` in Node; NULL for a NULL
/// view. The string belongs to the view and lives as long as it (the callback that received
/// the view, or until `wsffi_request_free` of a copy).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_url(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.url)
}

/// The path without the query ("/chat"); NULL for a NULL view. The string belongs to the
/// view and lives as long as it (the callback that received the view, or until
/// `wsffi_request_free` of a copy).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_path(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.path)
}

/// The raw query string without '?' ("" when none); NULL for a NULL view. The string
/// belongs to the view and lives as long as it (the callback that received the view, or
/// until `wsffi_request_free` of a copy).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_query_string(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.query_string)
}

/// The HTTP version ("1.1"); NULL for a NULL view. The string belongs to the view and lives
/// as long as it (the callback that received the view, or until `wsffi_request_free` of a
/// copy).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_http_version(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.http_version)
}

/// The peer's address ("127.0.0.1:53122"); NULL for a NULL view. The string belongs to the
/// view and lives as long as it (the callback that received the view, or until
/// `wsffi_request_free` of a copy).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_remote_address(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.remote_address)
}

/// The Host header, NULL when absent or for a NULL view. The string belongs to the view and
/// lives as long as it (the callback that received the view, or until `wsffi_request_free`
/// of a copy).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_host(req: *const RequestView) -> *const c_char {
    // SAFETY: NULL or a live request view.
    boundary!(null(), { unsafe { peek(req) }.and_then(|r| r.host.as_ref()).map_or(null(), |h| h.as_ptr()) })
}

/// The decoded value of query parameter `name` (first occurrence; '+' is a space), NULL
/// when absent or when `req` or `name` is NULL. `query("a")` of "?a=1&b" is "1"; of "b" it
/// is "". The string belongs to the view and lives as long as it (the callback that
/// received the view, or until `wsffi_request_free` of a copy).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_query(req: *const RequestView, name: *const c_char) -> *const c_char {
    boundary!(null(), {
        // SAFETY: NULL or a live request view / NUL-terminated string.
        let (Some(r), Ok(name)) = (unsafe { peek(req) }, unsafe { text(name) }) else { return null() };
        r.query_param(name).map_or(null(), |v| v.as_ptr())
    })
}

fn header_of(list: Option<&HeaderList>, name: *const c_char) -> *const c_char {
    // SAFETY: NULL or a NUL-terminated string.
    let (Some(list), Ok(name)) = (list, unsafe { text(name) }) else { return null() };
    list.get(name).map_or(null(), |v| v.as_ptr())
}

fn header_at(
    list: Option<&HeaderList>,
    index: usize,
    out_name: *mut *const c_char,
    out_value: *mut *const c_char,
) -> wsffi_status {
    status_boundary!({
        if out_name.is_null() || out_value.is_null() {
            return Err(Status::ErrNullParameter);
        }
        // On failure both outputs are NULL, never left pointing at something stale.
        // SAFETY: both checked non-NULL.
        unsafe {
            out_name.write(null());
            out_value.write(null());
        }
        let list = list.ok_or(Status::ErrNullParameter)?;
        let (n, v) = list.pairs.get(index).ok_or(Status::ErrInvalidParameter)?;
        // SAFETY: both checked non-NULL.
        unsafe {
            out_name.write(n.as_ptr());
            out_value.write(v.as_ptr());
        }
        Ok(())
    })
}

/// The first value of header `name` (case-insensitive), NULL when absent or when `req` or
/// `name` is NULL. The string belongs to the view and lives as long as it (the callback
/// that received the view, or until `wsffi_request_free` of a copy).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_header(req: *const RequestView, name: *const c_char) -> *const c_char {
    // SAFETY: NULL or a live request view.
    boundary!(null(), { header_of(unsafe { peek(req) }.map(|r| &r.headers), name) })
}

/// Whether header `name` is present (case-insensitive); false when `req` or `name` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_has_header(req: *const RequestView, name: *const c_char) -> bool {
    !wsffi_request_header(req, name).is_null()
}

/// The number of headers in the raw list (0 for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_header_count(req: *const RequestView) -> usize {
    // SAFETY: NULL or a live request view.
    boundary!(0, { unsafe { peek(req) }.map_or(0, |r| r.headers.pairs.len()) })
}

/// Header `index` of the raw list, in received order and spelling: `*out_name` and
/// `*out_value` receive strings that belong to the view and live as long as it. On failure
/// both are set to NULL: WSFFI_STATUS_ERR_INVALID_PARAMETER when `index` is not below
/// `wsffi_request_header_count`, WSFFI_STATUS_ERR_NULL_PARAMETER for a NULL `req`; a NULL
/// `out_name` or `out_value` gives WSFFI_STATUS_ERR_NULL_PARAMETER and writes nothing.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_header_at(
    req: *const RequestView,
    index: usize,
    out_name: *mut *const c_char,
    out_value: *mut *const c_char,
) -> wsffi_status {
    // SAFETY: NULL or a live request view.
    header_at(unsafe { peek(req) }.map(|r| &r.headers), index, out_name, out_value)
}

/// Keeps a request view beyond the callback that received it: returns a copy the caller
/// owns (to free with `wsffi_request_free`), whose strings live until then. NULL for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_copy(req: *const RequestView) -> *const RequestView {
    boundary!(null(), {
        // SAFETY: NULL or a request view the library handed out (each lives in an Arc).
        unsafe { retain(req) };
        req
    })
}

/// Frees a copy made by `wsffi_request_copy`. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_free(req: *const RequestView) {
    // SAFETY: the caller gives up the reference from wsffi_request_copy.
    boundary!((), { drop(unsafe { take_counted(req) }) })
}

/// The HTTP status of a refused upgrade (0 for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_status(resp: *const ResponseView) -> u16 {
    // SAFETY: NULL or a live response view.
    boundary!(0, { unsafe { peek(resp) }.map_or(0, |r| r.status) })
}

/// The reason phrase of a refused upgrade; NULL for a NULL view. The string belongs to the
/// view, which is borrowed for the `on_unexpected_response` call.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_reason(resp: *const ResponseView) -> *const c_char {
    // SAFETY: NULL or a live response view.
    boundary!(null(), { unsafe { peek(resp) }.map_or(null(), |r| r.reason.as_ptr()) })
}

/// The first value of response header `name` (case-insensitive), NULL when absent or when
/// `resp` or `name` is NULL. Valid during the `on_unexpected_response` call.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_header(resp: *const ResponseView, name: *const c_char) -> *const c_char {
    // SAFETY: NULL or a live response view.
    boundary!(null(), { header_of(unsafe { peek(resp) }.map(|r| &r.headers), name) })
}

/// The number of response headers (0 for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_header_count(resp: *const ResponseView) -> usize {
    // SAFETY: NULL or a live response view.
    boundary!(0, { unsafe { peek(resp) }.map_or(0, |r| r.headers.pairs.len()) })
}

/// Response header `index`, in received order: `*out_name` and `*out_value` receive strings
/// valid during the `on_unexpected_response` call. On failure both are set to NULL:
/// WSFFI_STATUS_ERR_INVALID_PARAMETER when `index` is not below
/// `wsffi_response_header_count`, WSFFI_STATUS_ERR_NULL_PARAMETER for a NULL `resp`; a NULL
/// `out_name` or `out_value` gives WSFFI_STATUS_ERR_NULL_PARAMETER and writes nothing.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_header_at(
    resp: *const ResponseView,
    index: usize,
    out_name: *mut *const c_char,
    out_value: *mut *const c_char,
) -> wsffi_status {
    // SAFETY: NULL or a live response view.
    header_at(unsafe { peek(resp) }.map(|r| &r.headers), index, out_name, out_value)
}

/// The body of a refused upgrade (up to 1 MiB kept), valid during the
/// `on_unexpected_response` call; `*out_len` (when `out_len` is not NULL) receives its
/// length. NULL with length 0 when the body is empty or `resp` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_body(resp: *const ResponseView, out_len: *mut usize) -> *const u8 {
    boundary!(null(), {
        // SAFETY: NULL or a live response view.
        let body = unsafe { peek(resp) }.map_or(&[][..], |r| &r.body[..]);
        if !out_len.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { out_len.write(body.len()) };
        }
        // An empty slice's pointer dangles: give C a NULL it can test instead.
        if body.is_empty() {
            null()
        } else {
            body.as_ptr()
        }
    })
}

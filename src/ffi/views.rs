//! Accessors of the handshake request view (`wsffi_request`, the JSH request object) and
//! of a refused upgrade's response (`wsffi_response`). Returned strings live as long as the
//! view; NULL views give NULL (or 0 / false).

use std::ffi::{c_char, CString};
use std::ptr::null;
use std::sync::Arc;

use super::boundary::{boundary, status_boundary, take_arc, text};
use super::status::{wsffi_status, Status};
use crate::reactor::server::{RequestView, ResponseView};
use crate::reactor::views::HeaderList;

fn field(req: *const RequestView, pick: fn(&RequestView) -> &CString) -> *const c_char {
    // SAFETY: NULL or a live request view.
    boundary!(null(), { unsafe { req.as_ref() }.map_or(null(), |r| pick(r).as_ptr()) })
}

/// Method ("GET").
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_method(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.method)
}

/// Request target as sent ("/chat?room=1"): the seeds' `url` / `requestUri`.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_url(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.url)
}

/// Path without the query ("/chat").
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_path(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.path)
}

/// Raw query string without '?' ("" when none).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_query_string(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.query_string)
}

/// HTTP version ("1.1").
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_http_version(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.http_version)
}

/// Peer address ("127.0.0.1:53122").
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_remote_address(req: *const RequestView) -> *const c_char {
    field(req, |r| &r.remote_address)
}

/// Host header, NULL when absent.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_host(req: *const RequestView) -> *const c_char {
    // SAFETY: NULL or a live request view.
    boundary!(null(), { unsafe { req.as_ref() }.and_then(|r| r.host.as_ref()).map_or(null(), |h| h.as_ptr()) })
}

/// Decoded value of query parameter `name` (first occurrence; '+' is a space), NULL when
/// absent. `query("a")` of "?a=1&b" is "1"; of "b" it is "".
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_query(req: *const RequestView, name: *const c_char) -> *const c_char {
    boundary!(null(), {
        // SAFETY: NULL or a live request view / NUL-terminated string.
        let (Some(r), Ok(name)) = (unsafe { req.as_ref() }, unsafe { text(name) }) else { return null() };
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
        let list = list.ok_or(Status::ErrNullParameter)?;
        if out_name.is_null() || out_value.is_null() {
            return Err(Status::ErrNullParameter);
        }
        let (n, v) = list.pairs.get(index).ok_or(Status::ErrInvalidParameter)?;
        // SAFETY: both checked non-NULL.
        unsafe {
            out_name.write(n.as_ptr());
            out_value.write(v.as_ptr());
        }
        Ok(())
    })
}

/// First value of header `name` (case-insensitive), NULL when absent: `getHeader(name)`.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_header(req: *const RequestView, name: *const c_char) -> *const c_char {
    // SAFETY: NULL or a live request view.
    boundary!(null(), { header_of(unsafe { req.as_ref() }.map(|r| &r.headers), name) })
}

/// Is header `name` present? (`hasHeader(name)`)
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_has_header(req: *const RequestView, name: *const c_char) -> bool {
    !wsffi_request_header(req, name).is_null()
}

/// Number of headers in the raw list.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_header_count(req: *const RequestView) -> usize {
    // SAFETY: NULL or a live request view.
    boundary!(0, { unsafe { req.as_ref() }.map_or(0, |r| r.headers.pairs.len()) })
}

/// Header `index` of the raw list, in received order and spelling (`rawHeaders`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_header_at(
    req: *const RequestView,
    index: usize,
    out_name: *mut *const c_char,
    out_value: *mut *const c_char,
) -> wsffi_status {
    // SAFETY: NULL or a live request view.
    header_at(unsafe { req.as_ref() }.map(|r| &r.headers), index, out_name, out_value)
}

/// Keeps a request view beyond the callback that received it; free with
/// `wsffi_request_free`. Returns NULL for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_copy(req: *const RequestView) -> *const RequestView {
    boundary!(null(), {
        if !req.is_null() {
            // SAFETY: every request view handed out lives in an Arc.
            unsafe { Arc::increment_strong_count(req) };
        }
        req
    })
}

/// Frees a copy made by `wsffi_request_copy`. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_free(req: *const RequestView) {
    // SAFETY: the caller gives up the reference from wsffi_request_copy.
    boundary!((), { drop(unsafe { take_arc(req) }) })
}

/// HTTP status of a refused upgrade (0 for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_status(resp: *const ResponseView) -> u16 {
    // SAFETY: NULL or a live response view.
    boundary!(0, { unsafe { resp.as_ref() }.map_or(0, |r| r.status) })
}

/// Reason phrase of a refused upgrade.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_reason(resp: *const ResponseView) -> *const c_char {
    // SAFETY: NULL or a live response view.
    boundary!(null(), { unsafe { resp.as_ref() }.map_or(null(), |r| r.reason.as_ptr()) })
}

/// First value of response header `name`, NULL when absent.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_header(resp: *const ResponseView, name: *const c_char) -> *const c_char {
    // SAFETY: NULL or a live response view.
    boundary!(null(), { header_of(unsafe { resp.as_ref() }.map(|r| &r.headers), name) })
}

/// Number of response headers.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_header_count(resp: *const ResponseView) -> usize {
    // SAFETY: NULL or a live response view.
    boundary!(0, { unsafe { resp.as_ref() }.map_or(0, |r| r.headers.pairs.len()) })
}

/// Response header `index`, in received order.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_header_at(
    resp: *const ResponseView,
    index: usize,
    out_name: *mut *const c_char,
    out_value: *mut *const c_char,
) -> wsffi_status {
    // SAFETY: NULL or a live response view.
    header_at(unsafe { resp.as_ref() }.map(|r| &r.headers), index, out_name, out_value)
}

/// Body of a refused upgrade (up to 1 MiB kept); `*out_len` receives its length.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_response_body(resp: *const ResponseView, out_len: *mut usize) -> *const u8 {
    boundary!(null(), {
        // SAFETY: NULL or a live response view.
        let body = unsafe { resp.as_ref() }.map_or(&[][..], |r| &r.body[..]);
        if !out_len.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { out_len.write(body.len()) };
        }
        body.as_ptr()
    })
}

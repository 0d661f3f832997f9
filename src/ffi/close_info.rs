//! `struct wsffi_close_info`: what the close callback receives, built from the reactor's
//! [`CloseReport`] for the duration of one call.

use std::ffi::c_char;
use std::ptr::null;

use crate::reactor::conn::{CloseFrame, CloseOrigin, CloseReport};

/// Who started the close handshake (the `origin` of `struct wsffi_close_info`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsffi_close_origin {
    /// No close frame went either way: `wsffi_terminate`, a reset or EOF without a close
    /// frame, a failed connect or opening handshake, a ping or connect timeout, reactor
    /// shutdown of a connection that was not open. `code` is 1006 (WSFFI_CLOSE_ABNORMAL).
    None = 0,
    /// The peer's close frame arrived before we sent one; `code` and `reason` are the
    /// peer's.
    Peer = 1,
    /// We sent the first close frame: `wsffi_close`, a server close or reactor shutdown
    /// (1001), the idle timeout (1001), or the library failing the connection because the
    /// peer broke the protocol (1002), sent invalid UTF-8 (1007), exceeded max_payload or
    /// max_fragments (1009), or an internal error (1011). `code` and `reason` are ours.
    Local = 2,
}

/// How a connection ended, passed to `wsffi_close_cb`. Borrowed: the struct and every
/// pointer in it are valid only until the callback returns (copy what you keep).
///
/// The library fills it and sets `size` to the `sizeof` it was built with. Fields are only
/// ever appended: a program built against a newer header reads a field only when
/// `offsetof(struct wsffi_close_info, field) + sizeof field <= info->size`.
///
/// Reasons are UTF-8, `*_len` bytes long (no NUL counted), and followed by a NUL byte, so a
/// reason without embedded NULs can also be read as a C string. `reason` is never NULL
/// (an empty reason is ""); `peer_reason` and `local_reason` are NULL exactly when that
/// side sent no close frame.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wsffi_close_info {
    /// `sizeof(struct wsffi_close_info)` as the library declares it.
    pub size: usize,
    /// The code that decided the close: that of the first close frame (the one `origin`
    /// names; 1005 WSFFI_CLOSE_NO_STATUS when it carried no code), or 1006
    /// (WSFFI_CLOSE_ABNORMAL) when `origin` is WSFFI_CLOSE_ORIGIN_NONE. 1006 never goes on
    /// the wire.
    pub code: u16,
    /// The reason of that frame; "" for 1006 or a frame without one. Never NULL.
    pub reason: *const c_char,
    /// Bytes in `reason`.
    pub reason_len: usize,
    /// The close handshake completed before the socket closed: the peer's close frame
    /// arrived and all of ours was written. A timeout, reset or EOF before that, a
    /// terminated connection and one failed without the peer's answer are not clean; a
    /// reset after both frames went over the wire is (and reports no error).
    pub was_clean: bool,
    /// Who sent the first close frame.
    pub origin: wsffi_close_origin,
    /// The code of the peer's close frame (1005 when it carried none); 0 when the peer
    /// sent no close frame.
    pub peer_code: u16,
    /// The reason of the peer's close frame; NULL when the peer sent no close frame.
    pub peer_reason: *const c_char,
    /// Bytes in `peer_reason`; 0 when NULL.
    pub peer_reason_len: usize,
    /// The code of the close frame we sent (our own close, or the echo of the peer's
    /// code; 1005 for an empty frame); 0 when we sent none. Sent means queued: when it
    /// could not be written before the connection ended, `was_clean` is false.
    pub local_code: u16,
    /// The reason of our close frame ("" for an echo); NULL when we sent none.
    pub local_reason: *const c_char,
    /// Bytes in `local_reason`; 0 when NULL.
    pub local_reason_len: usize,
}

/// A reason followed by a NUL byte, for C.
fn with_nul(reason: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(reason.len() + 1);
    v.extend_from_slice(reason.as_bytes());
    v.push(0);
    v
}

/// The reasons of one report with their NUL bytes; the info built from it points into it.
pub struct CloseTexts {
    reason: Vec<u8>,
    peer: Option<Vec<u8>>,
    local: Option<Vec<u8>>,
}

impl CloseTexts {
    /// Copies of the reasons in `report`.
    pub fn new(report: &CloseReport) -> Self {
        let text = |f: &Option<CloseFrame>| f.as_ref().map(|f| with_nul(&f.reason));
        CloseTexts { reason: with_nul(&report.reason), peer: text(&report.peer), local: text(&report.local) }
    }

    /// The C view of `report`, valid while `self` lives (`self` must come from `report`).
    pub fn info(&self, report: &CloseReport) -> wsffi_close_info {
        let frame = |f: &Option<CloseFrame>, text: &Option<Vec<u8>>| match (f, text) {
            (Some(f), Some(t)) => (f.code, t.as_ptr().cast::<c_char>(), f.reason.len()),
            _ => (0, null(), 0),
        };
        let (peer_code, peer_reason, peer_reason_len) = frame(&report.peer, &self.peer);
        let (local_code, local_reason, local_reason_len) = frame(&report.local, &self.local);
        wsffi_close_info {
            size: std::mem::size_of::<wsffi_close_info>(),
            code: report.code,
            reason: self.reason.as_ptr().cast(),
            reason_len: report.reason.len(),
            was_clean: report.clean,
            origin: match report.origin {
                CloseOrigin::None => wsffi_close_origin::None,
                CloseOrigin::Peer => wsffi_close_origin::Peer,
                CloseOrigin::Local => wsffi_close_origin::Local,
            },
            peer_code,
            peer_reason,
            peer_reason_len,
            local_code,
            local_reason,
            local_reason_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes at `ptr`: `len` of them and the NUL after.
    fn text(ptr: *const c_char, len: usize) -> Vec<u8> {
        assert!(!ptr.is_null());
        // SAFETY: the info points into live `CloseTexts` buffers of `len + 1` bytes.
        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len + 1) }.to_vec()
    }

    #[test]
    fn both_frames_are_shown_with_their_reasons() {
        let report = CloseReport {
            code: 4001,
            reason: "bye".into(),
            clean: true,
            origin: CloseOrigin::Local,
            peer: Some(CloseFrame { code: 4001, reason: String::new() }),
            local: Some(CloseFrame { code: 4001, reason: "bye".into() }),
        };
        let texts = CloseTexts::new(&report);
        let info = texts.info(&report);
        assert_eq!(info.size, std::mem::size_of::<wsffi_close_info>());
        assert_eq!((info.code, info.was_clean, info.origin), (4001, true, wsffi_close_origin::Local));
        assert_eq!(text(info.reason, info.reason_len), b"bye\0");
        assert_eq!((info.peer_code, info.peer_reason_len), (4001, 0));
        assert_eq!(text(info.peer_reason, 0), b"\0");
        assert_eq!((info.local_code, info.local_reason_len), (4001, 3));
        assert_eq!(text(info.local_reason, 3), b"bye\0");
    }

    #[test]
    fn a_side_without_a_close_frame_is_null_and_zero() {
        let report = CloseReport::abnormal();
        let texts = CloseTexts::new(&report);
        let info = texts.info(&report);
        assert_eq!((info.code, info.was_clean, info.origin), (1006, false, wsffi_close_origin::None));
        assert_eq!(text(info.reason, 0), b"\0");
        assert!(info.peer_reason.is_null() && info.local_reason.is_null());
        assert_eq!((info.peer_code, info.peer_reason_len, info.local_code, info.local_reason_len), (0, 0, 0, 0));
    }
}

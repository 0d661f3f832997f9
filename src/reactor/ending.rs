//! How a connection ends: the close handshake as far as it went ([`CloseHandshake`]) and
//! what takes the socket down ([`Teardown`]). Each is one enum, so the loop cannot hold a
//! contradictory set of flags; [`CloseHandshake::report`] turns the first into what
//! `on_close` says.

use crate::core::protocol::close::codes;

/// One close frame: its code (1005 when the frame carried none) and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// Close code; 1005 for an empty close frame.
    pub code: u16,
    /// Close reason (UTF-8, at most 123 bytes).
    pub reason: String,
}

impl CloseFrame {
    /// The frame of an optional `(code, reason)` payload as the reader or writer saw it.
    pub fn new(code: Option<u16>, reason: &str) -> Self {
        CloseFrame { code: code.unwrap_or(codes::NO_STATUS), reason: reason.to_string() }
    }
}

/// Which side started the close handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseOrigin {
    /// No close frame went either way (terminate, a reset, a failed connect): code 1006.
    None,
    /// The peer's close frame came before we sent one.
    Peer,
    /// We sent a close frame first (a close call, shutdown, a protocol failure, a timeout).
    Local,
}

/// How a connection ended, as its close callback reports it. Owned data, so copies can be
/// kept or queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReport {
    /// The code of the close frame that started the close handshake (`origin` tells whose),
    /// 1006 when there was none.
    pub code: u16,
    /// The reason of that frame; empty for 1006.
    pub reason: String,
    /// Did the close handshake complete (the peer's close frame arrived and all of ours was
    /// written) before the socket closed?
    pub clean: bool,
    /// Who started the close handshake.
    pub origin: CloseOrigin,
    /// The peer's close frame, if one arrived.
    pub peer: Option<CloseFrame>,
    /// Our close frame, if we queued one (`clean` tells whether it was written and answered).
    pub local: Option<CloseFrame>,
}

impl CloseReport {
    /// A connection that ended without any close frame.
    pub fn abnormal() -> Self {
        CloseReport {
            code: codes::ABNORMAL,
            reason: String::new(),
            clean: false,
            origin: CloseOrigin::None,
            peer: None,
            local: None,
        }
    }
}

/// Our close frame, sent before the peer's arrived.
#[derive(Debug)]
pub struct SentClose {
    ours: CloseFrame,
    written: bool,
}

/// Both close frames exist.
#[derive(Debug)]
pub struct ExchangedClose {
    /// Peer or Local, never None.
    first: CloseOrigin,
    ours: CloseFrame,
    theirs: CloseFrame,
    written: bool,
}

/// The close handshake as far as it went. Our frame counts once it is queued; `written`
/// records when the socket has taken all of it. (Boxed: idle connections stay small.)
#[derive(Debug, Default)]
pub enum CloseHandshake {
    /// No close frame either way.
    #[default]
    Idle,
    /// We queued our close frame and wait for the peer's.
    Sent(Box<SentClose>),
    /// The peer's close frame arrived and ours is queued (as the first or as the echo).
    Exchanged(Box<ExchangedClose>),
}

impl CloseHandshake {
    /// We queued a close frame; only the first one counts (the writer refuses later ones).
    pub fn sent(&mut self, ours: CloseFrame) {
        if matches!(self, CloseHandshake::Idle) {
            *self = CloseHandshake::Sent(Box::new(SentClose { ours, written: false }));
        }
    }

    /// The peer's close frame arrived. `echo` is the reply we queued for it; None when ours
    /// went out before, which makes this frame the answer to ours. (The writer refuses a
    /// reply only when a close frame of ours was sent, which is recorded: Idle without an
    /// echo does not happen, and changes nothing.)
    pub fn received(&mut self, theirs: CloseFrame, echo: Option<CloseFrame>) {
        *self = match (std::mem::take(self), echo) {
            (CloseHandshake::Idle, Some(ours)) => CloseHandshake::Exchanged(Box::new(ExchangedClose {
                first: CloseOrigin::Peer,
                ours,
                theirs,
                written: false,
            })),
            (CloseHandshake::Sent(s), _) => CloseHandshake::Exchanged(Box::new(ExchangedClose {
                first: CloseOrigin::Local,
                ours: s.ours,
                theirs,
                written: s.written,
            })),
            (state, _) => state,
        };
    }

    /// Every byte of our close frame reached the socket (nothing can follow it in the output).
    pub fn written(&mut self) {
        match self {
            CloseHandshake::Idle => {}
            CloseHandshake::Sent(s) => s.written = true,
            CloseHandshake::Exchanged(x) => x.written = true,
        }
    }

    /// Is our close frame queued but not yet all written?
    pub fn is_unwritten(&self) -> bool {
        match self {
            CloseHandshake::Idle => false,
            CloseHandshake::Sent(s) => !s.written,
            CloseHandshake::Exchanged(x) => !x.written,
        }
    }

    /// Both close frames went over the wire: whatever happens to the socket now, the
    /// connection closed cleanly.
    pub fn is_complete(&self) -> bool {
        matches!(self, CloseHandshake::Exchanged(x) if x.written)
    }

    /// What `on_close` says about a connection that ends in this state.
    pub fn report(&self) -> CloseReport {
        match self {
            CloseHandshake::Idle => CloseReport::abnormal(),
            CloseHandshake::Sent(s) => CloseReport {
                code: s.ours.code,
                reason: s.ours.reason.clone(),
                clean: false,
                origin: CloseOrigin::Local,
                peer: None,
                local: Some(s.ours.clone()),
            },
            CloseHandshake::Exchanged(x) => {
                let decided = if x.first == CloseOrigin::Peer { &x.theirs } else { &x.ours };
                CloseReport {
                    code: decided.code,
                    reason: decided.reason.clone(),
                    clean: x.written,
                    origin: x.first,
                    peer: Some(x.theirs.clone()),
                    local: Some(x.ours.clone()),
                }
            }
        }
    }
}

/// Most input read and thrown away while draining (see [`Teardown::Draining`]).
pub(crate) const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// What takes the socket down, in rising order of force: a later request replaces an
/// earlier one only when it is stronger ([`Teardown::escalate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Teardown {
    /// The socket stays.
    Running,
    /// Close once the output is written (server after the close handshake, a failed
    /// connection), or at the close timeout if the peer does not read it.
    AfterFlush,
    /// The output is written and our side half-closed; input is read and thrown away
    /// until the peer's EOF, [`DRAIN_LIMIT`] bytes or the close timeout, so data the peer
    /// still sends does not make the kernel answer our close with a reset that could
    /// destroy the close frame before the peer reads it.
    Draining {
        /// Bytes thrown away so far.
        discarded: usize,
    },
    /// The peer closed its side of TCP.
    PeerEof,
    /// Drop the socket now (terminate, a socket error, a timeout).
    Now,
}

impl Teardown {
    fn force(self) -> u8 {
        match self {
            Teardown::Running => 0,
            Teardown::AfterFlush => 1,
            Teardown::Draining { .. } => 2,
            Teardown::PeerEof => 3,
            Teardown::Now => 4,
        }
    }

    /// `self` or `next`, whichever is stronger (the current one on a tie).
    pub fn escalate(self, next: Teardown) -> Teardown {
        if next.force() > self.force() {
            next
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(code: u16, reason: &str) -> CloseFrame {
        CloseFrame { code, reason: reason.into() }
    }

    #[test]
    fn no_close_frame_is_abnormal() {
        let r = CloseHandshake::Idle.report();
        assert_eq!((r.code, r.clean, r.origin), (codes::ABNORMAL, false, CloseOrigin::None));
        assert!(r.peer.is_none() && r.local.is_none() && r.reason.is_empty());
    }

    #[test]
    fn our_close_unanswered_is_local_and_unclean() {
        let mut h = CloseHandshake::Idle;
        h.sent(frame(1009, "message exceeds max_payload"));
        h.written();
        let r = h.report();
        assert_eq!((r.code, r.reason.as_str(), r.clean), (1009, "message exceeds max_payload", false));
        assert_eq!(r.origin, CloseOrigin::Local);
        assert_eq!(r.local, Some(frame(1009, "message exceeds max_payload")));
        assert_eq!(r.peer, None);
        assert!(!h.is_complete());
    }

    #[test]
    fn our_close_answered_reports_both_frames() {
        let mut h = CloseHandshake::Idle;
        h.sent(frame(4001, "bye"));
        h.sent(frame(1000, "ignored: only the first close frame counts"));
        h.written();
        h.received(frame(4001, ""), None);
        let r = h.report();
        assert_eq!((r.code, r.reason.as_str(), r.clean, r.origin), (4001, "bye", true, CloseOrigin::Local));
        assert_eq!(r.peer, Some(frame(4001, "")));
        assert!(h.is_complete());
    }

    #[test]
    fn peer_close_is_clean_once_the_echo_is_written() {
        let mut h = CloseHandshake::Idle;
        h.received(frame(3000, "server says bye"), Some(frame(3000, "")));
        assert!(h.is_unwritten() && !h.is_complete());
        let r = h.report();
        assert_eq!((r.code, r.reason.as_str(), r.clean, r.origin), (3000, "server says bye", false, CloseOrigin::Peer));
        h.written();
        let r = h.report();
        assert!(r.clean);
        assert_eq!(r.local, Some(frame(3000, "")));
        // A second close frame changes nothing.
        h.received(frame(1000, "again"), Some(frame(1000, "")));
        assert_eq!(h.report(), r);
    }

    #[test]
    fn teardown_only_grows_stronger() {
        let t = Teardown::Running.escalate(Teardown::AfterFlush);
        assert_eq!(t, Teardown::AfterFlush);
        let t = t.escalate(Teardown::Draining { discarded: 0 });
        assert_eq!(t.escalate(Teardown::AfterFlush), t);
        assert_eq!(t.escalate(Teardown::Now), Teardown::Now);
        assert_eq!(Teardown::Now.escalate(Teardown::PeerEof), Teardown::Now);
        assert_eq!(Teardown::PeerEof.escalate(Teardown::AfterFlush), Teardown::PeerEof);
    }
}

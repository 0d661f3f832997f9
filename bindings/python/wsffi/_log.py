"""The library's log, forwarded to Python's ``logging`` (logger ``"wsffi"`` by default).

Records about connections arrive on the reactor's thread between events; ``logging`` is
thread-safe, so handlers need nothing special. Off until ``enable_logging`` is called, and
free while off: the library formats nothing below the chosen level.
"""

from __future__ import annotations

import logging
import threading

from . import _lib as L

__all__ = ["enable_logging", "disable_logging"]

_TO_PYTHON = {L.LOG_ERROR: logging.ERROR, L.LOG_WARN: logging.WARNING, L.LOG_INFO: logging.INFO, L.LOG_DEBUG: logging.DEBUG}
_lock = threading.Lock()
_logger: logging.Logger | None = None


def _library_level(level: int) -> int:
    """The most detailed library level that `level` (a logging level) lets through."""
    if level <= logging.DEBUG:
        return L.LOG_DEBUG
    if level <= logging.INFO:
        return L.LOG_INFO
    if level <= logging.WARNING:
        return L.LOG_WARN
    if level <= logging.CRITICAL:
        return L.LOG_ERROR
    return L.LOG_OFF


@L.LOG_CB
def _t_log(level, message, user):
    logger = _logger
    if logger is None:
        return
    try:
        logger.log(_TO_PYTHON.get(level, logging.ERROR), "%s", message.decode("utf-8", "replace"))
    except Exception:  # a failing handler must not unwind into the library
        pass


def enable_logging(level: int = logging.WARNING, logger: logging.Logger | str | None = None) -> None:
    """Sends the library's records at `level` (a ``logging`` level) and above to `logger`
    (a Logger or its name; ``logging.getLogger("wsffi")`` by default). Calling it again
    replaces the level and the logger."""
    global _logger
    if isinstance(logger, str) or logger is None:
        logger = logging.getLogger(logger or "wsffi")
    with _lock:
        _logger = logger
        status = L.wsffi_set_log_callback(_library_level(level), _t_log, None, L.DESTROY_CB())
    if status != L.STATUS_OK:
        from ._core import check

        check(status)


def disable_logging() -> None:
    """Turns the library's log off (the default)."""
    global _logger
    with _lock:
        L.wsffi_set_log_callback(L.LOG_OFF, L.LOG_CB(), None, L.DESTROY_CB())
        _logger = None

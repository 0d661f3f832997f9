"""wsffi: Python bindings (ctypes) for the wsffi WebSocket library.

Three APIs over the same C library:

- ``wsffi.WebSocket`` / ``wsffi.WebSocketServer``: Node/JSH ``ws``-style event emitters, whose
  events run on an ``EventLoop`` thread (see ``wsffi._emitter``).
- ``wsffi.asyncio``: ``connect`` / ``serve`` shaped like the ``websockets`` package, driven by
  the asyncio loop (the reactor's descriptor in ``loop.add_reader``).
- ``wsffi.sync``: blocking ``connect(url)`` with ``send``, ``recv(timeout=)`` and ``close``.
"""

from . import _lib
from ._core import (
    BackpressureError,
    CloseDetails,
    InvalidStateError,
    ReconnectingError,
    DroppedError,
    Request,
    Response,
    ShutDownError,
    WebSocketError,
)
from ._emitter import EventEmitter, EventLoop, MessageEvent, WebSocket, WebSocketServer, default_loop
from ._core import Timer
from ._lib import BINARY, CLOSED, CLOSING, CONNECTING, OPEN, TEXT
from ._log import disable_logging, enable_logging

__version__ = "0.1.0"
library_path = _lib.library_path


def library_version() -> str:
    """The version of the loaded libwsffi."""
    return _lib.wsffi_version().decode()


def run(timeout: float | None = None) -> None:
    """Runs the default loop on this thread until nothing is left to run (see EventLoop.run)."""
    default_loop().run(timeout)


def stop() -> None:
    """Stops the default loop's run()."""
    default_loop().stop()


def call_soon(fn, *args) -> None:
    """Runs fn(*args) on the default loop's thread."""
    default_loop().call_soon(fn, *args)


def call_later(delay: float, fn, *args) -> Timer:
    """Runs fn(*args) once after `delay` seconds on the default loop's thread (setTimeout)."""
    return default_loop().call_later(delay, fn, *args)


def call_every(interval: float, fn, *args) -> Timer:
    """Runs fn(*args) every `interval` seconds on the default loop's thread (setInterval)
    until the returned timer's cancel()."""
    return default_loop().call_every(interval, fn, *args)


def shutdown() -> None:
    """Closes every connection and server of the default loop and frees its reactor (this also
    runs at interpreter exit)."""
    default_loop().close()


__all__ = [
    "WebSocket", "WebSocketServer", "EventEmitter", "EventLoop", "MessageEvent", "Request", "Response",
    "CloseDetails", "WebSocketError", "InvalidStateError", "BackpressureError", "ShutDownError", "ReconnectingError", "DroppedError",
    "CONNECTING", "OPEN", "CLOSING", "CLOSED", "TEXT", "BINARY", "default_loop", "run", "stop",
    "call_soon", "call_later", "call_every", "Timer", "enable_logging", "disable_logging", "shutdown",
    "library_path", "library_version",
]  # fmt: skip

"""TLS (certificates, SNI, ALPN, client certificates, replacement), proxies, redirects, plain
HTTP on the server's port, reactor timers and the log bridge, against our own server and
small real peers written here (a CONNECT proxy, a redirecting HTTP server)."""

from __future__ import annotations

import base64
import logging
import os
import select
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import wsffi
import wsffi.asyncio as wsa
from conftest import WAIT, Events

REPO = Path(__file__).resolve().parents[3]
CERTS_TOOL = Path(os.environ.get("WSFFI_TEST_CERTS_TOOL", REPO / "build" / "tls-test-certs"))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    assert CERTS_TOOL.exists(), f"{CERTS_TOOL} missing: `make test-python` builds it"
    d = tmp_path_factory.mktemp("certs")
    subprocess.run([str(CERTS_TOOL), str(d)], check=True, timeout=60)
    return d


def echo_server(**options):
    wss = wsffi.WebSocketServer(**options)
    events = Events()

    def on_connection(ws, request):
        events.add("connection", ws, request)
        ws.on("message", lambda e: ws.send(e.data))

    wss.on("connection", on_connection)
    return wss, events


def open_client(url, **options):
    """A client WebSocket and its events, waited until open (or failure)."""
    events = Events()
    with wsffi.default_loop().lock:
        ws = wsffi.WebSocket(url, **options)
        for name in ("open", "message", "close", "error", "unexpected-response"):
            ws.on(name, events.recorder(name))
    return ws, events


def echo_once(ws, events, text="ping"):
    ws.send(text)
    assert events.wait_name("message")[1].data == text


# ---- TLS ------------------------------------------------------------------------------------


def test_tls_echo_reports_alpn_and_the_peer_subject(certs):
    wss, server_events = echo_server(tls_cert=(certs / "server.pem", certs / "server.key"))
    try:
        ws, events = open_client(f"wss://localhost:{wss.port}/", ca_file=certs / "ca.pem")
        events.wait_name("open")
        echo_once(ws, events, "héllo")
        assert ws.tls_alpn == "http/1.1"
        assert ws.tls_peer_subject == "CN=localhost"
        _, server_ws, request = server_events.wait_name("connection")
        assert request.tls_server_name == "localhost"
        assert request.tls_alpn == "http/1.1"
        assert server_ws.tls_peer_subject == ""  # no client certificate
        ws.close()
        events.wait_name("close")
    finally:
        wss.close()


def test_tls_refuses_a_server_the_ca_does_not_vouch_for(certs):
    wss, _ = echo_server(tls_cert=(certs / "server.pem", certs / "server.key"))
    try:
        ws, events = open_client(f"wss://localhost:{wss.port}/", ca_file=certs / "other-ca.pem")
        _, err = events.wait_name("error")
        assert isinstance(err, wsffi.WebSocketError)
        assert "certificate" in str(err).lower(), str(err)
        assert events.wait_name("close")[1] == 1006
    finally:
        wss.close()


def test_sni_chooses_the_certificate_by_name_and_pem_bytes_work(certs):
    sni = {"wsffi.test": ((certs / "sni.pem").read_bytes(), (certs / "sni.key").read_bytes())}
    wss, server_events = echo_server(tls_cert=(certs / "server.pem", certs / "server.key"), tls_sni=sni)
    try:
        ws, events = open_client(f"wss://127.0.0.1:{wss.port}/", ca_file=certs / "ca.pem", server_name="wsffi.test")
        events.wait_name("open")
        assert ws.tls_peer_subject == "CN=wsffi.test"
        assert server_events.wait_name("connection")[2].tls_server_name == "wsffi.test"
        ws.close()
        events.wait_name("close")
        other, other_events = open_client(f"wss://localhost:{wss.port}/", ca_file=certs / "ca.pem")
        other_events.wait_name("open")
        assert other.tls_peer_subject == "CN=localhost"
        other.close()
        other_events.wait_name("close")
    finally:
        wss.close()


def test_alpn_agreed_on_both_sides_and_a_mismatch_fails(certs):
    wss, server_events = echo_server(tls_cert=(certs / "server.pem", certs / "server.key"), alpn=["chat.v2", "http/1.1"])
    try:
        ws, events = open_client(f"wss://localhost:{wss.port}/", ca_file=certs / "ca.pem", alpn=["chat.v2"])
        events.wait_name("open")
        assert ws.tls_alpn == "chat.v2"
        assert server_events.wait_name("connection")[2].tls_alpn == "chat.v2"
        ws.close()
        events.wait_name("close")
        bad, bad_events = open_client(f"wss://localhost:{wss.port}/", ca_file=certs / "ca.pem", alpn=["other"])
        bad_events.wait_name("error")
        assert bad.ready_state == wsffi.CLOSED or bad_events.wait_name("close")
    finally:
        wss.close()
    with pytest.raises(wsffi.WebSocketError):
        wsffi.WebSocket("wss://localhost:1/", alpn=[""])


def test_client_certificate_required_by_the_server(certs):
    wss, server_events = echo_server(
        tls_cert=(certs / "server.pem", certs / "server.key"), tls_client_ca=(certs / "client-ca.pem", True)
    )
    try:
        url = f"wss://localhost:{wss.port}/"
        ws, events = open_client(url, ca_file=certs / "ca.pem", client_cert=(certs / "client.pem", certs / "client.key"))
        events.wait_name("open")
        _, server_ws, request = server_events.wait_name("connection")
        assert request.tls_subject == "CN=client,O=Example"
        assert server_ws.tls_peer_subject == "CN=client,O=Example"
        echo_once(ws, events)
        ws.close()
        events.wait_name("close")
        anon, anon_events = open_client(url, ca_file=certs / "ca.pem")
        anon_events.wait_name("close")
        assert anon.ready_state == wsffi.CLOSED
        assert "open" not in anon_events.names()
    finally:
        wss.close()


def test_replaced_certificates_serve_new_handshakes_and_open_connections_stay(certs):
    wss, _ = echo_server(tls_cert=(certs / "server.pem", certs / "server.key"))
    try:
        url = f"wss://localhost:{wss.port}/"
        before, before_events = open_client(url, ca_file=certs / "ca.pem")
        before_events.wait_name("open")
        with pytest.raises(wsffi.WebSocketError):
            wss.set_certificates(tls_cert=(b"not a certificate", b"nor a key"))
        wss.set_certificates(tls_cert=(certs / "other-server.pem", certs / "other-server.key"))
        after, after_events = open_client(url, ca_file=certs / "other-ca.pem")
        after_events.wait_name("open")
        echo_once(after, after_events, "after")
        echo_once(before, before_events, "before")
        stale, stale_events = open_client(url, ca_file=certs / "ca.pem")
        stale_events.wait_name("error")
        for ws, ev in ((before, before_events), (after, after_events)):
            ws.close()
            ev.wait_name("close")
    finally:
        wss.close()
    with pytest.raises(wsffi.InvalidStateError):
        wss.set_certificates(tls_cert=(certs / "server.pem", certs / "server.key"))


def test_asyncio_client_over_tls_has_the_handshake_response(certs):
    import asyncio

    async def main():
        async def handler(ws):
            async for msg in ws:
                await ws.send(msg)

        async with wsa.serve(handler, "127.0.0.1", 0, tls_cert=(certs / "server.pem", certs / "server.key")) as server:
            async with wsa.connect(f"wss://localhost:{server.port}/", ca_file=certs / "ca.pem") as ws:
                assert ws.response.status == 101
                assert ws.response.headers["upgrade"].lower() == "websocket"
                assert "sec-websocket-accept" in ws.response.headers
                await ws.send("tls")
                assert await asyncio.wait_for(ws.recv(), WAIT) == "tls"
                assert ws.tls_alpn == "http/1.1"

    asyncio.run(main())


# ---- plain HTTP on the WebSocket port -------------------------------------------------------


def test_http_handler_answers_plain_requests_beside_the_websocket():
    seen = []

    def http(request):
        seen.append((request.method, request.path, request.query("x")))
        if request.path == "/boom":
            raise RuntimeError("handler failed")
        if request.path == "/json":
            return 201, {"Content-Type": "application/json", "X-Test": "1"}, b'{"ok": true}'
        return "healthy"

    wss, _ = echo_server(path="/ws", http_handler=http)
    reported = []
    old_hook = __import__("sys").unraisablehook
    __import__("sys").unraisablehook = lambda args: reported.append(args.exc_value)
    try:
        base = f"http://127.0.0.1:{wss.port}"
        with urllib.request.urlopen(base + "/health?x=1", timeout=WAIT) as r:
            assert r.status == 200
            assert r.read() == b"healthy"
            assert r.headers["Content-Type"].startswith("text/plain")
        with urllib.request.urlopen(base + "/json", timeout=WAIT) as r:
            assert r.status == 201 and r.headers["X-Test"] == "1"
            assert r.read() == b'{"ok": true}'
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(base + "/boom", timeout=WAIT)
        assert failed.value.code == 500
        assert any(isinstance(e, RuntimeError) for e in reported), reported
        assert ("GET", "/health", "1") in seen
        ws, events = open_client(f"ws://127.0.0.1:{wss.port}/ws")
        events.wait_name("open")
        echo_once(ws, events)
        ws.close()
        events.wait_name("close")
    finally:
        __import__("sys").unraisablehook = old_hook
        wss.close()


def test_asyncio_serve_with_an_http_handler():
    import asyncio

    async def main():
        async def handler(ws):
            await ws.send("hi")

        async with wsa.serve(handler, "127.0.0.1", 0, http_handler=lambda req: (404, "no " + req.path)) as server:
            def get():
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{server.port}/missing", timeout=WAIT)
                except urllib.error.HTTPError as e:
                    return e.code, e.read()

            assert await asyncio.get_running_loop().run_in_executor(None, get) == (404, b"no /missing")

    asyncio.run(main())


# ---- proxies --------------------------------------------------------------------------------


def read_head(sock) -> bytes | None:
    """Bytes up to the end of an HTTP head (and whatever came with it); None at EOF first."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        head += chunk
    return head


class ConnectProxy:
    """An HTTP CONNECT proxy on a thread: optional Basic credentials, counts tunnels."""

    def __init__(self, credentials=None):
        self.credentials = credentials
        self.tunnels = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client):
        with client:
            head = read_head(client)
            if head is None:
                return
            lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
            method, target, _ = lines[0].split(" ")
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
            if method != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            if self.credentials is not None:
                expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
                if headers.get("proxy-authorization") != expected:
                    client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                   b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
                    return
            host, port = target.rsplit(":", 1)
            try:
                upstream = socket.create_connection((host, int(port)), timeout=WAIT)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target)
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            with upstream:
                pair = {client: upstream, upstream: client}
                while True:
                    ready, _, _ = select.select(list(pair), [], [], WAIT)
                    if not ready:
                        return
                    for s in ready:
                        data = s.recv(65536)
                        if not data:
                            return
                        pair[s].sendall(data)

    def close(self):
        self._stop = True
        self.sock.close()
        self._thread.join(WAIT)


def test_client_through_an_http_connect_proxy_with_credentials():
    wss, _ = echo_server()
    proxy = ConnectProxy(credentials="user:s3cret")
    try:
        ws, events = open_client(f"ws://127.0.0.1:{wss.port}/", proxy=f"http://user:s3cret@127.0.0.1:{proxy.port}")
        events.wait_name("open")
        echo_once(ws, events, "through the tunnel")
        assert proxy.tunnels == [f"127.0.0.1:{wss.port}"]
        ws.close()
        events.wait_name("close")
        refused, refused_events = open_client(f"ws://127.0.0.1:{wss.port}/", proxy=f"http://user:wrong@127.0.0.1:{proxy.port}")
        _, err = refused_events.wait_name("error")
        assert "407" in str(err), str(err)
        assert "open" not in refused_events.names()
    finally:
        proxy.close()
        wss.close()


def test_proxy_true_reads_the_environment_and_no_proxy(monkeypatch):
    wss, _ = echo_server()
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        ws, events = open_client(f"ws://127.0.0.1:{wss.port}/", proxy=True)
        events.wait_name("open")
        assert proxy.tunnels == [f"127.0.0.1:{wss.port}"]
        ws.close()
        events.wait_name("close")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        direct, direct_events = open_client(f"ws://127.0.0.1:{wss.port}/", proxy=True)
        direct_events.wait_name("open")
        assert len(proxy.tunnels) == 1  # went around the proxy
        direct.close()
        direct_events.wait_name("close")
        plain, plain_events = open_client(f"ws://127.0.0.1:{wss.port}/")  # not opted in
        plain_events.wait_name("open")
        assert len(proxy.tunnels) == 1
        plain.close()
        plain_events.wait_name("close")
    finally:
        proxy.close()
        wss.close()


# ---- redirects ------------------------------------------------------------------------------


class Redirector:
    """Answers every request with `status` and a Location built by `location(port)`."""

    def __init__(self, status, location):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self.status, self.location = status, location
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(WAIT)
                read_head(c)
                self.hits += 1
                c.sendall(f"HTTP/1.1 {self.status} Moved\r\nLocation: {self.location(self.port)}\r\n"
                          f"Content-Length: 0\r\nConnection: close\r\n\r\n".encode())  # fmt: skip

    def close(self):
        self.sock.close()


def test_redirects_are_followed_only_when_asked():
    wss, server_events = echo_server(path="/chat")
    redirect = Redirector(302, lambda _: f"ws://127.0.0.1:{wss.port}/chat?from=redirect")
    try:
        url = f"ws://127.0.0.1:{redirect.port}/old"
        ws, events = open_client(url, follow_redirects=True)
        events.wait_name("open")
        assert server_events.wait_name("connection")[2].query("from") == "redirect"
        assert ws.handshake_response.status == 101
        echo_once(ws, events)
        ws.close()
        events.wait_name("close")
        stay, stay_events = open_client(url)
        _, response = stay_events.wait_name("unexpected-response")
        assert response.status == 302
        assert response.headers["location"].endswith("/chat?from=redirect")
    finally:
        redirect.close()
        wss.close()


def test_a_redirect_from_ws_to_wss_verifies_the_new_host(certs):
    wss, server_events = echo_server(path="/secure", tls_cert=(certs / "server.pem", certs / "server.key"))
    redirect = Redirector(301, lambda _: f"wss://localhost:{wss.port}/secure")
    try:
        url = f"ws://127.0.0.1:{redirect.port}/"
        ws, events = open_client(url, follow_redirects=True, ca_file=certs / "ca.pem")
        events.wait_name("open")
        assert ws.tls_peer_subject == "CN=localhost"
        assert server_events.wait_name("connection")[2].path == "/secure"
        echo_once(ws, events, "upgraded to TLS")
        ws.close()
        events.wait_name("close")
        # The certificate is checked against the new host: an unknown CA fails the hop.
        bad, bad_events = open_client(url, follow_redirects=True, ca_file=certs / "other-ca.pem")
        _, err = bad_events.wait_name("error")
        assert "certificate" in str(err).lower(), str(err)
        assert "open" not in bad_events.names()
    finally:
        redirect.close()
        wss.close()


def test_a_redirect_loop_ends_with_a_clear_error():
    loop = Redirector(307, lambda port: f"ws://127.0.0.1:{port}/again")
    try:
        ws, events = open_client(f"ws://127.0.0.1:{loop.port}/", follow_redirects=True, max_redirects=3)
        _, err = events.wait_name("error")
        assert "redirect" in str(err).lower(), str(err)
        assert 1 <= loop.hits <= 4
        assert "open" not in events.names()
    finally:
        loop.close()


# ---- timers ---------------------------------------------------------------------------------


def test_call_later_runs_once_on_the_loop_thread_and_cancel_stops_it():
    loop = wsffi.EventLoop()
    ran, threads = [], []
    loop.start()
    try:
        once = loop.call_later(0.02, lambda x: (ran.append(x), threads.append(threading.current_thread())), "once")
        never = loop.call_later(5, ran.append, "never")
        assert never.cancel() is True
        assert never.cancel() is False
        deadline = time.monotonic() + WAIT
        while not ran and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert ran == ["once"]
        assert threads[0].name == "wsffi-events"
        assert once.cancel() is False  # it ran its last time
    finally:
        loop.close()


def test_call_every_repeats_until_cancelled_and_reports_exceptions():
    loop = wsffi.EventLoop()
    ticks, reported = [], []
    import sys

    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda args: reported.append(args.exc_value)
    loop.start()
    try:
        def tick():
            ticks.append(time.monotonic())
            if len(ticks) == 2:
                raise ValueError("tick failed")

        timer = loop.call_every(0.02, tick)
        deadline = time.monotonic() + WAIT
        while len(ticks) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert timer.cancel() is True
        count = len(ticks)
        time.sleep(0.1)
        assert count >= 4 and len(ticks) <= count + 1  # a run already under way may finish
        assert any(isinstance(e, ValueError) for e in reported), reported
        with pytest.raises(ValueError):
            loop.call_every(0, tick)
        with pytest.raises(TypeError):
            loop.call_later(0.1, "not callable")
    finally:
        sys.unraisablehook = old_hook
        loop.close()


def test_run_returns_once_the_last_timer_ran():
    loop = wsffi.EventLoop()
    order = []
    loop.call_later(0.05, order.append, "second")
    loop.call_later(0.01, order.append, "first")
    started = time.monotonic()
    loop.run(timeout=WAIT)
    assert order == ["first", "second"]
    assert time.monotonic() - started < WAIT
    loop.close()
    with pytest.raises(wsffi.ShutDownError):
        loop.call_later(0.01, order.append, "after close")


# ---- the library's log ----------------------------------------------------------------------


def test_library_log_reaches_python_logging(caplog):
    wss, _ = echo_server(allowed_origins=["https://good.example"])
    caplog.set_level(logging.DEBUG, logger="wsffi")
    wsffi.enable_logging(logging.DEBUG)
    try:
        ws, events = open_client(f"ws://127.0.0.1:{wss.port}/", origin="https://evil.example")
        events.wait_name("unexpected-response")
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not any("refused" in r.getMessage() for r in caplog.records):
            time.sleep(0.02)
        refused = [r for r in caplog.records if r.name == "wsffi" and "refused" in r.getMessage()]
        assert refused, [r.getMessage() for r in caplog.records]
        assert refused[0].levelno == logging.INFO
        assert any(r.levelno == logging.DEBUG and "403" in r.getMessage() for r in caplog.records)
        wsffi.enable_logging(logging.WARNING)
        time.sleep(0.3)  # the first exchange's last records (its closes) may still be on the way
        caplog.clear()
        quiet, quiet_events = open_client(f"ws://127.0.0.1:{wss.port}/", origin="https://evil.example")
        quiet_events.wait_name("unexpected-response")
        time.sleep(0.1)
        assert not [r for r in caplog.records if r.name == "wsffi" and r.levelno < logging.WARNING]
    finally:
        wsffi.disable_logging()
        wss.close()

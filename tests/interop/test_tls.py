"""TLS interop: Python `websockets` and Node `ws` clients against `build/echo-server --tls`,
and the wsffi client (build/probe-client) against a Python `websockets` TLS server.
Certificates come from build/tls-test-certs, fresh for each run."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import signal
import subprocess

import pytest
from websockets.sync.client import connect

from interop_helpers import BUILD, ECHO_SERVER, HERE, NODE, PROBE_CLIENT, PYTHON, start_listening

CERTS_TOOL = BUILD / "tls-test-certs"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    assert CERTS_TOOL.exists(), f"{CERTS_TOOL} missing: run `make test-interop`"
    d = tmp_path_factory.mktemp("certs")
    subprocess.run([CERTS_TOOL, d], check=True, timeout=30)
    return d


@pytest.fixture(scope="module")
def tls_echo(certs):
    """build/echo-server --tls on a free port; yields (wss URL with the name localhost, process)."""
    argv = [ECHO_SERVER, "--tls", certs / "server.pem", certs / "server.key", "127.0.0.1:0"]
    proc, address = start_listening(argv, "echo-server-tls")
    try:
        yield f"wss://localhost:{address.rsplit(':', 1)[1]}/", proc
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


def client_context(certs, ca="ca.pem"):
    ctx = ssl.create_default_context(cafile=str(certs / ca))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# ---- Python websockets client -> echo-server --tls ----------------------------------------


def test_python_client_echo_over_tls(tls_echo, certs):
    url, _ = tls_echo
    big = bytes(i % 251 for i in range(1 << 20))
    with connect(url, ssl=client_context(certs), max_size=None, compression=None) as ws:
        assert ws.socket.version() in ("TLSv1.2", "TLSv1.3")
        assert ws.socket.selected_alpn_protocol() == "http/1.1"
        ws.send("héllo ✓")
        assert ws.recv(timeout=10) == "héllo ✓"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(timeout=10) == b"\x00\x01\xff"
        ws.send(big)
        assert ws.recv(timeout=20) == big
        ws.close(1000, "done")
    assert ws.close_code == 1000


def test_python_client_refuses_an_unknown_ca_and_the_server_goes_on(tls_echo, certs):
    url, proc = tls_echo
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(url, ssl=client_context(certs, "other-ca.pem"), open_timeout=10)
    with connect(url, ssl=client_context(certs), compression=None) as ws:
        ws.send("still serving")
        assert ws.recv(timeout=10) == "still serving"
    assert proc.alive()


def test_python_client_checks_the_host_name(tls_echo, certs):
    url, _ = tls_echo
    ctx = client_context(certs)
    # The certificate names localhost and 127.0.0.1, not this name.
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(url, ssl=ctx, server_hostname="elsewhere.example", open_timeout=10)


# ---- Node ws client -> echo-server --tls --------------------------------------------------


def node_client(url, scenario, certs):
    env = dict(os.environ, NODE_EXTRA_CA_CERTS=str(certs / "ca.pem"))
    proc = subprocess.run([NODE, str(HERE / "node_client.js"), url, scenario], cwd=HERE, env=env,
                          capture_output=True, text=True, timeout=60)
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    results = [l["result"] for l in lines if "result" in l]
    assert proc.returncode == 0 and results, f"node {scenario}: rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return results[-1]


@pytest.fixture(scope="module")
def node_ws_installed():
    assert (HERE / "node_modules" / "ws" / "package.json").exists(), "node_modules missing: run `make test-interop`"


def test_node_client_text_over_tls(tls_echo, certs, node_ws_installed):
    r = node_client(tls_echo[0], "text", certs)
    assert r["isBinary"] is False and r["text"] == "hello from node \u2713"


def test_node_client_big_over_tls(tls_echo, certs, node_ws_installed):
    r = node_client(tls_echo[0], "big", certs)
    assert r["isBinary"] is True and r["length"] == 1 << 20
    assert r["sha256"] == r["sentSha256"]


def test_node_client_pipelined_over_tls(tls_echo, certs, node_ws_installed):
    r = node_client(tls_echo[0], "pipelined", certs)
    assert [m["text"] for m in r["received"]] == r["sent"]


# ---- wsffi client -> Python websockets TLS server -----------------------------------------


@pytest.fixture(scope="module")
def py_tls_peer(certs):
    argv = [PYTHON, HERE / "py_peer_server.py", "--tls", certs / "server.pem", certs / "server.key", "127.0.0.1:0"]
    proc, address = start_listening(argv, "python-tls-peer", cwd=HERE)
    try:
        yield f"localhost:{address.rsplit(':', 1)[1]}", proc
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


def probe(address, path, scenario, ca):
    assert PROBE_CLIENT.exists(), f"{PROBE_CLIENT} missing: run `make test-interop`"
    env = dict(os.environ, PROBE_TLS_CA=str(ca))
    url = f"wss://{address}{path}"
    proc = subprocess.run([PROBE_CLIENT, url, scenario], env=env, capture_output=True, text=True, timeout=60)
    return proc, f"probe-client {url} {scenario}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("scenario", ["text", "binary", "big", "many", "ping", "close"])
def test_wsffi_client_against_python_tls_server(py_tls_peer, certs, scenario):
    proc, detail = probe(py_tls_peer[0], "/echo", scenario, certs / "ca.pem")
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1:] == [f"PASS {scenario}"], detail


def test_wsffi_client_receives_a_mebibyte_from_python_tls_server(py_tls_peer, certs):
    proc, detail = probe(py_tls_peer[0], "/big", "recv-big", certs / "ca.pem")
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1:] == ["PASS recv-big"], detail


def test_wsffi_client_refuses_a_server_of_an_unknown_ca(py_tls_peer, certs):
    proc, detail = probe(py_tls_peer[0], "/echo", "text", certs / "other-ca.pem")
    assert proc.returncode == 1, detail
    assert "TLS: invalid certificate: unknown issuer" in proc.stdout, detail
    assert "(TLS error)" in proc.stdout, detail


# ---- SNI and certificate replacement: echo-server --tls-sni, SIGHUP ------------------------


def peer_der(certs, host, port, server_hostname, ca="ca.pem"):
    """The DER certificate a Python ssl client gets for `server_hostname` (verified)."""
    import socket

    ctx = client_context(certs, ca)
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            return s.getpeercert(binary_form=True)


def der_of(path):
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def test_python_client_chooses_the_certificate_by_sni(certs):
    argv = [ECHO_SERVER, "--tls", certs / "server.pem", certs / "server.key",
            "--tls-sni", "wsffi.test", certs / "sni.pem", certs / "sni.key",
            "--tls-sni", "*.example.com", certs / "wrong-host.pem", certs / "wrong-host.key", "127.0.0.1:0"]
    proc, address = start_listening(argv, "echo-server-sni")
    try:
        port = int(address.rsplit(":", 1)[1])
        assert peer_der(certs, "127.0.0.1", port, "localhost") == der_of(certs / "server.pem")
        assert peer_der(certs, "127.0.0.1", port, "WSFFI.test") == der_of(certs / "sni.pem")
        # The wildcard pattern serves a name one label below; the certificate itself only
        # names example.com, so the client refuses it for that name.
        ctx = client_context(certs)
        ctx.check_hostname = False
        import socket
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="chat.example.com") as s:
                assert s.getpeercert(binary_form=True) == der_of(certs / "wrong-host.pem")
        url = f"wss://127.0.0.1:{port}/"
        with connect(url, ssl=client_context(certs), server_hostname="wsffi.test", compression=None) as ws:
            ws.send("sni")
            assert ws.recv(timeout=10) == "sni"
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


def test_sighup_replaces_the_certificate_and_open_connections_stay(certs, tmp_path):
    import shutil
    import time

    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(certs / "server.pem", cert)
    shutil.copy(certs / "server.key", key)
    proc, address = start_listening([ECHO_SERVER, "--tls", cert, key, "127.0.0.1:0"], "echo-server-reload")
    try:
        port = int(address.rsplit(":", 1)[1])
        url = f"wss://localhost:{port}/"
        with connect(url, ssl=client_context(certs), compression=None) as before:
            before.send("one")
            assert before.recv(timeout=10) == "one"
            # Garbage first: the old certificate stays.
            cert.write_text("not a certificate")
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            assert peer_der(certs, "127.0.0.1", port, "localhost") == der_of(certs / "server.pem")
            shutil.copy(certs / "other-server.pem", cert)
            shutil.copy(certs / "other-server.key", key)
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while True:
                try:
                    got = peer_der(certs, "127.0.0.1", port, "localhost", ca="other-ca.pem")
                    break
                except ssl.SSLCertVerificationError:
                    assert time.monotonic() < deadline, proc.describe()
                    time.sleep(0.1)
            assert got == der_of(certs / "other-server.pem")
            with pytest.raises(ssl.SSLCertVerificationError):
                peer_der(certs, "127.0.0.1", port, "localhost")
            before.send("two")
            assert before.recv(timeout=10) == "two"
        assert proc.alive(), proc.describe()
        assert "no PEM certificate" in proc.describe(), proc.describe()
    finally:
        proc.stop()

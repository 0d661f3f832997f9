#!/usr/bin/env python3
"""Echo-server benchmark runner for wsffi (standard library only).

Starts each echo server pinned to CPU 0 and the load generator pinned to CPU 1, runs the
scenarios in interleaved rounds (A B C ... A B C ...), and reports medians, min-max ranges
and ratios to the plain TCP echo and to tokio-tungstenite from the same round, for the
throughput and for the server's CPU time per message (/proc/PID/stat, user + system).

    python3 bench/run.py                      full run, writes bench/RESULTS.md
    python3 bench/run.py --smoke              tiny run that proves the harness works
    python3 bench/run.py --servers wsffi,tcp --scenarios 1,4 --duration 3 --rounds 3
    python3 bench/run.py --list
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
RELEASE = os.path.join(BENCH, "target", "release")
LOADGEN = os.path.join(RELEASE, "loadgen")
LOGS = os.path.join(BENCH, "target", "bench-logs")
ADDR = "127.0.0.1:0"
VENV_PY = os.path.join(BENCH, "python", ".venv", "bin", "python")
CLIENT_PY = os.path.join(BENCH, "python", "client.py")
SERVER_CPU = "0"
LOADGEN_CPU = "1"

# name -> how to start it. "deflate" is the command with permessage-deflate enabled, or a
# string saying why there is none.
SERVERS = {
    "tcp": {
        "label": "plain TCP echo",
        "proto": "tcp",
        "cmd": [os.path.join(RELEASE, "tcp-echo"), ADDR],
        "deflate": "n/a: not WebSocket",
    },
    "wsffi": {
        "label": "wsffi (build/echo-server)",
        "proto": "ws",
        "cmd": [os.path.join(ROOT, "build", "echo-server"), ADDR],
        "deflate": [os.path.join(ROOT, "build", "echo-server"), "--deflate", ADDR],
        "no_deflate_note": "not run: no compression yet",
        "fanout": [os.path.join(ROOT, "build", "echo-server"), "--fanout", ADDR],
    },
    "wsffi-dispatch": {
        "label": "wsffi, dispatch mode (echo-server --dispatch)",
        "proto": "ws",
        "cmd": [os.path.join(ROOT, "build", "echo-server"), "--dispatch", ADDR],
        "deflate": [os.path.join(ROOT, "build", "echo-server"), "--dispatch", "--deflate", ADDR],
    },
    "wsffi-cpp": {
        "label": "wsffi, C++ binding (build/cpp-echo-server)",
        "proto": "ws",
        "cmd": [os.path.join(ROOT, "build", "cpp-echo-server"), ADDR],
        "deflate": [os.path.join(ROOT, "build", "cpp-echo-server"), "--deflate", ADDR],
    },
    "tungstenite": {
        "label": "tokio-tungstenite",
        "proto": "ws",
        "cmd": [os.path.join(RELEASE, "tungstenite-echo"), ADDR],
        "deflate": "n/a: no permessage-deflate in tungstenite",
    },
    "fastwebsockets": {
        "label": "fastwebsockets",
        "proto": "ws",
        "cmd": [os.path.join(RELEASE, "fws-echo"), ADDR],
        "deflate": "n/a: no permessage-deflate in fastwebsockets",
    },
    "node-ws": {
        "label": "Node ws",
        "proto": "ws",
        "cmd": ["node", os.path.join(BENCH, "node", "echo.js"), ADDR],
        "deflate": ["node", os.path.join(BENCH, "node", "echo.js"), "--deflate", ADDR],
        "needs": os.path.join(BENCH, "node", "node_modules", "ws", "package.json"),
    },
    "go-wsffi": {
        "label": "wsffi, Go binding (bench/go/wsffi-echo)",
        "proto": "ws",
        "cmd": [os.path.join(BENCH, "target", "go-wsffi-echo"), ADDR],
        "deflate": "n/a: the bench's Go servers run without compression",
    },
    "go-gorilla": {
        "label": "Go gorilla/websocket",
        "proto": "ws",
        "cmd": [os.path.join(BENCH, "target", "go-gorilla-echo"), ADDR],
        "deflate": "n/a: the bench's Go servers run without compression",
    },
    "go-coder": {
        "label": "Go coder/websocket",
        "proto": "ws",
        "cmd": [os.path.join(BENCH, "target", "go-coder-echo"), ADDR],
        "deflate": "n/a: the bench's Go servers run without compression",
    },
    "node-wsffi": {
        "label": "wsffi, Node binding (bench/node/echo-wsffi.js)",
        "proto": "ws",
        "cmd": ["node", os.path.join(BENCH, "node", "echo-wsffi.js"), ADDR],
        "deflate": ["node", os.path.join(BENCH, "node", "echo-wsffi.js"), "--deflate", ADDR],
        "needs": os.path.join(ROOT, "bindings", "node", "node_modules", "koffi", "package.json"),
    },
    "python-wsffi": {
        "label": "wsffi, Python binding (wsffi.asyncio)",
        "proto": "ws",
        "cmd": [VENV_PY, os.path.join(BENCH, "python", "echo_wsffi.py"), ADDR],
        "deflate": [VENV_PY, os.path.join(BENCH, "python", "echo_wsffi.py"), "--deflate", ADDR],
        "needs_module": "wsffi",
    },
    "python-websockets": {
        "label": "Python websockets",
        "proto": "ws",
        "cmd": [os.path.join(BENCH, "python", ".venv", "bin", "python"), os.path.join(BENCH, "python", "echo.py"), ADDR],
        "deflate": [
            os.path.join(BENCH, "python", ".venv", "bin", "python"),
            os.path.join(BENCH, "python", "echo.py"),
            "--deflate",
            ADDR,
        ],
    },
    "libwebsockets": {
        "label": "libwebsockets",
        "proto": "ws",
        "cmd": [os.path.join(BENCH, "target", "lws-echo"), ADDR],
        "deflate": [os.path.join(BENCH, "target", "lws-echo"), "--deflate", ADDR],
    },
}
SERVER_ORDER = list(SERVERS)

SCENARIOS = {
    "1": {
        "title": "1: 100 conns × 32 B binary, pipeline 16",
        "mode": "echo",
        "args": ["--conns", "100", "--pipeline", "16", "--size", "32"],
        "metric": "per_sec",
        "unit": "msg/s",
        "cpu_unit": "us/msg",
    },
    "2": {
        "title": "2: 50 conns × 4 KiB binary, pipeline 4",
        "mode": "echo",
        "args": ["--conns", "50", "--pipeline", "4", "--size", "4096"],
        "metric": "per_sec",
        "unit": "msg/s",
        "cpu_unit": "us/msg",
    },
    "3": {
        "title": "3: 4 conns × 1 MiB binary, pipeline 2",
        "mode": "echo",
        "args": ["--conns", "4", "--pipeline", "2", "--size", "1048576"],
        "metric": "mib_per_sec",
        "unit": "MiB/s",
        "cpu_unit": "us/msg",
    },
    "4": {
        "title": "4: handshakes, 8 at a time (connect, upgrade, close handshake)",
        "mode": "handshake",
        "args": ["--concurrency", "8"],
        "metric": "per_sec",
        "unit": "hs/s",
        "cpu_unit": "us/hs",
    },
    "5": {
        "title": "5: resident memory per idle connection",
        "mode": "idle",
        "args": [],
        "metric": "rss_per_conn_bytes",
        "unit": "B/conn",
        "cpu_unit": None,
    },
    "6": {
        "title": "6: scenario 1 with permessage-deflate, 200 B JSON-like text",
        "mode": "echo",
        "args": ["--conns", "100", "--pipeline", "16", "--size", "200", "--deflate"],
        "metric": "per_sec",
        "unit": "msg/s",
        "cpu_unit": "us/msg",
        "deflate": True,
    },
    "7": {
        "title": "7: fan-out, 1 publisher to 1,000 subscribers, 64 B binary, 256 in flight",
        "mode": "fanout",
        "args": ["--conns", "1001", "--pipeline", "256", "--size", "64"],
        "metric": "per_sec",
        "unit": "deliveries/s",
        "cpu_unit": "us/delivery",
        "fanout": True,
    },
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class ServerProcess:
    """One echo server, pinned to SERVER_CPU; stdout and stderr go to a log file."""

    def __init__(self, name, cmd, logpath):
        self.name = name
        self.logfile = open(logpath, "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU] + cmd,
            stdout=subprocess.PIPE,
            stderr=self.logfile,
            stdin=subprocess.DEVNULL,
            cwd=BENCH,
        )
        self.addr = None
        self._drain = None

    def wait_ready(self, timeout=30.0):
        """Returns the bound address, or None when the server exits or stays silent."""
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                m = re.search(rb"listening on (\S+)", buf)
                if m:
                    self.addr = m.group(1).decode()
                    self.logfile.write(buf.decode(errors="replace"))
                    self.logfile.flush()
                    self._drain = threading.Thread(target=self._drain_stdout, daemon=True)
                    self._drain.start()
                    return self.addr
            elif self.proc.poll() is not None:
                break
        self.logfile.write(buf.decode(errors="replace"))
        return None

    def _drain_stdout(self):
        try:
            for line in self.proc.stdout:
                self.logfile.write(line.decode(errors="replace"))
        except (OSError, ValueError):
            pass

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._drain:
            self._drain.join(timeout=2)
        self.proc.stdout.close()
        self.logfile.close()

    def exit_note(self):
        try:
            with open(self.logfile.name) as f:
                text = f.read().strip()
        except OSError:
            text = ""
        last = text.splitlines()[-1] if text else ""
        return last[:160]


def run_one(server, scen, opts, round_no):
    """Runs one scenario against one server. Returns a result dict (ok, or error/note)."""
    spec = SERVERS[server]
    sc = SCENARIOS[scen]
    cmd = spec["cmd"]
    if sc.get("deflate"):
        cmd = spec["deflate"]
        if isinstance(cmd, str):
            return {"ok": False, "note": cmd}
    if sc.get("fanout"):
        cmd = spec.get("fanout")
        if cmd is None:
            return {"ok": False, "note": "n/a: the bench runs fan-out on wsffi's topics only"}
    tag = f"s{scen}-{server}-r{round_no}"
    srv = ServerProcess(server, cmd, os.path.join(LOGS, tag + ".log"))
    try:
        addr = srv.wait_ready()
        if addr is None:
            srv.stop()
            why = srv.exit_note()
            if sc.get("deflate") and spec.get("no_deflate_note") and "not supported" in why:
                return {"ok": False, "note": spec["no_deflate_note"]}
            return {"ok": False, "error": f"server did not start: {why or 'no output'}"}
        args = [LOADGEN, "--addr", addr, "--proto", spec["proto"], "--mode", sc["mode"], "--server-pid", str(srv.proc.pid)]
        args += sc["args"]
        if sc["mode"] == "idle":
            args += ["--conns", str(opts.idle_conns), "--settle", str(opts.settle)]
            timeout = 300
        else:
            args += ["--warmup", str(opts.warmup), "--duration", str(opts.duration)]
            timeout = opts.warmup + opts.duration + 120
        try:
            out = subprocess.run(
                ["taskset", "-c", LOADGEN_CPU] + args,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=BENCH,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"load generator timed out after {timeout} s"}
        m = re.search(r"^RESULT (.*)$", out.stdout, re.M)
        if not m:
            return {"ok": False, "error": f"no result from the load generator: {out.stderr.strip()[-200:]}"}
        res = json.loads(m.group(1))
        if not res.get("ok"):
            note = srv.exit_note() if not srv.alive() else ""
            return {"ok": False, "error": res.get("error", "failed") + (f" (server: {note})" if note else "")}
        if not srv.alive():
            return {"ok": False, "error": f"server exited during the run: {srv.exit_note()}"}
        return res
    finally:
        srv.stop()


def fmt(v, unit=None):
    if v is None or v != v:
        return "—"
    if unit == "ratio":
        return f"{v:.2f}"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f} M"
    if a >= 1e4:
        return f"{v / 1e3:.0f} k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summary(values, unit=None):
    vals = [v for v in values if v is not None and v == v]
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt(med, unit)
    return f"{fmt(med, unit)} ({fmt(min(vals), unit)}–{fmt(max(vals), unit)})"


def ratios(results, scen, server, ref, key):
    """Per-round ratio of `key` for server over ref (same scenario, same round)."""
    out = []
    for r in range(len(results)):
        a = results[r].get((scen, server))
        b = results[r].get((scen, ref))
        if a and b and a.get("ok") and b.get("ok"):
            x, y = a.get(key), b.get(key)
            if x is not None and y not in (None, 0):
                out.append(x / y)
    return out


def tool_versions():
    def cmd(args):
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    v = {}
    v["wsffi"] = cmd(["git", "-C", ROOT, "describe", "--always", "--dirty"]) or "?"
    v["rustc"] = cmd(["rustc", "--version"])
    lock = os.path.join(BENCH, "Cargo.lock")
    if os.path.exists(lock):
        text = open(lock).read()
        for crate in ("tokio", "tokio-tungstenite", "fastwebsockets"):
            m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(crate), text)
            if m:
                v[crate] = m.group(1)
    v["node"] = cmd(["node", "--version"])
    try:
        with open(os.path.join(BENCH, "node", "node_modules", "ws", "package.json")) as f:
            v["ws"] = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        pass
    py = SERVERS["python-websockets"]["cmd"][0]
    if os.path.exists(py):
        v["python"] = cmd([py, "-c", "import sys; print(sys.version.split()[0])"])
        v["websockets"] = cmd([py, "-c", "import websockets; print(websockets.__version__)"])
    lws = cmd(["pkg-config", "--modversion", "libwebsockets"]).rstrip("-")
    if lws:
        v["libwebsockets"] = lws
    return v


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def available(server):
    spec = SERVERS[server]
    exe = spec["cmd"][0]
    if os.path.sep in exe:
        if not os.path.exists(exe):
            return f"skipped: {os.path.relpath(exe, ROOT)} not built"
    elif shutil.which(exe) is None:
        return f"skipped: {exe} not installed"
    need = spec.get("needs")
    if need and not os.path.exists(need):
        return f"skipped: {os.path.relpath(need, ROOT)} missing (run make bench)"
    if len(spec["cmd"]) > 2 and spec["cmd"][1].endswith((".py", ".js")) and not os.path.exists(spec["cmd"][1]):
        return "skipped: script missing"
    mod = spec.get("needs_module")
    if mod and not py_has(mod):
        return f"skipped: module {mod} not installed in bench/python/.venv (run make bench)"
    return None


def py_has(module):
    if not os.path.exists(VENV_PY):
        return False
    try:
        return subprocess.run([VENV_PY, "-c", f"import {module}"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# Client-side comparison: bench/python/client.py with each implementation against the C echo
# server (pinned like a server under test, the client on the load generator's CPU).
PY_CLIENTS = {"wsffi": "wsffi.asyncio client", "websockets": "websockets client"}
PY_CLIENT_ARGS = ["--conns", "4", "--pipeline", "16", "--size", "32"]
PY_CLIENT_TITLE = "Python clients: 4 conns × 32 B binary, pipeline 16, against build/echo-server"


def run_client(impl, opts, round_no):
    tag = f"client-{impl}-r{round_no}"
    srv = ServerProcess("wsffi", SERVERS["wsffi"]["cmd"], os.path.join(LOGS, tag + ".log"))
    try:
        addr = srv.wait_ready()
        if addr is None:
            return {"ok": False, "error": f"echo server did not start: {srv.exit_note() or 'no output'}"}
        args = [VENV_PY, CLIENT_PY, "--impl", impl, "--warmup", str(opts.warmup), "--duration", str(opts.duration)]
        args += PY_CLIENT_ARGS + [addr]
        timeout = opts.warmup + opts.duration + 60
        try:
            out = subprocess.run(["taskset", "-c", LOADGEN_CPU] + args, capture_output=True, text=True, timeout=timeout, cwd=BENCH)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"client timed out after {timeout} s"}
        m = re.search(r"^RESULT (.*)$", out.stdout, re.M)
        if not m:
            return {"ok": False, "error": f"no result from the client: {out.stderr.strip()[-200:]}"}
        return json.loads(m.group(1))
    finally:
        srv.stop()


def build_report(opts, servers, scens, results, skipped, started, elapsed, versions):
    lines = []
    now = datetime.datetime.now().astimezone()
    full = opts.rounds >= 3 and opts.duration >= 10 and opts.warmup >= 2 and opts.idle_conns >= 10000
    if opts.smoke:
        kind = "smoke run (harness check only; figures are meaningless)"
    elif full:
        kind = "full benchmark run"
    else:
        kind = "short run (below the full run's parameters; figures are indicative only)"
    lines.append(f"# wsffi echo benchmark — {now:%Y-%m-%d %H:%M %Z}")
    lines.append("")
    lines.append(
        f"{kind.capitalize()}: {opts.rounds} interleaved round(s), {opts.warmup:g} s warm-up + {opts.duration:g} s measured "
        f"per run, idle scenario with {opts.idle_conns} connections; {elapsed / 60:.1f} min in all. "
        f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}. "
        f"Servers pinned to CPU {SERVER_CPU}, load generator to CPU {LOADGEN_CPU} (taskset)."
    )
    lines.append("")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v) + ".")
    lines.append("")
    lines.append(
        "Cells are `median (min–max)` over the rounds. ×TCP and ×tungstenite divide this server's figure by the plain "
        "TCP echo's / tokio-tungstenite's figure from the same round, then take the median (min–max) of those ratios. "
        "Throughput: higher is better; server CPU (user + system from /proc/PID/stat over the measured window, "
        "divided by messages echoed or handshakes completed) and memory: lower is better. "
        "Loadgen CPU is the load generator's own CPU use over the window (1.00 = its core was saturated: "
        "the throughput is then limited by the client and server CPU per message is the fair figure)."
    )
    lines.append("")
    header = "| Scenario | Server | Result | ×TCP | ×tungstenite | Server CPU | CPU ×TCP | CPU ×tungstenite | Loadgen CPU |"
    lines.append(header)
    lines.append("|---|---|---|---|---|---|---|---|---|")
    failures = 0
    for scen in scens:
        sc = SCENARIOS[scen]
        for server in servers:
            label = SERVERS[server]["label"]
            if server in skipped:
                lines.append(f"| {sc['title']} | {label} | {skipped[server]} | | | | | | |")
                continue
            runs = [results[r].get((scen, server)) for r in range(len(results))]
            runs = [x for x in runs if x is not None]
            ok = [x for x in runs if x.get("ok")]
            if not ok:
                notes = sorted({x.get("note") or ("error: " + x.get("error", "?")) for x in runs})
                if any("error" in x for x in runs):
                    failures += 1
                lines.append(f"| {sc['title']} | {label} | {'; '.join(notes) or '—'} | | | | | | |")
                continue
            errs = [x for x in runs if not x.get("ok") and "error" in x]
            failures += len(errs)
            metric = sc["metric"]
            res = summary([x[metric] for x in ok]) + f" {sc['unit']}"
            if errs:
                res += f" ({len(errs)} failed: {errs[0]['error']})"
            rt = summary(ratios(results, scen, server, "tcp", metric), "ratio")
            rw = summary(ratios(results, scen, server, "tungstenite", metric), "ratio")
            if sc["cpu_unit"]:
                cpu = summary([x.get("server_cpu_us_per_op") for x in ok]) + f" {sc['cpu_unit']}"
                ct = summary(ratios(results, scen, server, "tcp", "server_cpu_us_per_op"), "ratio")
                cw = summary(ratios(results, scen, server, "tungstenite", "server_cpu_us_per_op"), "ratio")
                lc = summary([x.get("client_cpu_frac") for x in ok], "ratio")
            else:
                cpu = ct = cw = lc = "—"
            lines.append(f"| {sc['title']} | {label} | {res} | {rt} | {rw} | {cpu} | {ct} | {cw} | {lc} |")
    lines.append("")
    # The load generator must drive the plain TCP echo at least as fast as any WebSocket server.
    # Interference from the rest of the machine only ever lowers a figure, so the verdict
    # compares the best round of each; medians are shown beside it.
    checks = []
    for scen in scens:
        sc = SCENARIOS[scen]
        if sc["mode"] in ("idle", "fanout") or sc.get("deflate"):
            continue

        def vals(server):
            return [
                results[r][(scen, server)][sc["metric"]]
                for r in range(len(results))
                if results[r].get((scen, server), {}).get("ok")
            ]

        tcp = vals("tcp")
        if not tcp:
            continue
        best = None
        for server in servers:
            v = vals(server) if server != "tcp" else []
            if v and (best is None or max(v) > best[0]):
                best = (max(v), statistics.median(v), SERVERS[server]["label"])
        if best is None:
            continue
        verdict = "OK" if max(tcp) >= best[0] else "NOT MET"
        checks.append(
            f"- scenario {scen}: plain TCP echo best {fmt(max(tcp))} (median {fmt(statistics.median(tcp))}) {sc['unit']}; "
            f"fastest WebSocket server, {best[2]}: best {fmt(best[0])} (median {fmt(best[1])}) {sc['unit']}: {verdict}"
        )
    if checks:
        lines.append(
            "Load generator headroom: it must drive the plain TCP echo at least as fast as any WebSocket server "
            "(best round against best round):"
        )
        lines.append("")
        lines.extend(checks)
        lines.append("")
    # Dispatch mode runs every callback on the application's thread; its cost is the queue.
    if "wsffi" in servers and "wsffi-dispatch" in servers:
        rows = []
        for scen in scens:
            sc = SCENARIOS[scen]
            if not sc["cpu_unit"]:
                continue
            r = ratios(results, scen, "wsffi-dispatch", "wsffi", "server_cpu_us_per_op")
            if r:
                rows.append(f"- {sc['title']}: {summary(r, 'ratio')}")
        if rows:
            lines.append(
                "Dispatch mode: server CPU per message (or handshake) of `echo-server --dispatch` over direct callbacks, "
                "same round, median (min–max); target at most 1.5 for small messages:"
            )
            lines.append("")
            lines.extend(rows)
            lines.append("")
    # The C++ binding adds std::function calls and exceptions over the same C callbacks.
    if "wsffi" in servers and "wsffi-cpp" in servers:
        rows = []
        for scen in scens:
            sc = SCENARIOS[scen]
            if not sc["cpu_unit"]:
                continue
            r = ratios(results, scen, "wsffi-cpp", "wsffi", "server_cpu_us_per_op")
            if r:
                rows.append(f"- {sc['title']}: {summary(r, 'ratio')}")
        if rows:
            lines.append(
                "C++ binding: server CPU per message (or handshake) of `cpp-echo-server` (bindings/cpp) over the C "
                "`echo-server`, same round, median (min–max):"
            )
            lines.append("")
            lines.extend(rows)
            lines.append("")
    # Go and Python bindings against their ecosystems' own libraries, with the targets they promise.
    def target_rows(server, ref, title, targets, modes=("echo",)):
        rows = []
        if server not in servers or ref not in servers:
            return rows
        for scen in scens:
            sc = SCENARIOS[scen]
            if sc["mode"] not in modes or sc.get("deflate"):
                continue
            parts = []
            for key, what, tgt in targets:
                r = ratios(results, scen, server, ref, key)
                if r:
                    parts.append(f"{what} {summary(r, 'ratio')}" + (f" (target {tgt})" if tgt and scen == "1" else ""))
            if parts:
                rows.append(f"- {sc['title']}: " + "; ".join(parts))
        if rows:
            lines.append(title)
            lines.append("")
            lines.extend(rows)
            lines.append("")
        return rows

    go_targets = [("per_sec", "msg/s ×", "≥ 1.5"), ("server_cpu_us_per_op", "server CPU per message ×", "< 1")]
    for ref, name in (("go-gorilla", "gorilla/websocket"), ("go-coder", "coder/websocket")):
        target_rows(
            "go-wsffi",
            ref,
            f"Go binding over {name}: the Go binding's echo server (OnMessage callback) over {name}'s "
            "(goroutine per connection), same round, median (min–max):",
            go_targets,
        )
    target_rows(
        "python-wsffi",
        "python-websockets",
        "Python binding over websockets: `wsffi.asyncio.serve` over `websockets.asyncio.server.serve`, the same "
        "handler, same round, median (min–max):",
        [("per_sec", "msg/s ×", "≥ 3"), ("server_cpu_us_per_op", "server CPU per message ×", None)],
    )
    target_rows(
        "node-wsffi",
        "node-ws",
        "Node binding over ws (with bufferutil): the same echo program on `require('wsffi')` and on "
        "`require('ws')`, same round, median (min–max); targets: ≥ 2 msg/s for small messages, ≤ 0.25 memory per idle connection:",
        [("per_sec", "msg/s ×", "≥ 2"), ("server_cpu_us_per_op", "server CPU per message ×", None),
         ("rss_per_conn_bytes", "memory per idle connection ×", None)],
        modes=("echo", "idle"),
    )
    # Topics: a delivery needs no read, so it should cost well under an echoed message.
    if "wsffi" in servers and "7" in scens and "1" in scens:
        per_sec, cpu = [], []
        for rr in results:
            f, e = rr.get(("7", "wsffi")), rr.get(("1", "wsffi"))
            if f and e and f.get("ok") and e.get("ok"):
                per_sec.append(f["per_sec"] / e["per_sec"])
                if f.get("server_cpu_us_per_op") and e.get("server_cpu_us_per_op"):
                    cpu.append(f["server_cpu_us_per_op"] / e["server_cpu_us_per_op"])
        if per_sec:
            lines.append(
                "Fan-out over small echo, wsffi (`echo-server --fanout`, scenario 7, over scenario 1), same round, "
                "median (min–max):"
            )
            lines.append("")
            lines.append(f"- deliveries/s over echoed msg/s: {summary(per_sec, 'ratio')} (target ≥ 2)")
            if cpu:
                lines.append(f"- server CPU per delivery over server CPU per echoed message: {summary(cpu, 'ratio')} (target ≤ 0.5)")
            lines.append("")
    cl = {impl: [rr.get(("client", impl)) for rr in results] for impl in PY_CLIENTS}
    if any(x for v in cl.values() for x in v):
        lines.append(
            f"{PY_CLIENT_TITLE} (bench/python/client.py, client pinned to CPU {LOADGEN_CPU}, "
            "every echo checked); client CPU is the client's own per message:"
        )
        lines.append("")
        for impl, label in PY_CLIENTS.items():
            runs = [x for x in cl[impl] if x]
            ok = [x for x in runs if x.get("ok")]
            if ok:
                lines.append(
                    f"- {label}: {summary([x['per_sec'] for x in ok])} msg/s, client CPU "
                    f"{summary([x.get('client_cpu_us_per_op') for x in ok])} us/msg"
                )
            elif runs:
                failures += sum(1 for x in runs if "error" in x)
                lines.append(f"- {label}: error: {runs[0].get('error', '?')}")
        r = []
        for rr in results:
            a, b = rr.get(("client", "wsffi")), rr.get(("client", "websockets"))
            if a and b and a.get("ok") and b.get("ok") and b["per_sec"]:
                r.append(a["per_sec"] / b["per_sec"])
        if r:
            lines.append(f"- wsffi client over websockets client, msg/s, same round: {summary(r, 'ratio')} (target ≥ 3)")
        lines.append("")
    lines.append("Notes:")
    lines.append("")
    lines.append(
        "- Every echo is verified by the load generator: opcode, size and leading bytes (hence order) on every connection, full content on "
        "connection 0 (inflated content too, with permessage-deflate); a failing server shows as an error, never as a figure."
    )
    lines.append(
        "- Scenario 4, plain TCP: connect, 8-byte round trip, close. WebSocket servers: connect, upgrade, close handshake "
        "(client sends close 1000, waits for the server's close frame, closes the socket). fastwebsockets' upgrade is "
        "answered by the bench's own minimal HTTP parser (no hyper), so its handshake figure is a best case."
    )
    lines.append(
        "- Scenario 5: server VmRSS (/proc/PID/status) after opening the connections, exchanging one 32-byte message "
        "on each and settling, minus VmRSS before the first connection, divided by the number of connections."
    )
    lines.append(
        "- Scenario 6: the client offers `permessage-deflate; client_no_context_takeover; server_no_context_takeover` "
        "and sends pre-compressed 200-byte JSON-like messages; Node ws is configured with threshold 0 so it "
        "compresses every message."
    )
    if "6" in scens:
        size = 200
        for server in servers:
            wire = [
                results[r][("6", server)].get("wire_payload_per_op")
                for r in range(len(results))
                if results[r].get(("6", server), {}).get("ok")
            ]
            wire = [w for w in wire if isinstance(w, (int, float))]
            if wire:
                w = statistics.median(wire)
                lines.append(
                    f"- Scenario 6, {SERVERS[server]['label']}: {w:.1f} B on the wire per {size}-byte message "
                    f"(compressed to {w / size:.0%} of its size)."
                )
    lines.append(
        "- Scenario 7: `echo-server --fanout` subscribes every connection to one topic and publishes each message it "
        "receives to all the others (`wsffi_server_publish`, the frame encoded once). The load generator's publisher "
        "keeps 256 messages in flight ahead of the first subscriber (scenario 1 has 1,600 in flight over its 100 "
        "connections); every subscriber checks the sequence. Deliveries are messages received by subscribers."
    )
    lines.append(
        "- Loopback TCP processing of each direction runs on the sending CPU, so part of the server's traffic is "
        "paid on the load generator's core and vice versa; CPU figures are comparable across servers, not absolute."
    )
    lines.append("- Server logs of each run and the raw figures (results.json): bench/target/bench-logs/.")
    lines.append("")
    return "\n".join(lines), failures


# Sections of the results file below this line are measurements made apart from the run
# (A/B comparisons of one change); a new run keeps them.
KEPT_MARKER = "<!-- sections below are kept by run.py -->"


def kept_sections(path):
    """The marker and what follows it in the existing results file, or ""."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return ""
    at = text.find(KEPT_MARKER)
    return "" if at < 0 else "\n" + text[at:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default=",".join(SERVER_ORDER), help="comma list (default: all)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of 1-7 (default: all)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per run")
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--settle", type=float, default=2.0, help="idle scenario: seconds before reading RSS")
    ap.add_argument("--output", default=None, help="Markdown file (default: bench/RESULTS.md, smoke: bench/target/RESULTS.smoke.md)")
    ap.add_argument("--smoke", action="store_true", help="tiny run on tcp + wsffi: proves the harness works")
    ap.add_argument("--list", action="store_true", help="list servers and scenarios")
    ap.add_argument(
        "--py-clients",
        choices=("auto", "on", "off"),
        default="auto",
        help="Python client comparison (wsffi.asyncio vs websockets against build/echo-server); "
        "auto: when a python-* server is selected (never with --smoke)",
    )
    opts = ap.parse_args()

    if opts.list:
        for s in SERVER_ORDER:
            print(f"server {s:18} {SERVERS[s]['label']}  [{available(s) or 'available'}]")
        for k, sc in SCENARIOS.items():
            print(f"scenario {sc['title']}")
        return 0
    if opts.smoke:
        explicit = {a.split("=")[0] for a in sys.argv[1:]}
        if "--servers" not in explicit:
            opts.servers = "tcp,wsffi"
        if "--rounds" not in explicit:
            opts.rounds = 1
        if "--duration" not in explicit:
            opts.duration = 0.5
        if "--warmup" not in explicit:
            opts.warmup = 0.2
        if "--idle-conns" not in explicit:
            opts.idle_conns = 200
        if "--settle" not in explicit:
            opts.settle = 0.2
    if opts.output is None:
        opts.output = os.path.join(BENCH, "target", "RESULTS.smoke.md") if opts.smoke else os.path.join(BENCH, "RESULTS.md")

    servers = [s.strip() for s in opts.servers.split(",") if s.strip()]
    scens = [s.strip() for s in opts.scenarios.split(",") if s.strip()]
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s} (have: {', '.join(SERVER_ORDER)})")
    for s in scens:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s} (have: {', '.join(SCENARIOS)})")
    servers.sort(key=SERVER_ORDER.index)
    if not os.path.exists(LOADGEN):
        log(f"run.py: {LOADGEN} not built (make bench-smoke or make bench builds it)")
        return 2
    if shutil.which("taskset") is None:
        log("run.py: taskset not found (util-linux)")
        return 2
    if (os.cpu_count() or 1) < 2:
        log("run.py: needs at least 2 CPUs (server on CPU 0, load generator on CPU 1)")
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = opts.idle_conns + 1024
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(hard, max(want, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            log(f"run.py: open-file limit {new} is below {want}; the idle scenario may fail")
    os.makedirs(LOGS, exist_ok=True)

    skipped = {s: why for s in servers if (why := available(s))}
    active = [s for s in servers if s not in skipped]
    for s, why in skipped.items():
        log(f"note: {SERVERS[s]['label']}: {why}")
    clients = []
    if opts.py_clients == "on" or (opts.py_clients == "auto" and not opts.smoke and any(s.startswith("python-") for s in servers)):
        if available("wsffi"):
            log("note: Python client comparison skipped: build/echo-server not built")
        else:
            for impl, mod in (("wsffi", "wsffi"), ("websockets", "websockets")):
                if py_has(mod):
                    clients.append(impl)
                else:
                    log(f"note: Python client {impl} skipped: module {mod} not installed in bench/python/.venv")
    started = time.monotonic()
    results = []
    total = opts.rounds * (len(scens) * len(active) + len(clients))
    done = 0
    for r in range(opts.rounds):
        rr = {}
        results.append(rr)
        for scen in scens:
            for server in active:
                done += 1
                res = run_one(server, scen, opts, r + 1)
                rr[(scen, server)] = res
                sc = SCENARIOS[scen]
                if res.get("ok"):
                    cpu = res.get("server_cpu_us_per_op")
                    extra = f", server {cpu:.3g} {sc['cpu_unit']}" if cpu is not None and sc["cpu_unit"] else ""
                    log(f"[{done}/{total}] round {r + 1} scenario {scen} {server}: {fmt(res[sc['metric']])} {sc['unit']}{extra}")
                else:
                    log(f"[{done}/{total}] round {r + 1} scenario {scen} {server}: {res.get('note') or 'ERROR ' + res.get('error', '')}")
        for impl in clients:
            done += 1
            res = run_client(impl, opts, r + 1)
            rr[("client", impl)] = res
            if res.get("ok"):
                log(f"[{done}/{total}] round {r + 1} Python client {impl}: {fmt(res['per_sec'])} msg/s")
            else:
                log(f"[{done}/{total}] round {r + 1} Python client {impl}: ERROR {res.get('error', '')}")
    elapsed = time.monotonic() - started
    report, failures = build_report(opts, servers, scens, results, skipped, started, elapsed, tool_versions())
    print()
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(opts.output)), exist_ok=True)
    with open(opts.output, "w") as f:
        f.write(report + kept_sections(opts.output))
    raw = [{f"{k[0]}/{k[1]}": v for k, v in rr.items()} for rr in results]
    with open(os.path.join(LOGS, "results.json"), "w") as f:
        json.dump({"options": vars(opts), "rounds": raw}, f, indent=1)
    ok_runs = sum(1 for rr in results for v in rr.values() if v.get("ok"))
    print(f"{'bench-smoke' if opts.smoke else 'bench'}: {ok_runs} runs ok, {failures} failed; written to {os.path.relpath(opts.output, ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

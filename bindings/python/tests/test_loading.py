"""Library lookup: WSFFI_LIBRARY and WSFFI_USE_SYSTEM override the bundled copy."""

from __future__ import annotations

import os
import subprocess
import sys

import wsffi


def load(env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("WSFFI_LIBRARY", "WSFFI_USE_SYSTEM", "LD_LIBRARY_PATH")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", "import wsffi; print(wsffi.library_path, wsffi.library_version())"],
                          capture_output=True, text=True, timeout=30, env=env)  # fmt: skip


def test_explicit_library_path():
    out = load({"WSFFI_LIBRARY": wsffi.library_path})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [wsffi.library_path, "0.1.0"]


def test_missing_explicit_library_is_an_import_error():
    out = load({"WSFFI_LIBRARY": "/nonexistent/libwsffi.so"})
    assert out.returncode != 0
    assert "ImportError: wsffi: cannot load libwsffi" in out.stderr and "WSFFI_LIBRARY" in out.stderr


def test_use_system_goes_through_the_loader_path(tmp_path):
    # An installed library is found by its SONAME, as the dynamic loader finds it.
    (tmp_path / "libwsffi.so.0.1").symlink_to(wsffi.library_path)
    out = load({"WSFFI_USE_SYSTEM": "1", "LD_LIBRARY_PATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[1] == "0.1.0"
    out = load({"WSFFI_USE_SYSTEM": "1", "LD_LIBRARY_PATH": "/nonexistent"})
    assert out.returncode != 0 and "WSFFI_USE_SYSTEM" in out.stderr

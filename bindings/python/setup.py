"""Build step of the wsffi Python package: puts libwsffi.so into the package.

Which library the package gets (install time):

- ``WSFFI_LIBRARY=/path/libwsffi.so``: nothing is built or bundled; the path is recorded and
  loaded at run time (unless a run-time WSFFI_LIBRARY / WSFFI_USE_SYSTEM overrides it).
- ``WSFFI_USE_SYSTEM=1``: nothing is built or bundled; the system's libwsffi.so is loaded at
  run time.
- otherwise ``cargo build --release --lib`` runs in the repository root (two levels up; ``CARGO``
  names the cargo binary) and the resulting ``target/release/libwsffi.so`` is copied into the
  package. With ``WSFFI_NO_CARGO=1``, or when cargo is not installed, an existing
  ``target/release/libwsffi.so`` is used as it is.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


class BinaryDistribution(Distribution):
    """The wheel holds a shared library: tag it for this platform, not as pure Python."""

    def has_ext_modules(self):
        return True


def _locate_library():
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not target.is_absolute():
        target = ROOT / target
    lib = target / "release" / "libwsffi.so"
    cargo = os.environ.get("CARGO") or shutil.which("cargo")
    if (ROOT / "Cargo.toml").exists() and cargo and not _flag("WSFFI_NO_CARGO"):
        print(f"wsffi: {cargo} build --release --lib in {ROOT}")
        subprocess.run([cargo, "build", "--release", "--lib"], cwd=ROOT, check=True)
    if not lib.exists():
        raise SystemExit(
            f"wsffi: {lib} not found and could not be built (no cargo or no wsffi source tree at {ROOT}). "
            "Install Rust (cargo), or set WSFFI_LIBRARY=/path/to/libwsffi.so or WSFFI_USE_SYSTEM=1."
        )
    return lib


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        pkg = Path(self.build_lib) / "wsffi"
        pkg.mkdir(parents=True, exist_ok=True)
        explicit = os.environ.get("WSFFI_LIBRARY")
        system = _flag("WSFFI_USE_SYSTEM")
        (pkg / "_build_config.py").write_text(
            "# Written at install time by setup.py.\n"
            f"LIBRARY = {str(Path(explicit).resolve()) if explicit else None!r}\n"
            f"USE_SYSTEM = {bool(system and not explicit)!r}\n"
        )
        bundled = pkg / "libwsffi.so"
        if explicit or system:
            if bundled.exists():
                bundled.unlink()
            return
        lib = _locate_library()
        shutil.copy2(lib, bundled)
        print(f"wsffi: bundled {lib}")


setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildPyWithLibrary})

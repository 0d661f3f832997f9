#!/usr/bin/env bash
# Builds the Debian packages of the library from `make install` into a staging root:
#   libwsffi<ABI>    the shared library (SONAME) and its SONAME link
#   libwsffi-dev     header, development link, static library, pkg-config and CMake files,
#                    the split debug info
# Usage: build-deb.sh OUT_DIR VERSION ABI   (run from the repository root)
set -euo pipefail
out=$1 version=$2 abi=$3
make=${MAKE:-make}
arch=$(dpkg --print-architecture)
multiarch=$(gcc -print-multiarch)
runtime=libwsffi$abi
rm -rf "$out"
stage=$out/stage
"$make" --no-print-directory install DESTDIR="$stage" PREFIX=/usr libdir="/usr/lib/$multiarch" >/dev/null

libdir=usr/lib/$multiarch
pkgroot() { mkdir -p "$out/$1/DEBIAN" "$out/$1/usr/share/doc/$1"; }
pkgroot "$runtime"
pkgroot libwsffi-dev
# Runtime: the library and the SONAME link; development: everything else install wrote.
mkdir -p "$out/$runtime/$libdir"
mv "$stage/$libdir/libwsffi.so.$version" "$stage/$libdir/libwsffi.so.$abi" "$out/$runtime/$libdir/"
cp -a "$stage/usr" "$out/libwsffi-dev/"
for p in "$runtime" libwsffi-dev; do
  cat > "$out/$p/usr/share/doc/$p/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: wsffi
Files: *
License: MIT or Apache-2.0
COPY
done

size() { du -sk --exclude=DEBIAN "$out/$1" | cut -f1; }
cat > "$out/$runtime/DEBIAN/control" <<CTRL
Package: $runtime
Version: $version
Architecture: $arch
Multi-Arch: same
Section: libs
Priority: optional
Maintainer: wsffi developers <wsffi@localhost>
Depends: libc6 (>= 2.34), libgcc-s1
Installed-Size: $(size "$runtime")
Description: WebSocket client and server library with a C ABI
 RFC 6455 and RFC 7692 (permessage-deflate) client and server, TLS with rustls,
 driven by an internal reactor thread. This package holds the shared library.
CTRL
cat > "$out/libwsffi-dev/DEBIAN/control" <<CTRL
Package: libwsffi-dev
Version: $version
Architecture: $arch
Multi-Arch: same
Section: libdevel
Priority: optional
Maintainer: wsffi developers <wsffi@localhost>
Depends: $runtime (= $version)
Installed-Size: $(size libwsffi-dev)
Description: WebSocket client and server library with a C ABI (development files)
 The header wsffi.h, the static library, pkg-config (wsffi.pc) and CMake
 (find_package(wsffi)) files, and the shared library's debug info.
CTRL
# ldconfig runs when the shared library arrives or leaves.
printf 'activate-noawait ldconfig\n' > "$out/$runtime/DEBIAN/triggers"
for p in "$runtime" libwsffi-dev; do
  (cd "$out/$p" && find usr -type f -exec md5sum {} + | sort -k 2 > DEBIAN/md5sums)
  dpkg-deb --root-owner-group -Zxz --build "$out/$p" "$out/${p}_${version}_${arch}.deb" >/dev/null
  echo "built $out/${p}_${version}_${arch}.deb"
done
rm -rf "$stage"

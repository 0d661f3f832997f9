#!/usr/bin/env bash
# Installs the library, builds packaging/tests/consumer out of tree against the installed copy
# (pkg-config shared and static, CMake find_package shared and static, and the Go binding
# through `#cgo pkg-config`), runs each program,
# checks the installed files (SONAME, links, stripped library with split debug info, DESTDIR
# staging) and that uninstall leaves nothing; then does the same through the Debian packages
# installed with dpkg -i, and removes them again.
# Usage: run.sh WORK_DIR VERSION ABI   (run from the repository root)
set -euo pipefail
work=$1 version=$2 abi=$3
make=${MAKE:-make}
root=$(pwd)
consumer=$root/packaging/tests/consumer
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
fail() { echo "test-install: $*" >&2; exit 1; }
step() { echo "test-install: $*"; }

run_check() {  # PROGRAM: runs it; it must print the echo and exit 0
  local out
  out=$("$1") || fail "$1 failed: $out"
  [[ $out == *'echoed "hello", clean close'* ]] || fail "$1 printed: $out"
}

check_consumers() {  # LABEL LIBDIR [PKG_CONFIG_PATH] [CMAKE_PREFIX_PATH]
  local label=$1 libdir=$2 pcpath=${3:-} cmprefix=${4:-} dir=$work/consumer-$1
  mkdir -p "$dir"
  local pc=(env PKG_CONFIG_PATH="$pcpath" pkg-config)
  [[ $("${pc[@]}" --modversion wsffi) == "$version" ]] || fail "$label: pkg-config reports $("${pc[@]}" --modversion wsffi)"
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror "$consumer/echo_check.c" -o "$dir/pc-shared" \
    $("${pc[@]}" --cflags --libs wsffi) -Wl,-rpath,"$libdir" -lpthread
  readelf -d "$dir/pc-shared" | grep -q "Shared library: \[libwsffi.so.$abi\]" \
    || fail "$label: pc-shared does not ask for libwsffi.so.$abi"
  [[ $(ldd "$dir/pc-shared" | awk '/libwsffi/ {print $3}') == "$libdir/libwsffi.so.$abi" ]] \
    || fail "$label: pc-shared loads $(ldd "$dir/pc-shared" | grep libwsffi)"
  run_check "$dir/pc-shared"
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror "$consumer/echo_check.c" -o "$dir/pc-static" \
    $("${pc[@]}" --cflags wsffi) -L"$libdir" -Wl,-Bstatic -lwsffi -Wl,-Bdynamic \
    $("${pc[@]}" --static --libs-only-l wsffi | sed 's/-lwsffi//')
  ! ldd "$dir/pc-static" | grep -q libwsffi || fail "$label: pc-static links the shared library"
  run_check "$dir/pc-static"
  cmake -S "$consumer" -B "$dir/cmake" ${cmprefix:+-DCMAKE_PREFIX_PATH="$cmprefix"} >"$dir/cmake.log" 2>&1 \
    || { cat "$dir/cmake.log" >&2; fail "$label: cmake configure failed"; }
  cmake --build "$dir/cmake" >>"$dir/cmake.log" 2>&1 || { cat "$dir/cmake.log" >&2; fail "$label: cmake build failed"; }
  run_check "$dir/cmake/echo_check"
  run_check "$dir/cmake/echo_check_static"
  ! ldd "$dir/cmake/echo_check_static" | grep -q libwsffi || fail "$label: the static CMake target links the shared library"
  step "$label: pkg-config (shared, static) and CMake find_package (wsffi::wsffi, wsffi::wsffi_static) programs echo"
}

# 1. make install into a prefix.
prefix=$work/prefix
"$make" --no-print-directory install PREFIX="$prefix" >/dev/null
lib=$prefix/lib
[[ $(readlink "$lib/libwsffi.so") == "libwsffi.so.$abi" ]] || fail "libwsffi.so -> $(readlink "$lib/libwsffi.so")"
[[ $(readlink "$lib/libwsffi.so.$abi") == "libwsffi.so.$version" ]] || fail "libwsffi.so.$abi -> $(readlink "$lib/libwsffi.so.$abi")"
readelf -d "$lib/libwsffi.so.$version" | grep -q "Library soname: \[libwsffi.so.$abi\]" || fail "SONAME is not libwsffi.so.$abi"
! readelf -S "$lib/libwsffi.so.$version" | grep -q '\.debug_info' || fail "the installed library is not stripped"
readelf -p .gnu_debuglink "$lib/libwsffi.so.$version" | grep -q "libwsffi.so.$version.debug" || fail "no debug link"
readelf -S "$lib/.debug/libwsffi.so.$version.debug" | grep -q '\.debug_info' || fail "the split debug file has no debug info"
cmp -s include/wsffi.h "$prefix/include/wsffi.h" || fail "installed header differs"
step "install: SONAME libwsffi.so.$abi, links, stripped library, debug info in lib/.debug"
check_consumers prefix "$lib" "$lib/pkgconfig" "$prefix"

# The Go binding through `#cgo pkg-config: wsffi` (build tag wsffi_system) against the same copy.
gobin=$work/go-echo
(cd bindings/go && PKG_CONFIG_PATH="$lib/pkgconfig" go build -tags wsffi_system -o "$gobin" ./examples/echo) \
  || fail "go build -tags wsffi_system failed"
[[ $(LD_LIBRARY_PATH=$lib ldd "$gobin" | awk '/libwsffi/ {print $3}') == "$lib/libwsffi.so.$abi" ]] \
  || fail "the Go example does not load the installed library: $(LD_LIBRARY_PATH=$lib ldd "$gobin" | grep libwsffi)"
(cd bindings/go && PKG_CONFIG_PATH="$lib/pkgconfig" LD_LIBRARY_PATH="$lib" \
  go test -tags wsffi_system -count=1 -run 'TestEchoHandlerServer|TestBroadcast|TestCloseCodes' . >"$work/go-test.log" 2>&1) \
  || { cat "$work/go-test.log" >&2; fail "Go binding tests against the installed library failed"; }
step "prefix: the Go binding builds through pkg-config and its tests pass against the installed library"

# 2. uninstall removes everything install wrote.
"$make" --no-print-directory uninstall PREFIX="$prefix" >/dev/null
left=$(find "$prefix" ! -type d)
[[ -z $left ]] || fail "uninstall left: $left"
step "uninstall: nothing left under the prefix"

# 3. DESTDIR staging writes under DESTDIR with the final paths inside the files.
stage=$work/stage
"$make" --no-print-directory install DESTDIR="$stage" PREFIX=/opt/wsffi >/dev/null
[[ -f $stage/opt/wsffi/lib/libwsffi.so.$version && -f $stage/opt/wsffi/include/wsffi.h ]] || fail "DESTDIR layout"
grep -qx 'prefix=/opt/wsffi' "$stage/opt/wsffi/lib/pkgconfig/wsffi.pc" || fail "wsffi.pc does not name the final prefix"
grep -q '"/opt/wsffi/lib/libwsffi.so.'"$version"'"' "$stage/opt/wsffi/lib/cmake/wsffi/wsffiConfig.cmake" \
  || fail "wsffiConfig.cmake does not name the final path"
"$make" --no-print-directory uninstall DESTDIR="$stage" PREFIX=/opt/wsffi >/dev/null
left=$(find "$stage" ! -type d)
[[ -z $left ]] || fail "uninstall with DESTDIR left: $left"
step "DESTDIR: staged under DESTDIR, final paths in wsffi.pc and the CMake package; uninstall clean"

# 4. The Debian packages, installed with dpkg -i and removed again.
if [[ $(id -u) == 0 ]]; then sudo=; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=sudo
else fail "installing the .deb needs root (or passwordless sudo)"; fi
"$make" --no-print-directory deb BUILD="$work" >/dev/null
arch=$(dpkg --print-architecture)
runtime=libwsffi$abi
for p in "$runtime" libwsffi-dev; do
  dpkg-deb --info "$work/deb/${p}_${version}_${arch}.deb" >/dev/null || fail "$p: not a valid package"
done
dpkg-deb --contents "$work/deb/${runtime}_${version}_${arch}.deb" | grep -q "libwsffi.so.$abi -> libwsffi.so.$version" \
  || fail "$runtime lacks the SONAME link"
# Nothing of an earlier run may remain installed: the test owns these package names.
$sudo dpkg -r libwsffi-dev "$runtime" >/dev/null 2>&1 || true
trap '$sudo dpkg -r libwsffi-dev "$runtime" >/dev/null 2>&1 || true' EXIT
$sudo dpkg -i "$work/deb/${runtime}_${version}_${arch}.deb" "$work/deb/libwsffi-dev_${version}_${arch}.deb" >/dev/null
multiarch=$(gcc -print-multiarch)
[[ -f /usr/lib/$multiarch/libwsffi.so.$version ]] || fail "dpkg -i did not install the library"
check_consumers deb "/usr/lib/$multiarch"
$sudo dpkg -r libwsffi-dev "$runtime" >/dev/null
trap - EXIT
[[ ! -e /usr/lib/$multiarch/libwsffi.so.$abi && ! -e /usr/include/wsffi.h ]] || fail "dpkg -r left files"
step "deb: $runtime and libwsffi-dev install with dpkg -i, programs build and echo, dpkg -r removes them"

#!/bin/sh
# Builds bench/target/lws-echo against Debian's libwebsockets-dev, installing the package
# when it is missing and apt-get can get it. Never fails the benchmark: without the
# library the libwebsockets server is skipped with a note.
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../target/lws-echo"
cc=${CC:-gcc}

have_lws() { pkg-config --exists libwebsockets 2>/dev/null; }

if ! have_lws; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "bench: installing libwebsockets-dev"
        timeout 600 apt-get install -y -q libwebsockets-dev >/dev/null 2>&1 ||
            { timeout 300 apt-get update -q >/dev/null 2>&1 &&
              timeout 600 apt-get install -y -q libwebsockets-dev >/dev/null 2>&1; }
    fi
fi
if ! have_lws; then
    echo "bench: note: libwebsockets-dev is not installable here; the libwebsockets server is skipped"
    exit 0
fi
if [ -x "$out" ] && [ "$out" -nt "$here/echo.c" ]; then
    exit 0
fi
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2046
if ! $cc -std=c11 -O2 -g -Wall -Wextra -o "$out" "$here/echo.c" $(pkg-config --cflags --libs libwebsockets); then
    echo "bench: note: lws-echo did not build; the libwebsockets server is skipped"
    rm -f "$out"
fi
exit 0

# wsffi build and test entry points.
#   make          library (release), header check, examples, C tests
#   make demo     build, then run the chat demo with clients talking to it
#   make test     lint (rustfmt, clippy), then every test: Rust, C (plain, valgrind, AddressSanitizer), the C++
#                 binding (ASan+UBSan), interop with real peers, benchmark and fuzz smoke runs
#   make tsan     C tests under ThreadSanitizer (needs a nightly toolchain)
#   make header   regenerate include/wsffi.h after changing src/ffi
#   make install  / uninstall / deb / docs: see packaging/install.mk and packaging/docs.mk

CARGO   ?= cargo
CC      ?= gcc
PYTHON  ?= python3
BUILD   := build
LIBDIR  := target/release
CFLAGS  ?= -std=c11 -O2 -g -Wall -Wextra -Wpedantic -Werror
INCLUDES := -Iinclude
LDLIBS  := -L$(LIBDIR) -lwsffi -Wl,-rpath,$(abspath $(LIBDIR)) -lpthread

EXAMPLES := $(BUILD)/echo-server

.PHONY: all lib header test test-rust test-reactor lint clean

all: lib $(EXAMPLES)

lib:
	$(CARGO) build --release --lib
	@# Programs linked with -lwsffi ask for the SONAME (build.rs); in the build tree it is this link.
	@ln -sf libwsffi.so $(LIBDIR)/libwsffi.so.$(WSFFI_ABI)

header:
	WSFFI_BLESS=1 $(CARGO) test --test header

$(BUILD):
	mkdir -p $(BUILD)

$(BUILD)/%: examples/%.c include/wsffi.h lib | $(BUILD)
	$(CC) $(CFLAGS) $(INCLUDES) $< -o $@ $(LDLIBS)

test: lint all test-rust test-c test-asan test-cpp test-go test-python test-node test-interop bench-smoke fuzz-smoke soak-smoke test-install docs

# tests/proxy.rs needs tinyproxy and microsocks (tests/proxy/proxy.mk).
test-rust: proxy-tools
	$(CARGO) test --release

# The reactor's Rust API alone (tests/reactor.rs; also part of test-rust).
test-reactor:
	$(CARGO) test --release --test reactor

# Formatting (rustfmt.toml) and clippy with warnings as errors, over every target.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets --release -- -D warnings

# Each part of the test suite keeps its own rules next to its files.
include examples/examples.mk
include c-tests/tests.mk
include c-tests/sanitizers.mk
include c-tests/soak.mk
include tests/interop/interop.mk
include tests/proxy/proxy.mk
include bench/bench.mk
include fuzz/fuzz.mk
include packaging/install.mk
include packaging/docs.mk
include bindings/cpp/cpp.mk
include bindings/go/go.mk
include bindings/python/python.mk
include bindings/node/node.mk

clean:
	rm -rf $(BUILD)
	$(CARGO) clean

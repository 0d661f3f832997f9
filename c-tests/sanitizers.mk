# The C tests under sanitizers (valgrind's memcheck pass is part of `make test-c`).
#   make test-asan  every C test case compiled with AddressSanitizer (+ LeakSanitizer),
#                   against the release library; part of `make test`.
#   make tsan       every C test case under ThreadSanitizer, against a library built with
#                   -Zsanitizer=thread (needs a nightly toolchain with rust-src: the
#                   standard library is rebuilt instrumented, so TSan sees every lock; the
#                   tests link the Rust toolchain's TSan runtime, which matches the
#                   library's instrumentation).
C_ASAN_BUILD := $(BUILD)/c-tests-asan
C_TSAN_BUILD := $(BUILD)/c-tests-tsan
TSAN_TARGET  := $(BUILD)/tsan-target
TSAN_TRIPLE  ?= x86_64-unknown-linux-gnu

.PHONY: test-asan tsan

test-asan: all $(TLS_TEST_CERTS)
	$(CMAKE) -S $(C_TESTS_DIR) -B $(C_ASAN_BUILD) -DWSFFI_ROOT=$(CURDIR) -DWSFFI_SANITIZE=address
	$(CMAKE) --build $(C_ASAN_BUILD) -j2
	cd $(C_ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		$(CTEST) --output-on-failure --no-tests=error -L '^plain$$' -j$(C_TESTS_JOBS)

tsan: header $(TLS_TEST_CERTS)
	@if ! $(CARGO) +nightly --version >/dev/null 2>&1; then \
		echo "tsan: a nightly toolchain is needed (rustup toolchain install nightly --component rust-src)"; exit 1; fi
	RUSTFLAGS="-Zsanitizer=thread" CARGO_TARGET_DIR=$(TSAN_TARGET) \
		$(CARGO) +nightly build --release -Zbuild-std --target $(TSAN_TRIPLE) --lib
	$(CMAKE) -S $(C_TESTS_DIR) -B $(C_TSAN_BUILD) -DWSFFI_ROOT=$(CURDIR) -DWSFFI_SANITIZE=thread \
		-DWSFFI_LIB_DIR=$(CURDIR)/$(TSAN_TARGET)/$(TSAN_TRIPLE)/release \
		-DWSFFI_SANITIZER_RUNTIME=$$(rustc +nightly --print sysroot)/lib/rustlib/$(TSAN_TRIPLE)/lib/librustc-nightly_rt.tsan.a
	$(CMAKE) --build $(C_TSAN_BUILD) -j2
	cd $(C_TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" WSFFI_TEST_SLOW=4 \
		$(CTEST) --output-on-failure --no-tests=error -L '^plain$$' -j2

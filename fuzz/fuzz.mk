# Fuzzing with cargo-fuzz and libFuzzer (see fuzz/README.md).
#   make fuzz         each target for FUZZ_SECONDS (default 60), corpus kept in fuzz/corpus/
#   make fuzz-smoke   build every target, run each for FUZZ_SMOKE_SECONDS (default 5);
#                     part of `make test`
#   make fuzz-build   build only
# Works on the stable toolchain: RUSTC_BOOTSTRAP lets cargo-fuzz pass its nightly flags, and
# no sanitizer is used (the code under test is safe Rust). cargo-fuzz is installed when missing.

FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_TARGETS       := frame_header handshake_request handshake_response inflate session_server session_client
FUZZ_ENV           := RUSTC_BOOTSTRAP=1
FUZZ_FLAGS         := --sanitizer none --debug-assertions
FUZZ_LIBFUZZER     := -print_final_stats=1 -max_len=4096
FUZZ_STATS         := $(BUILD)/fuzz-stats

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-tools

fuzz-tools:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) fuzz --version >/dev/null 2>&1 || \
		$(CARGO) install cargo-fuzz --locked

fuzz-build: fuzz-tools
	$(FUZZ_ENV) $(CARGO) fuzz build $(FUZZ_FLAGS)

# $(1): seconds per target, $(2): corpus directory root (new inputs are written there),
# $(3): log directory. Stops at the first target that fails; the crashing input is in
# fuzz/artifacts/<target>/.
define fuzz_run
	@mkdir -p $(3)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(2)/$$t; \
		echo "fuzz: $$t for $(1)s"; \
		$(FUZZ_ENV) $(CARGO) fuzz run $(FUZZ_FLAGS) $$t $(2)/$$t fuzz/seeds/$$t -- \
			-max_total_time=$(1) $(FUZZ_LIBFUZZER) > $(3)/$$t.log 2>&1 || { \
			tail -n 60 $(3)/$$t.log; echo "fuzz: $$t FAILED (log: $(3)/$$t.log)"; exit 1; }; \
	done
	@echo "fuzz: executions per target ($(1)s each)"
	@for t in $(FUZZ_TARGETS); do \
		printf '  %-20s %12s execs  %8s exec/s\n' $$t \
			"$$(sed -n 's/^stat::number_of_executed_units: *//p' $(3)/$$t.log)" \
			"$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(3)/$$t.log)"; \
	done
endef

fuzz: fuzz-build
	$(call fuzz_run,$(FUZZ_SECONDS),fuzz/corpus,$(FUZZ_STATS)/fuzz)

# The smoke run grows a throwaway corpus so repeated runs stay comparable.
fuzz-smoke: fuzz-build
	@rm -rf $(BUILD)/fuzz-smoke-corpus
	$(call fuzz_run,$(FUZZ_SMOKE_SECONDS),$(BUILD)/fuzz-smoke-corpus,$(FUZZ_STATS)/smoke)

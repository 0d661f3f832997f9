# Soak test: thousands of loopback connections churned by several threads for a while, every
# message checked end to end, lifecycle and reference counts balanced, RSS compared with its
# value after warm-up (see the comment at the top of c-tests/soak.c).
#   make soak            SOAK_SECONDS (default 120) with 4 threads x 64 connections
#   make soak-smoke      15 s, same checks; part of `make test`
#   make soak-asan       the smoke run built with AddressSanitizer and UBSan (leaks in the
#                        library's allocations show up too: it uses the system allocator)
#   make soak-valgrind   a short, smaller run under valgrind (slow)
# Extra options for any of them: SOAK_ARGS="--seed 1234 --same-reactor ...".
SOAK_SECONDS       ?= 120
SOAK_SMOKE_SECONDS ?= 15
SOAK_THREADS       ?= 4
SOAK_CONNS         ?= 64
SOAK_ARGS          ?=
SOAK_SRC           := c-tests/soak.c
SOAK_SANITIZE      := -fsanitize=address,undefined -fno-omit-frame-pointer
VALGRIND           ?= valgrind

.PHONY: soak soak-smoke soak-asan soak-valgrind

$(BUILD)/soak: $(SOAK_SRC) include/wsffi.h lib | $(BUILD)
	$(CC) $(CFLAGS) $(INCLUDES) $< -o $@ $(LDLIBS)

# -O1 for readable sanitizer reports; the RSS bound is wider (shadow memory, quarantine).
$(BUILD)/soak-asan: $(SOAK_SRC) include/wsffi.h lib | $(BUILD)
	$(CC) $(filter-out -O2,$(CFLAGS)) -O1 $(SOAK_SANITIZE) $(INCLUDES) $< -o $@ $(LDLIBS)

soak: all $(BUILD)/soak
	$(BUILD)/soak --seconds $(SOAK_SECONDS) --threads $(SOAK_THREADS) --conns-per-thread $(SOAK_CONNS) $(SOAK_ARGS)

soak-smoke: all $(BUILD)/soak
	$(BUILD)/soak --seconds $(SOAK_SMOKE_SECONDS) --threads $(SOAK_THREADS) --conns-per-thread $(SOAK_CONNS) \
		--progress-seconds 5 $(SOAK_ARGS)

soak-asan: all $(BUILD)/soak-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(BUILD)/soak-asan --seconds $(SOAK_SMOKE_SECONDS) --threads $(SOAK_THREADS) --conns-per-thread $(SOAK_CONNS) \
		--progress-seconds 5 --rss-limit-mib 512 $(SOAK_ARGS)

soak-valgrind: all $(BUILD)/soak
	$(VALGRIND) --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--fair-sched=yes $(BUILD)/soak --seconds 20 --threads 2 --conns-per-thread 8 --max-len 16384 \
		--progress-seconds 5 --rss-limit-mib 256 $(SOAK_ARGS)

# C tests of the header through the shared library (c-tests/, CMake + ctest).
#   make test-c   configure into build/c-tests, build with -Wall -Wextra -Wpedantic -Werror,
#                 run every case, then every case again under valgrind.
# Both passes always run; the target fails when either has a failure.
C_TESTS_DIR   := c-tests
C_TESTS_BUILD := $(BUILD)/c-tests
CMAKE         ?= cmake
CTEST         ?= ctest
# Cases mostly wait on sockets and timers, so more jobs than cores pays off for the plain
# pass; valgrind runs are CPU bound.
C_TESTS_JOBS          ?= 6
C_TESTS_VALGRIND_JOBS ?= 3

.PHONY: test-c
test-c: all $(TLS_TEST_CERTS)
	$(CMAKE) -S $(C_TESTS_DIR) -B $(C_TESTS_BUILD) -DWSFFI_ROOT=$(CURDIR)
	$(CMAKE) --build $(C_TESTS_BUILD) -j2
	@status=0; \
	cd $(C_TESTS_BUILD) && \
	{ $(CTEST) --output-on-failure --no-tests=error -L '^plain$$' -j$(C_TESTS_JOBS) || status=1; } && \
	{ $(CTEST) --output-on-failure --no-tests=error -L '^valgrind$$' -j$(C_TESTS_VALGRIND_JOBS) || status=1; } && \
	exit $$status

# The broadcast case of test_backpressure with 10000 clients (a child process holds the
# client sockets), one of which never reads: 45-110 s on two cores, so not part of
# test-c, whose run of the same case uses 1000 clients.
.PHONY: test-broadcast-10k
test-broadcast-10k: all
	$(CMAKE) -S $(C_TESTS_DIR) -B $(C_TESTS_BUILD) -DWSFFI_ROOT=$(CURDIR)
	$(CMAKE) --build $(C_TESTS_BUILD) -j2 --target test_backpressure
	ulimit -n $$(ulimit -Hn) && WSFFI_BROADCAST_CLIENTS=10000 \
	  $(C_TESTS_BUILD)/test_backpressure broadcast_to_many_clients_with_one_that_never_reads

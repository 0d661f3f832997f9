# Examples beyond echo-server, and `make demo`.
CHAT_EXAMPLES := $(BUILD)/chat-server $(BUILD)/chat-client
EXAMPLES += $(CHAT_EXAMPLES)
# The top Makefile's `all: lib $(EXAMPLES)` was read before this file, so name them again.
all: $(CHAT_EXAMPLES)

# Writes fresh test certificates and keys (rcgen) for the C and interop TLS tests:
# build/tls-test-certs DIR.
TLS_TEST_CERTS := $(BUILD)/tls-test-certs
$(TLS_TEST_CERTS): examples/tls-test-certs.rs tests/support/certs.rs Cargo.toml | $(BUILD)
	$(CARGO) build --release --example tls-test-certs
	cp target/release/examples/tls-test-certs $@

# A chat server and three scripted clients; prints what each client saw.
.PHONY: demo
demo: all
	@bash examples/demo.sh $(BUILD)

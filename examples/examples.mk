# Examples beyond echo-server, and `make demo`.
CHAT_EXAMPLES := $(BUILD)/chat-server $(BUILD)/chat-client
EXAMPLES += $(CHAT_EXAMPLES)
# The top Makefile's `all: lib $(EXAMPLES)` was read before this file, so name them again.
all: $(CHAT_EXAMPLES)

# A chat server and three scripted clients; prints what each client saw.
.PHONY: demo
demo: all
	@bash examples/demo.sh $(BUILD)

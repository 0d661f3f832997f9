# Node binding: its npm dependencies pinned by package-lock.json (koffi ships prebuilt
# binaries on the registry, so nothing is compiled), then `node --test`.
NODE_DIR := bindings/node

.PHONY: test-node node-deps
node-deps:
	@if [ ! -f $(NODE_DIR)/node_modules/.installed ] || [ $(NODE_DIR)/package-lock.json -nt $(NODE_DIR)/node_modules/.installed ]; then \
		cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	fi

test-node: lib node-deps
	cd $(NODE_DIR) && env -u WSFFI_LIBRARY node --test --test-concurrency=1 test/

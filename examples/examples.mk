# Examples beyond echo-server, and `make demo`.
.PHONY: demo
demo: all
	@echo "demo: not written yet"; exit 1

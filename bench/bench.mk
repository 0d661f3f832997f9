# Benchmarks beside the peers.
.PHONY: bench
bench: all
	@echo "bench: not written yet"; exit 1

# Echo-server benchmark (see bench/README.md).
#   make bench         full run: every server, every scenario, 3 interleaved rounds;
#                      writes bench/RESULTS.md. Extra runner options: BENCH_ARGS="--duration 5 ..."
#   make bench-smoke   a few seconds on the plain TCP echo and wsffi: proves the harness works
#                      (no timing assertion; called by `make test`)
#   make bench-core    speed of the protocol core alone (permessage-deflate, masking)

BENCH_CARGO := $(CARGO) build --release --manifest-path bench/Cargo.toml
BENCH_ARGS  ?=
GO          ?= go

.PHONY: bench bench-smoke bench-core bench-tools bench-tools-min bench-node bench-python bench-lws bench-go

bench-tools-min:
	$(BENCH_CARGO) -p loadgen -p tcp-echo

bench-tools:
	$(BENCH_CARGO)

# Node ws, pinned by bench/node/package-lock.json.
bench-node:
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "bench: note: npm not found; the Node ws server is skipped"; \
	elif [ ! -f bench/node/node_modules/.installed ] || [ bench/node/package-lock.json -nt bench/node/node_modules/.installed ]; then \
		(cd bench/node && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed) || \
		echo "bench: note: npm ci failed; the Node ws server is skipped"; \
	fi
	@command -v npm >/dev/null 2>&1 && $(MAKE) --no-print-directory node-deps || \
		echo "bench: note: the Node binding's dependencies are missing; its server is skipped"

# Python websockets, pinned by bench/python/requirements.txt, in its own virtualenv.
bench-python:
	@if [ ! -f bench/python/.venv/.installed ] || [ bench/python/requirements.txt -nt bench/python/.venv/.installed ]; then \
		($(PYTHON) -m venv bench/python/.venv && \
		 bench/python/.venv/bin/pip install -q --disable-pip-version-check -r bench/python/requirements.txt && \
		 touch bench/python/.venv/.installed) || \
		echo "bench: note: could not install websockets; the Python server is skipped"; \
	fi
	@if [ -x bench/python/.venv/bin/pip ]; then \
		bench/python/.venv/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps ./bindings/python || \
		echo "bench: note: could not install bindings/python; the wsffi Python server and client are skipped"; \
	fi

# Go echo servers (bench/go: wsffi's Go binding, gorilla/websocket, coder/websocket, pinned by
# bench/go/go.sum) into bench/target/. Needs the library (target/release/libwsffi.so).
bench-go: lib
	@if ! command -v $(GO) >/dev/null 2>&1; then \
		echo "bench: note: go not found; the Go servers are skipped"; \
	else \
		(cd bench/go && $(GO) build -o ../target/go-wsffi-echo ./wsffi-echo && \
		 $(GO) build -o ../target/go-gorilla-echo ./gorilla-echo && \
		 $(GO) build -o ../target/go-coder-echo ./coder-echo) || \
		echo "bench: note: go build failed; the Go servers are skipped"; \
	fi

bench-lws:
	@CC="$(CC)" sh bench/lws/build.sh

bench-smoke: all bench-tools-min
	$(PYTHON) bench/run.py --smoke

bench: all bench-tools bench-node bench-python bench-lws bench-go cpp-echo-server
	$(PYTHON) bench/run.py $(BENCH_ARGS)

# Speed of the protocol core alone (permessage-deflate, masking): prints figures.
bench-core:
	$(BENCH_CARGO) -p core-speed
	bench/target/release/core-speed

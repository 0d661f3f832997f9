# tests/proxy.rs runs clients through real proxies: Debian's tinyproxy (HTTP CONNECT) and
# microsocks (SOCKS5), installed with apt-get only when missing, started by the tests themselves.
PROXY_PACKAGES := tinyproxy microsocks

.PHONY: proxy-tools test-proxy
proxy-tools:
	@missing=; for p in $(PROXY_PACKAGES); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	  else echo "proxy-tools:$$missing missing and installing needs root (or sudo)" >&2; exit 1; fi; \
	  echo "installing$$missing (apt-get)"; \
	  log=$$(mktemp); \
	  { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  } >$$log 2>&1 || { cat $$log >&2; rm -f $$log; echo "proxy-tools: install failed" >&2; exit 1; }; \
	  rm -f $$log; \
	fi

# Also part of test-rust (cargo test runs every integration test); this runs it alone.
test-proxy: proxy-tools
	$(CARGO) test --release --test proxy

# Headless Chromium for test_browser.py (a real browser's WebSocket against build/echo-server).
# Debian's chromium package is installed only when it is missing; playwright-core (pinned in
# package.json) drives it, and its own browser downloads are never used.
INTEROP_CHROMIUM := /usr/bin/chromium

.PHONY: interop-browser
interop-browser:
	@if [ ! -x $(INTEROP_CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	  else echo "interop-browser: $(INTEROP_CHROMIUM) is missing and installing it needs root (or sudo)" >&2; exit 1; fi; \
	  echo "installing chromium (apt-get)"; \
	  log=$$(mktemp); \
	  { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  } >$$log 2>&1 || { cat $$log >&2; rm -f $$log; echo "interop-browser: chromium install failed" >&2; exit 1; }; \
	  rm -f $$log; \
	  [ -x $(INTEROP_CHROMIUM) ] || { echo "interop-browser: chromium installed but $(INTEROP_CHROMIUM) is missing" >&2; exit 1; }; \
	fi

test-interop: interop-browser

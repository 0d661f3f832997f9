# Interop with real peers: Python websockets and Node ws clients against build/echo-server,
# build/probe-client (the wsffi client) against websockets and ws servers, and hand-built
# protocol violations against build/echo-server. Peers are pinned in requirements.txt and
# package-lock.json and installed here, so the target works on a fresh machine.
INTEROP_DIR   := tests/interop
INTEROP_PROBE := $(BUILD)/probe-client
NPM           ?= npm
include $(INTEROP_DIR)/browser.mk

.PHONY: test-interop
test-interop: all $(INTEROP_PROBE) $(TLS_TEST_CERTS)
	$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore -r $(INTEROP_DIR)/requirements.txt
	cd $(INTEROP_DIR) && $(NPM) ci --silent --no-audit --no-fund
	$(PYTHON) -m pytest $(INTEROP_DIR)

$(INTEROP_PROBE): $(INTEROP_DIR)/probe-client.c include/wsffi.h lib | $(BUILD)
	$(CC) $(CFLAGS) $(INCLUDES) $< -o $@ $(LDLIBS)

# The HTML API reference from the header: make docs -> build/docs/html/index.html.
# Doxygen comes from Debian (installed with apt-get when missing); any warning fails the build.
DOXYGEN ?= doxygen

.PHONY: docs
docs: header-check
	@if ! command -v $(DOXYGEN) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	  else echo "docs: doxygen is missing and installing it needs root (or sudo)" >&2; exit 1; fi; \
	  echo "installing doxygen (apt-get)"; \
	  log=$$(mktemp); \
	  { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends doxygen; \
	  } >$$log 2>&1 || { cat $$log >&2; rm -f $$log; echo "docs: doxygen install failed" >&2; exit 1; }; \
	  rm -f $$log; \
	fi
	@rm -rf $(BUILD)/docs && mkdir -p $(BUILD)/docs
	@( cat docs/Doxyfile; echo "PROJECT_NUMBER = $(WSFFI_VERSION)"; echo "OUTPUT_DIRECTORY = $(BUILD)/docs"; \
	   echo "WARN_LOGFILE = $(BUILD)/docs/warnings.log" ) | $(DOXYGEN) - >$(BUILD)/docs/doxygen.log 2>&1 \
	  || { cat $(BUILD)/docs/doxygen.log >&2; exit 1; }
	@if [ -s $(BUILD)/docs/warnings.log ]; then cat $(BUILD)/docs/warnings.log >&2; echo "docs: doxygen warnings" >&2; exit 1; fi
	@$(PYTHON) docs/check_reference.py include/wsffi.h $(BUILD)/docs/html
	@echo "API reference: $(BUILD)/docs/html/index.html"

# Python bindings: a fresh venv under build/, the package installed from bindings/python
# (non-editable, so the build step that bundles libwsffi.so is exercised), then its tests.
PY_DIR  := bindings/python
PY_VENV := $(BUILD)/py-venv

.PHONY: test-python
test-python: lib $(TLS_TEST_CERTS)
	rm -rf $(PY_VENV)
	$(PYTHON) -m venv $(PY_VENV)
	$(PY_VENV)/bin/pip install -q --disable-pip-version-check ./$(PY_DIR) pytest -r tests/interop/requirements.txt
	cd $(PY_DIR)/tests && $(abspath $(PY_VENV))/bin/python -c \
	  "import wsffi; assert 'site-packages' in wsffi.__file__ and 'site-packages' in wsffi.library_path, wsffi.__file__"
	cd $(PY_DIR)/tests && env -u WSFFI_LIBRARY -u WSFFI_USE_SYSTEM WSFFI_TEST_CERTS_TOOL=$(abspath $(TLS_TEST_CERTS)) $(abspath $(PY_VENV))/bin/python -m pytest -q -p no:cacheprovider .

# The C++ binding (bindings/cpp): header-only wsffi.hpp, its GoogleTest cases and examples.
#   make test-cpp         configure into build/cpp, build the tests and examples with
#                         -Wall -Wextra -Wpedantic -Werror under AddressSanitizer + UBSan,
#                         run every case with ctest
#   make cpp-echo-server  build/cpp-echo-server: the C++ echo example, optimized and without
#                         sanitizers, for `make bench`
CPP_DIR      := bindings/cpp
CPP_BUILD    := $(BUILD)/cpp
CMAKE        ?= cmake
CTEST        ?= ctest
CPP_CXXFLAGS ?= -std=c++17 -O2 -g -Wall -Wextra -Wpedantic -Werror
# Cases wait on sockets and timers more than they compute.
CPP_TESTS_JOBS ?= 4

.PHONY: test-cpp cpp-echo-server

test-cpp: lib $(TLS_TEST_CERTS)
	$(CMAKE) -S $(CPP_DIR) -B $(CPP_BUILD) -DWSFFI_ROOT=$(CURDIR) -DWSFFI_TLS_CERTS_TOOL=$(CURDIR)/$(TLS_TEST_CERTS)
	$(CMAKE) --build $(CPP_BUILD) -j2
	cd $(CPP_BUILD) && $(CTEST) --output-on-failure --no-tests=error -j$(CPP_TESTS_JOBS)

cpp-echo-server: $(BUILD)/cpp-echo-server

$(BUILD)/cpp-echo-server: $(CPP_DIR)/examples/echo_server.cpp $(CPP_DIR)/include/wsffi.hpp include/wsffi.h lib | $(BUILD)
	$(CXX) $(CPP_CXXFLAGS) $(INCLUDES) -I$(CPP_DIR)/include $< -o $@ $(LDLIBS)

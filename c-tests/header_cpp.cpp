// Compile-only check: wsffi.h is valid C++17 (-std=c++17 -Wall -Wextra -Werror -pedantic),
// with C linkage for every function.
#include "wsffi.h"
#include "wsffi.h"  // the include guard works

#include <cstring>
#include <type_traits>

static_assert(WSFFI_VERSION_NUMBER == ((WSFFI_VERSION_MAJOR << 16) | (WSFFI_VERSION_MINOR << 8) | WSFFI_VERSION_PATCH),
              "version number");
static_assert(WSFFI_OPEN == 1 && WSFFI_CLOSED == 3, "ready states");
static_assert(sizeof(wsffi_status) == 4, "wsffi_status is 32 bits");
static_assert(std::is_same<decltype(wsffi_version_number()), uint32_t>::value, "version number type");
static_assert(std::is_same<decltype(wsffi_send_text(nullptr, nullptr, 0)), wsffi_status>::value, "status type");
static_assert(std::is_trivial<wsffi_conn_callbacks>::value, "callback tables are plain C structs");
static_assert(std::is_trivial<wsffi_server_callbacks>::value, "callback tables are plain C structs");
static_assert(std::is_trivial<wsffi_close_info>::value && sizeof(wsffi_close_origin) == 4, "close info is a plain C struct");

using std::memset;

#define HEADER_CALLS_FN header_calls_cpp
#include "header_calls.inc"

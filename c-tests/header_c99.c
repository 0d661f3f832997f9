/* Compile-only check: wsffi.h is valid C99 (-std=c99 -Wall -Wextra -Werror -pedantic). */
#include "wsffi.h"
#include "wsffi.h" /* the include guard works */

#include <string.h>

/* C99 has no _Static_assert: a negative array size fails the build instead. */
#define HEADER_ASSERT(name, cond) typedef char header_assert_##name[(cond) ? 1 : -1]

HEADER_ASSERT(version, WSFFI_VERSION_NUMBER == ((WSFFI_VERSION_MAJOR << 16) | (WSFFI_VERSION_MINOR << 8) | WSFFI_VERSION_PATCH));
HEADER_ASSERT(states, WSFFI_CONNECTING == 0 && WSFFI_OPEN == 1 && WSFFI_CLOSING == 2 && WSFFI_CLOSED == 3);
HEADER_ASSERT(kinds, WSFFI_TEXT == 1 && WSFFI_BINARY == 2);
HEADER_ASSERT(status_size, sizeof(wsffi_status) == 4);
HEADER_ASSERT(ok, WSFFI_STATUS_OK == 0);

#define HEADER_CALLS_FN header_calls_c99
#include "header_calls.inc"

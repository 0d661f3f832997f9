/* Compile-only check: wsffi.h is valid C11 (-std=c11 -Wall -Wextra -Werror -pedantic). */
#include "wsffi.h"
#include "wsffi.h" /* the include guard works */

#include <string.h>

_Static_assert(WSFFI_VERSION_NUMBER == ((WSFFI_VERSION_MAJOR << 16) | (WSFFI_VERSION_MINOR << 8) | WSFFI_VERSION_PATCH),
               "version number");
_Static_assert(WSFFI_CONNECTING == 0 && WSFFI_OPEN == 1 && WSFFI_CLOSING == 2 && WSFFI_CLOSED == 3, "ready states");
_Static_assert(WSFFI_TEXT == 1 && WSFFI_BINARY == 2, "message types");
_Static_assert(WSFFI_OPCODE_CONTINUE == 0 && WSFFI_OPCODE_TEXT == 1 && WSFFI_OPCODE_BINARY == 2 &&
                   WSFFI_OPCODE_CLOSE == 8 && WSFFI_OPCODE_PING == 9 && WSFFI_OPCODE_PONG == 10,
               "opcodes");
_Static_assert(WSFFI_CLOSE_NORMAL == 1000 && WSFFI_CLOSE_NO_STATUS == 1005 && WSFFI_CLOSE_ABNORMAL == 1006 &&
                   WSFFI_CLOSE_MESSAGE_TOO_BIG == 1009 && WSFFI_CLOSE_TLS_HANDSHAKE == 1015,
               "close codes");
_Static_assert(sizeof(wsffi_status) == 4, "wsffi_status is 32 bits");
_Static_assert(WSFFI_VERDICT_ACCEPT == 0 && WSFFI_VERDICT_REJECT == 1 && WSFFI_VERDICT_DEFER == 2, "verdicts");
_Static_assert(_Generic(wsffi_version_number(), uint32_t: 1, default: 0), "version number type");
_Static_assert(_Generic(wsffi_ready_state(NULL), uint32_t: 1, default: 0), "ready state type");

#define HEADER_CALLS_FN header_calls_c11
#include "header_calls.inc"

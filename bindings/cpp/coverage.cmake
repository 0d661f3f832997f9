cmake_minimum_required(VERSION 3.16)
# Every function of include/wsffi.h is used by include/wsffi.hpp, except those listed here
# with the reason. Run as: cmake -DHEADER=... -DBINDING=... -P coverage.cmake
set(NOT_WRAPPED
  # The binding keeps its own handler object as the user data; nothing to expose.
  wsffi_conn_user_data
  # The status comes back from the call itself; the error detail gives the sentence.
  wsffi_error_status)
file(READ "${HEADER}" header)
file(READ "${BINDING}" binding)
string(REGEX MATCHALL "[a-z_0-9]+ \\*?(wsffi_[a-z0-9_]+)\\(" decls "${header}")
set(missing "")
set(count 0)
foreach(d IN LISTS decls)
  string(REGEX REPLACE ".*(wsffi_[a-z0-9_]+)\\($" "\\1" fn "${d}")
  math(EXPR count "${count} + 1")
  if(fn IN_LIST NOT_WRAPPED)
    continue()
  endif()
  string(REGEX MATCH "${fn}[^a-z0-9_]" used "${binding}")
  if(NOT used)
    list(APPEND missing ${fn})
  endif()
endforeach()
if(count LESS 100)
  message(FATAL_ERROR "only ${count} functions found in ${HEADER}: the pattern no longer matches")
endif()
if(missing)
  message(FATAL_ERROR "not used by ${BINDING}: ${missing}")
endif()
message(STATUS "${count} header functions, all wrapped or listed")

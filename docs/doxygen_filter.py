#!/usr/bin/env python3
"""Doxygen input filter for include/wsffi.h.

cbindgen writes plain C comments; this turns each comment in front of a declaration into a
Doxygen comment and files the declaration under the page of the handle type it belongs to
(`@ingroup`), so the reference has one page per handle type. The header itself is never
changed. Usage (Doxygen runs it): doxygen_filter.py FILE
"""
import re
import sys

# (group, title, introduction); the first matching rule of RULES decides the group.
GROUPS = [
    ("reactor", "Reactor (wsffi_reactor)",
     "The reactor owns the sockets and runs the event loop on its own thread, or queues the "
     "events for a thread of the application (dispatch mode). Also the library version."),
    ("conn", "Connections (wsffi_conn)",
     "A WebSocket connection, client or server side: connecting, sending, closing, state, and "
     "the callbacks that report its events."),
    ("client_options", "Client options (wsffi_client_options)",
     "Settings for `wsffi_connect`: subprotocols, headers, timeouts, limits, TLS, "
     "permessage-deflate."),
    ("listener", "Listeners (wsffi_listener)",
     "A listening socket (TCP or Unix), its settings, and plain HTTP answers on it."),
    ("server", "Servers (wsffi_server)",
     "A WebSocket endpoint on a listener's path: accepting clients, broadcasting, closing, and "
     "the server callbacks."),
    ("server_options", "Server options (wsffi_server_options)",
     "Settings for `wsffi_server_attach`: limits, timeouts, origins, permessage-deflate."),
    ("handshake", "Handshakes (wsffi_handshake)",
     "A client's upgrade request waiting for the server's decision."),
    ("request", "Requests (wsffi_request)", "The HTTP request of an upgrade or a plain request."),
    ("response", "Responses (wsffi_response and wsffi_http_response)",
     "An HTTP response a client received instead of an upgrade, and the answer a plain HTTP "
     "handler writes."),
    ("deflate", "permessage-deflate (wsffi_deflate_params)", "RFC 7692 parameters."),
    ("stats", "Counters (wsffi_conn_stats, wsffi_server_stats, wsffi_reactor_stats)",
     "Counters of connections, servers and reactors, read from any thread while the reactor "
     "runs, and their Prometheus text."),
    ("errors", "Status codes and errors (wsffi_status, wsffi_error)",
     "What every call returns, and the optional error detail with a message."),
    ("constants", "Constants", "Message kinds, ready states, close codes and limits."),
]

RULES = [
    (r"^wsffi_(conn|server|reactor)_(get_)?stats", "stats"), (r"^wsffi_close_counts$", "stats"),
    (r"^wsffi_reactor_options", "reactor"), (r"^wsffi_reactor", "reactor"), (r"^wsffi_version", "reactor"),
    (r"^WSFFI_VERSION", "reactor"), (r"^wsffi_wake_cb$", "reactor"),
    (r"^wsffi_client_options", "client_options"),
    (r"^wsffi_server_options", "server_options"),
    (r"^wsffi_listener", "listener"), (r"^wsffi_listen", "listener"), (r"^wsffi_http_", "response"),
    (r"^wsffi_handshake", "handshake"), (r"^wsffi_verdict$", "handshake"), (r"^WSFFI_VERDICT_", "handshake"),
    (r"^wsffi_(verify_client|handle_protocols|headers)_cb$", "handshake"),
    (r"^wsffi_server", "server"), (r"^wsffi_(connection|client_visit)_cb$", "server"),
    (r"^wsffi_request", "request"), (r"^wsffi_response", "response"),
    (r"^wsffi_deflate", "deflate"),
    (r"^wsffi_status$", "errors"), (r"^WSFFI_STATUS_", "errors"), (r"^wsffi_error", "errors"),
    (r"^WSFFI_CLOSE_ORIGIN", "conn"), (r"^wsffi_close_(info|origin)", "conn"),
    (r"^WSFFI_[A-Z_0-9]+$", "constants"),
    (r"^wsffi_", "conn"),
]


def group_of(name):
    for pattern, group in RULES:
        if re.search(pattern, name):
            return group
    return "constants"


def declared_name(line):
    """The name a top-level declaration line introduces, or None."""
    patterns = [
        r"^#define\s+(\w+)",
        r"^typedef\s+[^(]*\(\s*\*\s*(\w+)\s*\)",
        r"^typedef\s+struct\s+(\w+)\s*\{",
        r"^typedef\s+.*?(\w+)\s*;",
        r"^(?:enum|struct)\s+(\w+)",
        r"^[^#(]*?\b(\w+)\s*\(",
    ]
    for pattern in patterns:
        m = re.search(pattern, line)
        if m:
            return m.group(1)
    return None


# Lines the generator writes without a comment, documented here.
VERSION_DOCS = {
    "WSFFI_VERSION_MAJOR": "Major version of this header.",
    "WSFFI_VERSION_MINOR": "Minor version of this header.",
    "WSFFI_VERSION_PATCH": "Patch version of this header.",
    "WSFFI_VERSION_NUMBER": "This header's version as one number, as `wsffi_version_number()` returns the "
                            "library's: compare them to detect a header and library mismatch.",
    "WSFFI_VERSION": "This header's version as text, \"MAJOR.MINOR.PATCH\" (see `wsffi_version()`).",
}


def generated_doc(line):
    """A Doxygen comment for an uncommented line that needs one, or None."""
    m = re.match(r"^#define\s+(WSFFI_VERSION\w*)", line)
    if m and m.group(1) in VERSION_DOCS:
        return f"/** {VERSION_DOCS[m.group(1)]} @ingroup reactor */"
    m = re.match(r"^typedef\s+(?:uint32_t|enum\s+\w+)\s+(wsffi_\w+)\s*;", line)
    if m:
        name = m.group(1)
        return (f"/** `enum {name}` as a type: a `uint32_t` before C23 (values from the enum), the "
                f"enum itself in C23 and C++. @ingroup {group_of(name)} */")
    return None


def main(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    out = []
    i = 0
    first = True
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("/*") and not line.lstrip().startswith("/**"):
            end = i
            while "*/" not in lines[end]:
                end += 1
            comment = lines[i:end + 1]
            comment[0] = comment[0].replace("/*", "/**", 1)
            if first:
                # The file comment: the header's overview page.
                comment[0] = comment[0].replace("/**", "/** @file\n", 1)
                out.extend(comment)
                for group, title, intro in GROUPS:
                    out.append(f"/** @defgroup {group} {title}\n {intro} */")
                first = False
            else:
                following = next((l for l in lines[end + 1:] if l.strip()), "")
                indented = line[:1].isspace()
                name = None if indented else declared_name(following)
                if name:
                    comment[-1] = comment[-1].replace("*/", f"@ingroup {group_of(name)}\n */", 1)
                out.extend(comment)
            i = end + 1
            continue
        doc = generated_doc(line)
        if doc and not (out and out[-1].rstrip().endswith("*/")):
            out.append(doc)
        out.append(line)
        i += 1
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])

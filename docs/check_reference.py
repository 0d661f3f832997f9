#!/usr/bin/env python3
"""Checks the generated API reference against the header: each handle type's page exists,
and every function, callback type, struct and macro the header declares is documented on
the page of its group. Usage: check_reference.py include/wsffi.h build/docs/html
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from doxygen_filter import GROUPS, declared_name, group_of  # noqa: E402


def page_name(group):
    return "group__" + group.replace("_", "__") + ".html"


def main(header, html):
    pages = {}
    for group, title, _ in GROUPS:
        path = os.path.join(html, page_name(group))
        if not os.path.exists(path):
            sys.exit(f"docs: no page for {title} ({path})")
        pages[group] = open(path, encoding="utf-8").read()
    names = []
    for line in open(header, encoding="utf-8"):
        if line[:1].isspace() or line.startswith(("#if", "#endif", "#else", "#include", "#ifndef", "//")):
            continue
        if line.startswith("#define WSFFI_H"):
            continue
        name = declared_name(line)
        if name and name.lower().startswith("wsffi_"):
            names.append(name)
    missing = []
    for name in dict.fromkeys(names):
        page = pages[group_of(name)]
        # A documented member has its own entry: <td class="memname">...name... or an anchor row.
        if not re.search(r'class="memname"[^>]*>(?:(?!</td>).)*\b' + re.escape(name) + r"\b", page, re.S) and \
           not re.search(r'<a class="el" href="[^"]*">' + re.escape(name) + "</a>", page):
            missing.append(f"{name} (expected on {page_name(group_of(name))})")
    if missing:
        sys.exit("docs: not documented on its page:\n  " + "\n  ".join(missing))
    counts = ", ".join(f"{g} {sum(1 for n in set(names) if group_of(n) == g)}" for g, _, _ in GROUPS)
    print(f"docs: {len(set(names))} declarations documented, one page per group ({counts})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

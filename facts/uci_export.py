"""The parser of ``uci export`` text: standard library only, so that it runs where pyinfra is
absent too (the lab router's stand-ins parse the router's config with it, under the host's
Python); :mod:`facts.openwrt` re-exports it. Reads nothing, runs nothing."""

from __future__ import annotations

import re
import shlex
from typing import Any

#: Section names uci gives anonymous sections with ``-n`` (``cfg`` + ordinal + type hash).
ANONYMOUS_ID = re.compile(r"^cfg[0-9a-f]{6}$")


def parse_uci_export(lines: list[str] | str) -> dict[str, list[dict[str, Any]]]:
    """Parse ``uci export`` / ``uci -n export`` text into ``{package: [section, ...]}``.

    Each section is ``{"name": str | None, "type": str, "options": {opt: str | list[str]}}``
    in file order: a ``str`` is an ``option``, a ``list`` a uci ``list``. ``name`` is ``None``
    for anonymous sections; with ``-n`` they carry their ``cfgNNHHHH`` id in ``"id"`` instead.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    result: dict[str, list[dict[str, Any]]] = {}
    package: list[dict[str, Any]] | None = None
    section: dict[str, Any] | None = None
    pending = ""
    for raw in lines:
        text = pending + raw if pending else raw
        try:
            words = shlex.split(text, comments=False, posix=True)
        except ValueError:  # a value with an embedded newline: keep reading
            pending = text + "\n"
            continue
        pending = ""
        if not words:
            continue
        keyword = words[0]
        if keyword == "package" and len(words) >= 2:
            package = result.setdefault(words[1], [])
            section = None
        elif keyword == "config" and len(words) >= 2:
            if package is None:
                package = result.setdefault("", [])
            name = words[2] if len(words) >= 3 else None
            section = {"name": name, "type": words[1], "options": {}}
            if name is not None and ANONYMOUS_ID.match(name):
                section["name"] = None
                section["id"] = name
            package.append(section)
        elif keyword in ("option", "list") and section is not None and len(words) >= 2:
            value = words[2] if len(words) >= 3 else ""
            if keyword == "option":
                section["options"][words[1]] = value
            else:
                current = section["options"].get(words[1])
                if isinstance(current, list):
                    current.append(value)
                else:
                    section["options"][words[1]] = [value]
    return result

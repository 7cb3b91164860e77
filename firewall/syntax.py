"""nft text helpers: quoting, sets, family names (as fw4 prints them)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_UNQUOTED = re.compile(r"^([0-9A-Fa-f:./-]+)( \. [0-9A-Fa-f:./-]+)*$")


def _quote(s: str, force: bool = False) -> str:
    if force or not _UNQUOTED.match(s):
        return '"' + s.replace('"', "'") + '"'
    return s


def _nft_set(values: Sequence[str], force: bool = False) -> str:
    v = list(dict.fromkeys(values))
    if force or len(v) != 1:
        return "{ " + ", ".join(_quote(x) for x in v) + " }"
    return _quote(v[0])


def _nfproto(family: int, human: bool = False) -> str:
    if family == 4:
        return "IPv4" if human else "ipv4"
    if family == 6:
        return "IPv6" if human else "ipv6"
    return "IPv4/IPv6"

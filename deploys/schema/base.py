"""The schema's building block (:class:`Field`) and the engine that checks one value against it.

A field is data: its type (``kind``), range, pattern, choices, default, the hosts it applies to
and a one-line description. :func:`check` returns the value as the deploys use it, or records
one error line per problem, formatted ``<who>: <field>: <value!r> (<why>)``.

Rules every text field follows (unless it declares ``free_text``): no control characters (NUL,
newline, tab...), no leading or trailing whitespace; patterns match the *whole* value
(``re.fullmatch`` with ASCII classes: ``\\d`` is 0-9 only, Unicode digits are rejected).
Types are strict: ``True`` is not a number, ``"11434"`` is not a port. Values given with
``--data`` arrive as text and are converted by :func:`from_cli`, only as the field says.

Example::

    port = Field("vpn_port", "int", "WireGuard UDP port", default=51820, lo=1, hi=65535)
    errors = []
    check(port, "51820", "network", errors)   # None; errors == ["network: vpn_port: '51820'
                                              #   (expected a whole number from 1 to 65535)"]
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

#: The default of a field that must be given.
REQUIRED = "<required>"

KINDS = ("int", "number", "bool", "str", "enum", "ipv4", "ipv4net", "list", "record", "map", "any")


@dataclass(frozen=True)
class Field:
    """One declared inventory field (see the module docstring)."""

    name: str
    kind: str
    doc: str
    default: Any = None  # None: unset (optional); REQUIRED: must be given
    hosts: tuple[str, ...] = ("all",)  # all | router | server | clients | peer | <record name>
    lo: float | None = None
    hi: float | None = None
    pattern: str | None = None
    choices: tuple = ()
    hint: str = ""  # what is expected, for errors and the README
    item: Field | None = None  # list items / map values
    fields: tuple[Field, ...] = ()  # record keys
    key_pattern: str | None = None  # map keys
    cli: str = "text"  # how a --data string converts: text | int | number | bool | json | csv
    free_text: bool = False  # surrounding whitespace allowed (still no control characters)
    check: Callable[[Any], str | None] | None = None  # extra rule on a well-typed value
    convert: Callable[[Any], Any] | None = None  # value -> what the deploys use
    alt: Field | None = None  # accepted alternative spelling (e.g. a name for a one-item list)
    default_doc: str = ""  # README text for a computed default
    unknown_why: str = "unknown field"

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind

    @property
    def expected(self) -> str:
        """The 'expected ...' text of an error."""
        if self.hint:
            return self.hint
        if self.kind == "int":
            return f"expected a whole number from {_n(self.lo)} to {_n(self.hi)}"
        if self.kind == "bool":
            return "expected True or False"
        if self.kind == "enum":
            return "expected one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "ipv4":
            return "expected an IPv4 address like '10.10.10.2'"
        if self.kind == "ipv4net":
            return "expected an IPv4 subnet like '10.10.10.0/24'"
        if self.kind == "list":
            return "expected a list"
        if self.kind in ("record", "map"):
            return "expected a dict"
        return f"expected {self.kind}"

    def sub(self, key: str) -> Field | None:
        return next((f for f in self.fields if f.name == key), None)


def _n(x: float | None) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def fmt(who: str, name: str, value: object, why: str) -> str:
    return f"{who}: {name}: {value!r} ({why})"


def did_you_mean(key: object, known: list[str] | set[str] | tuple[str, ...]) -> str:
    """``"unknown field"`` plus the closest known name, if one is close."""
    if not isinstance(key, str):
        return ""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def text_problem(value: str, free: bool = False) -> str | None:
    """Why a text value is unusable anywhere (control characters, surrounding whitespace)."""
    for ch in value:
        if ch == "\x00":
            return "contains a NUL character"
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"contains a control character ({ch!r})"
    if not free and value != value.strip():
        return "has leading or trailing whitespace"
    return None


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check(f: Field, value: Any, who: str, errors: list[str], name: str | None = None) -> Any:
    """Check ``value`` against ``f``; return the usable value, or ``None`` after recording the
    problems in ``errors``. ``name`` is how the field is shown (``vpn_peers[0].name``)."""
    name = name or f.name
    before = len(errors)

    def bad(why: str) -> None:
        errors.append(fmt(who, name, value, why))

    if f.alt is not None and not _matches_kind(f, value) and _matches_kind(f.alt, value):
        alt_value = check(f.alt, value, who, errors, name)
        return None if len(errors) > before else _finish(f, alt_value, who, errors, name, value)

    k = f.kind
    if k == "any":
        out = value
    elif k in ("int", "number"):
        ok_type = is_int(value) or (k == "number" and isinstance(value, float)
                                    and math.isfinite(value))
        if not ok_type:
            bad(f.expected)
            return None
        if (f.lo is not None and value < f.lo) or (f.hi is not None and value > f.hi):
            hi = "" if f.hi is None else _n(f.hi)
            bad(f"out of range {_n(f.lo)}-{hi}" if f.hi is not None else f"at least {_n(f.lo)}")
            return None
        out = value
    elif k == "bool":
        if not isinstance(value, bool):
            bad(f.expected)
            return None
        out = value
    elif k == "enum":
        if isinstance(value, bool) or not _hashable(value) or value not in f.choices:
            bad(f.expected)
            return None
        out = value
    elif k in ("str", "ipv4", "ipv4net"):
        if not isinstance(value, str):
            bad(f.expected)
            return None
        problem = text_problem(value, f.free_text)
        if problem:
            bad(f"{problem}; {f.expected}")
            return None
        if k == "str":
            if f.pattern and not re.fullmatch(f.pattern, value, re.ASCII):
                bad(f.expected)
                return None
            out = value
        elif k == "ipv4":
            out = _ipv4(value, bad)
        else:
            out = _ipv4net(value, bad, f)
        if out is None:
            return None
    elif k == "list":
        if not isinstance(value, list | tuple):
            bad(f.expected)
            return None
        out = []
        for i, item in enumerate(value):
            assert f.item is not None
            got = check(f.item, item, who, errors, f"{name}[{i}]")
            out.append(got)
    elif k == "record":
        if not isinstance(value, Mapping):
            bad(f.expected)
            return None
        out = {}
        known = [s.name for s in f.fields]
        for key in value:
            if key not in known:
                errors.append(
                    fmt(who, f"{name}.{key}", value[key], f.unknown_why + did_you_mean(key, known))
                )
        for sub in f.fields:
            if sub.name in value and value[sub.name] is not None:
                out[sub.name] = check(sub, value[sub.name], who, errors, f"{name}.{sub.name}")
            elif sub.default == REQUIRED:
                errors.append(fmt(who, f"{name}.{sub.name}", None, "required: " + sub.doc))
    elif k == "map":
        if not isinstance(value, Mapping):
            bad(f.expected)
            return None
        out = {}
        for key, item in value.items():
            shown = f"{name}[{key!r}]"
            if not isinstance(key, str) or not re.fullmatch(f.key_pattern or ".+", key, re.ASCII):
                errors.append(fmt(who, shown, item, f"not a valid key ({f.hint or f.doc})"))
                continue
            assert f.item is not None
            out[key] = check(f.item, item, who, errors, shown)
    if len(errors) > before:
        return None
    return _finish(f, out, who, errors, name, value)


def _finish(f: Field, out: Any, who: str, errors: list[str], name: str, raw: Any) -> Any:
    if f.check is not None:
        why = f.check(out)
        if why:
            errors.append(fmt(who, name, raw, why))
            return None
    return f.convert(out) if f.convert else out


def _matches_kind(f: Field, value: object) -> bool:
    k = f.kind
    if k in ("str", "ipv4", "ipv4net"):
        return isinstance(value, str)
    if k == "list":
        return isinstance(value, list | tuple)
    if k in ("record", "map"):
        return isinstance(value, Mapping)
    if k == "int":
        return is_int(value)
    if k == "bool":
        return isinstance(value, bool)
    return True


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _ipv4(value: str, bad: Callable[[str], None]) -> IPv4Address | None:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        bad("not an IPv4 address")
        return None
    if not isinstance(addr, IPv4Address):
        bad("only IPv4 addresses are supported")
        return None
    return addr


def _ipv4net(value: str, bad: Callable[[str], None], f: Field) -> IPv4Network | None:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        bad("has host bits set" if "host bits" in str(exc) else "not an IPv4 subnet")
        return None
    if not isinstance(net, IPv4Network):
        bad("only IPv4 subnets are supported")
        return None
    if f.hi is not None and net.prefixlen > f.hi:
        bad(f"subnet too small (at most /{_n(f.hi)})")
        return None
    return net


# -- --data values ----------------------------------------------------------------------------

_ASCII_INT = re.compile(r"-?[0-9]+", re.ASCII)
_ASCII_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)


class CliError(ValueError):
    pass


def from_cli(f: Field, text: str) -> Any:
    """Convert a ``--data key=text`` value as the field says; raise :class:`CliError`.

    ``int``: ASCII digits only; ``bool``: true/false; ``json``: a JSON value (lists, dicts);
    ``csv``: a JSON list or comma-separated words; ``text``: the text itself (``"none"`` and
    ``""`` unset an optional field).
    """
    mode = f.cli
    if mode == "int":
        if not _ASCII_INT.fullmatch(text):
            raise CliError(f.expected)
        return int(text)
    if mode == "number":
        if not _ASCII_NUMBER.fullmatch(text):
            raise CliError(f.expected)
        return float(text)
    if mode == "bool":
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        if f.default is None and low in ("none", ""):
            return None
        raise CliError("expected true or false")
    if mode == "json":
        try:
            return json.loads(text)
        except ValueError:
            if f.alt is not None and f.alt.kind == "str":  # e.g. claude_models=qwen3-coder:30b
                return text
            raise CliError(f"expected JSON ({f.expected})") from None
    if mode == "csv":
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                raise CliError(f"expected a JSON list or comma-separated words ({f.expected})") \
                    from None
        return [w for w in text.split(",") if w]
    if f.default is None and text.lower() in ("none", ""):
        return None
    return text


def raw_cli_data(argv: list[str]) -> dict[str, str]:
    """The ``--data key=value`` pairs of a pyinfra command line, as the user typed them."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = None
        if arg == "--data" and i + 1 < len(argv):
            value, i = argv[i + 1], i + 1
        elif arg.startswith("--data="):
            value = arg[len("--data=") :]
        if value is not None and "=" in value:
            key, text = value.split("=", 1)
            out[key] = text
        i += 1
    return out


def field_map(*groups: tuple[Field, ...]) -> dict[str, Field]:
    out: dict[str, Field] = {}
    for group in groups:
        for f in group:
            out.setdefault(f.name, f)
    return out


__all__ = [
    "REQUIRED",
    "CliError",
    "Field",
    "check",
    "did_you_mean",
    "field_map",
    "fmt",
    "from_cli",
    "raw_cli_data",
    "text_problem",
]

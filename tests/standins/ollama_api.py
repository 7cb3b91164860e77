#!/usr/bin/env python3
"""TEST STAND-IN for the Ollama HTTP API. Never used by the product.

The real Ollama server cannot run in the test lab (Linux, no model weights may be
downloaded), so the end-to-end tests talk to this stdlib-only HTTP server instead. It
answers like Ollama on port 11434: same routes, status codes, headers, body shapes,
error shapes, NDJSON/SSE framing and Go ``encoding/json`` byte format. Its behaviour is
derived from the exchange corpus in ``tests/fixtures/ollama-api/`` (itself derived from
Ollama's source and tests at v0.33.0-rc2, v0.14.0 and v0.13.3); every exchange there
replays against it (``tests/test_ollama_standin.py``).

Which release it imitates is configurable (``--version``, default ``0.32.15``, the newest
stable release at the fixtures' source commit). ``GET /api/version`` reports it and the
version gates of the corpus follow it: routes appear at their first release (a missing
route is the router's ``404 page not found``: ``/v1/responses`` before 0.13.3,
``/v1/messages`` before 0.14.0, ...), a wrong method is 405 + ``Allow`` from 0.7.0 (404
before), the OpenAI chat stream switches format at 0.32.6, Anthropic stream usage at
0.15.5, the minimal ``/v1/responses`` object until 0.14.1, ``/api/tags`` capabilities and
the normalised ``/api/show`` not-found name from 0.30.0, ``/api/ps`` ``context_length``
from 0.10.0, thinking from 0.9.0, tool-call ids from 0.12.10, ``include_usage`` from 0.5.2.

Reproduced: native ``/``, ``/api/version``, ``/api/tags``, ``/api/ps``, ``/api/show``,
``/api/pull``, ``/api/push``, ``/api/create`` (JSON form: ``from``/``files``/``system``/
``template``/``parameters``/``license``), ``/api/copy``, ``/api/delete``,
``/api/blobs/:digest``, ``/api/generate``, ``/api/chat``, ``/api/embed``,
``/api/embeddings``; OpenAI-compatible ``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``, ``/v1/models``, ``/v1/models/:model``, ``/v1/responses``;
Anthropic-compatible ``/v1/messages``. Load/unload with empty prompt/messages and
``keep_alive`` (duration string, seconds, negative = forever, 0 = unload) drive
``/api/ps``; thinking, tool calls, ``format``/``response_format``, ``num_predict``/
``max_tokens`` (``length``), ``OLLAMA_MAX_QUEUE`` (503), errors inside a 200 stream, Go's
JSON decoder messages for bad bodies (``EOF``, ``invalid character ...``), model name
parsing/normalisation, trailing-slash redirects. The model store (pull, create, copy,
delete) changes ``/api/tags`` for the life of the server and is kept in
``<state-dir>/state.json`` when ``--state-dir`` is given, so a restarted server keeps it
(an existing state file wins over ``installed``; loaded runners are not kept, as with a
real restart).

Not reproduced: inference (answers are deterministic canned text: ``response``/ ``thinking``
per model; a tool is called only when the newest user message names an offered tool and no
tool result or assistant turn answered it yet (``_asked_tool``), with arguments guessed from
the JSON schema and the user's words), a real registry (pull/push only know the built-in
catalogue plus ``registry`` entries; unknown names fail like a registry 404), logprobs,
images/vision/audio/image generation, cloud models and ``/api/status``, ``/api/me``,
sign-in, CORS and the Host-header check, OPTIONS preflight, quantisation and safetensors
imports, the Modelfile-string ``/api/create`` of releases before 0.5.5, memory-based
scheduling and eviction, ``OLLAMA_NUM_PARALLEL``, wire details of releases before about 0.5
other than route availability, the pre-0.18 Anthropic open-thinking-block quirk, and the
exact legacy (0.13.3-0.14.1) ``/v1/responses`` stream events (shape guessed from the legacy
object). Error texts that no fixture pins are best guesses at Ollama's wording.

CLI::

    python3 tests/standins/ollama_api.py --host 127.0.0.1 --port 11434 \\
        [--version 0.14.2] [--models models.json] [--state-dir DIR] \\
        [--pull-delay S] [--token-delay S] [--max-queue N] [--keep-alive 5m] \\
        [--context-length N] [--verbose]

Python::

    with OllamaStandIn("127.0.0.1", 0, version="0.14.2", models=["llama3.2"]) as srv:
        requests.get(srv.url + "/api/tags")

``models`` (or the ``--models`` JSON file) is either a list of installed models or an
object ``{"installed": [...], "registry": [...], "loaded": [...]}``. Each entry is a name
(``"llama3.2"``; catalogue data is used when the name is known) or an object with ``name``
and any of: ``size``, ``digest`` (64 hex), ``format``, ``family``, ``families``,
``parameter_size``, ``quantization_level``, ``capabilities``, ``context_length``,
``embedding_length``, ``system``, ``template``, ``parameters``, ``license``,
``response`` (reply text), ``thinking`` (thinking text), ``token_delay`` (seconds between
generated chunks), ``pull_delay`` (seconds between pull/push progress lines),
``fail_after`` (generation fails after that many chunks, as a runner crash would),
``fail_message``, ``modified_at`` (Unix seconds). ``registry`` entries become pullable;
``loaded`` entries (name or ``{"name", "keep_alive"}``) start loaded. With no ``models``
nothing is installed, like a fresh Ollama; the catalogue (llama3.2, llama3.2:1b, qwen3,
qwen2.5-coder:7b/32b, all-minilm, nomic-embed-text) is pullable. ``max_queue=0``
makes every inference request answer the 503 "server busy" error.
"""

from __future__ import annotations

import argparse
import base64
import copy
import dataclasses
import email.utils
import hashlib
import json
import math
import os
import random
import re
import secrets
import signal
import string
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_VERSION = "0.32.15"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
FOREVER_NS = 2**63 - 1  # Go's math.MaxInt64 duration: "keep_alive < 0"
DEFAULT_REPLY = "Hello! How can I help you today?"
DEFAULT_THINKING = "The user wrote to me. I should answer briefly and politely."
DEFAULT_FAIL = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an "
    "internal error, check ollama server logs for details"
)
MAX_QUEUE_MSG = "server busy, please try again.  maximum pending requests exceeded"
PULL_MANIFEST_MISSING = "pull model manifest: file does not exist"

# --------------------------------------------------------------------------- versions

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?")


def version_key(text: str) -> tuple[Any, ...]:
    """Semantic-version sort key; a pre-release sorts before its release."""
    m = _VERSION_RE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a version: {text!r}")
    major, minor, patch, pre = m.groups()
    if pre is None:
        pre_key: tuple[Any, ...] = (1,)
    else:
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
        pre_key = (0, ids)
    return (int(major), int(minor), int(patch), pre_key)


# ----------------------------------------------------------------- Go JSON encoding


class F32(float):
    """A float that Go marshals as float32 (embeddings)."""


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_ESCAPE_RE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029]')


def _go_string(s: str) -> str:
    return '"' + _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m[0], f"\\u{ord(m[0]):04x}"), s) + '"'


def _f32(v: float) -> float:
    return struct.unpack("<f", struct.pack("<f", v))[0]


def _go_float(v: float, bits: int = 64) -> str:
    """Go encoding/json float formatting (ES6 style, shortest round trip)."""
    if math.isnan(v) or math.isinf(v):
        raise ValueError(f"json: unsupported value: {v}")
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    if bits == 32:
        v = _f32(v)
        text = repr(v)
        for precision in range(1, 10):
            text = f"{v:.{precision}g}"
            if _f32(float(text)) == v:
                break
    else:
        text = repr(v)
    sign, digit_tuple, exp = Decimal(text).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    stripped = digits.rstrip("0") or "0"
    exp += len(digits) - len(stripped)
    digits = stripped
    sci = len(digits) - 1 + exp  # value = d.ddd * 10**sci
    absval = abs(v)
    out = "-" if sign else ""
    if absval < 1e-6 or absval >= 1e21:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        expo = f"e{'-' if sci < 0 else '+'}{abs(sci):02d}"
        if sci < 0 and abs(sci) < 10:
            expo = f"e-{abs(sci)}"  # Go cleans e-07 to e-7
        return out + mant + expo
    if exp >= 0:
        return out + digits + "0" * exp
    point = len(digits) + exp
    if point <= 0:
        return out + "0." + "0" * (-point) + digits
    return out + digits[:point] + "." + digits[point:]


def go_json(value: Any) -> str:
    """Compact JSON exactly as Go's encoding/json writes it (HTML-safe escapes)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, F32):
        return _go_float(value, 32)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(_go_string(str(k)) + ":" + go_json(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def go_bytes(value: Any) -> bytes:
    return go_json(value).encode("utf-8", "replace")


def go_quote(s: str) -> str:
    """Go's %q for ordinary strings."""
    out = []
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# ----------------------------------------------------------------- Go JSON decoding


class GoJSONError(Exception):
    """A json.Decoder error as Go words it; ``eof`` = io.EOF (empty body)."""

    def __init__(self, message: str, eof: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.eof = eof


def _quote_char(c: int) -> str:
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    ch = chr(c)
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if ch == "\\":
        inner = "\\\\"
    elif ch in named:
        inner = named[ch]
    elif ch == "\v":
        inner = "\\v"
    elif c < 0x20 or c == 0x7F:
        inner = f"\\x{c:02x}"
    elif 0x80 <= c < 0xA0 or c == 0xAD:
        inner = f"\\u{c:04x}"
    else:
        inner = ch
    return "'" + inner + "'"


class _GoScanner:
    """Validates the first JSON value of a body with the messages of Go's scanner."""

    def __init__(self, data: bytes) -> None:
        self.d = data
        self.i = 0

    def _fail(self, context: str) -> None:
        if self.i >= len(self.d):
            raise GoJSONError("unexpected EOF")
        raise GoJSONError(f"invalid character {_quote_char(self.d[self.i])} {context}")

    def _peek(self) -> int:
        if self.i >= len(self.d):
            raise GoJSONError("unexpected EOF")
        return self.d[self.i]

    def ws(self) -> None:
        while self.i < len(self.d) and self.d[self.i] in b" \t\r\n":
            self.i += 1

    def value(self) -> None:
        self.ws()
        c = self._peek()
        if c == ord("{"):
            self._object()
        elif c == ord("["):
            self._array()
        elif c == ord('"'):
            self._string()
        elif c == ord("-") or ord("0") <= c <= ord("9"):
            self._number()
        elif c == ord("t"):
            self._literal(b"true")
        elif c == ord("f"):
            self._literal(b"false")
        elif c == ord("n"):
            self._literal(b"null")
        else:
            self._fail("looking for beginning of value")

    def _object(self) -> None:
        self.i += 1
        self.ws()
        if self._peek() == ord("}"):
            self.i += 1
            return
        while True:
            self.ws()
            if self._peek() != ord('"'):
                self._fail("looking for beginning of object key string")
            self._string()
            self.ws()
            if self._peek() != ord(":"):
                self._fail("after object key")
            self.i += 1
            self.value()
            self.ws()
            c = self._peek()
            if c == ord(","):
                self.i += 1
                continue
            if c == ord("}"):
                self.i += 1
                return
            self._fail("after object key:value pair")

    def _array(self) -> None:
        self.i += 1
        self.ws()
        if self._peek() == ord("]"):
            self.i += 1
            return
        while True:
            self.value()
            self.ws()
            c = self._peek()
            if c == ord(","):
                self.i += 1
                continue
            if c == ord("]"):
                self.i += 1
                return
            self._fail("after array element")

    def _string(self) -> None:
        self.i += 1
        while True:
            c = self._peek()
            if c == ord('"'):
                self.i += 1
                return
            if c == ord("\\"):
                self.i += 1
                e = self._peek()
                if e == ord("u"):
                    self.i += 1
                    for _ in range(4):
                        h = self._peek()
                        if chr(h) not in string.hexdigits:
                            self._fail("in \\u hexadecimal character escape")
                        self.i += 1
                    continue
                if chr(e) not in '"\\/bfnrt':
                    self._fail("in string escape code")
                self.i += 1
                continue
            if c < 0x20:
                self._fail("in string literal")
            self.i += 1

    def _digits(self) -> int:
        start = self.i
        while self.i < len(self.d) and ord("0") <= self.d[self.i] <= ord("9"):
            self.i += 1
        return self.i - start

    def _number(self) -> None:
        if self.d[self.i] == ord("-"):
            self.i += 1
            c = self._peek()
            if not ord("0") <= c <= ord("9"):
                self._fail("in numeric literal")
        if self.d[self.i] == ord("0"):
            self.i += 1
        else:
            self._digits()
        if self.i < len(self.d) and self.d[self.i] == ord("."):
            self.i += 1
            if self.i >= len(self.d) or not self._digits():
                self._fail("after decimal point in numeric literal")
        if self.i < len(self.d) and self.d[self.i] in b"eE":
            self.i += 1
            if self.i < len(self.d) and self.d[self.i] in b"+-":
                self.i += 1
            if self.i >= len(self.d) or not self._digits():
                self._fail("in exponent of numeric literal")

    def _literal(self, word: bytes) -> None:
        self.i += 1
        for expected in word[1:]:
            if self._peek() != expected:
                self._fail(f"in literal {word.decode()} (expecting {_quote_char(expected)})")
            self.i += 1


def go_decode(data: bytes) -> Any:
    """Decode the first JSON value like Go's json.Decoder (trailing bytes ignored)."""
    scanner = _GoScanner(data)
    scanner.ws()
    if scanner.i >= len(data):
        raise GoJSONError("EOF", eof=True)
    start = scanner.i
    scanner.value()
    return json.loads(data[start : scanner.i].decode("utf-8", "replace"))


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def _go_type_name(v: Any) -> str:
    """Go's %T of a value decoded into interface{}."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "[]interface {}"
    return "map[string]interface {}"


_KIND_OK: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "num": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}

Fields = dict[str, tuple[str, str]]


def go_bind(data: bytes, struct_name: str, fields: Fields) -> dict[str, Any]:
    """c.ShouldBindJSON into a Go struct: field names match case-insensitively, the first
    type mismatch is reported the way encoding/json reports it, null means absent."""
    value = go_decode(data)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GoJSONError(
            f"json: cannot unmarshal {_json_kind(value)} into Go value of type {struct_name}"
        )
    lowered = {name.lower(): name for name in fields}
    out: dict[str, Any] = {}
    first_error: str | None = None
    for key, v in value.items():
        field = key if key in fields else lowered.get(key.lower(), key)
        if v is None:
            out.pop(field, None)
            continue
        spec = fields.get(field)
        if spec is not None and first_error is None:
            go_type, kind = spec
            if not _KIND_OK[kind](v):
                got = _json_kind(v)
                if kind == "int" and isinstance(v, float) and not isinstance(v, bool):
                    got = f"number {go_json(v)}"
                short = struct_name.split(".")[-1]
                first_error = (
                    f"json: cannot unmarshal {got} into Go struct field {short}.{field} "
                    f"of type {go_type}"
                )
                continue
        out[field] = v
    if first_error:
        raise GoJSONError(first_error)
    return out


# ----------------------------------------------------------------- Go durations

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def go_parse_duration(text: str) -> int:
    """time.ParseDuration, in nanoseconds, with Go's error texts."""
    quoted = go_quote(text)
    s = text
    negative = False
    if s and s[0] in "+-":
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while s:
        m = re.match(r"(\d*)(?:\.(\d*))?", s)
        assert m is not None
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {quoted}")
        s = s[m.end() :]
        unit = re.match(r"[^\d.]*", s)
        assert unit is not None
        u = unit.group()
        s = s[len(u) :]
        if not u:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if u not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(u)} in duration {quoted}")
        total += float(f"{whole or 0}.{frac or 0}") * _DURATION_UNITS[u]
    return -int(total) if negative else int(total)


# ----------------------------------------------------------------- time formats


def _frac(ns: int) -> str:
    return ("." + f"{ns:09d}".rstrip("0")) if ns else ""


def rfc3339_utc(ns: int | None = None) -> str:
    """Go's time.Now().UTC() marshalled: RFC3339Nano with Z, trailing zeros trimmed."""
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + _frac(frac) + "Z"


def rfc3339_local(ns: int) -> str:
    """A server-local time marshalled by Go (offset, or Z when the zone is UTC)."""
    sec, frac = divmod(ns, 1_000_000_000)
    local = time.localtime(sec)
    offset = local.tm_gmtoff or 0
    if offset == 0:
        zone = "Z"
    else:
        sign = "+" if offset > 0 else "-"
        hours, minutes = divmod(abs(offset) // 60, 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + _frac(frac) + zone


# ----------------------------------------------------------------- model names

_PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}")


@dataclasses.dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    def key(self) -> tuple[str, str, str, str]:
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    def short(self) -> str:
        """DisplayShortest: llama3.2:latest, user/m:tag, hf.co/u/m:tag."""
        if self.host.lower() == DEFAULT_REGISTRY:
            if self.namespace.lower() == DEFAULT_NAMESPACE:
                return f"{self.model}:{self.tag}"
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"


def parse_name(text: str) -> ModelName | None:
    """model.ParseName with defaults filled in; None when the name is not valid."""
    s = text.split("@", 1)[0]
    tag = DEFAULT_TAG
    colon = s.rfind(":")
    if colon >= 0 and "/" not in s[colon + 1 :]:
        s, tag = s[:colon], s[colon + 1 :]
    parts = s.split("/")
    host, namespace = DEFAULT_REGISTRY, DEFAULT_NAMESPACE
    if len(parts) == 1:
        model = parts[0]
    elif len(parts) == 2:
        namespace, model = parts
    elif len(parts) == 3:
        host, namespace, model = parts
    else:
        return None
    if not (
        _HOST_RE.fullmatch(host)
        and _PART_RE.fullmatch(namespace)
        and _PART_RE.fullmatch(model)
        and _PART_RE.fullmatch(tag)
    ):
        return None
    return ModelName(host, namespace, model, tag)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------- model catalogue

_CATALOGUE: list[dict[str, Any]] = [
    {
        "name": "llama3.2:latest",
        "size": 2019393189,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "family": "llama",
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
        "capabilities": ["completion", "tools"],
        "context_length": 131072,
        "embedding_length": 3072,
        "parameters": {"stop": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]},
    },
    {
        "name": "llama3.2:1b",
        "size": 1321098329,
        "family": "llama",
        "parameter_size": "1.2B",
        "quantization_level": "Q8_0",
        "capabilities": ["completion", "tools"],
        "context_length": 131072,
        "embedding_length": 2048,
        "parameters": {"stop": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]},
    },
    {
        "name": "qwen3:latest",
        "size": 5225388164,
        "family": "qwen3",
        "parameter_size": "8.2B",
        "quantization_level": "Q4_K_M",
        "capabilities": ["completion", "tools", "thinking"],
        "context_length": 40960,
        "embedding_length": 4096,
        "parameters": {"temperature": 0.6, "top_k": 20, "top_p": 0.95},
    },
    {
        "name": "qwen2.5-coder:7b",
        "size": 4683087332,
        "family": "qwen2",
        "parameter_size": "7.6B",
        "quantization_level": "Q4_K_M",
        "capabilities": ["completion", "tools", "insert"],
        "context_length": 32768,
        "embedding_length": 3584,
    },
    {
        "name": "qwen2.5-coder:32b",
        "size": 19851336256,
        "family": "qwen2",
        "parameter_size": "32.8B",
        "quantization_level": "Q4_K_M",
        "capabilities": ["completion", "tools", "insert"],
        "context_length": 32768,
        "embedding_length": 5120,
    },
    {
        "name": "all-minilm:latest",
        "size": 45960996,
        "family": "bert",
        "parameter_size": "23M",
        "quantization_level": "F16",
        "capabilities": ["embedding"],
        "context_length": 512,
        "embedding_length": 384,
        "template": "",
    },
    {
        "name": "nomic-embed-text:latest",
        "size": 274302450,
        "family": "nomic-bert",
        "parameter_size": "137M",
        "quantization_level": "F16",
        "capabilities": ["embedding"],
        "context_length": 2048,
        "embedding_length": 768,
        "template": "",
    },
]

_SPEC_FIELDS = {
    "name",
    "size",
    "digest",
    "format",
    "family",
    "families",
    "parameter_size",
    "quantization_level",
    "capabilities",
    "context_length",
    "embedding_length",
    "system",
    "template",
    "parameters",
    "license",
    "parent_model",
    "response",
    "thinking",
    "token_delay",
    "pull_delay",
    "fail_after",
    "fail_message",
    "modified_ns",
    "layers",
}


@dataclasses.dataclass
class ModelSpec:
    """One model: what /api/tags, /api/show and /api/ps report, plus stand-in knobs."""

    name: str
    size: int = 1_000_000_000
    digest: str = ""
    format: str = "gguf"
    family: str = "llama"
    families: list[str] | None = None
    parameter_size: str = "1B"
    quantization_level: str = "Q4_K_M"
    capabilities: list[str] = dataclasses.field(default_factory=lambda: ["completion"])
    context_length: int = 4096
    embedding_length: int = 2048
    system: str = ""
    template: str = "{{ .Prompt }}"
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    license: str = ""
    parent_model: str = ""
    response: str | None = None
    thinking: str | None = None
    token_delay: float | None = None
    pull_delay: float | None = None
    fail_after: int | None = None
    fail_message: str = DEFAULT_FAIL
    modified_ns: int = 0
    layers: list[list[Any]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        parsed = parse_name(self.name)
        if parsed is None:
            raise ValueError(f"invalid model name: {self.name!r}")
        self.name = parsed.short()
        if self.families is None and self.family:
            self.families = [self.family]
        if not self.modified_ns:
            self.modified_ns = time.time_ns()
        if not self.layers:
            self.layers = self._build_layers()
        if not self.digest:
            self.digest = self.manifest_digest()

    @property
    def parsed(self) -> ModelName:
        parsed = parse_name(self.name)
        assert parsed is not None
        return parsed

    def _small_layers(self) -> list[list[Any]]:
        small = []
        for kind, content in (
            ("template", self.template),
            ("system", self.system),
            ("license", self.license),
            ("params", go_json(self.parameters) if self.parameters else ""),
        ):
            if content:
                data = content.encode()
                small.append(
                    [
                        hashlib.sha256(data).hexdigest(),
                        len(data),
                        f"application/vnd.ollama.image.{kind}",
                    ]
                )
        return small

    def _build_layers(self) -> list[list[Any]]:
        small = self._small_layers()
        weights = max(1, self.size - sum(layer[1] for layer in small))
        model_layer = [
            _sha(f"weights:{self.parsed.key()}:{self.size}"),
            weights,
            "application/vnd.ollama.image.model",
        ]
        return [model_layer, *small]

    def manifest_digest(self) -> str:
        return _sha(json.dumps(self.layers, sort_keys=True))

    @classmethod
    def from_obj(cls, obj: Any, known: dict[tuple[str, ...], dict[str, Any]]) -> ModelSpec:
        if isinstance(obj, ModelSpec):
            return copy.deepcopy(obj)
        if isinstance(obj, str):
            obj = {"name": obj}
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise ValueError(f"model entry needs a name: {obj!r}")
        parsed = parse_name(obj["name"])
        if parsed is None:
            raise ValueError(f"invalid model name: {obj['name']!r}")
        data = dict(known.get(parsed.key(), {}))
        data.update(obj)
        if "modified_at" in data:
            data["modified_ns"] = int(float(data.pop("modified_at")) * 1_000_000_000)
        unknown = set(data) - _SPEC_FIELDS
        if unknown:
            raise ValueError(f"unknown model field(s) {sorted(unknown)} in {obj['name']!r}")
        data["name"] = parsed.short()
        return cls(**copy.deepcopy(data))


def _catalogue() -> dict[tuple[str, ...], dict[str, Any]]:
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for entry in _CATALOGUE:
        parsed = parse_name(entry["name"])
        assert parsed is not None
        out[parsed.key()] = entry
    return out


# ----------------------------------------------------------------- HTTP plumbing


class ApiError(Exception):
    """An error a handler answers with c.JSON (status + message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class MiddlewareError(ApiError):
    """A validation error raised by an OpenAI/Anthropic compatibility middleware."""


class _NoCompletion(Exception):
    """errCapabilityCompletion: the model cannot generate text."""


@dataclasses.dataclass
class StreamError:
    """An error sent through a handler's stream channel (gin.H{"error": ...})."""

    message: str
    status: int | None = None


@dataclasses.dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunks: Iterator[bytes] | None = None


@dataclasses.dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: Any
    body: bytes


@dataclasses.dataclass
class Outcome:
    """What the native chat/generate/progress handlers produce before rendering."""

    stream: bool
    kind: str  # chat | generate | progress
    body: dict[str, Any] | None = None
    events: Iterator[Any] | None = None
    has_tools: bool = False


CT_GIN = "application/json; charset=utf-8"
CT_JSON = "application/json"
CT_NDJSON = "application/x-ndjson"
CT_SSE = "text/event-stream"
SSE_HEADERS = [("Cache-Control", "no-cache"), ("Connection", "keep-alive")]


def gin_json(status: int, obj: Any, extra: Iterable[tuple[str, str]] = ()) -> Reply:
    """gin c.JSON: charset content type, no trailing newline."""
    return Reply(status, [*extra, ("Content-Type", CT_GIN)], go_bytes(obj))


def plain_json(status: int, obj: Any) -> Reply:
    """c.JSON after an explicit Content-Type: application/json (stream channel errors)."""
    return Reply(status, [("Content-Type", CT_JSON)], go_bytes(obj))


def encoder_json(status: int, obj: Any, extra: Iterable[tuple[str, str]] = ()) -> Reply:
    """json.NewEncoder(w).Encode in the compatibility writers: newline-terminated."""
    return Reply(status, [*extra, ("Content-Type", CT_JSON)], go_bytes(obj) + b"\n")


def text_reply(status: int, text: str, content_type: str = "text/plain") -> Reply:
    return Reply(status, [("Content-Type", content_type)], text.encode())


def not_found() -> Reply:
    return text_reply(404, "404 page not found")


def sse_data(obj: Any) -> bytes:
    payload = obj if isinstance(obj, str) else go_json(obj)
    return b"data: " + payload.encode("utf-8", "replace") + b"\n\n"


def sse_event(name: str, obj: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + go_bytes(obj) + b"\n\n"


def _peek(events: Iterator[Any]) -> tuple[Any, Iterator[Any]]:
    """First element and the whole sequence again (the first element re-attached)."""
    try:
        first = next(events)
    except StopIteration:
        return None, iter(())

    def chained() -> Iterator[Any]:
        yield first
        yield from events

    return first, chained()


def _closing(events: Iterator[Any]) -> Callable[[], None]:
    close = getattr(events, "close", None)
    return close if callable(close) else (lambda: None)


_REASONS = {499: "status code 499"}

_METHOD_ORDER = ("HEAD", "GET", "POST", "DELETE")

# (method, path, first release, handler)
_ROUTES: list[tuple[str, str, str, str]] = [
    ("HEAD", "/", "0.0.13", "root"),
    ("GET", "/", "0.0.1", "root"),
    ("HEAD", "/api/version", "0.1.14", "version"),
    ("GET", "/api/version", "0.1.14", "version"),
    ("POST", "/api/pull", "0.0.5", "pull"),
    ("POST", "/api/push", "0.0.6", "push"),
    ("HEAD", "/api/tags", "0.0.6", "tags"),
    ("GET", "/api/tags", "0.0.6", "tags"),
    ("POST", "/api/show", "0.0.18", "show"),
    ("DELETE", "/api/delete", "0.0.11", "delete"),
    ("POST", "/api/create", "0.0.6", "create"),
    ("POST", "/api/blobs/:digest", "0.1.10", "create_blob"),
    ("HEAD", "/api/blobs/:digest", "0.1.10", "head_blob"),
    ("POST", "/api/copy", "0.0.12", "copy"),
    ("GET", "/api/ps", "0.1.38", "ps"),
    ("POST", "/api/generate", "0.0.1", "generate"),
    ("POST", "/api/chat", "0.1.14", "chat"),
    ("POST", "/api/embed", "0.2.6", "embed"),
    ("POST", "/api/embeddings", "0.0.14", "embeddings"),
    ("POST", "/v1/chat/completions", "0.1.24", "openai_chat"),
    ("POST", "/v1/completions", "0.2.0", "openai_completions"),
    ("POST", "/v1/embeddings", "0.2.6", "openai_embeddings"),
    ("GET", "/v1/models", "0.2.0", "openai_models"),
    ("GET", "/v1/models/:model", "0.2.0", "openai_model"),
    ("POST", "/v1/responses", "0.13.3", "openai_responses"),
    ("POST", "/v1/messages", "0.14.0", "anthropic_messages"),
]


def _route_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for segment in pattern.split("/"):
        if segment.startswith(":"):
            parts.append(f"(?P<{segment[1:]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("/".join(parts))


# ----------------------------------------------------------------- request schemas

_GENERATE_FIELDS: Fields = {
    "model": ("string", "str"),
    "prompt": ("string", "str"),
    "suffix": ("string", "str"),
    "system": ("string", "str"),
    "template": ("string", "str"),
    "context": ("[]int", "list"),
    "stream": ("bool", "bool"),
    "raw": ("bool", "bool"),
    "images": ("[]api.ImageData", "list"),
    "options": ("map[string]interface {}", "dict"),
    "top_logprobs": ("int", "int"),
    "logprobs": ("bool", "bool"),
}
_CHAT_FIELDS: Fields = {
    "model": ("string", "str"),
    "messages": ("[]api.Message", "list"),
    "stream": ("bool", "bool"),
    "tools": ("api.Tools", "list"),
    "options": ("map[string]interface {}", "dict"),
    "top_logprobs": ("int", "int"),
    "logprobs": ("bool", "bool"),
}
_MODEL_FIELDS: Fields = {
    "model": ("string", "str"),
    "name": ("string", "str"),
    "stream": ("bool", "bool"),
    "insecure": ("bool", "bool"),
}
_SHOW_FIELDS: Fields = {
    "model": ("string", "str"),
    "name": ("string", "str"),
    "system": ("string", "str"),
    "verbose": ("bool", "bool"),
    "options": ("map[string]interface {}", "dict"),
}
_CREATE_FIELDS: Fields = {
    "model": ("string", "str"),
    "name": ("string", "str"),
    "from": ("string", "str"),
    "files": ("map[string]string", "dict"),
    "adapters": ("map[string]string", "dict"),
    "template": ("string", "str"),
    "license": ("interface {}", "str"),
    "system": ("string", "str"),
    "parameters": ("map[string]interface {}", "dict"),
    "messages": ("[]api.Message", "list"),
    "stream": ("bool", "bool"),
    "quantize": ("string", "str"),
}
_COPY_FIELDS: Fields = {"source": ("string", "str"), "destination": ("string", "str")}
_EMBED_FIELDS: Fields = {
    "model": ("string", "str"),
    "truncate": ("bool", "bool"),
    "dimensions": ("int", "int"),
    "options": ("map[string]interface {}", "dict"),
}
_EMBEDDINGS_FIELDS: Fields = {
    "model": ("string", "str"),
    "prompt": ("string", "str"),
    "options": ("map[string]interface {}", "dict"),
}
_OPENAI_CHAT_FIELDS: Fields = {
    "model": ("string", "str"),
    "messages": ("[]openai.Message", "list"),
    "stream": ("bool", "bool"),
    "stream_options": ("openai.StreamOptions", "dict"),
    "max_tokens": ("int", "int"),
    "max_completion_tokens": ("int", "int"),
    "seed": ("int", "int"),
    "temperature": ("float64", "num"),
    "top_p": ("float64", "num"),
    "frequency_penalty": ("float64", "num"),
    "presence_penalty": ("float64", "num"),
    "response_format": ("openai.ResponseFormat", "dict"),
    "tools": ("[]api.Tool", "list"),
    "reasoning": ("openai.Reasoning", "dict"),
    "reasoning_effort": ("string", "str"),
}
_OPENAI_COMPLETION_FIELDS: Fields = {
    "model": ("string", "str"),
    "prompt": ("string", "str"),
    "stream": ("bool", "bool"),
    "stream_options": ("openai.StreamOptions", "dict"),
    "max_tokens": ("int", "int"),
    "seed": ("int", "int"),
    "temperature": ("float32", "num"),
    "top_p": ("float32", "num"),
    "suffix": ("string", "str"),
}
_OPENAI_EMBED_FIELDS: Fields = {
    "model": ("string", "str"),
    "dimensions": ("int", "int"),
    "encoding_format": ("string", "str"),
}
_RESPONSES_FIELDS: Fields = {
    "model": ("string", "str"),
    "instructions": ("string", "str"),
    "stream": ("bool", "bool"),
    "tools": ("[]openai.ResponsesTool", "list"),
    "max_output_tokens": ("int", "int"),
    "temperature": ("float64", "num"),
    "top_p": ("float64", "num"),
    "reasoning": ("openai.ResponsesReasoning", "dict"),
    "text": ("openai.ResponsesText", "dict"),
    "background": ("bool", "bool"),
}
_ANTHROPIC_FIELDS: Fields = {
    "model": ("string", "str"),
    "max_tokens": ("int", "int"),
    "messages": ("[]anthropic.MessageParam", "list"),
    "stream": ("bool", "bool"),
    "tools": ("[]anthropic.Tool", "list"),
    "thinking": ("anthropic.ThinkingConfig", "dict"),
    "temperature": ("float64", "num"),
    "top_p": ("float64", "num"),
    "top_k": ("int", "int"),
    "stop_sequences": ("[]string", "list"),
}


def _think_value(v: Any) -> bool | str | None:
    """api.ThinkValue: true/false or a level string."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        if v not in ("high", "medium", "low", "max"):
            raise ApiError(
                400,
                f"invalid think value: {go_quote(v)} "
                '(must be "high", "medium", "low", true, or false)',
            )
        return v
    raise ApiError(
        400, 'think must be a boolean or string ("high", "medium", "low", true, or false)'
    )


def _keep_alive_ns(v: Any) -> int | None:
    """api.Duration: seconds or a Go duration string; negative means forever."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ApiError(400, f"Unsupported type: '{_go_type_name(v)}'")
    if isinstance(v, str):
        try:
            ns = go_parse_duration(v)
        except ValueError as err:
            raise ApiError(400, str(err)) from None
    else:
        ns = FOREVER_NS if v < 0 else int(v * 1_000_000_000)
    return FOREVER_NS if ns < 0 else ns


_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PIECE_RE = re.compile(r"\s*\S+|\s+")


def _count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def _pieces(text: str) -> list[str]:
    return _PIECE_RE.findall(text)


def _call_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "call_" + "".join(random.choice(alphabet) for _ in range(8))


def _schema_instance(schema: Any, words: list[str]) -> Any:
    """A small value that satisfies a JSON schema (structured outputs, tool arguments)."""
    if not isinstance(schema, dict):
        return {}
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        required = [r for r in schema.get("required") or [] if r in props] or list(props)
        return {k: _schema_instance(props[k], words) for k in required}
    if kind == "array":
        return [_schema_instance(schema.get("items") or {"type": "string"}, words)]
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return words.pop(0) if words else "example"


#: Leading verbs dropped from a tool's name before matching it against the user's words.
_TOOL_VERBS = frozenset(
    "get set list run read write call fetch make do use find search create update delete"
    " show check".split()
)
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)


def _tool_name(tool: Any) -> str:
    fn = tool.get("function") if isinstance(tool, dict) else None
    return str((fn if isinstance(fn, dict) else {}).get("name") or "")


def _names_tool(text: str, name: str) -> bool:
    """``text`` asks for the tool ``name``: it contains the exact name as a word, or every
    word of the name (split at ``_``, ``-``, camelCase; a leading verb like ``get`` dropped;
    case-insensitive). A name that is only a verb (``Read``, ``Write``) must appear exactly."""
    if not name:
        return False
    if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
        return True
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", name)]
    if len(words) > 1 and words[0] in _TOOL_VERBS:
        words = words[1:]
    if not words or (len(words) == 1 and words[0] in _TOOL_VERBS):
        return False
    said = set(re.findall(r"[a-z0-9]+", text.lower()))
    return all(w in said for w in words)


def _asked_tool(messages: list[dict[str, Any]] | None, tools: list[Any]) -> Any:
    """The tool the stand-in calls, or None (answer in text). Deterministic:

    * only the newest request counts: walking back from the last message, a ``tool`` result
      or an ``assistant`` turn means that request was answered already -> None (so an agent's
      loop ends: call, result, text answer);
    * the newest ``user`` message with text (``<system-reminder>`` blocks, which agents like
      Claude Code add on their own, do not count) must name a tool (:func:`_names_tool`);
    * the first offered tool it names is called (arguments from the tool's JSON schema and the
      user's capitalised words, ``_schema_instance``); none named -> None.

    ``messages`` None (callers that give no conversation): the first tool, as before."""
    if not tools:
        return None
    if messages is None:
        return tools[0]
    for message in reversed(messages):
        role = message.get("role")
        if role in ("tool", "assistant"):
            return None
        if role == "user":
            text = _REMINDER.sub("", str(message.get("content") or "")).strip()
            if not text:
                continue
            return next((t for t in tools if _names_tool(text, _tool_name(t))), None)
    return None


def _proper_words(text: str) -> list[str]:
    words = re.findall(r"[A-Za-z][\w'-]*", text)
    return [w for w in words[1:] if w[0].isupper()]


@dataclasses.dataclass
class Plan:
    thinking: list[str]
    content: list[str]
    tool_calls: list[dict[str, Any]]
    done_reason: str
    prompt_tokens: int
    eval_count: int


@dataclasses.dataclass
class Runner:
    name: str
    spec: ModelSpec
    duration_ns: int
    expires_ns: int
    context_length: int
    size: int


# ----------------------------------------------------------------- the stand-in


class OllamaStandIn:
    """An in-process Ollama API stand-in: ``start()``, ``url``, ``stop()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 11434,
        version: str = DEFAULT_VERSION,
        models: Any = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        pull_delay: float = 0.0,
        token_delay: float = 0.0,
        max_queue: int = 512,
        keep_alive: str | int | float = "5m",
        context_length: int = 4096,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.version = version
        self._vkey = version_key(version)
        self.pull_delay = pull_delay
        self.token_delay = token_delay
        self.max_queue = max_queue
        self.context_length = context_length
        self.verbose = verbose
        default_keep = _keep_alive_ns(keep_alive)
        self.keep_alive_ns = 300_000_000_000 if default_keep is None else default_keep
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.models_dir = (
            self.state_dir / "models" if self.state_dir else Path.home() / ".ollama" / "models"
        )
        self._lock = threading.RLock()
        self._known = _catalogue()
        self.registry: dict[tuple[str, ...], ModelSpec] = {}
        self.models: dict[tuple[str, ...], ModelSpec] = {}
        self.blobs: dict[str, int] = {}
        self.loaded: dict[tuple[str, ...], Runner] = {}
        self.pending = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = [
            (method, _route_regex(path), getattr(self, "_h_" + handler))
            for method, path, first, handler in _ROUTES
            if self._at_least(first)
        ]
        self._configure(models)

    # ------------------------------------------------------------ setup and state

    def _at_least(self, version: str) -> bool:
        return self._vkey >= version_key(version)

    def _configure(self, models: Any) -> None:
        if isinstance(models, (str, os.PathLike)):
            models = json.loads(Path(models).read_text())
        if models is None:
            models = {}
        if isinstance(models, list):
            models = {"installed": models}
        if not isinstance(models, dict):
            raise ValueError("models must be a list or an object")
        unknown = set(models) - {"installed", "registry", "loaded"}
        if unknown:
            raise ValueError(f"unknown models key(s): {sorted(unknown)}")
        for key, entry in self._known.items():
            self.registry[key] = ModelSpec.from_obj(entry, {})
        for obj in models.get("registry") or []:
            spec = ModelSpec.from_obj(obj, self._known)
            self.registry[spec.parsed.key()] = spec
        installed = [ModelSpec.from_obj(obj, self._known) for obj in models.get("installed") or []]
        for spec in installed:
            key = spec.parsed.key()
            self.registry.setdefault(key, copy.deepcopy(spec))
            if spec.pull_delay is None and self.registry[key].pull_delay is not None:
                spec.pull_delay = self.registry[key].pull_delay
        if not self._load_state():
            for spec in installed:
                self._install(spec, save=False)
            self._save_state()
        for obj in models.get("loaded") or []:
            entry = {"name": obj} if isinstance(obj, str) else dict(obj)
            name = parse_name(entry["name"])
            spec = self.models.get(name.key()) if name else None
            if spec is None:
                raise ValueError(f"loaded model {entry['name']!r} is not installed")
            self._load(spec, _keep_alive_ns(entry.get("keep_alive")), None)

    def _state_file(self) -> Path | None:
        return self.state_dir / "state.json" if self.state_dir else None

    def _load_state(self) -> bool:
        path = self._state_file()
        if path is None or not path.exists():
            return False
        data = json.loads(path.read_text())
        for obj in data.get("models", []):
            spec = ModelSpec(**obj)
            self.models[spec.parsed.key()] = spec
        self.blobs = {k: int(v) for k, v in data.get("blobs", {}).items()}
        return True

    def _save_state(self) -> None:
        path = self._state_file()
        if path is None:
            return
        with self._lock:
            data = {
                "models": [dataclasses.asdict(s) for s in self.models.values()],
                "blobs": self.blobs,
            }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    def _install(self, spec: ModelSpec, save: bool = True) -> None:
        with self._lock:
            self.models[spec.parsed.key()] = spec
            for digest, size, _media in spec.layers:
                self.blobs[digest] = size
        if save:
            self._save_state()

    def _find(self, name: ModelName) -> ModelSpec | None:
        with self._lock:
            return self.models.get(name.key())

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> OllamaStandIn:
        server = _Server((self.host, self.port), _Handler)
        server.standin = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ollama-standin-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OllamaStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def installed(self) -> list[str]:
        with self._lock:
            return sorted(s.name for s in self.models.values())

    def running(self) -> list[str]:
        now = time.time_ns()
        with self._lock:
            return sorted(r.name for r in self.loaded.values() if r.expires_ns > now)

    # ------------------------------------------------------------ routing

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Reply:
        path = unquote(urlsplit(raw_path).path) or "/"
        for route_method, regex, handler in self._routes:
            if route_method != method:
                continue
            m = regex.fullmatch(path)
            if m:
                request = Request(method, path, m.groupdict(), headers, body)
                try:
                    return handler(request)
                except ApiError as err:
                    return gin_json(err.status, {"error": err.message})
                except GoJSONError as err:
                    message = "missing request body" if err.eof else err.message
                    return gin_json(400, {"error": message})
        if path != "/" and path.endswith("/"):
            trimmed = path.rstrip("/") or "/"
            if any(rm == method and rx.fullmatch(trimmed) for rm, rx, _ in self._routes):
                code = 301 if method == "GET" else 307
                headers_out = [("Location", trimmed)]
                if method in ("GET", "HEAD"):
                    reason = "Moved Permanently" if code == 301 else "Temporary Redirect"
                    body_text = f'<a href="{trimmed}">{reason}</a>.\n\n'
                    return Reply(
                        code,
                        [*headers_out, ("Content-Type", "text/html; charset=utf-8")],
                        body_text.encode(),
                    )
                return Reply(code, headers_out)
        if self._at_least("0.7.0"):
            allowed = [
                m
                for m in _METHOD_ORDER
                if any(rm == m and rx.fullmatch(path) for rm, rx, _ in self._routes)
            ]
            if allowed:
                reply = text_reply(405, "405 method not allowed")
                reply.headers.append(("Allow", ", ".join(allowed)))
                return reply
        return not_found()

    # ------------------------------------------------------------ simple routes

    def _h_root(self, req: Request) -> Reply:
        return text_reply(200, "Ollama is running", "text/plain; charset=utf-8")

    def _h_version(self, req: Request) -> Reply:
        return gin_json(200, {"version": self.version})

    def _details(self, spec: ModelSpec, parent: str = "") -> dict[str, Any]:
        return {
            "parent_model": parent,
            "format": spec.format,
            "family": spec.family,
            "families": spec.families,
            "parameter_size": spec.parameter_size,
            "quantization_level": spec.quantization_level,
        }

    def _sorted_models(self) -> list[ModelSpec]:
        with self._lock:
            specs = list(self.models.values())
        return sorted(specs, key=lambda s: s.modified_ns // 1_000_000_000, reverse=True)

    def _h_tags(self, req: Request) -> Reply:
        models = []
        for spec in self._sorted_models():
            entry: dict[str, Any] = {
                "name": spec.name,
                "model": spec.name,
                "modified_at": rfc3339_local(spec.modified_ns),
                "size": spec.size,
                "digest": spec.digest,
                "details": self._details(spec),
            }
            if self._at_least("0.30.0"):
                entry["details"]["context_length"] = spec.context_length
                entry["details"]["embedding_length"] = spec.embedding_length
                entry["capabilities"] = list(spec.capabilities)
            models.append(entry)
        return gin_json(200, {"models": models})

    def _h_ps(self, req: Request) -> Reply:
        now = time.time_ns()
        with self._lock:
            for key in [k for k, r in self.loaded.items() if r.expires_ns <= now]:
                del self.loaded[key]
            runners = sorted(self.loaded.values(), key=lambda r: r.expires_ns, reverse=True)
            models = []
            for r in runners:
                entry: dict[str, Any] = {
                    "name": r.name,
                    "model": r.name,
                    "size": r.size,
                    "digest": r.spec.digest,
                    "details": self._details(r.spec),
                    "expires_at": rfc3339_local(r.expires_ns),
                    "size_vram": r.size,
                }
                if self._at_least("0.10.0"):
                    entry["context_length"] = r.context_length
                models.append(entry)
        return gin_json(200, {"models": models})

    # ------------------------------------------------------------ show / copy / delete

    def _show_response(self, spec: ModelSpec, system: str | None = None) -> dict[str, Any]:
        lines = []
        for key, value in spec.parameters.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                rendered = go_quote(v) if isinstance(v, str) else go_json(v)
                lines.append(f"{key:<30} {rendered}")
        parameters = "\n".join(lines)
        blob = spec.layers[0][0]
        modelfile = [
            '# Modelfile generated by "ollama show"',
            "# To build a new Modelfile based on this, replace FROM with:",
            f"# FROM {spec.name}",
            "",
            f"FROM {self.models_dir / 'blobs' / ('sha256-' + blob)}",
            f'TEMPLATE """{spec.template}"""',
        ]
        if spec.system:
            modelfile.append(f'SYSTEM """{spec.system}"""')
        for key, value in spec.parameters.items():
            for v in value if isinstance(value, list) else [value]:
                modelfile.append(f"PARAMETER {key} {v}")
        if spec.license:
            modelfile.append(f'LICENSE """{spec.license}"""')
        resp: dict[str, Any] = {}
        if spec.license:
            resp["license"] = spec.license
        resp["modelfile"] = "\n".join(modelfile) + "\n"
        if parameters:
            resp["parameters"] = parameters
        resp["template"] = spec.template
        system_text = system or spec.system
        if system_text:
            resp["system"] = system_text
        resp["details"] = self._details(spec, spec.parent_model)
        arch = spec.family or "llama"
        info = {
            "general.architecture": arch,
            "general.file_type": 15,
            "general.parameter_count": _parameter_count(spec.parameter_size),
            "general.quantization_version": 2,
            f"{arch}.context_length": spec.context_length,
            f"{arch}.embedding_length": spec.embedding_length,
            f"{arch}.block_count": 28,
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.tokens": [],
        }
        resp["model_info"] = dict(sorted(info.items()))
        if self._at_least("0.6.1"):
            resp["tensors"] = [
                {
                    "name": "token_embd.weight",
                    "type": "Q6_K",
                    "shape": [spec.embedding_length, 128256],
                },
                {
                    "name": "blk.0.attn_q.weight",
                    "type": "Q4_K",
                    "shape": [spec.embedding_length] * 2,
                },
                {"name": "output_norm.weight", "type": "F32", "shape": [spec.embedding_length]},
            ]
        resp["capabilities"] = list(spec.capabilities)
        resp["modified_at"] = rfc3339_local(spec.modified_ns)
        return resp

    def _show(self, data: dict[str, Any]) -> dict[str, Any]:
        requested = data.get("model") or data.get("name") or ""
        if not requested:
            raise ApiError(400, "model is required")
        name = parse_name(requested)
        if name is None:
            raise ApiError(400, "invalid model name")
        spec = self._find(name)
        if spec is None:
            shown = name.short() if self._at_least("0.30.0") else requested
            raise ApiError(404, f"model '{shown}' not found")
        return self._show_response(spec, data.get("system"))

    def _h_show(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.ShowRequest", _SHOW_FIELDS)
        return gin_json(200, self._show(data))

    def _h_copy(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.CopyRequest", _COPY_FIELDS)
        source, destination = data.get("source", ""), data.get("destination", "")
        src = parse_name(source)
        if src is None:
            raise ApiError(400, f"source {go_quote(source)} is invalid")
        dst = parse_name(destination)
        if dst is None:
            raise ApiError(400, f"destination {go_quote(destination)} is invalid")
        spec = self._find(src)
        if spec is None:
            raise ApiError(404, f"model {go_quote(source)} not found")
        new = copy.deepcopy(spec)
        existing = self._find(dst)
        new.name = existing.name if existing else dst.short()
        new.modified_ns = time.time_ns()
        self._install(new)
        return Reply(200, [])

    def _h_delete(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.DeleteRequest", _MODEL_FIELDS)
        requested = data.get("model") or data.get("name") or ""
        name = parse_name(requested) if requested else None
        if name is None:
            raise ApiError(400, f"name {go_quote(requested)} is invalid")
        with self._lock:
            spec = self.models.pop(name.key(), None)
            if spec is not None:
                used = {layer[0] for s in self.models.values() for layer in s.layers}
                for digest, _size, _media in spec.layers:
                    if digest not in used:
                        self.blobs.pop(digest, None)
        if spec is None:
            raise ApiError(404, f"model '{requested}' not found")
        self._save_state()
        return Reply(200, [])

    # ------------------------------------------------------------ blobs

    def _h_head_blob(self, req: Request) -> Reply:
        digest = req.params["digest"]
        if not re.fullmatch(r"sha256[:-][0-9a-f]{64}", digest):
            raise ApiError(400, "invalid digest format")
        with self._lock:
            known = digest[7:] in self.blobs
        if not known:
            raise ApiError(404, f"blob {go_quote(digest)} not found")
        return Reply(200, [])

    def _h_create_blob(self, req: Request) -> Reply:
        digest = req.params["digest"]
        if not re.fullmatch(r"sha256[:-][0-9a-f]{64}", digest):
            raise ApiError(400, "invalid digest format")
        with self._lock:
            if digest[7:] in self.blobs:
                return Reply(200, [])
        actual = "sha256:" + hashlib.sha256(req.body).hexdigest()
        if actual != digest.replace("-", ":", 1):
            raise ApiError(
                400, f"digest mismatch, expected {go_quote(digest)}, got {go_quote(actual)}"
            )
        with self._lock:
            self.blobs[actual[7:]] = len(req.body)
        self._save_state()
        return Reply(201, [])

    # ------------------------------------------------------------ progress streams

    def _sleep(self, delay: float | None) -> None:
        if delay:
            time.sleep(delay)

    def _pull_events(self, name: ModelName) -> Iterator[Any]:
        """PullModel's progress lines; installs the model when the manifest is written."""
        yield {"status": "pulling manifest"}
        with self._lock:
            remote = self.registry.get(name.key())
            existing = self.models.get(name.key())
        delay = self.pull_delay
        if remote is not None and remote.pull_delay is not None:
            delay = remote.pull_delay
        self._sleep(delay)
        if remote is None:
            yield StreamError(PULL_MANIFEST_MISSING)
            return
        for digest, size, _media in remote.layers:
            status = f"pulling {digest[:12]}"
            with self._lock:
                present = digest in self.blobs
            if present:
                yield {
                    "status": status,
                    "digest": "sha256:" + digest,
                    "total": size,
                    "completed": size,
                }
                self._sleep(delay)
                continue
            yield {"status": status, "digest": "sha256:" + digest, "total": size}
            steps = 3 if size > 1_000_000 else 1
            for step in range(1, steps + 1):
                self._sleep(delay)
                completed = size * step // steps
                yield {
                    "status": status,
                    "digest": "sha256:" + digest,
                    "total": size,
                    "completed": completed,
                }
        yield {"status": "verifying sha256 digest"}
        self._sleep(delay)
        yield {"status": "writing manifest"}
        spec = copy.deepcopy(remote)
        spec.name = existing.name if existing else name.short()
        spec.modified_ns = time.time_ns()
        self._install(spec)
        if existing is not None and existing.digest != spec.digest:
            yield {"status": "removing unused layers"}
        self._sleep(delay)
        yield {"status": "success"}

    def _h_pull(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.PullRequest", _MODEL_FIELDS)
        requested = data.get("model") or data.get("name") or ""
        name = parse_name(requested) if requested else None
        if name is None:
            raise ApiError(400, "invalid model name")
        events = self._pull_events(name)
        return self._render_native(
            Outcome(data.get("stream") is not False, "progress", events=events)
        )

    def _push_events(self, requested: str) -> Iterator[Any]:
        yield {"status": "retrieving manifest"}
        name = parse_name(requested)
        spec = self._find(name) if name else None
        if spec is None:
            yield {"status": "couldn't retrieve manifest"}
            n = name or ModelName(DEFAULT_REGISTRY, DEFAULT_NAMESPACE, requested, DEFAULT_TAG)
            path = self.models_dir / "manifests" / n.host / n.namespace / n.model / n.tag
            yield StreamError(f"open {path}: no such file or directory")
            return
        delay = spec.pull_delay if spec.pull_delay is not None else self.pull_delay
        for digest, size, _media in spec.layers:
            self._sleep(delay)
            yield {
                "status": f"pushing {digest[:12]}",
                "digest": "sha256:" + digest,
                "total": size,
                "completed": size,
            }
        self._sleep(delay)
        yield {"status": "pushing manifest"}
        yield {"status": "success"}

    def _h_push(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.PushRequest", _MODEL_FIELDS)
        requested = data.get("model") or data.get("name") or ""
        if not requested:
            raise ApiError(400, "model is required")
        events = self._push_events(requested)
        return self._render_native(
            Outcome(data.get("stream") is not False, "progress", events=events)
        )

    def _create_events(self, name: ModelName, data: dict[str, Any]) -> Iterator[Any]:
        source = data.get("from") or ""
        files = data.get("files") or {}
        if not source and not files:
            yield StreamError("neither 'from' or 'files' was specified", 400)
            return
        if source:
            base_name = parse_name(source)
            if base_name is None:
                yield StreamError("invalid model name", 400)
                return
            base = self._find(base_name)
            if base is None:
                pulled = yield from self._pull_for_create(base_name)
                if not pulled:
                    return
                base = self._find(base_name)
                assert base is not None
            spec = copy.deepcopy(base)
            spec.parent_model = base.name
        else:
            yield {"status": "parsing GGUF"}
            digests = []
            for digest in files.values():
                hexd = str(digest).split(":", 1)[-1]
                with self._lock:
                    size = self.blobs.get(hexd)
                if size is None:
                    blob = self.models_dir / "blobs" / f"sha256-{hexd}"
                    yield StreamError(f"open {blob}: no such file or directory", 400)
                    return
                digests.append([hexd, size, "application/vnd.ollama.image.model"])
            spec = ModelSpec(name=name.short(), size=sum(d[1] for d in digests), layers=digests)
        spec.name = name.short()
        for field in ("system", "template"):
            if isinstance(data.get(field), str):
                setattr(spec, field, data[field])
        if isinstance(data.get("license"), str):
            spec.license = data["license"]
        elif isinstance(data.get("license"), list):
            spec.license = "\n".join(str(x) for x in data["license"])
        if isinstance(data.get("parameters"), dict):
            spec.parameters = {**spec.parameters, **data["parameters"]}
        base_layers = [layer for layer in spec.layers if layer[2].endswith(".model")]
        new_layers = spec._small_layers()
        with self._lock:
            known_blobs = set(self.blobs)
        for digest, _size, _media in base_layers:
            yield {"status": f"using existing layer sha256:{digest}"}
        for digest, _size, _media in new_layers:
            verb = "using existing layer" if digest in known_blobs else "creating new layer"
            yield {"status": f"{verb} sha256:{digest}"}
        spec.layers = [*base_layers, *new_layers]
        spec.size = sum(layer[1] for layer in spec.layers)
        spec.digest = spec.manifest_digest()
        spec.modified_ns = time.time_ns()
        if "num_ctx" in spec.parameters:
            try:
                spec.context_length = min(spec.context_length, int(spec.parameters["num_ctx"]))
            except (TypeError, ValueError):
                pass
        yield {"status": "writing manifest"}
        self._install(spec)
        yield {"status": "success"}

    def _pull_for_create(self, name: ModelName) -> Iterator[Any]:
        ok = True
        for event in self._pull_events(name):
            if isinstance(event, StreamError):
                ok = False
            if isinstance(event, dict) and event.get("status") == "success":
                continue
            yield event
        return ok

    def _h_create(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.CreateRequest", _CREATE_FIELDS)
        name = parse_name(data.get("model") or data.get("name") or "")
        if name is None:
            raise ApiError(400, "invalid model name")
        events = self._create_events(name, data)
        return self._render_native(
            Outcome(data.get("stream") is not False, "progress", events=events)
        )

    # ------------------------------------------------------------ rendering native

    def _render_native(self, outcome: Outcome) -> Reply:
        if outcome.body is not None:
            return gin_json(200, outcome.body)
        assert outcome.events is not None
        if outcome.stream:
            first, events = _peek(outcome.events)
            if isinstance(first, StreamError):
                _closing(outcome.events)()
                return plain_json(first.status or 500, {"error": first.message})

            def lines() -> Iterator[bytes]:
                try:
                    for event in events:
                        if isinstance(event, StreamError):
                            yield go_bytes({"error": event.message}) + b"\n"
                            return
                        yield go_bytes(event) + b"\n"
                finally:
                    _closing(outcome.events)()

            return Reply(200, [("Content-Type", CT_NDJSON)], chunks=lines())
        if outcome.kind == "progress":
            latest: dict[str, Any] = {}
            for event in outcome.events:
                if isinstance(event, StreamError):
                    return plain_json(event.status or 500, {"error": event.message})
                latest = event
            return plain_json(200, latest)
        result = self._collect(outcome)
        if isinstance(result, StreamError):
            return gin_json(result.status or 500, {"error": result.message})
        return gin_json(200, result)

    def _collect(self, outcome: Outcome) -> dict[str, Any] | StreamError:
        """The non-streaming accumulation of ChatHandler/GenerateHandler."""
        assert outcome.events is not None
        content: list[str] = []
        thinking: list[str] = []
        tool_calls: list[Any] = []
        last: dict[str, Any] | None = None
        for event in outcome.events:
            if isinstance(event, StreamError):
                return event
            if outcome.kind == "chat":
                content.append(event["message"].get("content", ""))
                thinking.append(event["message"].get("thinking", ""))
                if outcome.has_tools:
                    tool_calls.extend(event["message"].get("tool_calls", []))
            else:
                content.append(event.get("response", ""))
                thinking.append(event.get("thinking", ""))
            last = event
        assert last is not None
        result = dict(last)
        if outcome.kind == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
            if "".join(thinking):
                message["thinking"] = "".join(thinking)
            if tool_calls:
                message["tool_calls"] = tool_calls
            result["message"] = message
        else:
            result["response"] = "".join(content)
            if "".join(thinking):
                rebuilt: dict[str, Any] = {}
                for key, value in result.items():
                    rebuilt[key] = value
                    if key == "response":
                        rebuilt["thinking"] = "".join(thinking)
                result = rebuilt
        return result

    # ------------------------------------------------------------ scheduling

    def _load(self, spec: ModelSpec, keep_ns: int | None, options: dict[str, Any] | None) -> bool:
        """Load (or refresh) a runner; True when it was not loaded before."""
        key = spec.parsed.key()
        now = time.time_ns()
        num_ctx = self.context_length
        for source in (spec.parameters, options or {}):
            if isinstance(source.get("num_ctx"), (int, float)) and source["num_ctx"] > 0:
                num_ctx = int(source["num_ctx"])
        context = min(num_ctx, spec.context_length) if spec.context_length else num_ctx
        with self._lock:
            runner = self.loaded.get(key)
            if runner is not None and (
                runner.expires_ns <= now or runner.context_length != context
            ):
                runner = None
            duration = keep_ns
            if duration is None:
                duration = runner.duration_ns if runner else self.keep_alive_ns
            size = spec.size + context * 32 * 1024
            self.loaded[key] = Runner(spec.name, spec, duration, now + duration, context, size)
            return runner is None

    def _touch(self, key: tuple[str, ...]) -> None:
        with self._lock:
            runner = self.loaded.get(key)
            if runner is not None:
                runner.expires_ns = time.time_ns() + runner.duration_ns

    def _schedule(
        self,
        spec: ModelSpec,
        caps: list[str],
        keep_ns: int | None,
        options: dict[str, Any] | None,
    ) -> int:
        """scheduleRunner: capability checks, the queue limit, loading. Returns load ns."""
        missing = [c for c in caps if c not in spec.capabilities]
        if "completion" in missing:
            raise _NoCompletion()
        if missing:
            raise ApiError(400, f"{spec.parsed.full()} does not support {missing[0]}")
        with self._lock:
            if self.pending >= self.max_queue:
                raise ApiError(503, MAX_QUEUE_MSG)
        started = time.monotonic_ns()
        fresh = self._load(spec, keep_ns, options)
        return max(1, time.monotonic_ns() - started) + (250_000_000 if fresh else 0)

    def _resolve(self, requested: str, empty: tuple[int, str]) -> tuple[ModelName, ModelSpec]:
        if not requested:
            raise ApiError(*empty)
        name = parse_name(requested)
        if name is None:
            raise ApiError(400, "invalid model name")
        spec = self._find(name)
        if spec is None:
            raise ApiError(404, f"model '{requested}' not found")
        return name, spec

    def _thinking_on(self, spec: ModelSpec, model: str, think: Any, relax: bool) -> bool:
        if not self._at_least("0.9.0"):
            return False
        if "thinking" in spec.capabilities:
            return think is not False
        if think is not None and think is not False:
            if relax:
                return False
            if self._at_least("0.12.5"):
                raise ApiError(400, f"{go_quote(model)} does not support thinking")
            raise ApiError(400, f"{spec.parsed.full()} does not support thinking")
        return False

    # ------------------------------------------------------------ generation

    def _plan(
        self,
        spec: ModelSpec,
        texts: list[str],
        last_user: str,
        tool_result: str | None,
        think: bool,
        tools: list[Any],
        fmt: Any,
        num_predict: Any,
        asked_in: list[dict[str, Any]] | None = None,
    ) -> Plan:
        """What the "model" answers. It calls a tool only when the conversation asks for one
        (:func:`_asked_tool`; ``asked_in`` = the chat messages), else it answers in text."""
        if tool_result is not None:
            reply = f"The tool returned: {tool_result.strip()[:200]}"
        else:
            reply = spec.response if spec.response is not None else DEFAULT_REPLY
        if fmt == "json":
            reply = go_json({"response": reply})
        elif isinstance(fmt, dict):
            reply = go_json(_schema_instance(fmt, _proper_words(last_user)))
        thinking = _pieces(spec.thinking or DEFAULT_THINKING) if think else []
        content = _pieces(reply)
        calls: list[dict[str, Any]] = []
        asked = _asked_tool(asked_in, tools) if tool_result is None else None
        if asked is not None:
            content = []
            for index, tool in enumerate([asked]):
                fn = tool.get("function") if isinstance(tool, dict) else None
                fn = fn if isinstance(fn, dict) else {}
                args = _schema_instance(
                    fn.get("parameters") or {"type": "object"}, _proper_words(last_user)
                )
                if not isinstance(args, dict):
                    args = {}
                function: dict[str, Any] = {
                    "index": index,
                    "name": fn.get("name") or "tool",
                    "arguments": args,
                }
                if not self._at_least("0.12.6") and index == 0:
                    del function["index"]
                call: dict[str, Any] = {"function": function}
                if self._at_least("0.12.10"):
                    call = {"id": _call_id(), "function": function}
                calls.append(call)
        done_reason = "stop"
        tool_tokens = sum(len(go_json(c["function"]["arguments"])) // 4 + 1 for c in calls)
        limit = (
            num_predict
            if isinstance(num_predict, int) and not isinstance(num_predict, bool)
            else -1
        )
        if limit >= 0 and len(thinking) + len(content) + tool_tokens > limit:
            thinking = thinking[:limit]
            content = content[: max(0, limit - len(thinking))]
            calls = []
            tool_tokens = 0
            done_reason = "length"
        prompt_tokens = max(1, sum(_count_tokens(t) for t in texts) + 10)
        eval_count = max(1, len(thinking) + len(content) + tool_tokens)
        return Plan(thinking, content, calls, done_reason, prompt_tokens, eval_count)

    def _metrics(self, plan: Plan, started: int, load_ns: int, gen_started: int) -> dict[str, int]:
        now = time.monotonic_ns()
        return {
            "total_duration": max(1, now - started) + load_ns,
            "load_duration": load_ns,
            "prompt_eval_count": plan.prompt_tokens,
            "prompt_eval_duration": plan.prompt_tokens * 150_000 + 1,
            "eval_count": plan.eval_count,
            "eval_duration": max(1, now - gen_started) + plan.eval_count * 1_000_000,
        }

    def _run(
        self,
        kind: str,
        spec: ModelSpec,
        model: str,
        plan: Plan,
        started: int,
        load_ns: int,
        raw: bool = False,
    ) -> Iterator[Any]:
        """The runner's completion callback stream, as native chunks."""
        key = spec.parsed.key()
        delay = spec.token_delay if spec.token_delay is not None else self.token_delay
        pieces: list[tuple[str, Any]] = [("thinking", t) for t in plan.thinking]
        pieces += [("content", c) for c in plan.content]
        if plan.tool_calls:
            pieces.append(("tools", plan.tool_calls))
        with self._lock:
            self.pending += 1
        gen_started = time.monotonic_ns()
        try:
            sent = 0
            for piece_kind, value in pieces:
                if spec.fail_after is not None and sent >= spec.fail_after:
                    yield StreamError(spec.fail_message)
                    return
                if sent:
                    self._sleep(delay)
                yield self._chunk(kind, model, piece_kind, value)
                sent += 1
            if spec.fail_after is not None and sent >= spec.fail_after:
                yield StreamError(spec.fail_message)
                return
            if sent:
                self._sleep(delay)
            final = self._chunk(kind, model, "content", "", done=True)
            if self._at_least("0.1.35"):
                final["done_reason"] = plan.done_reason
            if kind == "generate" and not raw:
                final["context"] = [128000 + (i * 7919) % 1000 for i in range(plan.prompt_tokens)]
            final.update(self._metrics(plan, started, load_ns, gen_started))
            yield final
        finally:
            with self._lock:
                self.pending -= 1
            self._touch(key)

    def _chunk(
        self, kind: str, model: str, piece: str, value: Any, done: bool = False
    ) -> dict[str, Any]:
        if kind == "chat":
            message: dict[str, Any] = {
                "role": "assistant",
                "content": value if piece == "content" else "",
            }
            if piece == "thinking":
                message["thinking"] = value
            if piece == "tools":
                message["tool_calls"] = value
            return {"model": model, "created_at": rfc3339_utc(), "message": message, "done": done}
        chunk: dict[str, Any] = {
            "model": model,
            "created_at": rfc3339_utc(),
            "response": value if piece == "content" else "",
        }
        if piece == "thinking":
            chunk["thinking"] = value
        chunk["done"] = done
        return chunk

    def _chat_core(self, data: dict[str, Any], relax_thinking: bool = False) -> Outcome:
        """ChatHandler after binding."""
        started = time.monotonic_ns()
        keep_ns = _keep_alive_ns(data.get("keep_alive"))
        think = _think_value(data.get("think"))
        top = data.get("top_logprobs") or 0
        if self._at_least("0.12.11") and not 0 <= top <= 20:
            raise ApiError(400, "top_logprobs must be between 0 and 20")
        requested = data.get("model") or ""
        name, spec = self._resolve(requested, (400, "model is required"))
        messages = [m for m in data.get("messages") or [] if isinstance(m, dict)]
        stream = data.get("stream") is not False
        if not messages and keep_ns == 0 and self._at_least("0.3.11"):
            with self._lock:
                self.loaded.pop(name.key(), None)
            return Outcome(stream, "chat", body=self._chat_done(requested, "unload"))
        tools = [t for t in data.get("tools") or [] if isinstance(t, dict)]
        think_on = self._thinking_on(spec, requested, think, relax_thinking)
        caps = ["completion"] + (["tools"] if tools else [])
        options = data.get("options") if isinstance(data.get("options"), dict) else {}
        try:
            load_ns = self._schedule(spec, caps, keep_ns, options)
        except _NoCompletion:
            raise ApiError(400, f"{go_quote(requested)} does not support chat") from None
        if not messages:
            return Outcome(stream, "chat", body=self._chat_done(requested, "load"))
        texts = [spec.system] + [str(m.get("content") or "") for m in messages]
        texts += [go_json(tools)] if tools else []
        last = messages[-1]
        tool_result = str(last.get("content") or "") if last.get("role") == "tool" else None
        last_user = next(
            (str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), ""
        )
        plan = self._plan(
            spec,
            texts,
            last_user,
            tool_result,
            think_on,
            tools,
            data.get("format"),
            options.get("num_predict"),
            messages,
        )
        events = self._run("chat", spec, requested, plan, started, load_ns)
        return Outcome(stream, "chat", events=events, has_tools=bool(tools))

    def _chat_done(self, model: str, reason: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "created_at": rfc3339_utc(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
        }
        if self._at_least("0.1.35"):
            body["done_reason"] = reason
        return body

    def _generate_core(self, data: dict[str, Any]) -> Outcome:
        """GenerateHandler after binding."""
        started = time.monotonic_ns()
        keep_ns = _keep_alive_ns(data.get("keep_alive"))
        think = _think_value(data.get("think"))
        top = data.get("top_logprobs") or 0
        if self._at_least("0.12.11") and not 0 <= top <= 20:
            raise ApiError(400, "top_logprobs must be between 0 and 20")
        requested = data.get("model") or ""
        name, spec = self._resolve(requested, (404, "model '' not found"))
        prompt = data.get("prompt") or ""
        stream = data.get("stream") is not False
        if not prompt and keep_ns == 0 and self._at_least("0.3.11"):
            with self._lock:
                self.loaded.pop(name.key(), None)
            return Outcome(stream, "generate", body=self._generate_done(requested, "unload"))
        think_on = self._thinking_on(spec, requested, think, False)
        caps = ["completion"] + (["insert"] if data.get("suffix") else [])
        options = data.get("options") if isinstance(data.get("options"), dict) else {}
        try:
            load_ns = self._schedule(spec, caps, keep_ns, options)
        except _NoCompletion:
            raise ApiError(400, f"{go_quote(requested)} does not support generate") from None
        if not prompt:
            return Outcome(stream, "generate", body=self._generate_done(requested, "load"))
        texts = [data.get("system") or spec.system, prompt, data.get("suffix") or ""]
        plan = self._plan(
            spec, texts, prompt, None, think_on, [], data.get("format"), options.get("num_predict")
        )
        events = self._run(
            "generate", spec, requested, plan, started, load_ns, bool(data.get("raw"))
        )
        return Outcome(stream, "generate", events=events)

    def _generate_done(self, model: str, reason: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "created_at": rfc3339_utc(),
            "response": "",
            "done": True,
        }
        if self._at_least("0.1.35"):
            body["done_reason"] = reason
        return body

    def _h_chat(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.ChatRequest", _CHAT_FIELDS)
        for message in data.get("messages") or []:
            if not isinstance(message, dict):
                raise ApiError(
                    400,
                    f"json: cannot unmarshal {_json_kind(message)} into Go struct field "
                    "ChatRequest.messages of type api.Message",
                )
            for field in ("role", "content"):
                if message.get(field) is not None and not isinstance(message.get(field), str):
                    raise ApiError(
                        400,
                        f"json: cannot unmarshal {_json_kind(message[field])} into Go struct "
                        f"field ChatRequest.messages.{field} of type string",
                    )
        return self._render_native(self._chat_core(data))

    def _h_generate(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.GenerateRequest", _GENERATE_FIELDS)
        return self._render_native(self._generate_core(data))

    # ------------------------------------------------------------ embeddings

    def _vector(self, spec: ModelSpec, text: str, normalise: bool = True) -> list[float]:
        seed = hashlib.sha256(f"{spec.name}\0{text}".encode()).digest()
        rng = random.Random(seed)
        values = [rng.gauss(0.0, 1.0) for _ in range(max(1, spec.embedding_length))]
        if normalise:
            norm = math.sqrt(sum(v * v for v in values)) or 1.0
            return [F32(v / norm) for v in values]
        return [v * 0.37 for v in values]

    def _embed_core(self, data: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic_ns()
        requested = data.get("model") or ""
        if not requested:
            raise ApiError(404, "model '' not found")
        name = parse_name(requested)
        if name is None:
            raise ApiError(400, "invalid model name")
        raw_input = data.get("input")
        inputs: list[str] = []
        if isinstance(raw_input, str):
            if raw_input:
                inputs.append(raw_input)
        elif isinstance(raw_input, list):
            for item in raw_input:
                if not isinstance(item, str):
                    raise ApiError(400, "invalid input type")
                inputs.append(item)
        elif raw_input is not None:
            raise ApiError(400, "invalid input type")
        spec = self._find(name)
        if spec is None:
            raise ApiError(404, f"model {go_quote(requested)} not found, try pulling it first")
        load_ns = self._schedule(
            spec, [], _keep_alive_ns(data.get("keep_alive")), data.get("options")
        )
        if not inputs:
            return {"model": requested, "embeddings": []}
        vectors = [self._vector(spec, text) for text in inputs]
        dims = data.get("dimensions") or 0
        if 0 < dims < len(vectors[0]):
            trimmed = []
            for vector in vectors:
                part = vector[:dims]
                norm = math.sqrt(sum(v * v for v in part)) or 1.0
                trimmed.append([F32(v / norm) for v in part])
            vectors = trimmed
        return {
            "model": requested,
            "embeddings": vectors,
            "total_duration": max(1, time.monotonic_ns() - started) + load_ns,
            "load_duration": load_ns,
            "prompt_eval_count": sum(max(1, _count_tokens(t)) for t in inputs),
        }

    def _h_embed(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.EmbedRequest", _EMBED_FIELDS)
        return gin_json(200, self._embed_core(data))

    def _h_embeddings(self, req: Request) -> Reply:
        data = go_bind(req.body, "api.EmbeddingRequest", _EMBEDDINGS_FIELDS)
        requested = data.get("model") or ""
        if not requested:
            raise ApiError(400, "model is required")
        name = parse_name(requested)
        if name is None:
            raise ApiError(400, "invalid model name")
        spec = self._find(name)
        if spec is None:
            raise ApiError(404, f"model {go_quote(requested)} not found, try pulling it first")
        self._schedule(spec, [], _keep_alive_ns(data.get("keep_alive")), data.get("options"))
        prompt = data.get("prompt") or ""
        if not prompt:
            return gin_json(200, {"embedding": []})
        return gin_json(200, {"embedding": self._vector(spec, prompt, normalise=False)})

    # ------------------------------------------------------------ OpenAI compatibility

    def _openai_error(self, status: int, message: str) -> dict[str, Any]:
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def _openai_bind(self, body: bytes, struct_name: str, fields: Fields) -> dict[str, Any]:
        try:
            return go_bind(body, struct_name, fields)
        except GoJSONError as err:
            raise MiddlewareError(400, err.message) from None

    def _openai_tool_calls(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for call in calls:
            fn = call.get("function", {})
            out.append(
                {
                    "id": call.get("id", ""),
                    "index": fn.get("index", 0),
                    "type": "function",
                    "function": {
                        "name": fn.get("name", ""),
                        "arguments": go_json(fn.get("arguments", {})),
                    },
                }
            )
        return out

    def _openai_think(self, data: dict[str, Any]) -> Any:
        effort = data.get("reasoning_effort")
        reasoning = data.get("reasoning")
        if effort is None and isinstance(reasoning, dict):
            effort = reasoning.get("effort")
        if effort is None:
            return None
        mapping: dict[str, Any] = {
            "none": False,
            "minimal": "low",
            "low": "low",
            "medium": "medium",
            "high": "high",
            "max": "max",
            "xhigh": "max",
            "ultra": "max",
        }
        if not isinstance(effort, str) or effort not in mapping:
            raise MiddlewareError(400, f"invalid reasoning value: {go_quote(str(effort))}")
        return mapping[effort]

    def _openai_messages(self, messages: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for msg in messages:
            if not isinstance(msg, dict):
                raise MiddlewareError(400, "invalid message format")
            role = str(msg.get("role") or "")
            content = msg.get("content")
            tool_calls = []
            for call in msg.get("tool_calls") or []:
                fn = (call.get("function") or {}) if isinstance(call, dict) else {}
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except (TypeError, ValueError):
                    raise MiddlewareError(400, "invalid tool call arguments") from None
                tool_calls.append({"function": {"name": fn.get("name", ""), "arguments": args}})
            if isinstance(content, str):
                entry: dict[str, Any] = {"role": role, "content": content}
                if tool_calls:
                    entry["tool_calls"] = tool_calls
                out.append(entry)
            elif isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict):
                        raise MiddlewareError(400, "invalid message format")
                    if part.get("type") == "text":
                        if not isinstance(part.get("text"), str):
                            raise MiddlewareError(400, "invalid message format")
                        out.append({"role": role, "content": part["text"]})
                    elif part.get("type") == "image_url":
                        out.append({"role": role, "content": "", "images": ["<image>"]})
                    else:
                        raise MiddlewareError(400, "invalid message format")
                if out and tool_calls:
                    out[-1]["tool_calls"] = tool_calls
            else:
                if msg.get("tool_calls") is None:
                    raise MiddlewareError(
                        400, f"invalid message content type: {_go_type_name(content)}"
                    )
                out.append({"role": role, "content": "", "tool_calls": tool_calls})
        return out

    def _h_openai_chat(self, req: Request) -> Reply:
        try:
            data = self._openai_bind(req.body, "openai.ChatCompletionRequest", _OPENAI_CHAT_FIELDS)
            if not data.get("messages"):
                raise MiddlewareError(400, "[] is too short - 'messages'")
            messages = self._openai_messages(data["messages"])
            think = self._openai_think(data)
        except MiddlewareError as err:
            return gin_json(err.status, self._openai_error(err.status, err.message))
        options: dict[str, Any] = {}
        max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
        if max_tokens is not None:
            options["num_predict"] = max_tokens
        for key in ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty"):
            if key in data:
                options[key] = data[key]
        fmt: Any = None
        response_format = data.get("response_format") or {}
        if response_format.get("type") == "json_object":
            fmt = "json"
        elif response_format.get("type") == "json_schema":
            fmt = (response_format.get("json_schema") or {}).get("schema") or {}
        stream = bool(data.get("stream"))
        include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        include_usage = include_usage and self._at_least("0.5.2")
        native = {
            "model": data.get("model", ""),
            "messages": messages,
            "stream": stream,
            "options": options,
            "format": fmt,
            "tools": data.get("tools") or [],
            "think": think,
        }
        cid = f"chatcmpl-{random.randrange(999)}"
        created = int(time.time())
        try:
            outcome = self._chat_core(native)
        except ApiError as err:
            return encoder_json(err.status, self._openai_error(err.status, err.message))
        if outcome.body is not None:
            outcome = Outcome(stream, "chat", events=iter([outcome.body]))
        assert outcome.events is not None
        if not stream:
            result = self._collect(outcome)
            if isinstance(result, StreamError):
                status = result.status or 500
                return encoder_json(status, self._openai_error(status, result.message))
            return encoder_json(200, self._openai_completion(cid, result))
        first, events = _peek(outcome.events)
        if isinstance(first, StreamError):
            _closing(outcome.events)()
            status = first.status or 500
            return encoder_json(status, self._openai_error(status, first.message))
        if self._at_least("0.32.6"):
            chunks = self._openai_stream(events, cid, created, include_usage)
        else:
            chunks = self._openai_stream_legacy(events, cid, include_usage)
        return Reply(200, [("Content-Type", CT_SSE)], chunks=chunks)

    def _openai_completion(self, cid: str, resp: dict[str, Any]) -> dict[str, Any]:
        msg = resp["message"]
        calls = self._openai_tool_calls(msg.get("tool_calls", []))
        message: dict[str, Any] = {"role": "assistant", "content": msg.get("content", "")}
        if msg.get("thinking") and self._at_least("0.11.0"):
            message["reasoning"] = msg["thinking"]
        if calls:
            message["tool_calls"] = calls
        reason = resp.get("done_reason") or ""
        if calls and not (reason == "length" and self._at_least("0.32.6")):
            reason = "tool_calls"
        return {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": resp["model"],
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": message, "finish_reason": reason or None}],
            "usage": self._usage(resp),
        }

    def _usage(self, resp: dict[str, Any]) -> dict[str, int]:
        prompt = resp.get("prompt_eval_count", 0)
        completion = resp.get("eval_count", 0)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _chunk_obj(self, cid: str, created: int, model: str, choices: list[Any]) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_ollama",
            "choices": choices,
        }

    def _openai_stream(
        self, events: Iterator[Any], cid: str, created: int, include_usage: bool
    ) -> Iterator[bytes]:
        """0.32.6+: role once, shared created, dedicated finish chunk, usage after it."""
        reasoning_ok = self._at_least("0.11.0")
        sent_any = False
        tool_sent = False
        model = ""
        final: dict[str, Any] | None = None

        def emit(delta: dict[str, Any]) -> bytes:
            nonlocal sent_any
            if not sent_any:
                delta = {"role": "assistant", **delta}
                sent_any = True
            choice = {"index": 0, "delta": delta, "finish_reason": None}
            return sse_data(self._chunk_obj(cid, created, model, [choice]))

        try:
            for event in events:
                if isinstance(event, StreamError):
                    model = ""
                    yield emit({"content": ""})
                    return
                model = event["model"]
                msg = event["message"]
                content, thinking = msg.get("content", ""), msg.get("thinking", "")
                calls = self._openai_tool_calls(msg.get("tool_calls", []))
                if thinking and reasoning_ok:
                    if content or calls:
                        yield emit({"reasoning": thinking})
                    else:
                        yield emit({"content": "", "reasoning": thinking})
                if content or calls or (not event["done"] and not (thinking and reasoning_ok)):
                    delta: dict[str, Any] = {"content": content}
                    if calls:
                        delta["tool_calls"] = calls
                        tool_sent = True
                    yield emit(delta)
                if event["done"]:
                    final = event
            if final is None:
                return
            if not sent_any:
                yield emit({"content": ""})
            native = final.get("done_reason") or ""
            reason = (
                "length"
                if native == "length"
                else ("tool_calls" if tool_sent else native or "stop")
            )
            yield sse_data(
                self._chunk_obj(
                    cid, created, model, [{"index": 0, "delta": {}, "finish_reason": reason}]
                )
            )
            if include_usage:
                usage_chunk = self._chunk_obj(cid, created, model, [])
                usage_chunk["usage"] = self._usage(final)
                yield sse_data(usage_chunk)
            yield sse_data("[DONE]")
        finally:
            _closing(events)()

    def _openai_stream_legacy(
        self, events: Iterator[Any], cid: str, include_usage: bool
    ) -> Iterator[bytes]:
        """Up to 0.32.5: one chunk per native chunk, finish_reason on the last one."""
        reasoning_ok = self._at_least("0.11.0")
        tool_sent = False
        try:
            for event in events:
                if isinstance(event, StreamError):
                    delta = {"role": "assistant", "content": ""}
                    choice = {"index": 0, "delta": delta, "finish_reason": None}
                    yield sse_data(self._chunk_obj(cid, int(time.time()), "", [choice]))
                    return
                msg = event["message"]
                calls = self._openai_tool_calls(msg.get("tool_calls", []))
                delta = {"role": "assistant", "content": msg.get("content", "")}
                if msg.get("thinking") and reasoning_ok:
                    delta["reasoning"] = msg["thinking"]
                if calls:
                    delta["tool_calls"] = calls
                finish = None
                native = event.get("done_reason") or ""
                if event["done"] and native:
                    finish = "tool_calls" if (tool_sent or calls) else native
                chunk = self._chunk_obj(
                    cid,
                    int(time.time()),
                    event["model"],
                    [{"index": 0, "delta": delta, "finish_reason": finish}],
                )
                yield sse_data(chunk)
                tool_sent = tool_sent or bool(calls)
                if event["done"]:
                    if include_usage:
                        chunk = dict(chunk)
                        chunk["choices"] = []
                        chunk["usage"] = self._usage(event)
                        yield sse_data(chunk)
                    yield sse_data("[DONE]")
        finally:
            _closing(events)()

    def _h_openai_completions(self, req: Request) -> Reply:
        try:
            data = self._openai_bind(
                req.body, "openai.CompletionRequest", _OPENAI_COMPLETION_FIELDS
            )
        except MiddlewareError as err:
            return gin_json(err.status, self._openai_error(err.status, err.message))
        options: dict[str, Any] = {}
        if data.get("max_tokens") is not None:
            options["num_predict"] = data["max_tokens"]
        for key in ("temperature", "top_p", "seed"):
            if key in data:
                options[key] = data[key]
        stream = bool(data.get("stream"))
        include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        include_usage = include_usage and self._at_least("0.5.2")
        native = {
            "model": data.get("model", ""),
            "prompt": data.get("prompt", ""),
            "suffix": data.get("suffix", ""),
            "stream": stream,
            "options": options,
        }
        cid = f"cmpl-{random.randrange(999)}"
        try:
            outcome = self._generate_core(native)
        except ApiError as err:
            return encoder_json(err.status, self._openai_error(err.status, err.message))
        if outcome.body is not None:
            outcome = Outcome(stream, "generate", events=iter([outcome.body]))
        assert outcome.events is not None
        if not stream:
            result = self._collect(outcome)
            if isinstance(result, StreamError):
                status = result.status or 500
                return encoder_json(status, self._openai_error(status, result.message))
            body = {
                "id": cid,
                "object": "text_completion",
                "created": int(time.time()),
                "model": result["model"],
                "system_fingerprint": "fp_ollama",
                "choices": [
                    {
                        "text": result.get("response", ""),
                        "index": 0,
                        "finish_reason": result.get("done_reason") or None,
                    }
                ],
                "usage": self._usage(result),
            }
            return encoder_json(200, body)
        first, events = _peek(outcome.events)
        if isinstance(first, StreamError):
            _closing(outcome.events)()
            status = first.status or 500
            return encoder_json(status, self._openai_error(status, first.message))

        def chunks() -> Iterator[bytes]:
            try:
                for event in events:
                    if isinstance(event, StreamError):
                        event = {"model": "", "response": "", "done": False}
                    chunk: dict[str, Any] = {
                        "id": cid,
                        "object": "text_completion",
                        "created": int(time.time()),
                        "choices": [
                            {
                                "text": event.get("response", ""),
                                "index": 0,
                                "finish_reason": event.get("done_reason") or None,
                            }
                        ],
                        "model": event["model"],
                        "system_fingerprint": "fp_ollama",
                    }
                    if include_usage:
                        chunk["usage"] = {
                            "prompt_tokens": 0,
                            "completion_tokens": 0,
                            "total_tokens": 0,
                        }
                    yield sse_data(chunk)
                    if not event["done"]:
                        if not event["model"]:
                            return
                        continue
                    if include_usage:
                        chunk = dict(chunk)
                        chunk["choices"] = []
                        chunk["usage"] = self._usage(event)
                        yield sse_data(chunk)
                    yield sse_data("[DONE]")
            finally:
                _closing(events)()

        return Reply(200, [("Content-Type", CT_SSE)], chunks=chunks())

    def _h_openai_embeddings(self, req: Request) -> Reply:
        try:
            data = self._openai_bind(req.body, "openai.EmbedRequest", _OPENAI_EMBED_FIELDS)
            encoding = data.get("encoding_format") or ""
            if encoding and encoding.lower() not in ("float", "base64"):
                raise MiddlewareError(
                    400,
                    f"Invalid value for 'encoding_format' = {encoding}. "
                    "Supported values: ['float', 'base64'].",
                )
            raw_input = data.get("input")
            if raw_input == "":
                raw_input = [""]
            if raw_input is None or (isinstance(raw_input, list) and not raw_input):
                raise MiddlewareError(400, "invalid input")
        except MiddlewareError as err:
            return gin_json(err.status, self._openai_error(err.status, err.message))
        model = data.get("model", "")
        native = {"model": model, "input": raw_input, "dimensions": data.get("dimensions")}
        try:
            result = self._embed_core(native)
        except ApiError as err:
            return encoder_json(err.status, self._openai_error(err.status, err.message))
        items = []
        for index, vector in enumerate(result["embeddings"]):
            embedding: Any = vector
            if encoding.lower() == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            items.append({"object": "embedding", "embedding": embedding, "index": index})
        tokens = result.get("prompt_eval_count", 0)
        body = {
            "object": "list",
            "data": items,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return encoder_json(200, body)

    def _h_openai_models(self, req: Request) -> Reply:
        data = []
        for spec in self._sorted_models():
            data.append(
                {
                    "id": spec.name,
                    "object": "model",
                    "created": spec.modified_ns // 1_000_000_000,
                    "owned_by": spec.parsed.namespace,
                }
            )
        return encoder_json(200, {"object": "list", "data": data or None})

    def _h_openai_model(self, req: Request) -> Reply:
        requested = req.params["model"]
        try:
            self._show({"name": requested})
        except ApiError as err:
            return encoder_json(err.status, self._openai_error(err.status, err.message))
        name = parse_name(requested)
        assert name is not None
        spec = self._find(name)
        assert spec is not None
        body = {
            "id": requested,
            "object": "model",
            "created": spec.modified_ns // 1_000_000_000,
            "owned_by": name.namespace,
        }
        return encoder_json(200, body)

    # ------------------------------------------------------------ OpenAI Responses

    def _responses_messages(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if isinstance(data.get("instructions"), str) and data["instructions"]:
            messages.append({"role": "system", "content": data["instructions"]})
        items = data.get("input")
        if isinstance(items, str):
            return [*messages, {"role": "user", "content": items}]
        for item in items or []:
            if not isinstance(item, dict):
                raise MiddlewareError(400, "invalid input item")
            kind = item.get("type") or "message"
            if kind == "message":
                content = item.get("content")
                if isinstance(content, list):
                    text = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
                else:
                    text = str(content or "")
                messages.append({"role": str(item.get("role") or "user"), "content": text})
            elif kind == "function_call":
                try:
                    args = json.loads(item.get("arguments") or "{}")
                except ValueError:
                    args = {}
                call = {"function": {"name": item.get("name", ""), "arguments": args}}
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            elif kind == "function_call_output":
                messages.append({"role": "tool", "content": str(item.get("output") or "")})
        return messages

    def _h_openai_responses(self, req: Request) -> Reply:
        try:
            data = self._openai_bind(req.body, "openai.ResponsesRequest", _RESPONSES_FIELDS)
            messages = self._responses_messages(data)
        except MiddlewareError as err:
            return gin_json(err.status, self._openai_error(err.status, err.message))
        stream = bool(data.get("stream"))
        extra = SSE_HEADERS if stream else []
        tools = []
        for tool in data.get("tools") or []:
            if isinstance(tool, dict) and tool.get("type") == "function":
                fn = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
                tools.append({"type": "function", "function": fn})
        options: dict[str, Any] = {}
        if data.get("max_output_tokens") is not None:
            options["num_predict"] = data["max_output_tokens"]
        reasoning = data.get("reasoning") if isinstance(data.get("reasoning"), dict) else None
        think: Any = None
        if reasoning and reasoning.get("effort"):
            think = {"none": False, "minimal": "low"}.get(reasoning["effort"], reasoning["effort"])
            if think not in (False, "low", "medium", "high", "max"):
                think = "max"
        fmt: Any = None
        text_cfg = data.get("text") if isinstance(data.get("text"), dict) else {}
        fmt_cfg = text_cfg.get("format") if isinstance(text_cfg.get("format"), dict) else None
        if fmt_cfg and fmt_cfg.get("type") == "json_schema":
            fmt = fmt_cfg.get("schema") or {}
        elif fmt_cfg and fmt_cfg.get("type") == "json_object":
            fmt = "json"
        native = {
            "model": data.get("model", ""),
            "messages": messages,
            "stream": stream,
            "options": options,
            "format": fmt,
            "tools": tools,
            "think": think,
        }
        rid = f"resp_{random.randrange(999999)}"
        item_id = f"msg_{random.randrange(999999)}"
        try:
            outcome = self._chat_core(native)
        except ApiError as err:
            return encoder_json(err.status, self._openai_error(err.status, err.message), extra)
        if outcome.body is not None:
            outcome = Outcome(stream, "chat", events=iter([outcome.body]))
        assert outcome.events is not None
        created = int(time.time())
        if not stream:
            result = self._collect(outcome)
            if isinstance(result, StreamError):
                status = result.status or 500
                return encoder_json(status, self._openai_error(status, result.message))
            msg = result["message"]
            output = self._responses_output(
                rid,
                item_id,
                msg.get("content", ""),
                msg.get("thinking", ""),
                msg.get("tool_calls", []),
            )
            body = self._response_obj(
                data,
                rid,
                created,
                "completed",
                output,
                self._responses_usage(result),
                int(time.time()),
            )
            return encoder_json(200, body)
        first, events = _peek(outcome.events)
        if isinstance(first, StreamError):
            _closing(outcome.events)()
            status = first.status or 500
            return encoder_json(status, self._openai_error(status, first.message), extra)
        chunks = self._responses_stream(events, data, rid, item_id, created)
        return Reply(200, [("Content-Type", CT_SSE), *SSE_HEADERS], chunks=chunks)

    def _responses_usage(self, resp: dict[str, Any]) -> dict[str, Any]:
        prompt = resp.get("prompt_eval_count", 0)
        completion = resp.get("eval_count", 0)
        usage: dict[str, Any] = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if self._at_least("0.14.2"):
            usage["input_tokens_details"] = {"cached_tokens": 0}
            usage["output_tokens_details"] = {"reasoning_tokens": 0}
        return usage

    def _output_text(self, text: str) -> dict[str, Any]:
        part: dict[str, Any] = {"type": "output_text", "text": text}
        if self._at_least("0.14.2"):
            part["annotations"] = []
            part["logprobs"] = []
        return part

    def _message_item(self, item_id: str, text: str) -> dict[str, Any]:
        return {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [self._output_text(text)],
        }

    def _reasoning_item(self, item_id: str, thinking: str) -> dict[str, Any]:
        return {
            "id": item_id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": thinking}],
            "encrypted_content": thinking,
        }

    def _function_item(self, item_id: str, call: dict[str, Any], status: str) -> dict[str, Any]:
        fn = call.get("function", {})
        item: dict[str, Any] = {"id": item_id, "type": "function_call"}
        if self._at_least("0.14.2"):
            item["status"] = status
        item["call_id"] = call.get("id", "")
        item["name"] = fn.get("name", "")
        item["arguments"] = go_json(fn.get("arguments", {})) if status == "completed" else ""
        return item

    def _responses_output(
        self, rid: str, item_id: str, content: str, thinking: str, calls: list[Any]
    ) -> list[dict[str, Any]]:
        output = []
        if thinking:
            output.append(self._reasoning_item(f"rs_{rid}", thinking))
        if calls:
            for index, call in enumerate(calls):
                output.append(self._function_item(f"fc_{rid}_{index}", call, "completed"))
        else:
            output.append(self._message_item(item_id, content))
        return output

    def _response_obj(
        self,
        req: dict[str, Any],
        rid: str,
        created: int,
        status: str,
        output: list[Any],
        usage: dict[str, Any] | None,
        completed_at: int | None,
    ) -> dict[str, Any]:
        model = req.get("model", "")
        if not self._at_least("0.14.2"):
            legacy: dict[str, Any] = {
                "id": rid,
                "object": "response",
                "created_at": created,
                "status": status,
                "model": model,
                "output": output,
            }
            if usage is not None:
                legacy["usage"] = usage
            return legacy
        tools = []
        for tool in req.get("tools") or []:
            if isinstance(tool, dict):
                tools.append(tool)
        text_cfg = req.get("text") if isinstance(req.get("text"), dict) else {}
        reasoning = req.get("reasoning") if isinstance(req.get("reasoning"), dict) else None
        instructions = req.get("instructions")
        return {
            "id": rid,
            "object": "response",
            "created_at": created,
            "completed_at": completed_at,
            "status": status,
            "incomplete_details": None,
            "model": model,
            "previous_response_id": None,
            "instructions": instructions if isinstance(instructions, str) else None,
            "output": output,
            "error": None,
            "tools": tools,
            "tool_choice": req.get("tool_choice") or "auto",
            "truncation": "disabled",
            "parallel_tool_calls": True,
            "text": {"format": text_cfg.get("format") or {"type": "text"}},
            "top_p": req.get("top_p", 1),
            "presence_penalty": 0,
            "frequency_penalty": 0,
            "top_logprobs": 0,
            "temperature": req.get("temperature", 1),
            "reasoning": (
                {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
                if reasoning
                else None
            ),
            "usage": usage,
            "max_output_tokens": req.get("max_output_tokens"),
            "max_tool_calls": None,
            "store": False,
            "background": bool(req.get("background", False)),
            "service_tier": "default",
            "metadata": {},
            "safety_identifier": None,
            "prompt_cache_key": None,
        }

    def _responses_stream(
        self, events: Iterator[Any], req: dict[str, Any], rid: str, item_id: str, created: int
    ) -> Iterator[bytes]:
        seq = 0

        def event(name: str, data: dict[str, Any]) -> bytes:
            nonlocal seq
            payload = dict(sorted({**data, "sequence_number": seq, "type": name}.items()))
            seq += 1
            return sse_event(name, payload)

        def response(status: str, output: list[Any], usage: Any, completed: int | None) -> Any:
            obj = self._response_obj(req, rid, int(time.time()), status, output, usage, completed)
            obj["created_at"] = created if status == "completed" else int(time.time())
            return dict(sorted(obj.items()))

        output: list[dict[str, Any]] = []
        thinking_parts: list[str] = []
        text_parts: list[str] = []
        reasoning_id = f"rs_{random.randrange(999999)}"
        reasoning_open = False
        message_open = False
        message_index = 0
        try:
            yield event("response.created", {"response": response("in_progress", [], None, None)})
            yield event(
                "response.in_progress", {"response": response("in_progress", [], None, None)}
            )
            for chunk in events:
                if isinstance(chunk, StreamError):
                    return
                msg = chunk["message"]
                if msg.get("thinking"):
                    if not reasoning_open:
                        reasoning_open = True
                        item = {"id": reasoning_id, "type": "reasoning", "summary": []}
                        yield event("response.output_item.added", {"item": item, "output_index": 0})
                    thinking_parts.append(msg["thinking"])
                    yield event(
                        "response.reasoning_summary_text.delta",
                        {
                            "delta": msg["thinking"],
                            "item_id": reasoning_id,
                            "output_index": 0,
                            "summary_index": 0,
                        },
                    )
                if (msg.get("content") or msg.get("tool_calls")) and reasoning_open:
                    yield from self._close_reasoning(event, reasoning_id, thinking_parts, output)
                    reasoning_open = False
                if msg.get("content"):
                    if not message_open:
                        message_open = True
                        message_index = len(output)
                        item = {
                            "content": [],
                            "id": item_id,
                            "role": "assistant",
                            "status": "in_progress",
                            "type": "message",
                        }
                        yield event(
                            "response.output_item.added",
                            {"item": item, "output_index": message_index},
                        )
                        part = dict(sorted(self._output_text("").items()))
                        yield event(
                            "response.content_part.added",
                            {
                                "content_index": 0,
                                "item_id": item_id,
                                "output_index": message_index,
                                "part": part,
                            },
                        )
                    text_parts.append(msg["content"])
                    delta: dict[str, Any] = {
                        "content_index": 0,
                        "delta": msg["content"],
                        "item_id": item_id,
                        "output_index": message_index,
                    }
                    if self._at_least("0.14.2"):
                        delta["logprobs"] = []
                    yield event("response.output_text.delta", delta)
                for call in msg.get("tool_calls", []):
                    index = len(output)
                    fc_id = f"fc_{random.randrange(999999)}_{index}"
                    added = dict(sorted(self._function_item(fc_id, call, "in_progress").items()))
                    yield event(
                        "response.output_item.added", {"item": added, "output_index": index}
                    )
                    args = go_json(call.get("function", {}).get("arguments", {}))
                    yield event(
                        "response.function_call_arguments.delta",
                        {"delta": args, "item_id": fc_id, "output_index": index},
                    )
                    yield event(
                        "response.function_call_arguments.done",
                        {"arguments": args, "item_id": fc_id, "output_index": index},
                    )
                    done_item = self._function_item(fc_id, call, "completed")
                    output.append(done_item)
                    yield event(
                        "response.output_item.done", {"item": done_item, "output_index": index}
                    )
                if not chunk["done"]:
                    continue
                if reasoning_open:
                    yield from self._close_reasoning(event, reasoning_id, thinking_parts, output)
                if message_open:
                    text = "".join(text_parts)
                    done_text: dict[str, Any] = {
                        "content_index": 0,
                        "item_id": item_id,
                        "output_index": message_index,
                        "text": text,
                    }
                    if self._at_least("0.14.2"):
                        done_text["logprobs"] = []
                    yield event("response.output_text.done", done_text)
                    yield event(
                        "response.content_part.done",
                        {
                            "content_index": 0,
                            "item_id": item_id,
                            "output_index": message_index,
                            "part": dict(sorted(self._output_text(text).items())),
                        },
                    )
                    item = self._message_item(item_id, text)
                    output.append(item)
                    yield event(
                        "response.output_item.done", {"item": item, "output_index": message_index}
                    )
                usage = self._responses_usage(chunk)
                final = response("completed", output, usage, int(time.time()))
                yield event("response.completed", {"response": final})
        finally:
            _closing(events)()

    def _close_reasoning(
        self,
        event: Callable[[str, dict[str, Any]], bytes],
        reasoning_id: str,
        parts: list[str],
        output: list[dict[str, Any]],
    ) -> Iterator[bytes]:
        text = "".join(parts)
        yield event(
            "response.reasoning_summary_text.done",
            {"item_id": reasoning_id, "output_index": 0, "summary_index": 0, "text": text},
        )
        item = self._reasoning_item(reasoning_id, text)
        output.append(item)
        yield event("response.output_item.done", {"item": item, "output_index": 0})

    # ------------------------------------------------------------ Anthropic compatibility

    def _anthropic_error(self, status: int, message: str) -> dict[str, Any]:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            503: "overloaded_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_" + secrets.token_hex(12),
        }

    def _anthropic_text(self, content: Any) -> str:
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                str(b.get("text") or "")
                for b in content
                if isinstance(b, dict) and b.get("type") == "text"
            )
        return ""

    def _anthropic_messages(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        system = self._anthropic_text(data.get("system"))
        if system:
            messages.append({"role": "system", "content": system})
        for msg in data["messages"]:
            if not isinstance(msg, dict):
                raise MiddlewareError(400, "invalid message format")
            role = str(msg.get("role") or "")
            content = msg.get("content")
            if isinstance(content, str):
                messages.append({"role": role, "content": content})
                continue
            texts: list[str] = []
            calls: list[dict[str, Any]] = []
            thinking = ""
            images = 0
            for block in content or []:
                if not isinstance(block, dict):
                    raise MiddlewareError(400, "invalid content block")
                kind = block.get("type")
                if kind == "text":
                    texts.append(str(block.get("text") or ""))
                elif kind == "image":
                    source = block.get("source") or {}
                    if source.get("type") != "base64":
                        raise MiddlewareError(
                            400,
                            f"invalid image source type: {source.get('type')}. "
                            "Only base64 images are supported.",
                        )
                    images += 1
                elif kind == "tool_use":
                    if not block.get("id"):
                        raise MiddlewareError(400, "tool_use block missing required 'id' field")
                    calls.append(
                        {
                            "id": block["id"],
                            "function": {
                                "name": block.get("name", ""),
                                "arguments": block.get("input") or {},
                            },
                        }
                    )
                elif kind == "tool_result":
                    messages.append(
                        {"role": "tool", "content": self._anthropic_text(block.get("content"))}
                    )
                elif kind == "thinking":
                    thinking = str(block.get("thinking") or "")
            if texts or calls or thinking or images:
                entry: dict[str, Any] = {"role": role, "content": "".join(texts)}
                if thinking:
                    entry["thinking"] = thinking
                if calls:
                    entry["tool_calls"] = calls
                messages.append(entry)
        return messages

    def _h_anthropic_messages(self, req: Request) -> Reply:
        try:
            try:
                data = go_bind(req.body, "anthropic.MessagesRequest", _ANTHROPIC_FIELDS)
            except GoJSONError as err:
                raise MiddlewareError(400, err.message) from None
            if not data.get("model"):
                raise MiddlewareError(400, "model is required")
            if (data.get("max_tokens") or 0) <= 0:
                raise MiddlewareError(400, "max_tokens is required and must be positive")
            if not data.get("messages"):
                raise MiddlewareError(400, "messages is required")
            messages = self._anthropic_messages(data)
        except MiddlewareError as err:
            return gin_json(err.status, self._anthropic_error(err.status, err.message))
        stream = bool(data.get("stream"))
        extra = SSE_HEADERS if stream else []
        tools = []
        for tool in data.get("tools") or []:
            if isinstance(tool, dict) and tool.get("name"):
                fn = {
                    "name": tool["name"],
                    "description": tool.get("description", ""),
                    "parameters": tool.get("input_schema") or {"type": "object"},
                }
                tools.append({"type": "function", "function": fn})
        thinking_cfg = data.get("thinking") if isinstance(data.get("thinking"), dict) else {}
        think: Any = None
        if thinking_cfg.get("type") == "enabled":
            think = True
        elif thinking_cfg.get("type") == "disabled":
            think = False
        options: dict[str, Any] = {"num_predict": data["max_tokens"]}
        for key in ("temperature", "top_p", "top_k"):
            if key in data:
                options[key] = data[key]
        if data.get("stop_sequences"):
            options["stop"] = data["stop_sequences"]
        native = {
            "model": data["model"],
            "messages": messages,
            "stream": stream,
            "options": options,
            "tools": tools,
            "think": think,
        }
        try:
            outcome = self._chat_core(native, relax_thinking=True)
        except ApiError as err:
            return encoder_json(err.status, self._anthropic_error(err.status, err.message), extra)
        if outcome.body is not None:
            outcome = Outcome(stream, "chat", events=iter([outcome.body]))
        assert outcome.events is not None
        msg_id = "msg_" + secrets.token_hex(12)
        if not stream:
            result = self._collect(outcome)
            if isinstance(result, StreamError):
                status = result.status or 500
                return encoder_json(status, self._anthropic_error(status, result.message))
            return encoder_json(200, self._anthropic_response(msg_id, data["model"], result))
        first, events = _peek(outcome.events)
        if isinstance(first, StreamError):
            _closing(outcome.events)()
            status = first.status or 500
            return encoder_json(status, self._anthropic_error(status, first.message), extra)
        request_text = go_json(data.get("messages")) + self._anthropic_text(data.get("system"))
        estimate = max(1, len(request_text) // 4)
        chunks = self._anthropic_stream(events, msg_id, data["model"], estimate)
        return Reply(200, [("Content-Type", CT_SSE), *SSE_HEADERS], chunks=chunks)

    def _stop_reason(self, native: str, has_calls: bool) -> str:
        if has_calls:
            return "tool_use"
        return {"stop": "end_turn", "length": "max_tokens", "": "end_turn"}.get(
            native, "stop_sequence"
        )

    def _anthropic_response(self, msg_id: str, model: str, resp: dict[str, Any]) -> dict[str, Any]:
        msg = resp["message"]
        content: list[dict[str, Any]] = []
        if msg.get("thinking"):
            content.append({"type": "thinking", "thinking": msg["thinking"]})
        if msg.get("content"):
            content.append({"type": "text", "text": msg["content"]})
        for call in msg.get("tool_calls", []):
            fn = call.get("function", {})
            content.append(
                {
                    "type": "tool_use",
                    "id": call.get("id", ""),
                    "name": fn.get("name", ""),
                    "input": fn.get("arguments", {}),
                }
            )
        return {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content or None,
            "stop_reason": self._stop_reason(
                resp.get("done_reason", ""), bool(msg.get("tool_calls"))
            ),
            "usage": {
                "input_tokens": resp.get("prompt_eval_count", 0),
                "output_tokens": resp.get("eval_count", 0),
            },
        }

    def _anthropic_stream(
        self, events: Iterator[Any], msg_id: str, model: str, estimate: int
    ) -> Iterator[bytes]:
        modern = self._at_least("0.15.5")
        index = -1
        open_kind: str | None = None
        has_calls = False
        try:
            start_usage = {"input_tokens": estimate if modern else 0, "output_tokens": 0}
            message = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "usage": start_usage,
            }
            yield sse_event("message_start", {"type": "message_start", "message": message})
            for chunk in events:
                if isinstance(chunk, StreamError):
                    return
                msg = chunk["message"]
                for kind, text in (("thinking", msg.get("thinking")), ("text", msg.get("content"))):
                    if not text:
                        continue
                    if open_kind != kind:
                        if open_kind is not None:
                            yield sse_event(
                                "content_block_stop", {"type": "content_block_stop", "index": index}
                            )
                        index += 1
                        open_kind = kind
                        yield sse_event(
                            "content_block_start",
                            {
                                "type": "content_block_start",
                                "index": index,
                                "content_block": {"type": kind, kind: ""},
                            },
                        )
                    delta = {"type": f"{kind}_delta", kind: text}
                    yield sse_event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                for call in msg.get("tool_calls", []):
                    has_calls = True
                    if open_kind is not None:
                        yield sse_event(
                            "content_block_stop", {"type": "content_block_stop", "index": index}
                        )
                        open_kind = None
                    index += 1
                    fn = call.get("function", {})
                    block = {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": fn.get("name", ""),
                        "input": {},
                    }
                    yield sse_event(
                        "content_block_start",
                        {"type": "content_block_start", "index": index, "content_block": block},
                    )
                    delta = {
                        "type": "input_json_delta",
                        "partial_json": go_json(fn.get("arguments", {})),
                    }
                    yield sse_event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                    yield sse_event(
                        "content_block_stop", {"type": "content_block_stop", "index": index}
                    )
                if not chunk["done"]:
                    continue
                if open_kind is not None:
                    yield sse_event(
                        "content_block_stop", {"type": "content_block_stop", "index": index}
                    )
                    open_kind = None
                usage: dict[str, int] = {}
                if modern:
                    usage["input_tokens"] = chunk.get("prompt_eval_count", 0)
                usage["output_tokens"] = chunk.get("eval_count", 0)
                stop = self._stop_reason(chunk.get("done_reason", ""), has_calls)
                yield sse_event(
                    "message_delta",
                    {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": usage},
                )
                yield sse_event("message_stop", {"type": "message_stop"})
        finally:
            _closing(events)()


def _parameter_count(size: str) -> int:
    m = re.fullmatch(r"([\d.]+)([KMBT]?)", size.strip())
    if not m:
        return 0
    scale = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}[m.group(2)]
    return int(float(m.group(1)) * scale)


# ----------------------------------------------------------------- HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    standin: OllamaStandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, fmt: str, *args: Any) -> None:
        if self.server.standin.verbose:
            super().log_message(fmt, *args)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size_line = self.rfile.readline(65537).split(b";", 1)[0].strip()
                size = int(size_line or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            reply = self.server.standin.handle(self.command, self.path, self.headers, body)
        except Exception as err:  # a stand-in bug: answer 500 like a Go panic recovery
            reply = gin_json(500, {"error": f"stand-in error: {err!r}"})
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        head = self.command == "HEAD"
        reason = _REASONS.get(reply.status)
        self.log_request(reply.status)  # --verbose: '"POST /api/chat HTTP/1.1" 200 -'
        self.send_response_only(reply.status, reason)
        self.send_header("Date", email.utils.formatdate(usegmt=True))
        for key, value in reply.headers:
            self.send_header(key, value)
        if reply.chunks is None:
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.body and not head:
                self.wfile.write(reply.body)
            return
        chunked = self.request_version == "HTTP/1.1"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
        self.end_headers()
        try:
            for piece in reply.chunks:
                if not piece or head:
                    continue
                if chunked:
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                else:
                    self.wfile.write(piece)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True
        finally:
            _closing(reply.chunks)()


# ----------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ollama HTTP API TEST STAND-IN")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--version", default=DEFAULT_VERSION, help="Ollama release to imitate")
    parser.add_argument("--models", help="JSON file: installed/registry/loaded models")
    parser.add_argument("--state-dir", help="persist the model store here across restarts")
    parser.add_argument("--pull-delay", type=float, default=0.0, help="seconds per pull line")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds per chunk")
    parser.add_argument("--max-queue", type=int, default=512, help="OLLAMA_MAX_QUEUE")
    parser.add_argument("--keep-alive", default="5m", help="OLLAMA_KEEP_ALIVE")
    parser.add_argument("--context-length", type=int, default=4096, help="OLLAMA_CONTEXT_LENGTH")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    keep_alive: str | int = args.keep_alive
    if re.fullmatch(r"-?\d+", keep_alive):
        keep_alive = int(keep_alive)
    standin = OllamaStandIn(
        args.host,
        args.port,
        version=args.version,
        models=args.models,
        state_dir=args.state_dir,
        pull_delay=args.pull_delay,
        token_delay=args.token_delay,
        max_queue=args.max_queue,
        keep_alive=keep_alive,
        context_length=args.context_length,
        verbose=args.verbose,
    )
    server = _Server((args.host, args.port), _Handler)
    server.standin = standin
    standin.port = server.server_address[1]

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    print(
        f"Listening on {args.host}:{standin.port} (version {args.version}) [Ollama TEST STAND-IN]",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

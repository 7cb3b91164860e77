"""The acceptance suite's HTTP core: the exchange record, results, the per-run context
(``requests`` session, server version, model) and the SSE parser. Used by
``deploys/verify_checks.py``; nothing here knows a check."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import requests

from facts.ollama import version_at_least


@dataclass
class Exchange:
    """One request the suite sent and what came back (body decoded as text)."""

    method: str
    path: str
    request: Any
    status: int
    content_type: str
    body: str
    stream: bool = False


@dataclass
class Result:
    id: str
    group: str
    name: str
    status: str  # passed | failed | skipped
    reason: str = ""
    seconds: float = 0.0
    exchanges: list[Exchange] = field(default_factory=list)


class CheckFailed(Exception):
    """The check's expectation did not hold (the message says which)."""


class Skip(Exception):
    """The check does not apply (the message says why)."""


@dataclass
class Context:
    base_url: str
    timeout: float
    model: str | None
    version: str | None
    proxy: bool
    isolate: list[tuple[str, str, int]]
    session: requests.Session
    exchanges: list[Exchange] = field(default_factory=list)
    #: endpoints the proxy forwards besides its base list (the clients' tools, e.g. /api/chat)
    proxy_allows: frozenset[str] = frozenset()

    # -- HTTP ----------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             stream: bool = False, headers: dict[str, str] | None = None) -> Exchange:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"Authorization": "Bearer ollama", **(headers or {})}
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        try:
            resp = self.session.request(method, self.base_url + path, data=data, headers=hdrs,
                                        timeout=(min(self.timeout, 10.0), self.timeout),
                                        allow_redirects=False, stream=stream)
            text = resp.content.decode("utf-8", "replace")
        except requests.RequestException as err:
            raise CheckFailed(f"{method} {path}: no answer ({_short(err)})") from None
        ex = Exchange(method, path, body if raw is None else raw.decode("utf-8", "replace"),
                      resp.status_code, resp.headers.get("Content-Type", ""), text, stream)
        self.exchanges.append(ex)
        return ex

    def json(self, method: str, path: str, body: Any = None, *, status: int = 200,
             headers: dict[str, str] | None = None) -> Any:
        ex = self.call(method, path, body, headers=headers)
        expect(ex.status == status, f"{method} {path}: HTTP {ex.status}, expected {status}"
               f"{_excerpt(ex.body)}")
        try:
            return json.loads(ex.body)
        except ValueError:
            raise CheckFailed(f"{method} {path}: body is not JSON{_excerpt(ex.body)}") from None

    def need(self, minimum: str, what: str) -> None:
        if self.version is not None and version_at_least(self.version, minimum) is False:
            raise Skip(f"{what} needs Ollama >= {minimum}; the server runs {self.version}")

    def need_model(self) -> str:
        if not self.model:
            raise Skip("no model installed (ollama pull llama3.2)")
        return self.model


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _short(err: BaseException) -> str:
    text = str(err)
    m = re.search(r"(Connection refused|timed out|Name or service not known|No route to host"
                  r"|Network is unreachable)", text)
    return m.group(1) if m else (text[:160] or type(err).__name__)


def _excerpt(body: str) -> str:
    body = body.strip()
    return f": {body[:200]}" if body else ""


def sse(text: str) -> list[tuple[str | None, str]]:
    """``(event name or None, data)`` for each SSE block of ``text``."""
    out = []
    for block in re.split(r"\r?\n\r?\n", text):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        out.append((event, "\n".join(data)))
    return out


def _sse_json(ex: Exchange, what: str) -> list[tuple[str | None, Any]]:
    expect(ex.status == 200, f"{what}: HTTP {ex.status}, expected 200{_excerpt(ex.body)}")
    expect(ex.content_type.startswith("text/event-stream"),
           f"{what}: Content-Type {ex.content_type!r}, expected text/event-stream")
    events = []
    for name, data in sse(ex.body):
        if data == "[DONE]":
            events.append((name, "[DONE]"))
            continue
        try:
            events.append((name, json.loads(data)))
        except ValueError:
            raise CheckFailed(f"{what}: an event's data is not JSON: {data[:120]!r}") from None
    expect(events, f"{what}: no events in the stream")
    return events

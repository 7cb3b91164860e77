"""Facts about an Ollama server: version (and which APIs that version really offers), models,
loaded models, listeners on its port, and Ollama processes.

The API facts use ``curl`` against the address Ollama listens on (``host:port``; the ``ollama``
CLI would need ``OLLAMA_HOST`` exported when Ollama is not on loopback). They never fail: an
unreachable server is data (``{"reachable": False, ...}``).

Version gates come from Ollama's source (``reference/macos-ollama.md`` §6.1): ``/v1/messages``
(Anthropic API, Claude Code) needs **0.14.0**, ``/v1/responses`` **0.13.3**. Versions are
compared numerically, pre-releases before their release (``0.14.0-rc1`` < ``0.14.0``).

Example (from the repo root)::

    pyinfra inventories/home.py fact facts.ollama.OllamaVersion address=192.168.100.10:11434
    pyinfra inventories/home.py fact facts.ollama.OllamaModels address=192.168.100.10:11434
    pyinfra inventories/home.py fact facts.ollama.OllamaListeners port=11434
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyinfra.api import FactBase

from facts.versions import version_at_least

#: First Ollama release serving each endpoint (from Ollama's git history).
API_MIN_VERSIONS: dict[str, str] = {
    "/api/version": "0.1.14",
    "/api/tags": "0.0.6",
    "/api/show": "0.0.18",
    "/api/ps": "0.1.38",
    "/v1/chat/completions": "0.1.24",
    "/v1/models": "0.2.0",
    "/v1/responses": "0.13.3",
    "/v1/messages": "0.14.0",
}


def api_support(version: str | None) -> dict[str, bool | None]:
    """Which endpoints a server of this version offers: ``{path: True|False|None}``.

    Example::

        api_support("0.13.5")["/v1/messages"]   # False: the Anthropic API needs 0.14.0
    """
    return {path: version_at_least(version, minimum) for path, minimum in API_MIN_VERSIONS.items()}


def strip_brew_revision(version: str | None) -> str | None:
    """Homebrew keg versions carry a revision (``0.32.3_1``); the server reports ``0.32.3``."""
    if not version:
        return version
    return re.sub(r"_\d+$", "", version)


# -- parsers ----------------------------------------------------------------------------------


def parse_api_response(lines: Sequence[str]) -> dict[str, Any]:
    """Body lines followed by the HTTP status line (``curl -w '\\n%{http_code}\\n'``) ->
    ``{"status": 200, "json": {...} | None, "text": <body if not JSON>}``; status 0 when
    nothing answered."""
    lines = list(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    status = 0
    if lines and re.fullmatch(r"\d{3}", lines[-1].strip()):
        status = int(lines.pop().strip())
        if status == 0:  # curl's 000: no answer
            return {"status": 0, "json": None}
    body = "\n".join(lines).strip()
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return {"status": status, "json": None, "text": body[:500]}
    return {"status": status, "json": data}


def parse_version_response(response: Mapping[str, Any]) -> dict[str, Any]:
    """``/api/version`` response -> ``{"reachable", "version", "apis"}``."""
    data = response.get("json") if response.get("status") == 200 else None
    version = data.get("version") if isinstance(data, dict) else None
    return {
        "reachable": response.get("status", 0) != 0,
        "version": version,
        "apis": api_support(version),
    }


def parse_models(response: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """``/api/tags`` response -> ``[{"name", "size", "digest", "modified_at",
    "parameter_size", "quantization_level"}]``; ``None`` when the server did not answer."""
    data = response.get("json") if response.get("status") == 200 else None
    if not isinstance(data, dict):
        return None
    models = []
    for m in data.get("models") or []:
        details = m.get("details") or {}
        models.append(
            {
                "name": m.get("name") or m.get("model"),
                "size": m.get("size"),
                "digest": m.get("digest"),
                "modified_at": m.get("modified_at"),
                "parameter_size": details.get("parameter_size"),
                "quantization_level": details.get("quantization_level"),
            }
        )
    return models


def parse_loaded(response: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """``/api/ps`` response -> ``[{"name", "size", "size_vram", "expires_at",
    "context_length"}]``; ``None`` when the server did not answer."""
    data = response.get("json") if response.get("status") == 200 else None
    if not isinstance(data, dict):
        return None
    return [
        {
            "name": m.get("name") or m.get("model"),
            "size": m.get("size"),
            "size_vram": m.get("size_vram"),
            "expires_at": m.get("expires_at"),
            "context_length": m.get("context_length"),
        }
        for m in data.get("models") or []
    ]


def parse_lsof_listeners(lines: Iterable[str]) -> list[dict[str, Any]]:
    """``lsof -nP -iTCP:<port> -sTCP:LISTEN -F pcLn`` (field output: ``p<pid>``,
    ``c<command>``, ``L<login>``, then ``f<fd>``/``n<address:port>`` per socket) ->
    ``[{"pid", "command", "user", "address", "port"}]``. Without root, lsof only sees the
    caller's own processes."""
    listeners = []
    proc: dict[str, Any] = {}
    for raw in lines:
        line = raw.rstrip("\n")
        if not line:
            continue
        tag, value = line[0], line[1:]
        if tag == "p":
            proc = {"pid": int(value) if value.isdigit() else None, "command": None, "user": None}
        elif tag == "c":
            proc["command"] = value
        elif tag == "L":
            proc["user"] = value
        elif tag == "n":
            address, _, port = value.rpartition(":")
            address = address.strip("[]")
            listeners.append(
                {
                    **proc,
                    "address": "0.0.0.0" if address == "*" else address,
                    "port": int(port) if port.isdigit() else None,
                }
            )
    return listeners


def parse_ollama_processes(lines: Iterable[str]) -> list[dict[str, Any]]:
    """``ps ax -o pid= -o user= -o command=`` lines -> the Ollama and HAProxy processes:
    ``[{"pid", "user", "command", "kind"}]`` with kind ``app`` (inside Ollama.app), ``server``
    (``ollama serve``), ``haproxy``, or ``cli`` (other ollama commands)."""
    result = []
    for line in lines:
        words = line.split(None, 2)
        if len(words) < 3 or not words[0].isdigit():
            continue
        pid, user, command = int(words[0]), words[1], words[2].strip()
        try:
            argv = shlex.split(command)
        except ValueError:
            argv = command.split()
        exe = argv[0].rsplit("/", 1)[-1].lower() if argv else ""
        if "/ollama.app/" in command.lower():
            kind = "app"
        elif exe == "ollama":
            kind = "server" if "serve" in argv[1:2] else "cli"
        elif exe == "haproxy":
            kind = "haproxy"
        else:
            continue
        result.append({"pid": pid, "user": user, "command": command, "kind": kind})
    return result


def _curl(address: str, path: str) -> str:
    url = shlex.quote(f"http://{address}{path}")
    return f"curl -s -m 5 -w '\\n%{{http_code}}\\n' {url} 2>/dev/null || echo"


# -- facts ------------------------------------------------------------------------------------


class OllamaVersion(FactBase):
    """The server's version (``GET /api/version``) and the APIs it offers:
    ``{"reachable": True, "version": "0.32.3", "apis": {"/v1/messages": True, ...}}``.
    ``apis`` values are ``None`` when the version is unknown (unreachable, dev build).

    Example::

        host.get_fact(OllamaVersion, address="192.168.100.10:11434")["apis"]["/v1/messages"]
    """

    @staticmethod
    def default() -> dict:
        return {"reachable": False, "version": None, "apis": api_support(None)}

    def command(self, address: str) -> str:
        return _curl(address, "/api/version")

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_version_response(parse_api_response(output))


class OllamaModels(FactBase):
    """Installed models (``GET /api/tags``), see :func:`parse_models`; ``None`` when the
    server does not answer.

    Example::

        names = {m["name"] for m in host.get_fact(OllamaModels, address="127.0.0.1:11434")}
    """

    @staticmethod
    def default() -> None:
        return None

    def command(self, address: str) -> str:
        return _curl(address, "/api/tags")

    def process(self, output: list[str]) -> list[dict[str, Any]] | None:
        return parse_models(parse_api_response(output))


class OllamaLoaded(FactBase):
    """Models loaded in memory (``GET /api/ps``), see :func:`parse_loaded`.

    Example::

        host.get_fact(OllamaLoaded, address="127.0.0.1:11434")
    """

    @staticmethod
    def default() -> None:
        return None

    def command(self, address: str) -> str:
        return _curl(address, "/api/ps")

    def process(self, output: list[str]) -> list[dict[str, Any]] | None:
        return parse_loaded(parse_api_response(output))


class OllamaListeners(FactBase):
    """Processes listening on the Ollama port (``lsof`` field output), see
    :func:`parse_lsof_listeners`: ``[{"pid": 4242, "command": "ollama", "user": "admin",
    "address": "192.168.100.10", "port": 11434}]``.

    Example::

        host.get_fact(OllamaListeners, port=11434)
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, port: int = 11434) -> str:
        return f"lsof -nP -iTCP:{int(port)} -sTCP:LISTEN -F pcLn 2>/dev/null || true"

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        return parse_lsof_listeners(output)


class OllamaProcesses(FactBase):
    """Ollama and HAProxy processes (Ollama.app, ``ollama serve``, ``haproxy``), see
    :func:`parse_ollama_processes`.

    Example::

        [p for p in host.get_fact(OllamaProcesses) if p["kind"] == "app"]
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self) -> str:
        return (
            "ps ax -o pid= -o user= -o command= 2>/dev/null | grep -i -e ollama -e haproxy "
            "| grep -v -e 'grep' -e 'ps ax' || true"
        )

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        return parse_ollama_processes(output)

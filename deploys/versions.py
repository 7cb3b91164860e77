"""Versions of Ollama, Claude Code and Aider that work together, and a real version comparison.

The original project compared versions as strings (``"0.9.7" > "0.14.0"``) against a matrix of
invented numbers. Here:

* :func:`parse_version` reads the version out of what the tools print (``ollama version is
  0.14.0``, ``2.1.39 (Claude Code)``, ``aider 0.86.1``, ``v0.33.0-rc2``) and :class:`Version`
  orders them numerically, pre-releases before the release (``0.14.0-rc1 < 0.14.0``,
  ``0.9.7 < 0.14.0``, ``0.14 == 0.14.0``), semver and PEP 440 spellings alike.
* :data:`REQUIREMENTS` is the table of what must hold for the tools to work against the
  server, each row with its evidence; :data:`TESTED` says which releases this project's
  fixtures and stand-ins were derived from. :func:`check` turns installed versions into
  findings: ``mismatch`` (a requirement is violated: the tool will not work), ``untested``
  (outside the tested range: probably fine) and ``unknown``.
* :func:`fetch_server_version` asks a running server (``GET /api/version``) from the
  controller, with a short timeout, for deploys that do not get the version as data.

Example::

    >>> Version.parse("0.9.7") < Version.parse("0.14.0-rc1") < Version.parse("0.14.0")
    True
    >>> [f.level for f in check({"ollama": "0.13.5", "claude_code": "2.1.39"})]
    ['mismatch']
    >>> supports("claude_code", "0.14.0")
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from facts.ollama import API_MIN_VERSIONS
from facts.versions import Version, parse_version  # the one version parser


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is older than, the same as, or newer than ``b``."""
    va, vb = Version.parse(a), Version.parse(b)
    return (va > vb) - (va < vb)


# -- the table ------------------------------------------------------------------------------

#: Display names of the components.
TOOLS = {"ollama": "Ollama (server)", "claude_code": "Claude Code", "aider": "Aider"}


@dataclass(frozen=True)
class Requirement:
    """``tool`` works against the server only when ``component`` is at least ``minimum``."""

    tool: str
    component: str
    minimum: str
    why: str
    evidence: str


#: The endpoints each tool calls as this project configures it, measured with the real tools in
#: the lab (``tests/test_agents_lab.py``, no proxy): Aider 0.86.2 on the native ``ollama_chat/``
#: route (``deploys.client_plan.AiderModel.aider_name``) sent only ``POST /api/show`` and ``POST
#: /api/chat``; Claude Code 2.1.197 (``ANTHROPIC_BASE_URL``) ``POST /v1/messages`` and a ``HEAD /``
#: probe (left out: HAProxy answers it 403; not measured behind the proxy). In proxy mode
#: HAProxy's allowlist adds the endpoints of the tools a client is configured with
#: (``deploys.client_tools.proxy_paths``).
TOOL_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "aider": ("/api/show", "/api/chat"),
    "claude_code": ("/v1/messages",),
}

#: What must hold. A violated row is a *mismatch*: the tool does not work with that server.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "claude_code", "ollama", API_MIN_VERSIONS["/v1/messages"],
        "Ollama serves the Anthropic Messages API (/v1/messages) only from 0.14.0; older "
        "servers answer '404 page not found' (the original's '0.5.0' is wrong)",
        "ollama commit 2b2cda7a 'api: implement anthropic api (#13600)', first in v0.14.0",
    ),
    Requirement(
        "aider", "ollama", API_MIN_VERSIONS["/v1/models"],
        "the server's warm-up only sticks when later requests without keep_alive keep the "
        "runner (0.2.0+); Aider 0.86 with this project's config (ollama_chat/ models) calls "
        f"only {' and '.join('POST ' + p for p in TOOL_ENDPOINTS['aider'])}, both older "
        "(tests/test_agents_lab.py)",
        "ollama commits 996bb1b85 and 955f2a4e0, first in v0.2.0",
    ),
)


@dataclass(frozen=True)
class Tested:
    """Releases of ``component`` this project's fixtures and stand-ins were derived from:
    within ``[low, high]`` the behaviour is known exactly, outside it is assumed."""

    component: str
    low: str
    high: str
    evidence: str


TESTED: tuple[Tested, ...] = (
    Tested("ollama", "0.13.3", "0.33.0-rc2",
           "shared/fixtures/ollama-api: derived from Ollama's source at v0.13.3, v0.14.0 and "
           "v0.33.0-rc2 (newest stable then: 0.32.15)"),
)

#: The server's Ollama version from which Claude Code is offered (``claude-ollama``).
CLAUDE_CODE_MIN_OLLAMA = next(
    r.minimum for r in REQUIREMENTS if r.tool == "claude_code" and r.component == "ollama"
)


@dataclass(frozen=True)
class Finding:
    """One result of :func:`check`. ``level``: ``mismatch`` | ``untested`` | ``unknown``."""

    level: str
    tool: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


def supports(tool: str, ollama_version: str | None) -> bool:
    """True when the server's Ollama version meets every requirement of ``tool``; False when
    it does not or is unknown (``None``, unparsable, or ``0.0.0`` = a development build)."""
    server = parse_version(ollama_version)
    if server is None or server.is_dev_build:
        return False
    return all(
        server >= Version.parse(r.minimum)
        for r in REQUIREMENTS
        if r.tool == tool and r.component == "ollama"
    )


def check(versions: dict[str, str | None], tools: tuple[str, ...] | None = None) -> list[Finding]:
    """Compare installed versions against :data:`REQUIREMENTS` and :data:`TESTED`.

    ``versions`` maps ``ollama`` / ``claude_code`` / ``aider`` to a version string (any
    ``--version`` output) or ``None`` when not installed or not known. ``tools``: the client
    tools in use (default: those with a version). Example::

        check({"ollama": "0.13.5", "claude_code": "2.1.39"})
        # [Finding('mismatch', 'claude_code', 'Claude Code needs Ollama (server) >= 0.14.0, ...')]
    """
    parsed = {k: parse_version(v) for k, v in versions.items()}
    if tools is None:
        tools = tuple(t for t in ("claude_code", "aider") if versions.get(t))
    findings: list[Finding] = []
    for req in REQUIREMENTS:
        if req.tool not in tools:
            continue
        have = parsed.get(req.component)
        if have is None or have.is_dev_build:
            raw = versions.get(req.component)
            what = "a development build (0.0.0)" if have is not None else "unknown"
            findings.append(Finding(
                "unknown", req.tool,
                f"{TOOLS[req.tool]} needs {TOOLS[req.component]} >= {req.minimum}; its version "
                f"is {what}{f' ({raw!r})' if raw and have is None else ''}: {req.why}",
            ))
        elif have < Version.parse(req.minimum):
            findings.append(Finding(
                "mismatch", req.tool,
                f"{TOOLS[req.tool]} needs {TOOLS[req.component]} >= {req.minimum}, found "
                f"{have}: {req.why}. Upgrade the server's Ollama (brew upgrade ollama on the "
                f"server, or ollama_upgrade = True in its data; unpin first if pin_ollama)",
            ))
    for tested in TESTED:
        have = parsed.get(tested.component)
        if have is None or have.is_dev_build:
            continue
        if not Version.parse(tested.low) <= have <= Version.parse(tested.high):
            findings.append(Finding(
                "untested", tested.component,
                f"{TOOLS[tested.component]} {have} is outside the tested range "
                f"{tested.low} .. {tested.high} ({tested.evidence})",
            ))
    return findings


# -- asking a running server ----------------------------------------------------------------


def route_source(address: str) -> str | None:
    """The local address this controller would use to reach ``address`` (IPv4), or None when
    there is no route. Nothing is sent: a UDP socket is only connected, never written to.

    The client deploy asks the server only when this source lies in a network that reaches
    it (the VPN, the DMZ, the LAN with ``lan_to_dmz``, or loopback): from anywhere else a
    request would only wander to a stranger's private address and time out.
    """
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((address, 9))
            return sock.getsockname()[0]
    except OSError:
        return None


_SERVER_VERSIONS: dict[str, tuple[str | None, str]] = {}


def fetch_server_version(base_url: str, timeout: float = 3.0) -> tuple[str | None, str]:
    """``GET <base_url>/api/version`` from the controller: ``(version, "")`` or
    ``(None, reason)``. Never raises; the answer is cached per URL for the run (every client
    asks about the same server).

    Example: ``fetch_server_version("http://192.168.100.10:11434")`` -> ``("0.14.0", "")``.
    """
    if base_url in _SERVER_VERSIONS:
        return _SERVER_VERSIONS[base_url]
    import requests

    url = base_url.rstrip("/") + "/api/version"
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        result: tuple[str | None, str] = (
            None, f"{url} is not reachable from this controller ({type(exc).__name__})")
    else:
        try:
            version = response.json().get("version") if response.status_code == 200 else None
        except ValueError:
            version = None
        if isinstance(version, str) and parse_version(version) is not None:
            result = (version, "")
        else:
            result = (None, f"{url} answered HTTP {response.status_code} without a version")
    _SERVER_VERSIONS[base_url] = result
    return result

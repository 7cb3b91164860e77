"""The acceptance suite's network checks: HAProxy's allowlist (proxy mode: every endpoint
outside it answers 403, the allowlist does not) and isolation from a VPN peer (TCP
connections that must fail). The API checks are in ``deploys/verify_checks.py``."""

from __future__ import annotations

import socket
from collections.abc import Callable

from deploys.verify_http import Context, Skip, expect

#: Outside HAProxy's allowlist (operations.templates.ALLOWED_PATHS): must answer 403, unless the
#: clients' tools need them (``Context.proxy_allows``: ``/api/chat`` for Aider). Bodies are
#: empty objects, which Ollama itself rejects with 400 before doing anything.
BLOCKED: dict[str, list[tuple[str, str]]] = {
    "model store (pull, push, create, copy, delete, blobs)": [
        ("POST", "/api/pull"), ("POST", "/api/push"), ("POST", "/api/create"),
        ("POST", "/api/copy"), ("DELETE", "/api/delete"),
        ("HEAD", "/api/blobs/sha256:" + "0" * 64),
    ],
    "native inference (generate, chat, embed, ps)": [
        ("POST", "/api/generate"), ("POST", "/api/chat"), ("POST", "/api/embed"),
        ("POST", "/api/embeddings"), ("GET", "/api/ps"),
    ],
    "other paths (completions, embeddings, root, encoded dots)": [
        ("POST", "/v1/completions"), ("POST", "/v1/embeddings"), ("GET", "/"),
        ("GET", "/v1/models/%2e%2e/api/ps"),
    ],
}


# -- proxy mode ----------------------------------------------------------------------------


def _proxy_blocked(paths: list[tuple[str, str]]) -> Callable[[Context], None]:
    def check(c: Context) -> None:
        if not c.proxy:
            raise Skip("not in proxy mode (--proxy)")
        wrong = []
        for method, path in paths:
            if path in c.proxy_allows:
                continue  # forwarded for a client's tool (deploys/client_tools.py)
            ex = c.call(method, path, raw=b"" if method in ("GET", "HEAD") else b"{}")
            if ex.status != 403:
                wrong.append(f"{method} {path} -> {ex.status}")
        expect(not wrong, "must answer 403: " + ", ".join(wrong))
    return check


def proxy_allowed(c: Context) -> None:
    if not c.proxy:
        raise Skip("not in proxy mode (--proxy)")
    wrong = []
    for path in ("/api/version", "/api/tags", "/v1/models"):
        ex = c.call("GET", path)
        if ex.status != 200:
            wrong.append(f"GET {path} -> {ex.status}")
    expect(not wrong, "the allowlist must reach Ollama: " + ", ".join(wrong))


# -- isolation -----------------------------------------------------------------------------


def _isolated(label: str) -> Callable[[Context], None]:
    def check(c: Context) -> None:
        targets = [(h, p) for lab, h, p in c.isolate if lab == label]
        if not targets:
            raise Skip(f"no {label} target (run from a VPN peer with --isolate {label}=HOST:PORT)")
        reached = [f"{h}:{p}" for h, p in targets if tcp_connects(h, p, min(c.timeout, 3.0))]
        expect(not reached, f"reachable from here, must not be: {', '.join(reached)}")
    return check


def tcp_connects(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``host:port`` is accepted (refused/unreachable/timeout: no)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


ISOLATION_LABELS = ("lan", "router", "peer", "internet")

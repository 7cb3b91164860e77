"""Render the project's jinja2 templates (``templates/``) on the controller.

The launchd plist template is rendered with XML autoescaping (an ``&`` in an environment value
cannot break the plist); ``haproxy.cfg`` only ever receives validated values.

Example::

    text = ollama_plist(settings_env={"OLLAMA_HOST": "192.168.100.10:11434"})
    plistlib.loads(text.encode())["Label"]   # 'com.ollama'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"

#: The Ollama binary Homebrew keeps stable across upgrades (never a Cellar path).
OLLAMA_BIN = "/opt/homebrew/opt/ollama/bin/ollama"
HAPROXY_BIN = "/opt/homebrew/opt/haproxy/bin/haproxy"
#: Session types a LaunchAgent may load in: the GUI login and SSH (``user/<uid>``) sessions.
AGENT_SESSION_TYPES = ("Aqua", "Background")

#: The endpoints HAProxy forwards (the spec's v1 allowlist); everything else is answered 403.
ALLOWED_PATHS = (
    "/v1/chat/completions",
    "/v1/models",
    "/v1/responses",
    "/v1/messages",
    "/api/version",
    "/api/tags",
    "/api/show",
)
#: ``/v1/models/{model}``: exactly one path segment after ``/v1/models/``.
ALLOWED_PATH_REGEXES = (r"^/v1/models/[^/]+$",)


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(name: str, **context: object) -> str:
    """Render ``templates/<name>`` (``.plist.j2`` templates are XML-escaped)."""
    return _env(name.endswith(".plist.j2")).get_template(name).render(**context)


def launchd_plist(
    label: str,
    program_arguments: Sequence[str],
    stdout_path: str,
    stderr_path: str,
    environment: Mapping[str, str] | None = None,
    user_name: str | None = None,
    session_types: Sequence[str] = (),
    process_type: str | None = None,
    keep_alive: bool = True,
    run_at_load: bool = True,
    working_directory: str | None = None,
    throttle_interval: int | None = None,
) -> str:
    """A launchd job plist (``templates/launchd.plist.j2``)."""
    return render(
        "launchd.plist.j2",
        label=label,
        program_arguments=list(program_arguments),
        environment=dict(environment or {}),
        user_name=user_name,
        session_types=list(session_types),
        process_type=process_type,
        keep_alive=keep_alive,
        run_at_load=run_at_load,
        working_directory=working_directory,
        throttle_interval=throttle_interval,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
    )


def ollama_plist(
    environment: Mapping[str, str],
    mode: str = "agent",
    user_name: str | None = None,
    home: str | None = None,
    stdout_path: str = "/tmp/ollama.stdout.log",
    stderr_path: str = "/tmp/ollama.stderr.log",
    label: str = "com.ollama",
    program: str = OLLAMA_BIN,
) -> str:
    """The spec's ``com.ollama`` job: ``ollama serve`` with the ``OLLAMA_*`` environment,
    ``RunAtLoad``, ``KeepAlive``. As a LaunchAgent (``mode="agent"``) it may load from the GUI
    login and from SSH (``LimitLoadToSessionType`` Aqua + Background); as a LaunchDaemon
    (``mode="daemon"``) it runs as ``user_name`` with ``HOME`` set (launchd does not set it
    for daemons, and Ollama keeps its models and key under ``$HOME/.ollama``)."""
    env = dict(environment)
    if mode == "daemon" and home:
        env.setdefault("HOME", home)
    return launchd_plist(
        label=label,
        program_arguments=[program, "serve"],
        environment=env,
        user_name=user_name if mode == "daemon" else None,
        session_types=AGENT_SESSION_TYPES if mode == "agent" else (),
        process_type="Interactive",
        stdout_path=stdout_path,
        stderr_path=stderr_path,
    )


def haproxy_plist(
    config_path: str,
    log_path: str = "/tmp/haproxy.log",
    mode: str = "agent",
    user_name: str | None = None,
    label: str = "com.haproxy",
    program: str = HAPROXY_BIN,
) -> str:
    """The ``com.haproxy`` job: HAProxy in the foreground (``-db``) with our config."""
    return launchd_plist(
        label=label,
        program_arguments=[program, "-f", config_path, "-db"],
        user_name=user_name if mode == "daemon" else None,
        session_types=AGENT_SESSION_TYPES if mode == "agent" else (),
        stdout_path=log_path,
        stderr_path=log_path,
    )


def haproxy_config(
    bind: str,
    backend: str,
    timeout: str = "10m",
    maxconn: int = 4096,
    log_level: str = "info",
    api_tokens: Sequence[Any] = (),
    extra_paths: Sequence[str] = (),
) -> str:
    """``haproxy.cfg``: listen on ``bind`` (``ip:port``), forward only :data:`ALLOWED_PATHS`
    (+ ``/v1/models/<model>``) and ``extra_paths`` (the endpoints of the clients' tools,
    ``deploys.client_tools.proxy_paths``) to ``backend`` (``127.0.0.1:port``), 403 for
    everything else.
    ``api_tokens``: ``deploys.api_tokens.TokenClient`` s (``name``, ``address``, ``sha256``,
    ``acl``): a request from such a client's address without ``Authorization: Bearer
    <token>`` (compared by SHA-256: the config holds no token) is answered 401."""
    for client in api_tokens:
        if not re.fullmatch(r"[0-9a-f]{64}", client.sha256) or not re.fullmatch(
                r"[0-9.]+", client.address) or not re.fullmatch(r"\w+", client.acl):
            raise ValueError(f"haproxy_config: bad api token entry for {client.name!r}")
    for path in extra_paths:
        if not re.fullmatch(r"/[a-z0-9_]+(/[a-z0-9_]+)*", path):
            raise ValueError(f"haproxy_config: not an API path: {path!r}")
    return render(
        "haproxy.cfg.j2",
        bind=bind,
        backend=backend,
        timeout=timeout,
        maxconn=maxconn,
        log_level=log_level,
        exact_paths=ALLOWED_PATHS + tuple(p for p in extra_paths if p not in ALLOWED_PATHS),
        path_regexes=ALLOWED_PATH_REGEXES,
        api_tokens=list(api_tokens),
    )

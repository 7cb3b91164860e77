"""The Mac clients' settings: host data of a ``clients`` host -> one validated object.

:func:`validate_client` checks one client's data (plain values, no I/O) and returns a
:class:`ClientSettings` plus the list of problems, each formatted like the plan's errors:
``<host>: <field>: <value> (<why>)``. The plan's validation calls it for every client, before
any host is contacted; ``deploys/client.py`` calls it again and refuses to run on errors.

Every field is optional (host data in ``inventories/home.py`` wins over
``inventories/group_data/clients.py``):

=========================  ==============================================  ====================
field                      meaning                                         default
=========================  ==============================================  ====================
``wg_interface_name``      wg-quick tunnel name: the config is             ``"wg-ollama"``
                           ``<homebrew>/etc/wireguard/<name>.conf``
                           (1-15 of ``[A-Za-z0-9_=+.-]``, not ``utunN``)
``tunnel_at_boot``         a LaunchDaemon brings the tunnel up at boot     ``True``
                           (and the deploy brings it up now)
``aider``                  install Aider (pipx) and write its config       ``False``
``aider_models``           Ollama models for Aider: names or               ``[]``
                           ``{"name", "num_ctx"}``; the first is the
                           default (``AIDER_MODEL``, ``model:``)
``aider_num_ctx``          ``num_ctx`` pinned for every Aider model (must  the server's
                           equal the server's warm-up, reference §6.4)     ``ollama_warm_num_ctx``
                                                                           / ``ollama_context_
                                                                           length``, else 32768
``aider_version``          pin Aider to this version (``pipx install``)    latest
``claude_code``            offer ``claude-ollama`` (Claude Code against    ``False``
                           the server; only if the server's Ollama is
                           >= 0.14.0)
``claude_models``          model(s) for Claude Code: a name, or a dict     required with
                           with ``default`` and optional ``opus``,         ``claude_code``
                           ``sonnet``, ``haiku``, ``subagent``
``server_ollama_version``  the server's Ollama version, when the           asked from the
                           controller cannot reach the server              server (GET
                                                                           /api/version)
``pin_ollama``             ``True``: ``brew pin ollama`` on the server;    ``None`` (leave)
                           ``False``: unpin; unset: leave as it is
``uninstall_aider``        ``deploys/uninstall_client.py`` also removes    ``False``
                           Aider (``pipx uninstall aider-chat``)
``homebrew_prefix``        where Homebrew lives                            ``"/opt/homebrew"``
=========================  ==============================================  ====================

Example::

    settings, errors = validate_client("alice-mac", {"aider": True,
                                                     "aider_models": ["qwen2.5-coder:32b"]})
    assert errors == [] and settings.aider_models[0].name == "qwen2.5-coder:32b"

    validate_client("bob-mac", {"tunnel_at_boot": "yes"})[1]
    # ["bob-mac: tunnel_at_boot: 'yes' (expected True or False)"]
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from deploys.schema import client as _c
from deploys.versions import CLAUDE_CODE_MIN_OLLAMA, parse_version

#: Fields this module owns, with their defaults (``None``: not set).
CLIENT_DEFAULTS: dict[str, Any] = {
    "wg_interface_name": "wg-ollama",
    "tunnel_at_boot": True,
    "aider": False,
    "aider_models": [],
    "aider_num_ctx": None,
    "aider_version": None,
    "claude_code": False,
    "claude_models": None,
    "server_ollama_version": None,
    "pin_ollama": None,
    "uninstall_aider": False,
    "homebrew_prefix": "/opt/homebrew",
    "api_token": False,
    "claude_min_context": 65536,
    "key_on_mac": True,
}

#: wg-quick's interface-name rule (darwin.bash), and the names it treats as real devices.
WG_NAME = re.compile(_c.WG_NAME, re.ASCII)
UTUN = re.compile(r"utun[0-9]+", re.ASCII)
#: Ollama model names: ``[namespace/]name[:tag]`` (a conservative subset of what Ollama
#: accepts; safe inside double quotes, YAML and plists).
MODEL_NAME = re.compile(_c.CLIENT_MODEL, re.ASCII)
CLAUDE_ROLES = ("default", "opus", "sonnet", "haiku", "subagent")
ABS_PATH = re.compile(r"/[A-Za-z0-9._/+-]*", re.ASCII)
DEFAULT_NUM_CTX = 32768


@dataclass(frozen=True)
class AiderModel:
    """An Ollama model used by Aider and the ``num_ctx`` pinned for it."""

    name: str
    num_ctx: int

    @property
    def aider_name(self) -> str:
        """Aider's name: the native ``ollama_chat/`` route (recommended by Aider)."""
        return f"ollama_chat/{self.name}"


@dataclass(frozen=True)
class ClaudeModels:
    """The Ollama models Claude Code uses for each of its roles."""

    default: str
    opus: str
    sonnet: str
    haiku: str
    subagent: str


@dataclass(frozen=True)
class ClientSettings:
    """A client's validated settings (see the module docstring for each field)."""

    host: str
    wg_interface_name: str
    tunnel_at_boot: bool
    aider: bool
    aider_models: tuple[AiderModel, ...]
    aider_version: str | None
    claude_code: bool
    claude_models: ClaudeModels | None
    server_ollama_version: str | None
    pin_ollama: bool | None
    uninstall_aider: bool
    homebrew_prefix: str
    api_token: bool = False  # a bearer token for the API (the server's proxy = 'haproxy')
    claude_min_context: int = 65536  # smallest context for Claude Code (0: no check)
    key_on_mac: bool = True  # the Mac generates its own WireGuard key

    @property
    def aider_model(self) -> AiderModel | None:
        """The default model of Aider (``AIDER_MODEL``), or None."""
        return self.aider_models[0] if self.aider_models else None

    @property
    def brew_bin(self) -> str:
        return f"{self.homebrew_prefix}/bin"

    @property
    def wireguard_dir(self) -> str:
        """Homebrew's wg-quick searches ``<prefix>/etc/wireguard`` for ``<name>.conf``."""
        return f"{self.homebrew_prefix}/etc/wireguard"

    @property
    def wireguard_config(self) -> str:
        return f"{self.wireguard_dir}/{self.wg_interface_name}.conf"

    @property
    def daemon_label(self) -> str:
        return f"org.self-sovereign-ollama.wireguard.{self.wg_interface_name}"

    @property
    def daemon_plist(self) -> str:
        return f"/Library/LaunchDaemons/{self.daemon_label}.plist"


def _value(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    return CLIENT_DEFAULTS[key] if value is None else value


def validate_client(
    host_name: str, data: Mapping[str, Any], default_num_ctx: int | None = None
) -> tuple[ClientSettings | None, list[str]]:
    """Check one client's host data; return ``(settings, [])`` or ``(None, errors)``.

    ``data`` is the host's data (any Mapping with ``.get``; ``None`` values count as unset).
    ``default_num_ctx`` is the server's warm-up context (``ollama_warm_num_ctx`` or
    ``ollama_context_length`` of the server host), used when ``aider_num_ctx`` is not set.
    Errors read ``f"{host}: {field}: {value!r} ({why})"``, like the plan's.
    """
    errors: list[str] = []

    def error(fld: str, value: object, why: str) -> None:
        errors.append(f"{host_name}: {fld}: {value!r} ({why})")

    def boolean(fld: str, allow_none: bool = False) -> bool | None:
        value = _value(data, fld)
        if value is None and allow_none:
            return None
        if not isinstance(value, bool):
            error(fld, value, "expected True or False")
            return None
        return value

    name = _value(data, "wg_interface_name")
    if not isinstance(name, str) or not WG_NAME.fullmatch(name):
        error("wg_interface_name", name, "wg-quick interface names are 1-15 of [A-Za-z0-9_=+.-]")
    elif UTUN.fullmatch(name):
        error("wg_interface_name", name, "utunN names are macOS devices, choose another name")
    tunnel_at_boot = boolean("tunnel_at_boot")
    aider = boolean("aider")
    claude_code = boolean("claude_code")
    uninstall_aider = boolean("uninstall_aider")
    pin_ollama = boolean("pin_ollama", allow_none=True)
    api_token = boolean("api_token")
    key_on_mac = boolean("key_on_mac")
    min_context = _value(data, "claude_min_context")
    if isinstance(min_context, bool) or not isinstance(min_context, int) \
            or not 0 <= min_context <= 2**21:
        error("claude_min_context", min_context, "expected a whole number from 0 to 2097152")

    prefix = _value(data, "homebrew_prefix")
    if not isinstance(prefix, str) or not ABS_PATH.fullmatch(prefix) or prefix in ("/", "/usr"):
        error("homebrew_prefix", prefix, "expected Homebrew's prefix, e.g. '/opt/homebrew'")

    num_ctx_default = default_num_ctx or DEFAULT_NUM_CTX
    raw_ctx = data.get("aider_num_ctx")
    if raw_ctx is not None:
        if isinstance(raw_ctx, bool) or not isinstance(raw_ctx, int) or not 512 <= raw_ctx <= 2**21:
            error("aider_num_ctx", raw_ctx, "expected a whole number of tokens from 512 to 2097152")
        else:
            num_ctx_default = raw_ctx

    models: list[AiderModel] = []
    raw_models = _value(data, "aider_models")
    if isinstance(raw_models, str):
        raw_models = [raw_models]
    if not isinstance(raw_models, list | tuple):
        error("aider_models", raw_models, "expected a list of model names or {'name', 'num_ctx'}")
        raw_models = []
    seen: set[str] = set()
    for i, entry in enumerate(raw_models):
        fld = f"aider_models[{i}]"
        if isinstance(entry, Mapping):
            unknown = sorted(set(entry) - {"name", "num_ctx"})
            for key in unknown:
                error(f"{fld}.{key}", entry[key], "unknown field (expected name, num_ctx)")
            model, ctx = entry.get("name"), entry.get("num_ctx", num_ctx_default)
        else:
            model, ctx = entry, num_ctx_default
        if not isinstance(model, str) or not MODEL_NAME.fullmatch(model):
            error(fld, model, "not an Ollama model name like 'qwen2.5-coder:32b'")
            continue
        if model.startswith(("ollama/", "ollama_chat/", "openai/")):
            error(fld, model, "give the Ollama name without Aider's 'ollama_chat/' prefix")
            continue
        if isinstance(ctx, bool) or not isinstance(ctx, int) or not 512 <= ctx <= 2**21:
            error(f"{fld}.num_ctx", ctx, "expected a whole number of tokens from 512 to 2097152")
            continue
        if model in seen:
            error(fld, model, "listed twice")
            continue
        seen.add(model)
        models.append(AiderModel(model, ctx))
    if aider and not models:
        error("aider_models", raw_models, "aider = True needs at least one model")

    aider_version = data.get("aider_version")
    if aider_version is not None:
        if not isinstance(aider_version, str) or parse_version(aider_version) is None \
                or not re.fullmatch(_c.VERSION, aider_version, re.ASCII):
            error("aider_version", aider_version, "expected a version like '0.86.1'")
            aider_version = None

    claude = None
    raw_claude = data.get("claude_models")
    if raw_claude is not None:
        if isinstance(raw_claude, str):
            raw_claude = {"default": raw_claude}
        if not isinstance(raw_claude, Mapping):
            error("claude_models", raw_claude,
                  "expected a model name or a dict with 'default' (+ opus, sonnet, haiku, "
                  "subagent)")
        else:
            roles: dict[str, str] = {}
            for key, model in raw_claude.items():
                if key not in CLAUDE_ROLES:
                    error(f"claude_models.{key}", model,
                          f"unknown role (expected {', '.join(CLAUDE_ROLES)})")
                elif not isinstance(model, str) or not MODEL_NAME.fullmatch(model):
                    error(f"claude_models.{key}", model,
                          "not an Ollama model name like 'qwen3-coder:30b'")
                else:
                    roles[key] = model
            if "default" not in raw_claude:
                error("claude_models", dict(raw_claude), "needs a 'default' model")
            elif "default" in roles:
                d = roles["default"]
                claude = ClaudeModels(
                    default=d,
                    opus=roles.get("opus", d),
                    sonnet=roles.get("sonnet", d),
                    haiku=roles.get("haiku", d),
                    subagent=roles.get("subagent", d),
                )
    if claude_code and raw_claude is None:
        error("claude_models", None, "claude_code = True needs a model, e.g. 'qwen3-coder:30b'")

    server_version = data.get("server_ollama_version")
    if server_version is not None:
        if not isinstance(server_version, str) or parse_version(server_version) is None:
            error("server_ollama_version", server_version, "expected a version like '0.14.0'")
            server_version = None

    if errors:
        return None, errors
    return (
        ClientSettings(
            host=host_name,
            wg_interface_name=name,
            tunnel_at_boot=bool(tunnel_at_boot),
            aider=bool(aider),
            aider_models=tuple(models),
            aider_version=aider_version,
            claude_code=bool(claude_code),
            claude_models=claude,
            server_ollama_version=server_version,
            pin_ollama=pin_ollama,
            uninstall_aider=bool(uninstall_aider),
            homebrew_prefix=prefix.rstrip("/"),
            api_token=bool(api_token),
            claude_min_context=min_context,
            key_on_mac=bool(key_on_mac),
        ),
        [],
    )


def server_num_ctx(server_data: Mapping[str, Any] | None) -> int | None:
    """The ``num_ctx`` the server warms models with (its ``ollama_warm_num_ctx``, else its
    ``ollama_context_length``), or None. Aider must send the same value (reference §6.4)."""
    if server_data is None:
        return None
    for key in ("ollama_warm_num_ctx", "ollama_context_length"):
        value = server_data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _model_key(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def undeclared_models(settings: ClientSettings, server_data: Mapping[str, Any] | None) -> list[str]:
    """Models the client uses that the server does not declare (its ``ollama_models``:
    names or ``{"name": ...}``; ``llama3.2`` means ``llama3.2:latest``). Empty when the server
    declares none (nothing to compare with)."""
    declared_raw = (server_data or {}).get("ollama_models") or []
    declared = {_model_key(m if isinstance(m, str) else str(m.get("name")))
                for m in declared_raw if isinstance(m, str | Mapping)}
    if not declared:
        return []
    used = [m.name for m in settings.aider_models]
    if settings.claude_code and settings.claude_models:
        c = settings.claude_models
        used += [c.default, c.opus, c.sonnet, c.haiku, c.subagent]
    missing: list[str] = []
    for name in used:
        if _model_key(name) not in declared and name not in missing:
            missing.append(name)
    return missing


# -- what is rendered from the settings (controller side, pure) -------------------------------

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    autoescape=jinja2.select_autoescape(["plist.j2"]),
)
_ENV.filters["sh"] = lambda value: shlex.quote(str(value))
_ENV.filters["yaml"] = lambda value: json.dumps(str(value))  # a JSON string is a YAML scalar

#: Where the env file lives, relative to $HOME; the profile blocks source it from there.
ENV_FILE = ".config/self-sovereign-ollama/env.sh"
#: The bash login files, in the order bash reads them (only the first existing one is read).
BASH_LOGIN_FILES = (".bash_profile", ".bash_login", ".profile")


def server_base_url(address: object, port: int) -> str:
    """The Ollama server's root URL as the clients reach it (no ``/v1``)."""
    return f"http://{address}:{port}"


def render_env(base_url: str, settings: ClientSettings, claude_offered: bool,
               api_token: str | None = None) -> str:
    """The env file (``~/.config/self-sovereign-ollama/env.sh``): the client env contract
    (``OLLAMA_API_BASE`` without ``/v1``, ``OPENAI_API_BASE`` with it, ``OPENAI_API_KEY``,
    ``AIDER_MODEL``) and, when offered, the ``claude-ollama`` function (bash/zsh).
    ``api_token``: the client's bearer token (proxy mode, ``deploys/api_tokens.py``): the API
    key of every tool (``OPENAI_API_KEY``, ``OLLAMA_API_KEY``, ``ANTHROPIC_AUTH_TOKEN``)."""
    model = settings.aider_model
    return _ENV.get_template("client-env.sh.j2").render(
        ollama_api_base=base_url,
        openai_api_base=base_url + "/v1",
        openai_api_key=api_token or "ollama",
        ollama_api_key=api_token,
        aider_model=model.aider_name if model else None,
        local_bin=settings.aider,
        claude=settings.claude_models if (settings.claude_code and claude_offered) else None,
        anthropic_base_url=base_url,
        anthropic_auth_token=api_token or "ollama",
        claude_min_ollama=CLAUDE_CODE_MIN_OLLAMA,
    )


def render_aider_conf(base_url: str, settings: ClientSettings, home: str) -> str:
    """``~/.aider.conf.yml``: the default model, the server, the model settings file."""
    model = settings.aider_model
    if model is None:
        raise ValueError("no Aider model")
    return _ENV.get_template("client-aider.conf.yml.j2").render(
        model=model.aider_name,
        ollama_api_base=base_url,
        model_settings_file=f"{home}/.aider.model.settings.yml",
        model_metadata_file=f"{home}/.aider.model.metadata.json",
    )


def render_model_settings(settings: ClientSettings) -> str:
    """``~/.aider.model.settings.yml``: ``num_ctx`` pinned per model (reference §6.4/§7.1)."""
    return _ENV.get_template("client-aider.model.settings.yml.j2").render(
        models=settings.aider_models)


def render_daemon_plist(settings: ClientSettings) -> str:
    """The LaunchDaemon that runs ``<bash> <wg-quick> up <conf>`` once at boot."""
    prefix = settings.homebrew_prefix
    return _ENV.get_template("client-wireguard.plist.j2").render(
        label=settings.daemon_label,
        interface=settings.wg_interface_name,
        bash=f"{prefix}/bin/bash",
        wg_quick=f"{prefix}/bin/wg-quick",
        config=settings.wireguard_config,
        path=f"{prefix}/bin:{prefix}/sbin:/usr/bin:/bin:/usr/sbin:/sbin",
        log=f"/var/log/{settings.daemon_label}.log",
    )


def profile_body() -> str:
    """The lines inside the marker block of every shell profile: source the env file."""
    return (
        "# Managed by pyinfra (self-sovereign-ollama): the Ollama server for Aider, Claude Code\n"
        f'if [ -f "$HOME/{ENV_FILE}" ]; then . "$HOME/{ENV_FILE}"; fi'
    )


def profile_targets(existing: Iterable[str]) -> list[tuple[str, bool]]:
    """The profiles that get the block: ``[(name relative to $HOME, create if missing)]``.

    ``~/.zshrc`` (zsh, macOS' default shell); for bash login shells the first of
    ``~/.bash_profile``, ``~/.bash_login``, ``~/.profile`` that exists (bash reads only that
    one: creating ``~/.bash_profile`` next to a ``~/.profile`` would silently stop bash from
    reading ``~/.profile``), else a new ``~/.bash_profile``; ``~/.bashrc`` if it exists
    (interactive non-login bash).
    """
    have = set(existing)
    login = next((f for f in BASH_LOGIN_FILES if f in have), ".bash_profile")
    targets = [(".zshrc", True), (login, True)]
    if ".bashrc" in have:
        targets.append((".bashrc", False))
    return targets

"""The Mac server's settings: host data of the ``server`` host -> one validated object.

:func:`validate_server` checks the server's host data (plain values, no I/O) and returns a
:class:`ServerSettings` plus the list of problems, each formatted like the plan's errors:
``<host>: <field>: <value> (<why>)``. It runs before any host is contacted (the plan's
validation calls it); ``deploys/server.py`` calls it again and refuses to run on errors.

Every field is optional; unset Ollama settings mean *Ollama's* default (the variable is simply
not written into the launchd plist). The fields, their types, ranges and defaults are declared
in :mod:`deploys.schema.server` (README.md, "Every field, as the schema declares it").

Example::

    settings, errors = validate_server("ai-server", {
        "ssh_user": "admin", "dmz_address": "192.168.100.10",
        "ollama_models": ["qwen2.5-coder:32b", {"name": "llama3.2", "warm": True}],
        "ollama_keep_alive": "24h", "proxy": "haproxy",
    })
    assert errors == []
    settings.ollama_host          # '127.0.0.1:11434' (HAProxy listens on the DMZ address)
    settings.environment()["OLLAMA_KEEP_ALIVE"]   # '24h'
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from typing import Any

from deploys.contexts import server_context
from deploys.schema import server as _s
from deploys.schema.base import check as _schema_check

#: Service modes: a LaunchAgent of the SSH user, or a LaunchDaemon with ``UserName``.
SERVICE_MODES = ("agent", "daemon")
BIND_MODES = ("dmz", "all")
PROXIES = ("haproxy",)
MEMORY_CHECKS = ("fail", "warn", "off")
COMPETING = ("stop", "warn")
KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")

#: The power settings of a 24/7 server (``pmset``); data ``pmset`` replaces this dict.
DEFAULT_PMSET: dict[str, int] = {"sleep": 0, "disksleep": 0, "autorestart": 1, "womp": 1}

DEFAULT_STDOUT_LOG = "/tmp/ollama.stdout.log"
DEFAULT_STDERR_LOG = "/tmp/ollama.stderr.log"
DEFAULT_HAPROXY_CONFIG = "~/.haproxy/haproxy.cfg"
DEFAULT_HAPROXY_LOG = "/tmp/haproxy.log"
DEFAULT_PORT = 11434
MIN_MACOS = (14, 0)

#: Share of unified memory the GPU may use (Metal's recommendedMaxWorkingSetSize is about
#: two thirds to three quarters of RAM on Apple silicon); used for the memory preflight.
GPU_MEMORY_SHARE = 0.75

#: Fields this role knows (besides the plan's). A typo in an ``ollama_*``/``haproxy_*`` field
#: is reported instead of being silently ignored.
KNOWN_FIELDS = frozenset(f.name for f in _s.SERVER) | {"ollama_port"}
_CHECKED_PREFIXES = ("ollama_", "haproxy_")

#: OLLAMA_* variables set through their own fields (not through ``ollama_env``).
_OWN_VARIABLES = {
    "OLLAMA_HOST": "ollama_bind",
    "OLLAMA_ORIGINS": "ollama_origins",
    "OLLAMA_KEEP_ALIVE": "ollama_keep_alive",
    "OLLAMA_CONTEXT_LENGTH": "ollama_context_length",
    "OLLAMA_NUM_PARALLEL": "ollama_num_parallel",
    "OLLAMA_MAX_LOADED_MODELS": "ollama_max_loaded_models",
    "OLLAMA_FLASH_ATTENTION": "ollama_flash_attention",
    "OLLAMA_KV_CACHE_TYPE": "ollama_kv_cache_type",
    "OLLAMA_MODELS": "ollama_models_dir",
}

MODEL_NAME = re.compile(_s.MODEL_NAME, re.ASCII)
USER_NAME = re.compile(_s.USER_NAME, re.ASCII)
ENV_NAME = re.compile(_s.ENV_NAME, re.ASCII)
DURATION = re.compile(_s.DURATION, re.ASCII)
HAPROXY_TIME = re.compile(_s.HAPROXY_TIME, re.ASCII)
PMSET_KEY = re.compile(_s.PMSET_KEY, re.ASCII)
SERVICE_NAME = re.compile(_s.SERVICE_NAME, re.ASCII)
DEVICE = re.compile(_s.DEVICE, re.ASCII)


@dataclass(frozen=True)
class ModelSpec:
    """A declared model. ``name`` is normalised (``llama3.2`` -> ``llama3.2:latest``)."""

    name: str
    warm: bool = False
    memory_gb: float | None = None  # declared memory need; estimated from the tag when None
    context_length: int | None = None  # the context this model is used with (2048..1048576)


@dataclass(frozen=True)
class LogRotate:
    """Rotation of the server's logs (``log_rotate``)."""

    size_kb: int = 10240
    count: int = 5


@dataclass(frozen=True)
class ServerSettings:
    """The validated server settings (see the module docstring for the fields)."""

    host: str
    ssh_user: str | None  # None until resolve_user() (pyinfra's default login name)
    service_mode: str
    ollama_user: str | None
    bind: str  # "dmz" | "all" | "loopback" (the effective binding)
    address: IPv4Address | None  # the server's DMZ address (from the plan's dmz_address)
    port: int
    env: dict[str, str]  # OLLAMA_* variables other than OLLAMA_HOST, only those set
    stdout_log: str
    stderr_log: str
    models: tuple[ModelSpec, ...]
    prune_models: bool
    warm_keep_alive: str | int
    warm_num_ctx: int | None
    pull_timeout: int
    upgrade: bool
    memory_check: str
    competing_servers: str
    proxy: str | None
    haproxy_config: str
    haproxy_log: str
    haproxy_timeout: str
    static_ip: bool
    network_service: str | None
    network_device: str | None
    dns_servers: tuple[str, ...] | None  # None: the router's DMZ address
    static_ip_over_ssh: bool
    pmset: dict[str, int] = field(default_factory=dict)
    uninstall_revert_dhcp: bool = False
    log_rotate: LogRotate = field(default_factory=LogRotate)
    warm_at_boot: bool = True

    @property
    def listen_address(self) -> str:
        """The address Ollama listens on (no port)."""
        if self.bind == "loopback":
            return "127.0.0.1"
        if self.bind == "all":
            return "0.0.0.0"
        return str(self.address)

    @property
    def ollama_host(self) -> str:
        """``OLLAMA_HOST`` for the service, always with the port (``host`` alone means 11434,
        ``http://host`` alone means port 80)."""
        return f"{self.listen_address}:{self.port}"

    @property
    def api_address(self) -> str:
        """Where this server's own tools reach Ollama (``0.0.0.0`` is not an address to
        connect to): ``host:port``."""
        host = "127.0.0.1" if self.bind in ("all", "loopback") else str(self.address)
        return f"{host}:{self.port}"

    @property
    def public_address(self) -> str:
        """Where clients reach the API: HAProxy or Ollama on the DMZ address."""
        return f"{self.address}:{self.port}"

    @property
    def runs_as(self) -> str | None:
        return self.ollama_user if self.service_mode == "daemon" else self.ssh_user

    def resolve_user(self, login_user: str | None) -> ServerSettings:
        """Fill in the SSH user (and the Ollama user it implies) from the remote login name
        when the inventory does not set ``ssh_user``."""
        if self.ssh_user is not None or not login_user:
            return self
        return replace(self, ssh_user=login_user, ollama_user=self.ollama_user or login_user)

    def environment(self) -> dict[str, str]:
        """The plist's ``EnvironmentVariables``: ``OLLAMA_HOST`` plus the variables set."""
        return {"OLLAMA_HOST": self.ollama_host, **self.env}

    @property
    def warm_models(self) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.models if m.warm)


class _Checker:
    def __init__(self, who: str) -> None:
        self.who = who
        self.errors: list[str] = []

    def error(self, fld: str, value: object, why: str) -> None:
        self.errors.append(f"{self.who}: {fld}: {value!r} ({why})")

    def choice(self, data: Mapping[str, Any], fld: str, choices: tuple, default: Any) -> Any:
        value = data.get(fld, default)
        if value not in choices:
            self.error(fld, value, "expected one of " + ", ".join(repr(c) for c in choices))
            return default
        return value

    def boolean(self, data: Mapping[str, Any], fld: str, default: bool) -> bool:
        value = data.get(fld, default)
        if not isinstance(value, bool):
            self.error(fld, value, "expected True or False")
            return default
        return value

    def integer(
        self, data: Mapping[str, Any], fld: str, lo: int, hi: int, default: int | None = None
    ) -> int | None:
        value = data.get(fld, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(fld, value, f"expected a whole number from {lo} to {hi}")
            return default
        if not lo <= value <= hi:
            self.error(fld, value, f"out of range {lo}-{hi}")
            return default
        return value

    def path(self, data: Mapping[str, Any], fld: str, default: str | None, home_ok: bool) -> Any:
        value = data.get(fld, default)
        if value is None:
            return None
        ok = isinstance(value, str) and (
            value.startswith("/") or (home_ok and value.startswith("~/"))
        )
        if not ok or "\n" in value or "\x00" in value or value.rstrip("/") in ("", "~"):
            where = "an absolute path" + (" or one under ~/" if home_ok else "")
            self.error(fld, value, f"expected {where}")
            return default
        return value


def normalize_model(name: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest`` (how ``/api/tags`` lists it)."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def _duration(value: object) -> str | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and DURATION.fullmatch(value):
        return value
    return None


def validate_server(
    host_name: str, data: Mapping[str, Any]
) -> tuple[ServerSettings | None, list[str]]:
    """Check the server's host data. Returns ``(settings, [])`` or ``(None, errors)``.

    ``data`` is the host's data as a mapping (host data, group data and ``all`` merged, as
    ``host.data`` sees it). Network-wide fields (``dmz_address``, ``ollama_port``) are read but
    not re-checked: the plan reports their errors.

    Example::

        settings, errors = validate_server("ai-server", {"ssh_user": "admin",
                                                         "dmz_address": "192.168.100.10"})
    """
    c = _Checker(host_name)

    for key in sorted(k for k in data if isinstance(k, str)):
        if key.startswith(_CHECKED_PREFIXES) and key not in KNOWN_FIELDS:
            c.error(key, data.get(key), "unknown field")

    # configure_host = False (deploys/all.py): the host is only in the inventory for its data;
    # how pyinfra would log in to it does not matter then
    managed = data.get("configure_host", True) is not False
    ssh_user = data.get("ssh_user")  # None: pyinfra's default (the local user name)
    if ssh_user is not None and (
        not isinstance(ssh_user, str) or not USER_NAME.fullmatch(ssh_user)
    ):
        c.error("ssh_user", ssh_user, "not a macOS account name")
        ssh_user = None
    elif ssh_user == "root" and managed:
        c.error("ssh_user", ssh_user, "Homebrew refuses to run as root: log in as an admin user")
    if data.get("_sudo") is True and managed:
        c.error(
            "_sudo",
            True,
            "do not set _sudo for the server: the role uses sudo only for "
            "pmset, networksetup and LaunchDaemons, and Homebrew refuses to run as root",
        )

    address = None
    raw_address = data.get("dmz_address")
    if isinstance(raw_address, str):
        try:
            parsed = ipaddress.ip_address(raw_address)
            address = parsed if isinstance(parsed, IPv4Address) else None
        except ValueError:
            address = None
    port = data.get("ollama_port", DEFAULT_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        port = DEFAULT_PORT  # reported by the plan

    mode = c.choice(data, "ollama_service", SERVICE_MODES, "agent")
    ollama_user = data.get("ollama_user", ssh_user)
    if "ollama_user" not in data:
        if mode == "daemon" and ssh_user is None:
            c.error(
                "ollama_user",
                None,
                "required for ollama_service = 'daemon' when "
                "ssh_user is not set: the account Ollama runs as",
            )
    elif not isinstance(ollama_user, str) or not USER_NAME.fullmatch(ollama_user):
        c.error("ollama_user", ollama_user, "not a macOS account name")
        ollama_user = ssh_user
    elif ollama_user == "root":
        c.error("ollama_user", ollama_user, "Ollama must not run as root")
    elif mode == "agent" and ollama_user != ssh_user:
        c.error(
            "ollama_user",
            ollama_user,
            f"a LaunchAgent runs as the SSH user {ssh_user!r}; use ollama_service = 'daemon' to "
            "run Ollama as another user",
        )

    proxy = data.get("proxy")
    if proxy is not None and proxy not in PROXIES:
        c.error("proxy", proxy, "expected None or 'haproxy'")
        proxy = None
    bind = c.choice(data, "ollama_bind", BIND_MODES, "dmz")
    if proxy == "haproxy":
        if "ollama_bind" in data and bind != "dmz":
            c.error(
                "ollama_bind",
                bind,
                "with proxy = 'haproxy' Ollama listens on 127.0.0.1 "
                "and HAProxy on the DMZ address; remove ollama_bind",
            )
        bind = "loopback"

    env: dict[str, str] = {}
    origins = data.get("ollama_origins")
    if origins is not None:
        items = origins.split(",") if isinstance(origins, str) else origins
        if (
            not isinstance(items, list | tuple)
            or not items
            or not all(isinstance(o, str) and o.strip() and "," not in o for o in items)
        ):
            c.error(
                "ollama_origins",
                origins,
                "expected a list of origins like "
                "['http://192.168.100.10:*'] or one comma-separated string",
            )
        else:
            env["OLLAMA_ORIGINS"] = ",".join(o.strip() for o in items)
    keep_alive = data.get("ollama_keep_alive")
    if keep_alive is not None:
        parsed_ka = _duration(keep_alive)
        if parsed_ka is None:
            c.error(
                "ollama_keep_alive",
                keep_alive,
                "expected a duration like '24h', '30m', seconds, or -1 for forever",
            )
        else:
            env["OLLAMA_KEEP_ALIVE"] = str(parsed_ka)
    c.integer(data, "ollama_context_length", 256, 2**21)
    # one context size per model (deploys/contexts.py): a request without num_ctx gets this
    env["OLLAMA_CONTEXT_LENGTH"] = str(server_context(data))
    parallel = c.integer(data, "ollama_num_parallel", 1, 64)
    if parallel is not None:
        env["OLLAMA_NUM_PARALLEL"] = str(parallel)
    loaded = c.integer(data, "ollama_max_loaded_models", 0, 64)
    if loaded is not None:
        env["OLLAMA_MAX_LOADED_MODELS"] = str(loaded)
    flash = data.get("ollama_flash_attention")
    if flash is not None:
        if not isinstance(flash, bool):
            c.error("ollama_flash_attention", flash, "expected True or False")
        else:
            env["OLLAMA_FLASH_ATTENTION"] = "1" if flash else "0"
    kv = data.get("ollama_kv_cache_type")
    if kv is not None:
        if kv not in KV_CACHE_TYPES:
            c.error("ollama_kv_cache_type", kv, "expected one of " + ", ".join(KV_CACHE_TYPES))
        else:
            env["OLLAMA_KV_CACHE_TYPE"] = kv
    models_dir = c.path(data, "ollama_models_dir", None, home_ok=False)
    if models_dir is not None:
        env["OLLAMA_MODELS"] = models_dir
    extra = data.get("ollama_env", {})
    if not isinstance(extra, Mapping):
        c.error("ollama_env", extra, "expected a dict of OLLAMA_* variables")
    else:
        for key, value in extra.items():
            if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
                c.error(f"ollama_env[{key!r}]", value, "only OLLAMA_[A-Z0-9_]+ variables")
            elif key in _OWN_VARIABLES:
                c.error(f"ollama_env[{key!r}]", value, f"set it with {_OWN_VARIABLES[key]}")
            elif not isinstance(value, str | int) or isinstance(value, bool) or "\n" in str(value):
                c.error(f"ollama_env[{key!r}]", value, "expected a one-line string or number")
            else:
                env[key] = str(value)

    stdout_log = c.path(data, "ollama_stdout_log", DEFAULT_STDOUT_LOG, home_ok=False)
    stderr_log = c.path(data, "ollama_stderr_log", DEFAULT_STDERR_LOG, home_ok=False)

    models = _models(c, data.get("ollama_models", []))
    prune = c.boolean(data, "ollama_prune_models", False)
    warm_keep_alive: str | int = -1
    if "ollama_warm_keep_alive" in data:
        parsed = _duration(data["ollama_warm_keep_alive"])
        if parsed is None:
            c.error(
                "ollama_warm_keep_alive",
                data["ollama_warm_keep_alive"],
                "expected a duration like '24h', seconds, or -1 for forever",
            )
        else:
            warm_keep_alive = parsed
    warm_num_ctx = c.integer(data, "ollama_warm_num_ctx", 256, 2**21,
                             default=server_context(data))
    pull_timeout = c.integer(data, "ollama_pull_timeout", 0, 7 * 24 * 3600, default=0) or 0
    upgrade = c.boolean(data, "ollama_upgrade", False)
    memory_check = c.choice(data, "ollama_memory_check", MEMORY_CHECKS, "warn")
    competing = c.choice(data, "competing_servers", COMPETING, "stop")

    haproxy_config = c.path(data, "haproxy_config", DEFAULT_HAPROXY_CONFIG, home_ok=True)
    haproxy_log = c.path(data, "haproxy_log", DEFAULT_HAPROXY_LOG, home_ok=False)
    haproxy_timeout = data.get("haproxy_timeout", "10m")
    if not isinstance(haproxy_timeout, str) or not HAPROXY_TIME.fullmatch(haproxy_timeout):
        c.error("haproxy_timeout", haproxy_timeout, "expected an HAProxy time like '10m'")
        haproxy_timeout = "10m"

    static_ip = c.boolean(data, "static_ip", True)
    service = data.get("network_service")
    if service is not None and (
        not isinstance(service, str) or not SERVICE_NAME.fullmatch(service)
    ):
        c.error("network_service", service, "expected a network service name like 'Ethernet'")
        service = None
    device = data.get("network_device", None if service else "en0")
    if device is not None and (not isinstance(device, str) or not DEVICE.fullmatch(device)):
        c.error("network_device", device, "expected a device name like 'en0'")
        device = None
    dns = data.get("dns_servers")
    dns_servers: tuple[str, ...] | None = None
    if dns is not None:
        if not isinstance(dns, list | tuple) or not dns:
            c.error("dns_servers", dns, "expected a non-empty list of IPv4 addresses")
        else:
            good = []
            for i, server in enumerate(dns):
                try:
                    if not isinstance(server, str):
                        raise ValueError
                    ipaddress.IPv4Address(server)
                    good.append(server)
                except ValueError:
                    c.error(f"dns_servers[{i}]", server, "not an IPv4 address")
            dns_servers = tuple(good)
    over_ssh = c.boolean(data, "static_ip_over_ssh", False)

    pmset = data.get("pmset", DEFAULT_PMSET)
    pmset_clean: dict[str, int] = {}
    if pmset is None:
        pmset = {}
    if not isinstance(pmset, Mapping):
        c.error("pmset", pmset, "expected a dict like {'sleep': 0, 'autorestart': 1}")
    else:
        for key, value in pmset.items():
            if not isinstance(key, str) or not PMSET_KEY.fullmatch(key):
                c.error(f"pmset[{key!r}]", value, "not a pmset setting name")
            elif (
                isinstance(value, bool) or not isinstance(value, int) or not (0 <= value <= 100000)
            ):
                c.error(f"pmset[{key!r}]", value, "expected a whole number (minutes or 0/1)")
            else:
                pmset_clean[key] = value
    revert = c.boolean(data, "uninstall_revert_dhcp", False)
    warm_at_boot = c.boolean(data, "warm_at_boot", True)
    rotate = LogRotate()
    raw_rotate = data.get("log_rotate")
    if raw_rotate is not None:
        errors: list[str] = []
        got = _schema_check(_s.SERVER_FIELDS["log_rotate"], raw_rotate, host_name, errors)
        c.errors += errors
        if isinstance(got, Mapping):  # False: no rotation (deploys/server_upkeep.py)
            rotate = LogRotate(**got)

    if c.errors:
        return None, c.errors
    return (
        ServerSettings(
            host=host_name,
            ssh_user=ssh_user,
            service_mode=mode,
            ollama_user=ollama_user if mode == "daemon" else ssh_user,
            bind=bind,
            address=address,
            port=port,
            env=env,
            stdout_log=stdout_log,
            stderr_log=stderr_log,
            models=models,
            prune_models=prune,
            warm_keep_alive=warm_keep_alive,
            warm_num_ctx=warm_num_ctx,
            pull_timeout=pull_timeout,
            upgrade=upgrade,
            memory_check=memory_check,
            competing_servers=competing,
            proxy=proxy,
            haproxy_config=haproxy_config,
            haproxy_log=haproxy_log,
            haproxy_timeout=haproxy_timeout,
            static_ip=static_ip,
            network_service=service,
            network_device=None if service else device,
            dns_servers=dns_servers,
            static_ip_over_ssh=over_ssh,
            pmset=pmset_clean,
            uninstall_revert_dhcp=revert,
            log_rotate=rotate,
            warm_at_boot=warm_at_boot,
        ),
        [],
    )


def _models(c: _Checker, raw: object) -> tuple[ModelSpec, ...]:
    if not isinstance(raw, list | tuple):
        c.error("ollama_models", raw, "expected a list of model names or dicts")
        return ()
    models: list[ModelSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        fld = f"ollama_models[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping):
            c.error(fld, item, "expected a model name or a dict with 'name'")
            continue
        unknown = sorted(set(item) - {"name", "warm", "memory_gb", "context_length"})
        for key in unknown:
            c.error(f"{fld}.{key}", item[key],
                    "unknown model field (name, warm, memory_gb, context_length)")
        name = item.get("name")
        if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
            c.error(fld, name, "not an Ollama model name like 'qwen2.5-coder:32b'")
            continue
        warm = item.get("warm", False)
        if not isinstance(warm, bool):
            c.error(f"{fld}.warm", warm, "expected True or False")
            warm = False
        memory = item.get("memory_gb")
        if memory is not None and (
            isinstance(memory, bool) or not isinstance(memory, int | float) or memory <= 0
        ):
            c.error(f"{fld}.memory_gb", memory, "expected a positive number of GB")
            memory = None
        ctx = item.get("context_length")
        if ctx is not None and (isinstance(ctx, bool) or not isinstance(ctx, int)
                                or not 2048 <= ctx <= 1048576):
            c.error(f"{fld}.context_length", ctx, "expected a whole number from 2048 to 1048576")
            ctx = None
        full = normalize_model(name)
        if full in seen:
            c.error(fld, name, "declared twice")
            continue
        seen.add(full)
        models.append(
            ModelSpec(full, warm, float(memory) if memory is not None else None, ctx)
        )
    return tuple(models)


# The run (memory preflight, network target, state fact arguments, server_run) lives in
# deploys/server_run.py; its names stay importable from here.
from deploys.server_run import (  # noqa: E402
    LABEL_HAPROXY,
    LABEL_OLLAMA,
    NetworkTarget,
    ServerRun,
    estimate_model_gb,
    managed_files,
    memory_problems,
    network_target,
    server_run,
    state_fact_args,
)

__all__ = [
    "DEFAULT_PMSET",
    "KNOWN_FIELDS",
    "LogRotate",
    "ModelSpec",
    "ServerSettings",
    "normalize_model",
    "validate_server",
    "LABEL_HAPROXY",
    "LABEL_OLLAMA",
    "NetworkTarget",
    "ServerRun",
    "estimate_model_gb",
    "managed_files",
    "memory_problems",
    "network_target",
    "server_run",
    "state_fact_args",
]

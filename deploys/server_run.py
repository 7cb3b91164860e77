"""What a server run must do, decided before anything changes (pure; split from
:mod:`deploys.server_plan`, which re-exports every name): the memory preflight
(:func:`memory_problems`), the DMZ target (:func:`network_target`), the state fact's arguments
(:func:`state_fact_args`) and the run itself (:func:`server_run`: preflight errors, rendered
files, which services restart)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # deploys.server_plan imports this module at its end (re-exports)
    from deploys.server_plan import ModelSpec, ServerSettings


def _constants() -> tuple[float, tuple[int, int]]:
    from deploys.server_plan import GPU_MEMORY_SHARE, MIN_MACOS

    return GPU_MEMORY_SHARE, MIN_MACOS

# -- memory -----------------------------------------------------------------------------------

_PARAMS = re.compile(r"(?<![0-9.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])", re.I)
_BYTES_PER_PARAM = (
    ("fp16", 2.0),
    ("f16", 2.0),
    ("bf16", 2.0),
    ("q8", 1.07),
    ("q6", 0.83),
    ("q5", 0.7),
    ("q3", 0.5),
    ("q2", 0.4),
)


def estimate_model_gb(name: str) -> float | None:
    """A rough memory need (GB) from the tag's parameter count (``qwen2.5-coder:32b`` -> ~22),
    assuming the library's default 4-bit quantisation unless the tag names another; ``None``
    when the tag gives no size. Only used when the model is not installed yet and declares no
    ``memory_gb``."""
    tag = name.rsplit(":", 1)[-1].lower() if ":" in name else ""
    m = _PARAMS.search(tag)
    if not m:
        return None
    billions = float(m.group(1)) / (1000 if m.group(2).lower() == "m" else 1)
    per_param = next((b for key, b in _BYTES_PER_PARAM if key in tag), 0.6)
    return round(billions * per_param * 1.1 + 0.5, 1)


def memory_problems(
    settings: ServerSettings, memory_bytes: int | None, installed: Mapping[str, int]
) -> list[str]:
    """Declared models that cannot fit in this Mac's GPU-usable memory.

    ``installed`` maps installed model names to their size in bytes (``/api/tags``), which is
    preferred over ``memory_gb`` and the estimate. Checks every model alone, and the warm
    models together (they are meant to stay loaded at the same time).
    """
    if not memory_bytes or settings.memory_check == "off":
        return []
    usable = memory_bytes * _constants()[0] / 1e9
    total = memory_bytes / 2**30  # shown like Apple shows it: 64 GB = 64 GiB

    def need(model: ModelSpec) -> float | None:
        if model.memory_gb is not None:
            return model.memory_gb
        if model.name in installed:
            return installed[model.name] / 1e9 * 1.1
        return estimate_model_gb(model.name)

    problems = []
    for model in settings.models:
        gb = need(model)
        if gb is not None and gb > usable:
            problems.append(
                f"{settings.host}: ollama_models: {model.name!r} (needs about {gb:.0f} GB; this "
                f"Mac has {total:.0f} GB, about {usable:.0f} GB usable by the GPU)"
            )
    warm = [(m, need(m)) for m in settings.warm_models]
    warm_total = sum(gb for _, gb in warm if gb is not None)
    if len(warm) > 1 and warm_total > usable:
        names = [m.name for m, _ in warm]
        problems.append(
            f"{settings.host}: ollama_models: {names!r} (the warm models need about "
            f"{math.ceil(warm_total)} GB together; about {usable:.0f} GB usable by the GPU)"
        )
    return problems


# -- what a run must do, decided before anything changes -------------------------------------


@dataclass(frozen=True)
class NetworkTarget:
    """The server's DMZ settings from the plan: address, netmask, router, DNS servers."""

    address: str
    netmask: str
    router: str
    dns: tuple[str, ...]


def network_target(settings: ServerSettings, plan: Any) -> NetworkTarget:
    """From the validated plan (``server_address``, ``dmz_subnet``, ``dmz_router_address``)."""
    router = str(plan.dmz_router_address)
    return NetworkTarget(
        address=str(plan.server_address),
        netmask=str(plan.dmz_subnet.netmask),
        router=router,
        dns=settings.dns_servers or (router,),
    )


LABEL_OLLAMA = "com.ollama"
LABEL_HAPROXY = "com.haproxy"


def managed_files(settings: ServerSettings) -> list[str]:
    """Files the state fact hashes: both modes' plists of our jobs and of brew services'
    Ollama, HAProxy's config, the logs (``uninstall`` deletes those that exist) and our jobs'
    restart markers (``operations.macos.restart_marker``)."""
    from operations.macos import restart_marker

    files = []
    for label in (LABEL_OLLAMA, LABEL_HAPROXY, "homebrew.mxcl.ollama"):
        files += [f"~/Library/LaunchAgents/{label}.plist", f"/Library/LaunchDaemons/{label}.plist"]
    files += [settings.haproxy_config, settings.stdout_log, settings.stderr_log]
    files.append(settings.haproxy_log)
    files += [restart_marker(LABEL_OLLAMA), restart_marker(LABEL_HAPROXY)]
    return list(dict.fromkeys(files))


def state_fact_args(settings: ServerSettings, upgrade_check: bool | None = None) -> dict:
    """Arguments of ``facts.macserver.MacServerState`` for this server."""
    return {
        "api": settings.api_address,
        "port": settings.port,
        "files": managed_files(settings),
        "formulas": ["ollama", "haproxy"],
        "network_service": settings.network_service or "",
        "network_device": (settings.network_device or "") if not settings.network_service else "",
        "proxy_api": settings.public_address if settings.proxy == "haproxy" else "",
        "brew_info": settings.upgrade if upgrade_check is None else upgrade_check,
        "run_user": settings.ollama_user if settings.service_mode == "daemon" else "",
    }


@dataclass
class ServerRun:
    """Everything ``deploys/server.py`` needs, computed from the settings and the state."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    formulas: list[str] = field(default_factory=list)
    brew: dict[str, list[str]] = field(default_factory=dict)
    competitors: list[dict[str, Any]] = field(default_factory=list)
    ollama_plist: str = ""
    haproxy_plist: str = ""
    haproxy_config: str = ""
    haproxy_config_path: str = ""
    restart_ollama: bool = False
    restart_haproxy: bool = False
    ollama_changes: bool = False
    haproxy_changes: bool = False
    network_changes: bool = False
    pmset_changes: bool = False
    sudo_reasons: list[str] = field(default_factory=list)
    refresh_models: bool = False
    #: label -> its restart marker (``operations.macos.restart_marker``; None: no home known),
    #: the one the deploy makes with a new plist/config and that decides a restart here
    restart_markers: dict[str, str | None] = field(default_factory=dict)

    @property
    def changes_service(self) -> bool:
        return bool(
            self.ollama_changes
            or self.haproxy_changes
            or self.brew.get("install")
            or self.brew.get("upgrade")
            or self.network_changes
        )


def server_run(
    settings: ServerSettings,
    target: NetworkTarget,
    state: Mapping[str, Any],
    sudo_password: bool = False,
    api_tokens: tuple = (),
    proxy_paths: tuple[str, ...] = (),
) -> ServerRun:
    """Decide the run: preflight errors and warnings (nothing may change when there are
    errors), the rendered files, and which services will restart.

    Example::

        run = server_run(settings, network_target(settings, plan), state)
        if run.errors: raise DeployError("\\n".join(run.errors))
    """
    from facts.macserver import find_competitors
    from facts.ollama import parse_models, strip_brew_revision
    from facts.versions import version_tuple
    from operations import launchd, templates
    from operations.macos import (
        brew_actions,
        expand_home,
        network_changes,
        pmset_changes,
        resolve_service,
        restart_marker,
        sha256_text,
    )

    run = ServerRun()
    who = settings.host
    err, warn = run.errors.append, run.warnings.append

    if not state or not state.get("complete"):
        err(f"{who}: state: {None!r} (could not read the Mac's state over SSH)")
        return run
    settings = settings.resolve_user(state.get("user"))
    macos = state.get("macos") or {}
    if macos.get("product_name") != "macOS" or not macos.get("version"):
        err(f"{who}: macos: {macos.get('product_name')!r} (sw_vers found no macOS: not a Mac?)")
        return run
    if version_tuple(macos["version"]) < _constants()[1]:
        err(f"{who}: macos: {macos['version']!r} (Ollama needs macOS 14 Sonoma or newer)")
    if not macos.get("apple_silicon"):
        err(f"{who}: arch: {macos.get('arch')!r} (an Apple silicon Mac (arm64) is required)")
    brew = state.get("brew") or {}
    if not brew.get("prefix"):
        err(
            f"{who}: homebrew: {None!r} (not installed: install Homebrew (https://brew.sh) as "
            f"{settings.ssh_user}, then run again)"
        )
    elif brew["prefix"] != "/opt/homebrew":
        err(
            f"{who}: homebrew: {brew['prefix']!r} (an Apple silicon Homebrew in /opt/homebrew "
            "is required)"
        )
    if state.get("user") and state["user"] != settings.ssh_user:
        warn(f"{who}: logged in as {state['user']!r}, not ssh_user {settings.ssh_user!r}")
    home = state.get("home") or ""
    run_home = home
    if settings.service_mode == "daemon":
        run_user = state.get("run_user")
        if not run_user:
            err(f"{who}: ollama_user: {settings.ollama_user!r} (no such user on the Mac)")
        else:
            run_home = run_user.get("home") or home

    # memory for the declared models
    models = parse_models((state.get("api") or {}).get("tags") or {}) or []
    installed = {m["name"]: m.get("size") or 0 for m in models}
    for problem in memory_problems(settings, macos.get("memory_bytes"), installed):
        (err if settings.memory_check == "fail" else warn)(problem)

    # Homebrew formulas
    run.formulas = ["ollama"] + (["haproxy"] if settings.proxy == "haproxy" else [])
    run.brew = brew_actions(run.formulas, brew, state.get("brew_info") or {}, settings.upgrade)

    # competing servers
    run.competitors = find_competitors(state, label=LABEL_OLLAMA, port=settings.port)
    if settings.competing_servers == "warn":
        for c in run.competitors:
            warn(f"{who}: competing Ollama server: {c['detail']}")
    elif any(
        c.get("domain") == "system" or str(c.get("path") or "").startswith("/Library/")
        for c in run.competitors
        if c["kind"] in ("brew-service", "brew-plist")
    ):
        run.sudo_reasons.append("stop brew services' Ollama LaunchDaemon")

    # power
    if settings.pmset:
        profiles = state.get("pmset") or {}
        if not profiles:
            warn(f"{who}: pmset: cannot read the power settings (pmset -g custom); skipped")
        else:
            _, changes, _ = pmset_changes(settings.pmset, profiles)
            run.pmset_changes = bool(changes)
            if changes:
                run.sudo_reasons.append("pmset " + " ".join(f"{k} {v}" for k, v in changes.items()))
        if settings.pmset.get("autorestart") and state.get("filevault"):
            warn(
                f"{who}: FileVault is on: after a power loss the Mac waits at the unlock screen "
                "and nothing runs until someone unlocks it (planned reboots: sudo fdesetup "
                "authrestart)"
            )

    # static IP
    if settings.static_ip:
        services = state.get("network_services") or []
        chosen = resolve_service(services, settings.network_service, settings.network_device)
        what = (
            f"network_service: {settings.network_service!r}"
            if settings.network_service
            else f"network_device: {settings.network_device!r}"
        )
        known = ", ".join(f"{s['name']} ({s.get('device') or '-'})" for s in services)
        info = state.get("network") or {}
        if chosen is None or not state.get("network_service"):
            err(f"{who}: {what} (no such network service on the Mac; it has: {known or 'none'})")
        elif info.get("error"):
            err(f"{who}: {what} ({info['error']})")
        else:
            if (chosen.get("hardware_port") or "").lower() in ("wi-fi", "airport"):
                warn(f"{who}: {what} is Wi-Fi: a 24/7 server should be wired (Ethernet)")
            todo = network_changes(
                info,
                state.get("dns"),
                target.address,
                target.netmask,
                target.router,
                list(target.dns),
            )
            run.network_changes = todo["manual"] or todo["dns"]
            if run.network_changes:
                run.sudo_reasons.append(f"networksetup on {state['network_service']}")
            link = (state.get("ssh_connection") or {}).get("server")
            if (
                todo["manual"]
                and link
                and link == info.get("ip")
                and link != target.address
                and not settings.static_ip_over_ssh
            ):
                err(
                    f"{who}: static_ip_over_ssh: False (this SSH session runs over "
                    f"{state['network_service']} ({link}); giving it {target.address} would cut "
                    "it: connect over another link, give the Mac that address by DHCP first, "
                    "or set static_ip_over_ssh = True for a detached change with automatic "
                    "rollback)"
                )

    # the Ollama service
    mode = settings.service_mode
    if mode == "agent":
        if state.get("autologin_user") != settings.ssh_user:
            warn(
                f"{who}: Ollama runs as a LaunchAgent of {settings.ssh_user}: after a reboot it "
                f"starts only once {settings.ssh_user} logs in (no auto-login"
                + (", FileVault is on" if state.get("filevault") else "")
                + "); set ollama_service = 'daemon' to serve without a login"
            )
    else:
        run.sudo_reasons.append("manage LaunchDaemons")
    run.ollama_plist = templates.ollama_plist(
        settings.environment(),
        mode=mode,
        user_name=settings.ollama_user,
        home=run_home or None,
        stdout_path=settings.stdout_log,
        stderr_path=settings.stderr_log,
        label=LABEL_OLLAMA,
    )
    installed_version = strip_brew_revision(
        (brew.get("formulas", {}).get("ollama") or {}).get("version")
    )
    api_version = ((state.get("api") or {}).get("version") or {}).get("json") or {}
    running_version = api_version.get("version") if isinstance(api_version, dict) else None
    upgraded = "ollama" in run.brew.get("install", []) + run.brew.get("upgrade", [])
    stale = bool(running_version and installed_version and running_version != installed_version)
    if stale:
        warn(
            f"{who}: Ollama {running_version} is running but {installed_version} is installed: "
            "restarting it"
        )
    files = state.get("files") or {}
    # a run interrupted between a new plist/config and the restart left its marker
    markers = run.restart_markers = {label: restart_marker(label, home) if home else None
                                     for label in (LABEL_OLLAMA, LABEL_HAPROXY)}
    run.restart_ollama = upgraded or stale or files.get(markers[LABEL_OLLAMA]) is not None
    if not run.errors:
        cmds, _ = launchd.service_commands(
            LABEL_OLLAMA, run.ollama_plist, mode, state, restart=run.restart_ollama,
            pending=markers[LABEL_OLLAMA]
        )
        run.ollama_changes = bool(cmds)

    # HAProxy
    if settings.proxy == "haproxy" and home:
        run.haproxy_config_path = expand_home(settings.haproxy_config, home)
        run.haproxy_config = templates.haproxy_config(
            bind=settings.public_address,
            backend=settings.api_address,
            timeout=settings.haproxy_timeout,
            api_tokens=api_tokens,  # deploys/api_tokens.py
            extra_paths=proxy_paths,  # the clients' tools (deploys/client_tools.py)
        )
        run.haproxy_plist = templates.haproxy_plist(
            run.haproxy_config_path,
            log_path=settings.haproxy_log,
            mode=mode,
            user_name=settings.ollama_user,
            label=LABEL_HAPROXY,
        )
        config_changed = (state.get("files") or {}).get(run.haproxy_config_path) != sha256_text(
            run.haproxy_config
        )
        run.restart_haproxy = (config_changed or "haproxy" in run.brew.get("upgrade", [])
                               or files.get(markers[LABEL_HAPROXY]) is not None)
        if not run.errors:
            cmds, _ = launchd.service_commands(
                LABEL_HAPROXY, run.haproxy_plist, mode, state, restart=run.restart_haproxy,
                pending=markers[LABEL_HAPROXY]
            )
            run.haproxy_changes = bool(cmds) or config_changed

    tags = ((state.get("api") or {}).get("tags") or {}).get("status")
    run.refresh_models = run.ollama_changes or tags != 200

    if run.sudo_reasons and not state.get("sudo_nopasswd") and not sudo_password:
        err(
            f"{who}: _sudo_password: {None!r} (sudo needs a password for: "
            + "; ".join(run.sudo_reasons)
            + ". Allow passwordless sudo for the SSH user, or pass --sudo-password / set "
            "_sudo_password)"
        )
    return run

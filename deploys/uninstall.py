"""Uninstall what the deploys installed, role by role (the inventory is the same as for
``deploys/all.py``)::

    pyinfra inventories/home.py deploys/uninstall.py --limit server
    pyinfra inventories/home.py deploys/uninstall.py --limit alice-mac

**Server** (group ``server``): one read (``facts.macserver.MacServerState``), then only what is
there: the ``com.ollama.warm``, ``com.haproxy`` and ``com.ollama`` launchd jobs are booted out
of every domain they are loaded in (LaunchAgent and LaunchDaemon) and their plists deleted,
HAProxy's config (and its directory when empty), the newsyslog conf
(``/etc/newsyslog.d/org.self-sovereign-ollama.conf``) and the logs are deleted, and with
``uninstall_revert_dhcp = True`` the network service goes back to DHCP (refused over the SSH
link it would change unless ``static_ip_over_ssh = True``: then detached, with automatic
rollback). Kept: Homebrew and its ``ollama``/``haproxy`` formulae (``brew uninstall ollama`` by
hand), the models in ``~/.ollama/models`` (or ``OLLAMA_MODELS``), the power settings. A second
run changes nothing.

**Router** (group ``router``): one read (``facts.openwrt.OpenWrtState``), then only the peer
expiry job is removed (``operations/expiry_job.py``: its files, our crontab line, cron
restarted; peers it had taken off the interface come back with ``ifup``). The router's uci
configuration stays as it is.

**Clients** (group ``clients``): ``deploys/uninstall_client.py`` (the client role's own
uninstall), included here when present. Other roles add theirs the same way.
"""

import shlex
from pathlib import Path

from pyinfra import host, local, logger
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import server

from deploys.server_plan import (
    LABEL_HAPROXY,
    LABEL_OLLAMA,
    state_fact_args,
    validate_server,
)
from deploys.server_upkeep import LABEL_WARM, NEWSYSLOG_CONF, upkeep_files, upkeep_settings
from deploys.spec import PEER_PREFIX
from deploys.validate import NETWORK_DEFAULTS
from facts.macserver import SERVER_LABELS, MacServerState
from facts.openwrt import OpenWrtState
from operations import expiry_job, launchd, macos
from operations.macos import expand_home

CLIENT_PART = "deploys/uninstall_client.py"  # the client role's part (relative to the repo root)


def uninstall_server() -> None:
    """The server part (see the module docstring)."""
    settings, errors = validate_server(host.name, host.data.dict())
    if settings is None:
        raise DeployError("invalid server data:\n" + "\n".join(f"  - {e}" for e in errors))
    upkeep, _ = upkeep_settings(host.data.dict())  # bad upkeep data must not block an uninstall
    fact_args = state_fact_args(settings, upgrade_check=False)
    fact_args["labels"] = (*SERVER_LABELS, LABEL_WARM)
    fact_args["files"] = [*fact_args["files"], *upkeep_files(upkeep)]
    state = host.get_fact(MacServerState, **fact_args)
    settings = settings.resolve_user(state.get("user"))
    if not state or not state.get("complete") or not state.get("home"):
        raise DeployError(f"{host.name}: could not read the Mac's state; nothing was changed")

    files = state.get("files") or {}
    jobs = state.get("launchd") or {}
    needs_sudo = any(
        (jobs.get(label) or {}).get("system", {}).get("loaded")
        or files.get(f"/Library/LaunchDaemons/{label}.plist")
        for label in (LABEL_OLLAMA, LABEL_HAPROXY, LABEL_WARM)
    ) or bool(files.get(NEWSYSLOG_CONF))
    network = state.get("network") or {}
    revert = settings.uninstall_revert_dhcp and settings.static_ip
    if revert and not (network.get("method") == "dhcp" and state.get("dns") == []):
        needs_sudo = True
    if needs_sudo and not state.get("sudo_nopasswd") and not host.data.get("_sudo_password"):
        raise DeployError(
            f"{host.name}: _sudo_password: None (sudo needs a password to remove the "
            "LaunchDaemons / revert the network; nothing was changed)"
        )

    launchd.absent(
        name=f"Remove the warm-at-boot job ({LABEL_WARM})", label=LABEL_WARM, state=state
    )
    launchd.absent(
        name=f"Remove the HAProxy service ({LABEL_HAPROXY})", label=LABEL_HAPROXY, state=state
    )
    launchd.absent(
        name=f"Remove the Ollama service ({LABEL_OLLAMA})", label=LABEL_OLLAMA, state=state
    )

    config = expand_home(settings.haproxy_config, state["home"])
    if files.get(config):
        macos.remove_files(name="Remove HAProxy's config", paths=[config], state=state)
        config_dir = config.rsplit("/", 1)[0]
        if config_dir != state["home"].rstrip("/"):
            server.shell(
                name=f"Remove {config_dir} if empty",
                commands=[f"rmdir {shlex.quote(config_dir)} 2>/dev/null || true"],
            )
    macos.remove_files(
        name=f"Remove the log rotation ({NEWSYSLOG_CONF})", paths=[NEWSYSLOG_CONF], sudo=True,
        state=state,
    )
    macos.remove_files(
        name="Remove the logs",
        paths=[settings.stdout_log, settings.stderr_log, settings.haproxy_log, upkeep.warm_log],
        state=state,
    )
    macos.remove_files(  # left by a run interrupted before a restart
        name="Remove restart markers",
        paths=[macos.restart_marker(LABEL_OLLAMA), macos.restart_marker(LABEL_HAPROXY)],
        state=state,
    )
    if revert:
        macos.dhcp(
            name="Network: back to DHCP",
            service=settings.network_service,
            device=settings.network_device,
            allow_over_ssh=settings.static_ip_over_ssh,
            state=state,
        )
    haproxy = state["brew"]["formulas"].get("haproxy", {}).get("installed")
    kept = [
        "Homebrew's ollama" + (" and haproxy" if haproxy else ""),
        f"the models ({settings.env.get('OLLAMA_MODELS', '~/.ollama/models')})",
        "the power settings",
    ]
    if not revert:
        kept.append("the static IP address")
    logger.info(f"{host.print_prefix}uninstall keeps: {', '.join(kept)}")


def uninstall_router() -> None:
    """The router part (see the module docstring)."""
    state = host.get_fact(OpenWrtState)
    if not state or not state.get("config"):
        raise DeployError(f"{host.name}: no `uci` found: this does not look like an OpenWrt router")
    in_uci = [s["name"][len(PEER_PREFIX):] for s in state["config"].get("network", [])
              if (s.get("name") or "").startswith(PEER_PREFIX)]
    expiry_job.converge(
        name="Remove the peer expiry job",
        entries=[],
        interface=host.data.get("vpn_interface") or NETWORK_DEFAULTS["vpn_interface"],
        live_names=in_uci,  # the config stays: every peer in it belongs on the interface
        state=state,
    )


if "router" in host.groups:
    uninstall_router()

if "server" in host.groups:
    uninstall_server()

if "clients" in host.groups and Path(CLIENT_PART).exists():
    local.include(CLIENT_PART)

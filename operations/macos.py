"""Converge macOS settings: files we own, Homebrew formulas, ``pmset``, and the static IP of a
network service (``networksetup``), with a safe way to change the link the SSH session uses.

Every operation takes what it needs as arguments, plus ``state`` (the
:class:`facts.macserver.MacServerState` the deploy already read, so a run that changes nothing
costs no extra exec); when ``state`` is not given, the operation reads the narrower fact it
needs. Commands that need root carry ``_sudo=True``; Homebrew never does (it refuses root).

Example::

    macos.brew_formulas(name="Ollama (Homebrew)", formulas=["ollama"], state=state)
    macos.pmset(name="24/7 power", settings={"sleep": 0, "autorestart": 1}, state=state)
"""

from __future__ import annotations

import hashlib
import ipaddress
import shlex
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, OperationError, QuoteString, StringCommand, operation

from facts.homebrew import BREW_ENV, Homebrew
from facts.macos import (
    DnsServers,
    NetworkServiceInfo,
    PmsetSettings,
)
from facts.versions import parse_version

#: Where a detached network change keeps its rollback job (root-owned; survives the SSH drop).
NETAPPLY_DIR = "/var/tmp/pyinfra-netapply"
#: Seconds before a detached network change is rolled back unless confirmed.
NET_ROLLBACK_SECONDS = 120


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def expand_home(path: str, home: str | None) -> str:
    """``~/x`` -> ``<home>/x`` (the remote home from the state fact)."""
    if path.startswith("~/"):
        if not home:
            raise OperationError(f"cannot expand {path!r}: the remote home is unknown")
        return home.rstrip("/") + "/" + path[2:]
    return path


def _dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def write_file_command(
    path: str,
    content: str,
    mode: str = "644",
    owner: str | None = None,
    validate: str | None = None,
    sudo: bool = False,
    pending: str | None = None,
) -> StringCommand:
    """One exec that writes ``content`` to ``path`` atomically: a temp file next to it (from a
    quoted here-document: nothing in it is expanded), ``chmod``/``chown``, an optional check
    (``validate`` with ``{}`` for the temp file, e.g. ``plutil -lint -s {}``), then ``mv``.
    ``pending``: a marker file made just before the ``mv`` (the file's new content is not
    live yet: whoever restarts its service removes it; see :func:`restart_marker`).

    Only for non-secret content: it passes through the command line."""
    if not content.endswith("\n"):
        content += "\n"
    marker = "PYINFRA_EOF_" + sha256_text(content)[:12]
    tmp = f"{path}.pyinfra-tmp"
    q, qt = shlex.quote(path), shlex.quote(tmp)
    steps = [f"mkdir -p {shlex.quote(_dirname(path))}", f"cat > {qt} <<'{marker}'"]
    steps.append(f"chmod {mode} {qt}")
    if owner:
        steps.append(f"chown {shlex.quote(owner)} {qt}")
    if validate:
        steps.append(validate.replace("{}", qt))
    if pending:
        steps.append(f": > {shlex.quote(pending)}")
    steps.append(f"mv -f {qt} {q}")
    script = " && ".join(steps) + f" || {{ rm -f {qt}; exit 1; }}\n{content}{marker}\n"
    kwargs: dict[str, Any] = {"_sudo": True} if sudo else {}
    return StringCommand(script, **kwargs)


def restart_marker(label: str, home: str | None = None) -> str:
    """The marker of a launchd job whose plist or config was replaced and that has not been
    restarted with it yet: ``~/.pyinfra-restart-<label>`` (``home`` given: expanded). A run
    interrupted between a write and the restart leaves it; the next run restarts the job even
    though the files are already the desired ones. In the SSH user's home, not ``/tmp``: root
    makes it in daemon mode, and a world-writable directory would let anyone point it at
    another file first."""
    path = f"~/.pyinfra-restart-{label}"
    return expand_home(path, home) if home is not None else path


def plist_validate() -> str:
    """The ``validate`` step for plists: ``plutil -lint`` where it exists (every Mac)."""
    return "{ ! command -v plutil >/dev/null || plutil -lint -s {}; }"


@operation()
def file(
    path: str,
    content: str,
    mode: str = "644",
    owner: str | None = None,
    validate: str | None = None,
    sudo: bool = False,
    state: dict[str, Any] | None = None,
    pending: str | None = None,
):
    """Make a (non-secret) file have exactly ``content``; one exec when it differs.

    + path: absolute, or ``~/...`` (the SSH user's home)
    + validate: a check of the new file before it replaces the old one, ``{}`` = its path
    + pending: a marker made with the new file (:func:`restart_marker`: its service must be
      restarted, which removes it)
    + state: the ``MacServerState`` (``files`` must include ``path``)

    **Example:**

    .. code:: python

        macos.file(name="haproxy.cfg", path="~/.haproxy/haproxy.cfg", content=cfg,
                   validate="/opt/homebrew/opt/haproxy/bin/haproxy -c -q -f {}", state=state)
    """
    if state is None:
        raise OperationError("macos.file needs the MacServerState (state=...)")
    real = expand_home(path, state.get("home"))
    if state.get("files", {}).get(real) == sha256_text(
        content if content.endswith("\n") else content + "\n"
    ):
        host.noop(f"{real} is up to date")
        return
    yield write_file_command(real, content, mode, owner, validate, sudo, pending)


@operation()
def remove_files(paths: list[str], sudo: bool = False, state: dict[str, Any] | None = None):
    """Delete files that exist (per ``state["files"]``; without state: ``rm -f`` all).

    **Example:**

    .. code:: python

        macos.remove_files(name="Ollama logs", paths=["/tmp/ollama.stdout.log"], state=state)
    """
    home = state.get("home") if state else None
    real = [expand_home(p, home) for p in paths]
    if state is not None:
        files = state.get("files", {})
        real = [p for p in real if files.get(p, "unknown") is not None]
    if not real:
        host.noop("nothing to delete")
        return
    kwargs: dict[str, Any] = {"_sudo": True} if sudo else {}
    yield StringCommand("rm", "-f", *[QuoteString(p) for p in real], **kwargs)


# -- Homebrew ---------------------------------------------------------------------------------


def brew_command(prefix: str, *args: str) -> StringCommand:
    """``brew`` by absolute path, with the project's HOMEBREW_* environment, never as root."""
    env = [f"{k}={v}" for k, v in BREW_ENV.items()]
    return StringCommand(*env, f"{prefix}/bin/brew", *[QuoteString(a) for a in args])


def brew_actions(
    formulas: Sequence[str], brew: Mapping[str, Any], info: Mapping[str, Any], upgrade: bool
) -> dict[str, list[str]]:
    """``{"install": [...], "upgrade": [...]}`` for ``formulas`` given the state's ``brew`` and
    ``brew_info`` parts (``info`` is only consulted when ``upgrade``)."""
    installed = brew.get("formulas", {})
    install = [f for f in formulas if not installed.get(f, {}).get("installed")]
    upgrades = []
    if upgrade:
        for f in formulas:
            if f in install:
                continue
            meta = info.get(f) or {}
            current = installed.get(f, {}).get("version") or ""
            stable = meta.get("stable")
            have, latest = parse_version(current), parse_version(stable)
            newer = bool(latest) and (have is None or latest > have)
            if (meta.get("outdated") or newer) and not meta.get("pinned"):
                upgrades.append(f)
    return {"install": install, "upgrade": upgrades}


@operation()
def brew_formulas(
    formulas: list[str],
    upgrade: bool = False,
    state: dict[str, Any] | None = None,
):
    """Install missing Homebrew formulas; with ``upgrade``, upgrade outdated ones (as the SSH
    user, ``/opt/homebrew/bin/brew``, no auto-update: the state fact ran ``brew update``).

    **Example:**

    .. code:: python

        macos.brew_formulas(name="Ollama", formulas=["ollama"], upgrade=True, state=state)
    """
    if state is None:
        brew = host.get_fact(Homebrew, formulas=list(formulas))
        info: Mapping[str, Any] = {}
    else:
        brew, info = state.get("brew", {}), state.get("brew_info", {})
    prefix = brew.get("prefix")
    if not prefix:
        raise OperationError("Homebrew is not installed (https://brew.sh), or not in /opt/homebrew")
    actions = brew_actions(formulas, brew, info, upgrade)
    if not actions["install"] and not actions["upgrade"]:
        versions = ", ".join(
            f"{f} {brew.get('formulas', {}).get(f, {}).get('version')}" for f in formulas
        )
        host.noop(f"installed: {versions}")
        return
    if actions["install"]:
        yield brew_command(prefix, "install", "--formula", *actions["install"])
    if actions["upgrade"]:
        yield brew_command(prefix, "upgrade", "--formula", *actions["upgrade"])


# -- pmset ------------------------------------------------------------------------------------


def pmset_changes(
    desired: Mapping[str, int], profiles: Mapping[str, Mapping[str, Any]]
) -> tuple[str, dict[str, int], list[str]]:
    """``(flag, changes, unsupported)``: the ``pmset`` flag (``-a`` on desktops, ``-c`` =
    charger when a battery profile exists), the settings that differ in the AC profile, and
    the desired keys this Mac does not report (never set: they would never converge)."""
    flag = "-c" if any("battery" in name.lower() for name in profiles) else "-a"
    ac = next((v for k, v in profiles.items() if k.lower().startswith("ac")), None)
    if ac is None and profiles:
        ac = next(iter(profiles.values()))
    ac = ac or {}
    changes = {k: v for k, v in desired.items() if k in ac and ac[k] != v}
    unsupported = [k for k in desired if k not in ac]
    return flag, changes, unsupported


@operation()
def pmset(settings: dict[str, int], state: dict[str, Any] | None = None):
    """Power settings of a 24/7 server with ``sudo pmset`` (only those that differ).

    Keys the Mac does not report in ``pmset -g custom`` (``autorestart`` on laptops) are
    skipped with a warning.

    **Example:**

    .. code:: python

        macos.pmset(name="24/7", settings={"sleep": 0, "disksleep": 0, "autorestart": 1,
                                           "womp": 1}, state=state)
    """
    profiles = state.get("pmset") if state is not None else host.get_fact(PmsetSettings)
    if not settings:
        host.noop("no pmset settings requested")
        return
    if not profiles:
        raise OperationError("pmset: cannot read the power settings (pmset -g custom)")
    flag, changes, unsupported = pmset_changes(settings, profiles)
    if unsupported:
        logger.warning(
            f"{getattr(host, 'print_prefix', '')}pmset: not supported on this Mac, skipped: "
            + ", ".join(unsupported)
        )
    if not changes:
        host.noop(
            "power settings already match: "
            + ", ".join(f"{k} {v}" for k, v in settings.items() if k not in unsupported)
        )
        return
    words: list[str] = []
    for key, value in changes.items():
        words += [key, str(int(value))]
    yield StringCommand("pmset", flag, *words, _sudo=True)


# -- static IP --------------------------------------------------------------------------------


def resolve_service(
    services: Sequence[Mapping[str, Any]], name: str | None, device: str | None
) -> Mapping[str, Any] | None:
    """The network service named ``name``, or the one on ``device``."""
    for service in services:
        if name is not None and service.get("name") == name:
            return service
        if name is None and device is not None and service.get("device") == device:
            return service
    return None


def network_changes(
    info: Mapping[str, Any] | None,
    dns: Sequence[str] | Mapping[str, Any] | None,
    address: str,
    netmask: str,
    router: str,
    dns_servers: Sequence[str],
) -> dict[str, bool]:
    """Which parts differ: ``{"manual": bool, "dns": bool}``."""
    info = info or {}
    manual = not (
        info.get("method") == "manual"
        and info.get("ip") == address
        and info.get("subnet_mask") == netmask
        and info.get("router") == router
    )
    current_dns = list(dns) if isinstance(dns, list | tuple) else None
    return {"manual": manual, "dns": current_dns != list(dns_servers)}


def _restore_commands(service: str, info: Mapping[str, Any], dns: Any) -> list[str]:
    """networksetup commands that put ``service`` back as it was (for the rollback job)."""
    q = shlex.quote(service)
    cmds = []
    if info.get("method") == "manual" and info.get("ip") and info.get("subnet_mask"):
        router = info.get("router") or ""
        cmds.append(
            f"networksetup -setmanual {q} {shlex.quote(info['ip'])} "
            f"{shlex.quote(info['subnet_mask'])} {shlex.quote(router)}".rstrip()
        )
    else:
        cmds.append(f"networksetup -setdhcp {q}")
    servers = list(dns) if isinstance(dns, list | tuple) and dns else ["empty"]
    cmds.append(f"networksetup -setdnsservers {q} " + " ".join(shlex.quote(s) for s in servers))
    return cmds


def detached_network_command(
    apply: Sequence[str], restore: Sequence[str], seconds: int, directory: str = NETAPPLY_DIR
) -> str:
    """A root shell command that applies ``apply`` from a detached job (it survives the SSH
    session it cuts) and arms a rollback: unless :func:`confirm_network_command` runs within
    ``seconds`` (over a *new* connection), ``restore`` puts the old settings back."""
    d = directory
    job = "\n".join(
        [
            "sleep 2",
            *apply,
            f"sleep {int(seconds)}",
            f"if [ -f {d}/armed ]; then rm -f {d}/armed; {'; '.join(restore)}; "
            f"echo restored > {d}/rolled-back; logger -t pyinfra "
            f"'networksetup change not confirmed in {int(seconds)}s: restored'; fi",
        ]
    )
    return (
        f"if [ -f {d}/armed ]; then echo 'a previous network change is still waiting for "
        f"confirmation; try again in {int(seconds)}s' >&2; exit 1; fi; "
        f"mkdir -p {d} && chmod 700 {d} && rm -f {d}/rolled-back && "
        f"cat > {d}/job.sh <<'PYINFRA_NETJOB'\n{job}\nPYINFRA_NETJOB\n"
        f"echo armed > {d}/armed && "
        f"nohup /bin/sh {d}/job.sh </dev/null >{d}/job.log 2>&1 &"
    )


def confirm_network_command(directory: str = NETAPPLY_DIR) -> str:
    d = directory
    return (
        f"if [ -f {d}/armed ]; then rm -f {d}/armed; else echo 'the network change was rolled "
        f"back before it could be confirmed' >&2; exit 1; fi"
    )


def reconnect(state, host, new_hostname: str | None = None, wait: int = 60) -> bool:
    """Drop the SSH connection and open a new one (to ``new_hostname`` if the address changed),
    retrying for ``wait`` seconds: proof that the new network settings let us in."""
    connector = host.connector
    if getattr(connector, "client", None) is None:  # not SSH (tests, @local)
        return True
    time.sleep(3)
    connector.disconnect()
    if new_hostname:
        connector.data["ssh_hostname"] = new_hostname
    deadline = time.monotonic() + wait
    while True:
        try:
            connector.connect()
            return True
        except Exception as exc:  # paramiko/socket errors while the link comes back
            if time.monotonic() > deadline:
                host.log_styled(
                    f"cannot reconnect after the network change ({exc}); the Mac restores its "
                    f"previous settings after {NET_ROLLBACK_SECONDS}s",
                    fg="red",
                    log_func=logger.error,
                )
                return False
            time.sleep(2)


@operation()
def static_ip(
    address: str,
    netmask: str,
    router: str,
    dns_servers: list[str],
    service: str | None = None,
    device: str | None = None,
    allow_over_ssh: bool = False,
    state: dict[str, Any] | None = None,
    rollback_seconds: int = NET_ROLLBACK_SECONDS,
):
    """Give a network service a manual IPv4 configuration and DNS servers (``sudo
    networksetup``), only when it differs.

    + service / device: the service by name, or the one on that device (``en0``)
    + allow_over_ssh: the SSH session runs over this service **and its address changes**:
      refuse (default), or apply from a detached root job and reconnect to the new address;
      unless the new connection confirms within ``rollback_seconds``, the Mac restores the old
      settings by itself. When the address stays the same, the detached apply is used without
      asking (the session may drop while the service is reconfigured).
    + state: the ``MacServerState`` (service order, ``-getinfo`` and DNS of the service)

    **Example:**

    .. code:: python

        macos.static_ip(name="DMZ address", address="192.168.100.10", netmask="255.255.255.0",
                        router="192.168.100.1", dns_servers=["192.168.100.1"], device="en0",
                        state=state)
    """
    if state is None:
        raise OperationError("macos.static_ip needs the MacServerState (state=...)")
    name = state.get("network_service")
    chosen = resolve_service(state.get("network_services", []), service, device)
    if chosen is None or not name:
        what = f"service {service!r}" if service else f"device {device!r}"
        known = ", ".join(
            f"{s['name']} ({s.get('device') or '-'})" for s in state.get("network_services", [])
        )
        raise OperationError(f"networksetup: no network service for {what}; known: {known}")
    info = state.get("network") or {}
    if info.get("error"):
        raise OperationError(f"networksetup -getinfo {name!r}: {info['error']}")
    dns = state.get("dns")
    todo = network_changes(info, dns, address, netmask, router, dns_servers)
    if not todo["manual"] and not todo["dns"]:
        host.noop(f"{name}: manual {address}/{netmask} via {router}, DNS {', '.join(dns_servers)}")
        return
    q = shlex.quote(name)
    apply = []
    if todo["manual"]:
        apply.append(
            f"networksetup -setmanual {q} {shlex.quote(address)} {shlex.quote(netmask)} "
            f"{shlex.quote(router)}"
        )
    if todo["dns"]:
        apply.append(
            f"networksetup -setdnsservers {q} " + " ".join(shlex.quote(s) for s in dns_servers)
        )
    link = (state.get("ssh_connection") or {}).get("server")
    over_ssh = bool(link) and link == info.get("ip") and todo["manual"]
    if not over_ssh:
        yield StringCommand(" && ".join(apply), _sudo=True)
        return
    changes_address = link != address
    if changes_address and not allow_over_ssh:
        raise OperationError(
            f"networksetup: the SSH session uses {name} ({link}); giving it {address} would cut "
            "this connection. Either run pyinfra from another link (e.g. over the LAN, with "
            "ssh_hostname on another service), give the Mac the address "
            f"{address} by DHCP first (router static lease), or set static_ip_over_ssh = True "
            "to apply it detached, reconnect to the new address, and roll back automatically "
            "if that fails."
        )
    restore = _restore_commands(name, info, dns)
    logger.warning(
        f"{getattr(host, 'print_prefix', '')}networksetup: changing {name}, the link of this "
        f"SSH session ({link} -> {address}); applying detached, then reconnecting"
    )
    yield StringCommand(detached_network_command(apply, restore, rollback_seconds), _sudo=True)
    yield FunctionCommand(reconnect, (address if changes_address else None,), {})
    yield StringCommand(confirm_network_command(), _sudo=True)


@operation()
def dhcp(
    service: str | None = None,
    device: str | None = None,
    allow_over_ssh: bool = False,
    state: dict[str, Any] | None = None,
    rollback_seconds: int = NET_ROLLBACK_SECONDS,
):
    """Put a network service back on DHCP and clear its manual DNS servers (uninstall).

    Refuses when the SSH session runs over that service unless ``allow_over_ssh`` (then:
    detached apply + rollback guard; pyinfra cannot know the new DHCP address, so the
    reconnect uses ``ssh_hostname`` and the DHCP reservation must give the same address).

    **Example:**

    .. code:: python

        macos.dhcp(name="back to DHCP", device="en0", state=state)
    """
    if state is None:
        if service is None:
            raise OperationError("macos.dhcp needs a service name or the MacServerState")
        info = host.get_fact(NetworkServiceInfo, service=service)
        dns: Any = host.get_fact(DnsServers, service=service)
        name, link = service, None
    else:
        name = state.get("network_service")
        chosen = resolve_service(state.get("network_services", []), service, device)
        if chosen is None or not name:
            raise OperationError(f"networksetup: no network service for {service or device!r}")
        info, dns = state.get("network") or {}, state.get("dns")
        link = (state.get("ssh_connection") or {}).get("server")
    if info.get("error"):
        raise OperationError(f"networksetup -getinfo {name!r}: {info['error']}")
    if info.get("method") == "dhcp" and dns == []:
        host.noop(f"{name} already uses DHCP")
        return
    q = shlex.quote(name)
    apply = [f"networksetup -setdhcp {q}", f"networksetup -setdnsservers {q} empty"]
    if not (link and link == info.get("ip")):
        yield StringCommand(" && ".join(apply), _sudo=True)
        return
    if not allow_over_ssh:
        raise OperationError(
            f"networksetup: the SSH session uses {name} ({link}); switching it to DHCP may "
            "change its address and cut this connection. Run from another link, or allow it "
            "(static_ip_over_ssh = True: detached, with automatic rollback)."
        )
    yield StringCommand(
        detached_network_command(apply, _restore_commands(name, info, dns), rollback_seconds),
        _sudo=True,
    )
    yield FunctionCommand(reconnect, (None,), {})
    yield StringCommand(confirm_network_command(), _sudo=True)


def netmask_of(network: ipaddress.IPv4Network) -> str:
    return str(network.netmask)

"""Facts about a macOS host: version and hardware, network services, DNS, power, launchd,
Homebrew, and the one-exec state read of the Ollama server role.

Every parser is a pure function of the command's lines (tested on the real-format samples of
``reference/macos-ollama.md``); every fact runs **one** remote command that never fails (errors
become data). :class:`MacServerState` gathers everything the server role needs in a single exec,
with the same parsers, so a re-run that changes nothing costs one round trip.

Audit from the command line (from the repo root)::

    pyinfra inventories/home.py fact facts.macos.MacosInfo --limit server
    pyinfra inventories/home.py fact facts.macos.NetworkServices --limit server
    pyinfra inventories/home.py fact facts.macos.NetworkServiceInfo service=Ethernet --limit server
    pyinfra inventories/home.py fact facts.macos.PmsetSettings --limit server
    pyinfra inventories/home.py fact facts.macos.LaunchdService target=gui/501/com.ollama
    pyinfra inventories/home.py fact facts.macos.LaunchdDomains --limit server
    pyinfra inventories/home.py fact facts.macos.Homebrew --limit server
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from pyinfra.api import FactBase, QuoteString, StringCommand

from facts.ollama import (
    parse_api_response,
    parse_lsof_listeners,
    parse_ollama_processes,
)
from facts.versions import sort_key

#: Where Homebrew lives on Apple silicon (``/usr/local`` is Intel).
BREW_PREFIXES = ("/opt/homebrew", "/usr/local")
#: Environment for every brew command run by this project (no surprise self-updates).
BREW_ENV = {
    "HOMEBREW_NO_AUTO_UPDATE": "1",
    "HOMEBREW_NO_INSTALL_CLEANUP": "1",
    "HOMEBREW_NO_ENV_HINTS": "1",
    "HOMEBREW_NO_ANALYTICS": "1",
}

_SEP = "##pyinfra-mac##"

# -- parsers ----------------------------------------------------------------------------------


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def parse_sw_vers(lines: Iterable[str]) -> dict[str, str]:
    """``sw_vers`` (``ProductName:\\t\\tmacOS`` ...) -> ``{"product_name", "version", "build"}``
    (+ ``"version_extra"`` with a Rapid Security Response)."""
    keys = {
        "ProductName": "product_name",
        "ProductVersion": "version",
        "BuildVersion": "build",
        "ProductVersionExtra": "version_extra",
    }
    result: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip() in keys:
            result[keys[key.strip()]] = value.strip()
    return result


def parse_key_values(lines: Iterable[str], sep: str = "=") -> dict[str, str]:
    result: dict[str, str] = {}
    for line in lines:
        key, found, value = line.partition(sep)
        if found:
            result[key.strip()] = value.strip()
    return result


def hardware_from(sysctl: dict[str, str], arch: str | None) -> dict[str, Any]:
    """The hardware part of :class:`MacosInfo` from ``sysctl -n`` values and ``uname -m``.

    ``arm64`` is true on Apple silicon even inside a Rosetta-translated shell (``uname -m`` then
    says ``x86_64`` but ``hw.optional.arm64`` is 1)."""
    arm64_flag = _int(sysctl.get("hw.optional.arm64"))
    translated = _int(sysctl.get("sysctl.proc_translated"))
    return {
        "arch": arch or None,
        "apple_silicon": arm64_flag == 1 or arch == "arm64",
        "translated": translated == 1,
        "memory_bytes": _int(sysctl.get("hw.memsize")),
        "model": sysctl.get("hw.model") or None,
        "cpu": sysctl.get("machdep.cpu.brand_string") or None,
    }


_ORDER_LINE = re.compile(r"^\((\d+|\*)\) (.+)$")
_PORT_LINE = re.compile(r"^\(Hardware Port: (.*), Device: ?(.*)\)$")


def parse_service_order(lines: Iterable[str]) -> list[dict[str, Any]]:
    """``networksetup -listnetworkserviceorder`` -> ``[{"name", "enabled", "order",
    "hardware_port", "device"}]`` in service order. ``(*)`` marks a disabled service; VPN
    services have no device (``None``)."""
    services: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for raw in lines:
        line = raw.rstrip()
        m = _ORDER_LINE.match(line)
        if m:
            current = {
                "name": m.group(2),
                "enabled": m.group(1) != "*",
                "order": None if m.group(1) == "*" else int(m.group(1)),
                "hardware_port": None,
                "device": None,
            }
            services.append(current)
            continue
        m = _PORT_LINE.match(line)
        if m and current is not None:
            current["hardware_port"] = m.group(1) or None
            current["device"] = m.group(2).strip() or None
            current = None
    return services


def parse_service_list(lines: Iterable[str]) -> list[dict[str, Any]]:
    """``networksetup -listallnetworkservices`` -> ``[{"name", "enabled"}]`` (header dropped,
    a leading ``*`` means disabled)."""
    services = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("An asterisk (*) denotes"):
            continue
        enabled = not line.startswith("*")
        services.append({"name": line[1:] if not enabled else line, "enabled": enabled})
    return services


def _networksetup_error(lines: Sequence[str]) -> str | None:
    for line in lines:
        if "is not a recognized network service" in line or line.startswith("** Error"):
            return " ".join(x.strip() for x in lines if x.strip())
    return None


def parse_getinfo(lines: Sequence[str]) -> dict[str, Any]:
    """``networksetup -getinfo <service>`` -> ``{"method": "dhcp"|"manual"|"bootp"|"unknown",
    "ip", "subnet_mask", "router", "ipv6", "hardware_address"}`` (``None`` when absent or
    ``none``), or ``{"error": <text>}`` for an unknown service.

    A DHCP service without a lease has no IP/mask/router lines at all (they are ``None``)."""
    lines = [line.rstrip("\n") for line in lines]
    error = _networksetup_error(lines)
    if error:
        return {"error": error}
    methods = {
        "DHCP Configuration": "dhcp",
        "Manual Configuration": "manual",
        "BOOTP Configuration": "bootp",
    }
    info: dict[str, Any] = {
        "method": None,
        "ip": None,
        "subnet_mask": None,
        "router": None,
        "ipv6": None,
        "hardware_address": None,
    }
    keys = {
        "IP address": "ip",
        "Subnet mask": "subnet_mask",
        "Router": "router",
        "IPv6": "ipv6",
        "Ethernet Address": "hardware_address",
        "Wi-Fi ID": "hardware_address",
    }
    for line in lines:
        if not line.strip():
            continue
        if info["method"] is None:
            info["method"] = methods.get(line.strip(), "unknown")
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip() in keys:
            value = value.strip()
            info[keys[key.strip()]] = None if value in ("", "none") else value
    return info


def parse_dns_servers(lines: Sequence[str]) -> list[str] | dict[str, str]:
    """``networksetup -getdnsservers <service>`` -> manually set servers (``[]`` for the
    ``There aren't any DNS Servers set on <service>.`` sentence), or ``{"error": ...}``."""
    lines = [line.strip() for line in lines if line.strip()]
    error = _networksetup_error(lines)
    if error:
        return {"error": error}
    return [line for line in lines if " " not in line]


_PMSET_LINE = re.compile(r"^\s*(.+?)\s+(\S+)(\s+\(.*\))?\s*$")


def _pmset_value(text: str) -> int | str:
    value = _int(text)
    return value if value is not None else text


def parse_pmset_custom(lines: Iterable[str]) -> dict[str, dict[str, int | str]]:
    """``pmset -g custom`` -> ``{"AC Power": {"sleep": 0, ...}, "Battery Power": {...}}``.

    Keys may contain spaces (``Sleep On Power Button``); order is not stable; a key missing
    from a profile is unsupported on that Mac."""
    profiles: dict[str, dict[str, int | str]] = {}
    current: dict[str, int | str] | None = None
    for raw in lines:
        line = raw.rstrip()
        if not line.strip():
            continue
        if not line[0].isspace() and line.endswith(":"):
            current = profiles.setdefault(line[:-1].strip(), {})
            continue
        if current is None:
            continue
        m = _PMSET_LINE.match(line)
        if m:
            current[m.group(1)] = _pmset_value(m.group(2))
    return profiles


def parse_pmset_live(lines: Iterable[str]) -> dict[str, Any]:
    """``pmset -g`` -> ``{"settings": {key: value}, "notes": {key: annotation},
    "system": {key: value}}``; annotations like ``(sleep prevented by sharingd)`` are split
    off into ``notes``; ``system`` holds the system-wide lines (``SleepDisabled``)."""
    settings: dict[str, int | str] = {}
    notes: dict[str, str] = {}
    system: dict[str, int | str] = {}
    section = None
    for raw in lines:
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("System-wide power settings"):
            section = system
            continue
        if line.startswith("Currently in use"):
            section = settings
            continue
        if section is None or not line[0].isspace():
            continue
        m = _PMSET_LINE.match(line)
        if not m:
            continue
        section[m.group(1)] = _pmset_value(m.group(2))
        if m.group(3) and section is settings:
            notes[m.group(1)] = m.group(3).strip()[1:-1]
    return {"settings": settings, "notes": notes, "system": system}


def parse_launchctl_print(lines: Sequence[str], rc: int | None = None) -> dict[str, Any]:
    """``launchctl print <domain>/<label>`` (+ its exit status) -> the whitelisted top-level
    values: ``{"loaded": True, "state", "pid", "path", "type", "program",
    "arguments", "runs", "last_exit_code", "last_signal", "successive_crashes",
    "properties", "environment_keys"}``.

    The dump is "not API": only top-level ``key = value`` lines (depth 1) are read; nested
    blocks repeat keys. ``last exit code`` is absent when the job died by a signal (then
    ``last_signal`` is set). Environment *values* are never kept (they may hold secrets).
    Exit 113 / ``Could not find service`` = not loaded; 112 / ``Could not find domain`` =
    that domain does not exist (no GUI login for ``gui/<uid>``); both give only
    ``{"loaded": False, "domain_exists": bool}`` (+ ``"error"`` for other failures).
    """
    text = "\n".join(lines)
    if "Could not find domain" in text or rc == 112:
        return {"loaded": False, "domain_exists": False}
    if rc not in (None, 0) or "Could not find service" in text or not text.strip():
        missing: dict[str, Any] = {"loaded": False, "domain_exists": True}
        if rc not in (None, 0, 113) and "Could not find service" not in text:
            missing["error"] = text.strip()[:200] or f"exit status {rc}"
        return missing
    result: dict[str, Any] = {
        "loaded": True,
        "state": None,
        "pid": None,
        "path": None,
        "type": None,
        "program": None,
        "arguments": [],
        "runs": None,
        "last_exit_code": None,
        "last_signal": None,
        "successive_crashes": None,
        "properties": [],
        "environment_keys": [],
    }
    depth = 0
    block: str | None = None
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.endswith("{"):
            if depth == 1:
                block = line[:-1].strip().rstrip("=").strip()
            depth += 1
            continue
        if line == "}":
            depth -= 1
            if depth <= 1:
                block = None
            continue
        if depth == 2 and block == "arguments":
            result["arguments"].append(line)
            continue
        if depth == 2 and block == "environment":
            result["environment_keys"].append(line.split("=>", 1)[0].strip())
            continue
        if depth != 1:
            continue
        key, sep, value = line.partition(" = ")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key in ("state", "path", "type", "program"):
            result[key] = value
        elif key == "pid":
            result["pid"] = _int(value)
        elif key == "runs":
            result["runs"] = _int(value)
        elif key == "successive crashes":
            result["successive_crashes"] = _int(value)
        elif key == "last exit code":
            result["last_exit_code"] = (
                _int(value.split(":", 1)[0])
                if value[:1].isdigit()
                else (None if value == "(never exited)" else value)
            )
        elif key == "last terminating signal":
            result["last_signal"] = value
        elif key == "properties":
            result["properties"] = [p.strip() for p in value.split("|") if p.strip()]
    return result


def parse_print_disabled(lines: Iterable[str]) -> dict[str, bool]:
    """``launchctl print-disabled <domain>`` -> ``{label: disabled}`` (``=> disabled``/``=>
    enabled`` on current releases, ``=> true`` meaning *disabled* on older ones)."""
    result: dict[str, bool] = {}
    for line in lines:
        m = re.match(r'^\s*"([^"]+)" => (\w+)\s*$', line)
        if m:
            result[m.group(1)] = m.group(2) in ("disabled", "true")
    return result


def parse_brew_versions(opt_target: str | None, cellar: Iterable[str]) -> dict[str, Any]:
    """A formula's state from its ``opt`` link target (``../Cellar/ollama/0.32.3``) and its
    Cellar listing: ``{"installed": bool, "version": <linked>, "versions": [...]}``."""
    versions = sorted((v.strip() for v in cellar if v.strip()), key=sort_key)
    linked = opt_target.rstrip("/").rsplit("/", 1)[-1] if opt_target else None
    return {
        "installed": bool(linked or versions),
        "version": linked or (versions[-1] if versions else None),
        "versions": versions,
    }


def parse_brew_info(text: str) -> dict[str, dict[str, Any]]:
    """``brew info --json=v2 --formula <names>`` -> ``{name: {"stable", "installed",
    "linked_keg", "outdated", "pinned"}}`` (``{}`` when the JSON is unreadable)."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return {}
    result = {}
    for formula in data.get("formulae", []) if isinstance(data, dict) else []:
        result[formula.get("name")] = {
            "stable": (formula.get("versions") or {}).get("stable"),
            "installed": [i.get("version") for i in formula.get("installed", [])],
            "linked_keg": formula.get("linked_keg"),
            "outdated": bool(formula.get("outdated")),
            "pinned": bool(formula.get("pinned")),
        }
    return result


def parse_brew_services(text: str) -> list[dict[str, Any]]:
    """``brew services list --json`` -> ``[{"name", "status", "user", "file", "exit_code"}]``."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return []
    keep = ("name", "status", "user", "file", "exit_code")
    return [{k: item.get(k) for k in keep} for item in data if isinstance(item, dict)]


def parse_file_hashes(lines: Iterable[str]) -> dict[str, str | None]:
    """Lines ``<sha256> <path>`` or ``- <path>`` (absent) -> ``{path: sha256 | None}``."""
    result: dict[str, str | None] = {}
    for line in lines:
        digest, sep, path = line.strip().partition(" ")
        if sep:
            result[path] = None if digest == "-" else digest
    return result


# -- shell snippets (shared by the single facts and MacServerState) ---------------------------


def _path_expr(path: str) -> str:
    """A shell word for ``path``; ``~/x`` becomes ``"$HOME"/x``."""
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


_SYSCTL_KEYS = (
    "hw.memsize",
    "hw.model",
    "machdep.cpu.brand_string",
    "hw.optional.arm64",
    "sysctl.proc_translated",
)


def _info_script() -> str:
    return "; ".join(
        [
            f"echo '{_SEP} sw_vers'",
            "sw_vers 2>/dev/null",
            f"echo '{_SEP} uname'",
            "uname -m",
            f"echo '{_SEP} sysctl'",
            "for k in " + " ".join(_SYSCTL_KEYS) + "; do "
            'printf \'%s=%s\\n\' "$k" "$(sysctl -n "$k" 2>/dev/null)"; done',
        ]
    )


def _brew_script(formulas: Sequence[str], info: bool = False, refresh: bool = False) -> str:
    names = " ".join(shlex.quote(f) for f in formulas)
    env = " ".join(f"{k}={v}" for k, v in BREW_ENV.items())
    parts = [
        f"echo '{_SEP} brew'",
        "p=",
        "for d in " + " ".join(BREW_PREFIXES) + '; do [ -x "$d/bin/brew" ] && { p=$d; break; }; '
        "done",
        'echo "prefix=$p"',
        f'if [ -n "$p" ]; then for f in {names}; do '
        'echo "formula $f $(readlink "$p/opt/$f" 2>/dev/null)"; '
        'ls -1 "$p/Cellar/$f" 2>/dev/null | sed "s/^/cellar $f /"; done; fi',
    ]
    if info:
        refresh_cmd = f'{env} "$p/bin/brew" update --quiet >/dev/null 2>&1; ' if refresh else ""
        parts += [
            f"echo '{_SEP} brew-info'",
            f'if [ -n "$p" ]; then {refresh_cmd}'
            f'{env} "$p/bin/brew" info --json=v2 --formula {names} 2>/dev/null; fi',
        ]
    return "; ".join(parts)


def _parse_brew_block(lines: Iterable[str]) -> dict[str, Any]:
    prefix = None
    opt: dict[str, str | None] = {}
    cellar: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("prefix="):
            prefix = line[len("prefix=") :].strip() or None
        elif line.startswith("formula "):
            _, name, *rest = line.split(" ", 2)
            opt[name] = rest[0].strip() if rest and rest[0].strip() else None
            cellar.setdefault(name, [])
        elif line.startswith("cellar "):
            _, name, version = line.split(" ", 2)
            cellar.setdefault(name, []).append(version)
    return {
        "prefix": prefix,
        "formulas": {
            name: parse_brew_versions(opt.get(name), cellar.get(name, [])) for name in opt
        },
    }


def _launchd_script(labels: Sequence[str]) -> str:
    """Probe gui/<uid> and user/<uid>, then ``print`` every label in gui, user and system."""
    return "; ".join(
        [
            "uid=$(id -u)",
            f"echo '{_SEP} domains'",
            'launchctl print "gui/$uid" >/dev/null 2>&1; echo "gui/$uid $?"',
            'launchctl print "user/$uid" >/dev/null 2>&1; echo "user/$uid $?"',
            'printf "managername %s\\n" "$(launchctl managername 2>/dev/null)"',
            "printf 'console %s\\n' \"$(ls -ld /dev/console 2>/dev/null | awk '{print $3}')\"",
            "for l in " + " ".join(shlex.quote(label) for label in labels) + "; do "
            'for d in "gui/$uid" "user/$uid" system; do '
            'o=$(launchctl print "$d/$l" 2>&1); r=$?; '
            f'echo "{_SEP} launchd $d/$l $r"; printf \'%s\\n\' "$o"; done; done',
        ]
    )


def _parse_domains(lines: Iterable[str]) -> dict[str, Any]:
    result: dict[str, Any] = {"gui": None, "user": None, "managername": None, "console_user": None}
    for line in lines:
        key, _, value = line.strip().partition(" ")
        if key.startswith("gui/"):
            result["gui"] = _int(value) == 0
        elif key.startswith("user/"):
            result["user"] = _int(value) == 0
        elif key == "managername":
            result["managername"] = value.strip() or None
        elif key == "console":
            result["console_user"] = value.strip() or None
    return result


def _split_sections(lines: Iterable[str]) -> list[tuple[list[str], list[str]]]:
    """Split output at ``##pyinfra-mac## <words>`` lines -> ``[(words, body lines)]``."""
    sections: list[tuple[list[str], list[str]]] = []
    for line in lines:
        if line.startswith(_SEP):
            sections.append((line[len(_SEP) :].split(), []))
        elif sections:
            sections[-1][1].append(line)
    return sections


# -- single facts -----------------------------------------------------------------------------


class MacosInfo(FactBase):
    """macOS version and hardware in one exec.

    Returns ``{"product_name": "macOS", "version": "14.2.1", "build": "23C71", "arch":
    "arm64", "apple_silicon": True, "translated": False, "memory_bytes": 68719476736,
    "model": "Mac14,12", "cpu": "Apple M2 Pro"}``.

    Example::

        info = host.get_fact(MacosInfo)
        parse_version(info["version"]) >= parse_version("14")  # facts.versions
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self) -> str:
        return _info_script()

    def process(self, output: list[str]) -> dict[str, Any]:
        parts = {words[0]: body for words, body in _split_sections(output) if words}
        info: dict[str, Any] = dict(parse_sw_vers(parts.get("sw_vers", [])))
        arch = next((line.strip() for line in parts.get("uname", []) if line.strip()), None)
        info.update(hardware_from(parse_key_values(parts.get("sysctl", [])), arch))
        return info


class NetworkServices(FactBase):
    """Network services in service order (``networksetup -listnetworkserviceorder``):
    ``[{"name": "Ethernet", "enabled": True, "order": 1, "hardware_port": "Ethernet",
    "device": "en0"}, ...]``.

    Example::

        by_device = {s["device"]: s["name"] for s in host.get_fact(NetworkServices)}
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self) -> str:
        return "networksetup -listnetworkserviceorder 2>/dev/null || true"

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        return parse_service_order(output)


class NetworkServiceInfo(FactBase):
    """``networksetup -getinfo <service>``: ``{"method": "manual", "ip": "192.168.100.10",
    "subnet_mask": "255.255.255.0", "router": "192.168.100.1", ...}`` or ``{"error": ...}``.

    Example::

        host.get_fact(NetworkServiceInfo, service="Ethernet")["method"]   # "dhcp"
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, service: str) -> StringCommand:
        return StringCommand("networksetup", "-getinfo", QuoteString(service), "2>&1", "||", "true")

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_getinfo(output)


class DnsServers(FactBase):
    """Manually set DNS servers of a service (``networksetup -getdnsservers``): a list, ``[]``
    when none are set (DHCP-supplied servers never show here), or ``{"error": ...}``.

    Example::

        host.get_fact(DnsServers, service="Ethernet")   # ["192.168.100.1"]
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, service: str) -> StringCommand:
        return StringCommand(
            "networksetup", "-getdnsservers", QuoteString(service), "2>&1", "||", "true"
        )

    def process(self, output: list[str]) -> list[str] | dict[str, str]:
        return parse_dns_servers(output)


class PmsetSettings(FactBase):
    """Power settings per profile (``pmset -g custom``): ``{"AC Power": {"sleep": 0, ...}}``.

    Example::

        host.get_fact(PmsetSettings)["AC Power"]["autorestart"]   # 1
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self) -> str:
        return "pmset -g custom 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, dict[str, int | str]]:
        return parse_pmset_custom(output)


class PmsetLive(FactBase):
    """The settings in use (``pmset -g``), annotations split off:
    ``{"settings": {"sleep": 0, ...}, "notes": {"sleep": "sleep prevented by powerd"},
    "system": {"SleepDisabled": 1}}``.

    Example::

        host.get_fact(PmsetLive)["notes"].get("sleep")
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self) -> str:
        return "pmset -g 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_pmset_live(output)


class LaunchdService(FactBase):
    """One launchd job in one domain (``launchctl print <target>``), see
    :func:`parse_launchctl_print`: ``{"loaded": True, "state": "running", "pid": 4242, ...}``;
    ``{"loaded": False, "domain_exists": False, ...}`` when the domain does not exist.

    Example::

        pyinfra inventories/home.py fact facts.macos.LaunchdService target=user/501/com.ollama
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, target: str) -> StringCommand:
        return StringCommand(
            "o=$(launchctl",
            "print",
            QuoteString(target),
            "2>&1);",
            "r=$?;",
            "printf",
            "'%s\\n'",
            '"$o";',
            "echo",
            '"##rc $r"',
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        rc = None
        if output and output[-1].startswith("##rc "):
            rc = _int(output[-1][5:])
            output = output[:-1]
        return parse_launchctl_print(output, rc)


class LaunchdDomains(FactBase):
    """Which launchd domains of the SSH user exist, and the session:
    ``{"uid": 501, "user": "admin", "home": "/Users/admin", "domains": {"gui": False, "user":
    True, "managername": "Background", "console_user": "root"}}``. ``gui/<uid>`` exists only
    while that user is logged in at the screen.

    Example::

        host.get_fact(LaunchdDomains)["domains"]["gui"]
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self) -> str:
        return "; ".join(
            [
                f"echo '{_SEP} id'",
                "id -u",
                "id -un",
                'echo "$HOME"',
                _launchd_script(()),
            ]
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        parts = {words[0]: body for words, body in _split_sections(output) if words}
        ident = parts.get("id", [])
        return {
            "uid": _int(ident[0]) if ident else None,
            "user": ident[1].strip() if len(ident) > 1 else None,
            "home": ident[2].strip() if len(ident) > 2 else None,
            "domains": _parse_domains(parts.get("domains", [])),
        }


class Homebrew(FactBase):
    """Homebrew prefix and formula versions, read from the file system (no Ruby start-up):
    ``{"prefix": "/opt/homebrew", "formulas": {"ollama": {"installed": True, "version":
    "0.32.3", "versions": ["0.32.3"]}}}``; ``prefix`` is ``None`` without Homebrew.

    Example::

        pyinfra inventories/home.py fact facts.macos.Homebrew formulas='["ollama","haproxy"]'
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, formulas: Sequence[str] = ("ollama", "haproxy")) -> str:
        return _brew_script(list(formulas))

    def process(self, output: list[str]) -> dict[str, Any]:
        parts = {words[0]: body for words, body in _split_sections(output) if words}
        return _parse_brew_block(parts.get("brew", []))


class BrewServices(FactBase):
    """``brew services list --json`` (slow: starts Ruby) -> ``[{"name": "ollama", "status":
    "started", "user": "admin", "file": ".../homebrew.mxcl.ollama.plist", "exit_code": 0}]``.

    Example::

        pyinfra inventories/home.py fact facts.macos.BrewServices --limit server
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in BREW_ENV.items())
        return (
            "for d in " + " ".join(BREW_PREFIXES) + '; do if [ -x "$d/bin/brew" ]; then '
            f'{env} "$d/bin/brew" services list --json 2>/dev/null; break; fi; done; true'
        )

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        return parse_brew_services("\n".join(output))


# -- the server role's one read ---------------------------------------------------------------

#: launchd labels the server role inspects: ours, and Homebrew's competing Ollama service.
SERVER_LABELS = ("com.ollama", "com.haproxy", "homebrew.mxcl.ollama")


def server_state_script(
    api: str,
    port: int,
    labels: Sequence[str] = SERVER_LABELS,
    files: Sequence[str] = (),
    formulas: Sequence[str] = ("ollama", "haproxy"),
    network_service: str = "",
    network_device: str = "",
    proxy_api: str = "",
    brew_info: bool = False,
    api_endpoints: Sequence[str] = ("version", "tags", "ps"),
    run_user: str = "",
) -> str:
    """The Mac-side script of :class:`MacServerState` (POSIX sh, never fails)."""
    if run_user and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", run_user):
        raise ValueError(f"not a user name: {run_user!r}")
    api_q = shlex.quote(api)
    file_words = " ".join(_path_expr(f) for f in files)
    parts = [
        f"echo '{_SEP} id'",
        "id -u",
        "id -un",
        'echo "$HOME"',
        f"echo '{_SEP} session'",
        'echo "ssh_connection=$SSH_CONNECTION"',
        "if sudo -n true >/dev/null 2>&1; then echo sudo=nopasswd; else echo sudo=password; fi",
        'echo "filevault=$(fdesetup status 2>/dev/null)"',
        'echo "autologin=$(defaults read /Library/Preferences/com.apple.loginwindow '
        'autoLoginUser 2>/dev/null)"',
        f"echo '{_SEP} runuser'",
        f"id -u {run_user} 2>/dev/null; echo ~{run_user}" if run_user else ":",
        _info_script(),
        _brew_script(list(formulas), info=brew_info, refresh=brew_info) if formulas else ":",
        _launchd_script(list(labels)),
        f"echo '{_SEP} files'",
        f"for f in {file_words}; do "
        'if [ -f "$f" ]; then echo "$(shasum -a 256 < "$f" | cut -d" " -f1) $f"; '
        'else echo "- $f"; fi; done'
        if files
        else ":",
        f"echo '{_SEP} apps'",
        'for a in /Applications/Ollama.app "$HOME/Applications/Ollama.app"; do '
        '[ -d "$a" ] && echo "$a"; done',
        f"echo '{_SEP} processes'",
        "ps ax -o pid= -o user= -o command= 2>/dev/null | grep -i -e ollama -e haproxy "
        f"| grep -v -e '{_SEP}' -e grep",
        f"echo '{_SEP} listeners'",
        f"lsof -nP -iTCP:{int(port)} -sTCP:LISTEN -F pcLn 2>/dev/null",
        f"echo '{_SEP} pmset'",
        "pmset -g custom 2>/dev/null",
        f"echo '{_SEP} serviceorder'",
        "order=$(networksetup -listnetworkserviceorder 2>/dev/null)",
        "printf '%s\\n' \"$order\"",
    ]
    if network_service or network_device:
        if network_service:
            parts.append(f"svc={shlex.quote(network_service)}")
        else:
            awk = (
                r'/^\(([0-9]+|\*)\) /{n=$0; sub(/^\([^)]*\) /,"",n); next} '
                r'/^\(Hardware Port: /{d=$0; sub(/.*, Device: ?/,"",d); sub(/\)$/,"",d); '
                r'if (d==dev && n!="") {print n; exit}}'
            )
            parts.append(
                f"svc=$(printf '%s\\n' \"$order\" | awk -v dev={shlex.quote(network_device)} "
                f"{shlex.quote(awk)})"
            )
        parts += [
            f'echo "{_SEP} getinfo $svc"',
            '[ -n "$svc" ] && networksetup -getinfo "$svc" 2>&1',
            f"echo '{_SEP} dns'",
            '[ -n "$svc" ] && networksetup -getdnsservers "$svc" 2>&1',
        ]
    for endpoint in api_endpoints:
        parts += [
            f"echo '{_SEP} api {endpoint}'",
            f"curl -s -m 5 -w '\\n%{{http_code}}\\n' http://{api_q}/api/{endpoint} 2>/dev/null"
            " || echo",
        ]
    if proxy_api:
        parts += [
            f"echo '{_SEP} proxy version'",
            f"curl -s -m 5 -w '\\n%{{http_code}}\\n' http://{shlex.quote(proxy_api)}/api/version"
            " 2>/dev/null || echo",
        ]
    parts += [f"echo '{_SEP} end'", "true"]
    return "; ".join(parts)


def parse_server_state(lines: list[str]) -> dict[str, Any]:
    """Parse :func:`server_state_script` output into the :class:`MacServerState` dict."""
    state: dict[str, Any] = {
        "uid": None,
        "user": None,
        "home": None,
        "ssh_connection": None,
        "sudo_nopasswd": False,
        "filevault": None,
        "autologin_user": None,
        "run_user": None,
        "macos": {},
        "brew": {"prefix": None, "formulas": {}},
        "brew_info": {},
        "domains": {},
        "launchd": {},
        "files": {},
        "apps": [],
        "processes": [],
        "listeners": [],
        "pmset": {},
        "network_services": [],
        "network_service": None,
        "network": None,
        "dns": None,
        "api": {},
        "proxy_api": None,
        "complete": False,
    }
    arch = None
    sysctl: dict[str, str] = {}
    for words, body in _split_sections(lines):
        kind = words[0] if words else ""
        if kind == "id":
            state["uid"] = _int(body[0]) if body else None
            state["user"] = body[1].strip() if len(body) > 1 else None
            state["home"] = body[2].strip() if len(body) > 2 else None
        elif kind == "session":
            kv = parse_key_values(body)
            conn = kv.get("ssh_connection", "").split()
            state["ssh_connection"] = (
                {"client": conn[0], "server": conn[2], "port": _int(conn[3])}
                if len(conn) == 4
                else None
            )
            state["sudo_nopasswd"] = kv.get("sudo") == "nopasswd"
            fv = kv.get("filevault", "")
            state["filevault"] = True if "is On" in fv else False if "is Off" in fv else None
            state["autologin_user"] = kv.get("autologin") or None
        elif kind == "runuser":
            uid = _int(body[0]) if body and len(body) > 1 else None
            home = body[-1].strip() if body else ""
            state["run_user"] = (
                {"uid": uid, "home": home if home.startswith("/") else None}
                if uid is not None
                else None
            )
        elif kind == "sw_vers":
            state["macos"].update(parse_sw_vers(body))
        elif kind == "uname":
            arch = next((line.strip() for line in body if line.strip()), None)
        elif kind == "sysctl":
            sysctl = parse_key_values(body)
        elif kind == "brew":
            state["brew"] = _parse_brew_block(body)
        elif kind == "brew-info":
            state["brew_info"] = parse_brew_info("\n".join(body))
        elif kind == "domains":
            state["domains"] = _parse_domains(body)
        elif kind == "launchd" and len(words) == 3:
            target, rc = words[1], _int(words[2])
            domain, label = target.rsplit("/", 1)
            kind_name = domain.split("/", 1)[0]
            state["launchd"].setdefault(label, {})[kind_name] = parse_launchctl_print(body, rc)
        elif kind == "files":
            state["files"] = parse_file_hashes(body)
        elif kind == "apps":
            state["apps"] = [line.strip() for line in body if line.strip()]
        elif kind == "processes":
            state["processes"] = parse_ollama_processes(body)
        elif kind == "listeners":
            state["listeners"] = parse_lsof_listeners(body)
        elif kind == "pmset":
            state["pmset"] = parse_pmset_custom(body)
        elif kind == "serviceorder":
            state["network_services"] = parse_service_order(body)
        elif kind == "getinfo":
            state["network_service"] = " ".join(words[1:]) or None
            state["network"] = parse_getinfo(body) if state["network_service"] else None
        elif kind == "dns":
            state["dns"] = parse_dns_servers(body) if state["network_service"] else None
        elif kind == "api" and len(words) == 2:
            state["api"][words[1]] = parse_api_response(body)
        elif kind == "proxy":
            state["proxy_api"] = parse_api_response(body)
        elif kind == "end":
            state["complete"] = True
    state["macos"].update(hardware_from(sysctl, arch))
    return state


class MacServerState(FactBase):
    """Everything the server role reads, in **one** exec: identity and session, macOS version
    and hardware, Homebrew formulas, launchd domains and jobs (``print`` of each label in
    ``gui/<uid>``, ``user/<uid>`` and ``system``), sha256 of the managed files, Ollama.app,
    Ollama/HAProxy processes and listeners, ``pmset -g custom``, network services and the
    configured service's ``-getinfo``/DNS, and Ollama's ``/api/version``, ``/api/tags``,
    ``/api/ps``.

    Arguments: ``api`` (``host:port`` of Ollama), ``port`` (for listeners), ``labels``,
    ``files`` (``~/`` allowed), ``formulas``, ``network_service`` or ``network_device``,
    ``proxy_api`` (HAProxy's ``host:port``), ``brew_info`` (also ``brew update`` + ``brew
    info --json=v2``: slow, only to decide upgrades), ``run_user`` (the daemon's user: uid and
    home). Also FileVault (``fdesetup status``) and the auto-login user: both decide whether
    a LaunchAgent can start after a reboot.

    Example::

        state = host.get_fact(MacServerState, api="192.168.100.10:11434", port=11434,
                              files=["~/Library/LaunchAgents/com.ollama.plist"],
                              network_device="en0")
        state["launchd"]["com.ollama"]["user"]["state"]      # "running"
        state["api"]["version"]["json"]["version"]           # "0.32.3"
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(
        self,
        api: str,
        port: int,
        labels: Sequence[str] = SERVER_LABELS,
        files: Sequence[str] = (),
        formulas: Sequence[str] = ("ollama", "haproxy"),
        network_service: str = "",
        network_device: str = "",
        proxy_api: str = "",
        brew_info: bool = False,
        run_user: str = "",
    ) -> str:
        return server_state_script(
            api,
            port,
            labels,
            files,
            formulas,
            network_service,
            network_device,
            proxy_api,
            brew_info,
            run_user=run_user,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_server_state(output)


# -- competing Ollama servers -----------------------------------------------------------------

BREW_OLLAMA_LABEL = "homebrew.mxcl.ollama"


def find_competitors(
    state: dict[str, Any], label: str = "com.ollama", port: int | None = None
) -> list[dict[str, Any]]:
    """Other Ollama servers on this Mac, from a :class:`MacServerState`:

    * ``brew-service``: ``brew services``' ``homebrew.mxcl.ollama`` job, loaded in a domain
      (a second server on 127.0.0.1:11434 with Homebrew's own environment);
    * ``brew-plist``: its plist, not loaded now but loaded at the next login or boot;
    * ``app``: Ollama.app (a login item that starts a server at every GUI login), with the
      PIDs of its running processes;
    * ``process``: another ``ollama serve`` (or an app process) not run by our job;
    * ``listener``: another process listening on the Ollama port (when ``port`` is given).

    Example::

        for c in find_competitors(state, port=11434):
            print(c["kind"], c["detail"])
    """
    result: list[dict[str, Any]] = []
    uid, home = state.get("uid"), state.get("home") or ""
    ours = {
        job.get("pid")
        for job in (state.get("launchd", {}).get(label) or {}).values()
        if job.get("loaded") and job.get("pid")
    }
    brew_pids = set()
    for kind, job in (state.get("launchd", {}).get(BREW_OLLAMA_LABEL) or {}).items():
        if job.get("loaded"):
            where = "system" if kind == "system" else f"{kind}/{uid}"
            pid = job.get("pid")
            if pid:
                brew_pids.add(pid)
            result.append(
                {
                    "kind": "brew-service",
                    "domain": kind,
                    "pid": pid,
                    "detail": f"brew services' {BREW_OLLAMA_LABEL} is loaded in {where}"
                    + (f" (pid {pid})" if pid else ""),
                }
            )
    files = state.get("files", {})
    for path in (
        f"{home}/Library/LaunchAgents/{BREW_OLLAMA_LABEL}.plist",
        f"/Library/LaunchDaemons/{BREW_OLLAMA_LABEL}.plist",
    ):
        if files.get(path):
            result.append(
                {
                    "kind": "brew-plist",
                    "path": path,
                    "detail": f"{path} starts brew services' Ollama at login/boot",
                }
            )
    processes = state.get("processes", [])
    app_pids = [p["pid"] for p in processes if p.get("kind") == "app"]
    for app in state.get("apps", []):
        result.append(
            {
                "kind": "app",
                "path": app,
                "pids": app_pids,
                "detail": f"{app} is installed (a login item that starts its own server at "
                "every login)" + (f"; running: pids {app_pids}" if app_pids else ""),
            }
        )
    if not state.get("apps") and app_pids:
        result.append(
            {
                "kind": "app",
                "path": None,
                "pids": app_pids,
                "detail": f"Ollama.app is running (pids {app_pids})",
            }
        )
    for proc in processes:
        if proc.get("kind") == "server" and proc["pid"] not in ours | brew_pids:
            result.append(
                {
                    "kind": "process",
                    "pid": proc["pid"],
                    "user": proc.get("user"),
                    "detail": f"another Ollama server runs: pid {proc['pid']} ({proc['user']}): "
                    f"{proc['command']}",
                }
            )
    if port is not None:
        known = (
            ours
            | brew_pids
            | set(app_pids)
            | {p["pid"] for p in processes if p.get("kind") == "haproxy"}
        )
        for listener in state.get("listeners", []):
            if listener.get("pid") not in known:
                result.append(
                    {
                        "kind": "listener",
                        "pid": listener.get("pid"),
                        "detail": f"{listener.get('command')} (pid {listener.get('pid')}) listens "
                        f"on {listener.get('address')}:{listener.get('port')}",
                    }
                )
    return result


class OllamaCompetitors(FactBase):
    """Competing Ollama servers (see :func:`find_competitors`) in one exec: brew services'
    ``homebrew.mxcl.ollama``, Ollama.app, stray ``ollama serve`` processes, other listeners.

    Example::

        pyinfra inventories/home.py fact facts.macos.OllamaCompetitors --limit server
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, port: int = 11434) -> str:
        return server_state_script(
            "127.0.0.1:0",
            port,
            labels=("com.ollama", BREW_OLLAMA_LABEL),
            files=(
                f"~/Library/LaunchAgents/{BREW_OLLAMA_LABEL}.plist",
                f"/Library/LaunchDaemons/{BREW_OLLAMA_LABEL}.plist",
            ),
            formulas=(),
            api_endpoints=(),
        )

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        state = parse_server_state(output)
        port = next((lsn.get("port") for lsn in state.get("listeners", [])), None)
        return find_competitors(state, port=port)

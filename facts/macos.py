"""Facts about a macOS host: version and hardware, network services, DNS, power (pmset).

Every parser is a pure function of the command's lines (tested on real-format samples); every
fact runs **one** remote command that never fails (errors become data). The other macOS facts
live beside this module, one job each: ``facts/launchd.py`` (launchd jobs and domains),
``facts/homebrew.py`` (formulas, services), ``facts/macserver.py`` (the server role's one-exec
read :class:`~facts.macserver.MacServerState`, and competing Ollama servers). They share the
section marker and :func:`split_sections` of this module.

Audit from the command line (from the repo root)::

    pyinfra inventories/home.py fact facts.macos.MacosInfo --limit server
    pyinfra inventories/home.py fact facts.macos.NetworkServices --limit server
    pyinfra inventories/home.py fact facts.macos.NetworkServiceInfo service=Ethernet --limit server
    pyinfra inventories/home.py fact facts.macos.PmsetSettings --limit server
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pyinfra.api import FactBase, QuoteString, StringCommand

#: Marks the start of each section of a multi-command fact's output.
SECTION_SEP = "##pyinfra-mac##"

# -- parsers ----------------------------------------------------------------------------------


def int_or_none(text: str | None) -> int | None:
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
    arm64_flag = int_or_none(sysctl.get("hw.optional.arm64"))
    translated = int_or_none(sysctl.get("sysctl.proc_translated"))
    return {
        "arch": arch or None,
        "apple_silicon": arm64_flag == 1 or arch == "arm64",
        "translated": translated == 1,
        "memory_bytes": int_or_none(sysctl.get("hw.memsize")),
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
    value = int_or_none(text)
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


# -- shell snippets (shared with the other macOS facts) ---------------------------


_SYSCTL_KEYS = (
    "hw.memsize",
    "hw.model",
    "machdep.cpu.brand_string",
    "hw.optional.arm64",
    "sysctl.proc_translated",
)


def info_script() -> str:
    return "; ".join(
        [
            f"echo '{SECTION_SEP} sw_vers'",
            "sw_vers 2>/dev/null",
            f"echo '{SECTION_SEP} uname'",
            "uname -m",
            f"echo '{SECTION_SEP} sysctl'",
            "for k in " + " ".join(_SYSCTL_KEYS) + "; do "
            'printf \'%s=%s\\n\' "$k" "$(sysctl -n "$k" 2>/dev/null)"; done',
        ]
    )


def split_sections(lines: Iterable[str]) -> list[tuple[list[str], list[str]]]:
    """Split output at ``##pyinfra-mac## <words>`` lines -> ``[(words, body lines)]``."""
    sections: list[tuple[list[str], list[str]]] = []
    for line in lines:
        if line.startswith(SECTION_SEP):
            sections.append((line[len(SECTION_SEP) :].split(), []))
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
        return info_script()

    def process(self, output: list[str]) -> dict[str, Any]:
        parts = {words[0]: body for words, body in split_sections(output) if words}
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



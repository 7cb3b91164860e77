"""Facts about an OpenWrt router: its UCI configuration, release and packages.

:class:`OpenWrtState` is the one read the router role needs: a **single** remote command that
returns the parsed ``uci export`` of ``network``, ``firewall`` and ``dhcp``, the release, the
package manager with the installed packages, and the pending (uncommitted) uci changes.
:class:`OpenWrtPackages` lists installed packages with either opkg (<= 24.10) or apk (25.x).

Secrets never leave the router in clear: the values of ``private_key`` / ``preshared_key``
options are replaced *on the router* by ``sha256:<hex>`` of the value before they are printed
(so they are safe at any pyinfra verbosity), and pending changes to them are shown redacted.

Audit from the command line (run from the repo root)::

    pyinfra inventories/home.py fact facts.openwrt.OpenWrtState --limit router
    pyinfra inventories/home.py fact facts.openwrt.UciPackage package=firewall --limit router
    pyinfra inventories/home.py fact facts.openwrt.OpenWrtPackages --limit router
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase, QuoteString, StringCommand

from facts.uci_export import ANONYMOUS_ID, parse_uci_export  # noqa: F401 - part of this API

#: The packages the router role manages, in the order they are exported.
PACKAGES = ("network", "firewall", "dhcp")

# awk program run on the router: replace secret option values by their sha256 fingerprint.
# Keys are base64, so they are safe to put in single quotes; anything else is not hashed.
_HASH_SECRETS_AWK = r"""
($1 == "option" || $1 == "list") && ($2 == "private_key" || $2 == "preshared_key") {
    v = $0; sub(/^[^']*'/, "", v); sub(/'$/, "", v)
    if (v ~ /^[A-Za-z0-9+\/=]*$/) {
        cmd = "printf %s '" v "' | sha256sum"; cmd | getline h; close(cmd)
        split(h, a, " "); print "\t" $1 " " $2 " 'sha256:" a[1] "'"
    } else { print "\t" $1 " " $2 " 'sha256:unreadable'" }
    next
}
{ print }
"""

_REDACT_CHANGES_SED = r"s/\.(private_key|preshared_key)([+-]?=).*/.\1\2'<redacted>'/"

_SEP = "##pyinfra-openwrt##"

# Prints the package manager's name, then its list of installed packages.
_LIST_PACKAGES = (
    "if command -v apk >/dev/null 2>&1; then echo apk; apk list --installed 2>/dev/null; "
    "elif command -v opkg >/dev/null 2>&1; then echo opkg; opkg list-installed 2>/dev/null; "
    "else echo none; fi"
)


def _state_script(packages: tuple[str, ...]) -> str:
    """The router-side script of :class:`OpenWrtState` (BusyBox ash)."""
    awk = shlex.quote(_HASH_SECRETS_AWK)
    sed = shlex.quote(_REDACT_CHANGES_SED)
    pkgs = " ".join(shlex.quote(p) for p in packages)
    return "; ".join(
        [
            # the private directory the uci apply script is later uploaded to
            "(umask 077; mkdir -p /tmp/pyinfra-apply)",
            f"echo {shlex.quote(_SEP + 'release')}",
            "cat /etc/openwrt_release 2>/dev/null",
            f"echo {shlex.quote(_SEP + 'os-release')}",
            "cat /usr/lib/os-release 2>/dev/null",
            f"echo {shlex.quote(_SEP + 'packages')}",
            _LIST_PACKAGES,
            f"echo {shlex.quote(_SEP + 'pending')}",
            f"uci changes 2>/dev/null | sed -E {sed}",
            f"for p in {pkgs}; do echo {shlex.quote(_SEP + 'export')} $p; "
            f"uci -n export $p 2>/dev/null | awk {awk}; done",
            f"echo {shlex.quote(_SEP + 'checksum')}",
            f"for p in {pkgs}; do uci -n export $p 2>/dev/null; done | sha256sum",
            f"echo {shlex.quote(_SEP + 'end')}",
        ]
    )


# -- parsers (pure functions, also used by tests and the lab) -------------------------------


def parse_release(lines: list[str]) -> dict[str, str]:
    """Parse ``/etc/openwrt_release`` (``DISTRIB_*``) or ``/usr/lib/os-release`` lines into
    ``{"distribution", "version", "revision", "target", "description", "codename"}`` (only
    the keys found), the key names ``ubus call system board`` uses."""
    keys = {
        "DISTRIB_ID": "distribution",
        "DISTRIB_RELEASE": "version",
        "DISTRIB_REVISION": "revision",
        "DISTRIB_TARGET": "target",
        "DISTRIB_DESCRIPTION": "description",
        "DISTRIB_CODENAME": "codename",
        "DISTRIB_ARCH": "arch",
        "NAME": "distribution",
        "VERSION": "version",
        "BUILD_ID": "revision",
        "OPENWRT_BOARD": "target",
        "OPENWRT_RELEASE": "description",
        "VERSION_CODENAME": "codename",
        "OPENWRT_ARCH": "arch",
    }
    release: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if not sep or key not in keys:
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            continue
        release.setdefault(keys[key], words[0] if words else "")
    return release


_APK_LINE = re.compile(
    r"^(?P<nv>\S+) (?P<arch>\S+) \{(?P<origin>[^}]*)\} \((?P<license>[^)]*)\) \[installed\]"
)
_APK_VERSION = re.compile(r"^\d[A-Za-z0-9._~+]*(-r\d+)?$")


def _split_apk_name(nv: str, origin: str) -> tuple[str, str]:
    if origin and nv.startswith(origin + "-") and _APK_VERSION.match(nv[len(origin) + 1 :]):
        return origin, nv[len(origin) + 1 :]
    for m in re.finditer(r"-(?=\d)", nv):
        version = nv[m.end() :]
        if _APK_VERSION.match(version):
            return nv[: m.start()], version
    return nv, ""


def parse_packages(manager: str, lines: list[str]) -> dict[str, str]:
    """Installed packages ``{name: version}`` from ``opkg list-installed`` (``name - version``)
    or apk v3 ``apk list --installed`` lines (tolerant of empty licenses and versions without
    ``-rN``, which pyinfra's own Alpine-oriented apk fact drops)."""
    packages: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if manager == "opkg":
            name, sep, version = line.partition(" - ")
            if sep:
                packages[name.strip()] = version.strip().split(" - ")[0]
        elif manager == "apk":
            m = _APK_LINE.match(line)
            if m:
                name, version = _split_apk_name(m["nv"], m["origin"])
                packages[name] = version
    return packages


def parse_state(lines: list[str]) -> dict[str, Any]:
    """Split the output of :class:`OpenWrtState`'s command into its parsed parts."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith(_SEP):
            current = blocks.setdefault(line[len(_SEP) :].strip(), [])
            continue
        if current is not None:
            current.append(line)
    release = parse_release(blocks.get("release", [])) or parse_release(
        blocks.get("os-release", [])
    )
    pkg_lines = blocks.get("packages", [])
    manager = pkg_lines[0].strip() if pkg_lines else "none"
    config: dict[str, list[dict[str, Any]]] = {}
    for key, body in blocks.items():
        if key.startswith("export "):
            name = key.split(" ", 1)[1]
            parsed = parse_uci_export(body)
            config[name] = parsed.get(name, [])
    checksum = (blocks.get("checksum") or [""])[0].split(" ")[0]
    return {
        "release": release,
        "package_manager": manager if manager in ("opkg", "apk") else None,
        "packages": parse_packages(manager, pkg_lines[1:]),
        "pending": [line for line in blocks.get("pending", []) if line.strip()],
        "config": config,
        "checksum": checksum,
        "complete": "end" in blocks,
    }


# -- facts ----------------------------------------------------------------------------------


class OpenWrtState(FactBase):
    """The router's state in one exec.

    Returns::

        {
          "release": {"distribution": "OpenWrt", "version": "23.05.5", ...},
          "package_manager": "opkg" | "apk" | None,
          "packages": {"wireguard-tools": "1.0.20210914-2", ...},
          "pending": ["network.lan.ipaddr='192.168.2.1'", ...],   # uncommitted uci changes
          "config": {"network": [section, ...], "firewall": [...], "dhcp": [...]},
          "checksum": "<sha256 of the raw exports, to detect changes made after this read>",
          "complete": True,
        }

    with sections as :func:`parse_uci_export` returns them (anonymous sections have
    ``"name": None`` and their ``cfgNNHHHH`` id in ``"id"``). Secret option values are
    ``sha256:<hex>`` fingerprints. ``{}`` when the host has no ``uci``.

    Example::

        state = host.get_fact(OpenWrtState)
        [s for s in state["config"]["firewall"] if s["type"] == "zone"]
    """

    @staticmethod
    def default() -> dict:
        return {}

    def requires_command(self, *args, **kwargs) -> str:
        return "uci"

    def command(self) -> str:
        return _state_script(PACKAGES)

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_state(output)


class UciPackage(FactBase):
    """One uci package, parsed (secrets fingerprinted): ``[section, ...]`` in file order.

    Example::

        pyinfra inventories/home.py fact facts.openwrt.UciPackage package=firewall
    """

    @staticmethod
    def default() -> list:
        return []

    def requires_command(self, *args, **kwargs) -> str:
        return "uci"

    def command(self, package: str) -> StringCommand:
        return StringCommand(
            "uci",
            "-n",
            "export",
            QuoteString(package),
            "2>/dev/null",
            "|",
            "awk",
            QuoteString(_HASH_SECRETS_AWK),
        )

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        parsed = parse_uci_export(output)
        return next(iter(parsed.values()), [])


class OpenWrtPackages(FactBase):
    """Installed packages ``{name: version}``, with opkg (23.05, 24.10) or apk (25.x).

    Example::

        pyinfra inventories/home.py fact facts.openwrt.OpenWrtPackages --limit router
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self) -> str:
        return _LIST_PACKAGES

    def process(self, output: list[str]) -> dict[str, str]:
        if not output:
            return {}
        return parse_packages(output[0].strip(), output[1:])

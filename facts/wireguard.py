"""Facts about a WireGuard interface on the router, and the router audit's one read.

:class:`WireGuardDump` is ``wg show <interface> dump`` with every secret removed ON THE
ROUTER: the dump's first line carries the interface's PRIVATE key (dropped: only the public
key, port and fwmark come back) and each peer line its preshared key (replaced by
``sha256:<hex>``). The keys only ever travel through shell variables and a pipe into
``sha256sum`` (``read`` and ``printf`` are ash builtins, run in forked subshells): no key is
ever on a command line (``/proc/*/cmdline``), in pyinfra's output or in its logs.

:class:`RouterAudit` is what ``deploys/audit.py`` reads from the router in ONE exec:
:class:`facts.openwrt.OpenWrtState`'s command followed by :class:`WireGuardDump`'s.

From the command line (repo root)::

    pyinfra inventories/home.py fact facts.wireguard.WireGuardDump interface=wg0 --limit router
    pyinfra inventories/home.py fact facts.wireguard.RouterAudit interface=wg0 --limit router
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase

from facts.openwrt import OpenWrtState

_SEP = "##pyinfra-wireguard##"
_IFACE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_B64KEY = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")


def dump_script(interface: str) -> str:
    """The router-side script (BusyBox ash): the router's clock, then the filtered dump."""
    if not _IFACE.match(interface):
        raise ValueError(f"not an interface name: {interface!r}")
    iface = shlex.quote(interface)
    body = (
        "read -r _k pub port fwmark || exit 0; unset _k; "
        'echo "interface $pub $port $fwmark"; '
        "while read -r pk psk ep ips hs rx tx ka; do "
        'if [ "$psk" = "(none)" ]; then h=none; '
        "else h=sha256:$(printf %s \"$psk\" | sha256sum | cut -d' ' -f1); fi; "
        'echo "peer $pk $h $ep $ips $hs $rx $tx $ka"; done'
    )
    return "; ".join([
        f"echo {shlex.quote(_SEP + 'wireguard')} {iface}",
        "date +%s",
        f"if command -v wg >/dev/null 2>&1; then wg show {iface} dump 2>/dev/null | {{ {body}; }};"
        " else echo no-wg; fi",
        f"echo {shlex.quote(_SEP + 'end')}",
    ])


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_dump(lines: list[str]) -> dict[str, Any]:
    """The lines of :func:`dump_script` (from its first separator) -> the fact's value."""
    out: dict[str, Any] = {"interface": None, "now": None, "wg": True, "up": False,
                           "public_key": None, "listen_port": None, "peers": [],
                           "complete": False}
    body: list[str] = []
    for line in lines:
        if line.startswith(_SEP + "wireguard"):
            out["interface"] = line[len(_SEP + "wireguard"):].strip() or None
            continue
        if line.startswith(_SEP + "end"):
            out["complete"] = True
            break
        body.append(line.strip())
    if body and body[0].isdigit():
        out["now"] = int(body.pop(0))
    for line in body:
        parts = line.split()
        if parts == ["no-wg"]:
            out["wg"] = False
        elif parts and parts[0] == "interface" and len(parts) >= 3:
            out["up"] = True
            out["public_key"] = parts[1] if _B64KEY.match(parts[1]) else None
            out["listen_port"] = _int(parts[2])
        elif parts and parts[0] == "peer" and len(parts) >= 9:
            _, key, psk, endpoint, ips, hs, rx, tx, *rest = parts
            out["peers"].append({
                "public_key": key,
                "preshared_key": psk if psk.startswith("sha256:") else None,
                "endpoint": None if endpoint == "(none)" else endpoint,
                "allowed_ips": [] if ips == "(none)" else ips.split(","),
                "latest_handshake": _int(hs) or 0,
                "rx_bytes": _int(rx) or 0,
                "tx_bytes": _int(tx) or 0,
                "keepalive": _int(rest[0]) if rest else None,
            })
    return out


class WireGuardDump(FactBase):
    """``wg show <interface> dump`` without secrets, and the router's clock.

    Returns::

        {
          "interface": "wg0", "now": 1764968400,   # the router's `date +%s`
          "wg": True,                                # False: no `wg` command
          "up": True,                                # False: no such interface
          "public_key": "<interface public key>", "listen_port": 51820,
          "peers": [{"public_key": "...", "preshared_key": "sha256:<hex>" | None,
                     "endpoint": "198.51.100.7:40123" | None, "allowed_ips": ["10.10.10.2/32"],
                     "latest_handshake": 1764968390 (0 = never), "rx_bytes": 1234,
                     "tx_bytes": 5678, "keepalive": 25 | None}],
          "complete": True,
        }
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, interface: str = "wg0") -> str:
        return dump_script(interface)

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_dump(output)


class RouterAudit(FactBase):
    """The router audit's one read: ``{"state": <OpenWrtState>, "wireguard": <WireGuardDump>}``
    (the same values as those two facts, from a single exec). ``{}`` without ``uci``."""

    @staticmethod
    def default() -> dict:
        return {}

    def requires_command(self, *args, **kwargs) -> str:
        return "uci"

    def command(self, interface: str = "wg0") -> str:
        return OpenWrtState().command() + "; " + dump_script(interface)

    def process(self, output: list[str]) -> dict[str, Any]:
        lines = list(output)
        cut = next((i for i, line in enumerate(lines) if line.startswith(_SEP + "wireguard")),
                   len(lines))
        return {"state": OpenWrtState().process(lines[:cut]),
                "wireguard": parse_dump(lines[cut:])}

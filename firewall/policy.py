"""Your own policy: per-peer access and policy tests, resolved against the network.

Inventory data (optional; read through the accessors below, with defaults):

* per peer, ``access``: the destinations the peer may reach, each ``<dest>[:<port>[-<port>]]
  [/<proto>]`` where ``<dest>`` is ``server``, a zone (``dmz``, ``lan``), ``internet`` or an
  IPv4 address/subnet, e.g. ``"server:11434"``, ``"server"`` (every port and protocol),
  ``"dmz:443"``, ``"192.168.100.20:22"``, ``"server:53/udp"``.  A port means tcp unless a
  ``/proto`` says otherwise.  Default: ``["server:<api port>"]``.
* network-wide ``policy_tests``: ``{"src": ..., "dst": ..., "expect": "accept"|"deny",
  "proto": optional}`` with ``src`` a peer name, ``vpn``, a zone, ``server``, ``internet`` or an
  address, ``dst`` the same forms as ``access`` (plus ``router``).
* network-wide ``firewall_acknowledge``: uci section names (or ``name`` options) of constructs
  the model does not evaluate that the user accepts (the proof then stops answering "unknown"
  for them).

Example::

    t = parse_target("dmz:443", net)    # Target(zone="dmz", net="192.168.100.0/24", port="443")
    t.covers("192.168.100.7", "tcp", 443)  # True
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from firewall.flows import Network

_TARGET = re.compile(r"^(?P<dest>[^:/]+(?:/\d{1,2})?)(?::(?P<port>\d{1,5}(?:-\d{1,5})?))?"
                     r"(?:/(?P<proto>tcp|udp|icmp|esp|gre|all))?$")
ZONES = ("lan", "dmz", "vpn")


class PolicyError(ValueError):
    """A destination, source or test the policy cannot resolve (the message says why)."""


@dataclass(frozen=True)
class Target:
    """A resolved destination: the addresses (CIDR), the zone it lies in (``wan`` for the
    internet), an optional port or range and a protocol (``None``: every protocol)."""

    text: str
    net: str
    zone: str
    port: str | None
    proto: str | None

    @property
    def ports(self) -> tuple[int, int] | None:
        if self.port is None:
            return None
        lo, _, hi = self.port.partition("-")
        return int(lo), int(hi or lo)

    def covers(self, address: str, proto: str, port: int | None) -> bool:
        """Whether a connection to ``address`` ``proto``/``port`` is what this target names."""
        if ipaddress.ip_address(address) not in ipaddress.ip_network(self.net):
            return False
        if self.proto is not None and proto != self.proto:
            return False
        rng = self.ports
        return rng is None or (port is not None and rng[0] <= port <= rng[1])


def parse_target(text: str, net: Network) -> Target:
    """Resolve ``server:11434``, ``dmz:443``, ``192.168.100.20:22``, ``internet``..."""
    m = _TARGET.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise PolicyError(f"{text!r} is not <dest>[:<port>][/<proto>] (e.g. 'server:11434')")
    dest, port, proto = m["dest"], m["port"], m["proto"]
    if port:
        lo, _, hi = port.partition("-")
        if not 0 < int(lo) <= int(hi or lo) <= 65535:
            raise PolicyError(f"{text!r}: port {port} is out of range 1-65535")
    if proto == "all":
        proto = None
    elif port and proto is None:
        proto = "tcp"
    if port and proto not in ("tcp", "udp"):
        raise PolicyError(f"{text!r}: a port needs tcp or udp")
    subnets = {"lan": net.lan_subnet, "dmz": net.dmz_subnet, "vpn": net.vpn_subnet}
    if dest == "server":
        if not net.server_address:
            raise PolicyError(f"{text!r}: the server has no address in the plan")
        return Target(text, f"{net.server_address}/32", "dmz", port, proto)
    if dest in subnets:
        return Target(text, str(subnets[dest]), dest, port, proto)
    if dest in ("internet", "wan"):
        return Target(text, "0.0.0.0/0", "wan", port, proto)
    try:
        n = ipaddress.ip_network(dest, strict=False)
    except ValueError:
        raise PolicyError(f"{text!r}: {dest!r} is not server, a zone ({', '.join(ZONES)}), "
                          "internet or an IPv4 address") from None
    if n.version != 4:
        raise PolicyError(f"{text!r}: only IPv4 destinations are supported")
    zone = next((z for z, s in subnets.items() if n.subnet_of(s)), "wan")  # type: ignore[arg-type]
    return Target(text, str(n), zone, port, proto)


# -- accessors of the inventory data (the schema declares the fields; defaults here) ------------


def _field(obj: Any, name: str, default: Any) -> Any:
    if isinstance(obj, Mapping):
        value = obj.get(name)
    else:
        try:
            value = getattr(obj, name)
        except (AttributeError, KeyError):
            value = None
    return default if value is None else value


def peer_access(plan: Any, peer: Any) -> list[str]:
    """The peer's ``access`` list, ``["server:<api port>"]`` when it declares none."""
    return list(_field(peer, "access", [f"server:{plan.ollama_port}"]))


def declares_access(plan: Any) -> bool:
    """Whether any enabled peer's ``access`` differs from the default (the server's API port):
    then every peer gets per-peer rules; otherwise the one ``vpn_ai`` rule serves them all."""
    default = [f"server:{plan.ollama_port}"]
    return any(list(_field(p, "access", default)) != default for p in plan.enabled_peers)


def policy_tests(plan: Any) -> list[Mapping[str, Any]]:
    """The network-wide ``policy_tests`` (empty by default), each as a mapping with ``src``,
    ``dst``, ``expect`` and ``proto`` (the plan holds them as ``PolicyTest`` objects)."""
    out = []
    for test in _field(plan, "policy_tests", []):
        if not isinstance(test, Mapping):
            test = {k: getattr(test, k, None) for k in ("src", "dst", "expect", "proto")}
        out.append({k: v for k, v in test.items() if v is not None})
    return out


def acknowledged(plan: Any) -> tuple[str, ...]:
    """The network-wide ``firewall_acknowledge`` section names (empty by default)."""
    return tuple(_field(plan, "firewall_acknowledge", ()))

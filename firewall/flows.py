"""The flows the proof asks about, built from real addresses.

:func:`endpoints` lists who talks: every zone's hosts (one address of each subnet, on the zone's
device), every VPN peer's /32 (on the VPN device), the server, the router's own addresses and an
internet address (on the WAN device).  :func:`ports` lists every port any rule or redirect
mentions, each range's edges and their neighbours (edge ± 1), plus ports no rule mentions.
:func:`flows` crosses them: every ordered pair of endpoints (both directions), tcp and udp on
every port, icmp (echo request), esp and gre.

The network's facts (subnets, server, peers) come from a :class:`Network`, made from the plan by
:func:`network_of` (duck-typed: this package does not import the deploys).

Example::

    net = network_of(plan)
    for pf in flows(fw, net):
        fw.verdict(pf.flow)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from firewall.model import Firewall
from firewall.types import Flow

#: An address no rule of a home router names (TEST-NET-2): "the internet".
INTERNET = "198.51.100.7"
#: The WAN address assumed when the WAN interface has no static address (TEST-NET-3).
WAN_PLACEHOLDER = "203.0.113.2/24"
#: Protocols without ports that every pair is probed with.
PORTLESS = ("icmp", "esp", "gre")
#: Source port of the probes (ephemeral range).
SPORT = 49152
#: Ports always probed, whatever the rules say.
BASE_PORTS = (1, 22, 53, 67, 68, 80, 123, 443, 500, 4500, 8080, 65535)


@dataclass(frozen=True)
class Network:
    """What the proof knows about the network besides the firewall config."""

    lan_subnet: ipaddress.IPv4Network
    dmz_subnet: ipaddress.IPv4Network
    vpn_subnet: ipaddress.IPv4Network
    server_address: str | None
    api_port: int
    vpn_port: int
    vpn_interface: str
    lan_to_dmz: bool
    peers: dict[str, str] = field(default_factory=dict)  # name -> address
    internet: str = INTERNET


def network_of(plan: Any) -> Network:
    """The :class:`Network` of a plan (``deploys.plan.Plan``)."""
    return Network(
        lan_subnet=plan.lan_subnet, dmz_subnet=plan.dmz_subnet, vpn_subnet=plan.vpn_subnet,
        server_address=str(plan.server_address) if plan.server_address else None,
        api_port=plan.ollama_port, vpn_port=plan.vpn_port, vpn_interface=plan.vpn_interface,
        lan_to_dmz=bool(plan.lan_to_dmz),
        peers={p.name: str(p.address) for p in plan.enabled_peers},
    )


@dataclass(frozen=True)
class Endpoint:
    """One address that sends or receives: ``role`` is ``vpn``, ``dmz``, ``lan``, ``wan``,
    ``router`` or ``zone:<name>`` (another zone), ``device`` where its packets enter the router
    (``None`` for the router itself)."""

    label: str
    role: str
    address: str
    device: str | None
    peer: str | None = None

    def __str__(self) -> str:
        return f"{self.label} ({self.address})"


@dataclass(frozen=True)
class ProbeFlow:
    """A probe: the first packet of a connection from ``src`` to ``dst``."""

    src: Endpoint
    dst: Endpoint
    proto: str
    port: int | None = None
    sport: int | None = None

    @property
    def flow(self) -> Flow:
        oif = None if self.dst.role == "router" else self.dst.device
        return Flow(self.src.device, oif, self.proto, self.port,
                    src_ip=self.src.address, dest_ip=self.dst.address,
                    src_port=self.sport if self.proto in ("tcp", "udp") else None)

    @property
    def service(self) -> str:
        return f"{self.proto}/{self.port}" if self.port is not None else self.proto

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst} {self.service}"


def _host(net: ipaddress.IPv4Network, avoid: set[str]) -> str | None:
    hosts = net.hosts() if net.num_addresses > 2 else iter(net)
    last = None
    for a in hosts:
        if str(a) not in avoid:
            last = str(a)
    return last


def _device_of(fw: Firewall, address: str) -> str | None:
    a = ipaddress.ip_address(address)
    for iface in fw.interfaces.values():
        for cidr in iface.addresses:
            if a in ipaddress.ip_interface(cidr).network and iface.device:
                return iface.device
    return None


def wan_zone(fw: Firewall) -> str | None:
    """The zone of the internet uplink: ``wan`` if it exists, else the first masquerading one."""
    if fw.zone("wan") is not None:
        return "wan"
    return next((z.name for z in fw.zones if z.masq), None)


def endpoints(fw: Firewall, net: Network) -> list[Endpoint]:
    """Every endpoint the proof probes (see the module docstring)."""
    router = fw.router_addresses()
    own = {a for a in router if not a.startswith("127.")}
    used = set(own) | set(net.peers.values()) | ({net.server_address} - {None})
    out: list[Endpoint] = []
    for addr in sorted(own, key=lambda a: (ipaddress.ip_address(a).version, a)):
        if ipaddress.ip_address(addr).version == 4:
            out.append(Endpoint(f"router ({router[addr]})", "router", addr, None))
    vpn_dev = fw.interfaces[net.vpn_interface].device if net.vpn_interface in fw.interfaces \
        else net.vpn_interface
    for name, addr in sorted(net.peers.items()):
        out.append(Endpoint(f"peer {name}", "vpn", addr, vpn_dev, peer=name))
    other = _host(net.vpn_subnet, used)
    if other:
        out.append(Endpoint("VPN address of no peer", "vpn", other, vpn_dev))
    if net.server_address:
        out.append(Endpoint("server", "dmz", net.server_address,
                            _device_of(fw, net.server_address)))
    other = _host(net.dmz_subnet, used)
    if other:
        out.append(Endpoint("other DMZ host", "dmz", other, _device_of(fw, other)))
    other = _host(net.lan_subnet, used)
    if other:
        out.append(Endpoint("LAN host", "lan", other, _device_of(fw, other)))
    wz = wan_zone(fw)
    wan_dev = fw._device(wz) if wz else None
    out.append(Endpoint("internet", "wan", net.internet, wan_dev))
    known = [net.lan_subnet, net.dmz_subnet, net.vpn_subnet]
    for z in fw.zones:
        for cidr in z.related_subnets:
            n = ipaddress.ip_network(cidr, strict=False)
            if n.version != 4 or n.is_loopback or any(n.overlaps(k) for k in known):
                continue
            known.append(n)
            host = _host(n, used)
            if host:
                out.append(Endpoint(f"{z.name} host", f"zone:{z.name}", host,
                                    _device_of(fw, host) or fw._device(z.name)))
    return [e for e in out if e.role == "router" or e.device]


def ports(fw: Firewall, extra: tuple[int, ...] = ()) -> list[int]:
    """Every port a rule or redirect mentions with each range's edges ± 1, plus
    :data:`BASE_PORTS`, ``extra`` and the first port no rule mentions."""
    found: set[int] = set(BASE_PORTS) | set(extra)
    specs: list[str] = []
    for chain in fw.chains.values():
        for e in chain.entries:
            m = e.match
            specs += [*m.dport, *m.dport_neg]
            if e.nat_to and e.nat_to[1]:
                found.add(e.nat_to[1])
    for spec in specs:
        lo, _, hi = spec.partition("-")
        for p in (int(lo) - 1, int(lo), int(hi or lo), int(hi or lo) + 1):
            if 0 < p < 65536:
                found.add(p)

    def mentioned(p: int) -> bool:
        for spec in specs:
            lo, _, hi = spec.partition("-")
            if int(lo) <= p <= int(hi or lo):
                return True
        return False

    free = next((p for p in range(1024, 65536) if not mentioned(p) and p not in found), None)
    if free:
        found.add(free)
    return sorted(found)


def flows(fw: Firewall, net: Network, wanted: Any = None) -> Iterator[ProbeFlow]:
    """Every probe between two distinct endpoints; ``wanted(src, dst)`` may filter the pairs."""
    eps = endpoints(fw, net)
    plist = ports(fw, (net.api_port, net.vpn_port))
    for src in eps:
        if src.role == "router":
            continue  # the router's own output is no invariant's concern
        for dst in eps:
            if dst is src or (wanted is not None and not wanted(src, dst)):
                continue
            for proto in ("tcp", "udp"):
                for port in plist:
                    yield ProbeFlow(src, dst, proto, port, SPORT)
            for proto in PORTLESS:
                yield ProbeFlow(src, dst, proto)

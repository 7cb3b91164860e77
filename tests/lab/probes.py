"""Packet probes for DESIGN.md section 1, each paired with the flow the fw4 model decides
(TEST ONLY).

Every :class:`Probe` is sent with real packets from one lab namespace (``tests/lab/agent.py``)
and carries the :class:`firewall.Flow` it is at the router, so a test can check three
things agree: the invariant (``allowed``), the real packets, and the ``firewall`` model's verdict on
the router's committed config. Targets run listeners (:func:`start_listeners`) on every probed
port, so a refusal can only come from the firewall.

Example::

    listeners = start_listeners(topo)
    results = run_probes(topo, catalogue(addresses))
    listeners.stop()
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from firewall import Flow
from tests.lab import topology as t

AGENT = Path(__file__).with_name("agent.py")
OLLAMA_PORT = 11434
VPN_ROUTER = "10.10.10.1"
#: what the probing peers send into their tunnels besides their honest AllowedIPs
PROBE_ALLOWED = ("192.168.1.0/24", "192.168.100.0/24", f"{t.WEB_ADDRESS}/32",
                 f"{t.INET_ADDRESS}/32")

#: role -> what its listener serves (all on 0.0.0.0)
LISTENERS = {
    "server": {"tcp": [22, OLLAMA_PORT, 8080], "udp_echo": [OLLAMA_PORT]},
    "lan": {"tcp": [22, 80], "udp_echo": [500]},
    "inet": {"tcp": [22, 80, 443], "dns": True},
    "client1": {"tcp": [22]},
    "client2": {"tcp": [22]},
    "phone": {"tcp": [22]},
}


@dataclass(frozen=True)
class Probe:
    id: str
    invariant: int
    description: str
    src: str  # role
    kind: str  # agent probe kind
    dst: str
    port: int | None
    allowed: bool
    flow: Flow
    extra: dict = field(default_factory=dict)

    def spec(self) -> dict:
        return {"id": self.id, "kind": self.kind, "dst": self.dst, "port": self.port,
                **self.extra}


class Listeners:
    def __init__(self, procs: list[subprocess.Popen]) -> None:
        self.procs = procs

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


def start_listeners(topo: t.Topology, roles: Iterable[str] = tuple(LISTENERS), *,
                    ollama_served: bool = False) -> Listeners:
    """Listeners in ``roles``; ``ollama_served``: the server's tcp/11434 is the real Ollama
    (stand-in) of the server role, not a listener of ours."""
    procs = []
    roles = tuple(roles)
    for role in roles:
        spec = dict(LISTENERS[role])
        if role == "server" and ollama_served:
            spec["tcp"] = [p for p in spec["tcp"] if p != OLLAMA_PORT]
        p = topo.popen(role, [sys.executable, str(AGENT), "listen", json.dumps(spec)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
    for role, p in zip(roles, procs, strict=True):
        line = p.stdout.readline().strip()
        if line != "ready":
            Listeners(procs).stop()
            raise RuntimeError(f"listener in {role} did not start: {line} {p.stderr.read()}")
    return Listeners(procs)


def run_probes(topo: t.Topology, probes: Iterable[Probe]) -> dict[str, dict]:
    """Run probes, all sources at once; ``{probe id: {"ok": bool, "detail": str}}``."""
    by_src: dict[str, list[dict]] = {}
    for p in probes:
        by_src.setdefault(p.src, []).append(p.spec())
    procs = {src: topo.popen(src, [sys.executable, str(AGENT), "probe", json.dumps(specs)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for src, specs in by_src.items()}
    results: dict[str, dict] = {}
    for src, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"probes from {src} failed: {err}")
        results.update(json.loads(out))
    return results


def catalogue(vpn: dict[str, str]) -> list[Probe]:
    """The probes of DESIGN.md section 1 in the lab. ``vpn``: peer name -> VPN address."""
    srv, lan, web, inet = t.SERVER_ADDRESS, t.LAN_HOST_ADDRESS, t.WEB_ADDRESS, t.INET_ADDRESS
    wan_ip = t.ROUTER_WAN_ADDRESS
    c1, c2 = vpn["client1"], vpn["client2"]
    out: list[Probe] = []

    def add(inv, what, src, kind, dst, port, allowed, flow, **extra):
        out.append(Probe(f"p{len(out):02d}", inv, what, src, kind, dst, port, allowed, flow,
                         extra))

    def tcp(iif, oif, port, dest=None, src_ip=None):
        return Flow(iif, oif, "tcp", port, dest_ip=dest, src_ip=src_ip)

    def udp(iif, oif, port, dest=None, src_ip=None):
        return Flow(iif, oif, "udp", port, dest_ip=dest, src_ip=src_ip)

    def icmp(iif, oif, dest=None, src_ip=None):
        return Flow(iif, oif, "icmp", dest_ip=dest, src_ip=src_ip)

    # 1. from the internet: only WireGuard (+ the WAN basics: ping) reaches the router
    for port in (22, 80):
        add(1, f"WAN -> router tcp/{port}", "inet", "tcp", wan_ip, port, False,
            tcp("wan", None, port, wan_ip, inet))
    add(1, "WAN -> router udp/53 (DNS)", "inet", "dns_udp", wan_ip, 53, False,
        udp("wan", None, 53, wan_ip, inet))
    add(1, "WAN -> router tcp/53 (DNS)", "inet", "dns_tcp", wan_ip, 53, False,
        tcp("wan", None, 53, wan_ip, inet))
    add(1, "WAN -> router ping (Allow-Ping, a WAN basic)", "inet", "ping", wan_ip, None, True,
        icmp("wan", None, wan_ip, inet))
    add(1, "WAN -> LAN host tcp/22", "inet", "tcp", lan, 22, False, tcp("wan", "lan", 22, lan))
    add(1, "WAN -> LAN host udp/500 (ISAKMP rule disabled)", "inet", "udp_echo", lan, 500,
        False, udp("wan", "lan", 500, lan))
    add(1, f"WAN -> server tcp/{OLLAMA_PORT}", "inet", "tcp", srv, OLLAMA_PORT, False,
        tcp("wan", "dmz", OLLAMA_PORT, srv))
    # 2. VPN -> the server: tcp/11434 only
    for peer in ("client1", "phone"):
        add(2, f"VPN ({peer}) -> server tcp/{OLLAMA_PORT}", peer, "tcp", srv, OLLAMA_PORT, True,
            tcp("vpn", "dmz", OLLAMA_PORT, srv, vpn[peer]))
    add(2, "VPN -> server tcp/22", "client1", "tcp", srv, 22, False,
        tcp("vpn", "dmz", 22, srv, c1))
    add(2, "VPN -> server tcp/8080", "client1", "tcp", srv, 8080, False,
        tcp("vpn", "dmz", 8080, srv, c1))
    add(2, f"VPN -> server udp/{OLLAMA_PORT}", "client1", "udp_echo", srv, OLLAMA_PORT, False,
        udp("vpn", "dmz", OLLAMA_PORT, srv, c1))
    add(2, "VPN -> server ping", "client1", "ping", srv, None, False,
        icmp("vpn", "dmz", srv, c1))
    # 3. VPN -> LAN, router, internet: denied
    add(3, "VPN -> LAN host tcp/22", "client1", "tcp", lan, 22, False,
        tcp("vpn", "lan", 22, lan, c1))
    add(3, "VPN -> LAN host ping", "client1", "ping", lan, None, False,
        icmp("vpn", "lan", lan, c1))
    add(3, "VPN -> router tcp/22 (SSH, VPN address)", "client1", "tcp", VPN_ROUTER, 22, False,
        tcp("vpn", None, 22, VPN_ROUTER, c1))
    add(3, "VPN -> router tcp/22 (SSH, LAN address)", "client1", "tcp", t.LAN_ROUTER_ADDRESS,
        22, False, tcp("vpn", None, 22, t.LAN_ROUTER_ADDRESS, c1))
    add(3, "VPN -> router udp/53 (DNS)", "client1", "dns_udp", VPN_ROUTER, 53, False,
        udp("vpn", None, 53, VPN_ROUTER, c1))
    add(3, "VPN -> router tcp/80 (LuCI)", "client1", "tcp", VPN_ROUTER, 80, False,
        tcp("vpn", None, 80, VPN_ROUTER, c1))
    add(3, "VPN -> internet tcp/80", "client1", "tcp", web, 80, False,
        tcp("vpn", "wan", 80, web, c1))
    add(3, "VPN -> internet udp/53 (DNS)", "client1", "dns_udp", inet, 53, False,
        udp("vpn", "wan", 53, inet, c1))
    # 4. VPN client <-> VPN client
    add(4, "VPN client1 -> client2 tcp/22", "client1", "tcp", c2, 22, False,
        tcp("vpn", "vpn", 22, c2, c1))
    add(4, "VPN client1 -> client2 ping", "client1", "ping", c2, None, False,
        icmp("vpn", "vpn", c2, c1))
    add(4, "VPN phone -> client1 tcp/22", "phone", "tcp", c1, 22, False,
        tcp("vpn", "vpn", 22, c1, vpn["phone"]))
    # 5. the DMZ: out to the internet, DHCP/DNS to the router, nothing else
    add(5, "DMZ -> internet tcp/80", "server", "tcp", web, 80, True,
        tcp("dmz", "wan", 80, web, srv))
    add(5, "DMZ -> internet udp/53 (DNS)", "server", "dns_udp", inet, 53, True,
        udp("dmz", "wan", 53, inet, srv))
    add(5, "DMZ -> internet ping", "server", "ping", inet, None, True,
        icmp("dmz", "wan", inet, srv))
    add(5, "DMZ -> LAN host tcp/22", "server", "tcp", lan, 22, False,
        tcp("dmz", "lan", 22, lan, srv))
    add(5, "DMZ -> LAN host ping", "server", "ping", lan, None, False,
        icmp("dmz", "lan", lan, srv))
    add(5, "DMZ -> VPN client tcp/22", "server", "tcp", c1, 22, False,
        tcp("dmz", "vpn", 22, c1, srv))
    add(5, "DMZ -> router udp/53 (DNS)", "server", "dns_udp", t.DMZ_ROUTER_ADDRESS, 53, True,
        udp("dmz", None, 53, t.DMZ_ROUTER_ADDRESS, srv))
    add(5, "DMZ -> router tcp/53 (DNS)", "server", "dns_tcp", t.DMZ_ROUTER_ADDRESS, 53, True,
        tcp("dmz", None, 53, t.DMZ_ROUTER_ADDRESS, srv))
    add(5, "DMZ -> router udp/67 (DHCP)", "server", "dhcp", t.DMZ_ROUTER_ADDRESS, 67, True,
        udp("dmz", None, 67, t.DMZ_ROUTER_ADDRESS, srv), mac=t.SERVER_MAC)
    add(5, "DMZ -> router tcp/22 (SSH)", "server", "tcp", t.DMZ_ROUTER_ADDRESS, 22, False,
        tcp("dmz", None, 22, t.DMZ_ROUTER_ADDRESS, srv))
    add(5, "DMZ -> router tcp/80 (LuCI)", "server", "tcp", t.DMZ_ROUTER_ADDRESS, 80, False,
        tcp("dmz", None, 80, t.DMZ_ROUTER_ADDRESS, srv))
    # 6. LAN -> DMZ only if the inventory says so (the lab says no); the LAN itself works
    add(6, "LAN -> server tcp/22 (lan_to_dmz False)", "lan", "tcp", srv, 22, False,
        tcp("lan", "dmz", 22, srv, lan))
    add(6, f"LAN -> server tcp/{OLLAMA_PORT}", "lan", "tcp", srv, OLLAMA_PORT, False,
        tcp("lan", "dmz", OLLAMA_PORT, srv, lan))
    add(0, "LAN -> router tcp/22 (administration)", "lan", "tcp", t.LAN_ROUTER_ADDRESS, 22,
        True, tcp("lan", None, 22, t.LAN_ROUTER_ADDRESS, lan))
    add(0, "LAN -> internet tcp/443", "lan", "tcp", web, 443, True,
        tcp("lan", "wan", 443, web, lan))
    return out

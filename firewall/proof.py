"""The security invariants of DESIGN.md section 1, as probes against the fw4 model.

:func:`probes` turns the plan into a list of flows with the verdict each must get;
:func:`check` builds :mod:`firewall`'s model of a router config and returns every probe
that gets the wrong verdict (an empty list means every invariant follows from the config).
Peers' authentication (invariant 7) is a property of the WireGuard sections, checked by
:func:`check_peers`.

Example::

    failures = check(state["config"], plan)
    assert not failures, "\\n".join(failures)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from firewall import Flow, build

if TYPE_CHECKING:
    from deploys.plan import Plan


@dataclass(frozen=True)
class Probe:
    invariant: int
    description: str
    flow: Flow
    allowed: bool


def _other_host(net: ipaddress.IPv4Network, *avoid: object) -> str:
    for addr in reversed(list(net.hosts())):
        if addr not in avoid:
            return str(addr)
    raise ValueError(f"no spare address in {net}")


def probes(plan: Plan) -> list[Probe]:
    """Flows that exercise every invariant, with whether each must be accepted."""
    wg = plan.vpn_port
    server = str(plan.server_address) if plan.server_address else _other_host(plan.dmz_subnet)
    dmz_other = _other_host(plan.dmz_subnet, plan.server_address, plan.dmz_router_address)
    lan_host = _other_host(plan.lan_subnet)
    vpn_peer = _other_host(plan.vpn_subnet, plan.vpn_router_address)
    internet = "198.51.100.7"
    port = plan.ollama_port
    p: list[Probe] = []

    def add(n: int, what: str, flow: Flow, allowed: bool) -> None:
        p.append(Probe(n, what, flow, allowed))

    add(1, f"WAN -> router udp/{wg} (WireGuard)", Flow("wan", None, "udp", wg), True)
    for proto, dport in (("tcp", 22), ("tcp", 80), ("tcp", 443), ("udp", 53), ("tcp", 53)):
        add(1, f"WAN -> router {proto}/{dport}", Flow("wan", None, proto, dport), False)
    add(1, "WAN -> LAN esp (IPSec)", Flow("wan", "lan", "esp", dest_ip=lan_host), False)
    add(1, "WAN -> LAN udp/500 (ISAKMP)", Flow("wan", "lan", "udp", 500, dest_ip=lan_host),
        False)
    add(1, "WAN -> LAN tcp/22", Flow("wan", "lan", "tcp", 22, dest_ip=lan_host), False)
    add(1, f"WAN -> server tcp/{port}", Flow("wan", "dmz", "tcp", port, dest_ip=server), False)
    if plan.server_address is not None:
        add(2, f"VPN -> server tcp/{port}",
            Flow("vpn", "dmz", "tcp", port, dest_ip=server), True)
    add(2, "VPN -> server tcp/22", Flow("vpn", "dmz", "tcp", 22, dest_ip=server), False)
    add(2, f"VPN -> server udp/{port}", Flow("vpn", "dmz", "udp", port, dest_ip=server), False)
    add(2, "VPN -> server icmp", Flow("vpn", "dmz", "icmp", dest_ip=server), False)
    add(2, f"VPN -> other DMZ host tcp/{port}",
        Flow("vpn", "dmz", "tcp", port, dest_ip=dmz_other), False)
    add(3, "VPN -> LAN tcp/22", Flow("vpn", "lan", "tcp", 22, dest_ip=lan_host), False)
    add(3, "VPN -> LAN icmp", Flow("vpn", "lan", "icmp", dest_ip=lan_host), False)
    for proto, dport in (("tcp", 22), ("udp", 53), ("tcp", 80), ("tcp", 443)):
        add(3, f"VPN -> router {proto}/{dport}", Flow("vpn", None, proto, dport), False)
    add(3, "VPN -> internet tcp/443", Flow("vpn", "wan", "tcp", 443, dest_ip=internet), False)
    add(3, "VPN -> internet udp/53", Flow("vpn", "wan", "udp", 53, dest_ip=internet), False)
    add(4, "VPN -> VPN peer tcp/22", Flow("vpn", "vpn", "tcp", 22, dest_ip=vpn_peer), False)
    add(4, "VPN -> VPN peer icmp", Flow("vpn", "vpn", "icmp", dest_ip=vpn_peer), False)
    add(5, "DMZ -> LAN tcp/22", Flow("dmz", "lan", "tcp", 22, dest_ip=lan_host), False)
    add(5, "DMZ -> LAN icmp", Flow("dmz", "lan", "icmp", dest_ip=lan_host), False)
    add(5, "DMZ -> VPN tcp/22", Flow("dmz", "vpn", "tcp", 22, dest_ip=vpn_peer), False)
    add(5, "DMZ -> internet tcp/443", Flow("dmz", "wan", "tcp", 443, dest_ip=internet), True)
    add(5, "DMZ -> router udp/67 (DHCP)", Flow("dmz", None, "udp", 67), True)
    add(5, "DMZ -> router udp/53 (DNS)", Flow("dmz", None, "udp", 53), True)
    add(5, "DMZ -> router tcp/53 (DNS)", Flow("dmz", None, "tcp", 53), True)
    add(5, "DMZ -> router tcp/22", Flow("dmz", None, "tcp", 22), False)
    add(5, "DMZ -> router tcp/80", Flow("dmz", None, "tcp", 80), False)
    add(6, "LAN -> server tcp/22", Flow("lan", "dmz", "tcp", 22, dest_ip=server),
        bool(plan.lan_to_dmz))
    return p


def check(config: Mapping[str, Any], plan: Plan, devices: Mapping[str, str] | None = None
          ) -> list[str]:
    """Every invariant violated by ``config`` (``{"network": [...], "firewall": [...]}``)."""
    fw = build(config, devices)
    if fw.load_error:
        return [f"the firewall would not load: {fw.load_error}"]
    failures = []
    for probe in probes(plan):
        verdict = fw.verdict(probe.flow)
        if verdict.accepted != probe.allowed:
            want = "allowed" if probe.allowed else "denied"
            failures.append(
                f"invariant {probe.invariant}: {probe.description} must be {want}, "
                f"but is {verdict}"
            )
    return failures + check_peers(config, plan)


def check_peers(config: Mapping[str, Any], plan: Plan) -> list[str]:
    """Invariant 7: exactly the enabled peers, each with its own key and /32."""
    peer_type = f"wireguard_{plan.vpn_interface}"
    sections = [s for s in config.get("network", []) if s["type"] == peer_type]
    failures = []
    expected = {p.public_key: p for p in plan.enabled_peers}
    seen = set()
    for s in sections:
        if s["options"].get("disabled") == "1":
            continue
        key = s["options"].get("public_key")
        peer = expected.get(key)
        if peer is None:
            failures.append(f"invariant 7: unknown peer section {s.get('name') or s.get('id')}")
            continue
        seen.add(key)
        if s["options"].get("allowed_ips") != [f"{peer.address}/32"]:
            failures.append(f"invariant 7: peer {peer.name} allowed_ips "
                            f"{s['options'].get('allowed_ips')}")
        if not s["options"].get("preshared_key"):
            failures.append(f"invariant 7: peer {peer.name} has no preshared key")
    for key, peer in expected.items():
        if key not in seen:
            failures.append(f"invariant 7: peer {peer.name} is missing")
    return failures

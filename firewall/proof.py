"""The proof: the invariants of the design (and the user's own policy) checked on a router config.

:func:`prove` builds :mod:`firewall`'s model of a config and asks it about every flow of
:func:`firewall.flows.flows` that an invariant, a peer's ``access`` or a user's policy test
constrains.  Each answer is *holds*, *violated* (the model's verdict contradicts the
expectation) or *unknown* (the verdict depends on something the model does not evaluate: a
``not_modelled`` finding in scope of the flow, or a rule condition it assumed).  "unknown" counts
as a failure unless the user acknowledges the section(s) in ``firewall_acknowledge``.
:func:`check_peers` covers invariant 7 (peers' authentication, in the WireGuard sections).

The invariants (DESIGN.md section 1), as flows from real addresses:

1. WAN -> router: only udp/<wg port> (plus the WAN-link basics: DHCP renew udp/68, ping);
   WAN -> LAN, DMZ, VPN: nothing.
2. VPN peer -> what its ``access`` names (default: server tcp/<api port>): accepted; VPN ->
   anything else in the DMZ: denied.
3. VPN -> LAN, VPN -> router (any of its addresses), VPN -> internet: denied (unless the peer's
   ``access`` names it).
4. VPN -> VPN: denied.
5. DMZ -> LAN, DMZ -> VPN: denied; DMZ -> internet tcp/80, tcp/443: accepted; DMZ -> router:
   only DHCP (udp/67) and DNS (udp+tcp/53), which must be accepted on the DMZ address.
6. LAN -> DMZ: denied unless ``lan_to_dmz``; then LAN -> server tcp/22 and tcp/<api> accepted.

Example::

    report = prove(config, plan, devices)
    if not report.ok:
        raise SystemExit("\\n".join(report.lines()))
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from firewall import Firewall, Verdict, build
from firewall.flows import (
    SPORT,
    Endpoint,
    Network,
    ProbeFlow,
    endpoints,
    flows,
    network_of,
    ports,
)
from firewall.policy import (
    PolicyError,
    Target,
    acknowledged,
    declares_access,
    parse_target,
    peer_access,
    policy_tests,
)

_DESCRIPTIONS = {
    "1": "from WAN only WireGuard reaches the router, nothing enters the networks",
    "2": "a VPN peer reaches what its access names (default: the server's API), nothing "
         "else in the DMZ",
    "3": "VPN -> LAN, router services and internet: denied",
    "4": "VPN client <-> VPN client: denied",
    "5": "DMZ -> LAN/VPN denied, DMZ -> internet allowed, DMZ -> router DHCP/DNS only",
    "6": "LAN -> DMZ only if the inventory says so",
}
_WAN_BASICS = {("udp", 68), ("icmp", None)}
_DMZ_ROUTER = {("udp", 67), ("udp", 53), ("tcp", 53)}


@dataclass(frozen=True)
class Outcome:
    """One failed expectation: ``status`` ``violated`` or ``unknown``."""

    status: str
    check: str  # "invariant 3", "policy test 2", "access of peer alice"
    expectation: str
    probe: ProbeFlow
    verdict: Verdict
    sections: tuple[str, ...]
    why: str = ""

    def __str__(self) -> str:
        want = self.expectation
        secs = ", ".join(self.sections) or "-"
        if self.status == "violated":
            fwd = f" ({self.why})" if self.why else ""
            return (f"{self.check} violated ({want}): {self.probe}{fwd} is "
                    f"{self.verdict.action.upper()} by {self.verdict.reason}; section(s) "
                    f"responsible: {secs}")
        return (f"{self.check} unknown ({want}): {self.probe} is {self.verdict.action} only if "
                f"{self.why}; section(s): {secs} (add them to firewall_acknowledge to accept)")


@dataclass
class Report:
    """The proof's result: ``failures`` (flows), ``errors`` (what is not a flow: a ruleset that
    would not load, unresolvable policy data, invariant 7), how many expectations were checked."""

    failures: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors

    def lines(self, limit: int = 20) -> list[str]:
        """One line per error and per failure (the first ``limit`` failures of each check)."""
        out = list(self.errors)
        seen: dict[str, int] = {}
        for f in self.failures:
            seen[f.check] = seen.get(f.check, 0) + 1
            if seen[f.check] <= limit:
                out.append(str(f))
        out += [f"{c}: {n - limit} more flow(s) like these" for c, n in seen.items() if n > limit]
        return out


@dataclass(frozen=True)
class _Expect:
    check: str
    text: str
    accept: bool


def _in(addr: str, net: Any) -> bool:
    return ipaddress.ip_address(addr) in net


def _access_targets(plan: Any, net: Network) -> tuple[dict[str, list[Target]], list[str]]:
    out: dict[str, list[Target]] = {}
    errors: list[str] = []
    for peer in plan.enabled_peers:
        targets = []
        for text in peer_access(plan, peer):
            try:
                targets.append(parse_target(text, net))
            except PolicyError as e:
                errors.append(f"peer {peer.name}: access: {e}")
        out[peer.name] = targets
    return out, errors


def _expect(pf: ProbeFlow, net: Network, access: Mapping[str, list[Target]],
            dmz_router: str, per_peer: bool) -> _Expect | None:  # noqa: C901 - one table
    s, d = pf.src, pf.dst
    svc = (pf.proto, pf.port)
    if s.role == "wan":
        if d.role == "router":
            if svc == ("udp", net.vpn_port):
                return _Expect("invariant 1", "WireGuard reaches the router from WAN", True)
            if svc in _WAN_BASICS:
                return None
            return _Expect("invariant 1", "from WAN only WireGuard reaches the router", False)
        if d.role in ("lan", "dmz", "vpn"):
            return _Expect("invariant 1", f"nothing enters the {d.role.upper()} from WAN", False)
        return None
    if s.role == "vpn":
        targets = access.get(s.peer or "", []) if s.peer or per_peer else \
            [parse_target(f"server:{net.api_port}", net)] if net.server_address else []
        granted = next((t for t in targets if t.covers(d.address, pf.proto, pf.port)), None)
        if granted is not None and d.role != "router":
            who = f"access of peer {s.peer}" if s.peer else "invariant 2"
            return _Expect(who, f"{s.label} may reach {granted.text}", True)
        if d.role == "dmz":
            return _Expect("invariant 2", "VPN reaches nothing else in the DMZ", False)
        if d.role in ("lan", "router", "wan"):
            what = {"lan": "the LAN", "router": "router services", "wan": "the internet"}
            return _Expect("invariant 3", f"VPN -> {what[d.role]} denied", False)
        if d.role == "vpn":
            return _Expect("invariant 4", "VPN client <-> VPN client denied", False)
        return None
    if s.role == "dmz":
        if d.role in ("lan", "vpn"):
            return _Expect("invariant 5", f"DMZ -> {d.role.upper()} denied", False)
        if d.role == "wan":
            if svc in (("tcp", 80), ("tcp", 443)):
                return _Expect("invariant 5", "DMZ -> internet allowed (model downloads)", True)
            return None
        if d.role == "router":
            if svc in _DMZ_ROUTER:
                if d.address == dmz_router:
                    return _Expect("invariant 5", "DMZ -> router DHCP/DNS allowed", True)
                return None
            return _Expect("invariant 5", "DMZ -> router: DHCP/DNS only", False)
        return None
    if s.role == "lan" and d.role == "dmz":
        if not net.lan_to_dmz:
            return _Expect("invariant 6", "LAN -> DMZ denied (lan_to_dmz is off)", False)
        if d.address == net.server_address and svc in (("tcp", 22), ("tcp", net.api_port)):
            return _Expect("invariant 6", "LAN -> server allowed (lan_to_dmz)", True)
    return None


def _role(address: str, net: Network) -> str:
    """The role of an address no endpoint has, from the network's subnets (else ``wan``)."""
    for role, subnet in (("vpn", net.vpn_subnet), ("dmz", net.dmz_subnet),
                         ("lan", net.lan_subnet)):
        if _in(address, subnet):
            return role
    return "wan"


def _flow_zones(fw: Firewall, ep: Endpoint) -> set[str]:
    zones = {z.name for z in fw.zones_of_device(ep.device)} if ep.device else set()
    a = ipaddress.ip_address(ep.address)
    for z in fw.zones:
        if any(a in ipaddress.ip_network(n, strict=False) for n in z.subnets if "/" in n):
            zones.add(z.name)
    return zones


def _sid(label: str) -> tuple[str, str]:
    """``'web (Web)'`` -> ``('web', 'Web')``; ``'@redirect[0]'`` -> ``('@redirect[0]', '')``."""
    sid, _, rest = label.partition(" (")
    return sid, rest[:-1] if rest.endswith(")") else ""


class _Judge:
    """Judges probes; ``reexpect(probe)`` gives the expectation for where a port forward really
    delivers a packet (``None``: unconstrained)."""

    def __init__(self, fw: Firewall, ack: Iterable[str], eps: list[Endpoint], net: Network,
                 reexpect: Any = None) -> None:
        self.fw = fw
        self.net = net
        self.ack = set(ack)
        self.eps = eps
        self.reexpect = reexpect
        self.scoped = [f for f in fw.warnings if f.scope is not None
                       and not (set(_sid(f.section)) & self.ack)]
        self.labels = {f"{r.kind}:{r.section}": f"{r.kind}:{r.section} ({r.name})"
                       for r in fw.rules if r.name and r.name != r.section}

    def _delivered(self, pf: ProbeFlow, v: Verdict) -> ProbeFlow:
        """The probe as it arrives: a port forward changes its destination."""
        if v.dnat is None or not v.accepted:
            return pf
        to_addr, to_port = v.dnat.nat_to or (None, None)
        if to_addr is None:
            dst = next((e for e in self.eps if e.role == "router"), pf.dst)
        else:
            dst = next((e for e in self.eps if e.address == to_addr and e.role != "router"),
                       None) or Endpoint(f"address {to_addr}", _role(to_addr, self.net),
                                         to_addr, None)
        return ProbeFlow(pf.src, dst, pf.proto, to_port or pf.port, pf.sport)

    def judge(self, check: str, text: str, accept: bool, pf: ProbeFlow) -> Outcome | None:
        v = self.fw.verdict(pf.flow)
        sections = [self.labels.get(x, x) for x in v.sections]
        got = v.accepted
        real = self._delivered(pf, v)
        if real is not pf:
            got = real.dst.address == pf.dst.address and real.port == pf.port
            again = self.reexpect(real) if self.reexpect else None
            if again is not None and not again.accept:
                return Outcome("violated", again.check, again.text, pf, v, tuple(sections),
                               f"forwarded to {real.dst} {real.service}")
        if got != accept:
            return Outcome("violated", check, text, pf, v, tuple(sections))
        unknown = [o.split(":", 1)[1] for o in v.assumed_by if o.startswith(("rule:", "redirect:"))
                   and o.split(":", 1)[1] not in self.ack]
        why = [f"{', '.join(v.assumptions)} hold"] if unknown else []
        zones = _flow_zones(self.fw, pf.src) | _flow_zones(self.fw, pf.dst)
        for f in self.scoped:
            if "*" in f.scope or zones & set(f.scope):  # type: ignore[operator]
                unknown.append(_sid(f.section)[0])
                why.append(f"{f.message}")
        if unknown:
            return Outcome("unknown", check, text, pf, v, tuple(dict.fromkeys(unknown)),
                           "; ".join(dict.fromkeys(why)))
        return None


def _resolve_src(text: str, eps: list[Endpoint], net: Network, fw: Firewall) -> list[Endpoint]:
    by_peer = [e for e in eps if e.peer == text]
    if by_peer:
        return by_peer
    if text == "vpn":
        return [e for e in eps if e.role == "vpn" and e.peer] or \
            [e for e in eps if e.role == "vpn"]
    if text == "server":
        return [e for e in eps if e.label == "server"]
    if text in ("lan", "dmz", "internet", "wan"):
        role = "wan" if text in ("internet", "wan") else text
        return [e for e in eps if e.role == role and e.label != "server"] or \
            [e for e in eps if e.role == role]
    zone = [e for e in eps if e.role == f"zone:{text}"]
    if zone:
        return zone
    try:
        addr = str(ipaddress.ip_address(text))
    except ValueError:
        raise PolicyError(f"src {text!r} is not a peer, vpn, a zone, server, internet or an "
                          "address") from None
    same = [e for e in eps if e.address == addr and e.role != "router"]
    if same:
        return same
    dev = next((e.device for e in eps if e.device and e.role != "router" and e.role != "wan"
                and any(_in(addr, ipaddress.ip_interface(c).network)
                        for i in fw.interfaces.values() if i.device == e.device
                        for c in i.addresses)), None)
    wan = next(e.device for e in eps if e.role == "wan")
    return [Endpoint(f"address {addr}", "address", addr, dev or wan)]


def _test_probes(test: Mapping[str, Any], eps: list[Endpoint], net: Network, fw: Firewall,
                 plist: list[int]) -> list[ProbeFlow]:
    srcs = _resolve_src(str(test.get("src")), eps, net, fw)
    dst_text = str(test.get("dst"))
    proto = test.get("proto")
    if dst_text.split(":")[0] == "router":
        target = None
        dsts = [e for e in eps if e.role == "router"]
        port = dst_text.partition(":")[2]
    else:
        target = parse_target(dst_text + (f"/{proto}" if proto and "/" not in dst_text else ""),
                              net)
        n = ipaddress.ip_network(target.net)
        dsts = [e for e in eps if e.role == "wan"] if n.prefixlen == 0 else \
            [e for e in eps if e.role != "router" and _in(e.address, n)]
        if not dsts:
            host = target.net.split("/")[0] if n.num_addresses == 1 else \
                str(next(iter(n.hosts()))) if n.prefixlen else net.internet
            dev = next((e.device for e in eps if e.role == target.zone and e.device), None)
            dsts = [Endpoint(f"address {host}", target.zone, host, dev)]
        port = target.port or ""
    protos = [proto] if proto else (["tcp"] if port else ["tcp", "udp", "icmp", "esp", "gre"])
    out = []
    for s in srcs:
        for d in dsts:
            if d.address == s.address:
                continue
            for p in protos:
                if p in ("tcp", "udp"):
                    lo, _, hi = port.partition("-")
                    pl = sorted({int(lo), int(hi or lo)}) if port else plist
                    out += [ProbeFlow(s, d, p, x, SPORT) for x in pl]
                else:
                    out.append(ProbeFlow(s, d, p))
    return out


def prove(config: Mapping[str, Any], plan: Any, devices: Mapping[str, str] | None = None, *,
          addresses: Mapping[str, Any] | None = None) -> Report:
    """Check every invariant, every peer's access and every policy test on ``config``
    (``{"network": [...], "firewall": [...]}``); ``devices``/``addresses`` as for
    :func:`firewall.build` (a WAN without a static address gets a placeholder)."""
    report = Report()
    fw = build(config, devices, addresses=_with_wan_address(config, addresses))
    if fw.load_error:
        report.errors.append(f"the firewall would not load: {fw.load_error}")
        return report
    net = network_of(plan)
    access, errors = _access_targets(plan, net)
    report.errors += errors
    per_peer = declares_access(plan)
    dmz_router = str(plan.dmz_router_address)
    eps = endpoints(fw, net)
    places = {"wan": "the internet (no WAN zone with a device)",
              "vpn": f"VPN clients (interface {net.vpn_interface} has no device)",
              "dmz": f"the DMZ {net.dmz_subnet} (no interface with an address in it)",
              "lan": f"the LAN {net.lan_subnet} (no interface with an address in it)"}
    for role, what in places.items():
        if not any(e.role == role for e in eps):
            report.errors.append(f"the proof cannot place {what}: the invariants about it "
                                 "cannot be checked")
    judge = _Judge(fw, acknowledged(plan), eps, net,
                   lambda p: _expect(p, net, access, dmz_router, per_peer))
    for pf in flows(fw, net):
        exp = _expect(pf, net, access, dmz_router, per_peer)
        if exp is None:
            continue
        report.checked += 1
        out = judge.judge(exp.check, exp.text, exp.accept, pf)
        if out is not None:
            report.failures.append(out)
    plist = ports(fw, (net.api_port, net.vpn_port))
    for i, test in enumerate(policy_tests(plan), 1):
        expect = test.get("expect") if isinstance(test, Mapping) else None
        if expect not in ("accept", "deny"):
            report.errors.append(f"policy test {i}: expect must be 'accept' or 'deny', "
                                 f"got {expect!r}")
            continue
        try:
            probes = _test_probes(test, eps, net, fw, plist)
        except PolicyError as e:
            report.errors.append(f"policy test {i}: {e}")
            continue
        label = f"policy test {i}"
        text = f"{test['src']} -> {test['dst']} {expect}"
        for pf in probes:
            report.checked += 1
            out = judge.judge(label, text, expect == "accept", pf)
            if out is not None:
                report.failures.append(out)
    report.errors.extend(check_peers(config, plan))  # invariant 7
    return report


def _with_wan_address(config: Mapping[str, Any], addresses: Mapping[str, Any] | None
                      ) -> dict[str, Any]:
    from firewall.flows import WAN_PLACEHOLDER

    out = dict(addresses or {})
    zones = [s for s in config.get("firewall", []) if s.get("type") == "zone"
             and (s.get("options") or {}).get("name") == "wan"]
    nets = (zones[0]["options"].get("network") if zones else None) or []
    nets = nets if isinstance(nets, list) else str(nets).split()
    for s in config.get("network", []):
        o = s.get("options") or {}
        if s.get("name") in nets and not (o.get("ipaddr") or o.get("addresses")) \
                and o.get("proto") != "dhcpv6" and s["name"] not in out:
            out[s["name"]] = [WAN_PLACEHOLDER]
            break
    return out


def check(config: Mapping[str, Any], plan: Any, devices: Mapping[str, str] | None = None
          ) -> list[str]:
    """Every failure of :func:`prove` as one line each (empty: every invariant holds)."""
    report = prove(config, plan, devices)
    return report.errors + [str(f) for f in report.failures]


def check_peers(config: Mapping[str, Any], plan: Any) -> list[str]:
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

"""The verdict engine: :class:`Firewall` walks fw4's chains like nftables for the first packet
of a new connection."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from firewall.tables import _PROTO_ALIASES, _VERDICTS, ICMP4_TYPES, ICMP6_TYPES, PROTO_NUMBERS
from firewall.types import (
    Chain,
    Defaults,
    Entry,
    Finding,
    Flow,
    Interface,
    Match,
    Rule,
    RulesetLoadError,
    Verdict,
    Zone,
)


@dataclass
class Firewall:
    """The result of :func:`build`: parsed zones/rules, rendered chains, findings, verdicts."""

    defaults: Defaults
    zones: list[Zone]
    rules: list[Rule]
    chains: dict[str, Chain]
    warnings: list[Finding]
    interfaces: dict[str, Interface]

    @property
    def load_error(self) -> str | None:
        """Why nftables would refuse the whole ruleset, or ``None``."""
        fatal = [f for f in self.warnings if f.fatal]
        return "; ".join(str(f) for f in fatal) if fatal else None

    @property
    def skipped(self) -> list[Finding]:
        """Sections fw4 ignores entirely, with the reason."""
        return [f for f in self.warnings if f.skipped]

    def findings(self, kind: str) -> list[Finding]:
        """All findings of one ``kind``."""
        return [f for f in self.warnings if f.kind == kind]

    def zone(self, name: str) -> Zone | None:
        """The first zone called ``name`` (fw4 keeps duplicates), or ``None``."""
        return next((z for z in self.zones if z.name == name), None)

    def zones_of_device(self, device: str) -> list[Zone]:
        """Zones whose device match covers ``device`` (config order)."""
        return [z for z in self.zones if any(_ifmatch(device, d) for d in z.devices)]

    # -- verdicts ------------------------------------------------------------------------------

    def verdict(self, flow: Flow) -> Verdict:
        """Decide the first packet of a new connection, following fw4's chains like nftables:
        port forwards (``dstnat``) first, then the filter hook the (rewritten) packet takes.

        Raises :class:`RulesetLoadError` when fw4's ruleset for this config would not load.
        """
        if self.load_error:
            raise RulesetLoadError(self.load_error)
        pkt = self._packet(flow)
        hook = flow.chain
        trace: list[str] = []
        assumptions: list[str] = []
        assumed_by: list[str] = []
        nat = None
        if hook in ("input", "forward") and not flow.dnat:
            nat = self._dstnat(pkt, trace, assumptions, assumed_by)
            if nat is not None:
                pkt = self._rewrite(pkt, nat)
                hook = "input" if pkt.oif is None else "forward"
        path = self._run(hook, pkt, trace, assumptions, 0, assumed_by)
        base = self.chains[hook]
        extra = dict(assumptions=tuple(dict.fromkeys(assumptions)),
                     assumed_by=tuple(dict.fromkeys(assumed_by)), dnat=nat)
        after = f" after DNAT by {nat.origin} ({nat.verdict_text})" if nat else ""
        if path is None:
            policy = base.policy or "accept"
            return Verdict(policy, hook, None, f"policy {policy} of chain {hook} "
                           f"(defaults.{hook}; no rule matched){after}", tuple(trace), **extra)
        action, steps = path
        chain, entry = _deciding_step(steps)
        return Verdict(action, chain, entry, _reason(chain, entry, self) + after,
                       tuple(trace), **extra)

    def router_addresses(self) -> dict[str, str]:
        """The router's own addresses: ``{address: interface}`` (static and runtime)."""
        return {str(ipaddress.ip_interface(a).ip): i.name for i in self.interfaces.values()
                for a in i.addresses}

    def _dstnat(self, pkt: _Packet, trace: list[str], assumptions: list[str],
                assumed_by: list[str]) -> Entry | None:
        """The port forward (DNAT/redirect entry) that rewrites ``pkt``, or ``None``."""
        for jump in self.chains.get("dstnat", Chain("dstnat")).entries:
            cond: list[str] = []
            if jump.action != "jump" or not _matches(jump.match, pkt, cond):
                continue
            for entry in self.chains.get(jump.arg or "", Chain("")).entries:
                cond = []
                if entry.action in ("dnat", "redirect") and _matches(entry.match, pkt, cond):
                    trace.append(f"dstnat: {jump.nft()}")
                    trace.append(f"{jump.arg}: {entry.nft()}")
                    if cond:
                        assumptions.extend(cond)
                        assumed_by.append(entry.origin)
                    return entry
        return None

    def _rewrite(self, pkt: _Packet, nat: Entry) -> _Packet:
        """The packet after DNAT, routed: to the router (input) or out of the zone of its new
        destination (forward)."""
        to_addr, to_port = nat.nat_to or (None, None)
        daddr = to_addr or pkt.daddr
        oif = pkt.oif
        if nat.action == "redirect" or (to_addr and to_addr in self.router_addresses()):
            oif = None
        elif to_addr:
            a = ipaddress.ip_address(to_addr)
            zone = next((z for z in self.zones for n in z.related_subnets
                         if a in ipaddress.ip_network(n, strict=False)), None)
            if zone is not None:
                oif = self._device(zone.name)
            elif oif is None:
                wan = next((z for z in self.zones if z.masq), None)
                oif = self._device(wan.name) if wan else "<default route>"
        return replace(pkt, daddr=daddr, dport=to_port if to_port is not None else pkt.dport,
                       oif=oif, dnat=True)

    def _packet(self, flow: Flow) -> _Packet:
        proto = flow.proto.lower()
        proto = _PROTO_ALIASES.get(proto, proto)
        if proto in ("all", "any", "*"):
            raise ValueError("a flow needs one concrete protocol")
        family = flow.family
        for ip in (flow.src_ip, flow.dest_ip):
            if ip is not None:
                f = ipaddress.ip_address(ip).version
                if family is not None and family != f:
                    raise ValueError(f"flow mixes IPv{family} and IPv{f}")
                family = f
        if family is None:
            family = 6 if proto == "ipv6-icmp" else 4
        if proto == "icmp" and family == 6:
            proto = "ipv6-icmp"
        icmp_type = flow.icmp_type
        if proto in ("icmp", "ipv6-icmp"):
            table = ICMP4_TYPES if proto == "icmp" else ICMP6_TYPES
            if icmp_type is None:
                icmp_type = "echo-request"
            if isinstance(icmp_type, str):
                t = table.get(icmp_type)
                if t is None:
                    raise ValueError(f"unknown ICMP type {icmp_type!r}")
                icmp_type, code = t[0], t[1]
            else:
                code = 0
            icmp_code = flow.icmp_code if flow.icmp_code is not None else code
        else:
            icmp_type, icmp_code = None, None
        return _Packet(
            iif=self._device(flow.iif), oif=self._device(flow.oif), family=family,
            l4proto=proto, saddr=flow.src_ip, daddr=flow.dest_ip, sport=flow.src_port,
            dport=flow.dest_port, icmp_type=icmp_type, icmp_code=icmp_code,
            smac=flow.src_mac.lower() if flow.src_mac else None, dnat=flow.dnat)

    def _device(self, name: str | None) -> str | None:
        if name is None:
            return None
        zone = self.zone(name)
        if zone is not None:
            plain = [d for d in zone.devices if not d.endswith("*")]
            if plain:
                return plain[0]
            if zone.devices:
                return zone.devices[0][:-1] + "0"
            return f"<{name}>"  # zone without devices: only its subnet can match
        iface = self.interfaces.get(name)
        if iface is not None and iface.device:
            return iface.device
        return name

    def _run(self, name: str, pkt: _Packet, trace: list[str], assumptions: list[str],
             depth: int, assumed_by: list[str] | None = None
             ) -> tuple[str, list[tuple[str, Entry]]] | None:
        if depth > 32:
            raise RuntimeError(f"jump loop at chain {name}")
        chain = self.chains.get(name)
        if chain is None:
            raise RulesetLoadError(f"jump to undefined chain {name}")
        for entry in chain.entries:
            cond: list[str] = []
            if not _matches(entry.match, pkt, cond):
                continue
            assumptions.extend(cond)
            if cond and assumed_by is not None:
                assumed_by.append(entry.origin)
            act = entry.action
            trace.append(f"{name}: {entry.nft()}")
            if act in _VERDICTS:
                return act, [(name, entry)]
            if act in ("jump", "goto"):
                assert entry.arg is not None
                sub = self._run(entry.arg, pkt, trace, assumptions, depth + 1, assumed_by)
                if sub is not None:
                    return sub[0], [(name, entry), *sub[1]]
                if act == "goto":
                    return None
                continue
            if act == "return":
                return None
            # no verdict (counter only / statement): continue with the next rule
        return None


def _deciding_step(steps: list[tuple[str, Entry]]) -> tuple[str, Entry]:
    """The step that explains a verdict: the innermost rule, forwarding, zone policy or
    defaults policy on the path (not the zone's verdict chain or handle_reject)."""
    for chain, entry in reversed(steps):
        o = entry.origin
        if o.startswith(("rule:", "forwarding:", "defaults.")) or o.count(":") == 2:
            return chain, entry
    for chain, entry in reversed(steps):
        if chain != "handle_reject":
            return chain, entry
    return steps[-1]


def _reason(chain: str, entry: Entry, fw: Firewall) -> str:
    o = entry.origin
    comment = entry.comment or entry.nft()
    if o.startswith("rule:") or o.startswith("forwarding:"):
        return f"{o.split(':', 1)[0]} {comment!r} in chain {chain}"
    if o.startswith("zone:") and o.count(":") == 2:
        _, zname, direction = o.split(":")
        z = fw.zone(zname)
        pol = getattr(z, direction).upper() if z else "?"
        return f"zone {zname} {direction} policy {pol} (chain {chain})"
    if o.startswith("defaults."):
        what = o.split(".", 1)[1]
        return f"defaults.{what} {getattr(fw.defaults, what).upper()} (end of chain {chain})"
    return f"{comment!r} in chain {chain}"


# ---------------------------------------------------------------------------------------------
# Packet matching
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Packet:
    iif: str | None
    oif: str | None
    family: int
    l4proto: str
    saddr: str | None
    daddr: str | None
    sport: int | None
    dport: int | None
    icmp_type: int | None
    icmp_code: int | None
    smac: str | None
    dnat: bool


def _proto_eq(a: str, b: str) -> bool:
    if a == b:
        return True
    na = int(a) if a.isdigit() else PROTO_NUMBERS.get(a)
    nb = int(b) if b.isdigit() else PROTO_NUMBERS.get(b)
    return na is not None and na == nb


def _ifmatch(dev: str, pattern: str) -> bool:
    return dev.startswith(pattern[:-1]) if pattern.endswith("*") else dev == pattern


def _addr_in(ip: str, spec: str) -> bool:
    a = ipaddress.ip_address(ip)
    if "-" in spec:
        lo, hi = (ipaddress.ip_address(x) for x in spec.split("-", 1))
        return lo.version == a.version and lo <= a <= hi  # type: ignore[operator]
    net = ipaddress.ip_network(spec, strict=False)
    return net.version == a.version and a in net


def _masked_eq(ip: str, addr: str, mask: str) -> bool:
    a, m, x = (int(ipaddress.ip_address(v)) for v in (ip, mask, addr))
    return (a & m) == x


def _port_in(port: int, spec: str) -> bool:
    lo, _, hi = spec.partition("-")
    return int(lo) <= port <= int(hi or lo)


def _matches(m: Match, p: _Packet, cond: list[str]) -> bool:  # noqa: C901 - flat checklist
    if m.family and m.family != p.family:
        return False
    if m.l4proto and not any(_proto_eq(p.l4proto, x) for x in m.l4proto):
        return False
    for dev, pos, neg, wild in ((p.iif, m.iifname, m.iifname_neg, m.iifname_neg_wild),
                                (p.oif, m.oifname, m.oifname_neg, m.oifname_neg_wild)):
        if pos or neg or wild:
            if dev is None:  # no such interface in this hook: nft's meta match breaks
                return False
            if pos and not any(_ifmatch(dev, x) for x in pos):
                return False
            if any(_ifmatch(dev, x) for x in (*neg, *wild)):
                return False
    for ip, pos, neg, masked in ((p.saddr, m.saddr, m.saddr_neg, m.saddr_masked),
                                 (p.daddr, m.daddr, m.daddr_neg, m.daddr_masked)):
        if pos and (ip is None or not any(_addr_in(ip, s) for s in pos)):
            return False
        if neg and ip is not None and any(_addr_in(ip, s) for s in neg):
            return False
        for addr, mask, inv in masked:
            hit = ip is not None and ipaddress.ip_address(ip).version == p.family and \
                _masked_eq(ip, addr, mask)
            if hit == inv:
                return False
    for port, pos, neg in ((p.sport, m.sport, m.sport_neg), (p.dport, m.dport, m.dport_neg)):
        if pos and (port is None or not any(_port_in(port, s) for s in pos)):
            return False
        if neg and port is not None and any(_port_in(port, s) for s in neg):
            return False
    if m.smac and (p.smac is None or p.smac not in m.smac):
        return False
    if m.smac_neg and p.smac is not None and p.smac in m.smac_neg:
        return False
    if m.icmp_type and p.icmp_type not in m.icmp_type:
        return False
    if m.icmp_code and (p.icmp_type, p.icmp_code) not in m.icmp_code:
        return False
    if m.ct_state and "new" not in m.ct_state:
        return False
    if m.ct_status == "dnat" and not p.dnat:
        return False
    if m.tcp_flags and p.l4proto != "tcp":  # first packet of a new TCP connection is a SYN
        return False
    cond.extend(m.conditions)
    return True

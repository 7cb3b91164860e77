"""Chain construction in fw4's order (templates/ruleset.uc of 23.05)."""

from __future__ import annotations

from typing import Any

from firewall.syntax import _nfproto
from firewall.tables import _VERDICTS
from firewall.types import Chain, Entry, Match, Zone
from firewall.values import _group_by_masking


class _Chains:
    def __init__(self, b: Any) -> None:
        self.b = b
        self.d = b.defaults
        self.chains: dict[str, Chain] = {}

    def add(self, name: str, entries: list[Entry] | None = None, **kw: Any) -> Chain:
        c = Chain(name, entries or [], **kw)
        self.chains.setdefault(name, c)  # duplicate zone names: keep the first (load fails)
        return c

    def rules(self, chain: str) -> list[Entry]:
        return [e for r in self.b.rules if r.chain == chain for e in r.entries]

    def jumps(self, direction: str, egress: bool, zones: list[Zone] | None = None,
              predicate: Any = None) -> list[Entry]:
        out = []
        for z in self.b.zones if zones is None else zones:
            if predicate is not None and not predicate(z):
                continue
            what = "helper assignment" if direction == "helper" else f"{direction} traffic"
            for r in z.match_rules:
                out.append(Entry(r.as_match(egress), "jump", f"{direction}_{z.name}",
                                 comment=f"Handle {z.name} {_nfproto(r.family, True)} {what}",
                                 origin=f"zone:{z.name}"))
        return out

    def build(self) -> dict[str, Chain]:
        d = self.d
        zones = self.b.zones
        ct = Match(ct_state=("established", "related"))
        invalid = [Entry(Match(ct_state=("invalid",)), "drop",
                         comment="Drop flows with invalid conntrack state")] \
            if d.drop_invalid else []

        def hr(policy: str, hook: str) -> list[Entry]:
            return [Entry(Match(), "jump", "handle_reject", origin=f"defaults.{hook}")] \
                if policy == "reject" else []

        def pol(p: str) -> str:
            return "drop" if p == "reject" else p

        syn = [Entry(Match(tcp_flags="tcp flags & (fin | syn | rst | ack) == syn"), "jump",
                     "syn_flood", comment="Rate limit TCP syn packets")] \
            if d.synflood_protect and d.synflood_rate else []
        self.add("input", [
            Entry(Match(iifname=("lo",)), "accept", comment="Accept traffic from loopback"),
            Entry(ct, "accept", comment="Allow inbound established and related flows"),
            *invalid, *syn, *self.rules("input"), *self.jumps("input", False),
            *hr(d.input, "input"),
        ], hook="input", policy=pol(d.input))
        self.add("forward", [
            Entry(ct, "accept", comment="Allow forwarded established and related flows"),
            *invalid, *self.rules("forward"), *self.jumps("forward", False),
            *hr(d.forward, "forward"),
        ], hook="forward", policy=pol(d.forward))
        self.add("output", [
            Entry(Match(oifname=("lo",)), "accept", comment="Accept traffic towards loopback"),
            Entry(ct, "accept", comment="Allow outbound established and related flows"),
            *invalid, *self.rules("output"), *self.jumps("output", True),
            *hr(d.output, "output"),
        ], hook="output", policy=pol(d.output))
        helper_zones = [z for z in zones if "helper" in z.dflags]
        self.add("prerouting", [
            e for e in self.jumps("helper", False, helper_zones)
            if e.match.iifname != ("lo",)
        ], hook="prerouting", policy="accept")

        def code(c: str) -> str:
            return "tcp reset" if c == "tcp-reset" else f"icmpx type {c}"

        self.add("handle_reject", [
            Entry(Match(l4proto=("tcp",)), "reject", code(d.tcp_reject_code),
                  comment="Reject TCP traffic"),
            Entry(Match(), "reject", code(d.any_reject_code), comment="Reject any other traffic"),
        ])
        if syn:
            rate, unit = d.synflood_rate
            burst = f" burst {d.synflood_burst} packets" if d.synflood_burst else ""
            self.add("syn_flood", [
                Entry(Match(conditions=(f"limit rate {rate}/{unit}{burst}",)), "return",
                      comment="Accept SYN packets below rate-limit"),
                Entry(Match(), "drop", comment="Drop excess packets"),
            ])
        for z in zones:
            self.zone_chains(z)
        self.nat_chains(zones)
        self.add("raw_prerouting", self.jumps(
            "notrack", False, [z for z in zones if "notrack" in z.dflags]),
            hook="prerouting", priority="raw", policy="accept")
        self.add("raw_output", hook="output", priority="raw", policy="accept")
        for z in zones:
            if "notrack" in z.dflags:
                self.add(f"notrack_{z.name}")
        self.add("mangle_prerouting", hook="prerouting", priority="mangle", policy="accept")
        self.add("mangle_postrouting", hook="postrouting", priority="mangle", policy="accept")
        self.add("mangle_input", hook="input", priority="mangle", policy="accept")
        self.add("mangle_output", hook="output", type="route", priority="mangle",
                 policy="accept")
        mss = []
        for z in zones:
            if not z.mtu_fix:
                continue
            for r in z.match_rules:
                for egress in (False, True):
                    mss.append(Entry(
                        Match(**{**_zm_kwargs(r.as_match(egress)), "tcp_flags": "tcp flags syn"}),
                        None, statement="tcp option maxseg size set rt mtu",
                        comment=f"Zone {z.name} {_nfproto(r.family, True)} "
                        f"{'egress' if egress else 'ingress'} MTU fixing", origin=f"zone:{z.name}"))
        self.add("mangle_forward", mss, hook="forward", priority="mangle", policy="accept")
        return self.chains

    def zone_chains(self, z: Zone) -> None:
        n = z.name
        dnat = "dnat" in z.dflags
        pfx = f"zone:{n}"
        self.add(f"input_{n}", [
            *self.rules(f"input_{n}"),
            *([Entry(Match(ct_status="dnat"), "accept", comment="Accept port redirections",
                     origin=pfx)] if dnat else []),
            Entry(Match(), "jump", f"{z.input}_from_{n}", origin=f"{pfx}:input"),
        ])
        self.add(f"output_{n}", [
            *self.rules(f"output_{n}"),
            Entry(Match(), "jump", f"{z.output}_to_{n}", origin=f"{pfx}:output"),
        ])
        log_fwd = []
        if self.d.forward != "accept" and z.log & 1:
            log_fwd = [Entry(Match(), None, statement=f'log prefix "{self.d.forward} {n} '
                             'forward: "', origin=pfx)]
        self.add(f"forward_{n}", [
            *self.rules(f"forward_{n}"),
            *([Entry(Match(ct_status="dnat"), "accept", comment="Accept port forwards",
                     origin=pfx)] if dnat else []),
            Entry(Match(), "jump", f"{z.forward}_to_{n}", origin=f"{pfx}:forward"),
            *log_fwd,
        ])
        if "helper" in z.dflags:
            self.add(f"helper_{n}")
        for v in _VERDICTS:
            for egress, flags, kind in ((False, z.sflags, "from"), (True, z.dflags, "to")):
                if v not in flags:
                    continue
                entries = []
                for r in z.match_rules:
                    if egress and v == "accept" and (z.masq or z.masq6) and \
                            not z.masq_allow_invalid:
                        fam = (4 if z.masq else 6) if z.masq != z.masq6 else 0
                        entries.append(Entry(
                            Match(**{**_zm_kwargs(r.as_match(True)), "family": fam or r.family,
                                     "ct_state": ("invalid",)}),
                            "drop", counter=z.counter, comment="Prevent NAT leakage",
                            origin=pfx))
                    log = f"{v} {n} {'out' if egress else 'in'}: " \
                        if v != "accept" and z.log & 1 else None
                    action, arg = ("jump", "handle_reject") if v == "reject" else (v, None)
                    entries.append(Entry(
                        r.as_match(egress), action, arg, counter=z.counter, log_prefix=log,
                        comment=f"{v} {n} {_nfproto(r.family, True)} traffic", origin=pfx))
                self.add(f"{v}_{kind}_{n}", entries)

    def nat_chains(self, zones: list[Zone]) -> None:
        self.add("dstnat", self.jumps("dstnat", False, zones, lambda z: "dnat" in z.dflags),
                 hook="prerouting", type="nat", priority="dstnat", policy="accept")
        self.add("srcnat", self.jumps("srcnat", True, zones, lambda z: "snat" in z.dflags),
                 hook="postrouting", type="nat", priority="srcnat", policy="accept")
        nat = self.b.nat_entries
        for z in zones:
            if "dnat" in z.dflags:
                self.add(f"dstnat_{z.name}", list(nat.get(f"dstnat_{z.name}", [])))
            if "snat" not in z.dflags:
                continue
            entries = list(nat.get(f"srcnat_{z.name}", []))
            for fam, on in ((4, z.masq), (6, z.masq6)):
                if not on:
                    continue
                src = _group_by_masking([a for a in z.masq_src if a.family == fam])
                dst = _group_by_masking([a for a in z.masq_dest if a.family == fam])
                for sa in src:
                    for da in dst:
                        entries.append(Entry(Match(
                            family=fam, show_nfproto=True,
                            saddr=tuple(a.text for a in sa[0] or ()),
                            saddr_neg=tuple(a.text for a in sa[1] or ()),
                            daddr=tuple(a.text for a in da[0] or ()),
                            daddr_neg=tuple(a.text for a in da[1] or ()),
                        ), "masquerade", comment=f"Masquerade {_nfproto(fam, True)} {z.name} "
                            "traffic", origin=f"zone:{z.name}"))
            self.add(f"srcnat_{z.name}", entries)


def _zm_kwargs(m: Match) -> dict[str, Any]:
    return {k: getattr(m, k) for k in Match.__dataclass_fields__}

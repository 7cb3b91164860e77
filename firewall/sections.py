"""Parsing of ``rule``, ``forwarding`` and ``redirect`` sections into :class:`Rule` entries
(fw4's ``parse_rule``/``parse_forwarding``/``parse_redirect``)."""

from __future__ import annotations

import re
from typing import Any

from firewall.syntax import _nfproto, _nft_set
from firewall.tables import _ANY, _CT_HELPERS, PROTO_NUMBERS
from firewall.types import Entry, Match, Rule, Zone
from firewall.values import (
    _FWD_OPTS,
    _RULE_OPTS,
    _TARGETS,
    _enum,
    _flatten,
    _group_by_masking,
    _infer_family,
    _Invalid,
    _invert,
    _parse_bool,
    _parse_date,
    _parse_dscp,
    _parse_family,
    _parse_helper_match,
    _parse_icmptype,
    _parse_int,
    _parse_limit,
    _parse_mac,
    _parse_mark,
    _parse_port,
    _parse_protocol,
    _parse_time,
    _parse_weekdays,
    _Sec,
    _split_af,
)


class _SectionParsing:
    """Mixin of the builder: rule, forwarding and redirect sections."""

    def _rule(self, s: _Sec) -> None:  # noqa: C901 - mirrors fw4's parse_rule
        try:
            enabled = s.opt("enabled", _parse_bool, "1")
            name = s.opt("name", lambda v: v, s.sid)
            family = s.opt("family", _parse_family)
            src = s.opt("src", self._zone_ref)
            dest = s.opt("dest", self._zone_ref)
            device = s.opt("device", _invert)
            direction = s.opt("direction", lambda v: {"in": False, "ingress": False,
                                                      "out": True, "egress": True}.get(v))
            ipset = s.opt("ipset", _invert)
            helper = s.opt("helper", _parse_helper_match)
            s.opt("set_helper", lambda v: v if v in _CT_HELPERS else None)
            protos = _flatten(s.lst("proto", _parse_protocol, "tcpudp") or [])
            src_ip = s.lst("src_ip", self._network) or []
            src_mac = s.lst("src_mac", _parse_mac) or []
            src_port = s.lst("src_port", _parse_port) or []
            dest_ip = s.lst("dest_ip", self._network) or []
            dest_port = s.lst("dest_port", _parse_port) or []
            icmp_type = s.lst("icmp_type", _parse_icmptype) or []
            limit = s.opt("limit", _parse_limit)
            limit_burst = s.opt("limit_burst", _parse_int)
            s.opt("utc_time", _parse_bool)
            start_date = s.opt("start_date", _parse_date)
            stop_date = s.opt("stop_date", _parse_date)
            start_time = s.opt("start_time", _parse_time)
            stop_time = s.opt("stop_time", _parse_time)
            weekdays = s.opt("weekdays", _parse_weekdays)
            mark = s.opt("mark", _parse_mark)
            s.opt("set_mark", _parse_mark)
            s.opt("set_xmark", _parse_mark)
            dscp = s.opt("dscp", _parse_dscp)
            s.opt("set_dscp", _parse_dscp)
            counter = s.opt("counter", _parse_bool, "1")
            log = s.opt("log", lambda v: v)
            s.opt("log_limit", _parse_limit)
            target = s.opt("target", lambda v: _enum(v, _TARGETS))
        except _Invalid as e:
            kind = "unknown_zone" if re.search(r"option '(src|dest)' specifies", str(e)) else \
                "invalid_option"
            extra = ""
            if kind == "unknown_zone":
                extra = " (a skipped REJECT/DROP fails open)"
            self.warn(kind, s.label(), f"{e}; rule skipped{extra}", skipped=True)
            return
        if not enabled:
            self.warn("disabled", s.label(), "is disabled, ignoring section", skipped=True)
            return
        s.unknown(_RULE_OPTS)
        label = s.label()
        for proto in protos:
            pname = proto.get("name")
            if pname is None or pname in PROTO_NUMBERS or pname.isdigit():
                continue
            if not re.fullmatch(r"[a-z][a-z0-9_.+-]*", pname):
                self.warn("invalid_protocol", label, f"protocol {pname!r} makes fw4 render an "
                          "invalid ruleset (a list item is not split on spaces)", fatal=True)
                return
            self.warn("unknown_protocol", label, f"protocol {pname!r} is not a well-known name: "
                      "nft must find it in /etc/protocols")
        src_zone = src if isinstance(src, Zone) else None
        dest_zone = dest if isinstance(dest, Zone) else None
        if target in ("helper", "notrack") and src_zone is None:
            self.warn("invalid_option", label, f"must specify a source zone for target "
                      f"'{target}'", skipped=True)
            return
        if device is not None and device[1] == "*":
            self.warn("invalid_option", label, "must not specify '*' as device", skipped=True)
            return
        if ipset is not None and ipset[1].split()[0] not in self.ipsets:
            self.warn("invalid_option", label, f"references unknown set '{ipset[1]}'",
                      skipped=True)
            return
        if target in ("mark", "dscp", "notrack", "helper"):
            if target == "notrack" and src_zone:
                src_zone.dflags.add("notrack")
            if target == "helper" and src_zone:
                src_zone.dflags.add("helper")
            scope = (src_zone.name,) if target in ("notrack", "helper") and src_zone else None
            self.warn("not_modelled", label, f"target '{target}' is not modelled (it never "
                      "gives a filter verdict)", scope=scope)
            return
        if target in ("dnat", "snat", "masquerade"):
            self.warn("invalid_target", label, f"target '{target}' in a rule makes fw4 render "
                      "an invalid ruleset", fatal=True)
            return
        if log is not None:
            lb = _parse_bool(log)
            log = f"{name}: " if lb else None if lb is False else log

        src_ref = "*" if src == "*" else src_zone.name if src_zone else None
        dest_ref = "*" if dest == "*" else dest_zone.name if dest_zone else None
        if src_ref is None:
            chain = "output" if dest_ref in (None, "*") else f"output_{dest_ref}"
        elif src_ref == "*":
            chain = "forward" if dest_ref else "input"
        else:
            chain = f"{'forward' if dest_ref else 'input'}_{src_ref}"
        jump_chain = None
        if target and dest_zone is not None:
            jump_chain = f"{target}_to_{dest_zone.name}"
            dest_zone.dflags.add(target)
        elif target and src_zone is not None and src_zone.log and target != "accept":
            jump_chain = f"{target}_from_{src_zone.name}"
            src_zone.sflags.add(target)
        elif target == "reject":
            jump_chain = "handle_reject"

        conditions: list[str] = []
        if helper:
            conditions.append(f"ct helper{' !=' if helper[0] else ''} \"{helper[1]}\"")
        if limit:
            burst = f" burst {limit_burst} packets" if limit_burst else ""
            conditions.append(f"limit rate {limit[0]}/{limit[1]}{burst}")
        if start_date and stop_date:
            conditions.append(f"meta time {start_date}-{stop_date}")
        elif start_date or stop_date:
            conditions.append(f"meta time {'>=' if start_date else '<='} "
                              f"{start_date or stop_date}")
        if start_time and stop_time:
            conditions.append(f"meta hour {start_time}-{stop_time}")
        elif start_time or stop_time:
            conditions.append(f"meta hour {'>=' if start_time else '<='} "
                              f"{start_time or stop_time}")
        if weekdays:
            conditions.append(f"meta day{' !=' if weekdays[0] else ''} "
                              f"{_nft_set(weekdays[1])}")
        if mark:
            inv, mk, mask = mark
            if mask < 0xFFFFFFFF:
                conditions.append(f"meta mark and {mask:#x} {'!=' if inv else '=='} {mk:#x}")
            else:
                conditions.append(f"meta mark{' !=' if inv else ''} {mk:#x}")
        if ipset:
            conditions.append(f"<ipset {ipset[1]}>")
            self.warn("not_modelled", label, "ipset matches are assumed to match")

        rule = Rule(s.sid, name, "rule", src_ref, dest_ref, target, chain, jump_chain,
                    family or 0)
        iif = oif = ()
        if device is not None:
            if direction:
                oif = (device[1],)
            else:
                iif = (device[1],)
        zfam = [(src_zone.family if src_zone else 0, "source zone"),
                (dest_zone.family if dest_zone else 0, "destination zone")]
        for proto in protos or []:
            pname = proto.get("name")
            itypes4 = itypes6 = []
            sports = dports = []
            fam = family
            if pname == "icmp":
                itypes4 = [t for t in icmp_type if t["family"] in (0, 4)]
                itypes6 = [t for t in icmp_type if t["family"] in (0, 6)]
            elif pname == "ipv6-icmp":
                fam = 6
                itypes6 = [t for t in icmp_type if t["family"] in (0, 6)]
            elif pname in ("tcp", "udp"):
                sports, dports = src_port, dest_port
            sip = _split_af(src_ip)
            dip = _split_af(dest_ip)
            inferred = _infer_family(fam, [(sip.get("family", 0), "source IP"),
                                           (dip.get("family", 0), "destination IP"), *zfam])
            if isinstance(inferred, str):
                self.warn("family_mismatch", label, f"{inferred}, skipping", skipped=True)
                continue
            fam = inferred
            has4 = bool(sip.get(4) or dip.get(4) or itypes4 or dscp is not None)
            has6 = bool(sip.get(6) or dip.get(6) or itypes6 or dscp is not None)
            if fam is None:
                fam = 4 if has4 and not has6 else 6 if has6 and not has4 else 0
            common = dict(proto=proto, sports=sports, dports=dports, iif=iif, oif=oif,
                          smacs=src_mac, conditions=conditions, dscp=dscp, counter=counter,
                          log=log, name=name, target=target, jump_chain=jump_chain,
                          origin=f"rule:{s.sid}")
            if not fam and not has4 and not has6:
                rule.entries.append(_rule_entry(0, [None, None, None], [None, None, None],
                                                None, None, **common))
                continue
            for f, itypes, key in ((4, itypes4, "type"), (6, itypes6, "type6")):
                if fam not in (0, f):
                    continue
                cmin, cmax = ("cmin", "cmax") if f == 4 else ("cmin6", "cmax6")
                types = [t[key] for t in itypes if t[cmin] == 0 and t[cmax] == _ANY]
                codes = [(t[key], t[cmin]) for t in itypes
                         if not (t[cmin] == 0 and t[cmax] == _ANY)]
                for sa in _group_by_masking(sip.get(f, [])):
                    for da in _group_by_masking(dip.get(f, [])):
                        if types or not codes:
                            rule.entries.append(_rule_entry(f, sa, da, types, None, **common))
                        if codes:
                            rule.entries.append(_rule_entry(f, sa, da, None, codes, **common))
        if rule.entries:
            rule.family = rule.entries[0].match.family if len(
                {e.match.family for e in rule.entries}) == 1 else 0
        self.rules.append(rule)
        if target is None:
            self.warn("rule_without_target", label, "rule has no 'target': fw4 renders a "
                      "counter without verdict, it never accepts or rejects")
        if src_ref is None and dest_ref not in (None, "*"):
            self.warn("rule_dest_without_src", label, f"rule has 'dest' {dest_ref!r} but no "
                      f"'src': it filters the router's own output (chain {chain}), not "
                      "forwarded traffic")
        if target in ("reject", "drop") and "proto" not in s.opts:
            self.warn("block_rule_tcpudp_only", label, f"{target.upper()} rule without "
                      "'proto' covers only TCP and UDP (use proto 'all')")

    def _forwarding(self, s: _Sec) -> None:
        try:
            enabled = s.opt("enabled", _parse_bool, "1")
            name = s.opt("name", lambda v: v)
            family = s.opt("family", _parse_family)
            src = s.opt("src", self._zone_ref, required=True)
            dest = s.opt("dest", self._zone_ref, required=True)
        except _Invalid as e:
            kind = "unknown_zone" if re.search(r"option '(src|dest)' specifies", str(e)) else \
                "invalid_option"
            self.warn(kind, s.label(), f"{e}; forwarding skipped", skipped=True)
            return
        if not enabled:
            self.warn("disabled", s.label(), "is disabled, ignoring section", skipped=True)
            return
        s.unknown(_FWD_OPTS)
        src_zone = src if isinstance(src, Zone) else None
        dest_zone = dest if isinstance(dest, Zone) else None
        fam = _infer_family(family, [(src_zone.family if src_zone else 0, "source zone"),
                                     (dest_zone.family if dest_zone else 0,
                                      "destination zone")])
        if isinstance(fam, str):
            self.warn("family_mismatch", s.label(), f"{fam}, skipping", skipped=True)
            return
        fam = fam or 0
        sname = src_zone.name if src_zone else "any"
        dname = dest_zone.name if dest_zone else "any"
        fam_txt = f"{_nfproto(fam, True)} " if fam else ""
        name = name or f"Accept {sname} to {dname} {fam_txt}forwarding"
        chain = f"forward_{src_zone.name}" if src_zone else "forward"
        if dest_zone:
            entry = Entry(Match(family=fam), "jump", f"accept_to_{dest_zone.name}",
                          comment=name, origin=f"forwarding:{s.sid}")
            dest_zone.dflags.add("accept")
        else:
            entry = Entry(Match(family=fam), "accept", comment=name,
                          origin=f"forwarding:{s.sid}")
        self.rules.append(Rule(s.sid, name, "forwarding", src_zone.name if src_zone else "*",
                               dest_zone.name if dest_zone else "*", "accept", chain,
                               entry.arg, fam, [entry]))


def _rule_entry(family: int, saddrs: list[Any], daddrs: list[Any], icmp_types: list[int] | None,
                icmp_codes: list[tuple[int, int]] | None, *, proto: dict[str, Any],
                sports: list[tuple[bool, str]], dports: list[tuple[bool, str]],
                iif: tuple[str, ...], oif: tuple[str, ...], smacs: list[tuple[bool, str]],
                conditions: list[str], dscp: tuple[bool, int] | None, counter: bool,
                log: str | None, name: str, target: str | None, jump_chain: str | None,
                origin: str) -> Entry:
    has_addrs = any(saddrs) or any(daddrs)
    has_ports = bool(sports or dports)
    pname = proto.get("name")
    if proto.get("any"):
        l4: tuple[str, ...] = ()
    elif pname == "icmp":
        l4 = ("icmp",) if family == 4 else ("ipv6-icmp",) if family == 6 else \
            ("icmp", "ipv6-icmp")
    else:
        l4 = (pname,)
    conds = list(conditions)
    if dscp is not None and family in (4, 6):
        ipp = "ip" if family == 4 else "ip6"
        conds.append(f"{ipp} dscp{' !=' if dscp[0] else ''} {dscp[1]:#x}")
    m = Match(
        family=family, l4proto=l4, iifname=iif, oifname=oif,
        saddr=tuple(a.text for a in saddrs[0] or ()),
        saddr_neg=tuple(a.text for a in saddrs[1] or ()),
        saddr_masked=tuple((a.masked[0], a.masked[1], a.invert) for a in saddrs[2] or ()
                           if a.masked),
        daddr=tuple(a.text for a in daddrs[0] or ()),
        daddr_neg=tuple(a.text for a in daddrs[1] or ()),
        daddr_masked=tuple((a.masked[0], a.masked[1], a.invert) for a in daddrs[2] or ()
                           if a.masked),
        sport=tuple(p for inv, p in sports if not inv),
        sport_neg=tuple(p for inv, p in sports if inv),
        dport=tuple(p for inv, p in dports if not inv),
        dport_neg=tuple(p for inv, p in dports if inv),
        smac=tuple(mac for inv, mac in smacs if not inv),
        smac_neg=tuple(mac for inv, mac in smacs if inv),
        icmp_type=tuple(icmp_types or ()), icmp_code=tuple(icmp_codes or ()),
        conditions=tuple(conds),
        show_nfproto=not has_addrs,
        show_l4proto=not has_ports and not icmp_types and not icmp_codes,
    )
    if jump_chain:
        action, arg = "jump", jump_chain
    else:
        action, arg = target, None
    return Entry(m, action, arg, counter=counter, log_prefix=log, comment=name, origin=origin)

"""UCI ``firewall``/``network`` packages -> parsed defaults, zones and rules, the way fw4 parses
them (:func:`build`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence

from firewall.chains import _Chains
from firewall.model import Firewall
from firewall.redirects import _RedirectParsing
from firewall.sections import _SectionParsing
from firewall.tables import _CT_HELPERS, _NAME_IS_L3, _PREFIXED_L3, _VERDICTS, _ZONE_NAME_RE
from firewall.types import Defaults, Entry, Finding, Interface, Rule, Section, Zone, ZoneMatch
from firewall.values import (
    _DEFAULTS_OPTS,
    _ZONE_OPTS,
    _Addr,
    _cidr,
    _enum,
    _Invalid,
    _invert,
    _inverted,
    _parse_bool,
    _parse_family,
    _parse_int,
    _parse_limit,
    _parse_subnet,
    _Sec,
    _static_addresses,
)


def section_id(package: Sequence[Section], index: int) -> str:
    """uci id of section ``index``: its name, or ``@type[n]`` for an anonymous section."""
    s = package[index]
    if s.get("name"):
        return str(s["name"])
    n = sum(1 for x in package[:index] if x.get("type") == s.get("type"))
    return f"@{s.get('type')}[{n}]"


class _Builder(_SectionParsing, _RedirectParsing):
    def __init__(self, config: Mapping[str, Sequence[Section]],
                 devices: Mapping[str, str] | None, strict_zone_names: bool,
                 addresses: Mapping[str, Sequence[str]] | None = None) -> None:
        self.fw_pkg = list(config.get("firewall") or [])
        self.net_pkg = list(config.get("network") or [])
        self.devmap = dict(devices or {})
        self.strict_zone_names = strict_zone_names
        self.findings: list[Finding] = []
        self.zones: list[Zone] = []
        self.rules: list[Rule] = []
        self.defaults = Defaults()
        self.ipsets: set[str] = set()
        self.nat_entries: dict[str, list[Entry]] = {}
        self.runtime_addresses = {k: tuple(v) for k, v in (addresses or {}).items()}
        self.interfaces = self._interfaces()

    # -- findings ---------------------------------------------------------------------------
    def warn(self, kind: str, section: str, msg: str, skipped: bool = False,
             fatal: bool = False, scope: tuple[str, ...] | None = None) -> None:
        self.findings.append(Finding(kind, section, msg, skipped, fatal, scope))

    # -- network package --------------------------------------------------------------------
    def _interfaces(self) -> dict[str, Interface]:
        raw: dict[str, Section] = {}
        for s in self.net_pkg:
            if s.get("type") == "interface" and s.get("name"):
                raw[str(s["name"])] = s
        out: dict[str, Interface] = {}

        def l3(name: str, seen: tuple[str, ...] = ()) -> str | None:
            if name in self.devmap:
                return self.devmap[name]
            s = raw.get(name)
            if s is None or name in seen:
                return None
            o = s.get("options") or {}
            proto = o.get("proto")
            dev = o.get("device") or o.get("ifname")
            if isinstance(dev, list):
                dev = dev[0] if dev else None
            if proto in _NAME_IS_L3:
                return name
            if proto in _PREFIXED_L3:
                return f"{proto}-{name}"
            if isinstance(dev, str) and dev.startswith("@"):
                return l3(dev[1:], (*seen, name))
            return dev if isinstance(dev, str) else None

        for name, s in raw.items():
            o = s.get("options") or {}
            addrs = _static_addresses(o) + self.runtime_addresses.get(name, ())
            out[name] = Interface(name, o.get("proto"), l3(name), tuple(dict.fromkeys(addrs)))
        if not raw:  # no network package given: the mapping is the whole runtime state
            for name, dev in self.devmap.items():
                out[name] = Interface(name, None, dev, self.runtime_addresses.get(name, ()))
        return out

    # -- sections ----------------------------------------------------------------------------
    def run(self) -> Firewall:
        pkg = self.fw_pkg
        by_type: dict[str, list[tuple[str, Section]]] = {}
        for i, s in enumerate(pkg):
            by_type.setdefault(str(s.get("type")), []).append((section_id(pkg, i), s))
        for _, s in by_type.get("ipset", []):
            n = (s.get("options") or {}).get("name")
            if isinstance(n, str):
                self.ipsets.add(n)
        got_defaults = False
        for sid, s in by_type.get("defaults", []):
            if got_defaults:
                self.warn("duplicate_defaults", sid, "ignoring duplicate defaults section",
                          skipped=True)
                continue
            got_defaults = self._defaults(_Sec(self, sid, s))
        for sid, s in by_type.get("zone", []):
            self._zone(_Sec(self, sid, s))
        for sid, s in by_type.get("rule", []):
            self._rule(_Sec(self, sid, s))
        for sid, s in by_type.get("forwarding", []):
            self._forwarding(_Sec(self, sid, s))
        for sid, s in by_type.get("redirect", []):
            self._redirect(_Sec(self, sid, s))
        for kind in ("nat", "include"):
            for sid, _ in by_type.get(kind, []):
                self.warn("not_modelled", sid, f"'{kind}' sections are not modelled: "
                          "verdicts of every flow are unknown", scope=("*",))
        self._pitfalls()
        chains = _Chains(self).build()
        return Firewall(self.defaults, self.zones, self.rules, chains, self.findings,
                        self.interfaces)

    def _defaults(self, s: _Sec) -> bool:
        try:
            pol = lambda v: _enum(v, _VERDICTS)  # noqa: E731
            d = Defaults(
                input=s.opt("input", pol, "drop"),
                output=s.opt("output", pol, "drop"),
                forward=s.opt("forward", pol, "drop"),
                drop_invalid=s.opt("drop_invalid", _parse_bool, "0"),
                synflood_protect=bool(
                    s.opt("synflood_protect", _parse_bool) if "synflood_protect" in s.opts
                    else s.opt("syn_flood", _parse_bool)),
                synflood_rate=s.opt("synflood_rate", _parse_limit, "25/second"),
                synflood_burst=s.opt("synflood_burst", _parse_int, "50"),
                tcp_reject_code=s.opt("tcp_reject_code", lambda v: _enum(
                    v, ("tcp-reset", "port-unreachable", "admin-prohibited", "host-unreachable",
                        "no-route")), "tcp-reset"),
                any_reject_code=s.opt("any_reject_code", lambda v: _enum(
                    v, ("tcp-reset", "port-unreachable", "admin-prohibited", "host-unreachable",
                        "no-route")), "port-unreachable"),
                auto_helper=s.opt("auto_helper", _parse_bool, "1"),
                section=s.sid,
            )
            for key in ("drop_invalid_early", "tcp_syncookies", "tcp_window_scaling",
                        "accept_redirects", "accept_source_route", "flow_offloading",
                        "flow_offloading_hw", "flow_offloading_related", "auto_includes"):
                s.opt(key, _parse_bool)
        except _Invalid as e:
            self.warn("invalid_option", s.label(), f"{e}; defaults section skipped "
                      "(fw4 then falls back to DROP policies)", skipped=True)
            return False
        s.unknown(_DEFAULTS_OPTS)
        if s.opts.get("flow_offloading") == "1":
            self.warn("not_modelled", s.label(), "flow offloading is not modelled "
                      "(it only affects established flows)")
        self.defaults = d
        return True

    def _zone(self, s: _Sec) -> None:
        d = self.defaults
        pol = lambda v: _enum(v, _VERDICTS)  # noqa: E731
        dev = lambda v: _invert(v)  # noqa: E731
        try:
            enabled = s.opt("enabled", _parse_bool, "1")
            name = s.opt("name", lambda v: v, required=True)
            family = s.opt("family", _parse_family)
            networks = s.lst("network", dev) or []
            devices = s.lst("device", dev) or []
            subnets = s.lst("subnet", lambda v: self._network(v)) or []
            zin = s.opt("input", pol, d.input)
            zout = s.opt("output", pol, d.output)
            zfwd = s.opt("forward", pol, d.forward)
            masq = bool(s.opt("masq", _parse_bool))
            masq_allow_invalid = bool(s.opt("masq_allow_invalid", _parse_bool))
            masq_src = s.lst("masq_src", lambda v: self._network(v)) or []
            masq_dest = s.lst("masq_dest", lambda v: self._network(v)) or []
            masq6 = bool(s.opt("masq6", _parse_bool))
            mtu_fix = bool(s.opt("mtu_fix", _parse_bool))
            log = s.opt("log", _parse_int) or 0
            s.opt("log_limit", _parse_limit)
            auto_helper = s.opt("auto_helper", _parse_bool, "1")
            helpers = s.lst("helper", lambda v: v if v in _CT_HELPERS else None) or []
            counter = s.opt("counter", _parse_bool, "1")
        except _Invalid as e:
            self.warn("invalid_option", s.label(), f"{e}; zone skipped", skipped=True)
            return
        if not enabled:
            self.warn("disabled", s.label(), "is disabled, ignoring section", skipped=True)
            return
        if not _ZONE_NAME_RE.match(name):
            if self.strict_zone_names:
                self.warn("invalid_zone_name", s.label(), f"zone name {name!r} is invalid; "
                          "zone skipped (firewall4 since Oct 2023)", skipped=True)
                return
            self.warn("invalid_zone_name", s.label(), f"zone name {name!r} is not a valid "
                      "identifier: OpenWrt 23.05's fw4 renders it and nft refuses the ruleset",
                      fatal=True)
        s.unknown(_ZONE_OPTS)
        for key in ("extra", "extra_src", "extra_dest", "custom_chains"):
            if key in s.opts:
                self.warn("unsupported_option", s.label(), f"option '{key}' is not supported "
                          "by fw4")
        if not d.auto_helper:
            auto_helper = False

        match_devices: list[tuple[bool, str]] = []
        related: list[_Addr] = []
        missing = []
        for inv, net in networks:
            iface = self.interfaces.get(net)
            if iface is None:
                missing.append(net)
                continue
            if iface.device:
                match_devices.append((inv, iface.device))
            else:
                self.warn("network_without_device", s.label(), f"network {net!r} has no "
                          "resolvable L3 device: it adds nothing to the zone")
            for cidr in iface.addresses:
                n = ipaddress.ip_interface(cidr)
                related.append(_Addr(n.version, _cidr(n.ip, n.network.prefixlen)))
        match_devices += [(inv, dv) for inv, dv in devices]
        if missing:
            self.warn("zone_network_missing", s.label(), f"zone {name!r} lists network(s) "
                      f"{', '.join(missing)} that do not exist: they match nothing")

        sub4 = [a for a in _inverted(subnets) if a.family == 4]
        sub6 = [a for a in _inverted(subnets) if a.family == 6]
        related += [a for a in sub4 + sub6 if not a.invert]
        sub_family = 4 if sub4 and not sub6 else 6 if sub6 and not sub4 else 0
        if family and sub_family and family != sub_family:
            self.warn("family_mismatch", s.label(), f"is restricted to IPv{family} but "
                      f"referenced subnet list is IPv{sub_family} only, skipping", skipped=True)
            return
        family = family or sub_family

        # device groups as in fw4's parse_zone
        groups: list[tuple[list[str] | None, list[str], list[str]]] = []
        plain: list[str] = []
        plain_neg: list[str] = []
        wild_neg: list[str] = []
        for inv, devname in match_devices:
            m = re.fullmatch(r"([^+]*)(\+)?", devname)
            if not m:
                continue
            if not inv and devname == "+":
                continue
            wildcard = bool(m[2])
            if inv and devname == "+":
                devname, inv, wildcard = "/never/", False, False
            elif wildcard:
                devname = m[1] + "*"
            if not inv and wildcard:
                groups.append(([devname], plain_neg, wild_neg))
            elif not inv:
                plain.append(devname)
            elif wildcard:
                wild_neg.append(devname)
            else:
                plain_neg.append(devname)
        if plain:
            groups.append((plain, plain_neg, wild_neg))
        elif not groups:
            groups.append((None, plain_neg, wild_neg))

        rules: list[ZoneMatch] = []
        if match_devices or sub4 or sub6:
            for pos, neg, wneg in groups:
                base = dict(devices=tuple(pos or ()), devices_neg=tuple(neg),
                            devices_neg_wild=tuple(wneg))
                if not family and not sub4 and not sub6:
                    rules.append(ZoneMatch(0, **base))  # type: ignore[arg-type]
                    continue
                for fam, subs in ((4, sub4), (6, sub6)):
                    if family and family != fam:
                        continue
                    if any(a.masked for a in subs):
                        self.warn("not_modelled", s.label(), "non-contiguous zone subnet masks "
                                  "are ignored (fw4 does not render them either)")
                    spos = tuple(a.text for a in subs if not a.invert and not a.masked)
                    sneg = tuple(a.text for a in subs if a.invert and not a.masked)
                    rules.append(ZoneMatch(fam, subnets=spos, subnets_neg=sneg,
                                           **base))  # type: ignore[arg-type]

        zone = Zone(
            name=name, section=s.sid, input=zin, output=zout, forward=zfwd, family=family,
            networks=tuple(("!" if inv else "") + n for inv, n in networks),
            devices=tuple(dict.fromkeys(dv for inv, dv in match_devices if not inv)),
            subnets=tuple(a.text for a in sub4 + sub6),
            related_subnets=tuple(dict.fromkeys(a.text for a in related if not a.masked)),
            missing_networks=tuple(missing), masq=masq, masq6=masq6,
            masq_allow_invalid=masq_allow_invalid,
            masq_src=tuple(_inverted(masq_src)), masq_dest=tuple(_inverted(masq_dest)),
            mtu_fix=mtu_fix, auto_helper=auto_helper, helpers=tuple(helpers), counter=counter,
            log=log, match_rules=tuple(rules),
        )
        zone.sflags.add(zin)
        zone.dflags.update((zout, zfwd))
        if masq or masq6:
            zone.dflags.add("snat")
        if (auto_helper and not (masq or masq6)) or helpers:
            zone.dflags.add("helper")
        self.zones.append(zone)

    def _network(self, val: str) -> tuple[bool, list[_Addr]] | None:
        r = _invert(val)
        if not r:
            return None
        nets = _parse_subnet(r[1], self.interfaces)
        if nets is None:
            return None
        return r[0], nets

    def _zone_ref(self, val: str) -> Zone | str | None:
        if val == "*":
            return "*"
        return next((z for z in self.zones if z.name == val), None)

    def _pitfalls(self) -> None:
        seen: dict[str, Zone] = {}
        for z in self.zones:
            label = z.section if z.section == z.name else f"{z.section} ({z.name})"
            if z.name in seen:
                self.warn("duplicate_zone_name", label, f"zone name {z.name!r} is used "
                          f"twice (also section {seen[z.name].section}): nft refuses the ruleset "
                          f"(redefinition of symbol '{z.name}_devices')", fatal=True)
            seen.setdefault(z.name, z)
            if not z.match_rules:
                self.warn("zone_matches_nothing", label, f"zone {z.name!r} has no device "
                          "or subnet: no traffic ever enters its chains")
        owner: dict[str, Zone] = {}
        for z in self.zones:
            for n in z.networks:
                if n.startswith("!"):
                    continue
                if n in owner and owner[n] is not z:
                    self.warn("network_in_multiple_zones", f"{z.section} ({z.name})",
                              f"network {n!r} is also in zone {owner[n].name!r}: the first "
                              "zone's chains decide its input, forward rules of both apply")
                owner.setdefault(n, z)
        if self.defaults.forward == "accept":
            self.warn("defaults_forward_accept", self.defaults.section or "defaults",
                      "defaults.forward ACCEPT opens every inter-zone flow without a rule "
                      "(a zone's 'forward' only governs intra-zone traffic)")
        # a device that is a bridge port and also the L3 device of another interface
        ports: dict[str, str] = {}
        for s in self.net_pkg:
            o = s.get("options") or {}
            if s.get("type") == "device" and o.get("type") == "bridge":
                p = o.get("ports") or []
                for port in (p if isinstance(p, list) else str(p).split()):
                    ports[port] = str(o.get("name"))
        for iface in self.interfaces.values():
            if iface.device in ports:
                self.warn("device_is_bridge_port", f"network.{iface.name}", f"device "
                          f"{iface.device!r} of interface {iface.name!r} is also a port of "
                          f"bridge {ports[iface.device]!r}")


def build(config: Mapping[str, Sequence[Section]], devices: Mapping[str, str] | None = None,
          *, strict_zone_names: bool = False,
          addresses: Mapping[str, Sequence[str]] | None = None) -> Firewall:
    """Parse the ``firewall`` and ``network`` packages the way fw4 does and build the chains.

    ``devices`` maps netifd interface names to their runtime L3 device (what fw4 asks ubus for),
    e.g. ``{"lan": "br-lan", "wan": "wan", "wg0": "wg0", "dmz": "lan4"}``; interfaces not in it
    are resolved from the network package.  Only interfaces configured in the network package
    exist (as for netifd); without a network package the mapping alone defines them.
    ``strict_zone_names=True`` models firewall4 after Oct 2023 (invalid zone names are skipped);
    the default models 23.05 (the zone is rendered and the ruleset fails to load).
    ``addresses`` adds runtime addresses (CIDR) per interface, e.g. a DHCP WAN's
    ``{"wan": ["203.0.113.2/24"]}`` (zone subnets, NAT reflection).

    Example::

        fw = build({"network": net_sections, "firewall": fw_sections})
        for f in fw.warnings:
            print(f)
        fw.verdict(Flow("wan", None, "udp", 51820)).action   # -> "accept"
    """
    return _Builder(config, devices, strict_zone_names, addresses).run()

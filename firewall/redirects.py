"""Parsing of ``redirect`` sections (fw4's ``parse_redirect``): port forwards (DNAT, with
NAT reflection) and source NAT, as entries of the ``dstnat_<zone>`` / ``srcnat_<zone>`` chains.

Modelled: ``target`` DNAT (default) and SNAT, ``src``, ``dest``, ``family``, ``proto`` (default
tcp+udp), ``src_ip``, ``src_mac``, ``src_port``, ``src_dip``, ``src_dport``, ``dest_ip``,
``dest_port``, ``reflection`` (default on, when the source zone masquerades),
``reflection_zone`` (default: the destination zone), ``reflection_src``, ``counter``.  A DNAT
without ``dest_ip`` redirects to the router itself (``redirect to :port``).  The external port
defaults to ``dest_port``.  Reflection needs the router's address in the source zone: from the
network package's static addresses or the ``addresses`` given to :func:`firewall.build` (fw4
asks ubus at runtime); without one, the reflection is reported as not modelled.

Options whose effect the model does not evaluate (ipset, helper, limit, time, mark, extra, log)
make the redirect a ``not_modelled`` finding scoped to the zones it affects: the proof then
answers "unknown" for their flows.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from firewall.types import Entry, Match, Zone
from firewall.values import (
    _enum,
    _flatten,
    _Invalid,
    _parse_bool,
    _parse_family,
    _parse_mac,
    _parse_port,
    _parse_protocol,
    _Sec,
)

_UNMODELLED = ("ipset", "helper", "limit", "limit_burst", "start_date", "stop_date",
               "start_time", "stop_time", "weekdays", "monthdays", "utc_time", "mark", "extra",
               "log", "log_limit", "set_helper")
_REDIRECT_OPTS = {"enabled", "name", "_name", "family", "src", "dest", "proto", "src_ip",
                  "src_mac", "src_port", "src_dip", "src_dport", "dest_ip", "dest_port",
                  "reflection", "reflection_src", "reflection_zone", "target", "counter",
                  *_UNMODELLED}


def _hosts(addrs: list[Any], family: int) -> list[str]:
    return [a.text for a in addrs if a.family == family and not a.masked]


class _RedirectParsing:
    """Mixin of the builder: redirect sections (needs ``warn``, ``_zone_ref``, ``_network``,
    ``interfaces``, ``zones`` and ``nat_entries``)."""

    warn: Any
    _zone_ref: Any
    _network: Any
    interfaces: Any
    zones: list[Zone]
    nat_entries: dict[str, list[Entry]]

    def _redirect(self, s: _Sec) -> None:  # noqa: C901 - mirrors fw4's parse_redirect
        try:
            enabled = s.opt("enabled", _parse_bool, "1")
            name = s.opt("name", lambda v: v, s.sid)
            family = s.opt("family", _parse_family)
            src = s.opt("src", self._zone_ref)
            dest = s.opt("dest", self._zone_ref)
            target = s.opt("target", lambda v: _enum(v, ("dnat", "snat")), "dnat")
            protos = _flatten(s.lst("proto", _parse_protocol, "tcpudp") or [])
            src_ip = s.lst("src_ip", self._network) or []
            src_mac = s.lst("src_mac", _parse_mac) or []
            src_port = s.opt("src_port", _parse_port)
            src_dip = s.opt("src_dip", self._network)
            src_dport = s.opt("src_dport", _parse_port)
            dest_ip = s.opt("dest_ip", self._network)
            dest_port = s.opt("dest_port", _parse_port)
            reflection = s.opt("reflection", _parse_bool, "1")
            refl_src = s.opt("reflection_src",
                             lambda v: _enum(v, ("internal", "external")), "internal")
            refl_zones = s.lst("reflection_zone", self._zone_ref) or []
            counter = s.opt("counter", _parse_bool, "1")
        except _Invalid as e:
            self.warn("invalid_option", s.label(), f"{e}; redirect skipped", skipped=True)
            return
        label = s.label()
        if not enabled:
            self.warn("disabled", label, "is disabled, ignoring section", skipped=True)
            return
        s.unknown(_REDIRECT_OPTS)
        src_zone = src if isinstance(src, Zone) else None
        dest_zone = dest if isinstance(dest, Zone) else None
        for inv, val in ((dest_ip[0] if dest_ip else False, "dest_ip"),
                         (dest_port[0] if dest_port else False, "dest_port")):
            if inv:
                self.warn("invalid_option", label, f"'{val}' must not be negated; redirect "
                          "skipped", skipped=True)
                return
        raddrs = [a for a in (dest_ip[1] if dest_ip else []) if not a.masked]
        if dest_ip and len(raddrs) != 1:
            self.warn("invalid_option", label, "'dest_ip' must be one address; redirect "
                      "skipped", skipped=True)
            return
        fam = family or (raddrs[0].family if raddrs else 0) or 4
        if fam == 6 and raddrs and raddrs[0].family == 4:
            self.warn("family_mismatch", label, "is restricted to IPv6 but 'dest_ip' is "
                      "IPv4, skipping", skipped=True)
            return
        scope = tuple(z.name for z in (src_zone, dest_zone) if z is not None) or ("*",)
        unmodelled = [k for k in _UNMODELLED if k in s.opts]
        if unmodelled:
            self.warn("not_modelled", label, f"redirect option(s) {', '.join(unmodelled)} "
                      "are not modelled: verdicts of the flows it may touch are unknown",
                      scope=scope)
        protos = [p for p in protos if p.get("name") is not None] or \
            [{"name": "tcp"}, {"name": "udp"}]
        if src_dport or dest_port or src_port:
            protos = [p for p in protos if p["name"] in ("tcp", "udp")]
            if not protos:
                self.warn("invalid_option", label, "ports need proto tcp or udp; redirect "
                          "skipped", skipped=True)
                return
        sports = [src_port] if src_port else []
        ip = "ip" if fam == 4 else "ip6"
        common: dict[str, Any] = dict(
            family=fam, show_nfproto=not (src_ip or src_dip),
            saddr=tuple(a.text for inv, g in src_ip for a in g if not inv and a.family == fam),
            saddr_neg=tuple(a.text for inv, g in src_ip for a in g if inv and a.family == fam),
            smac=tuple(m for inv, m in src_mac if not inv),
            smac_neg=tuple(m for inv, m in src_mac if inv),
            sport=tuple(p for inv, p in sports if not inv),
            sport_neg=tuple(p for inv, p in sports if inv),
        )
        if target == "snat":
            if dest_zone is None or not src_dip or src_dip[0]:
                self.warn("invalid_option", label, "SNAT needs 'dest' and 'src_dip' (the "
                          "address to translate to); redirect skipped", skipped=True)
                return
            to = _hosts(src_dip[1], fam)
            if not to:
                self.warn("invalid_option", label, "'src_dip' has no address of the "
                          "redirect's family; redirect skipped", skipped=True)
                return
            arg = f"{ip} to {to[0]}" + (f":{src_dport[1]}" if src_dport else "")
            for p in protos:
                m = Match(**common, l4proto=(p["name"],),
                          show_l4proto=not (dest_port or src_port),
                          daddr=tuple(a.text for a in raddrs),
                          dport=(dest_port[1],) if dest_port else ())
                self.nat_entries.setdefault(f"srcnat_{dest_zone.name}", []).append(
                    Entry(m, "snat", arg, counter=counter, comment=name,
                          origin=f"redirect:{s.sid}", nat_to=(to[0], None)))
            dest_zone.dflags.add("snat")
            return
        if src_zone is None:
            self.warn("invalid_option", label, "DNAT needs a source zone 'src'; redirect "
                      "skipped", skipped=True)
            return
        if not raddrs and not dest_port:
            self.warn("invalid_option", label, "DNAT needs 'dest_ip' or 'dest_port'; redirect "
                      "skipped", skipped=True)
            return
        ext_port = src_dport or dest_port
        rport = dest_port[1] if dest_port else None
        raddr = raddrs[0].text if raddrs else None
        to_port = int(rport.split("-")[0]) if rport else None
        if raddr is None:
            action, arg = "redirect", f"to :{rport}"
        else:
            action, arg = "dnat", f"{ip} to {raddr}" + (f":{rport}" if rport else "")
        dips = src_dip[1] if src_dip else []
        for p in protos:
            m = Match(**common, l4proto=(p["name"],),
                      show_l4proto=not (ext_port or src_port),
                      daddr=tuple(a.text for a in dips if not src_dip[0] and a.family == fam),
                      daddr_neg=tuple(a.text for a in dips if src_dip[0] and a.family == fam),
                      dport=(ext_port[1],) if ext_port and not ext_port[0] else (),
                      dport_neg=(ext_port[1],) if ext_port and ext_port[0] else ())
            self.nat_entries.setdefault(f"dstnat_{src_zone.name}", []).append(
                Entry(m, action, arg, counter=counter, comment=name,
                      origin=f"redirect:{s.sid}", nat_to=(raddr, to_port)))
        src_zone.dflags.add("dnat")
        if not (reflection and raddr and src_zone.masq):
            return
        zones = [z for z in refl_zones if isinstance(z, Zone)] or \
            ([dest_zone] if dest_zone else [z for z in self.zones if any(
                ipaddress.ip_address(raddr) in ipaddress.ip_network(n, strict=False)
                for n in z.related_subnets if ":" not in n or fam == 6)][:1])
        external = [a for a in dips if not src_dip[0]] if src_dip else \
            self._zone_addresses(src_zone, fam)
        for rz in zones:
            internal = self._zone_addresses(rz, fam)
            subnets = tuple(n for n in rz.related_subnets
                            if ipaddress.ip_network(n, strict=False).version == fam)
            if not external or not internal or not subnets:
                self.warn("not_modelled", label, f"NAT reflection into zone {rz.name!r} needs "
                          f"the router's addresses in zones {src_zone.name!r} and {rz.name!r} "
                          "(runtime addresses are unknown here)", scope=(rz.name,))
                continue
            rz.dflags.update(("accept", "dnat", "snat"))
            snat_to = (internal if refl_src == "internal" else external)[0].split("/")[0]
            for p in protos:
                dm = Match(family=fam, l4proto=(p["name"],), show_nfproto=False,
                           show_l4proto=not ext_port, saddr=subnets,
                           daddr=tuple(a.split("/")[0] for a in external),
                           dport=(ext_port[1],) if ext_port and not ext_port[0] else ())
                self.nat_entries.setdefault(f"dstnat_{rz.name}", []).append(Entry(
                    dm, "dnat", arg, counter=counter, comment=f"{name} (reflection)",
                    origin=f"redirect:{s.sid}", nat_to=(raddr, to_port)))
                sm = Match(family=fam, l4proto=(p["name"],), show_nfproto=False,
                           show_l4proto=not (rport or ext_port), saddr=subnets, daddr=(raddr,),
                           dport=((rport or ext_port[1]),) if (rport or ext_port) else ())
                self.nat_entries.setdefault(f"srcnat_{rz.name}", []).append(Entry(
                    sm, "snat", f"{ip} to {snat_to}", counter=counter,
                    comment=f"{name} (reflection)", origin=f"redirect:{s.sid}",
                    nat_to=(snat_to, None)))

    def _zone_addresses(self, zone: Zone, family: int) -> list[str]:
        """The router's own addresses (CIDR) on the interfaces of ``zone``."""
        out = []
        for n in zone.networks:
            iface = self.interfaces.get(n.lstrip("!"))
            if iface is None or n.startswith("!"):
                continue
            out += [a for a in iface.addresses
                    if ipaddress.ip_interface(a).version == family]
        return out

"""fw4's option value parsers (``parse_*`` of fw4.uc); each returns ``None`` for an invalid
value, which makes fw4 skip the whole section."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from firewall.tables import _ANY, _CT_HELPERS, _DSCP_CLASSES, ICMP4_TYPES, ICMP6_TYPES
from firewall.types import Interface


class _Invalid(Exception):
    pass


@dataclass(frozen=True)
class _Addr:
    family: int
    text: str  # nft rendering (fw4.cidr)
    masked: tuple[str, str] | None = None  # (addr, mask) for non-contiguous masks
    invert: bool = False


def _invert(val: str) -> tuple[bool, str] | None:
    v = val.strip()
    inv = False
    if v.startswith("!"):
        inv, v = True, v[1:].strip()
    return (inv, v) if v else None


def _enum(val: str, choices: Sequence[str]) -> str | None:
    v = val.lower()
    for c in choices:
        if c[: len(v)].lower() == v:
            return c
    return None


def _parse_bool(val: str) -> bool | None:
    if val in ("1", "on", "true", "yes"):
        return True
    if val in ("0", "off", "false", "no"):
        return False
    return None


def _parse_family(val: str) -> int | None:
    if val in ("any", "all", "*"):
        return 0
    if val == "inet" or "4" in val:
        return 4
    if "6" in val:
        return 6
    return None


def _parse_int(val: str) -> int | None:
    try:
        return int(val, 0) if val.lower().startswith("0x") else int(val)
    except ValueError:
        return None


def _parse_port(val: str) -> tuple[bool, str] | None:
    r = _invert(val)
    if not r:
        return None
    m = re.fullmatch(r"([0-9]{1,5})([-:]([0-9]{1,5}))?", r[1])
    if not m:
        return None
    lo = int(m[1])
    hi = int(m[3]) if m[3] else lo
    if lo > hi or hi > 65535:
        return None
    return r[0], str(lo) if lo == hi else f"{lo}-{hi}"


def _parse_limit(val: str) -> tuple[int, str] | None:
    r = _invert(val)
    m = re.fullmatch(r"([0-9]+)(/([a-z]+))?", r[1]) if r else None
    if not m:
        return None
    unit = _enum(m[3], ("second", "minute", "hour", "day")) if m[3] else "second"
    return (int(m[1]), unit) if unit else None


def _parse_mac(val: str) -> tuple[bool, str] | None:
    r = _invert(val)
    if not r:
        return None
    parts = re.split(r"[:-]", r[1])
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-fA-F]{1,2}", x) for x in parts):
        return None
    return r[0], ":".join(f"{int(x, 16):02x}" for x in parts)


def _parse_icmptype(val: str) -> dict[str, Any] | None:
    rv: dict[str, Any] = {}
    if val in ICMP4_TYPES:
        rv.update(family=4, type=ICMP4_TYPES[val][0], cmin=ICMP4_TYPES[val][1],
                  cmax=ICMP4_TYPES[val][2])
    if val in ICMP6_TYPES:
        rv.update(family=0 if "family" in rv else 6, type6=ICMP6_TYPES[val][0],
                  cmin6=ICMP6_TYPES[val][1], cmax6=ICMP6_TYPES[val][2])
    if "family" not in rv:
        m = re.fullmatch(r"([0-9]+)(/([0-9]+))?", val)
        if not m:
            return None
        t = int(m[1])
        cmin, cmax = (int(m[3]), int(m[3])) if m[3] else (0, _ANY)
        if t > 0xFF or cmin > 0xFF:
            return None
        rv = {"family": 0, "type": t, "cmin": cmin, "cmax": cmax, "type6": t, "cmin6": cmin,
              "cmax6": cmax}
    return rv


def _parse_mark(val: str) -> tuple[bool, int, int] | None:
    r = _invert(val)
    m = re.fullmatch(r"(0?x?[0-9a-f]+)(/(0?x?[0-9a-f]+))?", r[1], re.I) if r else None
    if not r or not m:
        return None
    mark = _parse_int(m[1])
    mask = _parse_int(m[3]) if m[3] else 0xFFFFFFFF
    if mark is None or mask is None or mark > 0xFFFFFFFF or mask > 0xFFFFFFFF:
        return None
    return r[0], mark, mask


def _parse_dscp(val: str) -> tuple[bool, int] | None:
    r = _invert(val)
    if not r:
        return None
    v = r[1].upper()
    if v in _DSCP_CLASSES:
        return r[0], _DSCP_CLASSES[v]
    n = _parse_int(v)
    return (r[0], n) if n is not None and 0 <= n <= 0x3F else None


def _parse_date(val: str) -> str | None:
    d = re.fullmatch(r"([0-9]{4})(-([0-9]{1,2})(-([0-9]{1,2})(T([0-9:]+))?)?)?", val)
    if not d or not 1970 <= int(d[1]) <= 2038 or int(d[3] or 1) > 12 or int(d[5] or 1) > 31:
        return None
    t = _parse_time(d[7] or "0")
    if t is None:
        return None
    date = f"{int(d[1]):04d}-{int(d[3] or 1):02d}-{int(d[5] or 1):02d}"
    return f'"{date} {t[1:-1]}"' if d[7] else f'"{date}"'


def _parse_time(val: str) -> str | None:
    t = re.fullmatch(r"([0-9]{1,2})(:([0-9]{1,2})(:([0-9]{1,2}))?)?", val)
    if not t or int(t[1]) > 23 or int(t[3] or 0) > 59 or int(t[5] or 0) > 59:
        return None
    return f'"{int(t[1]):02d}:{int(t[3] or 0):02d}:{int(t[5] or 0):02d}"'


def _cidr(a: ipaddress.IPv4Address | ipaddress.IPv6Address, bits: int) -> str:
    if bits == a.max_prefixlen:
        return str(a)
    return str(ipaddress.ip_network(f"{a}/{bits}", strict=False))


def _parse_subnet(val: str, interfaces: Mapping[str, Interface]) -> list[_Addr] | None:
    """fw4 ``parse_subnet``: CIDR, addr/mask, range, address or interface name."""
    if "/" in val:
        a_s, m_s = val.split("/", 1)
        try:
            a = ipaddress.ip_address(a_s)
        except ValueError:
            return None
        fam = a.version
        if re.fullmatch(r"[0-9]+", m_s):
            bits = int(m_s)
            if bits > a.max_prefixlen:
                return None
            return [_Addr(fam, _cidr(a, bits))]
        try:
            mask = ipaddress.ip_address(m_s)
        except ValueError:
            return None
        if mask.version != fam:
            return None
        try:
            net = ipaddress.ip_network(f"{a}/{mask}", strict=False)
            return [_Addr(fam, _cidr(a, net.prefixlen))]
        except ValueError:  # non-contiguous mask
            masked = ipaddress.ip_address(int(a) & int(mask))
            return [_Addr(fam, f"{masked}/{mask}", masked=(str(masked), str(mask)))]
    if "-" in val and val.count("-") == 1:
        try:
            lo, hi = (ipaddress.ip_address(x) for x in val.split("-"))
        except ValueError:
            lo = hi = None
        if lo is not None and hi is not None and lo.version == hi.version:
            return [_Addr(lo.version, f"{lo}-{hi}")]
    try:
        a = ipaddress.ip_address(val)
        return [_Addr(a.version, str(a))]
    except ValueError:
        pass
    iface = interfaces.get(val)
    if iface is not None:
        out = []
        for cidr in iface.addresses:
            n = ipaddress.ip_interface(cidr)
            out.append(_Addr(n.version, _cidr(n.ip, n.network.prefixlen)))
        return out
    return None


def _static_addresses(o: Mapping[str, Any]) -> tuple[str, ...]:
    out: list[str] = []

    def as_list(v: Any) -> list[str]:
        return list(v) if isinstance(v, list) else str(v).split() if v else []

    mask = o.get("netmask")
    for a in as_list(o.get("ipaddr")) + as_list(o.get("addresses")) + as_list(o.get("ip6addr")):
        try:
            if "/" not in a and mask and ":" not in a:
                out.append(str(ipaddress.ip_interface(f"{a}/{mask}")))
            else:
                out.append(str(ipaddress.ip_interface(a)))
        except ValueError:
            continue
    return tuple(out)


def _parse_protocol(val: str) -> list[dict[str, Any]] | dict[str, Any] | None:
    r = _invert(val)
    if not r:
        return None
    v = r[1].lower()
    if v in ("all", "any", "*"):
        return {"any": True, "name": None}
    if v == "tcpudp":
        return [{"name": "tcp"}, {"name": "udp"}]
    name = {"1": "icmp", "58": "ipv6-icmp", "icmpv6": "ipv6-icmp", "6": "tcp",
            "17": "udp"}.get(v, v)
    return {"name": name}


def _flatten(items: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        out.extend(item if isinstance(item, list) else [item])
    return out


def _inverted(items: list[tuple[bool, list[_Addr]]]) -> list[_Addr]:
    """Flatten parsed ``network`` values, carrying each value's ``!`` onto its addresses."""
    return [_Addr(a.family, a.text, a.masked, inv) for inv, addrs in items for a in addrs]


def _parse_helper_match(val: str) -> tuple[bool, str] | None:
    r = _invert(val)
    return r if r and r[1] in _CT_HELPERS else None


def _parse_weekdays(val: str) -> tuple[bool, list[str]] | None:
    r = _invert(val)
    if not r:
        return None
    days: list[str] = []
    for d in r[1].split():
        day = _enum(d, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                        "Sunday"))
        if not day:
            return None
        if day not in days:
            days.append(day)
    return (r[0], days) if days else None


def _split_af(addrs: list[tuple[bool, list[_Addr]]]) -> dict[Any, Any]:
    rv: dict[Any, Any] = {}
    for inv, group in addrs:
        for a in group:
            rv.setdefault(a.family, []).append(_Addr(a.family, a.text, a.masked, inv))
    if 4 in rv or 6 in rv:
        rv["family"] = (4 if 4 in rv else 6) if (4 in rv) != (6 in rv) else 0
    return rv


def _group_by_masking(addrs: list[_Addr]) -> list[list[list[_Addr] | None]]:
    groups: list[list[list[_Addr] | None]] = []
    plain = [a for a in addrs if not a.invert and not a.masked]
    nc = [a for a in addrs if not a.invert and a.masked]
    inv_plain = [a for a in addrs if a.invert and not a.masked]
    inv_masked = [a for a in addrs if a.invert and a.masked]
    for a in nc:
        groups.append([None, inv_plain or None, [a, *inv_masked]])
    if plain:
        groups.append([plain, inv_plain or None, inv_masked or None])
    elif not groups:
        groups.append([None, inv_plain or None, inv_masked or None])
    return groups


def _infer_family(f: int | None, objs: list[tuple[int, str]]) -> int | str | None:
    res, by = f, None
    for fam, desc in objs:
        if not fam or fam == res:
            continue
        if not res:
            res, by = fam, desc
            continue
        if by:
            return f"references IPv{fam} only {desc} but is restricted to IPv{res} by {by}"
        return f"is restricted to IPv{res} but referenced {desc} is IPv{fam} only"
    return res


_DEFAULTS_OPTS = {
    "input", "output", "forward", "drop_invalid", "drop_invalid_early", "tcp_reject_code",
    "any_reject_code", "syn_flood", "synflood_protect", "synflood_rate", "synflood_burst",
    "tcp_syncookies", "tcp_ecn", "tcp_window_scaling", "accept_redirects",
    "accept_source_route", "auto_helper", "custom_chains", "disable_ipv6", "flow_offloading",
    "flow_offloading_hw", "flow_offloading_related", "auto_includes",
}
_ZONE_OPTS = {
    "enabled", "name", "family", "network", "device", "subnet", "input", "output", "forward",
    "masq", "masq_allow_invalid", "masq_src", "masq_dest", "masq6", "extra", "extra_src",
    "extra_dest", "mtu_fix", "custom_chains", "log", "log_limit", "auto_helper", "helper",
    "counter",
}
_RULE_OPTS = {
    "enabled", "name", "_name", "family", "src", "dest", "device", "direction", "ipset",
    "helper", "set_helper", "proto", "src_ip", "src_mac", "src_port", "dest_ip", "dest_port",
    "icmp_type", "extra", "limit", "limit_burst", "utc_time", "start_date", "stop_date",
    "start_time", "stop_time", "weekdays", "monthdays", "mark", "set_mark", "set_xmark", "dscp",
    "set_dscp", "counter", "log", "log_limit", "target",
}
_FWD_OPTS = {"enabled", "name", "family", "src", "dest"}
_TARGETS = ("accept", "reject", "drop", "notrack", "helper", "mark", "dscp", "dnat", "snat",
            "masquerade")


class _Sec:
    """Typed option access for one section; raises _Invalid like fw4's parse_options."""

    def __init__(self, b: Any, sid: str, sec: Mapping[str, Any]) -> None:
        self.b = b
        self.sid = sid
        self.opts: Mapping[str, Any] = sec.get("options") or {}

    def label(self) -> str:
        n = self.opts.get("name")
        return f"{self.sid} ({n})" if isinstance(n, str) and n != self.sid else self.sid

    def opt(self, key: str, parse: Any, default: str | None = None,
            required: bool = False) -> Any:
        val = self.opts.get(key)
        if val is None:
            if required:
                raise _Invalid(f"option '{key}' is mandatory but not set")
            val = default
        if isinstance(val, list):
            raise _Invalid(f"option '{key}' must not be a list")
        if val is None:
            return None
        res = parse(val)
        if res is None:
            raise _Invalid(f"option '{key}' specifies invalid value '{val}'")
        return res

    def lst(self, key: str, parse: Any, default: str | None = None,
            required: bool = False) -> list[Any] | None:
        val = self.opts.get(key)
        if val is None:
            if required:
                raise _Invalid(f"option '{key}' is mandatory but not set")
            val = default
        if val is None:
            return None
        items = list(val) if isinstance(val, list) else str(val).split()
        out = []
        for item in items:
            res = parse(item)
            if res is None:
                raise _Invalid(f"option '{key}' specifies invalid value '{item}'")
            out.append(res)
        return out or None

    def unknown(self, known: set[str]) -> None:
        for key in self.opts:
            if key not in known:
                self.b.warn("unknown_option", self.label(), f"specifies unknown option '{key}'")

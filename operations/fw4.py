"""A model of OpenWrt firewall4 (fw4) semantics: UCI config -> chains -> packet verdicts.

What is modelled (see ``reference/openwrt.md (research notes, not shipped)`` §D.2 and §D.2b, and the real fw4
rulesets in ``tests/fixtures/fw4/``, produced by firewall4 598d9fb = OpenWrt 23.05):

* **Parsing**, in fw4's order: the first ``defaults`` section (later ones ignored; missing
  ``input``/``output``/``forward`` mean DROP), then ``zone``, ``rule``, ``forwarding`` and
  ``redirect`` sections, each in uci order.  As in fw4, a section with any invalid option value
  (unknown zone reference, list where a scalar is expected, bad port/IP/family...) is **skipped
  entirely**; ``enabled '0'`` skips a zone, rule or forwarding.  Policy/target values are
  matched case-insensitively by prefix, as fw4's ``parse_enum`` does.
* **Zone membership**: ``network`` entries resolve to the L3 device of the netifd interface
  (the interface's ``device`` option; the interface name for ``proto wireguard``; an explicit
  ``devices`` mapping wins), plus ``device`` (``+`` wildcards become ``*``) and ``subnet``.
* **Rules**: chain placement (``input_Z``, ``forward_Z``, main ``input``/``forward``/``output``,
  ``output_D``), proto default tcp+udp, ``proto all``, ports only for tcp/udp, ``icmp_type``
  (type vs. type/code split exactly as 23.05 renders it), address family inference from
  ``src_ip``/``dest_ip``/zones, ``target`` missing -> a counter without verdict,
  ``<target>_to_<dest>`` jump chains, ``handle_reject``.
* **Forwardings**: ``jump accept_to_D`` appended after the rules of ``forward_S``.
* **Chains**: the filter chains (``input``, ``forward``, ``output``, ``prerouting``,
  ``handle_reject``, ``syn_flood``, ``input_Z``, ``output_Z``, ``forward_Z``, ``helper_Z``,
  ``accept|reject|drop_from|to_Z``), NAT (``srcnat``/``srcnat_Z`` masquerade, ``dstnat``),
  raw and mangle (MSS clamping) chains, in fw4's order, each an ordered list of
  :class:`Entry` (a :class:`Match` plus a verdict/jump/statement).  :func:`render_nft` prints them
  as an nftables ruleset; for the two fixture configs every rule line equals the real fw4 output.
* **Verdicts**: :meth:`Firewall.verdict` walks the chains like nftables does (jump/return,
  base-chain policy) for the first packet of a new connection (``ct state new``).
* **Findings** (:attr:`Firewall.warnings`): sections fw4 skips (with the reason) and the pitfalls
  fw4 accepts silently: rule without target, rule with ``dest`` but no ``src``, block rule without
  ``proto`` (tcp+udp only), zone listing a missing network, a network in two zones, duplicate zone
  names (the ruleset then fails to load, :attr:`Firewall.load_error`), ``defaults.forward ACCEPT``,
  a device that is both a bridge port and another interface's device.

Not modelled: conntrack beyond "new connection" (replies are always accepted by fw4's
``ct state established,related accept``), redirect/DNAT rule bodies (only the zone flags and the
``ct status dnat accept`` shortcut, selected with ``Flow(dnat=True)``), ``config nat``, includes,
ipset contents, ct helper bodies, mark/dscp/notrack/helper *targets* (they never give a filter
verdict), flow offloading, runtime addresses (``*_subnets`` defines use static config only).
Conditions the flow cannot express (limit, time, mark, dscp, ipset, helper) are assumed to hold
and reported in :attr:`Verdict.assumptions`.

Input: a config is ``{"network": [...], "firewall": [...], "dhcp": [...]}``, each package a list
of sections ``{"name": str | None, "type": str, "options": {opt: str | list[str]}}`` in file order
(what the project's ``uci export`` fact returns).

Example::

    fw = build(config, devices={"lan": "br-lan", "wan": "wan", "wg0": "wg0", "dmz": "lan4"})
    v = fw.verdict(Flow("vpn", "dmz", "tcp", 11434, dest_ip="192.168.100.10"))
    assert v.action == "accept", v.explain()
    print(render_nft(fw))            # loadable with `nft -f`
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Chain",
    "Defaults",
    "Entry",
    "Finding",
    "Firewall",
    "Flow",
    "Match",
    "Rule",
    "RulesetLoadError",
    "Verdict",
    "Zone",
    "ZoneMatch",
    "build",
    "render_nft",
    "section_id",
]

Section = Mapping[str, Any]

# ---------------------------------------------------------------------------------------------
# Constant tables (fw4.uc, 23.05 values)
# ---------------------------------------------------------------------------------------------

_ANY = 0xFF
# name: (type, code_min, code_max)
ICMP4_TYPES: dict[str, tuple[int, int, int]] = {
    "any": (0xFF, 0, _ANY), "echo-reply": (0, 0, _ANY), "pong": (0, 0, _ANY),
    "destination-unreachable": (3, 0, _ANY), "network-unreachable": (3, 0, 0),
    "host-unreachable": (3, 1, 1), "protocol-unreachable": (3, 2, 2),
    "port-unreachable": (3, 3, 3), "fragmentation-needed": (3, 4, 4),
    "source-route-failed": (3, 5, 5), "network-unknown": (3, 6, 6), "host-unknown": (3, 7, 7),
    "network-prohibited": (3, 9, 9), "host-prohibited": (3, 10, 10),
    "TOS-network-unreachable": (3, 11, 11), "TOS-host-unreachable": (3, 12, 12),
    "communication-prohibited": (3, 13, 13), "host-precedence-violation": (3, 14, 14),
    "precedence-cutoff": (3, 15, 15), "source-quench": (4, 0, _ANY), "redirect": (5, 0, _ANY),
    "network-redirect": (5, 0, 0), "host-redirect": (5, 1, 1), "TOS-network-redirect": (5, 2, 2),
    "TOS-host-redirect": (5, 3, 3), "echo-request": (8, 0, _ANY), "ping": (8, 0, _ANY),
    "router-advertisement": (9, 0, _ANY), "router-solicitation": (10, 0, _ANY),
    "time-exceeded": (11, 0, _ANY), "ttl-exceeded": (11, 0, _ANY),
    "ttl-zero-during-transit": (11, 0, 0), "ttl-zero-during-reassembly": (11, 1, 1),
    "parameter-problem": (12, 0, _ANY), "ip-header-bad": (12, 0, 0),
    "required-option-missing": (12, 1, 1), "timestamp-request": (13, 0, _ANY),
    "timestamp-reply": (14, 0, _ANY), "address-mask-request": (17, 0, _ANY),
    "address-mask-reply": (18, 0, _ANY),
}
# 23.05 (598d9fb) treats packet-too-big and neighbour solicitation/advertisement as code 0 only:
# the real fixture renders them as "2 . 0", "135 . 0", "136 . 0".
ICMP6_TYPES: dict[str, tuple[int, int, int]] = {
    "destination-unreachable": (1, 0, _ANY), "no-route": (1, 0, 0),
    "communication-prohibited": (1, 1, 1), "address-unreachable": (1, 3, 3),
    "port-unreachable": (1, 4, 4), "packet-too-big": (2, 0, 0), "time-exceeded": (3, 0, _ANY),
    "ttl-exceeded": (3, 0, _ANY), "ttl-zero-during-transit": (3, 0, 0),
    "ttl-zero-during-reassembly": (3, 1, 1), "parameter-problem": (4, 0, _ANY),
    "bad-header": (4, 0, 0), "unknown-header-type": (4, 1, 1), "unknown-option": (4, 2, 2),
    "echo-request": (128, 0, _ANY), "ping": (128, 0, _ANY), "echo-reply": (129, 0, _ANY),
    "pong": (129, 0, _ANY), "multicast-listener-query": (130, 0, _ANY),
    "multicast-listener-report": (131, 0, _ANY), "multicast-listener-done": (132, 0, _ANY),
    "router-solicitation": (133, 0, _ANY), "router-advertisement": (134, 0, _ANY),
    "neighbour-solicitation": (135, 0, 0), "neighbor-solicitation": (135, 0, 0),
    "neighbour-advertisement": (136, 0, 0), "neighbor-advertisement": (136, 0, 0),
    "redirect": (137, 0, _ANY), "router-renumbering": (138, 0, _ANY),
    "node-info-query": (139, 0, _ANY), "node-info-response": (140, 0, _ANY),
    "v2-multicast-listener-report": (143, 0, _ANY),
}

_DSCP_CLASSES = {
    "CS0": 0x00, "CS1": 0x08, "CS2": 0x10, "CS3": 0x18, "CS4": 0x20, "CS5": 0x28, "CS6": 0x30,
    "CS7": 0x38, "BE": 0x00, "LE": 0x01, "AF11": 0x0A, "AF12": 0x0C, "AF13": 0x0E, "AF21": 0x12,
    "AF22": 0x14, "AF23": 0x16, "AF31": 0x1A, "AF32": 0x1C, "AF33": 0x1E, "AF41": 0x22,
    "AF42": 0x24, "AF43": 0x26, "EF": 0x2E,
}

# /usr/share/firewall4/helpers; none is "available" on a default image (no nf_conntrack_* module)
_CT_HELPERS = {"amanda", "ftp", "RAS", "Q.931", "irc", "netbios-ns", "pptp", "sane", "sip",
               "snmp", "tftp", "rtsp"}

# protocol names -> numbers (subset of /etc/protocols), to compare "esp" with "50"
PROTO_NUMBERS = {
    "icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41, "rsvp": 46,
    "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "eigrp": 88, "ospf": 89, "ipip": 94,
    "etherip": 97, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132, "udplite": 136,
    "mpls-in-ip": 137,
}
_PROTO_ALIASES = {"icmpv6": "ipv6-icmp", "icmp6": "ipv6-icmp", "ipv6-icmp": "ipv6-icmp"}

_ZONE_NAME_RE = re.compile(r"^[A-Za-z_.][A-Za-z0-9/_.-]*$")
_HOOK_CHAINS = ("input", "forward", "output")
_VERDICTS = ("accept", "reject", "drop")

# netifd protocols whose L3 device is "<proto>-<interface>" (approximation of netifd naming)
_PREFIXED_L3 = {"pppoe", "pppoa", "ppp", "3g", "l2tp", "pptp", "6in4", "6to4", "6rd", "dslite",
                "464xlat", "map", "gre", "gretap", "grev6", "vti", "vtiv6", "xfrm", "qmi",
                "ncm", "mbim", "modemmanager"}
_NAME_IS_L3 = {"wireguard", "openvpn", "vxlan", "vxlan6", "relay"}


class RulesetLoadError(RuntimeError):
    """The config makes fw4 render a ruleset that nftables refuses (the firewall does not load)."""


# ---------------------------------------------------------------------------------------------
# Public data model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A warning about the config: a section fw4 skips, or a pitfall fw4 accepts silently.

    ``kind`` is a stable machine-readable code (e.g. ``"unknown_zone"``, ``"rule_without_target"``),
    ``section`` the uci section id (``"vpn_ai"`` or ``"@rule[3]"``, plus the ``name`` option when
    set), ``skipped`` whether fw4 ignores the whole section, ``fatal`` whether nftables would refuse
    the whole ruleset.
    """

    kind: str
    section: str
    message: str
    skipped: bool = False
    fatal: bool = False

    def __str__(self) -> str:
        flag = " [fatal]" if self.fatal else " [skipped]" if self.skipped else ""
        return f"{self.section}: {self.message}{flag}"


@dataclass(frozen=True)
class Match:
    """The match part of one nftables rule, in fw4's rendering order.

    Empty tuples mean "no constraint".  Addresses are nft strings (``10.0.0.0/8``, ``a-b``);
    ``*_masked`` are ``(addr, mask, inverted)`` for non-contiguous masks; ports are ``"53"`` or
    ``"1000-2000"``.  ``l4proto`` is always the semantic protocol constraint; ``show_l4proto`` /
    ``show_nfproto`` only say whether fw4 prints ``meta l4proto`` / ``meta nfproto`` (a port or
    address match implies them).  ``conditions`` are nft fragments the verdict engine cannot
    evaluate (limit, time, mark...): they are assumed to hold.
    """

    family: int = 0
    l4proto: tuple[str, ...] = ()
    iifname: tuple[str, ...] = ()
    iifname_neg: tuple[str, ...] = ()
    iifname_neg_wild: tuple[str, ...] = ()
    oifname: tuple[str, ...] = ()
    oifname_neg: tuple[str, ...] = ()
    oifname_neg_wild: tuple[str, ...] = ()
    saddr: tuple[str, ...] = ()
    saddr_neg: tuple[str, ...] = ()
    saddr_masked: tuple[tuple[str, str, bool], ...] = ()
    daddr: tuple[str, ...] = ()
    daddr_neg: tuple[str, ...] = ()
    daddr_masked: tuple[tuple[str, str, bool], ...] = ()
    sport: tuple[str, ...] = ()
    sport_neg: tuple[str, ...] = ()
    dport: tuple[str, ...] = ()
    dport_neg: tuple[str, ...] = ()
    smac: tuple[str, ...] = ()
    smac_neg: tuple[str, ...] = ()
    icmp_type: tuple[int, ...] = ()
    icmp_code: tuple[tuple[int, int], ...] = ()
    ct_state: tuple[str, ...] = ()
    ct_status: str | None = None
    tcp_flags: str | None = None
    conditions: tuple[str, ...] = ()
    show_nfproto: bool = True
    show_l4proto: bool = True

    def nft(self) -> str:
        """Render the match as nft syntax (possibly empty)."""
        p: list[str] = []
        ipp = "ip" if self.family == 4 else "ip6"
        if self.family and self.show_nfproto:
            p.append(f"meta nfproto {_nfproto(self.family)}")
        if self.l4proto and self.show_l4proto:
            l4 = self.l4proto[0] if len(self.l4proto) == 1 else _nft_set(self.l4proto)
            p.append(f"meta l4proto {l4}")
        for key, pos, neg, wild in (
            ("iifname", self.iifname, self.iifname_neg, self.iifname_neg_wild),
            ("oifname", self.oifname, self.oifname_neg, self.oifname_neg_wild),
        ):
            if pos:
                p.append(f"{key} {_nft_set(pos)}")
            if neg:
                p.append(f"{key} != {_nft_set(neg)}")
            p.extend(f"{key} != {_quote(w)}" for w in wild)
        for d, pos, neg, masked in (
            ("s", self.saddr, self.saddr_neg, self.saddr_masked),
            ("d", self.daddr, self.daddr_neg, self.daddr_masked),
        ):
            if pos:
                p.append(f"{ipp} {d}addr {_nft_set(pos)}")
            if neg:
                p.append(f"{ipp} {d}addr != {_nft_set(neg)}")
            p.extend(
                f"{ipp} {d}addr & {mask} {'!=' if inv else '=='} {addr}"
                for addr, mask, inv in masked
            )
        proto = self.l4proto[0] if self.l4proto else "tcp"
        for d, pos, neg in (("s", self.sport, self.sport_neg), ("d", self.dport, self.dport_neg)):
            if pos:
                p.append(f"{proto} {d}port {_nft_set(pos)}")
            if neg:
                p.append(f"{proto} {d}port != {_nft_set(neg)}")
        if self.smac:
            p.append(f"ether saddr {_nft_set(self.smac)}")
        if self.smac_neg:
            p.append(f"ether saddr != {_nft_set(self.smac_neg)}")
        icmp = "icmp" if self.family == 4 else "icmpv6"
        if self.icmp_type:
            p.append(f"{icmp} type {_nft_set([str(t) for t in self.icmp_type])}")
        if self.icmp_code:
            codes = [f"{t} . {c}" for t, c in self.icmp_code]
            p.append(f"{icmp} type . {icmp} code {_nft_set(codes, force=True)}")
        if self.ct_state:
            p.append(f"ct state {','.join(self.ct_state)}")
        if self.ct_status:
            p.append(f"ct status {self.ct_status}")
        if self.tcp_flags:
            p.append(self.tcp_flags)
        p.extend(self.conditions)
        return " ".join(p)


@dataclass(frozen=True)
class Entry:
    """One rule of a chain: match, optional statement, then a verdict.

    ``action`` is ``"accept"``, ``"drop"``, ``"reject"``, ``"jump"``, ``"goto"``, ``"return"``,
    ``"masquerade"`` or ``None`` (no verdict: the packet continues, e.g. a rule without target).
    ``arg`` is the jump target chain, or the ``reject with ...`` argument.  ``origin`` says where
    the entry comes from: ``"rule:<section>"``, ``"forwarding:<section>"``,
    ``"zone:<zone>:<input|output|forward>"`` (a zone policy), ``"zone:<zone>"`` (zone jump or
    verdict-chain membership), ``"defaults.<input|output|forward>"``, ``"fw4"`` (built-in).
    """

    match: Match
    action: str | None
    arg: str | None = None
    statement: str | None = None
    counter: bool = False
    log_prefix: str | None = None
    comment: str | None = None
    origin: str = "fw4"

    @property
    def verdict_text(self) -> str:
        """The verdict token(s): ``"accept"``, ``"jump input_lan"``, ``""`` for none."""
        if self.action in ("jump", "goto"):
            return f"{self.action} {self.arg}"
        if self.action == "reject" and self.arg:
            return f"reject with {self.arg}"
        return self.action or ""

    def nft(self) -> str:
        """Render the entry as one nft rule line (without indentation)."""
        parts = [self.match.nft()]
        if self.statement:
            parts.append(self.statement)
        if self.counter:
            parts.append("counter")
        if self.log_prefix is not None:
            parts.append(f"log prefix {_quote(self.log_prefix, True)}")
        parts.append(self.verdict_text)
        if self.comment:
            parts.append(f"comment {_quote('!fw4: ' + self.comment, True)}")
        return " ".join(x for x in parts if x)


@dataclass
class Chain:
    """An nftables chain: ordered entries plus, for base chains, hook/type/priority/policy.

    Behaves like the list of its entries (iteration, ``len``, indexing).
    """

    name: str
    entries: list[Entry] = field(default_factory=list)
    hook: str | None = None
    type: str = "filter"
    priority: str = "filter"
    policy: str | None = None

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> Entry:
        return self.entries[i]

    @property
    def verdicts(self) -> list[str]:
        """The verdict token of every entry, in order (``""`` for entries without verdict)."""
        return [e.verdict_text for e in self.entries]


@dataclass(frozen=True)
class Defaults:
    """The effective ``defaults`` section (policies are lower-case ``accept|reject|drop``)."""

    input: str = "drop"
    output: str = "drop"
    forward: str = "drop"
    drop_invalid: bool = False
    synflood_protect: bool = False
    synflood_rate: tuple[int, str] = (25, "second")
    synflood_burst: int | None = 50
    tcp_reject_code: str = "tcp-reset"
    any_reject_code: str = "port-unreachable"
    auto_helper: bool = True
    section: str | None = None


@dataclass(frozen=True)
class ZoneMatch:
    """One zone membership test (fw4's ``match_rules``): devices and/or subnets of a family."""

    family: int
    devices: tuple[str, ...] = ()
    devices_neg: tuple[str, ...] = ()
    devices_neg_wild: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()
    subnets_neg: tuple[str, ...] = ()

    def as_match(self, egress: bool, show_nfproto: bool = True) -> Match:
        """Ingress (``iifname``/``saddr``) or egress (``oifname``/``daddr``) form."""
        if egress:
            return Match(family=self.family, oifname=self.devices, oifname_neg=self.devices_neg,
                         oifname_neg_wild=self.devices_neg_wild, daddr=self.subnets,
                         daddr_neg=self.subnets_neg, show_nfproto=show_nfproto)
        return Match(family=self.family, iifname=self.devices, iifname_neg=self.devices_neg,
                     iifname_neg_wild=self.devices_neg_wild, saddr=self.subnets,
                     saddr_neg=self.subnets_neg, show_nfproto=show_nfproto)


@dataclass
class Zone:
    """A parsed, enabled zone (``section`` is its uci id).

    ``devices`` are the resolved positive device matches in nft form (``tun*`` for ``tun+``),
    ``match_rules`` the membership tests fw4 turns into ``iifname``/``oifname`` jumps, ``sflags``/
    ``dflags`` the verdicts for which ``<verdict>_from_<zone>``/``<verdict>_to_<zone>`` exist.
    """

    name: str
    section: str
    input: str
    output: str
    forward: str
    family: int = 0
    networks: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()
    related_subnets: tuple[str, ...] = ()
    missing_networks: tuple[str, ...] = ()
    masq: bool = False
    masq6: bool = False
    masq_allow_invalid: bool = False
    masq_src: tuple[Any, ...] = ()
    masq_dest: tuple[Any, ...] = ()
    mtu_fix: bool = False
    auto_helper: bool = True
    helpers: tuple[str, ...] = ()
    counter: bool = True
    log: int = 0
    match_rules: tuple[ZoneMatch, ...] = ()
    sflags: set[str] = field(default_factory=set)
    dflags: set[str] = field(default_factory=set)


@dataclass
class Rule:
    """A rule or forwarding as fw4 placed it: ``section`` is the uci id (``vpn_ai``,
    ``@rule[3]``), ``src``/``dest`` a zone name, ``"*"`` or ``None``, ``target`` ``None`` when the
    rule has no verdict, ``entries`` the nft rules (one per protocol/family split) in ``chain``."""

    section: str
    name: str
    kind: str  # "rule" | "forwarding"
    src: str | None
    dest: str | None
    target: str | None
    chain: str
    jump_chain: str | None
    family: int
    entries: list[Entry] = field(default_factory=list)

    @property
    def matches(self) -> list[Match]:
        """The nft matches fw4 emits for this section (one per protocol/family split)."""
        return [e.match for e in self.entries]


@dataclass(frozen=True)
class Flow:
    """The first packet of a new connection.

    ``iif``/``oif`` are a zone name, a netifd interface name or a device name.  ``oif=None`` means
    traffic to the router itself (input), ``iif=None`` traffic the router originates (output).
    ``family`` is inferred from the addresses (default 4; 6 for ``icmpv6``).  ICMP without
    ``icmp_type`` is an echo request.  Fields left ``None`` are "some value matched by no
    explicit address/port set" (a positive set does not match, a negated one does).
    ``dnat=True`` marks a connection that a port forward (redirect) DNATed.

    Example: ``Flow("wan", None, "udp", 51820)``, ``Flow("vpn", "dmz", "tcp", 11434,
    dest_ip="192.168.100.10")``.
    """

    iif: str | None
    oif: str | None
    proto: str = "tcp"
    dest_port: int | None = None
    src_ip: str | None = None
    dest_ip: str | None = None
    src_port: int | None = None
    icmp_type: int | str | None = None
    icmp_code: int | None = None
    family: int | None = None
    src_mac: str | None = None
    dnat: bool = False

    @property
    def chain(self) -> str:
        """The filter hook the packet traverses: ``input``, ``forward`` or ``output``."""
        if self.iif is None and self.oif is None:
            raise ValueError("a flow needs an ingress or an egress interface")
        if self.iif is None:
            return "output"
        if self.oif is None:
            return "input"
        return "forward"


@dataclass(frozen=True)
class Verdict:
    """The fate of a flow, and why.

    ``action``: ``accept``, ``reject`` or ``drop``.  ``chain``/``entry``: the chain rule that
    decided (for a reject through ``handle_reject``, the rule that jumped there), ``None`` entry
    when the base chain's policy decided.  ``reason``: one line for humans.  ``trace``: every
    matching rule on the way.  ``assumptions``: unevaluable conditions assumed to hold.
    """

    action: str
    chain: str
    entry: Entry | None
    reason: str
    trace: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.action == "accept"

    @property
    def origin(self) -> str | None:
        """``origin`` of the deciding entry (e.g. ``"rule:vpn_ai"``, ``"defaults.forward"``)."""
        return self.entry.origin if self.entry else None

    def explain(self) -> str:
        lines = [f"{self.action.upper()}: {self.reason}"]
        lines += [f"  {t}" for t in self.trace]
        lines += [f"  assumed: {a}" for a in self.assumptions]
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"{self.action} ({self.reason})"


@dataclass
class Interface:
    """A netifd interface from the network package: its L3 device and static addresses."""

    name: str
    proto: str | None
    device: str | None
    addresses: tuple[str, ...] = ()


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
        """Decide the first packet of a new connection, following fw4's chains like nftables.

        Raises :class:`RulesetLoadError` when fw4's ruleset for this config would not load.
        """
        if self.load_error:
            raise RulesetLoadError(self.load_error)
        pkt = self._packet(flow)
        hook = flow.chain
        trace: list[str] = []
        assumptions: list[str] = []
        path = self._run(hook, pkt, trace, assumptions, 0)
        base = self.chains[hook]
        if path is None:
            policy = base.policy or "accept"
            return Verdict(policy, hook, None, f"policy {policy} of chain {hook} "
                           f"(defaults.{hook}; no rule matched)", tuple(trace),
                           tuple(dict.fromkeys(assumptions)))
        action, steps = path
        chain, entry = _deciding_step(steps)
        return Verdict(action, chain, entry, _reason(chain, entry, self),
                       tuple(trace), tuple(dict.fromkeys(assumptions)))

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
             depth: int) -> tuple[str, list[tuple[str, Entry]]] | None:
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
            act = entry.action
            trace.append(f"{name}: {entry.nft()}")
            if act in _VERDICTS:
                return act, [(name, entry)]
            if act in ("jump", "goto"):
                assert entry.arg is not None
                sub = self._run(entry.arg, pkt, trace, assumptions, depth + 1)
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


# ---------------------------------------------------------------------------------------------
# Value parsers (fw4.uc parse_*); each returns None for an invalid value
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Helpers for rendering
# ---------------------------------------------------------------------------------------------

_UNQUOTED = re.compile(r"^([0-9A-Fa-f:./-]+)( \. [0-9A-Fa-f:./-]+)*$")


def _quote(s: str, force: bool = False) -> str:
    if force or not _UNQUOTED.match(s):
        return '"' + s.replace('"', "'") + '"'
    return s


def _nft_set(values: Sequence[str], force: bool = False) -> str:
    v = list(dict.fromkeys(values))
    if force or len(v) != 1:
        return "{ " + ", ".join(_quote(x) for x in v) + " }"
    return _quote(v[0])


def _nfproto(family: int, human: bool = False) -> str:
    if family == 4:
        return "IPv4" if human else "ipv4"
    if family == 6:
        return "IPv6" if human else "ipv6"
    return "IPv4/IPv6"


def section_id(package: Sequence[Section], index: int) -> str:
    """uci id of section ``index``: its name, or ``@type[n]`` for an anonymous section."""
    s = package[index]
    if s.get("name"):
        return str(s["name"])
    n = sum(1 for x in package[:index] if x.get("type") == s.get("type"))
    return f"@{s.get('type')}[{n}]"


# ---------------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------------

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

    def __init__(self, b: _Builder, sid: str, sec: Section) -> None:
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


class _Builder:
    def __init__(self, config: Mapping[str, Sequence[Section]],
                 devices: Mapping[str, str] | None, strict_zone_names: bool) -> None:
        self.fw_pkg = list(config.get("firewall") or [])
        self.net_pkg = list(config.get("network") or [])
        self.devmap = dict(devices or {})
        self.strict_zone_names = strict_zone_names
        self.findings: list[Finding] = []
        self.zones: list[Zone] = []
        self.rules: list[Rule] = []
        self.defaults = Defaults()
        self.ipsets: set[str] = set()
        self.interfaces = self._interfaces()

    # -- findings ---------------------------------------------------------------------------
    def warn(self, kind: str, section: str, msg: str, skipped: bool = False,
             fatal: bool = False) -> None:
        self.findings.append(Finding(kind, section, msg, skipped, fatal))

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
            out[name] = Interface(name, o.get("proto"), l3(name), _static_addresses(o))
        if not raw:  # no network package given: the mapping is the whole runtime state
            for name, dev in self.devmap.items():
                out[name] = Interface(name, None, dev)
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
                self.warn("not_modelled", sid, f"'{kind}' sections are not modelled")
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
            self.warn("not_modelled", label, f"target '{target}' is not modelled (it never "
                      "gives a filter verdict)")
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

    def _redirect(self, s: _Sec) -> None:
        try:
            enabled = s.opt("enabled", _parse_bool, "1")
            src = s.opt("src", self._zone_ref)
            dest = s.opt("dest", self._zone_ref)
            target = s.opt("target", lambda v: _enum(v, _TARGETS), "dnat")
            reflection = s.opt("reflection", _parse_bool, "1")
        except _Invalid as e:
            self.warn("invalid_option", s.label(), f"{e}; redirect skipped", skipped=True)
            return
        if not enabled:
            self.warn("disabled", s.label(), "is disabled, ignoring section", skipped=True)
            return
        self.warn("not_modelled", s.label(), "redirect (port forward) rules are only modelled "
                  "as 'ct status dnat accept' (Flow(dnat=True))")
        if target not in ("dnat", "snat"):
            target = "dnat"
        src_zone = src if isinstance(src, Zone) else None
        dest_zone = dest if isinstance(dest, Zone) else None
        if target == "dnat" and src_zone is not None:
            if reflection and dest_zone is not None and src_zone.masq:
                dest_zone.dflags.update(("accept", "dnat", "snat"))
            src_zone.dflags.add("dnat")
        elif target == "snat" and dest_zone is not None:
            dest_zone.dflags.add("snat")

    # -- pitfalls that fw4 accepts silently --------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Chain construction (templates/ruleset.uc of 23.05)
# ---------------------------------------------------------------------------------------------


class _Chains:
    def __init__(self, b: _Builder) -> None:
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
        for z in zones:
            if "dnat" in z.dflags:
                self.add(f"dstnat_{z.name}")
            if "snat" not in z.dflags:
                continue
            entries = []
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


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


def build(config: Mapping[str, Sequence[Section]], devices: Mapping[str, str] | None = None,
          *, strict_zone_names: bool = False) -> Firewall:
    """Parse the ``firewall`` and ``network`` packages the way fw4 does and build the chains.

    ``devices`` maps netifd interface names to their runtime L3 device (what fw4 asks ubus for),
    e.g. ``{"lan": "br-lan", "wan": "wan", "wg0": "wg0", "dmz": "lan4"}``; interfaces not in it
    are resolved from the network package.  Only interfaces configured in the network package
    exist (as for netifd); without a network package the mapping alone defines them.
    ``strict_zone_names=True`` models firewall4 after Oct 2023 (invalid zone names are skipped);
    the default models 23.05 (the zone is rendered and the ruleset fails to load).

    Example::

        fw = build({"network": net_sections, "firewall": fw_sections})
        for f in fw.warnings:
            print(f)
        fw.verdict(Flow("wan", None, "udp", 51820)).action   # -> "accept"
    """
    return _Builder(config, devices, strict_zone_names).run()


def render_nft(fw: Firewall, *, user_includes: bool = True) -> str:
    """Render the chains as an nftables ruleset in fw4's layout (``table inet fw4``).

    The result can be checked with ``nft -c -f`` and loaded with ``nft -f``.  Rule lines equal
    fw4 23.05's for the modelled features; not rendered: flowtables, ipset definitions, redirect
    (DNAT) rules, mark/dscp/notrack/helper rules.

    Example::

        Path("/tmp/fw4.nft").write_text(render_nft(build(config)))
    """
    out = ["table inet fw4", "flush table inet fw4", "", "table inet fw4 {", "\t#",
           "\t# Defines", "\t#", ""]
    for z in fw.zones:
        ident = re.sub(r"^([0-9])", r"_\1", z.name)
        out.append(f"\tdefine {ident}_devices = {_nft_set(z.devices, force=True)}")
        out.append(f"\tdefine {ident}_subnets = {_nft_set(z.related_subnets, force=True)}")
        out.append("")
    out += ["", "\t#", "\t# User includes", "\t#", ""]
    if user_includes:
        out.append('\tinclude "/etc/nftables.d/*.nft"')
    out += ["", "", "\t#", "\t# Filter rules", "\t#", ""]
    headers = {"dstnat": "NAT rules", "raw_prerouting": "Raw rules (notrack)",
               "mangle_prerouting": "Mangle rules"}
    for name, chain in fw.chains.items():
        for e in chain.entries:
            if any(c.startswith("<ipset ") for c in e.match.conditions):
                raise NotImplementedError(f"render_nft does not render ipsets ({e.comment})")
        if name in headers:
            out += ["", "\t#", f"\t# {headers[name]}", "\t#", ""]
        out.append(f"\tchain {name} {{")
        if chain.hook:
            out.append(f"\t\ttype {chain.type} hook {chain.hook} priority {chain.priority}; "
                       f"policy {chain.policy or 'accept'};")
        for e in chain.entries:
            out.append(f"\t\t{e.nft()}")
        out += ["\t}", ""]
    out.append("}")
    return "\n".join(out) + "\n"

"""The data model of the firewall: findings, matches, chain entries, zones, rules, flows,
verdicts (what :func:`firewall.build` produces and :meth:`Firewall.verdict` returns)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from firewall.syntax import _nfproto, _nft_set, _quote

Section = Mapping[str, Any]


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
    the whole ruleset.  ``scope`` (for constructs the model does not evaluate): the zones whose
    ingress traffic the construct could affect (``("*",)`` = every flow); ``None`` when it cannot
    change a verdict.  The proof answers "unknown" for the flows in scope.
    """

    kind: str
    section: str
    message: str
    skipped: bool = False
    fatal: bool = False
    scope: tuple[str, ...] | None = None

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
    ``"masquerade"``, ``"dnat"``/``"snat"``/``"redirect"`` (``arg`` ``"ip to 10.0.0.5:80"``,
    ``nat_to`` the new address and port) or ``None`` (no verdict: the packet continues, e.g. a
    rule without target).
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
    nat_to: tuple[str | None, int | None] | None = None

    @property
    def verdict_text(self) -> str:
        """The verdict token(s): ``"accept"``, ``"jump input_lan"``, ``""`` for none."""
        if self.action in ("jump", "goto"):
            return f"{self.action} {self.arg}"
        if self.action == "reject" and self.arg:
            return f"reject with {self.arg}"
        if self.action in ("dnat", "snat", "redirect") and self.arg:
            return f"{self.action} {self.arg}"
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
    matching rule on the way.  ``assumptions``: unevaluable conditions assumed to hold,
    ``assumed_by`` the origins of the entries that carry them.  ``dnat``: the redirect entry that
    rewrote the destination before filtering (``None`` when no port forward applied).
    """

    action: str
    chain: str
    entry: Entry | None
    reason: str
    trace: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    assumed_by: tuple[str, ...] = ()
    dnat: Entry | None = None

    @property
    def accepted(self) -> bool:
        return self.action == "accept"

    @property
    def origin(self) -> str | None:
        """``origin`` of the deciding entry (e.g. ``"rule:vpn_ai"``, ``"defaults.forward"``)."""
        return self.entry.origin if self.entry else None

    @property
    def sections(self) -> tuple[str, ...]:
        """The uci sections responsible for this verdict (``zone:dmz``, ``rule:vpn_ai``,
        ``redirect:web``, ``defaults``): the deciding entry and any port forward on the way."""
        out = []
        if self.dnat is not None:
            out.append(self.dnat.origin)
        o = self.origin
        if o is None:
            out.append("defaults")
        elif o.startswith("zone:"):
            out.append(":".join(o.split(":")[:2]))
        elif o.startswith("defaults."):
            out.append("defaults")
        elif o != "fw4":
            out.append(o)
        return tuple(dict.fromkeys(out))

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

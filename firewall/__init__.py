"""The firewall model: OpenWrt firewall4 (fw4) semantics, UCI config -> chains -> packet verdicts,
its nft rendering and the proof of the network's invariants.

Modules (one job each): :mod:`firewall.config` (parse the ``firewall``/``network`` packages,
:func:`build`), :mod:`firewall.sections` (rule/forwarding/redirect sections),
:mod:`firewall.values` (option value parsers), :mod:`firewall.chains` (chain construction),
:mod:`firewall.model` (the verdict engine), :mod:`firewall.types` (the data model),
:mod:`firewall.redirects` (port forwards, NAT reflection, SNAT), :mod:`firewall.render` (nft
text), :mod:`firewall.tables` / :mod:`firewall.syntax` (constants, nft quoting); and the proof:
:mod:`firewall.flows` (probes from real addresses), :mod:`firewall.policy` (per-peer access,
policy tests), :mod:`firewall.proof` (invariants: holds / violated / unknown).

What is modelled (see the research notes on OpenWrt, §D.2 and §D.2b, and the real fw4
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
* **Redirects** (:mod:`firewall.redirects`): DNAT port forwards (``dstnat_<src>``, then the
  filter sees the rewritten packet and fw4's ``ct status dnat accept``), NAT reflection
  (``dstnat``/``srcnat`` of the reflection zones), SNAT (``srcnat_<dest>``).
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
``ct state established,related accept``), ``config nat``, includes,
ipset contents, ct helper bodies, mark/dscp/notrack/helper *targets* (they never give a filter
verdict), flow offloading, runtime addresses (``*_subnets`` defines use static config only).
Conditions the flow cannot express (limit, time, mark, dscp, ipset, helper) are assumed to hold
and reported in :attr:`Verdict.assumptions` (:attr:`Verdict.assumed_by` names their sections).
Constructs that are not evaluated are findings with a ``scope`` (the zones whose flows they may
affect); :mod:`firewall.proof` answers "unknown" for those flows.

Input: a config is ``{"network": [...], "firewall": [...], "dhcp": [...]}``, each package a list
of sections ``{"name": str | None, "type": str, "options": {opt: str | list[str]}}`` in file order
(what the project's ``uci export`` fact returns).

Example::

    fw = build(config, devices={"lan": "br-lan", "wan": "wan", "wg0": "wg0", "dmz": "lan4"})
    v = fw.verdict(Flow("vpn", "dmz", "tcp", 11434, dest_ip="192.168.100.10"))
    assert v.action == "accept", v.explain()
    print(render_nft(fw))            # loadable with `nft -f`
"""

from firewall.config import build, section_id
from firewall.model import Firewall
from firewall.render import render_nft
from firewall.tables import ICMP4_TYPES, ICMP6_TYPES, PROTO_NUMBERS
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
    ZoneMatch,
)

__all__ = [
    "ICMP4_TYPES",
    "ICMP6_TYPES",
    "PROTO_NUMBERS",
    "Chain",
    "Defaults",
    "Entry",
    "Finding",
    "Firewall",
    "Flow",
    "Interface",
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

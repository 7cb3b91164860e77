"""Tests for the firewall package, the model of OpenWrt firewall4 semantics.

Ground truth: openwrt.md §D.2 (verdict table) and §D.2b, and the rulesets the REAL firewall4 of
OpenWrt 23.05 produced from the fixture configs (``fixtures/fw4/*.nft``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from firewall import Firewall, Flow, RulesetLoadError, build, render_nft
from tests.harness.fw4_fixtures import (
    AI,
    DEVICES,
    FIXTURES,
    apply_uci_set,
    factory_config,
    parse_uci_config,
    sec,
    set_option,
    target_config,
    verdict,
    with_sections,
)


@pytest.fixture(scope="module")
def target() -> Firewall:
    return build(target_config(), DEVICES)


@pytest.fixture(scope="module")
def factory() -> Firewall:
    return build(factory_config(), DEVICES)


# ---------------------------------------------------------------------------------------------
# §D.2 "Applied to the target config": every verdict
# ---------------------------------------------------------------------------------------------

TARGET_TABLE = [
    # (description, flow, expected verdict, expected origin of the deciding entry)
    ("WAN -> router udp/51820", Flow("wan", None, "udp", 51820), "accept", "rule:wg_in"),
    ("WAN -> router tcp/22", Flow("wan", None, "tcp", 22), "reject", "zone:wan:input"),
    ("WAN -> router udp/53", Flow("wan", None, "udp", 53), "reject", "zone:wan:input"),
    ("WAN -> router tcp/51820", Flow("wan", None, "tcp", 51820), "reject", "zone:wan:input"),
    ("VPN -> AI tcp/11434", Flow("vpn", "dmz", "tcp", 11434, src_ip="10.10.10.2", dest_ip=AI),
     "accept", "rule:vpn_ai"),
    ("VPN -> AI tcp/22", Flow("vpn", "dmz", "tcp", 22, dest_ip=AI), "reject",
     "defaults.forward"),
    ("VPN -> other DMZ host tcp/11434",
     Flow("vpn", "dmz", "tcp", 11434, dest_ip="192.168.100.20"), "reject", "defaults.forward"),
    ("VPN -> AI udp/11434", Flow("vpn", "dmz", "udp", 11434, dest_ip=AI), "reject",
     "defaults.forward"),
    ("VPN -> AI ping", Flow("vpn", "dmz", "icmp", dest_ip=AI), "reject", "defaults.forward"),
    ("VPN -> LAN tcp/22", Flow("vpn", "lan", "tcp", 22, dest_ip="192.168.1.1"), "reject",
     "defaults.forward"),
    ("VPN -> WAN tcp/443", Flow("vpn", "wan", "tcp", 443, dest_ip="1.1.1.1"), "reject",
     "defaults.forward"),
    ("VPN client <-> VPN client", Flow("wg0", "wg0", "tcp", 22, src_ip="10.10.10.2",
                                       dest_ip="10.10.10.3"), "reject", "zone:vpn:forward"),
    ("VPN -> router DNS", Flow("vpn", None, "udp", 53), "reject", "zone:vpn:input"),
    ("VPN -> router SSH", Flow("vpn", None, "tcp", 22), "reject", "zone:vpn:input"),
    ("DMZ -> WAN", Flow("dmz", "wan", "tcp", 443, src_ip=AI, dest_ip="1.1.1.1"), "accept",
     "forwarding:dmz_wan"),
    ("DMZ -> LAN", Flow("dmz", "lan", "tcp", 22), "reject", "defaults.forward"),
    ("DMZ -> VPN", Flow("dmz", "vpn", "tcp", 22), "reject", "defaults.forward"),
    ("DMZ -> router DHCP udp/67", Flow("dmz", None, "udp", 67), "accept", "rule:dmz_dhcp"),
    ("DMZ -> router DNS udp/53", Flow("dmz", None, "udp", 53), "accept", "rule:dmz_dns"),
    ("DMZ -> router DNS tcp/53", Flow("dmz", None, "tcp", 53), "accept", "rule:dmz_dns"),
    ("DMZ -> router SSH", Flow("dmz", None, "tcp", 22), "reject", "zone:dmz:input"),
    ("DMZ -> router HTTP", Flow("dmz", None, "tcp", 80), "reject", "zone:dmz:input"),
    ("LAN -> DMZ (no lan_dmz)", Flow("lan", "dmz", "tcp", 11434, dest_ip=AI), "reject",
     "defaults.forward"),
    ("LAN -> WAN", Flow("lan", "wan", "tcp", 443), "accept", "forwarding:@forwarding[0]"),
    ("LAN -> router SSH", Flow("lan", None, "tcp", 22), "accept", "zone:lan:input"),
    ("router -> WAN", Flow(None, "wan", "udp", 53), "accept", "zone:wan:output"),
    ("loopback", Flow("lo", None, "tcp", 22), "accept", "fw4"),
]


@pytest.mark.parametrize("desc,flow,expected,origin", TARGET_TABLE,
                         ids=[t[0] for t in TARGET_TABLE])
def test_target_config_verdict_table(target: Firewall, desc: str, flow: Flow, expected: str,
                                     origin: str) -> None:
    v = target.verdict(flow)
    assert v.action == expected, v.explain()
    assert v.origin == origin, v.explain()


def test_vpn_ai_rule_is_ipv4_only(target: Firewall) -> None:
    """dest_ip 192.168.100.10 makes the rule IPv4-only (family inference)."""
    rule = next(r for r in target.rules if r.section == "vpn_ai")
    assert rule.family == 4 and rule.chain == "forward_vpn" and rule.jump_chain == "accept_to_dmz"
    assert verdict(target, "vpn", "dmz", "tcp", 11434, dest_ip="fd00::10") == "reject"


def test_reject_is_active_and_explained(target: Firewall) -> None:
    v = target.verdict(Flow("vpn", "lan", "tcp", 22))
    assert v.chain == "forward" and v.entry is not None and v.entry.arg == "handle_reject"
    assert "defaults.forward REJECT" in v.reason
    assert any(t.startswith("handle_reject: meta l4proto tcp reject with tcp reset")
               for t in v.trace)
    v = target.verdict(Flow("vpn", "vpn", "udp", 53))
    assert v.chain == "forward_vpn" and "zone vpn forward policy REJECT" in v.reason
    assert any(t.startswith("reject_to_vpn: ") for t in v.trace)


# ---------------------------------------------------------------------------------------------
# §D.2b findings
# ---------------------------------------------------------------------------------------------


def test_factory_ipsec_rules_open_wan_to_lan(factory: Firewall, target: Firewall) -> None:
    for fw in (factory, target):
        assert verdict(fw, "wan", "lan", "esp") == "accept"
        v = fw.verdict(Flow("wan", "lan", "udp", 500))
        assert v.action == "accept" and "Allow-ISAKMP" in v.reason
        assert verdict(fw, "wan", "lan", "udp", 501) == "reject"
        assert verdict(fw, "wan", "lan", "tcp", 500) == "reject"
        assert verdict(fw, "wan", "lan", "tcp", 22) == "reject"
        assert verdict(fw, "wan", None, "udp", 68) == "accept"  # Allow-DHCP-Renew
        assert verdict(fw, "wan", None, "icmp") == "accept"  # Allow-Ping (IPv4)
    # factory: no WireGuard rule yet
    assert verdict(factory, "wan", None, "udp", 51820) == "reject"


def test_disabling_ipsec_rules_closes_wan(target: Firewall) -> None:
    cfg = target_config()
    for name in ("Allow-IPSec-ESP", "Allow-ISAKMP"):
        cfg = set_option(cfg, "firewall", "rule", {"name": name}, enabled="0")
    fw = build(cfg, DEVICES)
    assert verdict(fw, "wan", "lan", "esp") == "reject"
    assert verdict(fw, "wan", "lan", "udp", 500) == "reject"
    assert {f.kind for f in fw.skipped} == {"disabled"}
    assert "meta l4proto esp" not in render_nft(fw)


def test_reject_rule_without_proto_does_not_cover_icmp(target: Firewall) -> None:
    block = sec("rule", "block_wan", name="Block-WAN", src="wan", target="REJECT")
    fw = build(with_sections(target_config(), block, before="rule"), DEVICES)
    assert fw.chains["input_wan"].verdicts[:2] == ["jump handle_reject"] * 2
    assert verdict(fw, "wan", None, "udp", 51820) == "reject"
    assert verdict(fw, "wan", None, "tcp", 22) == "reject"
    v = fw.verdict(Flow("wan", None, "icmp"))
    assert v.action == "accept" and "Allow-Ping" in v.reason
    assert fw.findings("block_rule_tcpudp_only")
    block_all = sec("rule", "block_wan", name="Block-WAN", src="wan", proto="all",
                    target="REJECT")
    fw = build(with_sections(target_config(), block_all, before="rule"), DEVICES)
    assert verdict(fw, "wan", None, "icmp") == "reject"
    assert verdict(fw, "wan", None, "esp") == "reject"
    assert not fw.findings("block_rule_tcpudp_only")


def test_defaults_forward_accept_opens_inter_zone_traffic() -> None:
    cfg = set_option(target_config(), "firewall", "defaults", {}, forward="ACCEPT")
    fw = build(cfg, DEVICES)
    assert fw.chains["forward"].policy == "accept"
    assert verdict(fw, "vpn", "wan", "tcp", 443) == "accept"
    assert verdict(fw, "vpn", "lan", "tcp", 22) == "accept"
    assert verdict(fw, "vpn", "dmz", "tcp", 22, dest_ip=AI) == "accept"
    assert verdict(fw, "wan", "lan", "tcp", 22) == "accept"  # unsolicited WAN -> LAN
    assert verdict(fw, "wan", "dmz", "tcp", 11434) == "accept"
    # ... but intra-zone traffic and router input stay rejected by the zone policies
    assert verdict(fw, "wg0", "wg0", "tcp", 22) == "reject"
    assert verdict(fw, "vpn", None, "udp", 53) == "reject"
    assert verdict(fw, "wan", None, "tcp", 22) == "reject"
    assert fw.findings("defaults_forward_accept")
    cfg = set_option(target_config(), "firewall", "defaults", {}, forward="DROP")
    assert verdict(build(cfg, DEVICES), "vpn", "lan", "tcp", 22) == "drop"


def test_forwarding_vpn_to_dmz_opens_every_dmz_port() -> None:
    fwd = sec("forwarding", "vpn_dmz", src="vpn", dest="dmz")
    fw = build(with_sections(target_config(), fwd), DEVICES)
    assert fw.chains["forward_vpn"].verdicts == ["jump accept_to_dmz", "jump accept_to_dmz",
                                                 "jump reject_to_vpn"]
    for proto, port in (("tcp", 22), ("udp", 53), ("tcp", 11434)):
        v = fw.verdict(Flow("vpn", "dmz", proto, port, dest_ip="192.168.100.20"))
        assert v.action == "accept" and v.origin == "forwarding:vpn_dmz"
    assert verdict(fw, "vpn", "dmz", "icmp") == "accept"
    assert verdict(fw, "vpn", "lan", "tcp", 22) == "reject"


def test_forwardings_are_placed_after_rules() -> None:
    """A forwarding listed before the rules still lands after them in forward_Z."""
    fwd = sec("forwarding", "vpn_dmz", src="vpn", dest="dmz")
    fw = build(with_sections(target_config(), fwd, before="zone"), DEVICES)
    entries = fw.chains["forward_vpn"].entries
    assert [e.origin for e in entries] == ["rule:vpn_ai", "forwarding:vpn_dmz",
                                           "zone:vpn:forward"]


def test_rule_with_unknown_zone_is_skipped_and_fails_open() -> None:
    cfg = set_option(target_config(), "firewall", "defaults", {}, forward="ACCEPT")
    good = sec("rule", "vpn_block", name="Block-VPN", src="vpn", dest="lan", proto="all",
               target="REJECT")
    fw = build(with_sections(cfg, good), DEVICES)
    assert verdict(fw, "vpn", "lan", "tcp", 22) == "reject"
    typo = sec("rule", "vpn_block", name="Block-VPN", src="vpn", dest="LAN", proto="all",
               target="REJECT")
    fw = build(with_sections(cfg, typo), DEVICES)
    assert verdict(fw, "vpn", "lan", "tcp", 22) == "accept"  # the skipped REJECT fails open
    (finding,) = fw.findings("unknown_zone")
    assert finding.skipped and "vpn_block" in finding.section and "'dest'" in finding.message
    assert not any(r.section == "vpn_block" for r in fw.rules)
    # a skipped ACCEPT fails closed
    cfg = set_option(target_config(), "firewall", "rule", {"name": "Allow-VPN-to-AI"},
                     dest="DMZ")
    fw = build(cfg, DEVICES)
    assert verdict(fw, "vpn", "dmz", "tcp", 11434, dest_ip=AI) == "reject"
    assert fw.findings("unknown_zone")[0].skipped


def test_rule_without_target_gives_no_verdict() -> None:
    counter = sec("rule", "count_ssh", name="Count-SSH", src="vpn", dest="dmz", proto="tcp",
                  dest_port="22")
    fw = build(with_sections(target_config(), counter, before="rule"), DEVICES)
    (rule,) = [r for r in fw.rules if r.section == "count_ssh"]
    assert rule.target is None and rule.entries[0].action is None
    assert fw.chains["forward_vpn"].verdicts == ["", "jump accept_to_dmz", "jump reject_to_vpn"]
    v = fw.verdict(Flow("vpn", "dmz", "tcp", 22, dest_ip=AI))
    assert v.action == "reject" and v.origin == "defaults.forward"
    assert any("Count-SSH" in t for t in v.trace)  # it matched, and did nothing
    assert fw.findings("rule_without_target")
    assert 'tcp dport 22 counter comment "!fw4: Count-SSH"' in render_nft(fw)
    # same for an ACCEPT intent without target: VPN -> AI would stay closed
    cfg = copy.deepcopy(target_config())
    del next(s for s in cfg["firewall"] if s["name"] == "vpn_ai")["options"]["target"]
    assert verdict(build(cfg, DEVICES), "vpn", "dmz", "tcp", 11434, dest_ip=AI) == "reject"


def test_rule_with_dest_but_no_src_is_an_output_rule() -> None:
    cfg = copy.deepcopy(target_config())
    del next(s for s in cfg["firewall"] if s["name"] == "vpn_ai")["options"]["src"]
    fw = build(cfg, DEVICES)
    (rule,) = [r for r in fw.rules if r.section == "vpn_ai"]
    assert rule.chain == "output_dmz"
    assert fw.chains["forward_vpn"].verdicts == ["jump reject_to_vpn"]
    assert verdict(fw, "vpn", "dmz", "tcp", 11434, dest_ip=AI) == "reject"
    assert verdict(fw, None, "dmz", "tcp", 11434, dest_ip=AI) == "accept"
    assert fw.findings("rule_dest_without_src")


def test_lan_to_dmz_optional_forwarding() -> None:
    data = json.loads((FIXTURES / "uci" / "lan_to_dmz_optional_forwarding.json").read_text())
    steps = []
    for step in data["steps"]:
        if step["argv"][:2] == ["uci", "commit"]:
            break
        if step["argv"][:2] == ["uci", "set"]:
            steps.append(step["argv"])
    assert [a[2] for a in steps] == ["firewall.lan_dmz=forwarding", "firewall.lan_dmz.src=lan",
                                     "firewall.lan_dmz.dest=dmz"]
    # that fixture's own config is a factory router without a dmz zone: fw4 skips the section
    own = {pkg: parse_uci_config(text) for pkg, text in data["initial_config"].items()}
    for argv in steps:
        apply_uci_set(own, argv)
    fw = build(own, DEVICES)
    assert [(f.kind, f.section) for f in fw.skipped] == [("unknown_zone", "lan_dmz")]
    # the same commands on the project's target config
    cfg = target_config()
    assert verdict(build(cfg, DEVICES), "lan", "dmz", "tcp", 11434, dest_ip=AI) == "reject"
    for argv in steps:
        apply_uci_set(cfg, argv)
    fw = build(cfg, DEVICES)
    for port in (11434, 22):
        v = fw.verdict(Flow("lan", "dmz", "tcp", port, dest_ip=AI))
        assert v.action == "accept" and v.origin == "forwarding:lan_dmz"
    assert verdict(fw, "dmz", "lan", "tcp", 22) == "reject"  # not symmetric
    assert fw.chains["forward_lan"].verdicts == ["jump accept_to_wan", "jump accept_to_dmz",
                                                 "jump accept_to_lan"]


# ---------------------------------------------------------------------------------------------
# Parsing details and silent pitfalls
# ---------------------------------------------------------------------------------------------


def test_zone_devices_and_defaults(target: Firewall) -> None:
    assert [(z.name, z.devices) for z in target.zones] == [
        ("lan", ("br-lan",)), ("wan", ("wan",)), ("vpn", ("wg0",)), ("dmz", ("lan4",))]
    assert (target.defaults.input, target.defaults.output, target.defaults.forward) == (
        "reject", "accept", "reject")
    assert target.zone("wan").masq and "snat" in target.zone("wan").dflags
    assert target.load_error is None and target.skipped == []
    # without the explicit mapping, devices come from the network package
    fw = build(target_config())
    assert [z.devices for z in fw.zones] == [("br-lan",), ("wan",), ("wg0",), ("lan4",)]


def test_missing_defaults_mean_drop() -> None:
    cfg = copy.deepcopy(target_config())
    cfg["firewall"] = [s for s in cfg["firewall"] if s["type"] != "defaults"]
    fw = build(cfg, DEVICES)
    assert (fw.defaults.input, fw.defaults.output, fw.defaults.forward) == ("drop",) * 3
    assert fw.chains["input"].policy == "drop" and fw.chains["output"].policy == "drop"
    assert verdict(fw, "vpn", "lan", "tcp", 22) == "drop"
    # zones with explicit policies keep them
    assert verdict(fw, "vpn", None, "tcp", 22) == "reject"
    assert verdict(fw, "lan", None, "tcp", 22) == "accept"


def test_second_defaults_section_is_ignored() -> None:
    extra = sec("defaults", None, input="ACCEPT", forward="ACCEPT")
    fw = build(with_sections(target_config(), extra), DEVICES)
    assert fw.defaults.forward == "reject"
    assert fw.findings("duplicate_defaults")[0].skipped


def test_zone_policy_defaults_to_defaults_and_enum_prefix() -> None:
    z = sec("zone", "guest", name="guest", network="guest", input="rej")
    net = sec("interface", "guest", device="lan3", proto="static")
    cfg = with_sections(with_sections(target_config(), z), net, pkg="network")
    fw = build(cfg, DEVICES)
    g = fw.zone("guest")
    assert (g.input, g.output, g.forward, g.devices) == ("reject", "accept", "reject", ("lan3",))
    assert verdict(fw, "guest", "lan", "tcp", 22) == "reject"
    assert fw.findings("device_is_bridge_port")  # lan3 is still a br-lan port


def test_disabled_zone_makes_its_rules_unknown() -> None:
    cfg = set_option(target_config(), "firewall", "zone", {"name": "vpn"}, enabled="0")
    fw = build(cfg, DEVICES)
    assert fw.zone("vpn") is None
    skipped = {f.section.split(" ")[0]: f.kind for f in fw.skipped}
    assert skipped == {"vpn": "disabled", "vpn_ai": "unknown_zone"}
    assert verdict(fw, "wg0", None, "tcp", 22) == "reject"  # defaults.input
    assert fw.verdict(Flow("wg0", None, "tcp", 22)).origin == "defaults.input"


@pytest.mark.parametrize("options,kind", [
    ({"dest_port": "70000"}, "invalid_option"),
    ({"dest_port": "22-21"}, "invalid_option"),
    ({"dest_ip": "192.168.100.300"}, "invalid_option"),
    ({"family": "ipx"}, "invalid_option"),
    ({"target": "PERMIT"}, "invalid_option"),
    ({"src": ["vpn"]}, "invalid_option"),  # list where a scalar is expected
    ({"src_ip": "fd00::/64"}, "family_mismatch"),  # IPv6 source, IPv4 destination
    ({"family": "ipv6"}, "family_mismatch"),
    ({"enabled": "0"}, "disabled"),
])
def test_invalid_rule_sections_are_skipped(options: dict[str, Any], kind: str) -> None:
    cfg = set_option(target_config(), "firewall", "rule", {"name": "Allow-VPN-to-AI"}, **options)
    fw = build(cfg, DEVICES)
    assert [f.kind for f in fw.skipped] == [kind]
    assert fw.skipped[0].section == "vpn_ai (Allow-VPN-to-AI)"
    assert fw.chains["forward_vpn"].verdicts == ["jump reject_to_vpn"]
    assert verdict(fw, "vpn", "dmz", "tcp", 11434, dest_ip=AI) == "reject"


def test_proto_forms() -> None:
    cfg = target_config()
    rules = [
        sec("rule", "r1", name="R1", src="vpn", proto="tcp udp", dest_port="80 443",
            target="ACCEPT"),
        sec("rule", "r2", name="R2", src="vpn", proto=["tcp", "udp"], dest_port="8080",
            target="ACCEPT"),
        sec("rule", "r3", name="R3", src="vpn", proto="esp", dest_port="1", target="ACCEPT"),
        sec("rule", "r4", name="R4", src="vpn", proto="icmp", target="ACCEPT"),
        sec("rule", "r5", name="R5", src="vpn", proto="all", dest_port="9", target="DROP"),
    ]
    fw = build(with_sections(cfg, *rules), DEVICES)
    lines = [e.nft() for e in fw.chains["input_vpn"].entries]
    assert lines == [
        'tcp dport { 80, 443 } counter accept comment "!fw4: R1"',
        'udp dport { 80, 443 } counter accept comment "!fw4: R1"',
        'tcp dport 8080 counter accept comment "!fw4: R2"',
        'udp dport 8080 counter accept comment "!fw4: R2"',
        'meta l4proto esp counter accept comment "!fw4: R3"',  # dest_port ignored
        'meta l4proto { "icmp", "ipv6-icmp" } counter accept comment "!fw4: R4"',
        'counter drop comment "!fw4: R5"',  # proto all: ports ignored
        "jump reject_from_vpn",
    ]
    assert verdict(fw, "vpn", None, "udp", 443) == "accept"
    assert verdict(fw, "vpn", None, "esp") == "accept"
    assert verdict(fw, "vpn", None, "icmpv6", dest_ip="fe80::1") == "accept"
    assert verdict(fw, "vpn", None, "gre") == "drop"
    assert not fw.load_error


def test_proto_list_item_with_space_breaks_the_ruleset() -> None:
    bad = sec("rule", "bad", src="vpn", proto=["tcp udp"], dest_port="1", target="ACCEPT")
    fw = build(with_sections(target_config(), bad), DEVICES)
    assert fw.findings("invalid_protocol")[0].fatal and fw.load_error
    with pytest.raises(RulesetLoadError):
        fw.verdict(Flow("vpn", None, "tcp", 1))


def test_icmp_type_and_family() -> None:
    rules = [sec("rule", "ping6", name="Ping6", src="vpn", proto="icmp",
                 icmp_type="echo-request", family="ipv6", target="ACCEPT"),
             sec("rule", "unreach", name="Unreach", src="vpn", proto="icmp",
                 icmp_type=["port-unreachable", "3/1"], target="ACCEPT")]
    fw = build(with_sections(target_config(), *rules), DEVICES)
    assert [e.nft() for e in fw.chains["input_vpn"].entries][:3] == [
        'meta nfproto ipv6 icmpv6 type 128 counter accept comment "!fw4: Ping6"',
        'meta nfproto ipv4 icmp type . icmp code { 3 . 3, 3 . 1 } counter accept '
        'comment "!fw4: Unreach"',
        'meta nfproto ipv6 icmpv6 type . icmpv6 code { 1 . 4, 3 . 1 } counter accept '
        'comment "!fw4: Unreach"',
    ]
    assert verdict(fw, "vpn", None, "icmpv6", icmp_type="echo-request") == "accept"
    assert verdict(fw, "vpn", None, "icmp", icmp_type="echo-request") == "reject"
    assert verdict(fw, "vpn", None, "icmp", icmp_type=3, icmp_code=3) == "accept"
    assert verdict(fw, "vpn", None, "icmp", icmp_type=3, icmp_code=0) == "reject"


def test_zone_network_pitfalls() -> None:
    cfg = set_option(target_config(), "firewall", "zone", {"name": "dmz"}, network=["dmz0"])
    fw = build(cfg, DEVICES)
    assert fw.zone("dmz").devices == () and fw.zone("dmz").missing_networks == ("dmz0",)
    assert fw.findings("zone_network_missing") and fw.findings("zone_matches_nothing")
    assert "accept_to_dmz" in fw.chains and fw.chains["accept_to_dmz"].entries == []
    assert verdict(fw, "vpn", "lan4", "tcp", 11434, dest_ip=AI) == "reject"
    assert verdict(fw, "lan4", None, "udp", 67) == "reject"  # lan4 belongs to no zone now

    two = set_option(target_config(), "firewall", "zone", {"name": "vpn"}, network=["wg0", "dmz"])
    fw = build(two, DEVICES)
    (f,) = fw.findings("network_in_multiple_zones")
    assert "'dmz'" in f.message and "'vpn'" in f.message
    # lan4 now jumps to the vpn chains first: vpn's input policy decides, dmz rules never run
    assert fw.verdict(Flow("lan4", None, "udp", 67)).origin == "zone:vpn:input"


def test_duplicate_zone_names_fail_to_load() -> None:
    dup = sec("zone", None, name="vpn", network="dmz", input="ACCEPT")
    fw = build(with_sections(target_config(), dup), DEVICES)
    (f,) = fw.findings("duplicate_zone_name")
    assert f.fatal and "vpn_devices" in f.message and fw.load_error
    with pytest.raises(RulesetLoadError):
        fw.verdict(Flow("wan", None, "udp", 51820))


def test_invalid_zone_name() -> None:
    bad = sec("zone", None, name="bad zone!", network="dmz")
    cfg = with_sections(target_config(), bad)
    fw = build(cfg, DEVICES)  # 23.05: rendered, nft refuses the ruleset
    assert fw.findings("invalid_zone_name")[0].fatal and fw.load_error
    fw = build(cfg, DEVICES, strict_zone_names=True)  # newer fw4: zone skipped
    assert fw.findings("invalid_zone_name")[0].skipped and not fw.load_error
    assert [z.name for z in fw.zones] == ["lan", "wan", "vpn", "dmz"]


def test_zone_device_subnet_and_wildcards() -> None:
    z = sec("zone", "tun", name="tun", device=["tun+", "!tun9"], subnet="10.8.0.0/24",
            input="ACCEPT")
    fw = build(with_sections(target_config(), z, before="forwarding"), DEVICES)
    (jump,) = [e for e in fw.chains["input"] if e.arg == "input_tun"]
    assert jump.nft() == (
        'meta nfproto ipv4 iifname "tun*" iifname != "tun9" ip saddr 10.8.0.0/24 '
        'jump input_tun comment "!fw4: Handle tun IPv4 input traffic"')
    assert verdict(fw, "tun0", None, "tcp", 22, src_ip="10.8.0.5") == "accept"
    assert verdict(fw, "tun0", None, "tcp", 22, src_ip="10.9.0.5") == "reject"
    assert verdict(fw, "tun9", None, "tcp", 22, src_ip="10.8.0.5") == "reject"


def test_src_star_rules_go_to_the_main_chains() -> None:
    rules = [sec("rule", "any_in", name="Any-In", src="*", proto="tcp", dest_port="8443",
                 target="ACCEPT"),
             sec("rule", "any_to_dmz", name="Any-To-DMZ", src="*", dest="dmz", proto="tcp",
                 dest_port="8080", target="ACCEPT"),
             sec("rule", "vpn_any", name="VPN-Any", src="vpn", dest="*", proto="tcp",
                 dest_port="25", target="DROP")]
    fw = build(with_sections(target_config(), *rules), DEVICES)
    placed = {r.section: (r.chain, r.jump_chain) for r in fw.rules}
    assert placed["any_in"] == ("input", None)
    assert placed["any_to_dmz"] == ("forward", "accept_to_dmz")
    assert placed["vpn_any"] == ("forward_vpn", None)
    assert fw.chains["forward"].verdicts[:2] == ["accept", "jump accept_to_dmz"]
    assert verdict(fw, "wan", "dmz", "tcp", 8080) == "accept"
    assert verdict(fw, "wan", "lan", "tcp", 8080) == "reject"  # accept_to_dmz checks oif
    assert verdict(fw, "vpn", "wan", "tcp", 25) == "drop"
    assert verdict(fw, "wan", None, "tcp", 8443) == "accept"

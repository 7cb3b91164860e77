"""The proof (firewall/proof.py): each invariant caught when a foreign section breaks it,
cosmetic rewrites still pass, "unknown" fails unless acknowledged, per-peer access and the
user's policy tests; and the router deploy's check on the config as it will be after the run."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from pyinfra.api.exceptions import DeployError

from deploys.router_config import access_rules, check_or_fail, config_after
from firewall.proof import prove
from tests.harness.fw4_fixtures import (
    DEVICES,
    fixture_plan,
    sec,
    set_option,
    target_config,
    with_psk,
    with_sections,
)


def good_config() -> dict[str, Any]:
    """The recorded project end state with the factory WAN -> LAN IPSec rules disabled."""
    cfg = with_psk(target_config())
    for name in ("Allow-IPSec-ESP", "Allow-ISAKMP"):
        cfg = set_option(cfg, "firewall", "rule", {"name": name}, enabled="0")
    return cfg


def failures(cfg: dict[str, Any], plan: Any = None) -> list[str]:
    report = prove(cfg, plan or fixture_plan(), DEVICES)
    return report.errors + [str(f) for f in report.failures]


def test_the_good_config_holds_and_is_probed_widely() -> None:
    report = prove(good_config(), fixture_plan(), DEVICES)
    assert report.ok, report.lines()
    assert report.checked > 2000


BREAKERS = [
    ("invariant 1", sec("rule", "ssh_wan", name="SSH-from-WAN", src="wan", proto="tcp",
                        dest_port="22", target="ACCEPT"), "tcp/22"),
    ("invariant 1", sec("redirect", "fwd_ssh", name="Fwd-SSH", src="wan", dest="dmz",
                        proto="tcp", src_dport="2222", dest_ip="192.168.100.10",
                        dest_port="22"), "tcp/2222"),
    ("invariant 2", sec("rule", "vpn_range", name="VPN-range", src="vpn", dest="dmz",
                        proto="tcp", dest_port="11000-11433", target="ACCEPT"), "tcp/11433"),
    ("invariant 2", sec("rule", "any_dmz", name="Any-to-DMZ", src="*", dest="dmz",
                        proto="udp", dest_port="8080", target="ACCEPT"), "udp/8080"),
    ("invariant 3", sec("forwarding", "vpn_wan", src="vpn", dest="wan"), "internet"),
    ("invariant 3", sec("rule", "vpn_dns", name="VPN-DNS", src="vpn", proto="udp",
                        dest_port="53", target="ACCEPT"), "udp/53"),
    ("invariant 4", sec("rule", "vpn_vpn", name="VPN-VPN", src="vpn", dest="vpn",
                        proto="all", target="ACCEPT"), "peer"),
    ("invariant 5", sec("forwarding", "dmz_lan", src="dmz", dest="lan"), "LAN host"),
    ("invariant 5", sec("rule", "dmz_ssh", name="DMZ-SSH", src="dmz", proto="tcp",
                        dest_port="22", target="ACCEPT"), "router"),
    ("invariant 6", sec("forwarding", "lan_dmz_hand", src="lan", dest="dmz"), "LAN host"),
]


@pytest.mark.parametrize("check,section,needle", BREAKERS,
                         ids=[f"{c}-{s['name']}" for c, s, _ in BREAKERS])
def test_each_invariant_is_caught_from_a_foreign_section(check: str, section: dict[str, Any],
                                                         needle: str) -> None:
    found = failures(with_sections(good_config(), section))
    mine = [f for f in found if f.startswith(check + " violated")]
    assert mine, found
    assert any(needle in f for f in mine), mine
    assert all(section["name"] in f or "defaults" in f for f in mine), mine


def test_a_zone_matched_by_subnet_is_seen() -> None:
    """A zone that takes VPN addresses by subnet, ahead of ours: probes carry source addresses."""
    zone = sec("zone", "guest", name="guest", subnet="10.10.10.0/24", input="ACCEPT",
               output="ACCEPT", forward="REJECT")
    found = failures(with_sections(good_config(), zone, before="zone"))
    assert any(f.startswith("invariant 3 violated") and "zone:guest" in f for f in found), found


def test_invariant_6_lan_to_dmz_when_allowed() -> None:
    plan = fixture_plan(lan_to_dmz=True)
    found = failures(good_config(), plan)
    assert any(f.startswith("invariant 6 violated") and "tcp/22" in f for f in found), found
    ok = with_sections(good_config(), sec("forwarding", "lan_dmz", src="lan", dest="dmz"))
    assert failures(ok, plan) == []


def test_invariant_7_foreign_peer_section() -> None:
    cfg = with_sections(good_config(), sec("wireguard_wg0", None, public_key="x" * 43 + "=",
                                           allowed_ips=["10.10.10.9/32"]), pkg="network")
    assert any(f.startswith("invariant 7: unknown peer section") for f in failures(cfg))


def test_a_firewall_that_would_not_load_fails() -> None:
    cfg = with_sections(good_config(), sec("zone", "dup", name="vpn", network="wg0"))
    assert any("would not load" in f for f in failures(cfg))


def test_cosmetic_rewrites_still_pass() -> None:
    base = good_config()
    fw = base["firewall"]
    # 1. the rules in another order (the zones, defaults and forwardings stay)
    rules = [s for s in fw if s["type"] == "rule"]
    random.Random(7).shuffle(rules)
    it = iter(rules)
    shuffled = copy.deepcopy(base)
    shuffled["firewall"] = [next(it) if s["type"] == "rule" else s for s in fw]
    # 2. our named sections anonymous, and anonymous ones named
    renamed = copy.deepcopy(base)
    for i, s in enumerate(renamed["firewall"]):
        s["name"] = None if s["name"] else f"cfg{i:06x}"
    # 3. unrelated extra rules and a harmless redirect
    extra = with_sections(base, sec("rule", None, name="Block-SMTP", src="lan", dest="wan",
                                    proto="tcp", dest_port="25", target="REJECT"),
                          sec("rule", "ntp", name="NTP", src="lan", proto="udp",
                              dest_port="123", target="ACCEPT"),
                          sec("redirect", "lan_dns", src="lan", proto="udp", src_dport="53",
                              dest_port="53", name="Hijack-DNS"))
    for cfg in (shuffled, renamed, extra):
        assert failures(cfg) == []


def test_unknown_fails_unless_acknowledged() -> None:
    cfg = with_sections(good_config(), sec("include", "user", path="/etc/firewall.user"))
    found = failures(cfg)
    assert found and all(" unknown " in f and "user" in f for f in found), found[:3]
    assert failures(cfg, fixture_plan(firewall_acknowledge=["user"])) == []
    limited = with_sections(good_config(), sec("redirect", "web", name="Web", src="wan",
                                               dest="lan", proto="tcp", src_dport="8080",
                                               dest_ip="192.168.1.50", dest_port="80",
                                               limit="5/second"))
    found = failures(limited)
    assert any(f.startswith("invariant 1 ") and "web" in f for f in found), found
    # a port forward is still a WAN -> LAN flow: acknowledging the limit does not make it pass
    ack = failures(limited, fixture_plan(firewall_acknowledge=["web"]))
    assert any(f.startswith("invariant 1 violated") and "tcp/8080" in f for f in ack), ack


def access_plan(**kw: Any) -> Any:
    return fixture_plan(peers={"alice": {"address": "10.10.10.2",
                                         "access": ["server:11434", "dmz:443"]},
                               "bob": {"address": "10.10.10.3"}}, **kw)


def access_config(plan: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(good_config())
    cfg["firewall"] = [s for s in cfg["firewall"] if s["name"] != "vpn_ai"]
    rules = [{"name": r["name"], "type": "rule", "options": r["options"]}
             for r in access_rules(plan)]
    return with_sections(cfg, *rules)


def test_per_peer_access_rules_are_proved() -> None:
    plan = access_plan()
    rules = access_rules(plan)
    assert [r["name"] for r in rules] == ["acc_alice_1", "acc_alice_2", "acc_bob_1"]
    assert rules[1]["options"] == {"name": "Allow-alice-2", "src": "vpn", "dest": "dmz",
                                   "src_ip": "10.10.10.2/32", "dest_ip": "192.168.100.0/24",
                                   "proto": "tcp", "dest_port": "443", "target": "ACCEPT"}
    assert failures(access_config(plan), plan) == []
    # bob may not reach dmz:443; a rule giving every VPN address dmz:443 breaks invariant 2
    wide = with_sections(access_config(plan), sec("rule", "all443", name="All-443", src="vpn",
                                                  dest="dmz", proto="tcp", dest_port="443",
                                                  target="ACCEPT"))
    found = failures(wide, plan)
    assert any(f.startswith("invariant 2 violated") and "peer bob" in f for f in found), found
    # without alice's second rule, her declared access does not hold
    cfg = access_config(plan)
    cfg["firewall"] = [s for s in cfg["firewall"] if s["name"] != "acc_alice_2"]
    found = failures(cfg, plan)
    assert any(f.startswith("access of peer alice violated") for f in found), found


def test_policy_tests() -> None:
    tests = [{"src": "alice", "dst": "server:11434", "expect": "accept"},
             {"src": "vpn", "dst": "lan:22", "expect": "deny"},
             {"src": "dmz", "dst": "internet:443", "expect": "accept"},
             {"src": "192.168.1.20", "dst": "server", "expect": "deny"}]
    assert failures(good_config(), fixture_plan(policy_tests=tests)) == []
    bad = tests + [{"src": "bob", "dst": "server:22", "expect": "accept"}]
    found = failures(good_config(), fixture_plan(policy_tests=bad))
    assert found and all(f.startswith("policy test 5 violated") for f in found), found
    assert "peer bob (10.10.10.3) -> server (192.168.100.10) tcp/22 is REJECT" in found[0]
    junk = [{"src": "mallory", "dst": "server:1", "expect": "accept"},
            {"src": "vpn", "dst": "server:99999", "expect": "deny"},
            {"src": "vpn", "dst": "server", "expect": "maybe"}]
    found = failures(good_config(), fixture_plan(policy_tests=junk))
    assert [f.split(":")[0] for f in found] == ["policy test 1", "policy test 2",
                                                "policy test 3"], found


def test_config_after_applies_the_desired_state() -> None:
    config = good_config()
    desired = {
        "sections": [{"package": "firewall", "name": "vpn_ai", "type": "rule",
                      "options": {"name": "Allow-VPN-to-AI", "src": "vpn", "dest": "dmz",
                                  "proto": "tcp", "dest_port": "11434", "target": "ACCEPT"}},
                     {"package": "firewall", "name": "new_one", "type": "rule",
                      "options": {"name": "New", "src": "lan", "target": "ACCEPT"}}],
        "absent": [{"package": "firewall", "name": "dmz_wan"}],
        "edits": [{"package": "firewall", "match": {"type": "rule", "name": "Allow-Ping"},
                   "set": {"enabled": "0"}},
                  {"package": "firewall", "match": {"type": "zone", "name": "lan"},
                   "delete": True}],
        "exclusive_types": [["network", "wireguard_wg0"]],
    }
    after = config_after(config, **desired)
    fw = after["firewall"]
    names = [s["name"] for s in fw]
    assert "dmz_wan" not in names and names[-1] == "new_one"
    assert next(s for s in fw if s["name"] == "vpn_ai")["options"].get("dest_ip") is None
    assert next(s for s in fw if s["options"].get("name") == "Allow-Ping")["options"][
        "enabled"] == "0"
    assert not [s for s in fw if s["type"] == "zone" and s["options"]["name"] == "lan"]
    assert not [s for s in after["network"] if s["type"] == "wireguard_wg0"]
    assert config == good_config()  # pure


def test_check_or_fail_names_invariant_flow_and_section() -> None:
    plan = fixture_plan()
    state = {"config": with_sections(good_config(), sec("forwarding", "vpn_wan", src="vpn",
                                                         dest="wan"))}
    keep = {"sections": [], "absent": [], "edits": []}
    with pytest.raises(DeployError) as e:
        check_or_fail(plan, state, keep, "router")
    text = str(e.value)
    assert text.startswith("router: the firewall proof failed") and "nothing was uploaded" in text
    assert "invariant 3 violated" in text and "forwarding:vpn_wan" in text
    assert "-> internet (198.51.100.7)" in text
    # the desired state repairs it: the run may go on
    fix = {**keep, "edits": [{"package": "firewall", "match": {"type": "forwarding",
                                                                "src": "vpn"},
                              "set": {"enabled": "0"}}]}
    check_or_fail(plan, state, fix, "router")


def test_desired_config_with_access_replaces_vpn_ai() -> None:
    from deploys.router_config import desired_router_config

    extra = dict(router_private_key="k", dmz_device="lan4", dmz_dhcp_start=100,
                 dmz_dhcp_limit=50, dmz_dhcp_leasetime="12h", server_mac=None,
                 server_name="ai", peer_output_dir="/tmp")
    plain = desired_router_config(fixture_plan(**extra), "REJECT")
    assert "vpn_ai" in [s["name"] for s in plain["sections"]]
    desired = desired_router_config(access_plan(**extra), "REJECT")
    names = [s["name"] for s in desired["sections"] if s["package"] == "firewall"]
    assert "vpn_ai" not in names and {"package": "firewall", "name": "vpn_ai"} in \
        desired["absent"]
    assert names[4:7] == ["acc_alice_1", "acc_alice_2", "acc_bob_1"]
    after = config_after(good_config(), **desired)
    assert failures(after, access_plan()) == []


def test_check_or_fail_reports_invariant_7() -> None:
    cfg = with_sections(good_config(), sec("wireguard_wg0", "mallory", public_key="m" * 43 + "=",
                                           allowed_ips=["10.10.10.9/32"]), pkg="network")
    with pytest.raises(DeployError) as e:
        check_or_fail(fixture_plan(), {"config": cfg}, {}, "router")
    assert "invariant 7: unknown peer section mallory" in str(e.value)


def test_what_the_proof_cannot_place_fails_closed() -> None:
    cfg = copy.deepcopy(good_config())
    cfg["network"] = [s for s in cfg["network"] if s["name"] != "dmz"]
    found = failures(cfg)
    assert any(f.startswith("the proof cannot place the DMZ") for f in found), found


def test_check_or_fail_leaves_pending_foreign_changes_to_the_converge() -> None:
    """The converge refuses to apply over someone else's pending uci changes (its own message);
    the proof does not pre-empt that message with one about their half-made config."""
    cfg = with_sections(good_config(), sec("forwarding", "vpn_wan", src="vpn", dest="wan"))
    check_or_fail(fixture_plan(), {"config": cfg, "pending": ["network.lan.ipaddr=x"]}, {},
                  "router")
    with pytest.raises(DeployError):
        check_or_fail(fixture_plan(), {"config": cfg, "pending": []}, {}, "router")

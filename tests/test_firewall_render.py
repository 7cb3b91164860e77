"""The firewall model against REAL firewall4 output (tests/fixtures/fw4) and the real nftables:
same chains, same rule lines, and rendered rulesets that ``nft -c`` accepts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from firewall import Firewall, Flow, build, render_nft
from tests.harness.fw4_fixtures import (
    AI,
    DEVICES,
    FIXTURES,
    factory_config,
    load_config,
    parse_real_ruleset,
    real_devices,
    sec,
    set_option,
    target_config,
    verdict,
    verdict_token,
    with_sections,
)


@pytest.fixture(scope="module")
def target() -> Firewall:
    return build(target_config(), DEVICES)


@pytest.fixture(scope="module")
def factory() -> Firewall:
    return build(factory_config(), DEVICES)


# ---------------------------------------------------------------------------------------------
# Cross-check against the REAL fw4 output
# ---------------------------------------------------------------------------------------------

REAL = [("initial_config", "factory_2305.nft"), ("final_config", "wg_dmz_target.nft")]


@pytest.mark.parametrize("which,nft_file", REAL)
def test_chains_match_real_fw4(which: str, nft_file: str) -> None:
    real_text = (FIXTURES / "fw4" / nft_file).read_text()
    real = parse_real_ruleset(real_text)
    fw = build(load_config("wg_dmz_named_batch_first_apply.json", which), DEVICES)
    assert list(fw.chains) == list(real)  # same chains, same order
    for name, chain in fw.chains.items():
        r = real[name]
        assert (chain.hook, chain.policy) == (r["hook"], r["policy"]), name
        if chain.hook:
            assert (chain.type, chain.priority) == (r["type"], r["priority"]), name
        assert chain.verdicts == [verdict_token(x) for x in r["rules"]], name
        assert [e.nft() for e in chain.entries] == r["rules"], name
    assert {z.name: list(z.devices) for z in fw.zones} == real_devices(real_text)


def test_real_target_ruleset_structure(target: Firewall) -> None:
    real = parse_real_ruleset((FIXTURES / "fw4" / "wg_dmz_target.nft").read_text())
    assert [verdict_token(x) for x in real["forward_vpn"]["rules"]] == [
        "jump accept_to_dmz", "jump reject_to_vpn"]
    assert "ip daddr 192.168.100.10 tcp dport 11434" in real["forward_vpn"]["rules"][0]
    assert target.chains["forward_vpn"].verdicts == ["jump accept_to_dmz", "jump reject_to_vpn"]
    m = target.chains["forward_vpn"][0].match
    assert (m.daddr, m.l4proto, m.dport) == ((AI,), ("tcp",), ("11434",))
    for hook in ("input", "forward"):
        assert real[hook]["policy"] == target.chains[hook].policy == "drop"
        assert real[hook]["rules"][-1] == "jump handle_reject"
        assert target.chains[hook].verdicts[-1] == "jump handle_reject"
    assert real["output"]["policy"] == target.chains["output"].policy == "accept"
    assert target.chains["forward"].verdicts == [
        "accept", "jump forward_lan", "jump forward_wan", "jump forward_vpn", "jump forward_dmz",
        "jump handle_reject"]
    assert target.chains["accept_to_dmz"][0].match.oifname == ("lan4",)
    assert target.chains["reject_to_vpn"][0].match.oifname == ("wg0",)
    assert target.chains["srcnat"].verdicts == ["jump srcnat_wan"]
    assert target.chains["srcnat_wan"].verdicts == ["masquerade"]
    for zone in ("lan", "vpn", "dmz"):
        assert f"helper_{zone}" in target.chains
    assert "helper_wan" not in target.chains  # masq zones get no auto helper


# ---------------------------------------------------------------------------------------------
# render_nft checked by the real nftables
# ---------------------------------------------------------------------------------------------


def _nft_check(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("nft") is None:
        pytest.skip("nft (nftables) is not installed")
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root (CAP_NET_ADMIN)")
    path = tmp_path / "ruleset.nft"
    path.write_text(text)
    return subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("which", ["initial_config", "final_config"])
def test_render_nft_is_loadable(which: str, tmp_path: Path) -> None:
    fw = build(load_config("wg_dmz_named_batch_first_apply.json", which), DEVICES)
    res = _nft_check(render_nft(fw), tmp_path)
    assert res.returncode == 0, res.stderr


def test_render_nft_variants_are_loadable(tmp_path: Path) -> None:
    extra = [
        sec("zone", "tun", name="tun", device=["tun+", "!tun9"], subnet="10.8.0.0/24",
            input="ACCEPT", masq="1", mtu_fix="1", log="1"),
        sec("rule", "r1", name="R1", src="vpn", proto="icmp", target="DROP"),
        sec("rule", "r2", name="R2", src="tun", dest="dmz", proto="tcp udp",
            src_ip="!10.8.0.9", dest_port="!22", src_mac="52:54:00:A1:00:10",
            start_time="08:00", stop_time="18:00", weekdays="Mon Tue", limit="10/min",
            limit_burst="5", target="REJECT"),
        sec("rule", "r3", name='Quote"d', src="*", dest="*", proto="all", target="DROP",
            family="ipv6", log="1"),
        sec("rule", "r4", name="R4", dest="wan", proto="udp", dest_port="123", target="REJECT"),
        sec("forwarding", None, src="tun", dest="*"),
    ]
    cfg = set_option(with_sections(target_config(), *extra), "firewall", "defaults", {},
                     drop_invalid="1", output="REJECT")
    fw = build(cfg, DEVICES)
    assert fw.load_error is None
    text = render_nft(fw)
    res = _nft_check(text, tmp_path)
    assert res.returncode == 0, res.stderr + text
    assert "jump reject_from_tun" not in text and "jump drop_from_tun" not in text
    assert verdict(fw, "tun1", "lan4", "tcp", 80, src_ip="10.8.0.5",
                   src_mac="52:54:00:a1:00:10") == "reject"
    for oif in ("lan4", "wan"):  # dest_port != 22, then the forwarding tun -> '*'
        v = fw.verdict(Flow("tun1", oif, "tcp", 22, src_ip="10.8.0.5"))
        assert v.origin == "forwarding:@forwarding[2]" and v.action == "accept"
    v = fw.verdict(Flow("tun1", "lan4", "udp", 80, src_ip="10.8.0.5", src_mac="52:54:00:a1:00:10"))
    assert v.origin == "rule:r2" and any("limit rate 10/minute" in a for a in v.assumptions)

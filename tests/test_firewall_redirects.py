"""Port forwards (``config redirect``): DNAT with its filter verdict, NAT reflection, SNAT, the
nft rendering checked by the real nftables, and what the model does not evaluate (scoped
``not_modelled`` findings the proof turns into "unknown")."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from firewall import Flow, build, render_nft
from tests.harness.fw4_fixtures import DEVICES, sec, target_config, with_sections

WAN_ADDR = "203.0.113.2"
RUNTIME = {"wan": [f"{WAN_ADDR}/24"]}
LAN_HOST = "192.168.1.50"


def _fw(*sections, addresses=RUNTIME):  # type: ignore[no-untyped-def]
    return build(with_sections(target_config(), *sections), DEVICES, addresses=addresses)


WEB = sec("redirect", "web", name="Web", src="wan", dest="lan", proto="tcp", src_dport="8080",
          dest_ip=LAN_HOST, dest_port="80", target="DNAT")


def test_dnat_opens_exactly_the_forwarded_port() -> None:
    fw = _fw(WEB)
    v = fw.verdict(Flow("wan", None, "tcp", 8080, src_ip="198.51.100.7", dest_ip=WAN_ADDR))
    assert v.action == "accept", v.explain()
    assert v.dnat is not None and v.dnat.origin == "redirect:web"
    assert v.chain == "forward_wan" and "redirect:web" in v.sections
    for proto, port in (("tcp", 8081), ("udp", 8080), ("tcp", 80)):
        v = fw.verdict(Flow("wan", None, proto, port, src_ip="198.51.100.7", dest_ip=WAN_ADDR))
        assert v.action != "accept" and v.dnat is None, (proto, port, v.explain())
    # without the redirect the same packet is rejected at the router
    plain = build(target_config(), DEVICES, addresses=RUNTIME)
    v = plain.verdict(Flow("wan", None, "tcp", 8080, src_ip="198.51.100.7", dest_ip=WAN_ADDR))
    assert v.action == "reject"


def test_dnat_to_the_router_itself_and_external_port_defaults() -> None:
    fw = _fw(sec("redirect", "ssh", name="SSH", src="wan", proto="tcp", dest_port="22"))
    v = fw.verdict(Flow("wan", None, "tcp", 22, dest_ip=WAN_ADDR))
    assert v.action == "accept" and v.chain == "input_wan", v.explain()
    assert "redirect to :22" in render_nft(fw)


def test_reflection_rules_from_the_destination_zone() -> None:
    fw = _fw(WEB)
    dst = fw.chains["dstnat_lan"].entries
    assert [e.comment for e in dst] == ["Web (reflection)"]
    assert dst[0].match.daddr == (WAN_ADDR,) and dst[0].match.saddr == ("192.168.1.0/24",)
    assert [e.verdict_text for e in fw.chains["srcnat_lan"]] == ["snat ip to 192.168.1.1"]
    v = fw.verdict(Flow("lan", "wan", "tcp", 8080, src_ip="192.168.1.20", dest_ip=WAN_ADDR))
    assert v.dnat is not None and v.action == "accept", v.explain()
    off = _fw({**WEB, "options": {**WEB["options"], "reflection": "0"}})
    assert "dstnat_lan" not in off.chains


def test_reflection_without_a_known_wan_address_is_not_modelled() -> None:
    fw = _fw(WEB, addresses=None)
    f = [x for x in fw.findings("not_modelled") if x.section.startswith("web")]
    assert f and f[0].scope == ("lan",)


def test_snat_renders_and_changes_no_filter_verdict() -> None:
    fw = _fw(sec("redirect", "out", name="Out", src="lan", dest="wan", proto="tcp",
                 src_dip="203.0.113.9", dest_port="25", target="SNAT"))
    assert fw.chains["srcnat_wan"].entries[0].verdict_text == "snat ip to 203.0.113.9"
    v = fw.verdict(Flow("lan", "wan", "tcp", 25, src_ip="192.168.1.20", dest_ip="198.51.100.7"))
    assert v.action == "accept" and v.dnat is None


@pytest.mark.parametrize("options,why", [
    ({"src": "wan", "proto": "tcp", "src_dport": "80"}, "needs 'dest_ip' or 'dest_port'"),
    ({"dest": "lan", "dest_ip": LAN_HOST, "dest_port": "80"}, "needs a source zone"),
    ({"src": "nowhere", "dest_ip": LAN_HOST, "dest_port": "80"}, "invalid value"),
    ({"src": "lan", "dest": "wan", "target": "SNAT"}, "SNAT needs"),
])
def test_invalid_redirects_are_skipped(options: dict[str, str], why: str) -> None:
    fw = _fw(sec("redirect", "bad", **options))
    f = [x for x in fw.skipped if x.section.startswith("bad")]
    assert f and why in f[0].message


def test_unmodelled_redirect_options_are_scoped_findings() -> None:
    fw = _fw(sec("redirect", "lim", src="wan", dest="lan", dest_ip=LAN_HOST, dest_port="80",
                 limit="10/second"))
    f = [x for x in fw.findings("not_modelled") if x.section.startswith("lim")]
    assert f and f[0].scope == ("wan", "lan")


def test_nat_and_include_sections_affect_every_flow() -> None:
    fw = _fw(sec("include", "user", path="/etc/firewall.user"))
    assert [f.scope for f in fw.findings("not_modelled")] == [("*",)]


def test_redirect_rulesets_are_loadable(tmp_path: Path) -> None:
    if shutil.which("nft") is None:
        pytest.skip("nft (nftables) is not installed")
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root (CAP_NET_ADMIN)")
    fw = _fw(WEB, sec("redirect", None, src="wan", proto="tcp udp", src_dport="5000-5010",
                      dest_ip=LAN_HOST, src_ip="!198.51.100.0/24", reflection="0"),
             sec("redirect", "ssh", src="wan", proto="tcp", dest_port="22"),
             sec("redirect", "out", src="lan", dest="wan", src_dip="203.0.113.9",
                 dest_port="25", proto="tcp", target="SNAT"))
    text = render_nft(fw)
    assert 'tcp dport 8080 counter dnat ip to 192.168.1.50:80 comment "!fw4: Web"' in text
    path = tmp_path / "ruleset.nft"
    path.write_text(text)
    res = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr + text

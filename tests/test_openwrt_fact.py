"""What the router state fact promises, checked on its recorded real-format output
(tests/facts/openwrt.OpenWrtState/*.json: the fact's own command run under BusyBox ash on the
fake router, whose `uci` is the stand-in replaying the real tool's transcripts)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from facts.openwrt import parse_packages, parse_release, parse_state, parse_uci_export

HERE = Path(__file__).parent / "facts" / "openwrt.OpenWrtState"
FIXTURE_KEYS = {  # from shared/fixtures/uci/wg_dmz_named_batch_first_apply.json
    "private_key": "cAe1UfcuLzF/5J8Vqwn7JHQRXCumzVJlAcMIp4W4+mE=",
    "preshared_key": "ehkYaB9IhSa9df/9AqifoerOZmc0gkPPAD4PRlADXdc=",
}


def load(name: str) -> dict:
    return json.loads((HERE / name).read_text())


def test_secrets_are_fingerprinted_on_the_router():
    data = load("target_2512_apk_secrets_hashed.json")
    raw = "\n".join(data["output"])
    for key in FIXTURE_KEYS.values():
        assert key not in raw
    network = {s["name"]: s for s in data["fact"]["config"]["network"]}
    for section, option in (("wg0", "private_key"), ("wgpeer_alice", "preshared_key")):
        want = "sha256:" + hashlib.sha256(FIXTURE_KEYS[option].encode()).hexdigest()
        assert network[section]["options"][option] == want


def test_release_packages_and_pending():
    factory = parse_state(load("factory_2305_pending_change.json")["output"])
    assert factory["release"]["version"] == "23.05.5"
    assert factory["package_manager"] == "opkg"
    assert factory["pending"] == ["network.lan.ipaddr='192.168.2.1'"]
    assert factory["complete"] and len(factory["checksum"]) == 64
    target = parse_state(load("target_2512_apk_secrets_hashed.json")["output"])
    assert target["release"]["version"] == "25.12.0" and target["package_manager"] == "apk"
    assert "wireguard-tools" in target["packages"] and target["pending"] == []


def test_anonymous_sections_lists_and_named_sections():
    config = parse_state(load("factory_2305_pending_change.json")["output"])["config"]
    device = [s for s in config["network"] if s["type"] == "device"]
    assert device == [{"name": None, "id": "cfg030f15", "type": "device",
                       "options": {"name": "br-lan", "type": "bridge",
                                   "ports": ["lan1", "lan2", "lan3", "lan4"]}}]
    rules = [s for s in config["firewall"] if s["type"] == "rule"]
    assert [r["options"]["name"] for r in rules][-2:] == ["Allow-IPSec-ESP", "Allow-ISAKMP"]
    assert all(r["id"].endswith("92bd") for r in rules)  # cfgNN + hash of the type "rule"
    assert config["dhcp"][1]["name"] == "lan"
    # the pending change is visible in the exported state, as uci shows it
    lan = next(s for s in config["network"] if s["name"] == "lan")
    assert lan["options"]["ipaddr"] == "192.168.2.1"


def test_parsers_on_edge_cases():
    text = ("package system\n\nconfig system\n\toption notes 'it'\\''s here'\n"
            "\toption d 'back\\slash'\n\tlist l 'a b'\n\tlist l 'c'\n\nconfig x 'named'\n")
    parsed = parse_uci_export(text)["system"]
    assert parsed[0]["options"] == {"notes": "it's here", "d": "back\\slash", "l": ["a b", "c"]}
    assert parsed[1] == {"name": "named", "type": "x", "options": {}}
    assert parse_release(["NAME=\"OpenWrt\"", "VERSION=\"24.10.0\"", "BUILD_ID=\"r28427\""]) == {
        "distribution": "OpenWrt", "version": "24.10.0", "revision": "r28427"}
    assert parse_packages("opkg", ["wpad - 2024.03.09~695277a5-r3"]) == {
        "wpad": "2024.03.09~695277a5-r3"}

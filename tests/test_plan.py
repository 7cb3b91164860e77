"""The plan: valid inventories, and a catalogue of bad ones, each with its exact error."""

from __future__ import annotations

import copy
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploys.keys import KeyStore, generate_private_key, public_key
from deploys.plan import PlanError, default_peer_name, materialize, validate
from tests.harness.connections import ConnectionCounter

REPO = Path(__file__).resolve().parents[1]

NETWORK = {
    "vpn_subnet": "10.10.10.0/24",
    "vpn_port": 51820,
    "vpn_interface": "wg0",
    "vpn_endpoint": "vpn.example.org",
    "lan_subnet": "192.168.1.0/24",
    "dmz_subnet": "192.168.100.0/24",
    "dmz_router_address": "192.168.100.1",
    "dmz_device": "lan4",
    "vpn_peers": [{"name": "alice_phone", "kind": "phone"}],
}
SERVER = ("ai-server", {"dmz_address": "192.168.100.10", "dmz_mac": "52:54:00:a1:00:10"})
CLIENTS = [("alice-mac", {"vpn_name": "alice_mac"}), ("bob-mac", {"vpn_address": "10.10.10.3"})]


def parts(network=None, server=SERVER, clients=CLIENTS, **extra):
    data = {
        "network": copy.deepcopy(NETWORK if network is None else network),
        "router": ("router", {}),
        "server": copy.deepcopy(server),
        "clients": copy.deepcopy(clients),
    }
    data.update(extra)
    return data


def with_network(**changes):
    net = copy.deepcopy(NETWORK)
    for key, value in changes.items():
        if value is ...:
            net.pop(key, None)
        else:
            net[key] = value
    return parts(network=net)


def test_valid_inventory_gives_a_spec():
    spec = validate(**parts())
    assert spec.vpn_router_address == ipaddress.ip_address("10.10.10.1")
    assert spec.dmz_router_address == ipaddress.ip_address("192.168.100.1")
    assert spec.server_address == ipaddress.ip_address("192.168.100.10")
    assert [p.name for p in spec.peers] == ["alice_mac", "bob_mac", "alice_phone"]
    bob = spec.peers[1]
    assert bob.host == "bob-mac" and bob.address == ipaddress.ip_address("10.10.10.3")
    assert spec.peers[2].kind == "phone" and spec.peers[2].host is None


def test_default_peer_name_is_a_uci_name():
    assert default_peer_name("alice-mbp.lan") == "alice_mbp"
    assert default_peer_name("@fake/mac1") == "mac1"


def key() -> str:
    return public_key(generate_private_key())


DUP_KEY = key()

# (id, parts, expected error lines): every error names the host or peer, the field, the value.
CATALOGUE = [
    ("malformed-subnet", with_network(vpn_subnet="10.10.10/24"),
     ["network: vpn_subnet: '10.10.10/24' (not an IPv4 subnet)"]),
    ("host-bits", with_network(lan_subnet="192.168.1.1/24"),
     ["network: lan_subnet: '192.168.1.1/24' (has host bits set)"]),
    ("ipv6-subnet", with_network(dmz_subnet="fd00::/64"),
     ["network: dmz_subnet: 'fd00::/64' (only IPv4 subnets are supported)"]),
    ("overlap-vpn-lan", with_network(lan_subnet="10.10.0.0/16"),
     ["network: lan_subnet: '10.10.0.0/16' (overlaps vpn_subnet 10.10.10.0/24)"]),
    ("overlap-dmz-lan", with_network(dmz_subnet="192.168.0.0/16"),
     ["network: dmz_subnet: '192.168.0.0/16' (overlaps lan_subnet 192.168.1.0/24)"]),
    ("router-outside-dmz", with_network(dmz_router_address="192.168.101.1"),
     ["network: dmz_router_address: '192.168.101.1' (outside the dmz_subnet 192.168.100.0/24)"]),
    ("router-vpn-broadcast", with_network(vpn_router_address="10.10.10.255"),
     ["network: vpn_router_address: '10.10.10.255' (network or broadcast address of "
      "10.10.10.0/24)"]),
    ("bad-router-address", with_network(vpn_router_address="10.10.10.300"),
     ["network: vpn_router_address: '10.10.10.300' (not an IPv4 address)"]),
    ("port-zero", with_network(vpn_port=0), ["network: vpn_port: 0 (out of range 1-65535)"]),
    ("port-high", with_network(vpn_port=65536),
     ["network: vpn_port: 65536 (out of range 1-65535)"]),
    ("port-text", with_network(vpn_port="fifty"),
     ["network: vpn_port: 'fifty' (expected a whole number from 1 to 65535)"]),
    ("ollama-port", with_network(ollama_port=99999),
     ["network: ollama_port: 99999 (out of range 1-65535)"]),
    ("no-endpoint", with_network(vpn_endpoint=...),
     ["network: vpn_endpoint: None (required: the public DNS name or IP of the router)"]),
    ("bad-endpoint", with_network(vpn_endpoint="vpn example.org"),
     ["network: vpn_endpoint: 'vpn example.org' (not a DNS name or IP address)"]),
    ("bad-interface", with_network(vpn_interface="wg-0"),
     ["network: vpn_interface: 'wg-0' (must be a UCI section name and interface name: "
      "1-15 of [A-Za-z0-9_])"]),
    ("bad-device", with_network(dmz_device="lan 4"),
     ["network: dmz_device: 'lan 4' (not a network device name (1-15 of [A-Za-z0-9_.-]))"]),
    ("pool-too-big", with_network(dmz_dhcp_start=200, dmz_dhcp_limit=100),
     ["network: dmz_dhcp_limit: 100 (pool .200+100 does not fit in dmz_subnet "
      "192.168.100.0/24)"]),
    ("lan-to-dmz-not-bool", with_network(lan_to_dmz="yes"),
     ["network: lan_to_dmz: 'yes' (expected True or False)"]),
    ("server-outside-dmz", parts(server=("ai-server", {"dmz_address": "192.168.1.10"})),
     ["ai-server: dmz_address: '192.168.1.10' (outside the dmz_subnet 192.168.100.0/24)"]),
    ("server-is-router", parts(server=("ai-server", {"dmz_address": "192.168.100.1"})),
     ["ai-server: dmz_address: '192.168.100.1' (is the router's DMZ address)"]),
    ("server-bad-mac", parts(server=("ai-server", {"dmz_address": "192.168.100.10",
                                                   "dmz_mac": "52:54:00:zz:00:10"})),
     ["ai-server: dmz_mac: '52:54:00:zz:00:10' (not a MAC address like 52:54:00:a1:00:10)"]),
    ("peer-outside-vpn", parts(clients=[("alice-mac", {"vpn_address": "10.10.11.2"})]),
     ["alice-mac: vpn_address: '10.10.11.2' (outside the vpn_subnet 10.10.10.0/24)"]),
    ("peer-is-router", parts(clients=[("alice-mac", {"vpn_address": "10.10.10.1"})]),
     ["alice-mac: vpn_address: '10.10.10.1' (is the router's VPN address)"]),
    ("peer-bad-address", parts(clients=[("alice-mac", {"vpn_address": "10.10.10.x"})]),
     ["alice-mac: vpn_address: '10.10.10.x' (not an IPv4 address)"]),
    ("duplicate-names", parts(clients=[("alice-mac", {"vpn_name": "alice_phone"})]),
     ["peer alice_phone: name: 'alice_phone' (duplicate peer name (also alice-mac))"]),
    ("duplicate-addresses", parts(clients=[("a-mac", {"vpn_address": "10.10.10.5"}),
                                           ("b-mac", {"vpn_address": "10.10.10.5"})]),
     ["b-mac: vpn_address: '10.10.10.5' (duplicate peer address (also a-mac))"]),
    ("duplicate-keys", parts(clients=[("a-mac", {"vpn_public_key": DUP_KEY}),
                                      ("b-mac", {"vpn_public_key": DUP_KEY})]),
     [f"b-mac: vpn_public_key: '{DUP_KEY}' (duplicate public key (also a-mac))"]),
    ("bad-key", parts(clients=[("a-mac", {"vpn_public_key": "not-a-key"})]),
     ["a-mac: vpn_public_key: 'not-a-key' (not a WireGuard public key (44 chars base64))"]),
    ("invalid-uci-name", parts(clients=[("a-mac", {"vpn_name": "alice-laptop"})]),
     ["a-mac: vpn_name: 'alice-laptop' (peer names must be UCI section names: [A-Za-z0-9_]+)"]),
    ("phone-invalid-name", with_network(vpn_peers=[{"name": "bob's phone"}]),
     ["peer bob's phone: name: \"bob's phone\" (peer names must be UCI section names: "
      "[A-Za-z0-9_]+)"]),
    ("phone-unknown-field", with_network(vpn_peers=[{"name": "p1", "adress": "10.10.10.9"}]),
     ["peer p1: adress: '10.10.10.9' (unknown peer field; did you mean 'address'?)"]),
    ("phone-bad-kind", with_network(vpn_peers=[{"name": "p1", "kind": "toaster"}]),
     ["peer p1: kind: 'toaster' (expected one of macos, phone, tablet, linux, windows, other)"]),
    ("keepalive", with_network(vpn_peers=[{"name": "p1", "keepalive": -1}]),
     ["peer p1: keepalive: -1 (out of range 0-65535)"]),
    ("enabled-not-bool", with_network(vpn_peers=[{"name": "p1", "enabled": "no"}]),
     ["peer p1: enabled: 'no' (expected True or False)"]),
    ("no-router", parts(router=None),
     ["inventory: router: None (exactly one host must be in group 'router')"]),
    ("two-routers", parts(extra_routers=["router2"]),
     ["router2: groups: 'router' (only one router is supported)"]),
]


@pytest.mark.parametrize("data,expected", [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE])
def test_bad_inventory_catalogue(data, expected):
    with pytest.raises(PlanError) as info:
        validate(**data)
    assert info.value.errors == expected
    for line in expected:
        assert line in str(info.value)


def test_all_errors_are_reported_at_once():
    data = with_network(vpn_port=0, lan_subnet="nonsense")
    data["clients"] = [("a-mac", {"vpn_address": "1.2.3.4"})]
    with pytest.raises(PlanError) as info:
        validate(**data)
    assert len(info.value.errors) == 3


def test_materialize_assigns_stable_addresses(tmp_path):
    store = KeyStore(tmp_path / "secrets")
    plan = materialize(validate(**parts()), store)
    store.commit(plan.key_changes)  # what a successful run records
    addresses = {p.name: str(p.address) for p in plan.peers}
    # bob's explicit .3 is skipped; the others get the lowest free addresses
    assert addresses == {"alice_mac": "10.10.10.2", "bob_mac": "10.10.10.3",
                         "alice_phone": "10.10.10.4"}
    # a new peer before the others in the inventory does not move anybody
    clients = [("carol-mac", {})] + CLIENTS
    plan2 = materialize(validate(**parts(clients=clients)), store)
    addresses2 = {p.name: str(p.address) for p in plan2.peers}
    assert addresses2 == {**addresses, "carol_mac": "10.10.10.5"}
    # keys are stable across runs
    assert plan2.peer("alice_mac").public_key == plan.peer("alice_mac").public_key
    assert plan2.router_public_key == plan.router_public_key


def test_materialize_releases_removed_peers_addresses(tmp_path):
    store = KeyStore(tmp_path / "secrets")
    store.commit(materialize(validate(**parts()), store).key_changes)
    plan = materialize(validate(**parts(clients=[("bob-mac", {"vpn_address": "10.10.10.3"})])),
                       store)
    store.commit(plan.key_changes)
    assert str(plan.peer("alice_phone").address) == "10.10.10.4"
    assert set(store.assigned_addresses()) == {"alice_phone"}


def test_materialize_rejects_router_key_as_peer_key(tmp_path):
    store = KeyStore(tmp_path / "secrets")
    router_pub = public_key(store.router_private_key())
    with pytest.raises(PlanError) as info:
        materialize(validate(**parts(clients=[("a-mac", {"vpn_public_key": router_pub})])), store)
    assert info.value.errors == [
        f"a-mac: public_key: '{router_pub}' (is the router's own public key)"
    ]


def test_peer_bringing_its_own_key_has_no_private_key(tmp_path):
    pub = key()
    plan = materialize(validate(**parts(clients=[("a-mac", {"vpn_public_key": pub})])),
                       KeyStore(tmp_path))
    peer = plan.peer("a_mac")
    assert peer.public_key == pub and peer.private_key is None
    KeyStore(tmp_path).commit(plan.key_changes)
    assert not (tmp_path / "wireguard" / "peers" / "a_mac.key").exists()
    assert (tmp_path / "wireguard" / "peers" / "a_mac.psk").exists()


# -- the same checks through the pyinfra CLI: exit status 2, no host contacted -------------


INVENTORY_TEMPLATE = """
from deploys.plan import validate_before_connect
validate_before_connect()
_ssh = {{"ssh_hostname": "127.0.0.1", "ssh_port": {port}, "ssh_connect_retries": 0}}
_net = {network!r}
router = [("router", {{**_ssh, **_net}})]
server = [("ai-server", {{**_ssh, **_net, **{server!r}}})]
clients = [("alice-mac", {{**_ssh, **_net, **{client!r}}})]
"""

CLI_CASES = [
    ("bad-port", {**NETWORK, "vpn_port": 0}, SERVER[1], {},
     "network: vpn_port: 0 (out of range 1-65535)"),
    ("server-outside-dmz", NETWORK, {"dmz_address": "10.0.0.5"}, {},
     "ai-server: dmz_address: '10.0.0.5' (outside the dmz_subnet 192.168.100.0/24)"),
    ("peer-is-router", NETWORK, SERVER[1], {"vpn_address": "10.10.10.1"},
     "alice-mac: vpn_address: '10.10.10.1' (is the router's VPN address)"),
]


@pytest.mark.parametrize("network,server,client,message", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_bad_inventory_before_contacting_hosts(tmp_path, network, server, client,
                                                           message):
    counter = ConnectionCounter()
    try:
        inventory = tmp_path / "inventory.py"
        network = {**network, "secrets_dir": str(tmp_path / "secrets")}
        inventory.write_text(INVENTORY_TEMPLATE.format(
            port=counter.port, network=network, server=server, client=client))
        result = subprocess.run(
            [sys.executable, "-m", "pyinfra", "-y", str(inventory), "deploys/all.py"],
            cwd=REPO, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    finally:
        counter.close()
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "no host was contacted" in result.stderr
    assert counter.count == 0
    assert not (tmp_path / "secrets").exists()  # nothing written either

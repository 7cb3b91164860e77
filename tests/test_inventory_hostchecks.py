"""Checks that need the host (deploys/hostchecks.py), on parsed router and Mac state."""

from __future__ import annotations

from types import SimpleNamespace

from deploys.hostchecks import router_devices, router_problems, server_problems
from facts.openwrt import parse_uci_export

FACTORY = """package network

config interface 'loopback'
\toption device 'lo'
\toption proto 'static'
\toption ipaddr '127.0.0.1'

config device
\toption name 'br-lan'
\toption type 'bridge'
\tlist ports 'lan1'
\tlist ports 'lan2'
\tlist ports 'lan3'
\tlist ports 'lan4'

config interface 'lan'
\toption device 'br-lan'
\toption proto 'static'
\toption ipaddr '192.168.1.1'

config interface 'wan'
\toption device 'wan'
\toption proto 'dhcp'

config interface 'wan6'
\toption device 'wan'
\toption proto 'dhcpv6'

config interface 'guest'
\toption proto 'static'
\toption device 'br-guest'
"""
CONFIG = parse_uci_export(FACTORY)


def plan(**changes):
    return SimpleNamespace(**{"dmz_device": "lan4", "vpn_interface": "wg0", **changes})


def test_factory_router_fits_the_default_plan():
    assert {"lan1", "lan4", "wan", "br-lan", "lo"} <= router_devices(CONFIG)
    assert router_problems("router", plan(), CONFIG, "192.168.1.1") == []


def test_missing_device_wan_device_and_foreign_interface_are_named():
    assert router_problems("router", plan(dmz_device="lan5"), CONFIG) == [
        "router: dmz_device: 'lan5' (no such device on the router; it has: br-guest, br-lan, "
        "lan1, lan2, lan3, lan4, lo, wan)"
    ]
    assert router_problems("router", plan(dmz_device="wan"), CONFIG) == [
        "router: dmz_device: 'wan' (is the router's WAN device)"
    ]
    assert router_problems("router", plan(vpn_interface="guest"), CONFIG) == [
        "router: vpn_interface: 'guest' (the router already has an interface 'guest' (proto "
        "'static') this tool does not own)"
    ]


def test_the_ssh_link_device_cannot_become_the_dmz():
    single = parse_uci_export(FACTORY.replace("\tlist ports 'lan1'\n\tlist ports 'lan2'\n"
                                              "\tlist ports 'lan3'\n", ""))
    assert router_problems("router", plan(), single, "192.168.1.1") == [
        "router: dmz_device: 'lan4' (carries this SSH session: interface 'lan' (192.168.1.1) "
        "would lose its link)"
    ]


def test_an_existing_wireguard_interface_of_that_name_is_ours_to_converge():
    config = parse_uci_export(FACTORY + "\nconfig interface 'wg0'\n\toption proto 'wireguard'\n")
    assert router_problems("router", plan(), config) == []


def test_server_network_service_must_exist():
    state = {"complete": True, "network_services": [{"name": "Ethernet", "device": "en0"}]}
    ok = SimpleNamespace(static_ip=True, network_service=None, network_device="en0")
    assert server_problems("ai-server", ok, state) == []
    bad = SimpleNamespace(static_ip=True, network_service="Thunderbolt", network_device=None)
    assert server_problems("ai-server", bad, state) == [
        "ai-server: network_service: 'Thunderbolt' (no such network service on the Mac; it "
        "has: Ethernet (en0))"
    ]


def test_client_needs_homebrew_only_when_the_role_uses_it():
    from deploys.hostchecks import client_problems

    settings = SimpleNamespace(homebrew_prefix="/usr/local")
    assert client_problems("alice-mac", settings, {"brew": True}, needs_brew=True) == []
    assert client_problems("alice-mac", settings, {"brew": False}, needs_brew=False) == []
    assert client_problems("alice-mac", settings, {"brew": False}, needs_brew=True) == [
        "alice-mac: homebrew_prefix: '/usr/local' (no Homebrew there on this Mac: install it "
        "(https://brew.sh) or set homebrew_prefix)"
    ]


def test_lan_subnet_must_be_the_routers_lan_and_nothing_may_overlap_vpn_or_dmz():
    import ipaddress

    text = FACTORY.replace("\toption ipaddr '192.168.1.1'\n",
                           "\toption ipaddr '192.168.2.1'\n\toption netmask '255.255.255.0'\n")
    text += "\tlist ipaddr '10.10.10.1/16'\n"  # the guest network
    config = parse_uci_export(text)
    p = plan(lan_subnet=ipaddress.ip_network("192.168.1.0/24"),
             vpn_subnet=ipaddress.ip_network("10.10.10.0/24"),
             dmz_subnet=ipaddress.ip_network("192.168.100.0/24"))
    assert router_problems("router", p, config) == [
        "router: lan_subnet: '192.168.1.0/24' (the router's LAN is 192.168.2.0/24)",
        "router: vpn_subnet: '10.10.10.0/24' (overlaps the router's interface 'guest' "
        "(10.10.0.0/16))",
    ]
    good = plan(lan_subnet=ipaddress.ip_network("192.168.1.0/24"),
                vpn_subnet=ipaddress.ip_network("10.10.10.0/24"),
                dmz_subnet=ipaddress.ip_network("192.168.100.0/24"))
    assert router_problems("router", good, CONFIG, "192.168.1.1") == []


def test_vlan_and_kernel_devices_count_as_existing():
    assert router_problems("router", plan(dmz_device="lan4.100"), CONFIG) == []
    assert router_problems("router", plan(dmz_device="eth2"), CONFIG, None, ["eth2"]) == []
    assert router_problems("router", plan(dmz_device="lan9.100"), CONFIG)[0].startswith(
        "router: dmz_device: 'lan9.100' (no such device on the router")

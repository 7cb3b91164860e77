# ruff: noqa: E501
"""The catalogue of malformed inventories (issue 11): every field at least once, every class
(trailing newline, Unicode digits, control characters, router-owned names, values valid alone
but not together, typos, wrong types), each with its exact error lines.

Cases are checked at the validation function (``deploys.plan.validate``, the function the CLI
runs in ``State.init`` before any connection); a representative set goes through the pyinfra
CLI in ``tests/test_inventory_cli.py`` (exit 2, the same lines, zero TCP connections).
"""

from __future__ import annotations

import copy

import pytest

from deploys.plan import PlanError, validate

KEY_A = "5fdCvt2rkMv/m0qiVgjTo/E8NY5DN0WzfNsdXSJ/RUI="
KEY_B = "bR0nxMuNqFBxfS8TTQS51/iqSvsXc7pxRH784Wo99D8="

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
SERVER = {"dmz_address": "192.168.100.10", "dmz_mac": "52:54:00:a1:00:10"}
ALICE = {"vpn_name": "alice_mac"}
BOB = {"vpn_address": "10.10.10.3"}


def build(where: str, key: str, value: object) -> dict:
    """Valid inventory parts with one field of one place replaced (``...`` removes it)."""
    net, server, alice, rtr = copy.deepcopy(NETWORK), dict(SERVER), dict(ALICE), {}
    target = {"net": net, "srv": server, "cli": alice, "peer": net["vpn_peers"][0],
              "rtr": rtr}[where]
    if value is ...:
        target.pop(key, None)
    else:
        target[key] = KEY_A + "\n" if value == "KEY\n" else value
    return {
        "network": net,
        "router": ("router", rtr),
        "server": ("ai-server", server),
        "clients": [("alice-mac", alice), ("bob-mac", dict(BOB))],
    }


CASES = [
    # -- network-wide --
    ("net", "vpn_subnet", "10.10.10.0/24\n"), ("net", "vpn_subnet", " 10.10.10.0/24"),
    ("net", "vpn_subnet", 24), ("net", "vpn_subnet", "10.10.10.0/31"),
    ("net", "vpn_subnet", "\u0661\u0660.10.10.0/24"),
    ("net", "vpn_router_address", "10.10.10.1\n"), ("net", "vpn_router_address", "10.10.10.0"),
    ("net", "vpn_router_address", 167772161),
    ("net", "vpn_port", "51820"), ("net", "vpn_port", True), ("net", "vpn_port", 51820.0),
    ("net", "vpn_port", "\uff15\uff11\uff18\uff12\uff10"), ("net", "vpn_port", -1),
    ("net", "vpn_port", [51820]),
    ("net", "vpn_interface", "lan"), ("net", "vpn_interface", "wan"),
    ("net", "vpn_interface", "wan6"), ("net", "vpn_interface", "loopback"),
    ("net", "vpn_interface", "dmz"), ("net", "vpn_interface", "wg0\n"),
    ("net", "vpn_interface", "wg\x000"), ("net", "vpn_interface", "wgtoolonginterface0"),
    ("net", "vpn_interface", ""), ("net", "vpn_interface", " wg0"),
    ("net", "vpn_endpoint", "999.999.999.999"), ("net", "vpn_endpoint", "vpn.example.org\n"),
    ("net", "vpn_endpoint", "-bad.example.org"), ("net", "vpn_endpoint", "a..b"),
    ("net", "vpn_endpoint", "1.2.3"), ("net", "vpn_endpoint", "vpn.example.123"),
    ("net", "vpn_endpoint", ""), ("net", "vpn_endpoint", "http://vpn.example.org"),
    ("net", "vpn_endpoint", 12345), ("net", "vpn_endpoint", "vpn.ex\u0430mple.org"),
    ("net", "vpn_keepalive", 70000), ("net", "vpn_keepalive", "25"),
    ("net", "vpn_keepalive", True),
    ("net", "vpn_peers", {"name": "x"}), ("net", "vpn_peers", "phone"),
    ("net", "vpn_peers", [["x"]]), ("net", "vpn_peers", [{"kind": "phone"}]),
    ("net", "lan_subnet", "192.168.1.0/24 "), ("net", "lan_subnet", "10.10.10.128/25"),
    ("net", "dmz_subnet", "192.168.1.128/25"), ("net", "dmz_subnet", "fd00::/64"),
    ("net", "dmz_router_address", "192.168.100.0"),
    ("net", "dmz_router_address", "192.168.100.120"),
    ("net", "dmz_device", "wan"), ("net", "dmz_device", "br-lan"), ("net", "dmz_device", "lo"),
    ("net", "dmz_device", "wg0"), ("net", "dmz_device", "lan4\n"), ("net", "dmz_device", "lan4 "),
    ("net", "dmz_device", "eth0.100000000000"), ("net", "dmz_device", "lan/4"),
    ("net", "dmz_dhcp_start", 0), ("net", "dmz_dhcp_start", "100"),
    ("net", "dmz_dhcp_start", 65535), ("net", "dmz_dhcp_limit", 0),
    ("net", "dmz_dhcp_limit", True),
    ("net", "dmz_dhcp_leasetime", "12h\n"), ("net", "dmz_dhcp_leasetime", "12 h"),
    ("net", "dmz_dhcp_leasetime", "forever"), ("net", "dmz_dhcp_leasetime", 3600),
    ("net", "dmz_dhcp_leasetime", "12y"),
    ("net", "lan_to_dmz", 1), ("net", "lan_to_dmz", "True"),
    ("net", "ollama_port", "11434"), ("net", "ollama_port", "\uff11\uff11\uff14\uff13\uff14"),
    ("net", "ollama_port", 0), ("net", "ollama_port", 11434.5), ("net", "ollama_port", True),
    ("net", "secrets_dir", ""), ("net", "secrets_dir", "secrets\n"), ("net", "secrets_dir", 5),
    ("net", "peer_output_dir", "out\x00"), ("net", "peer_output_dir", ["out"]),
    ("net", "rotate_peers", "alice_phone,,bob"), ("net", "rotate_peers", ["nobody"]),
    ("net", "rotate_peers", [1]), ("net", "rotate_peers", ["bad name"]),
    ("net", "policy_tests", {"src": "vpn"}),
    ("net", "policy_tests", [{"src": "vpn", "dst": "server:11434"}]),
    ("net", "policy_tests", [{"src": "vpn", "dst": "lan", "expect": "allow"}]),
    ("net", "policy_tests", [{"src": "vpn", "dst": "lan", "expect": "deny", "proto": "sctp"}]),
    ("net", "policy_tests", [{"src": "vpn", "dst": "lan", "expect": "deny", "port": 1}]),
    ("net", "policy_tests", [{"src": "vpn\n", "dst": "lan", "expect": "deny"}]),
    ("net", "policy_tests", ["vpn->lan"]),
    ("net", "firewall_acknowledge", "x"), ("net", "firewall_acknowledge", ["bad-name"]),
    ("net", "firewall_acknowledge", [""]), ("net", "firewall_acknowledge", ["ok\n"]),
    ("net", "vpn_prot", 51820), ("net", "dmz_devcie", "lan4"), ("net", "ollama_prot", 1),
    ("net", "lan_subnett", "x"), ("net", "totally_unknown", 1), ("net", "dmz_mac", "x"),
    # -- vpn_peers entries --
    ("peer", "name", ""), ("peer", "name", "a" * 58), ("peer", "name", "p1\n"),
    ("peer", "name", 5), ("peer", "name", ...),
    ("peer", "kind", "Phone"), ("peer", "kind", "toaster"),
    ("peer", "address", "10.10.10.1"), ("peer", "address", "10.10.11.5"),
    ("peer", "address", "10.10.10.255"), ("peer", "address", "10.10.10.x"),
    ("peer", "keepalive", "25"), ("peer", "keepalive", True), ("peer", "keepalive", 65536),
    ("peer", "enabled", "yes"), ("peer", "enabled", 0),
    ("peer", "public_key", "x"), ("peer", "public_key", "KEY\n"),
    ("peer", "access", "server:11434"), ("peer", "access", ["lan:22"]),
    ("peer", "access", ["server:0"]), ("peer", "access", ["192.168.1.10:22"]),
    ("peer", "access", ["999.1.1.1:22"]), ("peer", "access", ["server:99999"]),
    ("peer", "access", ["server:11434\n"]),
    ("peer", "expires", "2026-13-01"), ("peer", "expires", "2026-02-30"),
    ("peer", "expires", "26-01-01"), ("peer", "expires", 20260101),
    ("peer", "expires", "2026-01-01\n"), ("peer", "expires", "\u0662026-01-01"),
    ("peer", "adress", "10.10.10.9"), ("peer", "pubkey", "x"),
    # -- a client host (alice-mac) --
    ("cli", "vpn_name", "alice-laptop"), ("cli", "vpn_name", "alice\n"),
    ("cli", "vpn_name", "a" * 58), ("cli", "vpn_name", "alice_phone"),
    ("cli", "vpn_kind", "toaster"), ("cli", "vpn_address", "10.10.10.3"),
    ("cli", "vpn_address", "10.10.10.3 "), ("cli", "vpn_enabled", "no"),
    ("cli", "vpn_public_key", "not-a-key"), ("cli", "vpn_access", ["lan"]),
    ("cli", "vpn_expires", "tomorrow"), ("cli", "vpn_keepalive", -5),
    ("cli", "wg_interface_name", "utun3"), ("cli", "wg_interface_name", "wg-ollama\n"),
    ("cli", "wg_interface_name", "wg ollama"), ("cli", "wg_interface_name", "wg-ollama-too-long"),
    ("cli", "tunnel_at_boot", "yes"), ("cli", "aider", 1),
    ("cli", "aider_models", {"name": "x"}), ("cli", "aider_models", ["ollama_chat/qwen"]),
    ("cli", "aider_models", ["qwen\n"]), ("cli", "aider_models", [{"name": "q", "num_ctx": 100}]),
    ("cli", "aider_models", [{"name": "q", "ctx": 1}]),
    ("cli", "aider_num_ctx", 100), ("cli", "aider_num_ctx", "32768"),
    ("cli", "aider_version", "latest"), ("cli", "aider_version", "0.86.1\n"),
    ("cli", "claude_code", "yes"), ("cli", "claude_models", {"defualt": "q"}),
    ("cli", "claude_models", ["q"]), ("cli", "claude_models", {"default": "q\n"}),
    ("cli", "server_ollama_version", "v0.14"), ("cli", "uninstall_aider", "no"),
    ("cli", "homebrew_prefix", "/usr"), ("cli", "homebrew_prefix", "opt/homebrew"),
    ("cli", "homebrew_prefix", "/opt/homebrew\n"),
    ("cli", "api_token", True), ("cli", "api_token", "yes"),
    ("cli", "claude_min_context", -1), ("cli", "claude_min_context", "65536"),
    ("cli", "key_on_mac", "yes"), ("cli", "pin_ollama", "yes"), ("cli", "configure_host", "no"),
    ("cli", "aider_model", "q"), ("cli", "vpn_nmae", "x"), ("cli", "dmz_mac", "x"),
    ("cli", "ollama_port", 8080), ("cli", "vpn_port", 51821),
    # -- the server --
    ("srv", "dmz_address", "192.168.100.10\n"), ("srv", "dmz_address", "192.168.100.120"),
    ("srv", "dmz_address", "192.168.100.255"), ("srv", "dmz_address", ...),
    ("srv", "dmz_mac", "52:54:00:a1:00:10\n"), ("srv", "dmz_mac", "52-54-00-a1-00-10"),
    ("srv", "dmz_hostname", "ai server"), ("srv", "dmz_hostname", "ai-server\n"),
    ("srv", "dmz_hostname", "-ai"), ("srv", "ollama_service", "Agent"),
    ("srv", "ollama_user", "bad user"), ("srv", "ollama_bind", "0.0.0.0"),
    ("srv", "ollama_origins", 5), ("srv", "ollama_origins", ["a,b"]),
    ("srv", "ollama_keep_alive", "24 h"), ("srv", "ollama_keep_alive", True),
    ("srv", "ollama_keep_alive", "24h\n"), ("srv", "ollama_context_length", 100),
    ("srv", "ollama_context_length", "32768"), ("srv", "ollama_num_parallel", 0),
    ("srv", "ollama_max_loaded_models", 65), ("srv", "ollama_flash_attention", "1"),
    ("srv", "ollama_kv_cache_type", "q5"), ("srv", "ollama_models_dir", "models"),
    ("srv", "ollama_models_dir", "/\n"), ("srv", "ollama_env", {"FOO": "1"}),
    ("srv", "ollama_env", {"OLLAMA_HOST": "x"}), ("srv", "ollama_env", {"OLLAMA_X": "a\nb"}),
    ("srv", "ollama_env", ["x"]), ("srv", "ollama_stdout_log", "log.txt"),
    ("srv", "ollama_models", {"name": "x"}), ("srv", "ollama_models", ["bad name"]),
    ("srv", "ollama_models", [{"name": "q", "context_length": 1024}]),
    ("srv", "ollama_models", [{"name": "q", "wram": True}]), ("srv", "ollama_models", ["q", "q"]),
    ("srv", "ollama_models", [{"warm": True}]), ("srv", "ollama_prune_models", "yes"),
    ("srv", "ollama_warm_keep_alive", "forever"), ("srv", "ollama_warm_num_ctx", 10),
    ("srv", "ollama_pull_timeout", -1), ("srv", "ollama_upgrade", "no"),
    ("srv", "ollama_memory_check", "strict"), ("srv", "competing_servers", "kill"),
    ("srv", "proxy", "nginx"), ("srv", "proxy", True), ("srv", "haproxy_config", "haproxy.cfg"),
    ("srv", "haproxy_log", "~/x.log"), ("srv", "haproxy_timeout", "10 minutes"),
    ("srv", "static_ip", "yes"), ("srv", "network_service", "Ether*net"),
    ("srv", "network_service", "Ethernet\n"), ("srv", "network_device", "en 0"),
    ("srv", "network_device", "en0\n"), ("srv", "dns_servers", []),
    ("srv", "dns_servers", ["1.1.1.1\n"]), ("srv", "dns_servers", "1.1.1.1"),
    ("srv", "static_ip_over_ssh", 1), ("srv", "pmset", {"Sleep": 0}),
    ("srv", "pmset", {"sleep": -1}), ("srv", "pmset", [1]),
    ("srv", "uninstall_revert_dhcp", "no"), ("srv", "log_rotate", {"size_kb": 10}),
    ("srv", "log_rotate", {"count": 0}), ("srv", "log_rotate", {"size": 1}),
    ("srv", "log_rotate", 5), ("srv", "warm_at_boot", "yes"),
    ("srv", "ollama_port", 8080), ("srv", "vpn_port", "51820"),
    ("srv", "ollama_modles", []), ("srv", "proxxy", None), ("srv", "proxxy", "haproxy"),
    ("srv", "aider", True), ("srv", "ollama_stderr_log", "/tmp/err.log\n"),
    ("net", "vpn_endpoint", "10.10.10.1"), ("net", "vpn_endpoint", "192.168.100.5"),
    ("cli", "vpn_name", "Alice_Phone"), ("net", "vpn_port", 53), ("net", "ollama_port", 22),
    ("net", "ollama_port", 80), ("net", "ollama_port", 5000),
    ("net", "vpn_subnet", "8.8.8.0/24"), ("net", "dmz_subnet", "169.254.0.0/16"),
    ("net", "lan_subnet", "224.0.0.0/24"), ("net", "vpn_endpoint", "127.0.0.1"),
    ("net", "vpn_endpoint", "0.0.0.0"), ("net", "vpn_endpoint", "router.local"),
    ("net", "vpn_endpoint", "localhost"), ("srv", "dmz_mac", "ff:ff:ff:ff:ff:ff"),
    ("srv", "dmz_mac", "00:00:00:00:00:00"), ("srv", "dns_servers", ["0.0.0.0"]),
    ("srv", "warm_poll_seconds", 0), ("srv", "warm_poll_seconds", True),
    ("srv", "warm_log", "warm.log"), ("srv", "log_rotate", True),
    ("net", "forget_peer_files", ["phone\n"]), ("net", "audit_json", "out\x00.json"),
    ("net", "audit_stale_after", 0), ("net", "verify_json", ""), ("net", "verify_junit", 7),
    ("rtr", "rollback_seconds", -1),
]


#: Generated once from the cases above, then reviewed line by line.
EXPECTED = {
    'net-vpn_subnet-0': ["network: vpn_subnet: '10.10.10.0/24\\n' (contains a control character ('\\n'); expected an IPv4 subnet like '10.10.10.0/24')"],
    'net-vpn_subnet-1': ["network: vpn_subnet: ' 10.10.10.0/24' (has leading or trailing whitespace; expected an IPv4 subnet like '10.10.10.0/24')"],
    'net-vpn_subnet-2': ["network: vpn_subnet: 24 (expected an IPv4 subnet like '10.10.10.0/24')"],
    'net-vpn_subnet-3': ["network: vpn_subnet: '10.10.10.0/31' (subnet too small (at most /30))"],
    'net-vpn_subnet-4': ["network: vpn_subnet: '١٠.10.10.0/24' (not an IPv4 subnet)"],
    'net-vpn_router_address-5': ["network: vpn_router_address: '10.10.10.1\\n' (contains a control character ('\\n'); expected an IPv4 address like '10.10.10.2')"],
    'net-vpn_router_address-6': ["network: vpn_router_address: '10.10.10.0' (network or broadcast address of 10.10.10.0/24)"],
    'net-vpn_router_address-7': ["network: vpn_router_address: 167772161 (expected an IPv4 address like '10.10.10.2')"],
    'net-vpn_port-8': ["network: vpn_port: '51820' (expected a whole number from 1 to 65535)"],
    'net-vpn_port-9': ['network: vpn_port: True (expected a whole number from 1 to 65535)'],
    'net-vpn_port-10': ['network: vpn_port: 51820.0 (expected a whole number from 1 to 65535)'],
    'net-vpn_port-11': ["network: vpn_port: '５１８２０' (expected a whole number from 1 to 65535)"],
    'net-vpn_port-12': ['network: vpn_port: -1 (out of range 1-65535)'],
    'net-vpn_port-13': ['network: vpn_port: [51820] (expected a whole number from 1 to 65535)'],
    'net-vpn_interface-14': ["network: vpn_interface: 'lan' (belongs to the router: lan, wan, wan6, loopback and dmz (the DMZ) cannot be the VPN interface)"],
    'net-vpn_interface-15': ["network: vpn_interface: 'wan' (belongs to the router: lan, wan, wan6, loopback and dmz (the DMZ) cannot be the VPN interface)"],
    'net-vpn_interface-16': ["network: vpn_interface: 'wan6' (belongs to the router: lan, wan, wan6, loopback and dmz (the DMZ) cannot be the VPN interface)"],
    'net-vpn_interface-17': ["network: vpn_interface: 'loopback' (belongs to the router: lan, wan, wan6, loopback and dmz (the DMZ) cannot be the VPN interface)"],
    'net-vpn_interface-18': ["network: vpn_interface: 'dmz' (belongs to the router: lan, wan, wan6, loopback and dmz (the DMZ) cannot be the VPN interface)"],
    'net-vpn_interface-19': ["network: vpn_interface: 'wg0\\n' (contains a control character ('\\n'); must be a UCI section name and interface name: 1-15 of [A-Za-z0-9_])"],
    'net-vpn_interface-20': ["network: vpn_interface: 'wg\\x000' (contains a NUL character; must be a UCI section name and interface name: 1-15 of [A-Za-z0-9_])"],
    'net-vpn_interface-21': ["network: vpn_interface: 'wgtoolonginterface0' (must be a UCI section name and interface name: 1-15 of [A-Za-z0-9_])"],
    'net-vpn_interface-22': ["network: vpn_interface: '' (must be a UCI section name and interface name: 1-15 of [A-Za-z0-9_])"],
    'net-vpn_interface-23': ["network: vpn_interface: ' wg0' (has leading or trailing whitespace; must be a UCI section name and interface name: 1-15 of [A-Za-z0-9_])"],
    'net-vpn_endpoint-24': ["network: vpn_endpoint: '999.999.999.999' (not a valid IPv4 address (and a DNS name cannot be all digits))"],
    'net-vpn_endpoint-25': ["network: vpn_endpoint: 'vpn.example.org\\n' (contains a control character ('\\n'); not a DNS name or IP address)"],
    'net-vpn_endpoint-26': ["network: vpn_endpoint: '-bad.example.org' (not a DNS name or IP address)"],
    'net-vpn_endpoint-27': ["network: vpn_endpoint: 'a..b' (not a DNS name or IP address)"],
    'net-vpn_endpoint-28': ["network: vpn_endpoint: '1.2.3' (not a valid IPv4 address (and a DNS name cannot be all digits))"],
    'net-vpn_endpoint-29': ["network: vpn_endpoint: 'vpn.example.123' (not a DNS name or IP address)"],
    'net-vpn_endpoint-30': ["network: vpn_endpoint: '' (not a DNS name or IP address)"],
    'net-vpn_endpoint-31': ["network: vpn_endpoint: 'http://vpn.example.org' (not a DNS name or IP address)"],
    'net-vpn_endpoint-32': ['network: vpn_endpoint: 12345 (not a DNS name or IP address)'],
    'net-vpn_endpoint-33': ["network: vpn_endpoint: 'vpn.exаmple.org' (not a DNS name or IP address)"],
    'net-vpn_keepalive-34': ['network: vpn_keepalive: 70000 (out of range 0-65535)'],
    'net-vpn_keepalive-35': ["network: vpn_keepalive: '25' (expected a whole number from 0 to 65535)"],
    'net-vpn_keepalive-36': ['network: vpn_keepalive: True (expected a whole number from 0 to 65535)'],
    'net-vpn_peers-37': ["network: vpn_peers: {'name': 'x'} (expected a list of peer dicts)"],
    'net-vpn_peers-38': ["network: vpn_peers: 'phone' (expected a list of peer dicts)"],
    'net-vpn_peers-39': ["network: vpn_peers[0]: ['x'] (expected a dict with at least 'name')"],
    'net-vpn_peers-40': ['peer vpn_peers[0]: name: None (required: every peer needs a name)'],
    'net-lan_subnet-41': ["network: lan_subnet: '192.168.1.0/24 ' (has leading or trailing whitespace; expected an IPv4 subnet like '10.10.10.0/24')"],
    'net-lan_subnet-42': ["network: lan_subnet: '10.10.10.128/25' (overlaps vpn_subnet 10.10.10.0/24)"],
    'net-dmz_subnet-43': ["network: dmz_subnet: '192.168.1.128/25' (overlaps lan_subnet 192.168.1.0/24)", "network: dmz_router_address: '192.168.100.1' (outside the dmz_subnet 192.168.1.128/25)", 'network: dmz_dhcp_limit: 50 (pool .100+50 does not fit in dmz_subnet 192.168.1.128/25)', "ai-server: dmz_address: '192.168.100.10' (outside the dmz_subnet 192.168.1.128/25)"],
    'net-dmz_subnet-44': ["network: dmz_subnet: 'fd00::/64' (only IPv4 subnets are supported)"],
    'net-dmz_router_address-45': ["network: dmz_router_address: '192.168.100.0' (network or broadcast address of 192.168.100.0/24)"],
    'net-dmz_router_address-46': ["network: dmz_router_address: '192.168.100.120' (inside the DHCP pool .100+50)"],
    'net-dmz_device-47': ["network: dmz_device: 'wan' (is the router's WAN, LAN bridge or loopback: the DMZ needs a port of its own, like 'lan4')"],
    'net-dmz_device-48': ["network: dmz_device: 'br-lan' (is the router's WAN, LAN bridge or loopback: the DMZ needs a port of its own, like 'lan4')"],
    'net-dmz_device-49': ["network: dmz_device: 'lo' (is the router's WAN, LAN bridge or loopback: the DMZ needs a port of its own, like 'lan4')"],
    'net-dmz_device-50': ["network: dmz_device: 'wg0' (is the VPN interface)"],
    'net-dmz_device-51': ["network: dmz_device: 'lan4\\n' (contains a control character ('\\n'); not a network device name (1-15 of [A-Za-z0-9_.-]))"],
    'net-dmz_device-52': ["network: dmz_device: 'lan4 ' (has leading or trailing whitespace; not a network device name (1-15 of [A-Za-z0-9_.-]))"],
    'net-dmz_device-53': ["network: dmz_device: 'eth0.100000000000' (not a network device name (1-15 of [A-Za-z0-9_.-]))"],
    'net-dmz_device-54': ["network: dmz_device: 'lan/4' (not a network device name (1-15 of [A-Za-z0-9_.-]))"],
    'net-dmz_dhcp_start-55': ['network: dmz_dhcp_start: 0 (out of range 1-65534)'],
    'net-dmz_dhcp_start-56': ["network: dmz_dhcp_start: '100' (expected a whole number from 1 to 65534)"],
    'net-dmz_dhcp_start-57': ['network: dmz_dhcp_start: 65535 (out of range 1-65534)'],
    'net-dmz_dhcp_limit-58': ['network: dmz_dhcp_limit: 0 (out of range 1-65534)'],
    'net-dmz_dhcp_limit-59': ['network: dmz_dhcp_limit: True (expected a whole number from 1 to 65534)'],
    'net-dmz_dhcp_leasetime-60': ["network: dmz_dhcp_leasetime: '12h\\n' (contains a control character ('\\n'); expected a lease time like '12h', '3600' or 'infinite')"],
    'net-dmz_dhcp_leasetime-61': ["network: dmz_dhcp_leasetime: '12 h' (expected a lease time like '12h', '3600' or 'infinite')"],
    'net-dmz_dhcp_leasetime-62': ["network: dmz_dhcp_leasetime: 'forever' (expected a lease time like '12h', '3600' or 'infinite')"],
    'net-dmz_dhcp_leasetime-63': ["network: dmz_dhcp_leasetime: 3600 (expected a lease time like '12h', '3600' or 'infinite')"],
    'net-dmz_dhcp_leasetime-64': ["network: dmz_dhcp_leasetime: '12y' (expected a lease time like '12h', '3600' or 'infinite')"],
    'net-lan_to_dmz-65': ['network: lan_to_dmz: 1 (expected True or False)'],
    'net-lan_to_dmz-66': ["network: lan_to_dmz: 'True' (expected True or False)"],
    'net-ollama_port-67': ["network: ollama_port: '11434' (expected a whole number from 1 to 65535)"],
    'net-ollama_port-68': ["network: ollama_port: '１１４３４' (expected a whole number from 1 to 65535)"],
    'net-ollama_port-69': ['network: ollama_port: 0 (out of range 1-65535)'],
    'net-ollama_port-70': ['network: ollama_port: 11434.5 (expected a whole number from 1 to 65535)'],
    'net-ollama_port-71': ['network: ollama_port: True (expected a whole number from 1 to 65535)'],
    'net-secrets_dir-72': ["network: secrets_dir: '' (expected a directory path)"],
    'net-secrets_dir-73': ["network: secrets_dir: 'secrets\\n' (contains a control character ('\\n'); expected a directory path)"],
    'net-secrets_dir-74': ['network: secrets_dir: 5 (expected a directory path)'],
    'net-peer_output_dir-75': ["network: peer_output_dir: 'out\\x00' (contains a NUL character; expected a directory path)"],
    'net-peer_output_dir-76': ["network: peer_output_dir: ['out'] (expected a directory path)"],
    'net-rotate_peers-77': ["network: rotate_peers: 'alice_phone,,bob' (expected peer names, comma-separated: [A-Za-z0-9_]+)"],
    'net-rotate_peers-78': ["network: rotate_peers: 'nobody' (no such peer in the inventory)"],
    'net-rotate_peers-79': ['network: rotate_peers[0]: 1 (peer names must be UCI section names: [A-Za-z0-9_]+)'],
    'net-rotate_peers-80': ["network: rotate_peers[0]: 'bad name' (peer names must be UCI section names: [A-Za-z0-9_]+)"],
    'net-policy_tests-81': ["network: policy_tests: {'src': 'vpn'} (expected a list of policy test dicts)"],
    'net-policy_tests-82': ['network: policy_tests[0].expect: None (required: the expected verdict)'],
    'net-policy_tests-83': ["network: policy_tests[0].expect: 'allow' (expected one of 'accept', 'deny')"],
    'net-policy_tests-84': ["network: policy_tests[0].proto: 'sctp' (expected one of 'tcp', 'udp', 'icmp')"],
    'net-policy_tests-85': ['network: policy_tests[0].port: 1 (unknown field)'],
    'net-policy_tests-86': ["network: policy_tests[0].src: 'vpn\\n' (contains a control character ('\\n'); expected a source like 'vpn', 'dmz', 'lan' or a peer name)"],
    'net-policy_tests-87': ["network: policy_tests[0]: 'vpn->lan' (expected a dict {'src', 'dst', 'expect'[, 'proto']})"],
    'net-firewall_acknowledge-88': ["network: firewall_acknowledge: 'x' (expected a list of uci section names)"],
    'net-firewall_acknowledge-89': ["network: firewall_acknowledge[0]: 'bad-name' (expected a uci section name: [A-Za-z0-9_]+)"],
    'net-firewall_acknowledge-90': ["network: firewall_acknowledge[0]: '' (expected a uci section name: [A-Za-z0-9_]+)"],
    'net-firewall_acknowledge-91': ["network: firewall_acknowledge[0]: 'ok\\n' (contains a control character ('\\n'); expected a uci section name: [A-Za-z0-9_]+)"],
    'net-vpn_prot-92': ["network: vpn_prot: 51820 (unknown field; did you mean 'vpn_port'?)"],
    'net-dmz_devcie-93': ["network: dmz_devcie: 'lan4' (unknown field; did you mean 'dmz_device'?)"],
    'net-ollama_prot-94': ["network: ollama_prot: 1 (unknown field; did you mean 'ollama_port'?)"],
    'net-lan_subnett-95': ["network: lan_subnett: 'x' (unknown field; did you mean 'lan_subnet'?)"],
    'net-totally_unknown-96': ['network: totally_unknown: 1 (unknown field)'],
    'net-dmz_mac-97': ["network: dmz_mac: 'x' (a field of the server, not of the router)"],
    'peer-name-98': ["peer vpn_peers[0]: name: '' (peer names must be UCI section names: [A-Za-z0-9_]+)"],
    'peer-name-99': ["peer aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' (too long (at most 57 characters))"],
    'peer-name-100': ["peer vpn_peers[0]: name: 'p1\\n' (contains a control character ('\\n'); peer names must be UCI section names: [A-Za-z0-9_]+)"],
    'peer-name-101': ['peer vpn_peers[0]: name: 5 (peer names must be UCI section names: [A-Za-z0-9_]+)'],
    'peer-name-102': ['peer vpn_peers[0]: name: None (required: every peer needs a name)'],
    'peer-kind-103': ["peer alice_phone: kind: 'Phone' (expected one of macos, phone, tablet, linux, windows, other)"],
    'peer-kind-104': ["peer alice_phone: kind: 'toaster' (expected one of macos, phone, tablet, linux, windows, other)"],
    'peer-address-105': ["peer alice_phone: address: '10.10.10.1' (is the router's VPN address)"],
    'peer-address-106': ["peer alice_phone: address: '10.10.11.5' (outside the vpn_subnet 10.10.10.0/24)"],
    'peer-address-107': ["peer alice_phone: address: '10.10.10.255' (network or broadcast address of 10.10.10.0/24)"],
    'peer-address-108': ["peer alice_phone: address: '10.10.10.x' (not an IPv4 address)"],
    'peer-keepalive-109': ["peer alice_phone: keepalive: '25' (expected a whole number from 0 to 65535)"],
    'peer-keepalive-110': ['peer alice_phone: keepalive: True (expected a whole number from 0 to 65535)'],
    'peer-keepalive-111': ['peer alice_phone: keepalive: 65536 (out of range 0-65535)'],
    'peer-enabled-112': ["peer alice_phone: enabled: 'yes' (expected True or False)"],
    'peer-enabled-113': ['peer alice_phone: enabled: 0 (expected True or False)'],
    'peer-public_key-114': ["peer alice_phone: public_key: 'x' (not a WireGuard public key (44 chars base64))"],
    'peer-public_key-115': ["peer alice_phone: public_key: '5fdCvt2rkMv/m0qiVgjTo/E8NY5DN0WzfNsdXSJ/RUI=\\n' (contains a control character ('\\n'); not a WireGuard public key (44 chars base64))"],
    'peer-access-116': ["peer alice_phone: access: 'server:11434' (expected a list of destinations like ['server:11434'])"],
    'peer-access-117': ["peer alice_phone: access[0]: 'lan:22' (expected a destination like 'server:11434', 'dmz:443' or '192.168.100.20:22')"],
    'peer-access-118': ["peer alice_phone: access[0]: 'server:0' (port out of range 1-65535)"],
    'peer-access-119': ["peer alice_phone: access: '192.168.1.10:22' (only addresses of the dmz_subnet 192.168.100.0/24 can be reached from the VPN)"],
    'peer-access-120': ["peer alice_phone: access[0]: '999.1.1.1:22' (not an IPv4 address)"],
    'peer-access-121': ["peer alice_phone: access[0]: 'server:99999' (port out of range 1-65535)"],
    'peer-access-122': ["peer alice_phone: access[0]: 'server:11434\\n' (contains a control character ('\\n'); expected a destination like 'server:11434', 'dmz:443' or '192.168.100.20:22')"],
    'peer-expires-123': ["peer alice_phone: expires: '2026-13-01' (not a real date)"],
    'peer-expires-124': ["peer alice_phone: expires: '2026-02-30' (not a real date)"],
    'peer-expires-125': ["peer alice_phone: expires: '26-01-01' (expected an ISO date 'YYYY-MM-DD')"],
    'peer-expires-126': ["peer alice_phone: expires: 20260101 (expected an ISO date 'YYYY-MM-DD')"],
    'peer-expires-127': ["peer alice_phone: expires: '2026-01-01\\n' (contains a control character ('\\n'); expected an ISO date 'YYYY-MM-DD')"],
    'peer-expires-128': ["peer alice_phone: expires: '٢026-01-01' (expected an ISO date 'YYYY-MM-DD')"],
    'peer-adress-129': ["peer alice_phone: adress: '10.10.10.9' (unknown peer field; did you mean 'address'?)"],
    'peer-pubkey-130': ["peer alice_phone: pubkey: 'x' (unknown peer field; did you mean 'public_key'?)"],
    'cli-vpn_name-131': ["alice-mac: vpn_name: 'alice-laptop' (peer names must be UCI section names: [A-Za-z0-9_]+)"],
    'cli-vpn_name-132': ["alice-mac: vpn_name: 'alice\\n' (contains a control character ('\\n'); peer names must be UCI section names: [A-Za-z0-9_]+)"],
    'cli-vpn_name-133': ["alice-mac: vpn_name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' (too long (at most 57 characters))"],
    'cli-vpn_name-134': ["peer alice_phone: name: 'alice_phone' (duplicate peer name (also alice-mac))"],
    'cli-vpn_kind-135': ["alice-mac: vpn_kind: 'toaster' (expected one of macos, phone, tablet, linux, windows, other)"],
    'cli-vpn_address-136': ["bob-mac: vpn_address: '10.10.10.3' (duplicate peer address (also alice-mac))"],
    'cli-vpn_address-137': ["alice-mac: vpn_address: '10.10.10.3 ' (has leading or trailing whitespace; expected an IPv4 address like '10.10.10.2')"],
    'cli-vpn_enabled-138': ["alice-mac: vpn_enabled: 'no' (expected True or False)"],
    'cli-vpn_public_key-139': ["alice-mac: vpn_public_key: 'not-a-key' (not a WireGuard public key (44 chars base64))"],
    'cli-vpn_access-140': ["alice-mac: vpn_access[0]: 'lan' (expected a destination like 'server:11434', 'dmz:443' or '192.168.100.20:22')"],
    'cli-vpn_expires-141': ["alice-mac: vpn_expires: 'tomorrow' (expected an ISO date 'YYYY-MM-DD')"],
    'cli-vpn_keepalive-142': ['alice-mac: vpn_keepalive: -5 (out of range 0-65535)'],
    'cli-wg_interface_name-143': ["alice-mac: wg_interface_name: 'utun3' (utunN names are macOS devices, choose another name)"],
    'cli-wg_interface_name-144': ["alice-mac: wg_interface_name: 'wg-ollama\\n' (contains a control character ('\\n'); wg-quick interface names are 1-15 of [A-Za-z0-9_=+.-])"],
    'cli-wg_interface_name-145': ["alice-mac: wg_interface_name: 'wg ollama' (wg-quick interface names are 1-15 of [A-Za-z0-9_=+.-])"],
    'cli-wg_interface_name-146': ["alice-mac: wg_interface_name: 'wg-ollama-too-long' (wg-quick interface names are 1-15 of [A-Za-z0-9_=+.-])"],
    'cli-tunnel_at_boot-147': ["alice-mac: tunnel_at_boot: 'yes' (expected True or False)"],
    'cli-aider-148': ['alice-mac: aider: 1 (expected True or False)'],
    'cli-aider_models-149': ["alice-mac: aider_models: {'name': 'x'} (expected a list of model names or {'name', 'num_ctx'})"],
    'cli-aider_models-150': ["alice-mac: aider_models[0]: 'ollama_chat/qwen' (give the Ollama name without Aider's 'ollama_chat/' prefix)"],
    'cli-aider_models-151': ["alice-mac: aider_models[0]: 'qwen\\n' (contains a control character ('\\n'); not an Ollama model name like 'qwen2.5-coder:32b')"],
    'cli-aider_models-152': ['alice-mac: aider_models[0].num_ctx: 100 (out of range 512-2097152)'],
    'cli-aider_models-153': ['alice-mac: aider_models[0].ctx: 1 (unknown field (expected name, num_ctx))'],
    'cli-aider_num_ctx-154': ['alice-mac: aider_num_ctx: 100 (out of range 512-2097152)'],
    'cli-aider_num_ctx-155': ["alice-mac: aider_num_ctx: '32768' (expected a whole number of tokens from 512 to 2097152)"],
    'cli-aider_version-156': ["alice-mac: aider_version: 'latest' (expected a version like '0.86.1')"],
    'cli-aider_version-157': ["alice-mac: aider_version: '0.86.1\\n' (contains a control character ('\\n'); expected a version like '0.86.1')"],
    'cli-claude_code-158': ["alice-mac: claude_code: 'yes' (expected True or False)"],
    'cli-claude_models-159': ["alice-mac: claude_models.defualt: 'q' (unknown role (expected default, opus, sonnet, haiku, subagent); did you mean 'default'?)"],
    'cli-claude_models-160': ["alice-mac: claude_models: ['q'] (expected a model name or a dict with 'default' (+ opus, sonnet, haiku, subagent))"],
    'cli-claude_models-161': ["alice-mac: claude_models.default: 'q\\n' (contains a control character ('\\n'); not an Ollama model name like 'qwen3-coder:30b')"],
    'cli-server_ollama_version-162': ["alice-mac: server_ollama_version: 'v0.14' (expected a version like '0.14.0')"],
    'cli-uninstall_aider-163': ["alice-mac: uninstall_aider: 'no' (expected True or False)"],
    'cli-homebrew_prefix-164': ["alice-mac: homebrew_prefix: '/usr' (expected Homebrew's prefix, e.g. '/opt/homebrew')"],
    'cli-homebrew_prefix-165': ["alice-mac: homebrew_prefix: 'opt/homebrew' (expected Homebrew's prefix, e.g. '/opt/homebrew')"],
    'cli-homebrew_prefix-166': ["alice-mac: homebrew_prefix: '/opt/homebrew\\n' (contains a control character ('\\n'); expected Homebrew's prefix, e.g. '/opt/homebrew')"],
    'cli-api_token-167': ["alice-mac: api_token: True (needs the server's proxy = 'haproxy' (Ollama itself checks no token))"],
    'cli-api_token-168': ["alice-mac: api_token: 'yes' (expected True or False)"],
    'cli-claude_min_context-169': ['alice-mac: claude_min_context: -1 (out of range 0-2097152)'],
    'cli-claude_min_context-170': ["alice-mac: claude_min_context: '65536' (expected a whole number from 0 to 2097152)"],
    'cli-key_on_mac-171': ["alice-mac: key_on_mac: 'yes' (expected True or False)"],
    'cli-pin_ollama-172': ["alice-mac: pin_ollama: 'yes' (expected True or False)"],
    'cli-configure_host-173': ["alice-mac: configure_host: 'no' (expected True or False)"],
    'cli-aider_model-174': ["alice-mac: aider_model: 'q' (unknown field; did you mean 'aider_models'?)"],
    'cli-vpn_nmae-175': ["alice-mac: vpn_nmae: 'x' (unknown field; did you mean 'vpn_name'?)"],
    'cli-dmz_mac-176': ["alice-mac: dmz_mac: 'x' (a field of the server, not of clients)"],
    'cli-ollama_port-177': ["alice-mac: ollama_port: 8080 (differs from the network's value 11434: a network-wide field has one value, set it once in group_data/all.py)"],
    'cli-vpn_port-178': ["alice-mac: vpn_port: 51821 (differs from the network's value 51820: a network-wide field has one value, set it once in group_data/all.py)"],
    'srv-dmz_address-179': ["ai-server: dmz_address: '192.168.100.10\\n' (contains a control character ('\\n'); expected an IPv4 address like '10.10.10.2')"],
    'srv-dmz_address-180': ["ai-server: dmz_address: '192.168.100.120' (inside the DMZ DHCP pool .100+50: choose a static address outside it)"],
    'srv-dmz_address-181': ["ai-server: dmz_address: '192.168.100.255' (network or broadcast address of 192.168.100.0/24)"],
    'srv-dmz_address-182': ["ai-server: dmz_address: None (expected an IPv4 address like '10.10.10.2')"],
    'srv-dmz_mac-183': ["ai-server: dmz_mac: '52:54:00:a1:00:10\\n' (contains a control character ('\\n'); not a MAC address like 52:54:00:a1:00:10)"],
    'srv-dmz_mac-184': ["ai-server: dmz_mac: '52-54-00-a1-00-10' (not a MAC address like 52:54:00:a1:00:10)"],
    'srv-dmz_hostname-185': ["ai-server: dmz_hostname: 'ai server' (not a host name)"],
    'srv-dmz_hostname-186': ["ai-server: dmz_hostname: 'ai-server\\n' (contains a control character ('\\n'); not a host name)"],
    'srv-dmz_hostname-187': ["ai-server: dmz_hostname: '-ai' (not a host name)"],
    'srv-ollama_service-188': ["ai-server: ollama_service: 'Agent' (expected one of 'agent', 'daemon')"],
    'srv-ollama_user-189': ["ai-server: ollama_user: 'bad user' (not a macOS account name)"],
    'srv-ollama_bind-190': ["ai-server: ollama_bind: '0.0.0.0' (expected one of 'dmz', 'all')"],
    'srv-ollama_origins-191': ["ai-server: ollama_origins: 5 (expected a list of origins like ['http://192.168.100.10:*'] or one comma-separated string)"],
    'srv-ollama_origins-192': ["ai-server: ollama_origins[0]: 'a,b' (expected an origin like 'http://192.168.100.10:*')"],
    'srv-ollama_keep_alive-193': ["ai-server: ollama_keep_alive: '24 h' (expected a duration like '24h', '30m', seconds, or -1 for forever)"],
    'srv-ollama_keep_alive-194': ["ai-server: ollama_keep_alive: True (expected a duration like '24h', '30m', seconds, or -1 for forever)"],
    'srv-ollama_keep_alive-195': ["ai-server: ollama_keep_alive: '24h\\n' (contains a control character ('\\n'); expected a duration like '24h', '30m', seconds, or -1 for forever)"],
    'srv-ollama_context_length-196': ['ai-server: ollama_context_length: 100 (out of range 256-2097152)'],
    'srv-ollama_context_length-197': ["ai-server: ollama_context_length: '32768' (expected a whole number from 256 to 2097152)"],
    'srv-ollama_num_parallel-198': ['ai-server: ollama_num_parallel: 0 (out of range 1-64)'],
    'srv-ollama_max_loaded_models-199': ['ai-server: ollama_max_loaded_models: 65 (out of range 0-64)'],
    'srv-ollama_flash_attention-200': ["ai-server: ollama_flash_attention: '1' (expected True or False)"],
    'srv-ollama_kv_cache_type-201': ["ai-server: ollama_kv_cache_type: 'q5' (expected one of f16, q8_0, q4_0)"],
    'srv-ollama_models_dir-202': ["ai-server: ollama_models_dir: 'models' (expected an absolute path)"],
    'srv-ollama_models_dir-203': ["ai-server: ollama_models_dir: '/\\n' (contains a control character ('\\n'); expected an absolute path)"],
    'srv-ollama_env-204': ["ai-server: ollama_env['FOO']: '1' (not a valid key (only OLLAMA_[A-Z0-9_]+ variables))"],
    'srv-ollama_env-205': ["ai-server: ollama_env['OLLAMA_HOST']: 'x' (set it with ollama_bind)"],
    'srv-ollama_env-206': ["ai-server: ollama_env['OLLAMA_X']: 'a\\nb' (contains a control character ('\\n'); expected a one-line string or number)"],
    'srv-ollama_env-207': ["ai-server: ollama_env: ['x'] (only OLLAMA_[A-Z0-9_]+ variables)"],
    'srv-ollama_stdout_log-208': ["ai-server: ollama_stdout_log: 'log.txt' (expected an absolute path)"],
    'srv-ollama_models-209': ["ai-server: ollama_models: {'name': 'x'} (expected a list of model names or dicts)"],
    'srv-ollama_models-210': ["ai-server: ollama_models[0]: 'bad name' (not an Ollama model name like 'qwen2.5-coder:32b')"],
    'srv-ollama_models-211': ['ai-server: ollama_models[0].context_length: 1024 (out of range 2048-1048576)'],
    'srv-ollama_models-212': ["ai-server: ollama_models[0].wram: True (unknown model field (name, warm, memory_gb, context_length); did you mean 'warm'?)"],
    'srv-ollama_models-213': ["ai-server: ollama_models[1]: 'q' (declared twice)"],
    'srv-ollama_models-214': ['ai-server: ollama_models[0].name: None (required: Ollama model name)'],
    'srv-ollama_prune_models-215': ["ai-server: ollama_prune_models: 'yes' (expected True or False)"],
    'srv-ollama_warm_keep_alive-216': ["ai-server: ollama_warm_keep_alive: 'forever' (expected a duration like '24h', '30m', seconds, or -1 for forever)"],
    'srv-ollama_warm_num_ctx-217': ['ai-server: ollama_warm_num_ctx: 10 (out of range 256-2097152)'],
    'srv-ollama_pull_timeout-218': ['ai-server: ollama_pull_timeout: -1 (out of range 0-604800)'],
    'srv-ollama_upgrade-219': ["ai-server: ollama_upgrade: 'no' (expected True or False)"],
    'srv-ollama_memory_check-220': ["ai-server: ollama_memory_check: 'strict' (expected one of 'fail', 'warn', 'off')"],
    'srv-competing_servers-221': ["ai-server: competing_servers: 'kill' (expected one of 'stop', 'warn')"],
    'srv-proxy-222': ["ai-server: proxy: 'nginx' (expected None or 'haproxy')"],
    'srv-proxy-223': ["ai-server: proxy: True (expected None or 'haproxy')"],
    'srv-haproxy_config-224': ["ai-server: haproxy_config: 'haproxy.cfg' (expected an absolute path or one under ~/)"],
    'srv-haproxy_log-225': ["ai-server: haproxy_log: '~/x.log' (expected an absolute path)"],
    'srv-haproxy_timeout-226': ["ai-server: haproxy_timeout: '10 minutes' (expected an HAProxy time like '10m')"],
    'srv-static_ip-227': ["ai-server: static_ip: 'yes' (expected True or False)"],
    'srv-network_service-228': ["ai-server: network_service: 'Ether*net' (expected a network service name like 'Ethernet')"],
    'srv-network_service-229': ["ai-server: network_service: 'Ethernet\\n' (contains a control character ('\\n'); expected a network service name like 'Ethernet')"],
    'srv-network_device-230': ["ai-server: network_device: 'en 0' (expected a device name like 'en0')"],
    'srv-network_device-231': ["ai-server: network_device: 'en0\\n' (contains a control character ('\\n'); expected a device name like 'en0')"],
    'srv-dns_servers-232': ['ai-server: dns_servers: [] (expected a non-empty list of IPv4 addresses)'],
    'srv-dns_servers-233': ["ai-server: dns_servers[0]: '1.1.1.1\\n' (contains a control character ('\\n'); expected an IPv4 address like '10.10.10.2')"],
    'srv-dns_servers-234': ["ai-server: dns_servers: '1.1.1.1' (expected a non-empty list of IPv4 addresses)"],
    'srv-static_ip_over_ssh-235': ['ai-server: static_ip_over_ssh: 1 (expected True or False)'],
    'srv-pmset-236': ["ai-server: pmset['Sleep']: 0 (not a valid key (not a pmset setting name))"],
    'srv-pmset-237': ["ai-server: pmset['sleep']: -1 (out of range 0-100000)"],
    'srv-pmset-238': ['ai-server: pmset: [1] (not a pmset setting name)'],
    'srv-uninstall_revert_dhcp-239': ["ai-server: uninstall_revert_dhcp: 'no' (expected True or False)"],
    'srv-log_rotate-240': ['ai-server: log_rotate.size_kb: 10 (out of range 100-10000000)'],
    'srv-log_rotate-241': ['ai-server: log_rotate.count: 0 (out of range 1-100)'],
    'srv-log_rotate-242': ['ai-server: log_rotate.size: 1 (unknown field)'],
    'srv-log_rotate-243': ["ai-server: log_rotate: 5 (expected a dict {'size_kb': 10240, 'count': 5}, or False (no rotation))"],
    'srv-warm_at_boot-244': ["ai-server: warm_at_boot: 'yes' (expected True or False)"],
    'srv-ollama_port-245': ["ai-server: ollama_port: 8080 (differs from the network's value 11434: a network-wide field has one value, set it once in group_data/all.py)"],
    'srv-vpn_port-246': ["ai-server: vpn_port: '51820' (expected a whole number from 1 to 65535)"],
    'srv-ollama_modles-247': ["ai-server: ollama_modles: [] (unknown field; did you mean 'ollama_models'?)"],
    'srv-proxxy-248': ["ai-server: proxxy: None (unknown field; did you mean 'proxy'?)"],
    'srv-proxxy-249': ["ai-server: proxxy: 'haproxy' (unknown field; did you mean 'proxy'?)"],
    'srv-aider-250': ['ai-server: aider: True (a field of clients, not of the server)'],
    'net-vpn_endpoint-252': ["network: vpn_endpoint: '10.10.10.1' (inside the vpn_subnet 10.10.10.0/24: peers must reach the router from outside (its public address or DNS name))"],
    'net-vpn_endpoint-253': ["network: vpn_endpoint: '192.168.100.5' (inside the dmz_subnet 192.168.100.0/24: peers must reach the router from outside (its public address or DNS name))"],
    'cli-vpn_name-254': ["peer alice_phone: name: 'alice_phone' (differs only in case from 'Alice_Phone' (alice-mac): key and config file names would collide on macOS' case-insensitive disks)"],
    'net-vpn_port-255': ["network: vpn_port: 53 (the router's DNS service uses this UDP port)"],
    'net-ollama_port-256': ["network: ollama_port: 22 (macOS' SSH uses this port, and the VPN would reach it)"],
    'net-ollama_port-257': ['network: ollama_port: 80 (below 1024: Ollama and HAProxy do not run as root and cannot listen there)'],
    'net-ollama_port-258': ["network: ollama_port: 5000 (macOS' AirPlay uses this port, and the VPN would reach it)"],
    'net-vpn_subnet-259': ["network: vpn_subnet: '8.8.8.0/24' (not a private range (10/8, 172.16/12, 192.168/16, 100.64/10): peers would send that part of the internet into the tunnel)"],
    'net-dmz_subnet-260': ["network: dmz_subnet: '169.254.0.0/16' (not a private range (10/8, 172.16/12, 192.168/16, 100.64/10): peers would send that part of the internet into the tunnel)"],
    'net-lan_subnet-261': ["network: lan_subnet: '224.0.0.0/24' (not a private range (10/8, 172.16/12, 192.168/16, 100.64/10): peers would send that part of the internet into the tunnel)"],
    'net-vpn_endpoint-262': ["network: vpn_endpoint: '127.0.0.1' (not an address peers can dial (loopback, unspecified, multicast, link-local or broadcast))"],
    'net-vpn_endpoint-263': ["network: vpn_endpoint: '0.0.0.0' (not an address peers can dial (loopback, unspecified, multicast, link-local or broadcast))"],
    'net-vpn_endpoint-264': ["network: vpn_endpoint: 'router.local' (a local name: peers dial it from the internet (your DDNS name or public address))"],
    'net-vpn_endpoint-265': ["network: vpn_endpoint: 'localhost' (a local name: peers dial it from the internet (your DDNS name or public address))"],
    'srv-dmz_mac-266': ["ai-server: dmz_mac: 'ff:ff:ff:ff:ff:ff' (a multicast/broadcast MAC cannot be a device's address)"],
    'srv-dmz_mac-267': ["ai-server: dmz_mac: '00:00:00:00:00:00' (the all-zero MAC is not a device's address)"],
    'srv-dns_servers-268': ["ai-server: dns_servers[0]: '0.0.0.0' (not a DNS server's address)"],
    'srv-ollama_stderr_log-251': ["ai-server: ollama_stderr_log: '/tmp/err.log\\n' (contains a control character ('\\n'); expected an absolute path)"],
    'srv-warm_poll_seconds-269': ['ai-server: warm_poll_seconds: 0 (out of range 0.1-3600)'],
    'srv-warm_poll_seconds-270': ['ai-server: warm_poll_seconds: True (expected number)'],
    'srv-warm_log-271': ["ai-server: warm_log: 'warm.log' (expected an absolute path)"],
    'srv-log_rotate-272': ['ai-server: log_rotate: True (True is the default: omit it)'],
    'net-forget_peer_files-273': ["network: forget_peer_files[0]: 'phone\\n' (contains a control character ('\\n'); peer names must be UCI section names: [A-Za-z0-9_]+)"],
    'net-audit_json-274': ["network: audit_json: 'out\\x00.json' (contains a NUL character; expected 1 or a file path)"],
    'net-audit_stale_after-275': ['network: audit_stale_after: 0 (out of range 1-604800)'],
    'net-verify_json-276': ["network: verify_json: '' (expected a file path)"],
    'net-verify_junit-277': ['network: verify_junit: 7 (expected a file path)'],
    'rtr-rollback_seconds-278': ['router: rollback_seconds: -1 (out of range 0-3600)'],
}

COMBINATIONS = [
    ("three-at-once", [("net", "vpn_port", 0), ("net", "lan_subnet", "nonsense"),
                       ("cli", "vpn_address", "1.2.3.4")],
     ["network: vpn_port: 0 (out of range 1-65535)",
      "network: lan_subnet: 'nonsense' (not an IPv4 subnet)",
      "alice-mac: vpn_address: '1.2.3.4' (outside the vpn_subnet 10.10.10.0/24)"]),
    ("typo-and-newline", [("net", "vpn_prot", 1), ("net", "vpn_interface", "wg0\n")],
     ["network: vpn_prot: 1 (unknown field; did you mean 'vpn_port'?)",
      "network: vpn_interface: 'wg0\\n' (contains a control character ('\\n'); must be a UCI "
      "section name and interface name: 1-15 of [A-Za-z0-9_])"]),
    ("lan-and-wan-device", [("net", "vpn_interface", "lan"), ("net", "dmz_device", "wan")],
     ["network: vpn_interface: 'lan' (belongs to the router: lan, wan, wan6, loopback and dmz "
      "(the DMZ) cannot be the VPN interface)",
      "network: dmz_device: 'wan' (is the router's WAN, LAN bridge or loopback: the DMZ needs "
      "a port of its own, like 'lan4')"]),
    ("server-and-client", [("srv", "proxy", "nginx"), ("cli", "aider", "yes")],
     ["ai-server: proxy: 'nginx' (expected None or 'haproxy')",
      "alice-mac: aider: 'yes' (expected True or False)"]),
    ("claude-model-with-a-small-context",
     [("srv", "ollama_context_length", 8192), ("cli", "claude_code", True),
      ("cli", "claude_models", "qwen2.5-coder:32b")],
     ["alice-mac: claude_models: 'qwen2.5-coder:32b' (Claude Code would get a context of 8192 "
      "tokens, below claude_min_context 65536: set the server's ollama_context_length to 65536 "
      "or more, or claude_min_context = 0)"]),
]


def _combined(changes):
    parts = build("net", "vpn_port", 51820)
    for where, key, value in changes:
        target = {"net": parts["network"], "srv": parts["server"][1],
                  "cli": parts["clients"][0][1]}[where]
        target[key] = value
    return parts


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{c[0]}-{c[1]}-{i}"
                                                       for i, c in enumerate(CASES)])
def test_catalogue(i):
    where, key, value = CASES[i]
    with pytest.raises(PlanError) as info:
        validate(**build(where, key, value))
    assert info.value.errors == EXPECTED[f"{where}-{key}-{i}"]
    assert all("\n" not in line for line in info.value.errors)  # one line per problem


@pytest.mark.parametrize("changes,expected", [c[1:] for c in COMBINATIONS],
                         ids=[c[0] for c in COMBINATIONS])
def test_combinations(changes, expected):
    with pytest.raises(PlanError) as info:
        validate(**_combined(changes))
    assert info.value.errors == expected


def test_duplicate_public_keys_between_a_phone_and_a_mac():
    parts = build("peer", "public_key", KEY_B)
    parts["clients"][0][1]["vpn_public_key"] = KEY_B
    with pytest.raises(PlanError) as info:
        validate(**parts)
    assert info.value.errors == [
        f"peer alice_phone: public_key: '{KEY_B}' (duplicate public key (also alice-mac))"
    ]


def test_the_catalogue_covers_every_declared_field_and_is_big_enough():
    from deploys import schema

    covered = {key for _, key, _ in CASES}
    declared = set(schema.ALL_FIELDS)
    peer_fields = {f.name for f in schema.PEER_RECORD.fields}
    assert declared - covered - peer_fields == set()
    assert peer_fields - covered == set()
    assert len(CASES) + len(COMBINATIONS) + 1 >= 150


def test_the_base_inventory_is_valid():
    spec = validate(**build("net", "vpn_port", 51820))
    assert [p.access for p in spec.peers] == [("server:11434",)] * 3


VALID_EDGES = [
    ("net", "vpn_endpoint", "1password.example"),
    ("net", "vpn_endpoint", "203.0.113.7"),
    ("net", "vpn_endpoint", "2001:db8::1"),
    ("net", "dmz_dhcp_leasetime", "infinite"),
    ("net", "rotate_peers", "alice_phone"),
    ("net", "policy_tests", [{"src": "vpn", "dst": "server:11434", "expect": "accept",
                              "proto": "tcp"}]),
    ("net", "firewall_acknowledge", ["cfg0a1b2c", "my_rule"]),
    ("peer", "access", ["server:11434", "dmz:443", "192.168.100.20:22"]),
    ("peer", "expires", "2027-02-28"),
    ("cli", "vpn_keepalive", 0),
    ("cli", "claude_models", "qwen3-coder:30b"),
    ("cli", "claude_min_context", 0),
    ("srv", "ollama_models", [{"name": "q:32b", "context_length": 65536, "warm": True}]),
    ("srv", "log_rotate", {"size_kb": 100, "count": 100}),
    ("srv", "ollama_keep_alive", -1),
    ("srv", "ollama_origins", "http://a:*,http://b:*"),
]


@pytest.mark.parametrize("where,key,value", VALID_EDGES,
                         ids=[f"{w}-{k}-{i}" for i, (w, k, _) in enumerate(VALID_EDGES)])
def test_valid_edge_values_pass(where, key, value):
    validate(**build(where, key, value))


def test_new_fields_reach_the_spec():
    parts = build("peer", "expires", "2027-02-28")
    parts["network"]["policy_tests"] = [{"src": "vpn", "dst": "lan", "expect": "deny"}]
    parts["network"]["firewall_acknowledge"] = ["my_rule"]
    parts["clients"][0][1]["vpn_access"] = ["dmz:443"]
    spec = validate(**parts)
    assert spec.policy_tests[0].expect == "deny" and spec.policy_tests[0].proto is None
    assert spec.firewall_acknowledge == ("my_rule",)
    alice, bob, phone = spec.peers
    assert alice.access == ("dmz:443",) and alice.key_on_mac is True
    assert bob.access == ("server:11434",)
    assert str(phone.expires) == "2027-02-28" and phone.key_on_mac is False

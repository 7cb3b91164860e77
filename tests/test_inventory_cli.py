"""Bad inventories and ``--data`` overrides through the pyinfra CLI: exit status 2, the exact
error lines, "no host was contacted", no traceback, and zero TCP connections to the hosts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.connections import ConnectionCounter

REPO = Path(__file__).resolve().parents[1]

NETWORK = {
    "vpn_subnet": "10.10.10.0/24", "vpn_port": 51820, "vpn_interface": "wg0",
    "vpn_endpoint": "vpn.example.org", "lan_subnet": "192.168.1.0/24",
    "dmz_subnet": "192.168.100.0/24", "dmz_router_address": "192.168.100.1",
    "dmz_device": "lan4", "vpn_peers": [{"name": "alice_phone", "kind": "phone"}],
}
SERVER = {"dmz_address": "192.168.100.10"}

TEMPLATE = """
from deploys.plan import validate_before_connect
validate_before_connect()
_ssh = {{"ssh_hostname": "127.0.0.1", "ssh_port": {port}, "ssh_connect_retries": 0}}
_net = {network!r}
router = [("router", {{**_ssh, **_net}})]
server = [("ai-server", {{**_ssh, **_net, **{server!r}}})]
clients = [("alice-mac", {{**_ssh, **_net, **{client!r}}})]
"""

# (id, network changes, server changes, client changes, --data args, group_data files, lines)
CASES = [
    ("newline-interface", {"vpn_interface": "wg0\n"}, {}, {}, [], {},
     ["network: vpn_interface: 'wg0\\n' (contains a control character ('\\n'); must be a UCI "
      "section name and interface name: 1-15 of [A-Za-z0-9_])"]),
    ("vpn-interface-lan", {"vpn_interface": "lan"}, {}, {}, [], {},
     ["network: vpn_interface: 'lan' (belongs to the router: lan, wan, wan6, loopback and dmz "
      "(the DMZ) cannot be the VPN interface)"]),
    ("endpoint-999", {"vpn_endpoint": "999.999.999.999"}, {}, {}, [], {},
     ["network: vpn_endpoint: '999.999.999.999' (not a valid IPv4 address (and a DNS name "
      "cannot be all digits))"]),
    ("typo-in-host-data", {}, {}, {"vpn_nmae": "x"}, [], {},
     ["alice-mac: vpn_nmae: 'x' (unknown field; did you mean 'vpn_name'?)"]),
    ("typo-in-data", {}, {}, {}, ["--data", "vpn_prot=51821"], {},
     ["--data: vpn_prot: 51821 (unknown field; did you mean 'vpn_port'?)"]),
    ("unicode-digits-in-data", {}, {}, {}, ["--data", "ollama_port=\u0661\u0661\u0664\u0663\u0664"],
     {}, ["--data: ollama_port: '\u0661\u0661\u0664\u0663\u0664' (expected a whole number from "
          "1 to 65535)"]),
    ("data-string-for-bool", {}, {}, {}, ["--data", "lan_to_dmz=yes"], {},
     ["--data: lan_to_dmz: 'yes' (expected true or false)"]),
    ("data-list-as-dict", {}, {}, {}, ["--data", 'vpn_peers={"name": "p"}'], {},
     ["network: vpn_peers: {'name': 'p'} (expected a list of peer dicts)"]),
    ("typo-in-group-data", {}, {}, {}, [], {"clients.py": "aider_modles = ['q']\n"},
     ["group_data/clients.py: aider_modles: ['q'] (unknown field; did you mean "
      "'aider_models'?)"]),
    ("server-field-on-client-group", {}, {}, {}, [], {"clients.py": "proxy = 'haproxy'\n"},
     ["group_data/clients.py: proxy: 'haproxy' (a field of the server, not of clients)"]),
    ("port-for-server-only", {}, {"ollama_port": 8080}, {}, [], {},
     ["ai-server: ollama_port: 8080 (differs from the network's value 11434: a network-wide "
      "field has one value, set it once in group_data/all.py)"]),
    ("dict-for-list", {}, {"ollama_models": {"name": "q"}}, {}, [], {},
     ["ai-server: ollama_models: {'name': 'q'} (expected a list of model names or dicts)"]),
    ("model-newline", {}, {"ollama_models": ["qwen\n"]}, {}, [], {},
     ["ai-server: ollama_models[0]: 'qwen\\n' (contains a control character ('\\n'); not an "
      "Ollama model name like 'qwen2.5-coder:32b')"]),
    ("typo-in-group-all", {}, {}, {}, [], {"all.py": "vpn_prot = 1\n"},
     ["group_data/all.py: vpn_prot: 1 (unknown field; did you mean 'vpn_port'?)"]),
    ("data-router-owned-name", {}, {}, {}, ["--data", "vpn_interface=lan"], {},
     ["network: vpn_interface: 'lan' (belongs to the router: lan, wan, wan6, loopback and dmz "
      "(the DMZ) cannot be the VPN interface)"]),
    ("dhcp-pool-address", {}, {"dmz_address": "192.168.100.120"}, {}, [], {},
     ["ai-server: dmz_address: '192.168.100.120' (inside the DMZ DHCP pool .100+50: choose a "
      "static address outside it)"]),
]


@pytest.mark.parametrize("net,server,client,args,groups,lines", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_cli_rejects_before_contacting_any_host(tmp_path, net, server, client, args, groups,
                                                lines):
    counter = ConnectionCounter()
    try:
        (tmp_path / "group_data").mkdir()
        for name, text in groups.items():
            (tmp_path / "group_data" / name).write_text(text)
        network = {**NETWORK, **net, "secrets_dir": str(tmp_path / "secrets")}
        inventory = tmp_path / "inventory.py"
        inventory.write_text(TEMPLATE.format(port=counter.port, network=network,
                                             server={**SERVER, **server}, client=client))
        result = subprocess.run(
            [sys.executable, "-m", "pyinfra", "-y", *args, str(inventory), "deploys/all.py"],
            cwd=REPO, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    finally:
        counter.close()
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line[4:] for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert errors == lines, result.stderr
    assert "Nothing was changed: no host was contacted." in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert counter.count == 0
    assert not (tmp_path / "secrets").exists()

"""An inventory for the router deploy against a fake OpenWrt router (TEST ONLY): the router
is the harness's :class:`~tests.harness.openwrt_host.OpenWrtHost`, the server and clients are
unreachable placeholders (127.0.0.9:9), used with ``--limit router``. Shared by
``tests/test_router_ssh.py`` and ``tests/benchmarks/router_round_trips.py``."""

from __future__ import annotations

from pathlib import Path

from tests.harness.openwrt_host import OpenWrtHost

NETWORK = {
    "vpn_subnet": "10.10.10.0/24",
    "vpn_port": 51820,
    "vpn_endpoint": "vpn.example.org",
    "lan_subnet": "192.168.1.0/24",
    "dmz_subnet": "192.168.100.0/24",
    "dmz_device": "lan4",
    "lan_to_dmz": False,
}
SERVER = {"dmz_address": "192.168.100.10", "dmz_mac": "52:54:00:a1:00:10"}

INVENTORY = """
from deploys.plan import validate_before_connect
validate_before_connect()
_net = {network!r}
router = [("router", {{**{router!r}, **_net}})]
server = [("ai-server", {{"ssh_hostname": "127.0.0.9", "ssh_port": 9, **_net, **{server!r}}})]
clients = [
    (name, {{"ssh_hostname": "127.0.0.9", "ssh_port": 9, "key_on_mac": False, **_net, **data}})
    for name, data in {clients!r}
]
"""


def write_inventory(path: Path, router: OpenWrtHost, secrets: Path, clients=None,
                    peers=None) -> Path:
    network = {**NETWORK, "secrets_dir": str(secrets),
               "peer_output_dir": str(secrets.parent / "peers-out"),
               "vpn_peers": peers if peers is not None else [{"name": "alice_phone"}]}
    clients = clients if clients is not None else [("alice-mac", {"vpn_name": "alice_mac"}),
                                                   ("bob-mac", {})]
    path.write_text(INVENTORY.format(network=network, router=router.inventory_data(),
                                     server=SERVER, clients=clients))
    return path

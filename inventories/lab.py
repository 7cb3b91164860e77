"""The lab: the home network of ``inventories/home.py`` on this Linux machine (``tests/lab``).

    python3 -m tests.lab up
    pyinfra inventories/lab.py deploys/all.py
    python3 -m tests.lab down

Hosts are network namespaces reached over real OpenSSH servers on 127.0.0.1 (the server and
the clients are fake Macs, ``tests/lab/macs.py``, with a non-root login user; the router's port
leads through the router's own LAN to its ``192.168.1.1:22``, so a run can lock itself out, see
``tests/lab/lab.py``); their ports, users, keys and known_hosts come from the running lab's state
file (``.lab/state.json``, or
``$SSOL_LAB_DIR/state.json``). Secrets go to ``.lab/secrets`` (never the real ``secrets/``).

pyinfra also loads ``inventories/group_data/*.py`` for this file (group data sits next to the
inventory). Host data wins over group data, so every network-wide field is set below for every
host: nothing of the home network's values (its DDNS name, its phone, ``lan_to_dmz``, its
secrets dir) leaks into the lab. The router's SSH settings of ``group_data/router.py`` (root,
scp) are repeated here for the same reason.
"""

import json
import os
from pathlib import Path

from deploys.plan import NETWORK_DEFAULTS, validate_before_connect

validate_before_connect()

_LAB = Path(os.environ.get("SSOL_LAB_DIR") or Path(__file__).resolve().parents[1] / ".lab")
try:
    _STATE = json.loads((_LAB / "state.json").read_text())
except FileNotFoundError:
    raise SystemExit(
        f"inventories/lab.py: no running lab ({_LAB / 'state.json'} is missing): "
        "start it with `python3 -m tests.lab up`"
    ) from None
_ADDR = _STATE["addresses"]

# Network-wide data, the same on every host (see the module docstring). Fields not listed
# here take the plan's defaults, never the home network's group data.
_NETWORK = {
    **NETWORK_DEFAULTS,
    "vpn_subnet": "10.10.10.0/24",
    "vpn_router_address": "10.10.10.1",
    "vpn_port": 51820,
    "vpn_interface": "wg0",
    "vpn_endpoint": _ADDR["router_wan"],  # the router's WAN address, as the peers see it
    "vpn_keepalive": 25,
    "vpn_peers": [{"name": "phone", "kind": "phone"}],  # not managed: it only gets a config
    "lan_subnet": "192.168.1.0/24",
    "dmz_subnet": "192.168.100.0/24",
    "dmz_router_address": _ADDR["router_dmz"],
    "dmz_device": "lan4",
    "dmz_dhcp_start": 100,
    "dmz_dhcp_limit": 50,
    "dmz_dhcp_leasetime": "12h",
    "lan_to_dmz": False,
    "ollama_port": 11434,
    "secrets_dir": str(_LAB / "secrets"),
    "peer_output_dir": str(_LAB / "out" / "peers"),  # the phone's config and QR code
}


def _host(name, **data):
    return (name, {**_STATE["hosts"][name]["ssh"], **_NETWORK, **data})


router = [_host("router", ssh_user="root", ssh_file_transfer_protocol="scp")]

# The server and the clients are the lab's fake Macs (tests/lab/macs.py): a non-root login
# user with passwordless sudo (``ssh_user`` comes from the state file), Homebrew at
# /opt/homebrew and the macOS stand-ins first on PATH. ``_env`` replaces group_data/server.py's
# PATH, which would hide the stand-ins. The server's en0 (the default ``network_device``) is
# the server namespace's eth0: the role really moves it from its DHCP lease to .10. Models:
# the Ollama stand-in's small one only.
# A lab started with `python3 -m tests.lab up --plain` (namespaces logging in as root, not
# Macs): the server and clients are data only (peers, addresses), not configured.
_PLAIN = {} if _STATE.get("macs", True) else {"configure_host": False}
_MAC_PATH = "/opt/macos-standins:/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin"
_MODEL = "llama3.2:1b"

server = [
    _host(
        "server",
        dmz_address=_ADDR["server"],
        dmz_mac=_ADDR["server_mac"],  # the MAC of the server's lab cable: a static DHCP lease
        dmz_hostname="ai-server",
        _env={"PATH": _MAC_PATH},
        ollama_models=[{"name": _MODEL, "warm": True}],
        ollama_keep_alive="24h",
        ollama_context_length=65536,  # Claude Code's minimum (claude_min_context)
        competing_servers="stop",
        **_PLAIN,
    ),
]

_CLIENT = {
    "_env": {"PATH": _MAC_PATH},
    "aider": True,
    "aider_models": [_MODEL],
    "claude_code": True,
    "claude_models": _MODEL,
    # the controller is not on the VPN, so it cannot ask the server: the Ollama stand-in's
    # version, as the role's message says to do
    "server_ollama_version": "0.32.15",
    **_PLAIN,
}

clients = [
    _host("client1", vpn_name="client1", **_CLIENT),
    _host("client2", vpn_name="client2", **_CLIENT),
]

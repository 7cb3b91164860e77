"""Your home network: one OpenWrt router, one Mac server, two Mac clients (an example to edit).

Edit this file and ``inventories/group_data/*.py`` to describe your own network; nothing else.
Run unedited, it stops before contacting anything and lists every ``FILL_IN(...)`` blank: the
values only you know (addresses, logins, your public DNS name). Delete the hosts you do not have.
Every field is documented in README.md ("The inventory, field by field").

Groups are the roles: ``router`` (exactly one OpenWrt router), ``server`` (the Mac that runs
Ollama, in the DMZ), ``clients`` (Macs that reach it through the VPN). Phones and other devices
without SSH are declared as ``vpn_peers`` in ``group_data/all.py``.
"""

from deploys.fill_in import FILL_IN, stop_until_filled_in
from deploys.plan import validate_before_connect

# Check the whole plan (addresses, subnets, peers, keys) before pyinfra contacts any host;
# first of all, that no FILL_IN blank is left.
validate_before_connect()
stop_until_filled_in()

router = [
    (
        "router",
        {
            # how pyinfra reaches the router: from the LAN, as root (no sudo on OpenWrt)
            "ssh_hostname": FILL_IN("the router's address on your LAN, e.g. 192.168.1.1"),
        },
    ),
]

server = [
    (
        "ai-server",
        {
            # reached from the LAN through the router (lan_to_dmz = True in group_data/all.py)
            "ssh_hostname": FILL_IN("the server's address as the controller reaches it, "
                                    "e.g. 192.168.100.10"),
            "ssh_user": FILL_IN("an admin login of the server Mac (not root), e.g. admin"),
            # its static address in the DMZ, and the MAC of its Ethernet port (static lease)
            "dmz_address": "192.168.100.10",
            "dmz_mac": FILL_IN("the MAC address of its Ethernet port (for the static lease), "
                               "or delete this line"),
            "dmz_hostname": "ai-server",
            # server role (deploys/server_plan.py documents every field and its default):
            # Ollama as a LaunchAgent of ssh_user ("daemon" = LaunchDaemon, serves without login)
            "ollama_service": "agent",
            # the static DMZ address goes on the service of this device (or network_service)
            "network_device": "en0",
            # models to have; "warm" ones are loaded with the clients' context length
            "ollama_models": [{"name": "qwen2.5-coder:32b", "warm": True}, "llama3.2"],
            "ollama_keep_alive": "24h",
            # one context size (tokens) for every model that declares none; Claude Code
            # (group_data/clients.py) needs at least 65536
            "ollama_context_length": 65536,
            # "haproxy": only the API allowlist reaches Ollama (which then listens on 127.0.0.1)
            "proxy": None,
        },
    ),
]

clients = [
    (
        "alice-mac",
        {
            "ssh_hostname": FILL_IN("this Mac's name or address, e.g. alice-mac.lan "
                                    "(or delete this client)"),
            "ssh_user": FILL_IN("your login on this Mac, e.g. alice"),
            # VPN peer name on the router (section wgpeer_alice_mac); address picked automatically
            "vpn_name": "alice_mac",
            # client role: everything of group_data/clients.py (tunnel at boot, Aider, Claude)
        },
    ),
    (
        "bob-mac",
        {
            "ssh_hostname": FILL_IN("this Mac's name or address, e.g. bob-mac.lan "
                                    "(or delete this client)"),
            "ssh_user": FILL_IN("your login on this Mac, e.g. bob"),
            "vpn_name": "bob_mac",
            "vpn_address": "10.10.10.3",  # an explicit VPN address (optional)
            # client role (deploys/client_plan.py): the tunnel only when Bob starts it
            # (sudo /opt/homebrew/bin/bash /opt/homebrew/bin/wg-quick up wg-ollama), no Claude
            "tunnel_at_boot": False,
            "claude_code": False,
        },
    ),
]

"""Network-wide data for every host. Every field is explained in README.md."""

from deploys.fill_in import FILL_IN

# -- VPN (WireGuard on the router) ----------------------------------------------------------
vpn_subnet = "10.10.10.0/24"  # addresses of the VPN; the router takes the first one
vpn_port = 51820  # UDP port the router listens on (the only port open on the WAN)
vpn_interface = "wg0"  # the router's WireGuard interface (UCI section and netdev name)
# public DNS name or IP the peers dial (your DDNS name at home)
vpn_endpoint = FILL_IN("the public DNS name or IP address your VPN peers dial, e.g. your DDNS name")
vpn_keepalive = 25  # PersistentKeepalive for the peers' configs (seconds, 0 = off)

# Devices without SSH (phones, tablets): they get a config file and a QR code.
vpn_peers = [
    {"name": "alice_phone", "kind": "phone"},
]

# -- LAN and DMZ ------------------------------------------------------------------------------
lan_subnet = "192.168.1.0/24"  # the home LAN (admin only; never reachable from VPN or DMZ)
dmz_subnet = "192.168.100.0/24"  # the AI server's own network
dmz_router_address = "192.168.100.1"  # the router's address in the DMZ
dmz_device = "lan4"  # router port the server is plugged into (taken out of br-lan)
dmz_dhcp_start = 100  # DHCP pool in the DMZ: .100 ...
dmz_dhcp_limit = 50  # ... 50 addresses
dmz_dhcp_leasetime = "12h"
lan_to_dmz = True  # allow LAN -> DMZ (to administer the server from the LAN)

# -- Ollama -----------------------------------------------------------------------------------
ollama_port = 11434  # the only port of the server the VPN can reach

# -- Secrets ----------------------------------------------------------------------------------
secrets_dir = "secrets"  # keys live here (git-ignored, mode 700/600), relative to the repo root

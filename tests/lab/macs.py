"""The lab's fake Macs: the DMZ server and the VPN clients as macOS hosts over real OpenSSH
(TEST ONLY).

Each is the harness's :class:`~tests.harness.fake_mac.FakeMac` (the same fake Mac the roles'
own end-to-end tests use; see ``tests/harness/fake_mac.py``: its own root file system and
``/etc``, a non-root login user with the real ``sudo``, Homebrew at ``/opt/homebrew``, launchd
and the macOS stand-ins) in the lab host's network namespace:

* the login user is ``admin`` on the server, ``alice``/``bob`` on the clients (uid 501, gid 20
  ``staff``); it exists only in that Mac's root, so nothing is added to the Linux host.
* network: ``sshd`` runs in the host's network namespace (so do the user's commands, ``sudo``
  and the launchd jobs); the controller reaches it through ``tests/harness/forward.py`` on its own
  127.0.0.1 (``SSH_CONNECTION`` shows loopback, never the Mac's Ethernet address).
* the clients' ``wg-quick`` (``tests/standins/macos/wg-quick`` in tunnel mode) REALLY brings
  the tunnel up in the Mac's namespace with ``wireguard-go``, ``wg`` and ``ip``.
* the server's Ethernet (``en0``) maps to the namespace's ``eth0``
  (``MACOS_STANDIN_REAL_NET=1``): ``networksetup -setmanual`` REALLY sets the address. Its
  initial state is a DHCP lease from the router's pool (``DHCP_LEASE``, put on ``eth0`` at
  ``up``), like a Mac fresh out of the box on the DMZ cable: the server role must replace it
  by the static 192.168.100.10.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness.fake_mac import (  # noqa: F401 - names the lab's users import from here
    GID,
    MAC_PATH,
    OLLAMA_STATE,
    STANDIN_BIN,
    STATE_DIR,
    UID,
    FakeMac,
    client_formulae,
    ollama_formula,
)

USERS = {"server": "admin", "client1": "alice", "client2": "bob"}
#: the server's address before the server role runs: a lease from the router's DMZ pool
DHCP_LEASE = {"ip": "192.168.100.120", "mask": "255.255.255.0", "router": "192.168.100.1"}


def machine(role: str) -> dict:
    """``machine.json`` of a lab Mac."""
    formulae: dict = {"ollama": ollama_formula(verbose=True)}
    if role != "server":
        formulae.update(client_formulae(tunnel=True))
    ethernet = {"name": "Ethernet", "hardware_port": "Ethernet", "device": "en0",
                "ethernet_address": "14:dd:a9:e8:33:81"}
    if role == "server":
        ethernet.update(linux_ifname="eth0", dhcp_lease=dict(DHCP_LEASE))
        hardware = {"arch": "arm64", "memsize": 64 * 2**30, "model": "Mac16,11",
                    "chip": "Apple M4 Pro"}
    else:
        hardware = {"arch": "arm64", "memsize": 16 * 2**30, "model": "Mac15,12",
                    "model_name": "MacBook Air", "chip": "Apple M3", "laptop": True}
    return {
        "os": {"product_version": "15.5", "build_version": "24F74"},
        "hardware": hardware,
        "hostname": f"lab-{role}",
        "network": {"services": [
            ethernet,
            {"name": "Wi-Fi", "hardware_port": "Wi-Fi", "device": "en1",
             "ethernet_address": "3c:22:fb:ef:dd:1d"},
        ]},
        "homebrew": {"formulae": formulae},
    }


class MacHost(FakeMac):
    """A lab host as a fake Mac (see the module docstring): ``base`` is the lab's hosts
    directory, ``netns`` the host's network namespace file."""

    def __init__(self, base, name, netns, *, path_prepend=(), env=None) -> None:
        super().__init__(Path(base) / name, name, user=USERS.get(name, "admin"),
                         hostname=f"lab-{name}", netns=netns, machine=machine(name),
                         path_prepend=path_prepend, env=env, real_net=name == "server",
                         awk=name != "server")

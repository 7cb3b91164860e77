"""WireGuard tunnels of the lab's remote peers (client1, client2, phone), with the real
``wireguard-go`` + ``wg setconf`` in their namespaces (TEST ONLY), from the lab's secrets or
(:meth:`PeerTunnel.from_config`) from a wg-quick config the product generated.

The config is the one a peer gets (AllowedIPs = the VPN subnet + the server's /32, endpoint =
the router's WAN address and port): the peer's private key from
``<secrets>/wireguard/peers/<name>.key``, the preshared key ``<name>.psk``, the router's public
key computed with ``wg pubkey`` from ``router.key``, the peer's VPN address from
``addresses.json``. ``extra_allowed`` widens what the peer *sends* into the tunnel (a curious
or hostile peer: the router must still refuse) -- the probes use it to aim at the LAN, the
router and the internet through the tunnel.

Interface names are ``wg<6 hex of the lab prefix><peer code>`` (at most 15 characters):
wireguard-go's control sockets live in the host's ``/var/run/wireguard/``, shared by all
namespaces, so they must not collide between peers or between labs.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.harness.openwrt_host import _tool
from tests.lab import topology as t

VPN_SUBNET = "10.10.10.0/24"
VPN_PORT = 51820


PEER_CODES = {"client1": "c1", "client2": "c2", "phone": "ph"}


def ifname(topo: t.Topology, peer: str, tag: str = "") -> str:
    name = f"{topo.wg_prefix}{PEER_CODES.get(peer, peer)}{tag}"
    if len(name) > 15:
        raise ValueError(f"interface name {name!r} too long")
    return name


class PeerTunnel:
    """One remote peer's tunnel in its namespace. ``up()``, ``refresh()``, ``down()``."""

    def __init__(self, topo: t.Topology, role: str, secrets: str | Path, *, name: str | None = None,
                 private_key: str | None = None, preshared_key: str | None = None,
                 address: str | None = None, extra_allowed: tuple[str, ...] = (),
                 tag: str = "") -> None:
        self.topo = topo
        self.role = role
        self.name = name or role
        self.secrets = Path(secrets)
        self.dev = ifname(topo, role, tag)
        wg = self.secrets / "wireguard"
        peers = wg / "peers"
        self.private_key = private_key or (peers / f"{self.name}.key").read_text().strip()
        psk_file = peers / f"{self.name}.psk"
        self.preshared_key = preshared_key if private_key else psk_file.read_text().strip()
        if address is None:
            address = json.loads((wg / "addresses.json").read_text())[self.name]
        self.address = address
        self.router_public_key = subprocess.run(
            [_tool("wg"), "pubkey"], input=(wg / "router.key").read_text(),
            capture_output=True, text=True, check=True).stdout.strip()
        server = f"{t.SERVER_ADDRESS}/32"
        self.allowed = [VPN_SUBNET, server, *extra_allowed]
        self.endpoint = f"{t.ROUTER_WAN_ADDRESS}:{VPN_PORT}"
        self.keepalive: str | None = None
        self.source: Path | None = None

    @classmethod
    def from_config(cls, topo: t.Topology, role: str, path: str | Path, *,
                    extra_allowed: tuple[str, ...] = (), tag: str = "") -> PeerTunnel:
        """The tunnel a wg-quick config file describes (as the product generated it): private
        key, Address, the peer's public and preshared keys, AllowedIPs, Endpoint and
        PersistentKeepalive all from the file, nothing from the lab's secrets.
        ``extra_allowed`` is appended to the file's AllowedIPs (the probes)."""
        from deploys.peers import parse_wg_quick

        parsed = parse_wg_quick(Path(path).read_text())
        iface, peers = parsed["Interface"], parsed["Peer"]
        if len(peers) != 1:
            raise ValueError(f"{path}: expected one [Peer], got {len(peers)}")
        (peer,) = peers
        self = cls.__new__(cls)
        self.topo, self.role, self.name = topo, role, role
        self.secrets = None
        self.source = Path(path)
        self.dev = ifname(topo, role, tag)
        self.private_key = iface["PrivateKey"]
        self.preshared_key = peer.get("PresharedKey")
        (address,) = [a.strip() for a in iface["Address"].split(",")]
        self.address = address.split("/")[0]
        self.router_public_key = peer["PublicKey"]
        self.allowed = [*(a.strip() for a in peer["AllowedIPs"].split(",")), *extra_allowed]
        self.endpoint = peer["Endpoint"]
        self.keepalive = peer.get("PersistentKeepalive")
        return self

    def config(self) -> str:
        """The ``wg setconf`` config (no wg-quick ``Address``: that is :meth:`up`'s job)."""
        lines = ["[Interface]", f"PrivateKey = {self.private_key}", "", "[Peer]",
                 f"PublicKey = {self.router_public_key}"]
        if self.preshared_key:
            lines.append(f"PresharedKey = {self.preshared_key}")
        lines += [f"AllowedIPs = {', '.join(self.allowed)}",
                  f"Endpoint = {self.endpoint}"]
        if self.keepalive:
            lines.append(f"PersistentKeepalive = {self.keepalive}")
        return "\n".join(lines) + "\n"

    def up(self) -> PeerTunnel:
        self.down()
        self.topo.exec(self.role, _tool("wireguard-go"), self.dev)
        for _ in range(200):
            if self.topo.ip(self.role, "link", "show", "dev", self.dev, check=False
                            ).returncode == 0:
                break
            time.sleep(0.01)
        self.refresh()
        self.topo.ip(self.role, "addr", "replace", f"{self.address}/32", "dev", self.dev)
        self.topo.ip(self.role, "link", "set", self.dev, "up")
        for net in self.allowed:
            self.topo.ip(self.role, "route", "replace", net, "dev", self.dev)
        return self

    def refresh(self) -> None:
        """``wg setconf`` again: fresh peer state, so the next packet starts a handshake."""
        self.topo.exec(self.role, _tool("wg"), "setconf", self.dev, "/dev/stdin",
                       input=self.config())

    def down(self) -> None:
        if self.topo.ip(self.role, "link", "show", "dev", self.dev, check=False).returncode == 0:
            self.topo.ip(self.role, "link", "del", self.dev, check=False)
        for _ in range(100):  # wireguard-go exits when its TUN device is gone
            if not Path(f"/var/run/wireguard/{self.dev}.sock").exists():
                break
            time.sleep(0.01)

    def handshake(self) -> int:
        """Seconds since the epoch of the latest handshake (0: never)."""
        out = self.topo.exec(self.role, _tool("wg"), "show", self.dev, "latest-handshakes",
                             check=False).stdout.split()
        return int(out[1]) if len(out) >= 2 and out[1].isdigit() else 0

    def wait_handshake(self, timeout: float = 3.0) -> bool:
        """Poke the tunnel (one ping to the router's VPN address) and wait for a handshake."""
        deadline = time.monotonic() + timeout
        self.topo.exec(self.role, "ping", "-c", "1", "-W", "1", "10.10.10.1", check=False)
        while time.monotonic() < deadline:
            if self.handshake():
                return True
            time.sleep(0.05)
        return False


class RoleTunnel:
    """A fake Mac client's tunnel as the CLIENT ROLE brought it up (``sudo wg-quick up`` of
    ``<homebrew>/etc/wireguard/<interface>.conf``: ``utunN`` in the client's namespace, its
    UAPI socket in the Mac's private ``/var/run/wireguard``). The interface is read again at
    each call (the role may take it down and up). ``extra_allowed`` widens what the client
    *sends* into that interface (``wg set ... allowed-ips`` + routes), as :class:`PeerTunnel`'s.
    ``wg`` runs inside the Mac (its socket is not the Linux host's)."""

    def __init__(self, lab, role: str, *, interface: str = "wg-ollama",
                 conf: str = "/opt/homebrew/etc/wireguard/wg-ollama.conf",
                 extra_allowed: tuple[str, ...] = ()) -> None:
        from deploys.peers import parse_wg_quick

        self.lab, self.role, self.interface, self.conf = lab, role, interface, conf
        parsed = parse_wg_quick(lab.mac_file(role, conf).read_text())
        (peer,) = parsed["Peer"]
        self.private_key = parsed["Interface"]["PrivateKey"]
        self.address = parsed["Interface"]["Address"].split("/")[0]
        self.router_public_key = peer["PublicKey"]
        self.allowed = [*(a.strip() for a in peer["AllowedIPs"].split(",")), *extra_allowed]
        self.extra_allowed = extra_allowed

    @property
    def dev(self) -> str | None:
        name = self.lab.mac_file(self.role, f"/var/run/wireguard/{self.interface}.name")
        return name.read_text().strip() if name.exists() else None

    def _bash(self, script: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self.lab.mac_run(self.role, f"exec /usr/bin/bash -c {_shq(script)}", check=check)

    def refresh(self) -> None:
        """``wg setconf`` again from the installed config (fresh peer state: the next packet
        starts a handshake), widened by ``extra_allowed``. Nothing when the tunnel is down."""
        dev = self.dev
        if dev is None:
            return
        script = (f"set -e; wg setconf {dev} <(wg-quick strip {self.conf} 2>/dev/null);"
                  f" wg set {dev} peer {self.router_public_key} allowed-ips"
                  f" {','.join(self.allowed)}")
        for net in self.extra_allowed:
            script += f"; ip route replace {net} dev {dev}"
        self._bash(script, check=True)

    def wg_quick(self, cmd: str) -> subprocess.CompletedProcess[str]:
        """``sudo wg-quick up|down <interface>`` as the Mac's user (as the role does)."""
        return self.lab.mac_run(self.role, f"sudo -n wg-quick {cmd} {self.interface}",
                                user=True)

    def handshake(self) -> int:
        dev = self.dev
        if dev is None:
            return 0
        out = self._bash(f"wg show {dev} latest-handshakes").stdout.split()
        return int(out[1]) if len(out) >= 2 and out[1].isdigit() else 0

    def wait_handshake(self, timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        self.lab.topology.exec(self.role, "ping", "-c", "1", "-W", "1", "10.10.10.1",
                               check=False)
        while time.monotonic() < deadline:
            if self.handshake():
                return True
            time.sleep(0.05)
        return False


def _shq(text: str) -> str:
    import shlex

    return shlex.quote(text)

"""The lab's wiring: network namespaces as hosts, veth pairs as cables (TEST ONLY).

::

    client1 ─┐                              ┌─ lan1 ── lan      (192.168.1.100, LAN host)
    client2 ─┼─ inet ── wan ─[ router ]─────┼─ lan2, lan3       (nothing plugged in)
    phone  ──┘  203.0.113.1     203.0.113.2 └─ lan4 ── server   (192.168.100.10, the DMZ)
    100.64.{1,2,3}.2            (WAN "DHCP" lease, see the network stand-in)
                198.51.100.80 (a web server on the internet: an address on inet's ``lo``)

Every namespace is ``<prefix><role>`` (the lab's prefix is per lab directory, see
``tests/lab/lab.py``'s ``default_prefix``), so all of it is found and
removed by :meth:`Topology.down` from the prefix alone, even after a crash. Cables are created
directly between two namespaces (``ip -n A link add X type veth peer name Y netns B``): no
interface ever appears in the host's own namespace, and nothing leaves these namespaces.

The router's namespace only gets its ports (``wan``, ``lan1``..``lan4``) and ``lo``: ``br-lan``,
its addresses, ``wg0`` and the firewall are created from UCI by the network/firewall stand-ins
(``tests/standins/openwrt-lab``), as netifd and fw4 do on a real router. ``inet`` forwards
between the WAN link, the three remote peers and the web server, and has "attacker" routes to
the router's inside networks via the router's WAN address, so that WAN -> LAN/DMZ probes reach
the router's forward chain as they would from the ISP's side of the link.

Example::

    topo = Topology("ssol-")
    topo.up()                       # idempotent
    topo.exec("server", "ping", "-c1", "192.168.100.1")
    topo.down()                     # idempotent, also after a crash
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_PREFIX = "ssol-"

#: roles, in creation order
ROLES = ("inet", "router", "lan", "server", "client1", "client2", "phone")
#: the remote VPN peers (behind ``inet``); client1/client2 are managed over SSH, phone is not
REMOTE_PEERS = ("client1", "client2", "phone")

INET_ADDRESS = "203.0.113.1"
WAN_PREFIX = 24
ROUTER_WAN_ADDRESS = "203.0.113.2"
WEB_ADDRESS = "198.51.100.80"
LAN_HOST_ADDRESS = "192.168.1.100"
LAN_ROUTER_ADDRESS = "192.168.1.1"
SERVER_ADDRESS = "192.168.100.10"
DMZ_ROUTER_ADDRESS = "192.168.100.1"
SERVER_MAC = "52:54:00:a1:00:10"
#: remote peer -> (its address, inet's address on that link); /24 links
REMOTE_ADDRESSES = {
    "client1": ("100.64.1.2", "100.64.1.1"),
    "client2": ("100.64.2.2", "100.64.2.1"),
    "phone": ("100.64.3.2", "100.64.3.1"),
}
#: routes inet has towards the router's inside networks (an attacker on the WAN side)
INSIDE_NETWORKS = ("192.168.1.0/24", "192.168.100.0/24", "10.10.10.0/24")


def stale_prefixes(base: str) -> list[str]:
    """Prefixes ``<base><pid>-`` of labs whose process ``<pid>`` is gone (crashed test runs)."""
    found = set()
    pattern = re.compile(rf"^({re.escape(base)}(\d+)-)({'|'.join(ROLES)})$")
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else ():
        m = pattern.match(name)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            found.add(m.group(1))
    return sorted(found)


def _ip() -> str:
    found = shutil.which("ip", path=os.pathsep.join(
        [os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin", "/bin"]))
    if not found:
        raise RuntimeError("iproute2's `ip` not found")
    return found


@dataclass(frozen=True)
class Cable:
    """A veth pair: ``a_dev`` in ``a`` <-> ``b_dev`` in ``b`` (roles)."""

    a: str
    a_dev: str
    b: str
    b_dev: str
    b_mac: str | None = None
    up: bool = True  # bring the far end up (False: an empty port)


CABLES = (
    Cable("router", "wan", "inet", "router0"),
    Cable("router", "lan1", "lan", "eth0"),
    Cable("router", "lan4", "server", "eth0", SERVER_MAC),
    *(Cable("inet", peer, peer, "eth0") for peer in REMOTE_PEERS),
    # ports with nothing plugged in: their far ends stay down in the LAN host's namespace
    # (this kernel may lack the dummy driver)
    Cable("router", "lan2", "lan", "unplugged2", up=False),
    Cable("router", "lan3", "lan", "unplugged3", up=False),
)


class Topology:
    """Namespaces and cables of the lab; see the module docstring."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, *, server_address: bool = True) -> None:
        if not prefix or "/" in prefix:
            raise ValueError(f"bad namespace prefix {prefix!r}")
        self.prefix = prefix
        #: give the server its static DMZ address (what the server deploy will do)
        self.server_address = server_address

    # -- names -------------------------------------------------------------------------------

    def ns(self, role: str) -> str:
        """The namespace name of a role (``router`` -> ``ssol-router``)."""
        if role not in ROLES:
            raise KeyError(role)
        return self.prefix + role

    def ns_path(self, role: str) -> str:
        return f"/run/netns/{self.ns(role)}"

    @property
    def wg_prefix(self) -> str:
        """Prefix of the remote peers' WireGuard interfaces (``wg`` + 6 hex of the prefix):
        wireguard-go's sockets (``/var/run/wireguard/<if>.sock``) are shared by all
        namespaces, and interface names have at most 15 characters."""
        return "wg" + hashlib.sha1(self.prefix.encode()).hexdigest()[:6]

    def namespaces(self) -> list[str]:
        return [self.ns(r) for r in ROLES]

    def existing(self) -> list[str]:
        """Lab namespaces that exist now (also leftovers of a crashed run)."""
        return [n for n in self.namespaces() if os.path.exists(f"/run/netns/{n}")]

    # -- commands ----------------------------------------------------------------------------

    def ip(self, role: str | None, *args: str, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
        argv = [_ip()] + (["-n", self.ns(role)] if role else []) + list(args)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
        return result

    def exec(self, role: str, *argv: str, check: bool = True, timeout: float = 30,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a host program inside a role's network namespace."""
        full = [_ip(), "netns", "exec", self.ns(role), *argv]
        result = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                                input=input)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(full)}: {result.stderr.strip()}")
        return result

    def popen(self, role: str, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen([_ip(), "netns", "exec", self.ns(role), *argv], **kwargs)

    def _sysctl(self, role: str, key: str, value: str) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        self.exec(role, "sh", "-c", f"[ ! -e {path} ] || echo {value} > {path}")

    def _has_link(self, role: str, dev: str) -> bool:
        return self.ip(role, "link", "show", "dev", dev, check=False).returncode == 0

    # -- lifecycle ---------------------------------------------------------------------------

    def up(self) -> Topology:
        """Create whatever is missing (namespaces, cables, host addresses, routes)."""
        for role in ROLES:
            if not os.path.exists(self.ns_path(role)):
                self.ip(None, "netns", "add", self.ns(role))
            self.ip(role, "link", "set", "lo", "up")
            # IPv4 only: no IPv6 link-local chatter, no DAD delays
            self._sysctl(role, "net.ipv6.conf.all.disable_ipv6", "1")
            self._sysctl(role, "net.ipv6.conf.default.disable_ipv6", "1")
        for role in ("router", "inet"):
            self._sysctl(role, "net.ipv4.ip_forward", "1")

        for c in CABLES:
            if self._has_link(c.a, c.a_dev) and self._has_link(c.b, c.b_dev):
                continue
            for role, dev in ((c.a, c.a_dev), (c.b, c.b_dev)):  # half a cable: start over
                if self._has_link(role, dev):
                    self.ip(role, "link", "del", dev)
            self.ip(c.a, "link", "add", c.a_dev, "type", "veth", "peer", "name", c.b_dev,
                    "netns", self.ns(c.b))
            if c.b_mac:
                self.ip(c.b, "link", "set", c.b_dev, "address", c.b_mac)
        for c in CABLES:
            self.ip(c.a, "link", "set", c.a_dev, "up")
            if c.up:
                self.ip(c.b, "link", "set", c.b_dev, "up")

        # the internet
        self.ip("inet", "addr", "replace", f"{INET_ADDRESS}/{WAN_PREFIX}", "dev", "router0")
        self.ip("inet", "addr", "replace", f"{WEB_ADDRESS}/32", "dev", "lo")
        for net in INSIDE_NETWORKS:
            self.ip("inet", "route", "replace", net, "via", ROUTER_WAN_ADDRESS)
        for peer, (addr, gw) in REMOTE_ADDRESSES.items():
            self.ip("inet", "addr", "replace", f"{gw}/24", "dev", peer)
            self.ip(peer, "addr", "replace", f"{addr}/24", "dev", "eth0")
            self.ip(peer, "route", "replace", "default", "via", gw)
        # the LAN host, and the server (static, as the server deploy will configure it)
        self.ip("lan", "addr", "replace", f"{LAN_HOST_ADDRESS}/24", "dev", "eth0")
        self.ip("lan", "route", "replace", "default", "via", LAN_ROUTER_ADDRESS)
        if self.server_address:
            self.ip("server", "addr", "replace", f"{SERVER_ADDRESS}/24", "dev", "eth0")
            self.ip("server", "route", "replace", "default", "via", DMZ_ROUTER_ADDRESS)
        return self

    def down(self) -> None:
        """Kill every process in the lab's namespaces and delete them (idempotent)."""
        names = self.existing()
        for _attempt in range(20):
            pids = set()
            for name in names:
                out = subprocess.run([_ip(), "netns", "pids", name], capture_output=True,
                                     text=True).stdout
                pids.update(int(p) for p in out.split() if p.isdigit())
            pids.discard(os.getpid())
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for name in names:
            subprocess.run([_ip(), "netns", "del", name], capture_output=True, text=True)
        # UAPI sockets of the remote peers' wireguard-go (they live in the host's /var/run)
        for sock in glob.glob(f"/var/run/wireguard/{self.wg_prefix}*.sock"):
            try:
                os.unlink(sock)
            except OSError:
                pass

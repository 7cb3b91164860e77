"""Rules across fields (pure; each returns error lines ``<who>: <field>: <value!r> (<why>)``).

* names the router owns (``lan``, ``wan``, ``wan6``, ``loopback``, the DMZ's ``dmz``) cannot be
  the VPN interface; the DMZ device is not a WAN/bridge/loopback device nor the VPN interface;
* subnets (VPN, LAN, DMZ) do not overlap; router and server addresses lie inside their subnet
  and are not its network or broadcast address; the DHCP pool fits and leaves them out;
* peer names, VPN addresses and public keys are unique; ``rotate_peers`` names peers;
* a network-wide field has one value: a host that sets another one is an error;
* ``access`` addresses lie in the DMZ; ``api_token`` needs the server's HAProxy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import Any

from deploys.schema.base import Field, check, fmt
from deploys.schema.network import ROUTER_OWNED

#: UDP ports an OpenWrt router's own services listen on (dnsmasq DNS/DHCP, NTP, DHCPv6, mDNS).
ROUTER_UDP = {53: "DNS", 67: "DHCP", 68: "DHCP", 123: "NTP", 546: "DHCPv6", 547: "DHCPv6",
              5353: "mDNS"}
#: TCP ports macOS uses itself (SSH, Kerberos, SMB, AFP, ARD, AirPlay, screen sharing).
MAC_TCP = {22: "SSH", 88: "Kerberos", 445: "SMB", 548: "AFP", 3283: "Remote Desktop",
           5000: "AirPlay", 5900: "Screen Sharing", 7000: "AirPlay"}
#: Devices a DMZ port can never be: the WAN, the LAN bridge, loopback.
NOT_DMZ_DEVICES = ("wan", "wan6", "br-lan", "br-wan", "lo", "loopback")


def host_in(who: str, name: str, addr: IPv4Address, net: IPv4Network, what: str,
            errors: list[str]) -> bool:
    if addr not in net:
        errors.append(fmt(who, name, str(addr), f"outside the {what} {net}"))
        return False
    if addr in (net.network_address, net.broadcast_address):
        errors.append(fmt(who, name, str(addr), f"network or broadcast address of {net}"))
        return False
    return True


def network_rules(n: dict[str, Any]) -> list[str]:
    """Rules between network-wide fields; fills in the computed router addresses of ``n``."""
    errors: list[str] = []
    who = "network"
    for key in ("vpn_subnet", "lan_subnet", "dmz_subnet"):
        net = n.get(key)
        if net is not None and (net.is_global or net.is_multicast or net.is_link_local
                                or net.subnet_of(IPv4Network("0.0.0.0/8"))):
            errors.append(fmt(who, key, str(net), "not a private range (10/8, 172.16/12, "
                              "192.168/16, 100.64/10): peers would send that part of the "
                              "internet into the tunnel"))
            del n[key]
    subnets = [(k, n[k]) for k in ("vpn_subnet", "lan_subnet", "dmz_subnet") if k in n]
    for i, (name_a, a) in enumerate(subnets):
        for name_b, b in subnets[i + 1 :]:
            if a.overlaps(b):
                errors.append(fmt(who, name_b, str(b), f"overlaps {name_a} {a}"))
    for zone in ("vpn", "dmz"):
        key, net = f"{zone}_router_address", n.get(f"{zone}_subnet")
        if key in n and net is not None:
            if not host_in(who, key, n[key], net, f"{zone}_subnet", errors):
                del n[key]
        elif key not in n and net is not None:
            n[key] = next(net.hosts())
    endpoint = n.get("vpn_endpoint")
    addr = _ip(endpoint)
    if addr is not None and (addr.is_loopback or addr.is_unspecified or addr.is_multicast
                             or addr.is_link_local or addr == IPv4Address("255.255.255.255")):
        errors.append(fmt(who, "vpn_endpoint", endpoint, "not an address peers can dial "
                          "(loopback, unspecified, multicast, link-local or broadcast)"))
    elif isinstance(endpoint, str) and endpoint.lower().rstrip(".").split(".")[-1] in (
            "localhost", "local", "localdomain", "invalid"):
        errors.append(fmt(who, "vpn_endpoint", endpoint, "a local name: peers dial it from "
                          "the internet (your DDNS name or public address)"))
    if addr is not None:
        for zone in ("vpn_subnet", "dmz_subnet"):
            if zone in n and addr in n[zone]:
                errors.append(fmt(who, "vpn_endpoint", endpoint,
                                  f"inside the {zone} {n[zone]}: peers must reach the router "
                                  "from outside (its public address or DNS name)"))
    port = n.get("vpn_port")
    if port in ROUTER_UDP:
        errors.append(fmt(who, "vpn_port", port, f"the router's {ROUTER_UDP[port]} service "
                          "uses this UDP port"))
    port = n.get("ollama_port")
    if port in MAC_TCP:
        errors.append(fmt(who, "ollama_port", port, f"macOS' {MAC_TCP[port]} uses this port, "
                          "and the VPN would reach it"))
    elif port is not None and port < 1024:
        errors.append(fmt(who, "ollama_port", port, "below 1024: Ollama and HAProxy do not run "
                          "as root and cannot listen there"))
    iface = n.get("vpn_interface")
    if iface in ROUTER_OWNED:
        errors.append(fmt(who, "vpn_interface", iface,
                          "belongs to the router: lan, wan, wan6, loopback and dmz (the DMZ) "
                          "cannot be the VPN interface"))
    device = n.get("dmz_device")
    if device in NOT_DMZ_DEVICES:
        errors.append(fmt(who, "dmz_device", device,
                          "is the router's WAN, LAN bridge or loopback: the DMZ needs a port "
                          "of its own, like 'lan4'"))
    elif device is not None and device == iface:
        errors.append(fmt(who, "dmz_device", device, "is the VPN interface"))
    start, limit, dmz = n.get("dmz_dhcp_start"), n.get("dmz_dhcp_limit"), n.get("dmz_subnet")
    if start is not None and limit is not None and dmz is not None:
        if start + limit - 1 >= dmz.num_addresses - 1:
            errors.append(fmt(who, "dmz_dhcp_limit", limit,
                              f"pool .{start}+{limit} does not fit in dmz_subnet {dmz}"))
        elif "dmz_router_address" in n and _in_pool(n["dmz_router_address"], dmz, start, limit):
            errors.append(fmt(who, "dmz_router_address", str(n["dmz_router_address"]),
                              f"inside the DHCP pool .{start}+{limit}"))
    return errors


def _ip(text: object) -> IPv4Address | None:
    try:
        addr = ip_address(text)  # type: ignore[arg-type]
    except ValueError:
        return None
    return addr if isinstance(addr, IPv4Address) else None


def _in_pool(addr: IPv4Address, net: IPv4Network, start: int, limit: int) -> bool:
    offset = int(addr) - int(net.network_address)
    return start <= offset < start + limit


def server_address(who: str, addr: IPv4Address | None, n: dict[str, Any],
                   errors: list[str]) -> IPv4Address | None:
    """The server's DMZ address: inside the DMZ, not the router's, not in the DHCP pool."""
    dmz = n.get("dmz_subnet")
    if addr is None or dmz is None:
        return None
    if not host_in(who, "dmz_address", addr, dmz, "dmz_subnet", errors):
        return None
    if addr == n.get("dmz_router_address"):
        errors.append(fmt(who, "dmz_address", str(addr), "is the router's DMZ address"))
        return None
    start, limit = n.get("dmz_dhcp_start"), n.get("dmz_dhcp_limit")
    if start is not None and limit is not None and _in_pool(addr, dmz, start, limit):
        errors.append(fmt(who, "dmz_address", str(addr),
                          f"inside the DMZ DHCP pool .{start}+{limit}: choose a static "
                          "address outside it"))
        return None
    return addr


def same_as_network(who: str, data: Mapping[str, Any], network: Mapping[str, Any],
                    n: dict[str, Any], fields: dict[str, Field], role: str) -> list[str]:
    """A network-wide field set on this host with another value than the network's."""
    errors = []
    for name, f in fields.items():
        value = data.get(name)
        if value is None or role in f.hosts:
            continue
        reference = network.get(name)
        if reference is None:
            reference = f.default
        if value != reference and check(f, value, who, errors) is not None:
            errors.append(fmt(who, name, value,
                              f"differs from the network's value {reference!r}: a network-wide "
                              "field has one value, set it once in group_data/all.py"))
    return errors


def peer_rules(peers: Iterable[Any], n: dict[str, Any]) -> list[str]:
    """Unique names, addresses and keys; addresses inside the VPN; rotations name peers."""
    errors: list[str] = []
    seen_names: dict[str, str] = {}
    seen_folded: dict[str, tuple[str, str]] = {}
    seen_addresses: dict[IPv4Address, str] = {}
    seen_keys: dict[str, str] = {}
    vpn, router = n.get("vpn_subnet"), n.get("vpn_router_address")
    for p in peers:
        who = p.host or f"peer {p.name}"
        pre = "vpn_" if p.host else ""
        if p.name in seen_names:
            errors.append(fmt(who, pre + "name", p.name,
                              f"duplicate peer name (also {seen_names[p.name]})"))
        elif p.name.lower() in seen_folded:
            other, owner = seen_folded[p.name.lower()]
            errors.append(fmt(who, pre + "name", p.name,
                              f"differs only in case from {other!r} ({owner}): key and config "
                              "file names would collide on macOS' case-insensitive disks"))
        seen_names.setdefault(p.name, who)
        seen_folded.setdefault(p.name.lower(), (p.name, who))
        if p.address is not None and vpn is not None:
            if host_in(who, pre + "address", p.address, vpn, "vpn_subnet", errors):
                if p.address == router:
                    errors.append(fmt(who, pre + "address", str(p.address),
                                      "is the router's VPN address"))
                elif p.address in seen_addresses:
                    errors.append(fmt(who, pre + "address", str(p.address),
                                      f"duplicate peer address (also "
                                      f"{seen_addresses[p.address]})"))
                seen_addresses.setdefault(p.address, who)
        if p.public_key is not None:
            if p.public_key in seen_keys:
                errors.append(fmt(who, pre + "public_key", p.public_key,
                                  f"duplicate public key (also {seen_keys[p.public_key]})"))
            seen_keys.setdefault(p.public_key, who)
    for name in n.get("rotate_peers") or ():
        if name not in seen_names:
            errors.append(fmt("network", "rotate_peers", name, "no such peer in the inventory"))
    return errors


def access_rules(peers: Iterable[Any], n: dict[str, Any]) -> list[str]:
    """``access`` addresses must be in the DMZ (the LAN is never reachable from the VPN)."""
    errors = []
    dmz = n.get("dmz_subnet")
    for p in peers:
        who, name = (p.host, "vpn_access") if p.host else (f"peer {p.name}", "access")
        for entry in p.access:
            target = entry.split("/", 1)[0].split(":", 1)[0]
            if target[:1].isdigit() and dmz is not None:
                addr = ip_address(target)
                if addr not in dmz or addr in (dmz.network_address, dmz.broadcast_address):
                    errors.append(fmt(who, name, entry,
                                      f"only addresses of the dmz_subnet {dmz} can be reached "
                                      "from the VPN"))
    return errors


def client_rules(who: str, c: Mapping[str, Any], server: Mapping[str, Any]) -> list[str]:
    """Client settings that depend on the server's."""
    errors = []
    if c.get("api_token") and server.get("proxy") != "haproxy":
        errors.append(fmt(who, "api_token", True,
                          "needs the server's proxy = 'haproxy' (Ollama itself checks no token)"))
    return errors

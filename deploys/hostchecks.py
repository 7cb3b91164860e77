"""Checks of the inventory that need the host's state (pure: they take the parsed fact data).

They run on the first state read of a role, before any change, and stop that host with one
line per problem: ``<host>: <field>: <value!r> (<why>)``.

* :func:`router_problems` (``facts.openwrt.OpenWrtState``): the DMZ device exists on the
  router, is not its WAN device and does not carry the link pyinfra's SSH session uses; the
  VPN interface name is not an interface of the router that this tool does not own;
  ``lan_subnet`` is the router's LAN, and no other network of the router overlaps the VPN or
  the DMZ.
* :func:`server_problems` (``facts.macserver.MacServerState``): the Mac has the network service
  (or device) the static DMZ address goes on.
* :func:`client_problems` (``facts.client.ClientState``): Homebrew is at ``homebrew_prefix``
  when the role needs it (the tunnel's wireguard-tools and bash, Aider).

Example::

    problems = router_problems("router", plan, state["config"], ssh_address="192.168.1.1")
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any


def _sections(config: Mapping[str, Any], package: str) -> list[dict[str, Any]]:
    return [s for s in config.get(package) or [] if isinstance(s, dict)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else str(value).split()


def router_devices(config: Mapping[str, Any]) -> set[str]:
    """Every device the router's network config names (devices, bridge ports, interfaces)."""
    devices: set[str] = set()
    for s in _sections(config, "network"):
        opts = s.get("options") or {}
        if s.get("type") == "device":
            devices.update(_as_list(opts.get("name")) + _as_list(opts.get("ports")))
            devices.update(_as_list(opts.get("ifname")))
        elif s.get("type") == "interface":
            devices.update(_as_list(opts.get("device")) + _as_list(opts.get("ifname")))
    return {d for d in devices if not d.startswith("@")}


def _interface(config: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for s in _sections(config, "network"):
        if s.get("type") == "interface" and s.get("name") == name:
            return s
    return None


def _bridge_ports(config: Mapping[str, Any], device: str) -> list[str]:
    for s in _sections(config, "network"):
        opts = s.get("options") or {}
        if s.get("type") == "device" and opts.get("name") == device:
            return _as_list(opts.get("ports"))
    return []


def router_problems(who: str, plan: Any, config: Mapping[str, Any],
                    ssh_address: str | None = None,
                    kernel_devices: list[str] | None = None) -> list[str]:
    """Problems of the plan on this router (see the module docstring). ``kernel_devices``
    (e.g. ``/sys/class/net``), when the fact reads them, count as existing devices too; a VLAN
    device ``<port>.<vid>`` exists when its port does (netifd creates it)."""
    problems = []
    dmz, iface = plan.dmz_device, plan.vpn_interface
    devices = router_devices(config) | set(kernel_devices or ())
    base = dmz.rsplit(".", 1)[0] if "." in dmz and dmz.rsplit(".", 1)[1].isdigit() else dmz
    if dmz not in devices and base not in devices:
        problems.append(f"{who}: dmz_device: {dmz!r} (no such device on the router; it has: "
                        f"{', '.join(sorted(devices)) or 'none'})")
    wan = _interface(config, "wan")
    wan_devices = _as_list(((wan or {}).get("options") or {}).get("device"))
    if dmz in wan_devices:
        problems.append(f"{who}: dmz_device: {dmz!r} (is the router's WAN device)")
    if ssh_address:
        for s in _sections(config, "network"):
            opts = s.get("options") or {}
            if s.get("type") != "interface" or ssh_address not in _as_list(opts.get("ipaddr")):
                continue
            for device in _as_list(opts.get("device")):
                ports = _bridge_ports(config, device)
                if device == dmz or ports == [dmz]:
                    problems.append(
                        f"{who}: dmz_device: {dmz!r} (carries this SSH session: interface "
                        f"{s.get('name')!r} ({ssh_address}) would lose its link)"
                    )
    problems += _subnet_problems(who, plan, config)
    existing = _interface(config, iface)
    if existing is not None:
        proto = (existing.get("options") or {}).get("proto")
        if proto != "wireguard":
            problems.append(f"{who}: vpn_interface: {iface!r} (the router already has an "
                            f"interface {iface!r} (proto {proto!r}) this tool does not own)")
    return problems


def _static_networks(config: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(interface, address, network or None)`` of the router's static IPv4 interfaces
    (network None when the netmask is not given)."""
    out = []
    for s in _sections(config, "network"):
        opts = s.get("options") or {}
        if s.get("type") != "interface" or opts.get("proto") != "static":
            continue
        mask = opts.get("netmask")
        for text in _as_list(opts.get("ipaddr")):
            try:
                iface = ipaddress.ip_interface(f"{text}/{mask}" if mask and "/" not in text
                                               else text)
            except ValueError:
                continue
            if isinstance(iface, ipaddress.IPv4Interface):
                known = bool(mask) or "/" in text
                out.append((str(s.get("name")), iface.ip, iface.network if known else None))
    return out


def _subnet_problems(who: str, plan: Any, config: Mapping[str, Any]) -> list[str]:
    problems = []
    ours = {"dmz", plan.vpn_interface, "loopback"}
    lan = getattr(plan, "lan_subnet", None)
    for name, addr, net in _static_networks(config):
        if name == "lan" and lan is not None and (addr not in lan or net not in (None, lan)):
            problems.append(f"{who}: lan_subnet: {str(lan)!r} (the router's LAN is "
                            f"{net or addr})")
        if name in ours:
            continue
        for field in ("vpn_subnet", "dmz_subnet"):
            subnet = getattr(plan, field, None)
            if subnet is not None and (net or ipaddress.ip_network(addr)).overlaps(subnet):
                problems.append(f"{who}: {field}: {str(subnet)!r} (overlaps the router's "
                                f"interface {name!r} ({net or addr}))")
    return problems


def server_problems(who: str, settings: Any, state: Mapping[str, Any]) -> list[str]:
    """The network service or device of the static DMZ address exists on the Mac."""
    if not getattr(settings, "static_ip", False) or not state.get("complete"):
        return []
    services = state.get("network_services") or []
    if settings.network_service:
        found = any(s.get("name") == settings.network_service for s in services)
        what = f"network_service: {settings.network_service!r}"
    else:
        found = any(s.get("device") == settings.network_device for s in services)
        what = f"network_device: {settings.network_device!r}"
    if found:
        return []
    known = ", ".join(f"{s.get('name')} ({s.get('device') or '-'})" for s in services)
    return [f"{who}: {what} (no such network service on the Mac; it has: {known or 'none'})"]


def client_problems(who: str, settings: Any, state: Mapping[str, Any],
                    needs_brew: bool) -> list[str]:
    """Homebrew is where ``homebrew_prefix`` says, when the client role needs it."""
    if needs_brew and not state.get("brew"):
        return [f"{who}: homebrew_prefix: {settings.homebrew_prefix!r} (no Homebrew there on "
                "this Mac: install it (https://brew.sh) or set homebrew_prefix)"]
    return []

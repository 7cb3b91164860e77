"""The router's desired UCI state, derived from the plan (pure data, no I/O).

:func:`desired_router_config` returns the arguments of :func:`operations.uci.converge`:

network
    ``wg0`` (the VPN interface: key, port, address), one ``wgpeer_<name>`` section of type
    ``wireguard_wg0`` per *enabled* peer (public key, preshared key, ``allowed_ips`` = its /32),
    ``dmz`` (static, on the DMZ device). The DMZ device is taken out of any bridge's ``ports``
    (``br-lan`` on a factory router). Peer sections are owned exclusively: a peer that is
    disabled, removed from the inventory or added by hand (LuCI's anonymous peers included) is
    deleted.
dhcp
    ``dmz`` (the DMZ pool) and ``ai_server`` (the server's static lease, when its MAC is known).
firewall
    zones ``vpn`` and ``dmz`` (input/forward REJECT), ``dmz_wan`` forwarding (model downloads),
    rules ``wg_in`` (WAN -> router udp/<port>), ``vpn_ai`` (VPN -> server tcp/11434 only, a rule
    with ``dest_ip`` + ``dest_port``, never a vpn->dmz forwarding), ``dmz_dhcp`` and ``dmz_dns``
    (DMZ -> router), and ``lan_dmz`` only when ``lan_to_dmz`` is set.

What is done to sections we do not own (found by content, never by index), so that every
invariant of DESIGN.md section 1 follows from the config:

* ``defaults.forward`` must be REJECT or DROP; anything else is set to REJECT (fw4 decides all
  inter-zone traffic without a rule by it).
* WAN -> LAN factory rules ``Allow-IPSec-ESP`` / ``Allow-ISAKMP`` are disabled, as is every other
  accepting rule or port forward from ``wan`` that is not one of the factory WAN-link basics
  (DHCP renew, ping, IGMP, DHCPv6, MLD, ICMPv6).
* Other zones named ``vpn``/``dmz`` (duplicates make fw4 fail to load) and other rules with the
  name of one of ours (LuCI-made duplicates) are deleted.
* Forwardings that would break isolation (from ``vpn`` or ``wan``, ``dmz`` -> ``lan``/``vpn``,
  ``lan`` -> ``dmz`` unless allowed) and accepting rules from ``vpn`` that are not ours are
  disabled (``enabled '0'``), not deleted: they stay visible for their owner to review.
"""

from __future__ import annotations

from typing import Any

from deploys.plan import Plan

#: Factory 23.05 WAN input rules that a WAN link needs (DHCP, ICMP, IGMP); kept enabled.
WAN_BASICS = [
    "Allow-DHCP-Renew",
    "Allow-Ping",
    "Allow-IGMP",
    "Allow-DHCPv6",
    "Allow-MLD",
    "Allow-ICMPv6-Input",
    "Allow-ICMPv6-Forward",
]
VPN_ZONE = "vpn"
DMZ_ZONE = "dmz"
DMZ_INTERFACE = "dmz"
PACKAGES = ["kmod-wireguard", "wireguard-tools"]


def _section(package: str, name: str, stype: str, /, **options: Any) -> dict[str, Any]:
    return {
        "package": package,
        "name": name,
        "type": stype,
        "options": {k: v for k, v in options.items() if v is not None},
    }


def desired_router_config(plan: Plan, current_forward: str | None = None) -> dict[str, Any]:
    """The ``sections`` / ``absent`` / ``edits`` / ``exclusive_types`` for ``uci.converge``.

    ``current_forward`` is the current ``defaults.forward`` (from the state fact): it is only
    changed when it is neither REJECT nor DROP.

    Example::

        desired = desired_router_config(plan, current_forward="REJECT")
        uci.converge(name="router config", state=state, **desired)
    """
    wg = plan.vpn_interface
    peer_type = f"wireguard_{wg}"
    dmz_net = plan.dmz_subnet
    sections = [
        _section(
            "network", wg, "interface",
            proto="wireguard",
            private_key=plan.router_private_key,
            listen_port=str(plan.vpn_port),
            addresses=[f"{plan.vpn_router_address}/{plan.vpn_subnet.prefixlen}"],
        ),
    ]
    for peer in plan.enabled_peers:
        sections.append(
            _section(
                "network", peer.section, peer_type,
                description=peer.name,
                public_key=peer.public_key,
                preshared_key=peer.preshared_key,
                allowed_ips=[f"{peer.address}/32"],
                route_allowed_ips="0",
            )
        )
    sections.append(
        _section(
            "network", DMZ_INTERFACE, "interface",
            device=plan.dmz_device,
            proto="static",
            ipaddr=str(plan.dmz_router_address),
            netmask=str(dmz_net.netmask),
        )
    )
    sections.append(
        _section(
            "dhcp", DMZ_INTERFACE, "dhcp",
            interface=DMZ_INTERFACE,
            start=str(plan.dmz_dhcp_start),
            limit=str(plan.dmz_dhcp_limit),
            leasetime=plan.dmz_dhcp_leasetime,
        )
    )
    absent: list[dict[str, Any]] = []
    if plan.server_address is not None and plan.server_mac:
        sections.append(
            _section(
                "dhcp", "ai_server", "host",
                name=plan.server_name,
                mac=plan.server_mac,
                ip=str(plan.server_address),
            )
        )
    else:
        absent.append({"package": "dhcp", "name": "ai_server"})

    zone = dict(input="REJECT", output="ACCEPT", forward="REJECT")
    rules = [
        _section("firewall", VPN_ZONE, "zone", name=VPN_ZONE, network=[wg], **zone),
        _section("firewall", DMZ_ZONE, "zone", name=DMZ_ZONE, network=[DMZ_INTERFACE], **zone),
        _section("firewall", "dmz_wan", "forwarding", src=DMZ_ZONE, dest="wan"),
        _section(
            "firewall", "wg_in", "rule",
            name="Allow-WireGuard", src="wan", proto="udp",
            dest_port=str(plan.vpn_port), target="ACCEPT",
        ),
        _section(
            "firewall", "dmz_dhcp", "rule",
            name="Allow-DMZ-DHCP", src=DMZ_ZONE, proto="udp", dest_port="67",
            family="ipv4", target="ACCEPT",
        ),
        _section(
            "firewall", "dmz_dns", "rule",
            name="Allow-DMZ-DNS", src=DMZ_ZONE, proto="tcp udp", dest_port="53",
            target="ACCEPT",
        ),
    ]
    if plan.server_address is not None:
        rules.insert(
            4,
            _section(
                "firewall", "vpn_ai", "rule",
                name="Allow-VPN-to-AI", src=VPN_ZONE, dest=DMZ_ZONE,
                dest_ip=str(plan.server_address), proto="tcp",
                dest_port=str(plan.ollama_port), target="ACCEPT",
            ),
        )
    else:
        absent.append({"package": "firewall", "name": "vpn_ai"})
    if plan.lan_to_dmz:
        rules.append(_section("firewall", "lan_dmz", "forwarding", src="lan", dest=DMZ_ZONE))
    else:
        absent.append({"package": "firewall", "name": "lan_dmz"})
    sections.extend(rules)

    our_rule_names = [s["options"]["name"] for s in rules if s["type"] == "rule"]
    disable = {"enabled": "0"}
    edits: list[dict[str, Any]] = [
        # the DMZ port leaves the LAN bridge
        {"package": "network", "match": {"type": "device", "ports": plan.dmz_device},
         "del_list": {"ports": [plan.dmz_device]}},
        # duplicates of what we own
        {"package": "firewall", "match": {"type": "zone", "name": VPN_ZONE}, "delete": True},
        {"package": "firewall", "match": {"type": "zone", "name": DMZ_ZONE}, "delete": True},
        *({"package": "firewall", "match": {"type": "rule", "name": n}, "delete": True}
          for n in our_rule_names),
        # WAN: nothing in but WireGuard and the link basics
        {"package": "firewall",
         "match": {"type": "rule", "src": "wan", "target": "ACCEPT",
                   "name": {"not_in": WAN_BASICS}},
         "set": disable},
        {"package": "firewall", "match": {"type": "redirect", "src": "wan"}, "set": disable},
        {"package": "firewall", "match": {"type": "forwarding", "src": "wan"}, "set": disable},
        # VPN: only our rule to the server
        {"package": "firewall", "match": {"type": "rule", "src": VPN_ZONE, "target": "ACCEPT"},
         "set": disable},
        {"package": "firewall", "match": {"type": "forwarding", "src": VPN_ZONE}, "set": disable},
        # DMZ: to the WAN only
        {"package": "firewall", "match": {"type": "forwarding", "src": DMZ_ZONE,
                                          "dest": {"not_in": ["wan"]}}, "set": disable},
        {"package": "firewall", "match": {"type": "forwarding", "src": "lan", "dest": DMZ_ZONE},
         "set": disable} if not plan.lan_to_dmz else None,
    ]
    if current_forward not in ("REJECT", "DROP"):
        edits.append({"package": "firewall", "match": {"type": "defaults"},
                      "set": {"forward": "REJECT"}})
    return {
        "sections": sections,
        "absent": absent,
        "edits": [e for e in edits if e],
        "exclusive_types": [["network", peer_type]],
    }


def current_defaults_forward(config: dict[str, Any]) -> str | None:
    """``forward`` of the first ``defaults`` section (the one fw4 reads), if any."""
    for section in config.get("firewall", []):
        if section["type"] == "defaults":
            value = section["options"].get("forward")
            return value.upper() if isinstance(value, str) else None
    return None

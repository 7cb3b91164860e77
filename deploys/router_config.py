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

Per-peer access (optional ``access`` of a peer, see :mod:`firewall.policy`): when any peer
declares one, ``vpn_ai`` gives way to one rule per peer and destination, ``acc_<peer>_<n>``
(``src_ip`` the peer's /32), the default destination being the server's API port.

:func:`check_or_fail` proves the invariants, the access and the user's ``policy_tests`` on the
config as it will be after the run (:func:`config_after`: the router's foreign sections plus
ours), before anything is uploaded.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from deploys.plan import Plan
from firewall.flows import network_of
from firewall.policy import PolicyError, declares_access, parse_target, peer_access
from operations.uci import edit_matches

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
    per_peer = access_rules(plan) if declares_access(plan) else None
    if per_peer is not None:
        rules[4:4] = per_peer
        absent.append({"package": "firewall", "name": "vpn_ai"})
    elif plan.server_address is not None:
        rules.insert(
            4,
            _section(
                "firewall", "vpn_ai", "rule",
                name="Allow-VPN-to-AI", src=VPN_ZONE, dest=DMZ_ZONE,
                dest_ip=str(plan.server_address), proto="tcp",
                dest_port=str(plan.ollama_port), target="ACCEPT",
            ),
        )
    elif per_peer is None:
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


_ZONE_OF = {"dmz": DMZ_ZONE, "lan": "lan", "vpn": VPN_ZONE, "wan": "wan"}


def access_rules(plan: Plan) -> list[dict[str, Any]]:
    """One fw4 rule per enabled peer and ``access`` destination, from the peer's /32
    (``acc_<peer>_<n>``, named ``Allow-<peer>-<n>``). Raises ``DeployError`` for a
    destination that does not resolve."""
    net = network_of(plan)
    out = []
    for peer in plan.enabled_peers:
        for i, text in enumerate(peer_access(plan, peer), 1):
            try:
                t = parse_target(text, net)
            except PolicyError as e:
                from pyinfra.api.exceptions import DeployError

                raise DeployError(f"peer {peer.name}: access: {e}") from None
            dest_ip = None if t.net == "0.0.0.0/0" else t.net.removesuffix("/32")
            out.append(_section(
                "firewall", f"acc_{peer.name}_{i}", "rule",
                name=f"Allow-{peer.name}-{i}", src=VPN_ZONE, dest=_ZONE_OF[t.zone],
                src_ip=f"{peer.address}/32", dest_ip=dest_ip,
                proto=t.proto or "all", dest_port=t.port, target="ACCEPT",
            ))
    return out


def config_after(config: Mapping[str, list[dict[str, Any]]],
                 sections: Iterable[Mapping[str, Any]] = (),
                 absent: Iterable[Mapping[str, Any]] = (),
                 edits: Iterable[Mapping[str, Any]] = (),
                 exclusive_types: Iterable[Iterable[str]] = ()) -> dict[str, list[dict[str, Any]]]:
    """The uci export ``config`` as it will be once ``uci.converge`` applied the desired state
    (the same arguments): foreign sections deleted or edited by content, our named sections
    set (new ones appended), ``absent`` ones gone. Pure: ``config`` is not modified.

    Example::

        after = config_after(state["config"], **desired_router_config(plan))
    """
    sections, edits = list(sections), list(edits)
    desired = {(s["package"], s["name"]): s for s in sections}
    exclusive = {tuple(x) for x in exclusive_types}
    gone = {(a["package"], a["name"]) for a in absent}
    out: dict[str, list[dict[str, Any]]] = {}
    for pkg, current in config.items():
        edits_here = [e for e in edits if e["package"] == pkg]
        result = []
        for sec in copy.deepcopy(list(current)):
            key = (pkg, sec.get("name"))
            if sec.get("name") and key in desired:
                want = desired[key]
                if want["type"] == sec["type"]:
                    sec["options"] = copy.deepcopy(dict(want["options"]))
                    result.append(sec)
                continue  # a type change deletes the section; it is added again below
            if sec.get("name") and key in gone:
                continue
            if (pkg, sec["type"]) in exclusive or any(
                    e.get("delete") and edit_matches(sec, e.get("match", {})) for e in edits_here):
                continue
            for e in edits_here:
                if e.get("delete") or not edit_matches(sec, e.get("match", {})):
                    continue
                sec["options"].update(copy.deepcopy(e.get("set", {})))
                for opt, values in e.get("del_list", {}).items():
                    have = sec["options"].get(opt)
                    if isinstance(have, list):
                        sec["options"][opt] = [v for v in have if v not in values]
                    elif have in values:
                        del sec["options"][opt]
            result.append(sec)
        present = {s.get("name") for s in result}
        for want in sections:
            if want["package"] == pkg and want["name"] not in present:
                result.append({"name": want["name"], "type": want["type"],
                               "options": copy.deepcopy(dict(want["options"]))})
        out[pkg] = result
    return out


def check_or_fail(plan: Plan, state: Mapping[str, Any], desired: Mapping[str, Any],
                  host_name: str) -> None:
    """Prove the firewall on the config as it will be after this run; raise ``DeployError``
    (nothing uploaded) naming each broken invariant or test, the flow and the section(s).

    With someone else's uncommitted uci changes pending, nothing is proved here: the export
    includes them, and ``uci.converge`` refuses to apply anything in that case (its own message).
    """
    from pyinfra.api.exceptions import DeployError

    from firewall.proof import prove

    if state.get("pending"):
        return

    after = config_after(state["config"], **desired)
    report = prove(after, plan)
    if report.ok:
        return
    lines = "\n".join(f"  - {x}" for x in report.lines())
    raise DeployError(
        f"{host_name}: the firewall proof failed on the config this run would apply; "
        f"nothing was uploaded:\n{lines}"
    )

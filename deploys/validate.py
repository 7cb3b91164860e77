"""Inventory data -> a :class:`~deploys.spec.Spec`, or every problem at once (no I/O).

Three passes, all before any host is contacted:

1. every value against its declared field (:mod:`deploys.schema`): type, range, pattern,
   unknown fields with a did-you-mean;
2. the roles' own settings (:func:`deploys.server_plan.validate_server`,
   :func:`deploys.client_plan.validate_client`), on the values that passed;
3. rules across fields (:mod:`deploys.schema.rules`): names the router owns, overlaps,
   addresses inside their subnets, unique peers, one value per network-wide field.

Errors read ``<host or peer>: <field>: <value!r> (<why>)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address
from typing import Any

from deploys import schema
from deploys.client_plan import server_num_ctx, validate_client
from deploys.contexts import claude_context_problems
from deploys.schema import rules
from deploys.schema.network import PEER_RECORD
from deploys.server_plan import validate_server
from deploys.spec import PeerSpec, PlanError, PolicyTest, Spec

NETWORK_FIELDS = {f.name: f for f in schema.NETWORK}
#: Network-wide fields and their defaults (``None``: required or computed).
NETWORK_DEFAULTS: dict[str, Any] = {
    f.name: (None if f.default == schema.REQUIRED else f.default) for f in schema.NETWORK
}
_SAFE_WHO = re.compile(r"[A-Za-z0-9_.' -]{1,64}")


def default_peer_name(host_name: str) -> str:
    """The peer name used for a client host without ``vpn_name``: its short host name with
    characters UCI does not allow replaced by ``_`` (``alice-mbp.lan`` -> ``alice_mbp``)."""
    short = host_name.lstrip("@").split("/")[-1].split(".")[0]
    return re.sub(r"[^A-Za-z0-9_]", "_", short) or "peer"


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """A dict of the set (non-None) values of a mapping (pyinfra's HostData included)."""
    return {k: data.get(k) for k in data if data.get(k) is not None}


def check_fields(who: str, data: Mapping[str, Any], fields: dict[str, schema.Field],
                 errors: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the declared fields present in ``data``: ``(raw values that passed, parsed)``."""
    raw, parsed = {}, {}
    for name, f in fields.items():
        value = data.get(name)
        if value is None:
            continue
        got = schema.check(f, value, who, errors)
        if got is not None:
            raw[name], parsed[name] = value, got
    return raw, parsed


def validate(
    network: Mapping[str, Any],
    router: tuple[str, Mapping[str, Any]] | None,
    server: tuple[str, Mapping[str, Any]] | None,
    clients: Iterable[tuple[str, Mapping[str, Any]]] = (),
    extra_routers: Iterable[str] = (),
    extra_servers: Iterable[str] = (),
    unknown_checked: bool = False,
) -> Spec:
    """Check inventory data and return a :class:`Spec`; raise :class:`PlanError` otherwise.

    ``network`` holds the network-wide fields (:data:`NETWORK_DEFAULTS`), ``router`` and
    ``server`` are ``(host name, host data)``, ``clients`` the SSH-managed VPN clients. Unknown
    keys of plain dicts are errors (``unknown_checked``: the caller checked each data source).
    """
    errors: list[str] = []
    net = "network"
    clients = list(clients)
    if not unknown_checked:
        errors += schema.unknown_field_errors(net, dict(network), ["router"])
        for host, data, role in ([server + ("server",)] if server else []) + [
            (h, d, "clients") for h, d in clients
        ]:
            errors += schema.unknown_field_errors(host, {k: data.get(k) for k in data}, [role])
    if router is None:
        errors.append("inventory: router: None (exactly one host must be in group 'router')")
    for extra in extra_routers:
        errors.append(f"{extra}: groups: 'router' (only one router is supported)")
    for extra in extra_servers:
        errors.append(f"{extra}: groups: 'server' (only one server is supported)")

    if router is not None:
        check_fields(router[0], router[1], {f.name: f for f in schema.COMMON}, errors)
    _, n = check_fields(net, network, {k: f for k, f in NETWORK_FIELDS.items()
                                       if k != "vpn_peers"}, errors)
    bad = {e.split(": ", 2)[1] for e in errors if e.startswith(net + ": ")}
    for name, f in NETWORK_FIELDS.items():
        if name not in n and name not in bad and f.default not in (None, schema.REQUIRED):
            n[name] = schema.check(f, f.default, net, errors)
    if "vpn_endpoint" not in n and "vpn_endpoint" not in bad:
        errors.append(
            "network: vpn_endpoint: None (required: the public DNS name or IP of the router)"
        )
    errors += rules.network_rules(n)

    # -- the server --
    server_address = server_mac = server_name = None
    server_raw: dict[str, Any] = {}
    server_fields = dict(schema.ROLE_FIELDS["server"])
    if server is not None:
        who, data = server
        fields = {k: f for k, f in server_fields.items() if k not in NETWORK_FIELDS}
        server_raw, s = check_fields(who, data, fields, errors)
        errors += rules.same_as_network(who, data, network, n, NETWORK_FIELDS, "server")
        pyinfra = {k: data.get(k) for k in ("ssh_user", "_sudo") if data.get(k) is not None}
        merged = {**pyinfra, **server_raw, "ollama_port": n.get("ollama_port", 11434)}
        if "dmz_address" in s:
            merged["dmz_address"] = server_raw["dmz_address"]
        _, server_errors = validate_server(who, merged)
        errors += _new(errors, server_errors)
        server_address = s.get("dmz_address")
        if server_address is None and not _reported(errors, who, "dmz_address"):
            errors.append(f"{who}: dmz_address: None (expected an IPv4 address like "
                          "'10.10.10.2')")
        server_address = rules.server_address(who, server_address, n, errors)
        server_mac = s["dmz_mac"].lower() if "dmz_mac" in s else None
        server_name = s.get("dmz_hostname", "ai-server")

    # -- peers --
    peers: list[PeerSpec] = []
    client_fields = {k: f for k, f in schema.ROLE_FIELDS["clients"].items()
                     if k not in NETWORK_FIELDS or k == "vpn_keepalive"}
    default_access = (f"server:{n.get('ollama_port', 11434)}",)
    for host_name, data in clients:
        raw, c = check_fields(host_name, data, client_fields, errors)
        errors += rules.same_as_network(host_name, data, network, n, NETWORK_FIELDS, "clients")
        if not _reported(errors, host_name, "vpn_name") and "vpn_name" not in c:
            c["vpn_name"] = default_peer_name(host_name)
        if "vpn_name" in c:
            peers.append(PeerSpec(
                name=c["vpn_name"],
                kind=c.get("vpn_kind", "macos"),
                address=c.get("vpn_address"),
                keepalive=c.get("vpn_keepalive", n.get("vpn_keepalive")) or None,
                enabled=c.get("vpn_enabled", True),
                host=host_name,
                public_key=c.get("vpn_public_key"),
                access=tuple(c.get("vpn_access") or default_access),
                expires=c.get("vpn_expires"),
                # only a Mac this tool configures can make its own key (deploys/mac_keys.py)
                key_on_mac=bool(c.get("key_on_mac", True) and not c.get("vpn_public_key")
                                and c.get("configure_host", True) is True),
            ))
        client_settings, client_errors = validate_client(
            host_name, raw, server_num_ctx(server_raw if server else None)
        )
        errors += _new(errors, client_errors)
        cm = client_settings.claude_models if client_settings is not None else None
        if cm is not None and client_settings.claude_code:
            # Claude Code's models need the context it needs (deploys/contexts.py), checked
            # here so that the run stops before any host is contacted
            errors += _new(errors, claude_context_problems(
                host_name, raw, [cm.default, cm.opus, cm.sonnet, cm.haiku, cm.subagent],
                server_raw if server else None))
        errors += rules.client_rules(host_name, c, server_raw)
    raw_peers = network.get("vpn_peers")
    if raw_peers is None:
        raw_peers = []
    if not isinstance(raw_peers, list | tuple):
        errors.append(schema.fmt(net, "vpn_peers", raw_peers, "expected a list of peer dicts"))
        raw_peers = []
    for i, raw_peer in enumerate(raw_peers):
        if not isinstance(raw_peer, Mapping):
            errors.append(schema.fmt(net, f"vpn_peers[{i}]", raw_peer,
                                     "expected a dict with at least 'name'"))
            continue
        name = raw_peer.get("name")
        who = f"peer {name}" if isinstance(name, str) and _SAFE_WHO.fullmatch(name) \
            else f"peer vpn_peers[{i}]"
        p = check_peer_entry(who, raw_peer, errors)
        if p is not None:
            peers.append(PeerSpec(
                name=p["name"], kind=p.get("kind", "phone"), address=p.get("address"),
                keepalive=p.get("keepalive", n.get("vpn_keepalive")) or None,
                enabled=p.get("enabled", True), host=None, public_key=p.get("public_key"),
                access=tuple(p.get("access") or default_access), expires=p.get("expires"),
            ))
    errors += rules.peer_rules(peers, n)
    errors += rules.access_rules(peers, n)

    if errors:
        raise PlanError(_dedupe(errors))
    assert router is not None
    return Spec(
        router_host=router[0],
        server_host=server[0] if server else None,
        vpn_subnet=n["vpn_subnet"],
        vpn_router_address=n["vpn_router_address"],
        vpn_port=n["vpn_port"],
        vpn_interface=n["vpn_interface"],
        vpn_endpoint=n["vpn_endpoint"],
        lan_subnet=n["lan_subnet"],
        dmz_subnet=n["dmz_subnet"],
        dmz_router_address=n["dmz_router_address"],
        dmz_device=n["dmz_device"],
        dmz_dhcp_start=n["dmz_dhcp_start"],
        dmz_dhcp_limit=n["dmz_dhcp_limit"],
        dmz_dhcp_leasetime=n["dmz_dhcp_leasetime"],
        server_address=server_address,
        server_mac=server_mac,
        server_name=server_name,
        lan_to_dmz=n["lan_to_dmz"],
        ollama_port=n["ollama_port"],
        secrets_dir=n["secrets_dir"],
        peer_output_dir=n["peer_output_dir"],
        rotate_peers=tuple(n["rotate_peers"]),
        peers=tuple(peers),
        policy_tests=tuple(PolicyTest(t["src"], t["dst"], t["expect"], t.get("proto"))
                           for t in n["policy_tests"]),
        firewall_acknowledge=tuple(n["firewall_acknowledge"]),
    )


def check_peer_entry(who: str, raw: Mapping[str, Any], errors: list[str]) -> dict | None:
    """One entry of ``vpn_peers``: its fields named without prefix (``peer p1: kind: ...``)."""
    before = len(errors)
    known = [f.name for f in PEER_RECORD.fields]
    for key in raw:
        if key not in known:
            errors.append(schema.fmt(who, str(key), raw[key], "unknown peer field"
                                     + schema.did_you_mean(key, known)))
    fields = {f.name: f for f in PEER_RECORD.fields}
    _, parsed = check_fields(who, raw, fields, errors)
    if raw.get("name") is None:
        errors.append(schema.fmt(who, "name", None, "required: every peer needs a name"))
    return None if len(errors) > before else parsed


def _reported(errors: list[str], who: str, name: str) -> bool:
    return any(e.startswith(f"{who}: {name}: ") or e.startswith(f"{who}: {name}[")
               or e.startswith(f"{who}: {name}.") for e in errors)


def _new(errors: list[str], more: list[str]) -> list[str]:
    """Errors of a role validator that the schema did not already report for that field."""
    out = []
    for line in more:
        who, _, rest = line.partition(": ")
        name = re.split(r"[.\[:]", rest, maxsplit=1)[0]
        if not _reported(errors, who, name) and line not in out:
            out.append(line)
    return out


def _dedupe(errors: list[str]) -> list[str]:
    return list(dict.fromkeys(errors))


__all__ = ["NETWORK_DEFAULTS", "default_peer_name", "validate", "IPv4Address"]

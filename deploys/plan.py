"""The plan: inventory data -> one validated object, before any host is contacted.

Every deploy reads the same :class:`Plan`. It is built in two steps:

1. :func:`validate` (:mod:`deploys.validate`, against the declared fields of
   :mod:`deploys.schema`) checks the raw data (plain dicts, no I/O) and returns a
   :class:`Spec` (:mod:`deploys.spec`), or raises :class:`PlanError` listing *every* problem
   as ``<host or peer>: <field>: <value> (<why>)``.
2. :func:`materialize` adds what lives in the key store: keys (created on first use) and VPN
   addresses for peers that do not declare one (assigned once, then stable across runs).

:func:`plan_for_inventory` does both for a pyinfra inventory and caches the result (it also
converts ``--data`` texts as their fields say and reports unknown fields per source: group
data files, host data, ``--data``); :func:`validate_before_connect` hooks it in front of
pyinfra's connection phase, so bad input stops the run (exit 2, one line per problem, never a
traceback) before a single host is contacted.

Example::

    spec = validate(
        network={"vpn_subnet": "10.10.10.0/24", "vpn_endpoint": "vpn.example.org", ...},
        router=("router", {...}), server=("ai-server", {"dmz_address": "192.168.100.10", ...}),
        clients=[("alice-mac", {"vpn_name": "alice_mac"})],
    )
    plan = materialize(spec, KeyStore("secrets"))
    plan.peers[0].address   # IPv4Address('10.10.10.2')
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping
from typing import Any

from deploys import schema
from deploys.keys import KeyStore, generate_preshared_key, generate_private_key, public_key
from deploys.schema.network import PEER_KINDS, PEER_PREFIX
from deploys.spec import Peer, PeerSpec, Plan, PlanError, PolicyTest, Spec
from deploys.validate import NETWORK_DEFAULTS, default_peer_name, validate
from operations.secret import Secret

__all__ = [
    "NETWORK_DEFAULTS",
    "PEER_KINDS",
    "PEER_PREFIX",
    "Peer",
    "PeerSpec",
    "Plan",
    "PlanError",
    "PolicyTest",
    "Spec",
    "current_plan",
    "default_peer_name",
    "materialize",
    "plan_for_inventory",
    "validate",
    "validate_before_connect",
]


# -- keys and addresses ---------------------------------------------------------------------


def materialize(spec: Spec, store: KeyStore, dry: bool | None = None) -> Plan:
    """Add keys (created on first use) and stable automatic addresses to a validated spec.

    Automatic addresses are recorded in the key store the first time, and reused afterwards;
    a peer keeps its address when other peers are added or removed. Addresses of peers no
    longer in the inventory are released.

    Key lifecycle: peers named in ``rotate_peers`` get new keys (the old ones are archived);
    keys of peers that are no longer in the inventory are archived, never deleted. With
    ``dry`` (default: pyinfra's ``--dry``) nothing is archived, and rotated keys are new keys
    kept in memory only, so the preview shows the change without making it.
    """
    if dry is None:
        dry = "--dry" in sys.argv
    names = {p.name for p in spec.peers}
    fresh: dict[str, Secret] = {}
    for name in spec.rotate_peers:
        if dry:
            fresh[name] = generate_private_key()
        else:
            store.archive_peer(name, reason="rotated")
    if not dry:
        for name in store.peer_names():
            if name not in names:
                store.archive_peer(name, reason="removed")
    router_private = store.router_private_key()
    router_public = public_key(router_private)
    errors = []
    for p in spec.peers:
        if p.public_key == router_public:
            errors.append(
                f"{p.host or 'peer ' + p.name}: public_key: {p.public_key!r} "
                "(is the router's own public key)"
            )
    if errors:
        raise PlanError(errors)

    recorded = store.assigned_addresses()
    explicit = {p.address for p in spec.peers if p.address is not None}
    assigned: dict[str, str] = {}
    taken = set(explicit) | {spec.vpn_router_address}
    for p in spec.peers:  # keep earlier automatic assignments that are still free
        if p.address is None and p.name in recorded:
            addr = ipaddress.ip_address(recorded[p.name])
            if addr in spec.vpn_subnet and addr not in taken:
                assigned[p.name] = str(addr)
                taken.add(addr)
    free = (a for a in spec.vpn_subnet.hosts() if a not in taken)
    for p in spec.peers:
        if p.address is None and p.name not in assigned:
            addr = next(free, None)
            if addr is None:
                raise PlanError(
                    [
                        f"{p.host or 'peer ' + p.name}: address: None "
                        f"(no free address left in vpn_subnet {spec.vpn_subnet})"
                    ]
                )
            assigned[p.name] = str(addr)
            taken.add(addr)
    store.record_addresses({k: v for k, v in assigned.items() if k in names})

    peers = []
    for p in spec.peers:
        private = None if p.public_key else fresh.get(p.name) or store.peer_private_key(p.name)
        psk = generate_preshared_key() if p.name in fresh else store.peer_preshared_key(p.name)
        peers.append(
            Peer(
                name=p.name,
                kind=p.kind,
                address=p.address or ipaddress.ip_address(assigned[p.name]),
                keepalive=p.keepalive,
                enabled=p.enabled,
                host=p.host,
                public_key=p.public_key or public_key(private),
                preshared_key=psk,
                private_key=private,
                access=p.access,
                expires=p.expires,
                key_on_mac=p.key_on_mac,
            )
        )
    return Plan(
        spec=spec,
        router_private_key=router_private,
        router_public_key=router_public,
        peers=tuple(peers),
    )


# -- pyinfra inventory glue -----------------------------------------------------------------


def inventory_parts(inventory) -> dict[str, Any]:
    """Split a pyinfra inventory into the arguments of :func:`validate`.

    Network-wide fields are read from the router's data (group data ``all`` reaches every
    host, and ``--data`` overrides too). Unknown fields are checked per source (group data
    files, each host's data, ``--data``) and returned under ``"source_errors"``; ``--data``
    values are converted as their field says (:func:`convert_cli_data`) first.
    """
    source_errors = convert_cli_data(inventory) + unknown_in_sources(inventory)
    routers = _group(inventory, "router")
    servers = _group(inventory, "server")
    clients = _group(inventory, "clients")
    source = routers[0] if routers else (servers[0] if servers else None)
    network = {}
    if source is not None:
        for key in NETWORK_DEFAULTS:
            value = source.data.get(key)
            if value is not None:
                network[key] = value
    return {
        "network": network,
        "router": (routers[0].name, _DataView(routers[0])) if routers else None,
        "server": (servers[0].name, _DataView(servers[0])) if servers else None,
        "clients": [(h.name, _DataView(h)) for h in clients],
        "extra_routers": [h.name for h in routers[1:]],
        "extra_servers": [h.name for h in servers[1:]],
        "source_errors": source_errors,
    }


def convert_cli_data(inventory, argv: list[str] | None = None) -> list[str]:
    """Re-read the ``--data key=value`` texts of the command line and convert each as its
    field says (pyinfra's own guess turns ``"0x1"`` or Unicode digits into numbers and
    ``"true"`` into a bool for any field). Returns the errors (``--data: <key>: ...``)."""
    override = getattr(inventory, "override_data", None)
    if not isinstance(override, dict):
        return []
    errors = []
    for key, text in schema.raw_cli_data(sys.argv if argv is None else argv).items():
        f = schema.ALL_FIELDS.get(key)
        if f is None or key not in override:
            continue
        try:
            override[key] = schema.from_cli(f, text)
        except schema.CliError as exc:
            errors.append(schema.fmt("--data", key, text, str(exc)))
            override.pop(key, None)
    return errors


def unknown_in_sources(inventory) -> list[str]:
    """Unknown fields in ``--data``, the group data files and each host's own data."""
    every = list(schema.ROLES)
    errors = schema.unknown_field_errors("--data", dict(getattr(inventory, "override_data", {})
                                                        or {}), every)
    errors += schema.unknown_field_errors("group_data/all.py", dict(inventory.data or {}), every)
    for group, data in sorted((getattr(inventory, "group_data", {}) or {}).items()):
        roles = [group] if group in schema.ROLES else every
        errors += schema.unknown_field_errors(f"group_data/{group}.py", dict(data or {}), roles)
    for host in inventory:
        roles = [g for g in schema.ROLES if host in _group(inventory, g)] or ["router"]
        own = (getattr(inventory, "host_data", {}) or {}).get(host.name) or {}
        errors += schema.unknown_field_errors(host.name, dict(own), roles)
    return errors


def _group(inventory, name: str) -> list:
    try:
        return list(inventory.get_group(name))
    except Exception:  # pyinfra raises NoGroupError for a missing group
        return []


class _DataView(Mapping):
    """A read-only Mapping over pyinfra's HostData (which has .get but no iteration)."""

    def __init__(self, host) -> None:
        self._host = host

    def __getitem__(self, key: str) -> Any:
        value = self._host.data.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._host.data.get(key)
        return default if value is None else value

    def __iter__(self):
        return iter(self._host.data.dict())

    def __len__(self) -> int:
        return len(self._host.data.dict())


_CACHE: dict[int, Plan] = {}


def plan_for_inventory(inventory) -> Plan:
    """The validated, materialized plan of a pyinfra inventory (computed once per inventory)."""
    key = id(inventory)
    if key not in _CACHE:
        parts = inventory_parts(inventory)
        source_errors = parts.pop("source_errors")
        try:
            spec = validate(**parts, unknown_checked=True)
        except PlanError as exc:
            raise PlanError(source_errors + exc.errors) from None
        if source_errors:
            raise PlanError(source_errors)
        _CACHE[key] = materialize(spec, KeyStore(spec.secrets_dir))
    return _CACHE[key]


def current_plan() -> Plan:
    """The plan of the inventory pyinfra is running with (for deploy files)."""
    from pyinfra.context import ctx_state

    return plan_for_inventory(ctx_state.get().inventory)


def _check_or_exit(inventory) -> None:
    try:
        plan_for_inventory(inventory)
    except PlanError as exc:
        _exit(str(exc))
    except Exception as exc:  # fail closed, never a traceback for bad input
        _exit(f"invalid inventory data:\n  - inventory: {type(exc).__name__}: "
              f"{' '.join(str(exc).split())!r} (could not be validated)")


def _exit(text: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"--> {text}\n--> Nothing was changed: no host was contacted.\n")
    sys.stderr.flush()
    raise SystemExit(2) from None


def validate_before_connect() -> None:
    """Check the plan as soon as pyinfra has the whole inventory (call from an inventory file).

    pyinfra loads group data and ``--data`` overrides *after* the inventory file, and connects
    to every host before it loads deploy files, so neither place can validate in time. This
    hooks the moment in between: ``State.init`` (inventory complete, nothing contacted). On bad
    data it prints every error and exits with status 2.
    """
    from pyinfra.context import ctx_state

    if not ctx_state.isset():
        return
    state = ctx_state.get()
    if getattr(state, "_plan_check_installed", False):
        return
    original_init = state.init

    def init(inventory, *args, **kwargs):
        original_init(inventory, *args, **kwargs)
        _check_or_exit(inventory)

    state.init = init
    state._plan_check_installed = True

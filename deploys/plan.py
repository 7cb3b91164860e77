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
from collections.abc import Iterable, Mapping
from typing import Any

from deploys import schema
from deploys.keys import KeyStore, KeyStoreError, public_key
from deploys.keys import resolve as resolve_keys
from deploys.schema.network import PEER_KINDS, PEER_PREFIX
from deploys.spec import Peer, PeerSpec, Plan, PlanError, PolicyTest, Spec
from deploys.validate import NETWORK_DEFAULTS, default_peer_name, validate

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


def materialize(spec: Spec, store: KeyStore, dry: bool | None = None,
                own_key: Iterable[str] = ()) -> Plan:
    """Add keys and stable automatic addresses to a validated spec; reads the store only.

    Keys that do not exist yet (and keys of peers in ``rotate_peers``) are made in memory;
    ``plan.key_changes`` says what a successful run records (``deploys.keys``: staged before
    upload, committed after the router's apply). ``dry`` is accepted for old callers and
    ignored: building a plan never writes. ``own_key``: peers that make their own private key
    (besides those whose spec says ``key_on_mac``).
    """
    try:
        keys = resolve_keys(store, spec.peers, spec.vpn_subnet, taken=[spec.vpn_router_address],
                            rotate=spec.rotate_peers,
                            own_key={*own_key, *(p.name for p in spec.peers if p.own_key)},
                            output_dir=spec.peer_output_dir)
    except KeyStoreError as exc:
        raise PlanError(exc.errors) from None
    router_public = public_key(keys.router_private_key)
    errors = [f"{p.host or 'peer ' + p.name}: public_key: {p.public_key!r} "
              "(is the router's own public key)" for p in spec.peers
              if p.public_key == router_public]
    if errors:
        raise PlanError(errors)
    peers = []
    for p in spec.peers:
        private = keys.private_keys[p.name]
        peers.append(
            Peer(
                name=p.name,
                kind=p.kind,
                address=p.address or ipaddress.ip_address(keys.addresses[p.name]),
                keepalive=p.keepalive,
                enabled=p.enabled,
                host=p.host,
                public_key=p.public_key or (public_key(private) if private
                                            else keys.public_keys.get(p.name, "")),
                preshared_key=keys.preshared_keys[p.name],
                private_key=private,
                access=p.access,
                expires=p.expires,
                key_on_mac=p.key_on_mac,
                own_key=private is None and not p.public_key,
            )
        )
    return Plan(
        spec=spec,
        router_private_key=keys.router_private_key,
        router_public_key=router_public,
        peers=tuple(peers),
        key_changes=keys.changes,
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


def client_datas(plan: Plan) -> list[Mapping[str, Any]]:
    """The host data of every client peer of the running inventory (``{}`` for a peer whose
    host is not in it), e.g. to see which tools the clients are configured with."""
    from pyinfra.context import ctx_state

    inventory = ctx_state.get().inventory
    out: list[Mapping[str, Any]] = []
    for p in plan.peers:
        if p.host:
            try:
                out.append(inventory.get_host(p.host).data)
            except Exception:  # not in this inventory
                out.append({})
    return out


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

    from deploys.interrupt import exit_nonzero_on_interrupt

    exit_nonzero_on_interrupt()  # Ctrl-C ends a run with status 130 (issue 10)
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

"""The declared schema of all inventory data: every field, its type, range, pattern, default,
the hosts it applies to and a one-line description (:mod:`deploys.schema.base` explains a
field and the checking rules).

Where a field may be set:

* network-wide fields (:data:`NETWORK`): ``group_data/all.py`` (they reach every host; one
  value for the whole network);
* server fields (:data:`SERVER`, :data:`COMMON`): the server's host data or
  ``group_data/server.py``;
* client fields (:data:`CLIENT`, :data:`CLIENT_PEER`, :data:`COMMON`): a client's host data or
  ``group_data/clients.py``;
* pyinfra's own data (``ssh_*`` of its connectors, ``_sudo`` and the other global arguments).

Anything else is an unknown field, reported with the closest known name.
"""

from __future__ import annotations

from deploys.schema.base import (
    REQUIRED,
    CliError,
    Field,
    check,
    did_you_mean,
    field_map,
    fmt,
    from_cli,
    raw_cli_data,
    text_problem,
)
from deploys.schema.client import CLIENT
from deploys.schema.network import CLIENT_PEER, COMMON, NETWORK, PEER_RECORD, POLICY_TEST
from deploys.schema.server import MODEL, SERVER

ROLES = ("router", "server", "clients")

#: The fields each role's hosts may carry (besides pyinfra's own data).
ROLE_FIELDS: dict[str, dict[str, Field]] = {
    "router": field_map(NETWORK, COMMON),
    "server": field_map(NETWORK, COMMON, SERVER),
    "clients": field_map(NETWORK, COMMON, CLIENT_PEER, CLIENT,
                         tuple(f for f in SERVER if "clients" in f.hosts)),
}
ALL_FIELDS: dict[str, Field] = field_map(NETWORK, COMMON, SERVER, CLIENT_PEER, CLIENT)


_ROLE_NAMES = {"router": "the router", "server": "the server", "clients": "clients"}


def pyinfra_keys() -> frozenset[str]:
    """Data keys pyinfra itself reads: its connectors' data and its global arguments."""
    keys: set[str] = set()
    try:
        from pyinfra.api.arguments import all_global_arguments

        keys |= {name for name, _ in all_global_arguments()}
    except Exception:  # pragma: no cover - pyinfra internals moved
        pass
    try:
        from pyinfra.connectors.ssh import connector_data_meta

        keys |= set(connector_data_meta)
    except Exception:  # pragma: no cover
        pass
    keys |= {"ssh_hostname", "ssh_port", "ssh_user", "ssh_key", "ssh_password"}
    return frozenset(keys)


def allowed_fields(roles: tuple[str, ...] | list[str]) -> dict[str, Field]:
    """The schema fields a host in these groups may carry (network-wide ones always)."""
    out = dict(ROLE_FIELDS["router"])
    for role in roles:
        out.update(ROLE_FIELDS.get(role, {}))
    return out


def unknown_field_errors(who: str, data: dict, roles: tuple[str, ...] | list[str],
                         where: str = "") -> list[str]:
    """One error per key of ``data`` that no field of these roles (nor pyinfra) knows.

    A key that is a field of another role says so (``dmz_mac`` in a client's data)."""
    allowed = allowed_fields(roles)
    pyinfra = pyinfra_keys()
    errors = []
    for key in data:
        if key in allowed or key in pyinfra:
            continue
        if isinstance(key, str) and key.startswith("__"):
            continue
        value = data[key]
        if isinstance(key, str) and key in ALL_FIELDS:
            owners = [_ROLE_NAMES[r] for r in ROLES if key in ROLE_FIELDS[r]]
            whose = " / ".join(_ROLE_NAMES.get(r, r) for r in roles) or "this host"
            why = f"a field of {' and '.join(owners)}, not of {whose}"
        else:
            why = "unknown field" + did_you_mean(key, set(allowed) | set(pyinfra))
        errors.append(fmt(who, str(key), value, why + where))
    return errors


__all__ = [
    "ALL_FIELDS",
    "CLIENT",
    "CLIENT_PEER",
    "COMMON",
    "MODEL",
    "NETWORK",
    "PEER_RECORD",
    "POLICY_TEST",
    "REQUIRED",
    "ROLE_FIELDS",
    "SERVER",
    "CliError",
    "Field",
    "allowed_fields",
    "check",
    "did_you_mean",
    "fmt",
    "from_cli",
    "pyinfra_keys",
    "raw_cli_data",
    "text_problem",
    "unknown_field_errors",
]

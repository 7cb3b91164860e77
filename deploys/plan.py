"""The plan: inventory data -> one validated object, before any host is contacted.

Every deploy reads the same :class:`Plan`. It is built in two steps:

1. :func:`validate` checks the raw data (plain dicts, no I/O) and returns a :class:`Spec`, or
   raises :class:`PlanError` listing *every* problem as ``<host or peer>: <field>: <value>
   (<why>)``.
2. :func:`materialize` adds what lives in the key store: keys (created on first use) and VPN
   addresses for peers that do not declare one (assigned once, then stable across runs).

:func:`plan_for_inventory` does both for a pyinfra inventory and caches the result;
:func:`validate_before_connect` hooks it in front of pyinfra's connection phase, so bad input
stops the run before a single host is contacted.

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
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from deploys.client_plan import server_num_ctx, validate_client
from deploys.keys import (
    KeyStore,
    generate_preshared_key,
    generate_private_key,
    is_valid_key,
    public_key,
)
from deploys.server_plan import validate_server
from operations.secret import Secret

#: Network-wide fields (``inventories/group_data/all.py``) and their defaults.
#: ``None`` means required.
NETWORK_DEFAULTS: dict[str, Any] = {
    "vpn_subnet": "10.10.10.0/24",
    "vpn_router_address": None,  # default: first host of vpn_subnet
    "vpn_port": 51820,
    "vpn_interface": "wg0",
    "vpn_endpoint": None,
    "vpn_keepalive": 25,
    "vpn_peers": [],
    "lan_subnet": "192.168.1.0/24",
    "dmz_subnet": "192.168.100.0/24",
    "dmz_router_address": None,  # default: first host of dmz_subnet
    "dmz_device": "lan4",
    "dmz_dhcp_start": 100,
    "dmz_dhcp_limit": 50,
    "dmz_dhcp_leasetime": "12h",
    "lan_to_dmz": False,
    "ollama_port": 11434,
    "secrets_dir": "secrets",
    "peer_output_dir": "out/peers",  # configs + QR codes of peers without SSH (git-ignored)
    "rotate_peers": [],  # peers whose keys are replaced in this run (e.g. --data rotate_peers=x)
}

PEER_KINDS = ("macos", "phone", "tablet", "linux", "windows", "other")
UCI_NAME = re.compile(r"^[A-Za-z0-9_]+$")
NETDEV_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
LEASETIME = re.compile(r"^(infinite|\d+[smhdw]?)$")
PEER_PREFIX = "wgpeer_"


class PlanError(ValueError):
    """Invalid inventory data. ``errors`` holds one line per problem."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("invalid inventory data:\n" + "\n".join(f"  - {e}" for e in self.errors))


# -- the validated objects ------------------------------------------------------------------


@dataclass(frozen=True)
class PeerSpec:
    """A VPN peer as declared: an SSH-managed client host, or a device from ``vpn_peers``."""

    name: str
    kind: str
    address: IPv4Address | None  # None: assigned automatically by materialize()
    keepalive: int | None
    enabled: bool
    host: str | None  # inventory host name for SSH-managed clients
    public_key: str | None  # set when the device brings its own key pair

    @property
    def section(self) -> str:
        """The UCI section name of this peer on the router."""
        return PEER_PREFIX + self.name


@dataclass(frozen=True)
class Spec:
    """Validated inventory data, before keys and automatic addresses."""

    router_host: str
    server_host: str | None
    vpn_subnet: IPv4Network
    vpn_router_address: IPv4Address
    vpn_port: int
    vpn_interface: str
    vpn_endpoint: str
    lan_subnet: IPv4Network
    dmz_subnet: IPv4Network
    dmz_router_address: IPv4Address
    dmz_device: str
    dmz_dhcp_start: int
    dmz_dhcp_limit: int
    dmz_dhcp_leasetime: str
    server_address: IPv4Address | None
    server_mac: str | None
    server_name: str | None
    lan_to_dmz: bool
    ollama_port: int
    secrets_dir: str
    peer_output_dir: str
    rotate_peers: tuple[str, ...]
    peers: tuple[PeerSpec, ...]


@dataclass(frozen=True)
class Peer:
    """A peer with its keys and final address."""

    name: str
    kind: str
    address: IPv4Address
    keepalive: int | None
    enabled: bool
    host: str | None
    public_key: str
    preshared_key: Secret
    private_key: Secret | None  # None when the device brings its own key

    @property
    def section(self) -> str:
        return PEER_PREFIX + self.name


@dataclass(frozen=True)
class Plan:
    """Everything the deploys need, validated, with keys. See the module docstring."""

    spec: Spec
    router_private_key: Secret
    router_public_key: str
    peers: tuple[Peer, ...] = field(default_factory=tuple)

    def __getattr__(self, name: str) -> Any:  # plan.vpn_subnet etc. read through to the spec
        return getattr(self.spec, name)

    @property
    def enabled_peers(self) -> tuple[Peer, ...]:
        return tuple(p for p in self.peers if p.enabled)

    def peer(self, name: str) -> Peer:
        for p in self.peers:
            if p.name == name:
                return p
        raise KeyError(name)



# -- validation -----------------------------------------------------------------------------


class _Checker:
    """Collects errors; each check returns a usable value or None."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, who: str, fld: str, value: object, why: str) -> None:
        self.errors.append(f"{who}: {fld}: {value!r} ({why})")

    def network(self, who: str, fld: str, value: object) -> IPv4Network | None:
        if not isinstance(value, str):
            self.error(who, fld, value, "expected an IPv4 subnet like '10.10.10.0/24'")
            return None
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            why = "has host bits set" if "host bits" in str(exc) else "not an IPv4 subnet"
            self.error(who, fld, value, why)
            return None
        if not isinstance(net, IPv4Network):
            self.error(who, fld, value, "only IPv4 subnets are supported")
            return None
        if net.prefixlen > 30:
            self.error(who, fld, value, "subnet too small (at most /30)")
            return None
        return net

    def address(self, who: str, fld: str, value: object) -> IPv4Address | None:
        if not isinstance(value, str):
            self.error(who, fld, value, "expected an IPv4 address like '10.10.10.2'")
            return None
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            self.error(who, fld, value, "not an IPv4 address")
            return None
        if not isinstance(addr, IPv4Address):
            self.error(who, fld, value, "only IPv4 addresses are supported")
            return None
        return addr

    def host_in(
        self, who: str, fld: str, addr: IPv4Address | None, net: IPv4Network | None, what: str
    ) -> bool:
        if addr is None or net is None:
            return False
        if addr not in net:
            self.error(who, fld, str(addr), f"outside the {what} {net}")
            return False
        if addr in (net.network_address, net.broadcast_address):
            self.error(who, fld, str(addr), f"network or broadcast address of {net}")
            return False
        return True

    def integer(self, who: str, fld: str, value: object, lo: int, hi: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            else:
                self.error(who, fld, value, f"expected a whole number from {lo} to {hi}")
                return None
        if not lo <= value <= hi:
            self.error(who, fld, value, f"out of range {lo}-{hi}")
            return None
        return value

    def boolean(self, who: str, fld: str, value: object) -> bool | None:
        if not isinstance(value, bool):
            self.error(who, fld, value, "expected True or False")
            return None
        return value

    def pattern(
        self, who: str, fld: str, value: object, regex: re.Pattern, what: str
    ) -> str | None:
        if not isinstance(value, str) or not regex.match(value):
            self.error(who, fld, value, what)
            return None
        return value


def _network_value(network: Mapping[str, Any], key: str) -> Any:
    value = network.get(key)
    return NETWORK_DEFAULTS[key] if value is None else value


def default_peer_name(host_name: str) -> str:
    """The peer name used for a client host without ``vpn_name``: its short host name with
    characters UCI does not allow replaced by ``_`` (``alice-mbp.lan`` -> ``alice_mbp``)."""
    short = host_name.lstrip("@").split("/")[-1].split(".")[0]
    return re.sub(r"[^A-Za-z0-9_]", "_", short) or "peer"


def validate(
    network: Mapping[str, Any],
    router: tuple[str, Mapping[str, Any]] | None,
    server: tuple[str, Mapping[str, Any]] | None,
    clients: Iterable[tuple[str, Mapping[str, Any]]] = (),
    extra_routers: Iterable[str] = (),
    extra_servers: Iterable[str] = (),
) -> Spec:
    """Check inventory data and return a :class:`Spec`; raise :class:`PlanError` otherwise.

    ``network`` holds the network-wide fields (see :data:`NETWORK_DEFAULTS`), ``router`` and
    ``server`` are ``(host name, host data)``, ``clients`` the SSH-managed VPN clients.
    """
    c = _Checker()
    net = "network"

    unknown = sorted(set(network) - set(NETWORK_DEFAULTS))
    for key in unknown:  # only reachable for callers passing raw dicts
        c.error(net, key, network[key], "unknown field")

    if router is None:
        c.error("inventory", "router", None, "exactly one host must be in group 'router'")
    for extra in extra_routers:
        c.error(extra, "groups", "router", "only one router is supported")
    for extra in extra_servers:
        c.error(extra, "groups", "server", "only one server is supported")

    vpn_subnet = c.network(net, "vpn_subnet", _network_value(network, "vpn_subnet"))
    lan_subnet = c.network(net, "lan_subnet", _network_value(network, "lan_subnet"))
    dmz_subnet = c.network(net, "dmz_subnet", _network_value(network, "dmz_subnet"))
    subnets = [("vpn_subnet", vpn_subnet), ("lan_subnet", lan_subnet), ("dmz_subnet", dmz_subnet)]
    for i, (name_a, a) in enumerate(subnets):
        for name_b, b in subnets[i + 1 :]:
            if a is not None and b is not None and a.overlaps(b):
                c.error(net, name_b, str(b), f"overlaps {name_a} {a}")

    vpn_router = None
    raw = network.get("vpn_router_address")
    if raw is None and vpn_subnet is not None:
        vpn_router = next(vpn_subnet.hosts())
    elif raw is not None:
        vpn_router = c.address(net, "vpn_router_address", raw)
        if not c.host_in(net, "vpn_router_address", vpn_router, vpn_subnet, "vpn_subnet"):
            vpn_router = None

    dmz_router = None
    raw = network.get("dmz_router_address")
    if raw is None and dmz_subnet is not None:
        dmz_router = next(dmz_subnet.hosts())
    elif raw is not None:
        dmz_router = c.address(net, "dmz_router_address", raw)
        if not c.host_in(net, "dmz_router_address", dmz_router, dmz_subnet, "dmz_subnet"):
            dmz_router = None

    vpn_port = c.integer(net, "vpn_port", _network_value(network, "vpn_port"), 1, 65535)
    ollama_port = c.integer(net, "ollama_port", _network_value(network, "ollama_port"), 1, 65535)
    vpn_interface = c.pattern(
        net,
        "vpn_interface",
        _network_value(network, "vpn_interface"),
        re.compile(r"^[A-Za-z0-9_]{1,15}$"),
        "must be a UCI section name and interface name: 1-15 of [A-Za-z0-9_]",
    )
    endpoint = network.get("vpn_endpoint")
    if endpoint is None:
        c.error(net, "vpn_endpoint", None, "required: the public DNS name or IP of the router")
    elif not isinstance(endpoint, str) or not (HOSTNAME.match(endpoint) or _is_ip(endpoint)):
        c.error(net, "vpn_endpoint", endpoint, "not a DNS name or IP address")
    dmz_device = c.pattern(
        net,
        "dmz_device",
        _network_value(network, "dmz_device"),
        NETDEV_NAME,
        "not a network device name (1-15 of [A-Za-z0-9_.-])",
    )
    start = c.integer(net, "dmz_dhcp_start", _network_value(network, "dmz_dhcp_start"), 1, 65534)
    limit = c.integer(net, "dmz_dhcp_limit", _network_value(network, "dmz_dhcp_limit"), 1, 65534)
    if start is not None and limit is not None and dmz_subnet is not None:
        if start + limit - 1 >= dmz_subnet.num_addresses - 1:
            c.error(
                net,
                "dmz_dhcp_limit",
                limit,
                f"pool .{start}+{limit} does not fit in dmz_subnet {dmz_subnet}",
            )
    leasetime = c.pattern(
        net,
        "dmz_dhcp_leasetime",
        str(_network_value(network, "dmz_dhcp_leasetime")),
        LEASETIME,
        "expected a lease time like '12h', '3600' or 'infinite'",
    )
    lan_to_dmz = c.boolean(net, "lan_to_dmz", _network_value(network, "lan_to_dmz"))
    secrets_dir = _network_value(network, "secrets_dir")
    if not isinstance(secrets_dir, str) or not secrets_dir:
        c.error(net, "secrets_dir", secrets_dir, "expected a directory path")
    keepalive_default = c.integer(
        net, "vpn_keepalive", _network_value(network, "vpn_keepalive"), 0, 65535
    )

    # -- the server --
    server_address = server_mac = server_name = None
    if server is not None:
        who, data = server
        _check_configure_host(c, who, data)
        c.errors.extend(validate_server(who, data)[1])
        if data.get("pin_ollama") is not None:
            c.boolean(who, "pin_ollama", data.get("pin_ollama"))
        server_address = c.address(who, "dmz_address", data.get("dmz_address"))
        if c.host_in(who, "dmz_address", server_address, dmz_subnet, "dmz_subnet"):
            if server_address == dmz_router:
                c.error(who, "dmz_address", str(server_address), "is the router's DMZ address")
        else:
            server_address = None
        mac = data.get("dmz_mac")
        if mac is not None:
            server_mac = c.pattern(
                who, "dmz_mac", mac, MAC, "not a MAC address like 52:54:00:a1:00:10"
            )
            server_mac = server_mac.lower() if server_mac else None
        server_name = c.pattern(
            who,
            "dmz_hostname",
            data.get("dmz_hostname", "ai-server"),
            HOSTNAME,
            "not a host name",
        )

    # -- peers --
    peers: list[PeerSpec] = []
    for host_name, data in clients:
        raw_peer = {
            "name": data.get("vpn_name", default_peer_name(host_name)),
            "kind": data.get("vpn_kind", "macos"),
            "address": data.get("vpn_address"),
            "keepalive": data.get("vpn_keepalive", keepalive_default),
            "enabled": data.get("vpn_enabled", True),
            "public_key": data.get("vpn_public_key"),
        }
        peer = _peer(c, host_name, raw_peer, host_name, "vpn_")
        if peer:
            peers.append(peer)
        c.errors.extend(validate_client(host_name, data, server_num_ctx(server and server[1]))[1])
        _check_configure_host(c, host_name, data)
    raw_peers = _network_value(network, "vpn_peers")
    if not isinstance(raw_peers, list | tuple):
        c.error(net, "vpn_peers", raw_peers, "expected a list of peer dicts")
        raw_peers = []
    for i, raw_peer in enumerate(raw_peers):
        if not isinstance(raw_peer, Mapping):
            c.error(net, f"vpn_peers[{i}]", raw_peer, "expected a dict with at least 'name'")
            continue
        unknown_keys = sorted(
            set(raw_peer) - {"name", "kind", "address", "keepalive", "enabled", "public_key"}
        )
        who = f"peer {raw_peer.get('name', f'vpn_peers[{i}]')}"
        for key in unknown_keys:
            c.error(who, key, raw_peer[key], "unknown peer field")
        merged = {"kind": "phone", "keepalive": keepalive_default, "enabled": True, **raw_peer}
        peer = _peer(c, who, merged, None, "")
        if peer:
            peers.append(peer)

    seen_names: dict[str, str] = {}
    seen_addresses: dict[IPv4Address, str] = {}
    seen_keys: dict[str, str] = {}
    for p in peers:
        who = p.host or f"peer {p.name}"
        if p.name in seen_names:
            c.error(who, "name", p.name, f"duplicate peer name (also {seen_names[p.name]})")
        seen_names.setdefault(p.name, who)
        if p.address is not None:
            if c.host_in(who, "address", p.address, vpn_subnet, "vpn_subnet"):
                if p.address == vpn_router:
                    c.error(who, "address", str(p.address), "is the router's VPN address")
                elif p.address in seen_addresses:
                    c.error(
                        who,
                        "address",
                        str(p.address),
                        f"duplicate peer address (also {seen_addresses[p.address]})",
                    )
                seen_addresses.setdefault(p.address, who)
        if p.public_key is not None:
            if p.public_key in seen_keys:
                c.error(
                    who,
                    "public_key",
                    p.public_key,
                    f"duplicate public key (also {seen_keys[p.public_key]})",
                )
            seen_keys.setdefault(p.public_key, who)

    output_dir = _network_value(network, "peer_output_dir")
    if not isinstance(output_dir, str) or not output_dir:
        c.error(net, "peer_output_dir", output_dir, "expected a directory path")
    rotate = _network_value(network, "rotate_peers")
    if isinstance(rotate, str):
        rotate = [r for r in rotate.split(",") if r]
    if not isinstance(rotate, list | tuple):
        c.error(net, "rotate_peers", rotate, "expected a list of peer names")
        rotate = []
    for name in rotate:
        if name not in seen_names:
            c.error(net, "rotate_peers", name, "no such peer in the inventory")

    if c.errors:
        raise PlanError(c.errors)

    assert router is not None and vpn_subnet and lan_subnet and dmz_subnet  # for type checkers
    return Spec(
        router_host=router[0],
        server_host=server[0] if server else None,
        vpn_subnet=vpn_subnet,
        vpn_router_address=vpn_router,
        vpn_port=vpn_port,
        vpn_interface=vpn_interface,
        vpn_endpoint=endpoint,
        lan_subnet=lan_subnet,
        dmz_subnet=dmz_subnet,
        dmz_router_address=dmz_router,
        dmz_device=dmz_device,
        dmz_dhcp_start=start,
        dmz_dhcp_limit=limit,
        dmz_dhcp_leasetime=leasetime,
        server_address=server_address,
        server_mac=server_mac,
        server_name=server_name,
        lan_to_dmz=lan_to_dmz,
        ollama_port=ollama_port,
        secrets_dir=secrets_dir,
        peer_output_dir=output_dir,
        rotate_peers=tuple(rotate),
        peers=tuple(peers),
    )


def _check_configure_host(c: _Checker, who: str, data: Mapping[str, Any]) -> None:
    value = data.get("configure_host", True)
    if not isinstance(value, bool):
        c.error(who, "configure_host", value, "expected True or False")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _peer(c: _Checker, who: str, raw: Mapping[str, Any], host: str | None, prefix: str):
    """Check one peer's fields; ``prefix`` is how the fields are spelled in host data."""
    errors_before = len(c.errors)
    name = raw.get("name")
    if not isinstance(name, str) or not UCI_NAME.match(name):
        c.error(who, f"{prefix}name", name, "peer names must be UCI section names: [A-Za-z0-9_]+")
    elif len(PEER_PREFIX + name) > 64:
        c.error(who, f"{prefix}name", name, "too long (at most 57 characters)")
    kind = raw.get("kind")
    if kind not in PEER_KINDS:
        c.error(who, f"{prefix}kind", kind, f"expected one of {', '.join(PEER_KINDS)}")
    address = None
    if raw.get("address") is not None:
        address = c.address(who, f"{prefix}address", raw.get("address"))
    keepalive = raw.get("keepalive")
    if keepalive is not None:
        keepalive = c.integer(who, f"{prefix}keepalive", keepalive, 0, 65535)
    enabled = c.boolean(who, f"{prefix}enabled", raw.get("enabled", True))
    public = raw.get("public_key")
    if public is not None and not is_valid_key(public):
        c.error(who, f"{prefix}public_key", public, "not a WireGuard public key (44 chars base64)")
    if len(c.errors) > errors_before:
        return None
    return PeerSpec(
        name=name,
        kind=kind,
        address=address,
        keepalive=keepalive or None,
        enabled=bool(enabled),
        host=host,
        public_key=public,
    )


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
    host, and ``--data`` overrides too).
    """
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
    }


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
        spec = validate(**parts)
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
        sys.stdout.flush()
        sys.stderr.write(f"--> {exc}\n--> Nothing was changed: no host was contacted.\n")
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

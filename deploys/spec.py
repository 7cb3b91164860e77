"""The validated objects of the plan: :class:`Spec` (inventory data, checked) and :class:`Plan`
(with keys and final addresses). Built by :mod:`deploys.validate` and :mod:`deploys.plan`.

Fields added for the policy tests, the firewall check and peer access (their semantics live
with the deploys that use them): ``Spec.policy_tests`` (tuple of :class:`PolicyTest`),
``Spec.firewall_acknowledge`` (uci section names), ``PeerSpec.access`` / ``Peer.access``
(destinations like ``"server:11434"``; default the server's API port), ``PeerSpec.expires``
(a ``datetime.date`` or None) and ``PeerSpec.key_on_mac`` (a client Mac makes its own key).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from deploys.expiry import is_expired
from deploys.keys import KeyChanges
from deploys.schema.network import PEER_PREFIX
from operations.secret import Secret


class PlanError(ValueError):
    """Invalid inventory data. ``errors`` holds one line per problem."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("invalid inventory data:\n" + "\n".join(f"  - {e}" for e in self.errors))


@dataclass(frozen=True)
class PolicyTest:
    """One declared reachability test (``policy_tests``)."""

    src: str
    dst: str
    expect: str  # "accept" | "deny"
    proto: str | None = None  # "tcp" | "udp" | "icmp" | None


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
    access: tuple[str, ...] = ()  # destinations it may reach ("server:11434", "dmz:443", ...)
    expires: datetime.date | None = None
    key_on_mac: bool = False  # a client Mac generates its own key (client hosts only)

    @property
    def own_key(self) -> bool:
        """The Mac makes its private key (``key_on_mac``, ``deploys/mac_keys.py``)."""
        return self.key_on_mac

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
    policy_tests: tuple[PolicyTest, ...] = ()
    firewall_acknowledge: tuple[str, ...] = ()


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
    access: tuple[str, ...] = ()
    expires: datetime.date | None = None  # the last day it is a peer (deploys/expiry.py)
    key_on_mac: bool = False
    own_key: bool = False  # the private key is made and kept on the Mac (public_key: "" = unknown)

    @property
    def expired(self) -> bool:
        return is_expired(self.expires)

    @property
    def section(self) -> str:
        return PEER_PREFIX + self.name


@dataclass(frozen=True)
class Plan:
    """Everything the deploys need, validated, with keys. See :mod:`deploys.plan`."""

    spec: Spec
    router_private_key: Secret
    router_public_key: str
    peers: tuple[Peer, ...] = field(default_factory=tuple)
    key_changes: KeyChanges = field(default_factory=KeyChanges)  # recorded after a good run

    def __getattr__(self, name: str) -> Any:  # plan.vpn_subnet etc. read through to the spec
        if name == "spec":  # not set yet (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self.spec, name)

    @property
    def enabled_peers(self) -> tuple[Peer, ...]:
        return tuple(p for p in self.peers if p.enabled and not p.expired and p.public_key)

    def peer(self, name: str) -> Peer:
        for p in self.peers:
            if p.name == name:
                return p
        raise KeyError(name)

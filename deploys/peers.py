"""WireGuard configs of the VPN peers, rendered from the plan (controller side, no I/O but
reading the template).

:func:`peer_config` renders ``templates/wireguard-peer.conf.j2`` for one peer: its private key,
its ``/32``, the router's public key, the pair's preshared key, the public endpoint and a split
tunnel (``AllowedIPs`` = the VPN subnet + the server's ``/32``: never a default route, the spec
forbids internet through the tunnel). The text is returned wrapped in a
:class:`operations.secret.Secret`, because it contains a private key.

:func:`router_wg_setconf` renders the router side in ``wg setconf`` format, exactly what
OpenWrt's WireGuard proto handler gives ``wg`` from ``network.wg0`` and its peer sections (used
by the tunnel tests and the lab).

Example::

    plan = current_plan()
    text = peer_config(plan, plan.peer("alice_phone")).reveal()
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import jinja2

from deploys.plan import Peer, Plan
from operations.secret import Secret

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def endpoint(plan: Plan) -> str:
    """``host:port`` of the router as the peers dial it (IPv6 literals in brackets)."""
    host = plan.vpn_endpoint
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"{host}:{plan.vpn_port}"


def allowed_ips(plan: Plan) -> list[str]:
    """What a peer routes into the tunnel: the VPN subnet and the AI server, nothing else."""
    ips = [str(plan.vpn_subnet)]
    if plan.server_address is not None:
        ips.append(f"{plan.server_address}/32")
    return ips


def peer_config(plan: Plan, peer: Peer) -> Secret:
    """The complete wg-quick config of ``peer`` (a :class:`Secret`: it holds the private key).

    For a peer that makes its own key (a Mac with ``key_on_mac``) the config has no
    ``PrivateKey`` line: the Mac adds it from its key file when it installs the config.
    """
    if peer.private_key is None and not getattr(peer, "own_key", False):
        raise ValueError(f"peer {peer.name} brings its own key: there is no config to render")
    text = _ENV.get_template("wireguard-peer.conf.j2").render(
        name=peer.name,
        kind=peer.kind,
        private_key=peer.private_key.reveal() if peer.private_key else None,
        address=peer.address,
        router_public_key=plan.router_public_key,
        preshared_key=peer.preshared_key.reveal(),
        endpoint=endpoint(plan),
        allowed_ips=allowed_ips(plan),
        keepalive=peer.keepalive,
    )
    return Secret(text)


def router_wg_setconf(plan: Plan) -> Secret:
    """The router's ``wg setconf`` input: its key and port, one ``[Peer]`` per enabled peer."""
    lines = [
        "[Interface]",
        f"PrivateKey = {plan.router_private_key.reveal()}",
        f"ListenPort = {plan.vpn_port}",
    ]
    for peer in plan.enabled_peers:
        lines += [
            "",
            "[Peer]",
            f"PublicKey = {peer.public_key}",
            f"PresharedKey = {peer.preshared_key.reveal()}",
            f"AllowedIPs = {peer.address}/32",
        ]
    return Secret("\n".join(lines) + "\n")


def parse_wg_quick(text: str) -> dict[str, dict[str, str] | list[dict[str, str]]]:
    """Parse a wg-quick config into ``{"Interface": {...}, "Peer": [{...}, ...]}`` (for tests
    and for checks: comments and blank lines ignored, keys kept as written)."""
    result: dict = {"Interface": {}, "Peer": []}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line == "[Interface]":
            current = result["Interface"]
        elif line == "[Peer]":
            current = {}
            result["Peer"].append(current)
        elif "=" in line and current is not None:
            key, value = line.split("=", 1)
            current[key.strip()] = value.strip()
        else:
            raise ValueError(f"not a wg-quick line: {raw!r}")
    return result

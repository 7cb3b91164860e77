"""The client audit's one read: the user's side and the root-owned tunnel side in ONE exec.

:class:`ClientAudit` runs :class:`facts.client.ClientState`'s command as the SSH user, then
:class:`facts.client.TunnelState`'s under ``sudo -n`` (no password prompt: when sudo needs a
password the tunnel side is reported unreadable), plus the ``[Peer] PublicKey`` lines of the
tunnel config (the ROUTER's public key; the config's private and preshared keys are never
printed: only the file's sha256 leaves the Mac).

From the command line (repo root)::

    pyinfra inventories/home.py fact facts.client_audit.ClientAudit \\
        config=/opt/homebrew/etc/wireguard/wg-ollama.conf --limit alice-mac
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api import FactBase

from facts.client import ClientState, TunnelState

_SEP = "##pyinfra-client-audit##"


def audit_script(prefix: str, interface: str, config: str, label: str,
                 plist: str | None = None, key: str | None = None) -> str:
    tunnel = TunnelState().command(interface=interface, config=config, label=label, plist=plist,
                                   key=key, wg=f"{prefix}/bin/wg" if key else None)
    conf = shlex.quote(config)
    peer_keys = (f"[ -f {conf} ] && sed -n 's/^[[:space:]]*PublicKey[[:space:]]*=[[:space:]]*"
                 f"//p' {conf} | while read -r k; do printf 'peerkey\\t%s\\n' \"$k\"; done; true")
    root_side = tunnel + "\n" + peer_keys
    return "\n".join([
        ClientState().command(prefix=prefix),
        f"echo {shlex.quote(_SEP + 'tunnel')}",
        f"sudo -n /bin/sh -c {shlex.quote(root_side)} 2>/dev/null || echo sudo-failed",
        f"echo {shlex.quote(_SEP + 'end')}",
    ])


def parse_audit(lines: list[str]) -> dict[str, Any]:
    lines = list(lines)
    cut = next((i for i, line in enumerate(lines) if line.startswith(_SEP + "tunnel")),
               len(lines))
    user_side, root_side = lines[:cut], lines[cut + 1:]
    end = next((i for i, line in enumerate(root_side) if line.startswith(_SEP + "end")), None)
    root_side = root_side[:end] if end is not None else root_side
    readable = "sudo-failed" not in (line.strip() for line in root_side)
    tunnel = TunnelState().process([line for line in root_side if line.strip() != "sudo-failed"])
    tunnel["readable"] = readable and end is not None
    tunnel["peer_public_keys"] = [line.split("\t", 1)[1].strip() for line in root_side
                                  if line.startswith("peerkey\t")]
    return {"client": ClientState().process(user_side), "tunnel": tunnel,
            "complete": end is not None}


class ClientAudit(FactBase):
    """``{"client": <ClientState>, "tunnel": <TunnelState> + {"readable": bool,
    "peer_public_keys": [<router public key in the config>]}, "complete": bool}``.

    Arguments as :class:`facts.client.TunnelState` (``interface``, ``config``, ``label``,
    ``plist``, ``key``: the Mac's own private key file, for ``config_sha256_nokey``,
    ``key_in_config`` and ``public_key``) plus ``prefix`` (Homebrew, ``/opt/homebrew``)."""

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, config: str, interface: str = "wg-ollama",
                label: str = "org.self-sovereign-ollama.wireguard.wg-ollama",
                plist: str | None = None, prefix: str = "/opt/homebrew",
                key: str | None = None) -> str:
        return audit_script(prefix, interface, config, label, plist, key)

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_audit(output)

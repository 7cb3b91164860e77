"""Macs make their own WireGuard private key (``key_on_mac``, default ``True``).

The key is made on the Mac with ``wg genkey`` into ``<homebrew>/etc/wireguard/<tunnel>.key``
(root:wheel 600, in the root-only 700 directory of the tunnel config). It is never read back:
the controller learns the public key only (``wg pubkey < key``, in the
:class:`facts.client.TunnelState` read) and gives it to the router. The tunnel config the
controller renders has no ``PrivateKey`` line; the Mac adds it from its key file when it
installs the config (``operations.client.wireguard_tunnel``, by ``cat`` into the file: the key
is on no command line).

**Ordering.** pyinfra loads the deploy file for each host in inventory order (router first) and
computes every operation's arguments then; the router's peer list is therefore fixed when the
router's deploy is loaded, before any operation runs. :func:`with_mac_keys` is called there (and
again, from cache, by each client's deploy): for every Mac of the run it reads the public key
(one ``TunnelState`` read per Mac and run, shared with the client deploy: :func:`tunnel_state`)
and, when the
Mac has no key yet and this is not ``--dry``, makes it right then, so the router gets the new
public key in the same run (a run declined at pyinfra's confirmation prompt may therefore leave
a new, unused key on the Mac: the next run uses it). A Mac that is not in the run (``--limit
router``) keeps its last known public key (``secrets/wireguard/peers/<peer>.pub``, recorded
after a successful router apply). A Mac without ``wireguard-tools`` yet (first run on a fresh
Mac) gets its key when the client role has installed them; ``deploys/router_late.py`` (included
by ``deploys/all.py`` after the clients) then adds it to the router at the end of the same run.

**Migration** from controller-made Mac keys is one run: with ``key_on_mac`` on (the default)
the Mac makes its key, the router gets the new public key, the Mac's config is re-installed
with it and the tunnel restarted, and the controller's old copy of the private key is
archived (``archive/<stamp>-<peer>-key-moved``). ``rotate_peers=<mac peer>`` makes a new key on
the Mac (and a new preshared key). ``key_on_mac: False`` keeps the old behaviour.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys

from gevent.lock import Semaphore
from pyinfra import logger
from pyinfra.api import StringCommand

from deploys.client_plan import validate_client
from deploys.keys import KeyChanges, is_valid_key
from deploys.plan import Plan
from facts.client import TunnelState
from operations.secret import Secret

_CACHE: dict[int, Plan] = {}
#: peers whose key was made (or replaced) on their Mac in this run, by peer name
MADE: set[str] = set()


def key_path(settings) -> str:
    """Where a Mac keeps its own private key: next to its tunnel config."""
    return f"{settings.wireguard_dir}/{settings.wg_interface_name}.key"


def tunnel_fact_args(settings) -> dict:
    """The :class:`TunnelState` arguments of a client (the same everywhere: one cached read)."""
    return {"interface": settings.wg_interface_name, "config": settings.wireguard_config,
            "label": settings.daemon_label, "plist": settings.daemon_plist,
            "key": key_path(settings), "wg": f"{settings.homebrew_prefix}/bin/wg"}


_FACTS: dict[tuple, dict] = {}
_FACT_LOCKS: dict[tuple, Semaphore] = {}
_LOCK = Semaphore()


def tunnel_state(host, settings) -> dict:
    """:class:`TunnelState` of a client, read once per run (pyinfra 3 does not cache facts):
    the router's deploy and the client's own deploy share the read."""
    args = tunnel_fact_args(settings)
    key = (host.name, tuple(sorted(args.items())))
    with _FACT_LOCKS.setdefault(key, Semaphore()):
        if key not in _FACTS:
            _FACTS[key] = host.get_fact(TunnelState, **args, _sudo=True) or {}
    return _FACTS[key]


def make_key_script(settings, replace: bool) -> str:
    """Shell (run with sudo) that makes the Mac's key if missing (or ``replace``), atomically,
    mode 600 root:wheel, and prints ``pub<TAB><public key>``. No key on any command line."""
    d = shlex.quote(settings.wireguard_dir)
    k = shlex.quote(key_path(settings))
    tmp = shlex.quote(key_path(settings) + ".new")
    wg = shlex.quote(f"{settings.homebrew_prefix}/bin/wg")
    test = "false" if replace else f"[ -s {k} ]"
    return "\n".join([
        "umask 077",
        f"mkdir -p {d} && chown root:wheel {d} && chmod 700 {d} || exit 1",
        f"{test} || {{ {wg} genkey > {tmp} && chown root:wheel {tmp} && chmod 600 {tmp}"
        f" && mv -f {tmp} {k}; }} || exit 1",
        f"printf 'pub\\t%s\\n' \"$({wg} pubkey < {k})\"",
    ])


def _dry() -> bool:
    return "--dry" in sys.argv


def with_mac_keys(plan: Plan, state=None) -> Plan:
    """``plan`` with the public keys of the Macs of this run (see the module docstring).

    pyinfra loads the deploy files of all hosts concurrently (gevent): one lock makes the
    first caller read (and make) every Mac's key once, the others wait for its result."""
    with _LOCK:
        return _with_mac_keys(plan, state)


def _with_mac_keys(plan: Plan, state) -> Plan:
    if id(plan) in _CACHE:
        return _CACHE[id(plan)]
    if state is None:
        from pyinfra.context import ctx_state

        state = ctx_state.get() if ctx_state.isset() else None
    changes = dataclasses.replace(plan.key_changes, new=dict(plan.key_changes.new))
    peers = []
    for peer in plan.peers:
        peers.append(_with_key(peer, plan, state, changes))
    result = dataclasses.replace(plan, peers=tuple(peers), key_changes=changes)
    _CACHE[id(plan)] = result
    _CACHE[id(result)] = result
    return result


def _with_key(peer, plan: Plan, state, changes: KeyChanges):
    if not peer.own_key or peer.host is None or state is None:
        return peer
    # (a state without hosts: not a pyinfra run, e.g. a test's stand-in state)
    host = next((h for h in getattr(state, "activated_hosts", ()) if h.name == peer.host), None)
    if host is None or not getattr(host, "connected", False) \
            or not host.data.get("configure_host", True):
        return peer  # not in this run: its last known public key
    settings, errors = validate_client(host.name, host.data)
    if errors or settings is None:
        return peer  # the client's deploy reports its errors
    facts = tunnel_state(host, settings)
    public = facts.get("public_key")
    active = peer.enabled and not peer.expired
    rotate = peer.name in plan.rotate_peers
    if active and (public is None or rotate) and facts.get("wg") and not _dry():
        ok, output = host.run_shell_command(
            StringCommand(make_key_script(settings, replace=rotate)), _sudo=True)
        lines = [line for line in output.stdout_lines if line.startswith("pub\t")]
        made = lines[0].split("\t", 1)[1].strip() if ok and lines else None
        if made is None or not is_valid_key(made):
            raise RuntimeError(f"{host.name}: could not make the Mac's WireGuard key: "
                               f"{' '.join(output.stderr_lines)[-300:]}")
        public = made
        MADE.add(peer.name)
        logger.info(f"    [{host.name}] WireGuard key {'replaced' if rotate else 'made'} on the "
                    f"Mac ({key_path(settings)}); the router gets its public key")
    elif active and public is None:
        why = ("--dry: it is made when the deploy runs" if _dry() else
               "wireguard-tools is not installed yet: the client role installs them and makes "
               "the key, and the router gets it at the end of this run (deploys/router_late.py)"
               " when the router is part of it")
        logger.warning(f"    [{host.name}] peer {peer.name} has no key on the Mac yet ({why})")
    if public is None or public == peer.public_key:
        return peer
    if not is_valid_key(public):
        raise RuntimeError(f"{host.name}: the Mac's public key is not a WireGuard key")
    changes.new[f"peers/{peer.name}.pub"] = Secret(public)
    return dataclasses.replace(peer, public_key=public)

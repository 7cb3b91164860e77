"""Router, last step of a run: add the public keys that Macs made *during* this run.

A Mac that had no ``wireguard-tools`` when the run started (a fresh Mac) cannot make its key
before its client role installed them, so the router's first pass (``deploys/router.py``) does
not know its public key yet. ``deploys/all.py`` includes this file after the client role:
pyinfra orders operations by their place in the deploy files, so this runs once every client
operation is done. At execution it reads the public keys the clients' tunnel operations
reported (``pending/peers/<peer>.pub``), converges the router once more with them (the same
``uci.converge`` as the first pass, as a nested operation), hands the new peers that have an
``expires`` date to the router's expiry job (``operations/expiry_job.py``) and records them.
Nothing happens (not even a state read) when every Mac's key was known at the start, or under
``--dry``.
"""

from __future__ import annotations

import dataclasses

from pyinfra import host, logger
from pyinfra.operations import python

from deploys.expiry import job_args
from deploys.keys import KeyChanges, KeyStore
from deploys.mac_keys import with_mac_keys
from deploys.plan import current_plan
from deploys.router_config import current_defaults_forward, desired_router_config
from facts.openwrt import OpenWrtState
from operations import expiry_job, keystore, uci

plan = with_mac_keys(current_plan())
waiting = [p.name for p in plan.peers
           if p.own_key and not p.public_key and p.enabled and not p.expired and p.host]


def _add_late_keys(names: list[str]) -> None:
    store = KeyStore(plan.secrets_dir)
    learned = {}
    for name in names:
        public = store.read(f"peers/{name}.pub")
        if public is not None:
            learned[name] = public
    if not learned:
        logger.warning(f"    [{host.name}] no new Mac key was reported ({', '.join(names)}): "
                       "those peers are added by the next run")
        return
    peers = tuple(dataclasses.replace(p, public_key=learned[p.name].reveal())
                  if p.name in learned else p for p in plan.peers)
    late = dataclasses.replace(plan, peers=peers)
    state = host.get_fact(OpenWrtState)
    uci.converge(
        name=f"OpenWrt: add the keys made on {', '.join(sorted(learned))} in this run",
        state=state,
        **desired_router_config(late, current_defaults_forward(state["config"])),
    )
    expiry_job.converge(
        name="OpenWrt: peer expiry job, with the keys made in this run",
        state=state,
        **job_args(late),
    )
    keystore.commit(name="Key store: record the Macs' new public keys", store=store,
                    changes=KeyChanges(new={f"peers/{n}.pub": k for n, k in learned.items()}))


if waiting:
    python.call(
        name=f"OpenWrt: the keys {', '.join(waiting)} make in this run",
        function=_add_late_keys,
        names=waiting,
    )

"""Record the run's WireGuard keys in the controller's key store, at execution time only.

The plan is built without writing anything (``deploys.keys.resolve``); these two operations
are where the deploy writes keys, so that loading the inventory, ``fact`` runs and ``--dry``
never do:

* :func:`stage` runs before the first operation that uploads a new key (the router's apply, a
  Mac's tunnel config, a phone's config): the new keys are written to ``pending/`` first, so a
  key that a host may already have is never lost, whatever happens next.
* :func:`commit` runs after the router's apply succeeded: pending keys become the stored keys,
  keys they replace and keys of removed peers are archived, automatic addresses recorded. pyinfra
  stops a host at its first failed operation, so a run that fails before archives nothing.

Both take the key store (``deploys.keys.KeyStore``) and the plan's ``key_changes``; they are a
no-op when there is nothing to record. Only names are printed, never a key.

Example::

    keystore.stage(name="Key store: stage new keys", store=store, changes=plan.key_changes)
    uci.converge(...)
    keystore.commit(name="Key store: record keys", store=store, changes=plan.key_changes)
"""

from __future__ import annotations

from typing import Any

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, operation


def _stage(store: Any, changes: Any) -> None:
    store.stage(changes)


def _commit(store: Any, changes: Any) -> None:
    store.commit(changes)
    logger.info(f"    key store {store.root}: {changes.describe()}")


@operation()
def stage(store: Any, changes: Any):
    """Converge: every new key of the run is in ``<secrets_dir>/wireguard/pending/``.

    + store: the controller's key store (``deploys.keys.KeyStore``)
    + changes: ``plan.key_changes`` (``deploys.keys.KeyChanges``)
    """
    if not changes.new or store.staged(changes):
        host.noop("key store: no new keys to stage")
        return
    yield FunctionCommand(_stage, (store, changes), {})


@operation()
def commit(store: Any, changes: Any):
    """Converge: the store holds this run's keys; replaced and removed ones are archived.

    + store: the controller's key store (``deploys.keys.KeyStore``)
    + changes: ``plan.key_changes`` (``deploys.keys.KeyChanges``)
    """
    if not changes:
        host.noop("key store: nothing to record")
        return
    yield FunctionCommand(_commit, (store, changes), {})

"""Router role: converge an OpenWrt router (group ``router``) to the plan.

One read (``facts.openwrt.OpenWrtState``: uci export of network/firewall/dhcp, release,
packages, pending changes) and, only when something differs: one package install, one upload
and one exec (the verified uci batch with commit and targeted reloads), plus a confirmation over
a new connection when network or firewall changed (the rollback guard). A re-run that finds
nothing to change runs that single read and nothing else. Configs and QR codes of peers without
SSH are written on the controller (``peer_output_dir``) when they changed. While a peer on the
router has an ``expires`` date, a small cron job of ours takes it off the live interface at
its cutoff between runs (``operations/expiry_job.py``).

Run it through ``deploys/all.py`` (``--limit router`` to touch only the router)::

    pyinfra inventories/home.py deploys/all.py --limit router
"""

import sys

from pyinfra import host, logger
from pyinfra.api.exceptions import DeployError

from deploys.expiry import describe as describe_peer
from deploys.expiry import job_args
from deploys.hostchecks import router_problems
from deploys.interrupt import exit_nonzero_on_interrupt
from deploys.keys import KeyStore
from deploys.mac_keys import with_mac_keys
from deploys.peers import peer_config
from deploys.plan import current_plan
from deploys.router_config import (
    PACKAGES,
    check_or_fail,
    current_defaults_forward,
    desired_router_config,
)
from facts.openwrt import OpenWrtState
from operations import expiry_job, keystore, openwrt, peer_files, uci
from operations.peer_files import forget_list

exit_nonzero_on_interrupt()  # Ctrl-C: status 130, not pyinfra's 0 (deploys/interrupt.py)
plan = with_mac_keys(current_plan())  # the Macs' own public keys (deploys/mac_keys.py)
rollback_seconds = host.data.get("rollback_seconds", uci.ROLLBACK_SECONDS)
if isinstance(rollback_seconds, bool) or not isinstance(rollback_seconds, int) or not (
    0 <= rollback_seconds <= 3600
):
    print(f"{host.name}: rollback_seconds = {rollback_seconds!r}: expected whole seconds, "
          "0 to 3600 (0 disables the rollback guard)", file=sys.stderr)
    sys.exit(2)
state = host.get_fact(OpenWrtState)
if not state or not state.get("config"):
    raise DeployError(
        f"{host.name}: no `uci` found: this does not look like an OpenWrt router "
        "(check ssh_hostname in the inventory)"
    )
# (with foreign uncommitted changes the export shows them and uci.converge stops the run)
problems = [] if state.get("pending") else router_problems(
    host.name, plan, state["config"], host.data.get("ssh_hostname"))
if problems:  # stop this host before any change
    raise DeployError("inventory does not fit this router:\n" + "\n".join(
        f"  - {p}" for p in problems))

# Peers that are off (disabled or past their `expires` date) or that will expire: said every run.
for p in plan.peers:
    if not p.enabled or p.expires is not None:
        line = describe_peer(p.name, p.expires, p.enabled)
        (logger.warning if p.expired else logger.info)(f"    [{host.name}] {line}")

openwrt.packages(
    name="OpenWrt: WireGuard packages",
    packages=PACKAGES,
    state=state,
)

# The firewall proof on the config as it will be after this run: nothing is staged or
# uploaded unless every invariant and policy test holds (firewall/proof.py).
desired = desired_router_config(plan, current_defaults_forward(state["config"]))
check_or_fail(plan, state, desired, host.name)

# New keys are kept on the controller (pending) before they leave it; recorded after the apply.
keys = KeyStore(plan.secrets_dir)
keystore.stage(name="Key store: keep new keys before upload", store=keys,
               changes=plan.key_changes)

uci.converge(
    name="OpenWrt: WireGuard, DMZ, firewall (uci)",
    state=state,
    rollback_seconds=rollback_seconds,
    **desired,
)

# Peers with an `expires` date leave the live interface at their cutoff even when no run
# happens: a cron job of ours on the router (operations/expiry_job.py); none without such peers.
expiry_job.converge(
    name="OpenWrt: peer expiry job (cron)",
    state=state,
    **job_args(plan),
)

# Devices without SSH (phones, tablets): their configs and QR codes, on the controller.
# `--data forget_peer_files=alice_phone` deletes the controller's copy once it is imported.
phone_configs = {
    p.name: peer_config(plan, p)
    for p in plan.enabled_peers
    if p.host is None and p.private_key is not None
}
forget = forget_list(host.data.get("forget_peer_files"), phone_configs)
peer_files.write(
    name="Peers without SSH: WireGuard configs and QR codes",
    configs=phone_configs,
    directory=plan.peer_output_dir,
    forget=forget,
)

# Only now, after the router took the new state: rotated/removed peers' keys are archived.
keystore.commit(name="Key store: record this run's keys", store=keys, changes=plan.key_changes)

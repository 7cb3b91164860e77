"""Router role: converge an OpenWrt router (group ``router``) to the plan.

One read (``facts.openwrt.OpenWrtState``: uci export of network/firewall/dhcp, release,
packages, pending changes) and, only when something differs: one package install, one upload
and one exec (the verified uci batch with commit and targeted reloads), plus a confirmation over
a new connection when network or firewall changed (the rollback guard). A re-run that finds
nothing to change runs that single read and nothing else. Configs and QR codes of peers without
SSH are written on the controller (``peer_output_dir``) when they changed.

Run it through ``deploys/all.py`` (``--limit router`` to touch only the router)::

    pyinfra inventories/home.py deploys/all.py --limit router
"""

import sys

from pyinfra import host
from pyinfra.api.exceptions import DeployError

from deploys.interrupt import exit_nonzero_on_interrupt
from deploys.peers import peer_config
from deploys.plan import current_plan
from deploys.router_config import PACKAGES, current_defaults_forward, desired_router_config
from facts.openwrt import OpenWrtState
from operations import openwrt, peer_files, uci

exit_nonzero_on_interrupt()  # Ctrl-C: status 130, not pyinfra's 0 (deploys/interrupt.py)
plan = current_plan()
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

openwrt.packages(
    name="OpenWrt: WireGuard packages",
    packages=PACKAGES,
    state=state,
)

uci.converge(
    name="OpenWrt: WireGuard, DMZ, firewall (uci)",
    state=state,
    rollback_seconds=rollback_seconds,
    **desired_router_config(plan, current_defaults_forward(state["config"])),
)

# Devices without SSH (phones, tablets): their configs and QR codes, on the controller.
peer_files.write(
    name="Peers without SSH: WireGuard configs and QR codes",
    configs={
        p.name: peer_config(plan, p)
        for p in plan.enabled_peers
        if p.host is None and p.private_key is not None
    },
    directory=plan.peer_output_dir,
)

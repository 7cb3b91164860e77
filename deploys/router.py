"""Router role: converge an OpenWrt router (group ``router``) to the plan.

One read (``facts.openwrt.OpenWrtState``: uci export of network/firewall/dhcp, release,
packages, pending changes) and, only when something differs: one package install, one upload
and one exec (the verified uci batch with commit and targeted reloads). A re-run that finds
nothing to change runs that single read and nothing else.

Run it through ``deploys/all.py`` (``--limit router`` to touch only the router)::

    pyinfra inventories/home.py deploys/all.py --limit router
"""

from pyinfra import host
from pyinfra.api.exceptions import DeployError

from deploys.plan import current_plan
from deploys.router_config import PACKAGES, current_defaults_forward, desired_router_config
from facts.openwrt import OpenWrtState
from operations import openwrt, uci

plan = current_plan()
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
    **desired_router_config(plan, current_defaults_forward(state["config"])),
)

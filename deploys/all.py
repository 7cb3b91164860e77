"""Converge every host of the inventory to the plan, by role (group).

    pyinfra inventories/home.py deploys/all.py                  # everything
    pyinfra inventories/home.py deploys/all.py --limit router   # only the router
    pyinfra inventories/home.py deploys/all.py --dry            # preview, change nothing

The plan (inventory data -> validated object, keys) is checked before any host is contacted
by the inventory file (``deploys.plan.validate_before_connect``); it is built again here (from
cache) for inventories that do not register that check.
"""

from pyinfra import host, local

from deploys.plan import current_plan

current_plan()

# configure_host = False: the host is in the inventory for its data (a VPN peer, the server's
# address), but this run does not touch it.
if host.data.get("configure_host", True):
    if "router" in host.groups:
        local.include("deploys/router.py")
    if "server" in host.groups:
        local.include("deploys/server.py")
    if "clients" in host.groups:
        local.include("deploys/client.py")
    if "router" in host.groups:  # after the clients: keys that fresh Macs made in this run
        local.include("deploys/router_late.py")

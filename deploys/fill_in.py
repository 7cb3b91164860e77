"""Blanks of the example inventory: a run stops, contacting nothing, until they are filled in.

``inventories/home.py`` ships with ``FILL_IN("what to put here")`` where only the user knows the
value (the router's address, the Macs' names and logins, the public DNS name). Run unedited, it
must not guess someone else's network; ``stop_until_filled_in()`` (called from the inventory
file) hooks ``State.init`` like ``deploys.plan.validate_before_connect`` and, before the plan is
checked and before any host is contacted, prints one line per blank and exits with status 2::

    --> inventories/home.py is the example network; fill in what only you know:
      - router: ssh_hostname: the router's address on your LAN, e.g. 192.168.1.1
      - group_data/all.py: vpn_endpoint: the public DNS name or IP your peers dial
    --> Nothing was changed: no host was contacted.
"""

from __future__ import annotations

import sys
from typing import Any


class FillIn:
    """A blank in the inventory: ``what`` tells the user what to put there."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"FILL_IN({self.what!r})"

    def __copy__(self) -> FillIn:  # pyinfra copies host data on every read
        return self


FILL_IN = FillIn


def blanks(inventory: Any) -> list[str]:
    """One line per blank a host of ``inventory`` really sees (host data wins over groups):
    ``<host or group_data/<group>.py>: <field>: <what>``, in inventory order."""
    found: dict[tuple[str, str], str] = {}
    for host in inventory:
        data = host.data.dict()
        own = inventory.get_host_data(host.name)
        for key, value in data.items():
            if not isinstance(value, FillIn):
                continue
            if key in own:
                where = host.name
            else:
                group = next((g for g in reversed(host.groups)
                              if key in inventory.get_group_data(g)), "all")
                where = f"group_data/{group}.py"
            found.setdefault((where, key), value.what)
    return [f"{where}: {key}: {what}" for (where, key), what in found.items()]


def stop_until_filled_in(name: str = "inventories/home.py") -> None:
    """Exit with status 2 (nothing contacted) while the inventory still has blanks; call from
    the inventory file, after ``validate_before_connect()`` (this check then runs first)."""
    from pyinfra.context import ctx_state

    if not ctx_state.isset():
        return
    state = ctx_state.get()
    if getattr(state, "_fill_in_check_installed", False):
        return
    previous_init = state.init

    def init(inventory, *args, **kwargs):
        lines = blanks(inventory)
        if lines:
            out = [f"--> {name} is the example network; fill in what only you know:"]
            out += [f"  - {line}" for line in lines]
            out.append("--> Nothing was changed: no host was contacted.")
            print("\n".join(out), file=sys.stderr, flush=True)
            raise SystemExit(2)
        previous_init(inventory, *args, **kwargs)

    state.init = init
    state._fill_in_check_installed = True

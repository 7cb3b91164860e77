"""OpenWrt package operations that work with opkg (23.05, 24.10) and apk (25.x).

pyinfra's ``opkg.packages`` runs ``opkg update`` on every run unless told otherwise, and its apk
fact drops real OpenWrt 25.x packages; this operation is a no-op when everything is installed
and otherwise refreshes the package lists and installs in **one** exec.
"""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, QuoteString, StringCommand, operation

from facts.openwrt import OpenWrtPackages

#: Refresh the lists (they live in RAM on OpenWrt) and install, in one command.
INSTALL = {
    "opkg": "opkg update >/dev/null && opkg install",
    "apk": "apk update >/dev/null && apk add",
}


@operation()
def packages(packages: list[str], state: dict[str, Any] | None = None):
    """Install OpenWrt packages that are missing (never removes, never upgrades).

    + packages: package names, e.g. ``["kmod-wireguard", "wireguard-tools"]``
    + state: the ``facts.openwrt.OpenWrtState`` already read by the deploy (saves an exec);
      read here (``OpenWrtState``'s package part) when not given

    **Example:**

    .. code:: python

        openwrt.packages(name="WireGuard", packages=["kmod-wireguard", "wireguard-tools"])
    """
    if state is not None:
        manager, installed = state.get("package_manager"), state.get("packages", {})
    else:
        manager, installed = "detect", host.get_fact(OpenWrtPackages)
    missing = [p for p in packages if p not in installed]
    if not missing:
        host.noop(f"packages already installed: {', '.join(packages)}")
        return
    names = [QuoteString(p) for p in missing]
    if manager == "detect":  # decide on the router, still one exec
        yield StringCommand(
            "if command -v apk >/dev/null 2>&1; then",
            INSTALL["apk"],
            *names,
            ";",
            "else",
            INSTALL["opkg"],
            *names,
            "; fi",
        )
        return
    if manager not in INSTALL:
        raise OperationError(f"no opkg or apk on this router; cannot install {missing}")
    yield StringCommand(INSTALL[manager], *names)

"""TEST STAND-IN for OpenWrt's firewall4 (``fw4``, driven by ``/etc/init.d/firewall``), for the
lab router. NOT fw4: it builds the project's model of fw4 (the ``firewall`` package) from
``uci -n export firewall`` + ``network`` and loads ``render_nft(...)`` -- whose rule lines equal
real fw4 23.05 output for the fixture configs -- into the router's namespace with the host's
real ``nft -f``: one atomic replace of ``table inet fw4`` (a ruleset that does not load leaves the
old one in place, as with fw4). NAT (``masq``), MSS clamping and every filter chain are included.

Zone devices and runtime addresses come from the *live* interfaces, as fw4 asks ubus: the
netifd stand-in's interface -> device map (interfaces that are down contribute no device) and
addresses (NAT reflection of port forwards needs the WAN address).

Actions: ``start``/``boot``/``reload``/``restart`` (load), ``stop`` (delete the table),
``print`` (the ruleset, like ``fw4 print``), ``hotplug`` (reload only when running and the
device map changed, like ``/etc/hotplug.d/iface/20-firewall``).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from labcommon import (  # noqa: E402
    NFT,
    REPO,
    clear_state,
    load_state,
    log,
    main_guard,
    run,
    save_state,
    uci_export,
)

sys.path.insert(0, REPO)

RULESET = "/var/run/lab-standin/fw4.nft"


def devices() -> dict[str, str]:
    """interface -> device for every configured interface ("" when it is not up)."""
    live = {n: r["device"] for n, r in load_state("netifd").get("interfaces", {}).items()
            if r.get("up") and r.get("device")}
    names = [s["name"] for s in uci_export("network") if s["type"] == "interface" and s["name"]]
    return {n: live.get(n, "") for n in names}


def addresses() -> dict[str, list[str]]:
    """interface -> its runtime addresses (CIDR; DHCP leases included), for NAT reflection."""
    return {n: list(r.get("addresses") or []) for n, r in
            load_state("netifd").get("interfaces", {}).items() if r.get("up")}


def ruleset(devmap: dict[str, str]) -> str:
    from firewall import build, render_nft

    fw = build({"network": uci_export("network"), "firewall": uci_export("firewall")}, devmap,
               addresses=addresses())
    for finding in fw.warnings:
        log(f"warning: {finding}")
    try:
        return render_nft(fw)
    except NotImplementedError as exc:
        raise RuntimeError(f"cannot render this config: {exc}") from None


def load() -> None:
    devmap = devices()
    text = ruleset(devmap)
    os.makedirs(os.path.dirname(RULESET), mode=0o700, exist_ok=True)
    with open(RULESET, "w", encoding="utf-8") as f:
        f.write(text)
    os.makedirs("/etc/nftables.d", exist_ok=True)
    result = run([NFT, "-f", RULESET], check=False)
    if result.returncode != 0:
        raise RuntimeError(f"nft refused the ruleset, the old one stays:\n{result.stderr}")
    save_state("firewall", {"devices": devmap})


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "help"
    if action in ("start", "boot", "reload", "restart"):
        load()
    elif action == "hotplug":
        state = load_state("firewall")
        if state and state.get("devices") != devices():
            log("hotplug: interface devices changed, reloading the firewall")
            load()
    elif action == "stop":
        run([NFT, "delete", "table", "inet", "fw4"], check=False)
        clear_state("firewall")
    elif action == "print":
        sys.stdout.write(ruleset(devices()))
    else:
        print("usage: firewall.py start|boot|reload|restart|stop|print|hotplug",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    main_guard(main)

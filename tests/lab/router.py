"""The lab's router: the harness's fake OpenWrt router (``tests/harness/openwrt_host.py``)
living in the lab's ``router`` network namespace, with stand-ins whose reloads are real.

:class:`LabRouter` subclasses :class:`~tests.harness.openwrt_host.OpenWrtHost` and changes three
things, all in files of its own:

* **Its network namespace is the lab's** (``/run/netns/<prefix>router``, made by
  :class:`tests.lab.topology.Topology`) instead of a fresh empty one: the harness's ``netns=``
  parameter. Nothing else of the harness changes (chroot, BusyBox ash, counted execs, scp).
* **Host tools are mounted into the root** (read-only, like the harness's Python): iproute2's
  ``ip``, ``wg``, ``wireguard-go`` and ``nft`` under ``/usr/lib/test-standin/host/`` (``wg``
  and ``nft`` also on ``PATH``, as on a router with wireguard-tools), ``/dev/net/tun`` for
  wireguard-go, and the repository's ``firewall/`` and ``facts/`` under
  ``/usr/lib/test-standin/repo/`` (the firewall stand-in imports the fw4 model; the stand-ins
  parse ``uci export`` with ``facts/uci_export.py``, the product's own parser). The stand-ins
  of ``tests/standins/openwrt-lab/`` replace ``/etc/init.d/{network,firewall,dnsmasq}`` and
  ``/sbin/ifup`` and add ``/etc/init.d/{dropbear,uhttpd}``; being inside the router's mount, PID
  and network namespaces, they configure the lab's router namespace directly: no helper outside
  the router is needed.

* **Its SSH is on TCP 22 of the router's own network**, as dropbear's on a router: a forwarder
  (``tests/harness/forward.py``) listens on ``0.0.0.0:22`` inside the router's namespace and
  carries each connection to the harness's sshd on the host's loopback (``port``), which the
  lab's controller never uses. The lab reaches it from its LAN host (``tests/lab/lab.py``), so an
  address, bridge port or firewall rule of the router decides whether the controller gets in.

Why mounts rather than a helper that ``nsenter``s from outside: the stand-ins then run exactly
where OpenWrt's own programs would (same namespaces, same ``/var/run``, processes such as
``wireguard-go`` die with the router), and nothing listens on the host for the router to call.

:meth:`LabRouter.boot` runs the init scripts as a router's boot would (network, firewall,
dnsmasq, dropbear, uhttpd), uncounted, and clears the events log.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from tests.harness.forward import Forwarder
from tests.harness.openwrt_host import (
    HOST_MOUNT_DIR,
    REPO,
    STANDINS_DIR,
    HarnessError,
    OpenWrtHost,
    _host_mounts,
    _ldd_paths,
    _tool,
)

LAB_STANDINS_DIR = STANDINS_DIR / "openwrt-lab"
HOST_TOOLS = ("ip", "wg", "wireguard-go", "nft")
#: the router's SSH port in its own network (dropbear's)
SSH_PORT = 22
#: init scripts run at boot, in order
BOOT_SERVICES = ("network", "firewall", "dnsmasq", "dropbear", "uhttpd")
_PROTECTED = {"/", "/bin", "/sbin", "/lib", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/etc",
              "/tmp", "/var", "/root", "/dev", "/proc"}


def lab_standins() -> dict[str, Path]:
    """Router path -> stand-in file of ``tests/standins/openwrt-lab``."""
    d = LAB_STANDINS_DIR
    return {
        "/etc/init.d/network": d / "init.d" / "network",
        "/etc/init.d/firewall": d / "init.d" / "firewall",
        "/etc/init.d/dnsmasq": d / "init.d" / "dnsmasq",
        "/etc/init.d/dropbear": d / "init.d" / "dropbear",
        "/etc/init.d/uhttpd": d / "init.d" / "uhttpd",
        "/sbin/ifup": d / "ifup",
        "/etc/lab/lib.sh": d / "lib.sh",
    }


def _q(value: object) -> str:
    return shlex.quote(str(value))


class LabRouter(OpenWrtHost):
    """A fake OpenWrt router in the lab's router namespace (see the module docstring).

    ``netns`` is the lab's namespace file (``/run/netns/<prefix>router``); ``wan_lease`` is
    what the WAN's "DHCP server" hands out (``{"ip": "203.0.113.2/24", "router": ...}``).
    Other arguments are :class:`OpenWrtHost`'s.
    """

    def __init__(self, tmp_path, netns: str, wan_lease: dict[str, str], **kwargs) -> None:
        standins = {**lab_standins(), **(kwargs.pop("standins", None) or {})}
        super().__init__(tmp_path, standins=standins, netns=netns, **kwargs)
        self.lab_netns = netns
        self.wan_lease = dict(wan_lease)
        self._ssh22: Forwarder | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> LabRouter:
        """Start the router, then its SSH on ``:22`` inside its network namespace."""
        super().start()
        try:
            self._ssh22 = Forwarder((self.lab_netns, "0.0.0.0", SSH_PORT),
                                    (None, "127.0.0.1", self.port),
                                    self.base / "ssh22.ready").start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._ssh22 is not None:
            self._ssh22.stop()
            self._ssh22 = None
        super().stop()

    # ---------------------------------------------------------------- building

    def _build_root(self) -> None:
        super()._build_root()
        r = self.root
        _, python_in_root = _host_mounts()
        (r / "etc" / "lab" / "dhcp").mkdir(parents=True, exist_ok=True)
        self._write("etc/lab/env", "# written by tests/lab/router.py (TEST ONLY)\n"
                    f"LAB_PYTHON={_q(python_in_root)}\n"
                    f"LAB_STANDINS={HOST_MOUNT_DIR}/standins/{LAB_STANDINS_DIR.name}\n")
        self._write("etc/lab/dhcp/wan", "".join(f"{k}={v}\n" for k, v in self.wan_lease.items()))
        (r / "etc" / "nftables.d").mkdir(parents=True, exist_ok=True)
        for link, target in (("usr/sbin/nft", "nft"), ("usr/bin/wg", "wg")):
            path = r / link
            if path.is_symlink() or path.exists():
                path.unlink()
            path.symlink_to(f"{HOST_MOUNT_DIR}/host/{target}")
        for link, target in (("S50dropbear", "dropbear"), ("S50uhttpd", "uhttpd")):
            (r / "etc" / "rc.d" / link).symlink_to(f"../init.d/{target}")

    def _extra_mounts(self) -> list[tuple[str, Path]]:
        """(host source, target in the root) for the host tools, their libraries, tun, repo."""
        r = self.root
        have = {dst for _, dst in _host_mounts()[0]}
        mounts: list[tuple[str, Path]] = []
        for name in HOST_TOOLS:
            path = _tool(name)
            if path is None:
                raise HarnessError(f"{name} not found (needs iproute2, wireguard-tools, "
                                   "wireguard-go, nftables)")
            real = os.path.realpath(path)
            mounts.append((real, r / HOST_MOUNT_DIR.lstrip("/") / "host" / name))
            for lib in _ldd_paths(real):
                for d in {os.path.dirname(lib), os.path.dirname(os.path.realpath(lib))}:
                    if d in have:
                        continue
                    if d in _PROTECTED:
                        target = os.path.join(d, os.path.basename(lib))
                        if target not in have:
                            have.add(target)
                            mounts.append((os.path.realpath(lib), r / target.lstrip("/")))
                    else:
                        have.add(d)
                        mounts.append((os.path.realpath(d), r / d.lstrip("/")))
        mounts.append(("/dev/net/tun", r / "dev" / "net" / "tun"))
        for package in ("firewall", "facts"):
            mounts.append((str(REPO / package), r / HOST_MOUNT_DIR.lstrip("/") / "repo" / package))
        return mounts

    # ---------------------------------------------------------------- lab

    def boot(self) -> None:
        """Start the router's services as at boot (uncounted), then clear the events log."""
        script = "; ".join(f"/etc/init.d/{s} boot || exit 1" for s in BOOT_SERVICES)
        result = self.run(script, timeout=60)
        if result.returncode != 0:
            raise HarnessError(f"router boot failed: {result.stdout}{result.stderr}\n"
                               + self.lab_log())
        self.clear_events()

    def lab_log(self) -> str:
        """The lab stand-ins' own log (every ip/wg/nft command they ran)."""
        path = self.root / "tmp" / "lab-standin.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def live_devices(self) -> dict[str, str]:
        import json

        out = self.run("/etc/init.d/network status").stdout
        return json.loads(out or "{}")

"""A controller that reaches the fake router only through the router's own network (TEST ONLY).

:class:`LanController` plugs a new network namespace (the controller) into the fake router's
port ``lan1`` with a veth pair (controller ``192.168.1.100/24``, router ``192.168.1.1/24``) and
serves the router's SSH on ``0.0.0.0:22`` *inside the router's network namespace*
(``forward.py``; the harness's sshd itself stays on the host's loopback). pyinfra is run
inside the controller namespace (``ip netns exec``), so when a deploy takes the LAN address
away from ``lan1`` (see ``tests/standins/openwrt/lockout/network``) the controller is really
locked out, and only the router's rollback guard can let it back in.

Additive to :mod:`tests.harness.openwrt_host`: works with any started :class:`OpenWrtHost`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.harness.forward import Forwarder
from tests.harness.openwrt_host import REPO, OpenWrtHost, _tool

CONTROLLER_ADDRESS = "192.168.1.100"
ROUTER_LAN_ADDRESS = "192.168.1.1"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


class LanController:
    """See the module docstring. Use as a context manager around a started router."""

    def __init__(self, router: OpenWrtHost, base: Path) -> None:
        self.router = router
        self.base = base
        self.name = f"h6ctl{os.getpid()}"
        self.known_hosts = base / "lan_known_hosts"
        self._sleeper: subprocess.Popen[bytes] | None = None
        self._forwarder: Forwarder | None = None

    def __enter__(self) -> LanController:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        r = self.router
        # a process in the router's network namespace, to name it by PID
        self._sleeper = subprocess.Popen(
            [_tool("nsenter"), "-t", str(r.ns_pid), "-m", "--", _tool("nsenter"),
             f"--net={r.netns_path}", "sleep", "100000"], stdin=subprocess.DEVNULL)
        mine = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{self._sleeper.pid}/ns/net") != mine:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        else:
            raise RuntimeError("could not enter the router's network namespace")
        pid = str(self._sleeper.pid)
        _run("ip", "netns", "del", self.name, check=False)
        _run("ip", "netns", "add", self.name)
        _run("ip", "-n", self.name, "link", "add", "lan0", "type", "veth", "peer", "name",
             "lan1", "netns", pid)
        _run("ip", "-n", self.name, "addr", "add", f"{CONTROLLER_ADDRESS}/24", "dev", "lan0")
        _run("ip", "-n", self.name, "link", "set", "lan0", "up")
        _run("ip", "-n", self.name, "link", "set", "lo", "up")
        _run(_tool("nsenter"), "-t", pid, "-n", "ip", "link", "set", "lan1", "up")
        _run(_tool("nsenter"), "-t", pid, "-n", "ip", "addr", "add",
             f"{ROUTER_LAN_ADDRESS}/24", "dev", "lan1")
        self._forwarder = Forwarder((f"/proc/{pid}/ns/net", "0.0.0.0", 22),
                                    (None, "127.0.0.1", r.port),
                                    self.base / "forwarder.ready").start()
        host_key = r.host_key_path.with_suffix(".pub").read_text().strip()
        self.known_hosts.write_text(f"{ROUTER_LAN_ADDRESS} {host_key}\n")

    def down(self) -> None:
        if self._forwarder is not None:
            self._forwarder.stop()
        if self._sleeper is not None and self._sleeper.poll() is None:
            self._sleeper.kill()
            self._sleeper.wait(timeout=10)
        self._forwarder = self._sleeper = None
        _run("ip", "netns", "del", self.name, check=False)

    def inventory_data(self) -> dict[str, object]:
        """Router host data to reach it from the controller namespace over the LAN."""
        return {"ssh_hostname": ROUTER_LAN_ADDRESS, "ssh_port": 22,
                "ssh_known_hosts_file": str(self.known_hosts)}

    def argv(self, *argv: str) -> list[str]:
        """``argv`` run inside the controller's namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def pyinfra(self, inventory: Path, *args: str, timeout: float = 300
                ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(sys.executable, "-m", "pyinfra", str(inventory), "deploys/all.py",
                         "--limit", "router", *args)
        return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              input="\n", env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})

    def reachable(self) -> bool:
        """Does a TCP connection to the router's SSH (192.168.1.1:22) open from here?"""
        probe = subprocess.run(
            self.argv("timeout", "2", "bash", "-c",
                      f"exec 3<>/dev/tcp/{ROUTER_LAN_ADDRESS}/22 && head -c 4 <&3"),
            capture_output=True, text=True, timeout=30)
        return probe.returncode == 0 and probe.stdout.startswith("SSH-")

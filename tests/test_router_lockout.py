"""A plan that locks the controller out of its only router (issue 10, item 9).

The controller runs in its own network namespace plugged into the router's ``lan1`` and reaches
the router's SSH only at ``192.168.1.1:22`` inside the router's network
(:class:`tests.harness.lockout.LanController`). The network stand-in used here really moves the
LAN address off ``lan1`` when ``lan1`` leaves the LAN bridge, which is what ``dmz_device =
"lan1"`` (the port the admin's own machine is plugged into) asks for. The guard must give the
controller its access back on its own, and the next run must say so and converge."""

from __future__ import annotations

import threading
import time

import pytest

from tests.harness.lockout import LanController
from tests.harness.openwrt_host import OPENWRT_STANDINS_DIR, OpenWrtHost
from tests.harness.router_runs import (
    apply_dir,
    differences,
    output,
    require_router,
    snapshot,
    write_inventory,
)

pytestmark = pytest.mark.ssh

require_router()

WINDOW = 5  # rollback_seconds of these runs


def test_lockout_is_undone_by_the_guard_and_reported_by_the_next_run(tmp_path):
    with OpenWrtHost(tmp_path, packages=("base-files", "busybox", "dropbear", "firewall4",
                                         "libc", "uci", "kmod-wireguard", "wireguard-tools"),
                     standins={"/etc/init.d/network":
                               OPENWRT_STANDINS_DIR / "lockout" / "network"}) as router, \
            LanController(router, tmp_path) as controller:
        secrets = tmp_path / "secrets"
        assert controller.reachable()
        factory = snapshot(router)

        # 1. the admin's own port becomes the DMZ: the apply cuts the controller off
        bad = write_inventory(tmp_path / "bad.py", router, secrets, network={"dmz_device": "lan1"},
                              router_data={**controller.inventory_data(),
                                           "rollback_seconds": WINDOW})
        seen_cut = threading.Event()
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if "wg0" in router.read_config("network") and not controller.reachable():
                    seen_cut.set()
                time.sleep(0.3)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.monotonic()
        locked_out = controller.pyinfra(bad, "-y")
        done.set()
        watcher.join(timeout=10)
        (tmp_path / "locked_out.log").write_text(output(locked_out))
        assert locked_out.returncode != 0, output(locked_out)
        assert seen_cut.is_set(), "the plan never cut the controller off: nothing was tested"
        assert "armed" in output(locked_out)
        # the confirmation never gets through in time: the run says the guard restored the
        # old configuration (or that it could not reconnect / the apply never answered)
        said = output(locked_out)
        assert ("too late, the guard of apply" in said or "cannot reconnect" in said
                or "timed out" in said.lower()), said
        assert time.monotonic() - started < WINDOW + 60

        # 2. the guard restored the previous configuration, and with it the access
        assert any(n.startswith("rolled-back-") for n in apply_dir(router))
        assert snapshot(router) == factory
        assert controller.reachable()

        # 3. the next run (inventory fixed) says so prominently and converges
        good = write_inventory(tmp_path / "good.py", router, secrets,
                               router_data={**controller.inventory_data(),
                                            "rollback_seconds": WINDOW})
        run = controller.pyinfra(good, "-y")
        assert run.returncode == 0, output(run)
        assert "ROLLED BACK: apply" in output(run) and "(timer)" in output(run)
        assert "confirmed over a new SSH connection" in output(run)
        time.sleep(WINDOW + 2)
        assert differences(router, secrets) == []
        assert controller.reachable()
        again = controller.pyinfra(good)
        assert again.returncode == 0 and "No changes" in output(again), output(again)

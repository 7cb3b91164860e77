"""Interrupting the router deploy at every point (issue 10, item 8): the controller's pyinfra
is killed with SIGINT, SIGTERM or SIGKILL during the state read, mid-upload, mid-batch,
between two package commits, between the commit and the reloads, between the apply and its
confirmation, and during the confirmation; also between two reloads and while a failed reload
waits for its retry. Then it is run again: it must converge, and the
router must still be in the desired state after the guard window has passed (no late revert),
with nothing of ours left over. Stand-in delays (``/tmp/standin-faults``) hold each point
open long enough to land the signal there; the window is the router's ``rollback_seconds``."""

from __future__ import annotations

import signal
import time

import pytest

from tests.harness.openwrt_host import OpenWrtHost, _is_scp_upload
from tests.harness.router_runs import (
    apply_dir,
    differences,
    interrupt_when,
    output,
    pyinfra,
    pyinfra_background,
    require_router,
    set_faults,
    shared_save_dir,
    write_inventory,
)

pytestmark = pytest.mark.ssh

require_router()

WINDOW = 3  # rollback_seconds of these runs
MARGIN = 2.5


def _read_started(r: OpenWrtHost) -> bool:
    return any("##pyinfra-openwrt##" in c for c in r.commands())


def _uploading(r: OpenWrtHost) -> bool:
    return any(_is_scp_upload(c) for c in r.commands())


def _applying(r: OpenWrtHost) -> bool:
    return any("sh /tmp/pyinfra-apply/apply-" in c and not _is_scp_upload(c)
               for c in r.commands())


def _between_commits(r: OpenWrtHost) -> bool:  # network committed, firewall not yet
    return _applying(r) and "wg0" in r.read_config("network") and \
        "vpn_ai" not in r.read_config("firewall")


def _committed_not_reloaded(r: OpenWrtHost) -> bool:
    return "wg0" in r.read_config("network") and any(
        n.startswith("notlive-") for n in apply_dir(r))


def _between_reloads(r: OpenWrtHost) -> bool:  # network reloaded, firewall not yet
    events = r.events()
    return "network reload" in events and "firewall reload" not in events


def _retrying_reload(r: OpenWrtHost) -> bool:  # the first firewall reload failed
    return (r.root / "tmp" / "standin-faults.firewall-reload.count").exists()


def _applied_not_confirmed(r: OpenWrtHost) -> bool:
    names = apply_dir(r)
    return any(n.startswith("guard-") for n in names) and not any(
        n.startswith(("apply-", "lock", "notlive-")) for n in names)


def _confirming(r: OpenWrtHost) -> bool:
    return any("confirmed" in c and "lock" in c for c in r.commands())


#: point -> (stand-in faults holding it open, trigger, seconds to wait after the trigger)
POINTS = {
    "state-read": (["uci-export delay 0.7"], _read_started, 0.5),
    "mid-upload": ([], _uploading, 0.0),
    "mid-batch": (["uci-batch delay 3"], _applying, 0.8),
    "between-commits": (["uci-commit-firewall delay 3"], _between_commits, 0.2),
    "commit-to-reload": (["network-reload delay 3"], _committed_not_reloaded, 0.2),
    "between-reloads": (["firewall-reload delay 3"], _between_reloads, 0.2),
    "reload-retry": (["firewall-reload fail 1"], _retrying_reload, 0.0),
    "apply-to-confirm": ([], _applied_not_confirmed, 0.0),
    "confirming": ([], _confirming, 0.0),
}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


@pytest.mark.parametrize("signame", list(SIGNALS))
@pytest.mark.parametrize("point", list(POINTS))
def test_interrupted_deploy_converges_on_the_next_run(tmp_path, point, signame):
    faults, trigger, after = POINTS[point]
    with OpenWrtHost(tmp_path, packages=("base-files", "busybox", "dropbear", "firewall4",
                                         "libc", "uci", "kmod-wireguard",
                                         "wireguard-tools")) as router:
        secrets = tmp_path / "secrets"
        inventory = write_inventory(tmp_path / "inventory.py", router, secrets,
                                    router_data={"rollback_seconds": WINDOW})
        set_faults(router, faults)
        router.reset_counts()
        proc = pyinfra_background(inventory, "-y", log=tmp_path / "killed.log")
        code = interrupt_when(proc, lambda: trigger(router), SIGNALS[signame],
                              tmp_path / "killed.log", after)
        log = (tmp_path / "killed.log").read_text(errors="replace")
        assert code != 0, f"an interrupted run must not exit 0:\n{log}"
        set_faults(router, [])

        # run again (twice at most: a run may meet an apply the killed run left finishing)
        runs = [pyinfra(inventory, "-y")]
        if runs[-1].returncode != 0:
            runs.append(pyinfra(inventory, "-y"))
        assert runs[-1].returncode == 0, "\n".join(output(r) for r in runs)
        assert differences(router, secrets) == []

        # past the guard window: no late revert, nothing of ours left, nothing pending
        time.sleep(WINDOW + MARGIN)
        assert differences(router, secrets) == [], "the router reverted after the last run"
        assert not [n for n in apply_dir(router) if n.startswith("rolled-back")]
        again = pyinfra(inventory)
        assert again.returncode == 0 and "No changes" in output(again), output(again)
        assert apply_dir(router) == [] and shared_save_dir(router) == []

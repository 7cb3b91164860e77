"""Safe apply on the only router (issue 10): guards with an identity, every run settling the
past (armed guards, rollbacks, committed-but-not-live changes, our own leftovers), races
between a guard's timer and a later apply, all-or-nothing commits and reloads, and no key on
any command line. Real OpenSSH, BusyBox ash, the uci stand-in with fault injection
(``/tmp/standin-faults``); the guard window comes from the inventory (``rollback_seconds``)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.harness.argv_sampler import ArgvSampler
from tests.harness.openwrt_host import OpenWrtHost
from tests.harness.router_runs import (
    apply_dir,
    differences,
    fact,
    hand_apply,
    hand_apply_script,
    keys_recorded,
    output,
    pyinfra,
    require_router,
    secrets_in,
    set_faults,
    shared_save_dir,
    snapshot,
    wait_for,
    write_inventory,
)

pytestmark = pytest.mark.ssh

require_router()

#: The guard window of these tests (seconds), passed as the router's ``rollback_seconds``.
WINDOW = 3
#: How long after a window we look again for a late revert.
MARGIN = 2.5
T1 = "1111111111111111"
#: The window of a guard armed by hand before a run: longer than starting pyinfra takes on a
#: loaded machine, so that the run meets the guard still armed.
T1_WINDOW = 12


@pytest.fixture
def router(tmp_path):
    with OpenWrtHost(tmp_path, packages=("base-files", "busybox", "dropbear", "firewall4",
                                         "libc", "uci", "kmod-wireguard",
                                         "wireguard-tools")) as host:
        yield host


@pytest.fixture
def secrets(tmp_path):
    return tmp_path / "secrets"


@pytest.fixture
def inventory(tmp_path, router, secrets):
    return write_inventory(tmp_path / "inventory.py", router, secrets,
                           router_data={"rollback_seconds": WINDOW})


def converged_and_quiet(router, secrets, inventory, **kw) -> None:
    """The router matches, nothing of ours is left, and a re-run says "No changes"."""
    assert differences(router, secrets, **kw) == []
    assert apply_dir(router) == []
    assert shared_save_dir(router) == []
    again = pyinfra(inventory)
    assert again.returncode == 0, output(again)
    assert "No changes" in output(again), output(again)


def test_keys_never_on_a_command_line_or_in_an_environment(router, secrets, inventory, tmp_path):
    # slow the router down a little so that every step is sampled many times
    set_faults(router, ["uci-batch delay 1", "uci-commit-network delay 0.5"])
    keys_recorded(secrets)  # the keys the run will use exist before it starts
    keys = secrets_in(secrets)
    assert len(keys) >= 5
    with ArgvSampler() as sampler:
        first = pyinfra(inventory, "-y")  # the apply (the keys travel in the uploaded file)
        second = pyinfra(inventory, "-y")  # a state read with the keys on the router
        read = fact(inventory)
    assert first.returncode == 0 and second.returncode == 0, output(first) + output(second)
    assert read.returncode == 0, read.stderr
    # not vacuous: the sampler saw the apply script, uci staging our changes, and the reads
    assert sampler.saw("/tmp/pyinfra-apply/apply-")
    assert sampler.saw(" batch") and sampler.saw(" export ")
    assert sampler.stats()["samples"] > 20
    assert sampler.find(keys) == []
    # the keys were on the router all along (only never on a command line)
    assert any(k in router.read_config("network") for k in keys)


def test_bad_rollback_seconds_is_refused_before_anything(router, secrets, tmp_path):
    factory = snapshot(router)
    inventory = write_inventory(tmp_path / "bad.py", router, secrets,
                                router_data={"rollback_seconds": "soon"})
    run = pyinfra(inventory, "-y")
    assert run.returncode == 2, output(run)
    # refused by the schema before any host is contacted (deploys/schema/network.py)
    assert "router: rollback_seconds: 'soon' (expected a whole number from 0 to 3600)" \
        in run.stderr
    assert "Nothing was changed: no host was contacted." in run.stderr
    assert "Traceback" not in output(run)
    assert snapshot(router) == factory and apply_dir(router) == []


def test_unconfirmed_guard_is_confirmed_by_the_next_run_not_reverted(router, secrets, inventory):
    factory = snapshot(router)
    applied = hand_apply(router, secrets, T1_WINDOW, T1)  # the controller died before confirming
    armed_at = time.monotonic()
    assert applied.returncode == 0, applied.stderr
    assert f"guard-{T1}" in apply_dir(router)
    run = pyinfra(inventory, "-y")
    assert run.returncode == 0, output(run)
    assert f"rollback guard {T1} is still armed" in output(run)
    assert "confirming" in output(run)
    assert f"guard {T1} confirmed" in run.stdout or f"guard-{T1}" not in apply_dir(router)
    # the old job wakes up: it must not restore anything
    time.sleep(max(0.0, armed_at + T1_WINDOW + MARGIN - time.monotonic()))
    assert snapshot(router) != factory
    assert not [n for n in apply_dir(router) if n.startswith("rolled-back")]
    converged_and_quiet(router, secrets, inventory)


def test_rollback_is_reported_once_and_converged_again(router, secrets, inventory):
    factory = snapshot(router)
    assert hand_apply(router, secrets, 1, T1).returncode == 0
    assert wait_for(lambda: f"rolled-back-{T1}" in apply_dir(router), 10)
    assert snapshot(router) == factory  # the guard restored the factory config
    run = pyinfra(inventory, "-y")
    assert run.returncode == 0, output(run)
    text = output(run)
    assert f"ROLLED BACK: apply {T1}" in text and "(timer)" in text
    assert "restored: network, firewall, dhcp" in text
    assert "armed" in text and "confirmed over a new SSH connection" in text
    time.sleep(WINDOW + MARGIN)
    assert "ROLLED BACK" not in output(pyinfra(inventory, "-y"))  # consumed exactly once
    converged_and_quiet(router, secrets, inventory)


def test_race_guard_timer_fires_while_a_later_apply_runs(router, secrets, inventory, tmp_path):
    """A guard (T1) whose timer fires while a later apply holds the lock: the later apply
    settled T1 first, so the job finds nothing armed and restores nothing."""
    assert hand_apply(router, secrets, T1_WINDOW, T1).returncode == 0
    armed_at = time.monotonic()
    peers = [{"name": "alice_phone"}, {"name": "bob_phone"}]  # the later run adds a change
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets, peers=peers,
                                router_data={"rollback_seconds": WINDOW})
    set_faults(router, [f"uci-batch delay {T1_WINDOW}"])  # the later apply holds the lock
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(run=pyinfra(inventory, "-y")))
    runner.start()
    # the timer of T1 fires while the later apply is still running (its lock is held)
    fire = armed_at + T1_WINDOW + 0.5
    time.sleep(max(0.0, fire - time.monotonic()))
    assert router.run("test -d /tmp/pyinfra-apply/lock").returncode == 0, "race not reached"
    runner.join(timeout=120)
    run = result["run"]
    assert run.returncode == 0, output(run)
    assert f"guard {T1}" in output(run)
    set_faults(router, [])
    time.sleep(WINDOW + MARGIN)
    assert not [n for n in apply_dir(router) if n.startswith("rolled-back")]
    converged_and_quiet(router, secrets, inventory, peers=peers)


def test_race_guard_fires_between_the_read_and_the_apply(router, secrets, inventory, tmp_path):
    """T1 fires while a later run is reading (slow exports): the later apply must not apply
    over the restored config; the rollback is reported once and the next run converges. (The
    slow exports also slow this run's own apply, so its guard gets a longer window.)"""
    window = 4 * WINDOW
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets,
                                router_data={"rollback_seconds": window})
    assert hand_apply(router, secrets, 2, T1).returncode == 0
    set_faults(router, ["uci-export delay 0.6"])
    first = pyinfra(inventory, "-y")
    set_faults(router, [])
    runs = [first]
    for _ in range(2):
        if runs[-1].returncode == 0 and "ROLLED BACK" not in output(runs[-1]):
            break
        runs.append(pyinfra(inventory, "-y"))
    texts = "\n".join(output(r) for r in runs)
    assert runs[-1].returncode == 0, texts
    if first.returncode != 0:  # fired between read and apply: refused, nothing applied
        assert "fired just before this apply" in texts or "changed after it was read" in texts, \
            texts
    assert texts.count(f"ROLLED BACK: apply {T1}") == 1, texts
    time.sleep(window + MARGIN)
    converged_and_quiet(router, secrets, inventory)


def test_own_leftovers_removed_foreign_changes_stop_the_run(router, secrets, inventory):
    factory = snapshot(router)
    set_faults(router, ["uci-batch delay 30"])
    path = hand_apply_script(router, secrets, WINDOW, T1)
    router.run(f"(sh {path} >/dev/null 2>&1 &)")
    assert wait_for(lambda: f"save-{T1}" in apply_dir(router), 20)
    time.sleep(0.5)
    router.run("kill -9 $(cat /tmp/pyinfra-apply/lock/pid)", check=True)  # the router side dies
    set_faults(router, [])
    assert shared_save_dir(router) == []  # our staged changes never entered /tmp/.uci
    # someone else's change is pending: the run stops, touches neither theirs nor ours
    router.run("uci set system.@system[0].hostname=mine", check=True)
    refused = pyinfra(inventory, "-y")
    assert refused.returncode != 0 and "uncommitted uci changes are pending" in output(refused)
    assert router.run("uci changes").stdout.strip().endswith(".hostname='mine'")
    assert f"save-{T1}" in apply_dir(router) and snapshot(router) == factory
    router.run("uci revert system", check=True)
    run = pyinfra(inventory, "-y")
    assert run.returncode == 0, output(run)
    assert f"removing our own leftover save-{T1}" in output(run)
    converged_and_quiet(router, secrets, inventory)


def test_failed_commit_restores_every_package(router, secrets, inventory):
    factory = snapshot(router)
    set_faults(router, ["uci-commit-firewall fail"])  # network is committed first, then this
    run = pyinfra(inventory, "-y")
    assert run.returncode != 0
    assert "uci commit firewall failed; every package was restored" in output(run)
    assert snapshot(router) == factory
    assert shared_save_dir(router) == []
    set_faults(router, [])
    again = pyinfra(inventory, "-y")
    assert again.returncode == 0, output(again)
    assert "ROLLED BACK" in output(again) and "commit failed firewall" in output(again)
    time.sleep(WINDOW + MARGIN)
    converged_and_quiet(router, secrets, inventory)


def test_reload_failing_once_is_retried(router, secrets, inventory):
    set_faults(router, ["firewall-reload fail 1"])
    run = pyinfra(inventory, "-y")
    assert run.returncode == 0, output(run)
    assert router.events().count("firewall reload") == 1  # the retry
    set_faults(router, [])
    time.sleep(WINDOW + MARGIN)
    converged_and_quiet(router, secrets, inventory)


def test_reload_failing_for_good_is_rolled_back_with_a_clear_error(router, secrets, inventory):
    factory = snapshot(router)
    set_faults(router, ["firewall-reload fail 2"])  # both attempts of the apply fail
    run = pyinfra(inventory, "-y")
    assert run.returncode != 0
    assert "'/etc/init.d/firewall reload' failed 2 times; the previous configuration was " \
           "restored" in output(run)
    assert snapshot(router) == factory
    again = pyinfra(inventory, "-y")
    assert again.returncode == 0, output(again)
    assert "ROLLED BACK" in output(again) and "reload failed" in output(again)
    time.sleep(WINDOW + MARGIN)
    converged_and_quiet(router, secrets, inventory)


def test_committed_but_not_live_is_finished_by_the_next_run(router, secrets, inventory):
    set_faults(router, ["network-reload delay 30"])
    path = hand_apply_script(router, secrets, T1_WINDOW, T1)
    armed_at = time.monotonic()
    router.run(f"(sh {path} >/dev/null 2>&1 &)")
    assert wait_for(lambda: "wg0" in router.read_config("network")
                    and f"notlive-{T1}" in apply_dir(router), 20)
    time.sleep(0.3)
    router.run("kill -9 $(cat /tmp/pyinfra-apply/lock/pid)", check=True)  # power cut, say
    set_faults(router, [])
    router.clear_events()
    assert differences(router, secrets) == []  # committed: looks converged, but is not live
    run = pyinfra(inventory, "-y")
    assert run.returncode == 0, output(run)
    assert f"apply {T1} committed but never went live" in output(run)
    assert router.events() == ["network reload", "dnsmasq reload", "firewall reload"]
    time.sleep(max(WINDOW, armed_at + T1_WINDOW - time.monotonic()) + MARGIN)
    assert not [n for n in apply_dir(router) if n.startswith("rolled-back")]
    converged_and_quiet(router, secrets, inventory)


def test_no_apply_without_a_running_guard(router, secrets, inventory):
    """A guard that does not start (here: a start-stop-daemon that says yes and starts nothing)
    stops the apply before anything is committed: the router keeps its configuration, nothing
    of ours is left, and the next run (guard working again) converges."""
    factory = snapshot(router)
    where = router.run("command -v start-stop-daemon", check=True).stdout.strip()
    assert where.startswith("/"), where
    router.run(f"mv {where} {where}.real && printf '#!/bin/sh\\nexit 0\\n' > {where} && "
               f"chmod 755 {where}", check=True)
    try:
        run = pyinfra(inventory, "-y")
    finally:
        router.run(f"mv -f {where}.real {where}", check=True)
    assert run.returncode != 0, output(run)
    assert "the rollback guard could not be started; nothing was applied" in output(run)
    assert snapshot(router) == factory
    assert apply_dir(router) == [] and shared_save_dir(router) == []
    again = pyinfra(inventory, "-y")
    assert again.returncode == 0, output(again)
    assert "ROLLED BACK" not in output(again)
    time.sleep(WINDOW + MARGIN)
    converged_and_quiet(router, secrets, inventory)

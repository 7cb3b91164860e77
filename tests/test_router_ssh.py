"""The router deploy over real OpenSSH, with the pyinfra CLI exactly as a user runs it, to a
router whose shell is BusyBox ash and whose `uci` is the stand-in: converge from factory state,
re-run without changes, counted round trips, no secret in any output, drift repaired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firewall.proof import check
from tests.harness.openwrt_host import REPO, OpenWrtHost
from tests.harness.router_runs import (
    SMALL_IMAGE,
    fact,
    plan_for,
    pyinfra,
    require_router,
    router_config,
    secrets_in,
    write_inventory,
)

pytestmark = pytest.mark.ssh

require_router()

@pytest.fixture
def router(tmp_path):
    with OpenWrtHost(tmp_path, packages=SMALL_IMAGE) as host:
        yield host


def test_converge_then_noop_over_ssh(tmp_path, router):
    secrets = tmp_path / "secrets"
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets)

    # 1. converge from factory 23.05 state (-y: no change-detection pass)
    first = pyinfra(inventory, "-y")
    assert first.returncode == 0, first.stdout + first.stderr
    commands = router.commands()
    assert router.exec_count() <= 6 and router.upload_count() == 1, commands
    assert any("opkg install kmod-wireguard wireguard-tools" in c for c in commands)
    assert router.events() == ["network reload", "dnsmasq reload", "firewall reload"]
    # the apply script deleted itself, and the config is committed (nothing pending)
    assert router.run("ls /tmp/pyinfra-apply").stdout == ""
    assert router.run("uci changes").stdout == ""
    assert router.run("ls -A /tmp/.uci").stdout == ""  # staged in our own save dir, not here
    installed = router.run("opkg list-installed").stdout
    assert "wireguard-tools - " in installed and "kmod-wireguard - " in installed

    plan = plan_for(secrets, [("alice-mac", {"vpn_name": "alice_mac"}), ("bob-mac", {})],
                    [{"name": "alice_phone"}])
    assert check(router_config(router), plan) == []

    # 2. a second run, with the default change detection, changes nothing
    router.reset_counts()
    router.clear_events()
    before = {p: router.read_config(p) for p in ("network", "firewall", "dhcp")}
    second = pyinfra(inventory)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "No changes" in second.stderr + second.stdout
    assert router.exec_count() <= 2 and router.upload_count() == 0, router.commands()
    assert router.events() == []
    assert {p: router.read_config(p) for p in before} == before

    # 3. no key ever appeared on a command line
    keys = secrets_in(secrets)
    assert len(keys) >= 5
    everything = "\n".join(router.commands(all=True))
    for key in keys:
        assert key not in everything


def test_no_secret_in_output_at_any_verbosity(tmp_path, router):
    secrets = tmp_path / "secrets"
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets)
    run = pyinfra(inventory, "-y", "-vvv", "--debug")
    assert run.returncode == 0, run.stdout + run.stderr
    dry = pyinfra(inventory, "--dry", "-vvv", "--debug")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    keys = secrets_in(secrets)
    assert keys
    for output in (run.stdout, run.stderr, dry.stdout, dry.stderr):
        for key in keys:
            assert key not in output
    debug_log = REPO / "pyinfra-debug.log"
    if debug_log.exists():
        text = debug_log.read_text()
        assert not any(key in text for key in keys)


def test_revoked_and_hand_added_peers_are_removed_with_ifup_only(tmp_path, router):
    secrets = tmp_path / "secrets"
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets)
    assert pyinfra(inventory, "-y").returncode == 0
    # someone adds a peer by hand in LuCI, and bob is disabled in the inventory
    router.run("uci add network wireguard_wg0 >/dev/null; "
               "uci set network.@wireguard_wg0[-1].public_key=HandMadeKeyXXXXXXXXXXXXXXXXXXXXXXXXXX"
               "XXXXXX=; uci commit network", check=True)
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets,
                                clients=[("alice-mac", {"vpn_name": "alice_mac"}),
                                         ("bob-mac", {"vpn_enabled": False})])
    router.reset_counts()
    router.clear_events()
    run = pyinfra(inventory, "-y")
    assert run.returncode == 0, run.stdout + run.stderr
    assert router.events() == ["ifup wg0"]
    peers = [s for s in router_config(router)["network"] if s["type"] == "wireguard_wg0"]
    assert [s["name"] for s in peers] == ["wgpeer_alice_mac", "wgpeer_alice_phone"]


def test_foreign_pending_changes_stop_the_run(tmp_path, router):
    secrets = tmp_path / "secrets"
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets)
    router.run("uci set network.lan.ipaddr=192.168.2.1", check=True)
    run = pyinfra(inventory, "-y")
    assert run.returncode != 0
    assert "uncommitted uci changes are pending" in run.stderr + run.stdout
    assert "network.lan.ipaddr='192.168.2.1'" in run.stderr + run.stdout
    # nothing of ours was applied, and their change is still pending, untouched
    assert "wg0" not in router.read_config("network")
    assert router.run("uci changes").stdout.strip() == "network.lan.ipaddr='192.168.2.1'"


def test_drift_is_repaired_in_one_run(tmp_path, router):
    secrets = tmp_path / "secrets"
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets)
    assert pyinfra(inventory, "-y").returncode == 0
    router.run("uci delete firewall.vpn_ai; uci set firewall.wg_in.dest_port=22; "
               "uci set firewall.@rule[0].enabled=0; uci commit firewall", check=True)
    router.clear_events()
    assert pyinfra(inventory, "-y").returncode == 0
    assert router.events() == ["firewall reload"]
    plan = plan_for(secrets, [("alice-mac", {"vpn_name": "alice_mac"}), ("bob-mac", {})],
                    [{"name": "alice_phone"}])
    assert check(router_config(router), plan) == []
    router.reset_counts()
    assert "No changes" in (lambda r: r.stdout + r.stderr)(pyinfra(inventory))


def test_fact_from_the_cli(tmp_path, router):
    secrets = tmp_path / "secrets"
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets)
    result = fact(inventory, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["facts.openwrt.OpenWrtState"]["router"]
    assert data["release"]["version"] == "23.05.5"
    assert data["package_manager"] == "opkg"
    assert [s["options"]["name"] for s in data["config"]["firewall"] if s["type"] == "zone"] == [
        "lan", "wan"]


@pytest.mark.parametrize("release", ["24.10.0", "25.12.0"])
def test_newer_releases_opkg_and_apk(tmp_path, release):
    with OpenWrtHost(tmp_path, release=release,
                     packages=("base-files", "busybox", "dropbear", "firewall4")) as router:
        inventory = write_inventory(tmp_path / "inventory.py", router, tmp_path / "secrets")
        first = pyinfra(inventory, "-y")
        assert first.returncode == 0, first.stdout + first.stderr
        manager = "apk add" if release.startswith("25") else "opkg install"
        assert any(f"{manager} kmod-wireguard wireguard-tools" in c for c in router.commands())
        router.reset_counts()
        second = pyinfra(inventory, "-y")
        assert second.returncode == 0 and "No changes" in second.stdout + second.stderr
        assert router.exec_count() == 1


def _apply_script_for_factory(router: OpenWrtHost, tmp_path: Path, seconds: int,
                              token: str = "0123456789abcdef") -> str:
    from deploys.router_config import current_defaults_forward, desired_router_config
    from facts.openwrt import OpenWrtState, parse_state
    from operations.uci import all_reloads, apply_script, compute_changes, needs_rollback_guard

    plan = plan_for(tmp_path / "secrets", [("alice-mac", {})], [])
    state = parse_state(router.run(OpenWrtState().command(), check=True).stdout.splitlines())
    changes = compute_changes(
        state["config"], **desired_router_config(plan, current_defaults_forward(state["config"])))
    assert needs_rollback_guard(changes)
    return apply_script(changes.batch, changes.expected, changes.packages, all_reloads(changes),
                        state["checksum"], token, rollback_seconds=seconds)


@pytest.mark.parametrize("confirmed", [False, True])
def test_rollback_guard_restores_unless_confirmed(tmp_path, router, confirmed):
    import time

    from operations.uci import confirm_command

    token = "0123456789abcdef"
    factory = {p: router.read_config(p) for p in ("network", "firewall", "dhcp")}
    script = _apply_script_for_factory(router, tmp_path, seconds=2, token=token)
    router.run(f"cat > /tmp/pyinfra-apply/apply-{token}.sh", input=script, check=True)
    result = router.run(f"sh /tmp/pyinfra-apply/apply-{token}.sh")
    assert result.returncode == 0, result.stderr
    assert f"rollback guard {token} armed" in result.stdout
    assert "wg0" in router.read_config("network")
    if confirmed:
        assert router.run(confirm_command(token)).returncode == 0
    time.sleep(3.5)
    restored = {p: router.read_config(p) for p in factory}
    if confirmed:
        assert restored != factory and "wg0" in restored["network"]
        assert router.run("ls /tmp/pyinfra-apply").stdout == ""
    else:
        assert restored == factory
        marker = router.run(f"cat /tmp/pyinfra-apply/rolled-back-{token}").stdout
        assert f"token={token} reason=timer restored=network,firewall,dhcp" in marker
        assert router.events()[-3:] == ["network reload", "dnsmasq reload", "firewall reload"]
        late = router.run(confirm_command(token))
        assert late.returncode == 1 and "too late" in late.stderr


def test_a_config_that_breaks_an_invariant_is_never_applied(tmp_path, router):
    """A foreign rule none of our edits touches (``src '*'`` to the LAN) opens WAN -> LAN
    tcp/22: the proof on the config as it would be after the run stops the host, naming the
    invariant, the flow and the section; nothing is uploaded or changed."""
    secrets = tmp_path / "secrets"
    inventory = write_inventory(tmp_path / "inventory.py", router, secrets)
    router.run("uci set firewall.any_ssh=rule; uci set firewall.any_ssh.name=Any-SSH; "
               "uci set firewall.any_ssh.src='*'; uci set firewall.any_ssh.dest=lan; "
               "uci set firewall.any_ssh.proto=tcp; uci set firewall.any_ssh.dest_port=22; "
               "uci set firewall.any_ssh.target=ACCEPT; uci commit firewall", check=True)
    before = {p: router.read_config(p) for p in ("network", "firewall", "dhcp")}
    router.reset_counts()
    router.clear_events()
    run = pyinfra(inventory, "-y")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "the firewall proof failed" in out and "nothing was uploaded" in out, out
    assert "invariant 1 violated" in out and "tcp/22" in out and "rule:any_ssh" in out, out
    assert router.upload_count() == 0 and router.exec_count() == 1, router.commands()
    assert {p: router.read_config(p) for p in before} == before
    assert router.events() == []

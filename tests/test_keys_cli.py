"""Reading never writes, through the pyinfra CLI against a fake OpenWrt router over real SSH:
a ``fact`` run and a ``--dry`` run leave the key store byte-identical (or absent), a failing
run archives nothing, and only the run that succeeds archives a removed peer's keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.harness.openwrt_host import OpenWrtHost
from tests.harness.router_runs import (
    SMALL_IMAGE,
    deploy_args,
    fact,
    require_router,
    run_cli,
    write_inventory,
)

pytestmark = pytest.mark.ssh

require_router()

#: the one client: it makes its own key (the controller never has it)
CLIENTS = [("alice-mac", {"vpn_name": "alice_mac", "key_on_mac": True})]


def inventory_for(tmp_path: Path, router: OpenWrtHost, peers: list[dict]) -> Path:
    return write_inventory(tmp_path / "inventory.py", router, tmp_path / "secrets",
                           clients=CLIENTS, peers=peers)


def deploy(inventory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The router deploy with no terminal (stdin /dev/null)."""
    return run_cli(*deploy_args(inventory, *args))


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None]] | None:
    """Every path under ``root`` with its mode and content (``None`` when absent)."""
    if not root.exists():
        return None
    return {str(p.relative_to(root)): (p.stat().st_mode, None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))} | {".": (root.stat().st_mode, None)}


@pytest.fixture
def router(tmp_path):
    with OpenWrtHost(tmp_path, packages=SMALL_IMAGE) as host:
        yield host


def test_fact_and_dry_runs_write_no_key(tmp_path, router):
    secrets = tmp_path / "secrets"
    two = [{"name": "alice_phone"}, {"name": "bob_phone"}]
    inventory = inventory_for(tmp_path, router, two)

    # nothing exists yet: a fact run and a preview create nothing
    result = fact(inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    dry = deploy(inventory, "--dry")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert not secrets.exists() and not (tmp_path / "peers-out").exists()

    first = deploy(inventory, "-y")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (secrets / "wireguard" / "peers" / "bob_phone.key").exists()
    assert not (secrets / "wireguard" / "pending").exists()
    before = snapshot(secrets)

    # bob's phone commented out: reading (fact, --dry, rotation preview) changes nothing
    inventory_for(tmp_path, router, [{"name": "alice_phone"}])
    assert fact(inventory).returncode == 0
    dry = deploy(inventory, "--dry")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    dry = deploy(inventory, "--dry", "--data", "rotate_peers=alice_phone")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert snapshot(secrets) == before

    # and put back, bob keeps his keys: his phone need not import anything new
    inventory_for(tmp_path, router, two)
    again = deploy(inventory, "-y")
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(secrets) == before


def test_a_failing_run_archives_nothing(tmp_path, router):
    secrets = tmp_path / "secrets"
    inventory = inventory_for(tmp_path, router, [{"name": "alice_phone"}, {"name": "bob_phone"}])
    assert deploy(inventory, "-y").returncode == 0
    bob = (secrets / "wireguard" / "peers" / "bob_phone.key").read_bytes()
    before = snapshot(secrets)

    # bob removed, but the router run fails (someone's uncommitted uci change)
    inventory_for(tmp_path, router, [{"name": "alice_phone"}])
    router.run("uci set network.lan.ipaddr=192.168.2.1", check=True)
    failed = deploy(inventory, "-y")
    assert failed.returncode != 0
    assert snapshot(secrets) == before
    assert not (secrets / "wireguard" / "archive").exists()

    # the next good run removes bob from the router and only then archives his keys
    router.run("uci revert network", check=True)
    good = deploy(inventory, "-y")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "archive keys of removed peers: bob_phone" in good.stdout + good.stderr
    archived = list((secrets / "wireguard" / "archive").iterdir())
    assert len(archived) == 1 and (archived[0] / "bob_phone.key").read_bytes() == bob
    assert "bob_phone" not in router.read_config("network")


def test_a_rotation_interrupted_after_staging_is_finished_with_the_same_keys(tmp_path, router):
    secrets = tmp_path / "secrets"
    inventory = inventory_for(tmp_path, router, [{"name": "alice_phone"}])
    assert deploy(inventory, "-y").returncode == 0
    old = (secrets / "wireguard" / "peers" / "alice_phone.psk").read_text()

    router.run("uci set network.lan.ipaddr=192.168.2.1", check=True)
    failed = deploy(inventory, "-y", "--data", "rotate_peers=alice_phone")
    assert failed.returncode != 0
    pending = (secrets / "wireguard" / "pending" / "peers" / "alice_phone.psk").read_text()
    assert pending != old  # kept before it could reach the router
    assert (secrets / "wireguard" / "peers" / "alice_phone.psk").read_text() == old

    router.run("uci revert network", check=True)
    good = deploy(inventory, "-y")  # no flag: the rotation that started is finished
    assert good.returncode == 0, good.stdout + good.stderr
    assert (secrets / "wireguard" / "peers" / "alice_phone.psk").read_text() == pending
    assert not (secrets / "wireguard" / "pending").exists()
    archived = list((secrets / "wireguard" / "archive").iterdir())
    assert [p.name.endswith("-alice_phone-rotated") for p in archived] == [True]
    assert (archived[0] / "alice_phone.psk").read_text() == old


def test_an_expired_peer_is_removed_by_the_next_run_which_says_so(tmp_path, router):
    import datetime

    today = datetime.date.today()
    soon = str(today + datetime.timedelta(days=3))
    inventory = inventory_for(tmp_path, router, [{"name": "alice_phone"},
                                                   {"name": "guest", "expires": soon}])
    first = deploy(inventory, "-y")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"peer guest: enabled, expires {soon} (in 3 days)" in first.stdout + first.stderr
    assert "wgpeer_guest" in router.read_config("network")

    past = str(today - datetime.timedelta(days=1))
    inventory_for(tmp_path, router, [{"name": "alice_phone"},
                                       {"name": "guest", "expires": past}])
    second = deploy(inventory, "-y")
    out = second.stdout + second.stderr
    assert second.returncode == 0, out
    assert f"peer guest: expired on {past}: not a peer of the router any more" in out
    assert "wgpeer_guest" not in router.read_config("network")
    assert "wgpeer_alice_phone" in router.read_config("network")
    assert (tmp_path / "secrets" / "wireguard" / "peers" / "guest.psk").exists()
    assert not (tmp_path / "peers-out" / "guest.conf").exists()

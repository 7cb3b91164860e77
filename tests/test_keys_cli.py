"""Reading never writes, through the pyinfra CLI against a fake OpenWrt router over real SSH:
a ``fact`` run and a ``--dry`` run leave the key store byte-identical (or absent), a failing
run archives nothing, and only the run that succeeds archives a removed peer's keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.openwrt_host import REPO, OpenWrtHost, requirements_missing

pytestmark = pytest.mark.ssh

_MISSING = requirements_missing()
if _MISSING:
    if os.environ.get("CI") == "true":
        pytest.fail(f"fake OpenWrt router unavailable in CI: {_MISSING}", pytrace=False)
    pytest.skip(f"fake OpenWrt router unavailable: {_MISSING}", allow_module_level=True)

INVENTORY = """
from deploys.plan import validate_before_connect
validate_before_connect()
_net = {network!r}
router = [("router", {{**{router!r}, **_net}})]
server = [("ai-server", {{"ssh_hostname": "127.0.0.9", "ssh_port": 9, **_net,
                          "dmz_address": "192.168.100.10"}})]
clients = [
    (name, {{"ssh_hostname": "127.0.0.9", "ssh_port": 9, **_net, **data}})
    for name, data in {clients!r}
]
"""


def write_inventory(tmp_path: Path, router: OpenWrtHost, peers: list[dict]) -> Path:
    network = {"vpn_subnet": "10.10.10.0/24", "vpn_endpoint": "vpn.example.org",
               "dmz_subnet": "192.168.100.0/24", "lan_subnet": "192.168.1.0/24",
               "secrets_dir": str(tmp_path / "secrets"),
               "peer_output_dir": str(tmp_path / "peers-out"), "vpn_peers": peers}
    path = tmp_path / "inventory.py"
    path.write_text(INVENTORY.format(network=network, router=router.inventory_data(),
                                     clients=[("alice-mac", {"vpn_name": "alice_mac"})]))
    return path


def pyinfra(inventory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyinfra", str(inventory), *args], cwd=REPO,
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def deploy(inventory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return pyinfra(inventory, "deploys/all.py", "--limit", "router", *args)


def fact(inventory: Path) -> subprocess.CompletedProcess[str]:
    return pyinfra(inventory, "--limit", "router", "fact", "facts.openwrt.OpenWrtState")


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None]] | None:
    """Every path under ``root`` with its mode and content (``None`` when absent)."""
    if not root.exists():
        return None
    return {str(p.relative_to(root)): (p.stat().st_mode, None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))} | {".": (root.stat().st_mode, None)}


@pytest.fixture
def router(tmp_path):
    with OpenWrtHost(tmp_path, packages=("base-files", "busybox", "dropbear", "firewall4",
                                         "libc", "uci")) as host:
        yield host


def test_fact_and_dry_runs_write_no_key(tmp_path, router):
    secrets = tmp_path / "secrets"
    two = [{"name": "alice_phone"}, {"name": "bob_phone"}]
    inventory = write_inventory(tmp_path, router, two)

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
    write_inventory(tmp_path, router, [{"name": "alice_phone"}])
    assert fact(inventory).returncode == 0
    dry = deploy(inventory, "--dry")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    dry = deploy(inventory, "--dry", "--data", "rotate_peers=alice_phone")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert snapshot(secrets) == before

    # and put back, bob keeps his keys: his phone need not import anything new
    write_inventory(tmp_path, router, two)
    again = deploy(inventory, "-y")
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(secrets) == before


def test_a_failing_run_archives_nothing(tmp_path, router):
    secrets = tmp_path / "secrets"
    inventory = write_inventory(tmp_path, router, [{"name": "alice_phone"}, {"name": "bob_phone"}])
    assert deploy(inventory, "-y").returncode == 0
    bob = (secrets / "wireguard" / "peers" / "bob_phone.key").read_bytes()
    before = snapshot(secrets)

    # bob removed, but the router run fails (someone's uncommitted uci change)
    write_inventory(tmp_path, router, [{"name": "alice_phone"}])
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
    inventory = write_inventory(tmp_path, router, [{"name": "alice_phone"}])
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
    inventory = write_inventory(tmp_path, router, [{"name": "alice_phone"},
                                                   {"name": "guest", "expires": soon}])
    first = deploy(inventory, "-y")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"peer guest: enabled, expires {soon} (in 3 days)" in first.stdout + first.stderr
    assert "wgpeer_guest" in router.read_config("network")

    past = str(today - datetime.timedelta(days=1))
    write_inventory(tmp_path, router, [{"name": "alice_phone"},
                                       {"name": "guest", "expires": past}])
    second = deploy(inventory, "-y")
    out = second.stdout + second.stderr
    assert second.returncode == 0, out
    assert f"peer guest: expired on {past}: not a peer of the router any more" in out
    assert "wgpeer_guest" not in router.read_config("network")
    assert "wgpeer_alice_phone" in router.read_config("network")
    assert (tmp_path / "secrets" / "wireguard" / "peers" / "guest.psk").exists()
    assert not (tmp_path / "peers-out" / "guest.conf").exists()

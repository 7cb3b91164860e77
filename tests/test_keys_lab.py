"""Keys in the whole lab (router, server and two client Macs, converged with the pyinfra CLI as
at home): the Macs make their own private keys and the router gets their public keys in the
same run; no key is ever on a command line or in an environment of the controller or the Macs
(every process sampled during a full deploy and a ``fact`` audit, tests/harness/argv_sampler.py);
reading (``fact``, ``--dry``) leaves the key store byte-identical."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.harness.argv_sampler import ArgvSampler
from tests.harness.lab_session import lab_up, require_lab, run_pyinfra
from tests.lab.lab import LabState

pytestmark = [pytest.mark.lab, pytest.mark.ssh]

require_lab()

PREFIX_BASE = "ssolk"
PREFIX = f"{PREFIX_BASE}{os.getpid()}-"
INVENTORY = "inventories/lab.py"
CLIENTS = ("client1", "client2")
KEY = "/opt/homebrew/etc/wireguard/wg-ollama.key"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keylab")
    with lab_up(directory, PREFIX_BASE) as state:
        yield state


def pyinfra(lab: LabState, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pyinfra(lab.dir, *args, inventory=INVENTORY, timeout=400, stdin=None)


def store_snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def all_keys(lab: LabState) -> list[str]:
    """Every private and preshared key of the lab: the controller's store, the Macs' own."""
    secrets = lab.dir / "secrets" / "wireguard"
    keys = [p.read_text().strip() for p in secrets.rglob("*") if p.suffix in (".key", ".psk")]
    keys += [lab.mac_file(c, KEY).read_text().strip() for c in CLIENTS]
    return keys


def wg_show_peers(lab: LabState) -> set[str]:
    return set(lab.router_run("wg show wg0 peers", check=True).stdout.split())


def test_macs_make_their_keys_and_no_key_is_on_any_command_line(lab):
    with ArgvSampler() as sampler:
        first = pyinfra(lab, "deploys/all.py", "-y")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    secrets = lab.dir / "secrets" / "wireguard"

    # the Macs' own keys: on the Mac, root 600; the controller has their public keys only
    publics = {}
    for client in CLIENTS:
        key = lab.mac_file(client, KEY)
        assert key.stat().st_mode & 0o777 == 0o600 and key.stat().st_uid == 0
        public = subprocess.run(["wg", "pubkey"], input=key.read_text(), capture_output=True,
                                text=True, check=True).stdout.strip()
        publics[client] = public
    assert not [p for p in secrets.rglob("*.key") if "client" in p.name]
    assert {p.read_text().strip() for p in secrets.glob("peers/*.pub")} == set(publics.values())
    assert not (secrets / "pending").exists()  # all recorded after the router's apply
    # the router got them in the same run
    assert set(publics.values()) <= wg_show_peers(lab)

    # a fact audit, sampled too: the router's state, a Mac's tunnel state
    with ArgvSampler() as audit:
        facts = pyinfra(lab, "fact", "facts.openwrt.OpenWrtState", "--limit", "router")
        assert facts.returncode == 0, facts.stderr[-2000:]
        tunnel = pyinfra(lab, "--sudo", "--limit", "client1", "fact", "facts.client.TunnelState",
                         "interface=wg-ollama",
                         "config=/opt/homebrew/etc/wireguard/wg-ollama.conf",
                         "label=org.self-sovereign-ollama.wireguard.wg-ollama", f"key={KEY}",
                         "wg=/opt/homebrew/bin/wg")
        assert tunnel.returncode == 0, tunnel.stderr[-2000:]
    assert publics["client1"] in tunnel.stdout + tunnel.stderr  # the public key, read on the Mac
    assert sampler.saw("launchctl") and sampler.saw("wg-quick")  # it saw the Macs' commands

    keys = all_keys(lab)
    assert len(keys) >= 7  # router, phone key + psk, three psks, two Mac keys
    router_ns = ArgvSampler.ns_of(lab.data["router"]["ns_pid"])
    for run, sampled in (("deploy", sampler), ("fact audit", audit)):
        stats = sampled.stats()
        assert stats["samples"] > 10 and sampled.saw("sshd"), (run, stats)
        print(f"{run}: {stats}, router processes holding a key: "
              f"{len(sampled.find(keys, only_ns=[router_ns]))}")
        # controller and Macs: no key anywhere (the router's own processes: helper H6's test)
        hits = sampled.find(keys, exclude_ns=[router_ns])
        assert hits == [], f"{run}: {hits}"
    for text in (first.stdout, first.stderr, facts.stdout, tunnel.stdout, tunnel.stderr):
        assert not [k for k in keys if k in text]


def test_reading_changes_no_key_and_a_second_run_changes_nothing(lab):
    before = store_snapshot(lab.dir / "secrets")
    for args in (("fact", "facts.openwrt.OpenWrtState", "--limit", "router"),
                 ("deploys/all.py", "--dry"),
                 ("deploys/all.py", "--dry", "--data", "rotate_peers=client1")):
        run = pyinfra(lab, *args)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert store_snapshot(lab.dir / "secrets") == before
    again = pyinfra(lab, "deploys/all.py", "-y")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert store_snapshot(lab.dir / "secrets") == before
    keys = [lab.mac_file(c, KEY).read_bytes() for c in CLIENTS]
    assert [lab.mac_file(c, KEY).read_bytes() for c in CLIENTS] == keys

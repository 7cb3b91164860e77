"""Phone configs on the controller: a folder of the user's is theirs (only files in the
manifest are ever deleted, its mode is never changed), ``forget`` deletes the controller's copy
until the config changes, and the terminal QR code fits 80 columns and scans."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from deploys.keys import KeyStore
from deploys.peers import peer_config
from deploys.plan import PlanError, materialize, validate
from operations import peer_files

NETWORK = {
    "vpn_subnet": "10.10.10.0/24", "vpn_endpoint": "vpn.example.org",
    "dmz_subnet": "192.168.100.0/24", "lan_subnet": "192.168.1.0/24",
    "vpn_peers": [{"name": "alice_phone"}, {"name": "bob_tablet", "kind": "tablet"}],
}


def make_plan(tmp_path: Path, **network):
    spec = validate(network={**NETWORK, "secrets_dir": str(tmp_path / "secrets"),
                             "peer_output_dir": str(tmp_path / "out"), **network},
                    router=("router", {}), server=("ai-server", {"dmz_address": "192.168.100.10"}))
    return materialize(spec, KeyStore(spec.secrets_dir))


def converge(directory: Path, configs, forget=()) -> list[str]:
    """Run the operation as pyinfra would; returns the log lines (empty list: a no-op)."""
    from pyinfra.context import ctx_host, ctx_state
    from pyinfra_testing.util import FakeState, create_host

    state = FakeState()
    host = create_host(state, facts={})
    with ctx_state.use(state), ctx_host.use(host):
        commands = list(peer_files.write._inner(configs=configs, directory=str(directory),
                                                forget=forget))
    for command in commands:
        command.function(*command.args, **command.kwargs)
    return commands


def configs_of(plan, names=("alice_phone", "bob_tablet")):
    return {n: peer_config(plan, plan.peer(n)) for n in names}


def test_a_users_folder_keeps_the_users_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    mine = {"home.conf": b"my own tunnel", "holiday.png": b"\x89PNG mine",
            "bob_tablet.qr.txt.bak": b"x"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    plan = make_plan(tmp_path)
    assert converge(out, configs_of(plan))
    assert (out / "bob_tablet.conf").exists()
    # bob's tablet is removed from the inventory: only the files we wrote for it go
    assert converge(out, configs_of(plan, ("alice_phone",)))
    assert not any((out / f"bob_tablet{s}").exists() for s in peer_files.SUFFIXES)
    assert {n: (out / n).read_bytes() for n in mine} == mine
    assert (out / "alice_phone.conf").exists()
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert converge(out, configs_of(plan, ("alice_phone",))) == []  # idempotent


def test_forget_deletes_the_controllers_copy_until_the_config_changes(tmp_path):
    out = tmp_path / "out"
    plan = make_plan(tmp_path)
    converge(out, configs_of(plan))
    assert converge(out, configs_of(plan), forget=["alice_phone"])
    assert not any((out / f"alice_phone{s}").exists() for s in peer_files.SUFFIXES)
    assert (out / "bob_tablet.conf").exists()
    # later runs without the flag do not write it again: the phone has it
    assert converge(out, configs_of(plan)) == []
    assert converge(out, configs_of(plan), forget=["alice_phone"]) == []
    # a rotation (new keys): the new config is written for the phone to import
    store = KeyStore(tmp_path / "secrets")
    store.commit(plan.key_changes)
    rotated = make_plan(tmp_path, rotate_peers=["alice_phone"])
    assert converge(out, configs_of(rotated))
    assert (out / "alice_phone.conf").read_text() == \
        configs_of(rotated)["alice_phone"].reveal()
    assert converge(out, configs_of(rotated)) == []


def test_forget_names_must_be_phone_peers(tmp_path):
    from pyinfra.api import OperationError

    configs = configs_of(make_plan(tmp_path))
    assert peer_files.forget_list("alice_phone, bob_tablet", configs) == ["alice_phone",
                                                                          "bob_tablet"]
    with pytest.raises(OperationError, match="'carol'.*alice_phone, bob_tablet"):
        peer_files.forget_list("carol", configs)


@pytest.mark.parametrize("which", ["secrets_dir", "peer_output_dir"])
@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701])
def test_an_open_directory_is_refused_and_left_as_it_is(tmp_path, which, mode):
    target = tmp_path / ("secrets" if which == "secrets_dir" else "out")
    target.mkdir()
    os.chmod(target, mode)
    with pytest.raises(PlanError) as info:
        make_plan(tmp_path)
    assert len(info.value.errors) == 1
    line = info.value.errors[0]
    assert line.startswith(f"network: {which}: '{target}' (mode {mode:o}") and "700" in line
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert sorted(target.iterdir()) == []


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    store = KeyStore(tmp_path / "secrets")
    store.commit(make_plan(tmp_path).key_changes)
    key = tmp_path / "secrets" / "wireguard" / "router.key"
    os.chmod(key, 0o644)
    with pytest.raises(PlanError, match="router.key has mode 644"):
        make_plan(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory of another user")
def test_a_directory_of_another_user_is_refused(tmp_path):
    target = tmp_path / "secrets"
    target.mkdir(mode=0o700)
    os.chown(target, 12345, 12345)
    with pytest.raises(PlanError, match="owned by uid 12345, not by you"):
        make_plan(tmp_path)


def _terminal_to_pbm(text: str, path: Path, scale: int = 4) -> None:
    """Turn the half-block drawing back into a black-and-white image (P1 PBM)."""
    rows = []
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        top = [0 if c in "\u2588\u2580" else 1 for c in line]  # ink = light module
        bottom = [0 if c in "\u2588\u2584" else 1 for c in line]
        rows += [top, bottom]
    pixels = [[v for v in row for _ in range(scale)] for row in rows for _ in range(scale)]
    body = "\n".join(" ".join(str(v) for v in row) for row in pixels)
    path.write_text(f"P1\n{len(pixels[0])} {len(pixels)}\n{body}\n")


def test_terminal_qr_fits_80_columns_and_scans(tmp_path):
    plan = make_plan(tmp_path, vpn_endpoint="vpn.a-rather-long-dyndns-name.example.org")
    text = configs_of(plan)["alice_phone"].reveal()
    drawing = peer_files.qr_terminal(text).decode()
    widths = {len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in drawing.splitlines()}
    assert len(widths) == 1 and widths.pop() <= 80
    if shutil.which("zbarimg") is None:
        pytest.skip("zbar-tools (zbarimg) missing: width checked, decoding not")
    image = tmp_path / "qr.pbm"
    _terminal_to_pbm(drawing, image)
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(image)], capture_output=True,
                             check=True).stdout.decode()
    assert decoded == peer_files.config_without_comments(text) + "\n"
    assert "PrivateKey = " in decoded and "#" not in decoded


def test_an_archive_made_755_by_an_earlier_version_is_tightened_by_the_next_run(tmp_path):
    store = KeyStore(tmp_path / "secrets")
    store.commit(make_plan(tmp_path).key_changes)
    archive = tmp_path / "secrets" / "wireguard" / "archive"
    (archive / "20250101T000000-old-removed").mkdir(parents=True, mode=0o700)
    os.chmod(archive, 0o755)
    plan = make_plan(tmp_path, vpn_peers=[{"name": "alice_phone"}])  # read: not refused
    assert stat.S_IMODE(archive.stat().st_mode) == 0o755  # and not changed by reading
    store.commit(plan.key_changes)  # the run that applies archives bob and tightens it
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700

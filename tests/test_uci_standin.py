"""The uci test stand-in (tests/standins/uci) against the recorded real-uci transcripts.

tests/standins/uci is a TEST STAND-IN for OpenWrt's ``uci`` 5781664d, used as the
router's ``uci`` in end-to-end tests. It is never part of the product. Here it
replays every golden transcript in ``tests/fixtures/uci`` and must match each
recorded step byte for byte: exit code, stdout, stderr, config files and the
pending-change (delta) files. The recordings ran every argv as
``uci -c <dir>/etc/config -t <dir>/savedir <argv[1:]>``, and ``/var/.uci`` in an
argv stands for that save dir (see the fixtures README).

The stand-in's compiled-in default save dir (``/tmp/.uci``) is always read as an
extra delta path, as with the real tool. Each test points it at its own empty
directory through ``UCI_STANDIN_SAVEDIR`` so that the host's ``/tmp/.uci`` cannot
leak in.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "tests" / "standins" / "uci"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "uci"
SCENARIOS = sorted(FIXTURES.glob("*.json")) if FIXTURES.is_dir() else []
ROUTER_SAVEDIR = "/var/.uci"  # in fixture argv: the scenario's save dir

NETWORK = """
config interface 'loopback'
\toption device 'lo'
\toption proto 'static'
\toption ipaddr '127.0.0.1'
\toption netmask '255.0.0.0'

config device
\toption name 'br-lan'
\toption type 'bridge'
\tlist ports 'lan1'
\tlist ports 'lan2'

config interface 'lan'
\toption device 'br-lan'
\toption proto 'static'
\toption ipaddr '192.168.1.1'
\toption netmask '255.255.255.0'

"""

FIREWALL = """
config defaults
\toption input 'REJECT'
\toption forward 'REJECT'

config zone
\toption name 'lan'
\tlist network 'lan'

config rule
\toption name 'Allow-Ping'
\toption target 'ACCEPT'

"""


class Router:
    """A scratch config dir and save dir driven through the stand-in, as on a router."""

    def __init__(self, root: Path, configs: dict[str, str]) -> None:
        self.confdir = root / "etc" / "config"
        self.savedir = root / "savedir"
        # stands in for the compiled-in default save dir (/tmp/.uci == /var/.uci)
        self.default_savedir = root / "default-savedir"
        self.confdir.mkdir(parents=True)
        self.savedir.mkdir()
        for name, text in configs.items():
            (self.confdir / name).write_bytes(text.encode())

    def uci(self, *args: str, stdin: str | None = None,
            savedir: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run `uci -c <confdir> [-t <savedir>] <args>` on the stand-in."""
        cmd = [sys.executable, str(STANDIN), "-c", str(self.confdir)]
        if savedir:
            cmd += ["-t", str(self.savedir)]
        env = dict(os.environ, UCI_STANDIN_SAVEDIR=str(self.default_savedir))
        env.pop("UCI_STANDIN_CONFDIR", None)
        env.pop("UCI_STANDIN_APPNAME", None)
        return subprocess.run([*cmd, *args], input=(stdin or "").encode(),
                              capture_output=True, env=env, timeout=60)

    @staticmethod
    def _files(directory: Path) -> dict[str, str]:
        if not directory.is_dir():
            return {}
        return {p.name: p.read_bytes().decode("utf-8", "surrogateescape")
                for p in sorted(directory.iterdir()) if p.is_file()}

    def configs(self) -> dict[str, str]:
        return self._files(self.confdir)

    def deltas(self) -> dict[str, str]:
        return self._files(self.savedir)


def text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# ----------------------------------------------------------------- transcripts


def test_fixtures_present() -> None:
    assert len(SCENARIOS) >= 40, f"uci transcripts missing under {FIXTURES}"


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_transcript(path: Path, tmp_path: Path) -> None:
    scenario = json.loads(path.read_text())
    router = Router(tmp_path, scenario["initial_config"])
    for i, step in enumerate(scenario["steps"]):
        argv = [str(router.savedir) if a == ROUTER_SAVEDIR else a for a in step["argv"]]
        assert argv[0] == "uci"
        res = router.uci(*argv[1:], stdin=step["stdin"])
        where = f"{path.stem} step {i}: {step['argv']}"
        assert (res.returncode, text(res.stdout), text(res.stderr)) == (
            step["exit"], step["stdout"], step["stderr"]), where
        if "config_after" in step:
            assert router.configs() == step["config_after"], where
    assert router.configs() == scenario["final_config"], path.stem
    # exact: a package absent from final_delta has no delta file at all
    assert router.deltas() == scenario["final_delta"], path.stem


# ------------------------------------------- behaviour the end-to-end tests rely on


@pytest.fixture
def router(tmp_path: Path) -> Router:
    return Router(tmp_path, {"network": NETWORK, "firewall": FIREWALL})


def usage_text() -> str:
    any_usage = json.loads((FIXTURES / "get_missing_errors.json").read_text())
    return next(s["stderr"] for s in any_usage["steps"] if s["exit"] == 255)


@pytest.mark.skipif(not SCENARIOS, reason="uci transcripts missing")
def test_export_takes_at_most_one_package(router: Router) -> None:
    # the real CLI has no multi-package export: that is a usage error (exit 255)
    res = router.uci("export", "network", "firewall")
    assert (res.returncode, res.stdout, text(res.stderr)) == (255, b"", usage_text())
    # without an argument it exports every package, alphabetically
    res = router.uci("export")
    assert res.returncode == 0
    out = text(res.stdout)
    assert out == "package firewall\n" + FIREWALL + "package network\n" + NETWORK


def test_changes_without_package_lists_every_package(router: Router) -> None:
    assert router.uci("set", "network.lan.ipaddr=10.0.0.1").returncode == 0
    assert router.uci("add_list", "firewall.@zone[0].network=wg0").returncode == 0
    assert router.uci("delete", "firewall.@rule[0]").returncode == 0
    res = router.uci("changes")
    assert res.returncode == 0 and res.stderr == b""
    assert text(res.stdout) == (
        "firewall.cfg02dc81.network+='wg0'\n"
        "-firewall.cfg0392bd\n"
        "network.lan.ipaddr='10.0.0.1'\n"
    )
    assert router.deltas() == {
        "firewall": "|firewall.cfg02dc81.network='wg0'\n-firewall.cfg0392bd\n",
        "network": "network.lan.ipaddr='10.0.0.1'\n",
    }


def test_batch_from_stdin_with_commit_lines(router: Router) -> None:
    batch = (
        "set network.wg0=interface\n"
        "set network.wg0.proto='wireguard'\n"
        "add_list network.wg0.addresses='10.10.10.1/24'\n"
        "add firewall rule\n"
        "set firewall.@rule[-1].name='Allow-WireGuard'\n"
        "commit network\n"
        "commit firewall\n"
    )
    res = router.uci("batch", stdin=batch)
    assert (res.returncode, text(res.stdout), res.stderr) == (0, "cfg0492bd\n", b"")
    assert router.configs()["network"] == NETWORK + (
        "config interface 'wg0'\n"
        "\toption proto 'wireguard'\n"
        "\tlist addresses '10.10.10.1/24'\n\n"
    )
    assert router.configs()["firewall"].endswith(
        "config rule\n\toption name 'Allow-WireGuard'\n\n")
    assert router.deltas() == {"firewall": "", "network": ""}
    assert router.uci("changes").stdout == b""
    assert text(router.uci("get", "network.wg0.addresses").stdout) == "10.10.10.1/24\n"


def test_batch_errors_keep_going_and_exit_zero(router: Router) -> None:
    res = router.uci("batch", stdin=(
        "delete network.wg0\n"
        "frobnicate\n"
        "set network.lan.proto='dhcp'\n"
        "get network.lan.nosuch\n"
    ))
    assert res.returncode == 0
    assert text(res.stderr) == "uci: Entry not found\nUnknown command\nuci: Entry not found\n\n"
    assert router.deltas() == {"network": "network.lan.proto='dhcp'\n"}


def test_commit_preserves_file_mode_and_leaves_no_temp_file(router: Router) -> None:
    config = router.confdir / "network"
    config.chmod(0o640)
    assert router.uci("set", "network.lan.ipaddr=10.0.0.1").returncode == 0
    # libuci creates the delta file with the config file's permissions
    assert stat.S_IMODE((router.savedir / "network").stat().st_mode) == 0o640
    inode = config.stat().st_ino
    assert router.uci("commit", "network").returncode == 0
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert config.stat().st_ino != inode  # written to a temp file, renamed over
    assert sorted(p.name for p in router.confdir.iterdir()) == ["firewall", "network"]
    assert "option ipaddr '10.0.0.1'" in config.read_text()


def test_commit_without_changes_does_not_rewrite(router: Router) -> None:
    config = router.confdir / "network"
    config.write_text("# comment\nconfig interface lan\n  option proto static\n")
    inode = config.stat().st_ino
    assert router.uci("set", "network.lan.proto=static").returncode == 0  # same value
    assert router.uci("commit").returncode == 0
    assert config.stat().st_ino == inode
    assert config.read_text().startswith("# comment\n")


def test_default_savedir_without_t(router: Router) -> None:
    assert router.uci("set", "network.lan.proto=dhcp", savedir=False).returncode == 0
    assert (router.default_savedir / "network").read_text() == "network.lan.proto='dhcp'\n"
    assert router.deltas() == {}
    assert text(router.uci("changes", savedir=False).stdout) == "network.lan.proto='dhcp'\n"
    assert router.uci("commit", savedir=False).returncode == 0
    assert (router.default_savedir / "network").read_text() == ""
    assert "option proto 'dhcp'" in router.configs()["network"]


def test_default_savedir_is_read_even_with_t(router: Router) -> None:
    # openwrt.md B.6: `-t dir` still reads the default save dir; commit writes those
    # changes into the file but only truncates `dir`, so they stay pending
    assert router.uci("set", "network.lan.proto=dhcp", savedir=False).returncode == 0
    assert router.uci("set", "network.lan.ipaddr=10.0.0.1").returncode == 0
    assert text(router.uci("changes").stdout) == (
        "network.lan.proto='dhcp'\nnetwork.lan.ipaddr='10.0.0.1'\n")
    assert router.uci("commit", "network").returncode == 0
    assert "option proto 'dhcp'" in router.configs()["network"]
    assert router.deltas() == {"network": ""}
    assert (router.default_savedir / "network").read_text() == "network.lan.proto='dhcp'\n"


def djb_type_hash(section_type: str) -> int:
    h = 5381
    for c in section_type.encode():
        h = (h * 33 + c) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % 65536


@pytest.mark.parametrize("section_type", ["rule", "wireguard_wg0", "redirect", "x"])
def test_anonymous_id_is_ordinal_plus_type_hash(router: Router, section_type: str) -> None:
    res = router.uci("add", "firewall", section_type)
    assert res.returncode == 0
    # firewall has 3 sections, so the new one is the 4th
    assert text(res.stdout) == f"cfg04{djb_type_hash(section_type):04x}\n"
    show = router.uci("-X", "show", f"firewall.@{section_type}[-1]")
    assert text(show.stdout) == f"firewall.cfg04{djb_type_hash(section_type):04x}={section_type}\n"


def test_exit_codes(router: Router) -> None:
    assert router.uci("add", "nosuchpkg", "rule").returncode == 3
    assert router.uci("get", "network.lan.nosuch").returncode == 1
    assert router.uci("get", "network").returncode == 0
    assert router.uci("frobnicate").returncode == 255
    assert router.uci().returncode == 0  # no command: usage text, exit 0
    quiet = router.uci("-q", "get", "network.nosuch")
    assert (quiet.returncode, quiet.stderr) == (1, b"")


def test_values_round_trip_through_commit(router: Router) -> None:
    value = "it's \"quoted\" \\ $HOME"
    assert router.uci("set", f"network.lan.description={value}").returncode == 0
    assert router.uci("commit", "network").returncode == 0
    assert text(router.uci("get", "network.lan.description").stdout) == value + "\n"
    assert "option description 'it'\\''s \"quoted\" \\ $HOME'" in router.configs()["network"]


# ------------------------------------------------------------ long batches


def wireguard_peer_batch(peers: int) -> list[str]:
    lines = []
    for n in range(peers):
        lines += [f"set network.p{n}=wireguard_wg0",
                  f"set network.p{n}.public_key='k{n}'",
                  f"add_list network.p{n}.allowed_ips='10.0.0.{n}/32'"]
    return lines


def wireguard_peer_export(peers: int) -> str:
    return "package network\n" + "".join(
        f"\nconfig wireguard_wg0 'p{n}'\n\toption public_key 'k{n}'\n"
        f"\tlist allowed_ips '10.0.0.{n}/32'\n" for n in range(peers)) + "\n"


def wireguard_peer_changes(peers: int) -> str:
    return "".join(f"network.p{n}='wireguard_wg0'\nnetwork.p{n}.public_key='k{n}'\n"
                   f"network.p{n}.allowed_ips+='10.0.0.{n}/32'\n" for n in range(peers))


def test_long_batch_equals_line_by_line(tmp_path: Path) -> None:
    # what one `uci` process per line gives (the stand-in keeps state between batch lines)
    small = Router(tmp_path / "lines", {"network": ""})
    for line in wireguard_peer_batch(2):
        verb, arg = line.split(" ", 1)
        assert small.uci(verb, arg.replace("'", "")).returncode == 0
    assert text(small.uci("export", "network").stdout) == wireguard_peer_export(2)
    assert text(small.uci("changes", "network").stdout) == wireguard_peer_changes(2)

    router = Router(tmp_path / "batch", {"network": ""})
    start = time.monotonic()
    res = router.uci("batch", stdin="\n".join(wireguard_peer_batch(300)) + "\n")
    print(f"900-line uci batch: {time.monotonic() - start:.2f} s")
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    assert text(router.uci("export", "network").stdout) == wireguard_peer_export(300)
    assert text(router.uci("changes", "network").stdout) == wireguard_peer_changes(300)
    assert router.deltas()["network"] == "".join(
        f"network.p{n}='wireguard_wg0'\nnetwork.p{n}.public_key='k{n}'\n"
        f"|network.p{n}.allowed_ips='10.0.0.{n}/32'\n" for n in range(300))
    assert router.configs() == {"network": ""}
    assert router.uci("commit", "network").returncode == 0
    assert router.configs()["network"] == wireguard_peer_export(300)[len("package network\n"):]


# Lines that change the save dir in other ways than appending (commit, revert, import),
# deltas that do not replay as they were made (a rename to an invalid name), a multi-line
# value, errors, and pending changes in the default save dir.
MIXED_BATCH = [
    "set network.wg0=interface",
    "set network.wg0.proto='wireguard'",
    "add_list network.wg0.addresses='10.10.10.1/24'",
    "get network.wg0.proto",
    "set network.lan.description='two\nlines'",
    "add firewall rule",
    "set firewall.@rule[-1].name='Allow-WireGuard'",
    "get network.wg0.nosuch",
    "rename network.lan.description='bad-name'",
    "get network.lan.bad-name",
    "set network.lan.ipaddr=10.0.0.1",
    "delete network.@device[0].ports=0",
    "show network.@device[0]",
    "commit network",
    "set network.wg0.listen_port='51820'",
    "revert network.wg0",
    "set network.p1=wireguard_wg0",
    "set network.p1.public_key=k1",
    "reorder network.p1=0",
    "delete network.nosuch",
    "set network.p1.public_key=''",
    "add_list network.p1.allowed_ips=10.0.0.2/32",
    "del_list network.p1.allowed_ips=10.0.0.2/32",
    "set firewall.@zone[0].network='lan wg0'",
    "changes",
    "export network",
    "commit firewall",
    "set network.lan.proto=dhcp",
    "changes network",
    "show network.lan",
]


def test_mixed_batch_equals_line_by_line(tmp_path: Path) -> None:
    routers = []
    for name in ("batch", "lines"):
        router = Router(tmp_path / name, {"network": NETWORK, "firewall": FIREWALL})
        router.default_savedir.mkdir()
        (router.default_savedir / "network").write_text("network.lan.dns='1.1.1.1'\n")
        routers.append(router)
    batch, lines = routers
    res = batch.uci("batch", stdin="\n".join(MIXED_BATCH) + "\n")
    assert res.returncode == 0
    outs = [lines.uci("batch", stdin=line + "\n") for line in MIXED_BATCH]
    assert all(out.returncode == 0 for out in outs)
    assert text(res.stdout) == "".join(text(out.stdout) for out in outs)
    # in one process, parse-error details repeat and the k-th error gets k-1 blank lines
    assert "".join(text(out.stderr) for out in outs) == (
        "uci: Entry not found\nuci: Parse error (unknown) at line 1, byte 0\n"
        "uci: Entry not found\n")
    assert text(res.stderr) == (
        "uci: Entry not found\nuci: Parse error (unknown) at line 1, byte 0\n"
        "uci: Entry not found (unknown) at line 1, byte 0\n\n")

    def state(router: Router) -> tuple:
        return (router.configs(), router.deltas(),
                (router.default_savedir / "network").read_text(),
                text(router.uci("changes").stdout), text(router.uci("export").stdout))

    assert state(batch) == state(lines)

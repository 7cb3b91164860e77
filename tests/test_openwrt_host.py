"""The fake OpenWrt router harness: real OpenSSH, BusyBox ash only, counted execs, stand-ins."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.harness.openwrt_host import (
    UCI_STANDIN,
    OpenWrtHost,
    factory_configs,
)
from tests.harness.router_runs import require_router, run_cli

pytestmark = pytest.mark.ssh

require_router()


@pytest.fixture
def router(tmp_path):
    with OpenWrtHost(tmp_path) as host:
        yield host


def test_shell_is_busybox_ash_only(router):
    result = router.ssh("echo $0; readlink /bin/sh; readlink /bin/ash; hostname;"
                        " for c in bash python3 python sudo; do command -v $c || echo no-$c; done")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ash", "busybox", "busybox", "OpenWrt",
                                     "no-bash", "no-python3", "no-python", "no-sudo"]
    env = router.run("env | sort").stdout.splitlines()
    assert "PATH=/usr/sbin:/usr/bin:/sbin:/bin" in env
    assert "HOME=/root" in env
    assert router.run("pwd").stdout == "/root\n"


def test_router_is_isolated(router):
    # own network namespace (only lo), own PID namespace: nothing can touch the host
    assert router.run("ip -o link | cut -d: -f2").stdout.split() == ["lo"]
    assert router.run("cat /proc/1/comm").stdout.strip() == "sshd"
    # host files (libraries, Python, the stand-ins) are mounted read-only
    probe = "touch /usr/lib/test-standin/standins/x 2>/dev/null && echo writable || echo read-only"
    assert router.run(probe).stdout == "read-only\n"


def test_commands_are_counted_exactly(router):
    router.reset_counts()
    commands = [
        "true",
        "printf '%s\\n' 'single \"double\" back\\\\slash' \"$HOME\"",
        "echo 'multi\nline\twith tab \x01 and üñí'",
    ]
    for command in commands:
        assert router.ssh(command).returncode == 0
    router.run("echo not counted")
    assert router.commands() == commands
    assert router.exec_count() == 3
    assert router.upload_count() == 0
    router.reset_counts()
    assert router.exec_count() == 0
    assert router.commands(all=True) == commands


def test_stdin_is_passed_through(router):
    text = "line 1\nline 2 with 'quotes'\n"
    assert router.ssh("cat > /tmp/from-stdin", input=text).returncode == 0
    assert (router.root / "tmp" / "from-stdin").read_text() == text
    assert router.run("wc -l < /tmp/from-stdin").stdout.strip() == "2"


@pytest.mark.skipif(not UCI_STANDIN.exists(), reason="tests/standins/uci not written yet")
def test_uci_show_network_through_ssh(router):
    result = router.ssh("uci show network")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "network.lan=interface" in lines
    assert "network.lan.ipaddr='192.168.1.1'" in lines
    assert router.read_config("network") == factory_configs()["network"]
    assert router.exec_count() == 1


def test_pyinfra_scp_upload_lands_in_root(router, tmp_path):
    inventory = router.write_inventory(tmp_path / "inventory.py")
    src = tmp_path / "payload.txt"
    src.write_text("uploaded over scp\n")
    router.reset_counts()
    result = run_cli("-y", str(inventory), "files.put", f"src={src}", "dest=/tmp/x")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (router.root / "tmp" / "x").read_text() == "uploaded over scp\n"
    assert router.upload_count() == 1
    assert "scp -t /tmp/x" in router.commands()
    assert all(cmd.startswith("sh -c ") for cmd in router.commands() if "scp" not in cmd)

    # like stock OpenWrt there is no SFTP subsystem: pyinfra's default transfer fails
    result = run_cli("-y", str(inventory), "--data", "ssh_file_transfer_protocol=sftp",
                         "files.put", f"src={src}", "dest=/tmp/y")
    assert result.returncode != 0
    assert "SFTP" in result.stdout + result.stderr
    assert not (router.root / "tmp" / "y").exists()


def test_pyinfra_exec_runs_under_busybox_ash(router, tmp_path):
    """Demo: ``pyinfra <inventory> exec -- 'echo $0'`` runs under BusyBox ash."""
    inventory = router.write_inventory(tmp_path / "inventory.py")
    router.reset_counts()
    result = run_cli(str(inventory), "exec", "--",
                         "echo $0; readlink /bin/sh; command -v bash || echo no-bash")
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr  # pyinfra prints remote output on stderr
    out = [line.split("] ", 1)[1] for line in output.splitlines() if line.startswith("[router] ")]
    assert out == ["sh", "busybox", "no-bash"]  # pyinfra wraps commands as `sh -c '...'`
    command = "echo $0; readlink /bin/sh; command -v bash || echo no-bash"
    assert router.commands() == [f"sh -c '{command}'"]


def test_opkg_standin(router):
    from pyinfra.facts.opkg import OpkgPackages

    listed = router.ssh("opkg list-installed").stdout.splitlines()
    assert listed == sorted(listed)
    assert "firewall4 - 2023-09-01-598d9fab-1" in listed
    assert all(len(line.split(" - ")) == 2 for line in listed)
    assert "wireguard-tools" not in OpkgPackages().process(listed)

    # package lists live in RAM: nothing is installable before `opkg update`
    result = router.ssh("opkg install wireguard-tools")
    assert result.returncode == 255
    assert "Unknown package 'wireguard-tools'." in result.stdout
    assert "Collected errors:\n * opkg_install_cmd: Cannot install package wireguard-tools." \
        in result.stderr

    assert router.ssh("opkg update").returncode == 0
    result = router.ssh("opkg install wireguard-tools")
    assert result.returncode == 0, result.stderr
    assert "Installing kmod-wireguard (5.15.167-1) to root..." in result.stdout
    assert result.stdout.rstrip().endswith("Configuring kmod-wireguard.\n"
                                           "Configuring wireguard-tools.")
    packages = OpkgPackages().process(router.ssh("opkg list-installed").stdout.splitlines())
    assert packages["wireguard-tools"] == {"1.0.20210914-2"}
    assert packages["kmod-wireguard"] == {"5.15.167-1"}
    again = router.ssh("opkg install wireguard-tools")
    assert "Package wireguard-tools (1.0.20210914-2) installed in root is up to date." \
        in again.stdout

    result = router.ssh("opkg install no-such-pkg")
    assert result.returncode == 255
    assert "Unknown package 'no-such-pkg'." in result.stdout


def test_apk_release(tmp_path):
    from pyinfra.facts.apk import ApkPackages

    with OpenWrtHost(tmp_path, release="25.12.0") as router:
        assert "DISTRIB_RELEASE='25.12.0'" in router.run("cat /etc/openwrt_release").stdout
        assert router.run("command -v opkg || echo none").stdout.strip() == "none"
        assert router.run("command -v apk").stdout.strip() == "/usr/bin/apk"

        failed = router.ssh("apk add wireguard-tools")
        assert failed.returncode == 1
        assert "ERROR: unable to select packages:" in failed.stderr
        assert router.ssh("apk update").returncode == 0
        result = router.ssh("apk add wireguard-tools")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("(1/2) Installing kmod-wireguard (6.12.71-r1)\n"
                                        "(2/2) Installing wireguard-tools (1.0.20210914-r4)\n")
        listed = router.ssh("apk list --installed").stdout.splitlines()
        assert ("wireguard-tools-1.0.20210914-r4 aarch64_cortex-a53 {wireguard-tools}"
                " (GPL-2.0) [installed]") in listed
        assert listed == sorted(listed)
        assert ApkPackages().process(listed)["wireguard-tools"] == {"1.0.20210914-r4"}

        assert router.ssh("apk add nope").returncode == 1
        assert "nope" not in router.run("cat /etc/apk/world").stdout
        deleted = router.ssh("apk del wireguard-tools")
        assert "Purging wireguard-tools (1.0.20210914-r4)" in deleted.stdout
        assert "Purging kmod-wireguard (6.12.71-r1)" in deleted.stdout


def test_release_files(tmp_path):
    with OpenWrtHost(tmp_path, release="24.10.0", configs={"network": "", "system": ""}) as r:
        assert r.run(". /etc/openwrt_release; echo $DISTRIB_RELEASE $DISTRIB_REVISION").stdout \
            == "24.10.0 r28427-6df0e3d02a\n"
        assert 'OPENWRT_RELEASE="OpenWrt 24.10.0 r28427-6df0e3d02a"' in \
            r.run("cat /etc/os-release").stdout
        assert r.run("ls /etc/config").stdout.split() == ["network", "system"]
        assert r.run("command -v opkg").stdout.strip() == "/bin/opkg"


def test_default_release_is_factory_2305(router):
    assert router.run("cat /etc/openwrt_release").stdout == (
        "DISTRIB_ID='OpenWrt'\n"
        "DISTRIB_RELEASE='23.05.5'\n"
        "DISTRIB_REVISION='r24106-10cc5fcd00'\n"
        "DISTRIB_TARGET='mediatek/filogic'\n"
        "DISTRIB_ARCH='aarch64_cortex-a53'\n"
        "DISTRIB_DESCRIPTION='OpenWrt 23.05.5 r24106-10cc5fcd00'\n"
        "DISTRIB_TAINTS=''\n"
    )
    for name in ("network", "firewall", "dhcp", "system"):
        assert router.read_config(name) == factory_configs()[name]


def test_service_standins_log_events(router):
    result = router.ssh("/etc/init.d/network reload && /etc/init.d/firewall reload"
                        " && /etc/init.d/dnsmasq restart && ifup lan && ifdown wan"
                        " && ifup wg0 && /etc/init.d/network enabled")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Interface wg0 not found\n"  # not in the factory network config
    assert router.events() == ["network reload", "firewall reload", "dnsmasq restart",
                               "ifup lan", "ifdown wan"]
    router.clear_events()
    assert router.ssh("/etc/init.d/firewall disable; /etc/init.d/firewall enabled").returncode == 1
    assert router.events() == ["firewall disable"]


def test_standins_can_be_replaced(tmp_path):
    custom = tmp_path / "network"
    custom.write_text("#!/bin/sh /etc/rc.common\n# TEST STAND-IN (test)\nSTART=20\n"
                      "reload() { echo custom-reload; }\n")
    with OpenWrtHost(tmp_path, standins={"/etc/init.d/network": custom,
                                         "/sbin/ifup": None}) as r:
        assert r.run("/etc/init.d/network reload").stdout == "custom-reload\n"
        assert r.run("test -e /sbin/ifup || echo gone").stdout == "gone\n"


def _namespace_pids(ns_pid: int) -> list[int]:
    target = os.readlink(f"/proc/{ns_pid}/ns/pid")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "pid") == target:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_stop_leaves_nothing_behind(tmp_path):
    router = OpenWrtHost(tmp_path).start()
    base, port = str(router.base), router.port
    router.run("start-stop-daemon -S -b -x /bin/sleep -- 300")  # a detached job, like a rollback
    pids = _namespace_pids(router.ns_pid)
    assert len(pids) >= 2  # sshd + sleep
    router.stop()
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert base not in Path("/proc/self/mountinfo").read_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    router.stop()  # idempotent


def test_router_can_join_an_existing_network_namespace(tmp_path):
    """``netns=``: the router lives in a namespace made beforehand (the lab's), not a fresh one."""
    name = f"h1owrt{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", "198.18.7.1/32", "dev", "lo"],
                       check=True)
        with OpenWrtHost(tmp_path, netns=f"/run/netns/{name}") as router:
            assert "198.18.7.1/32" in router.ssh("ip -4 -o addr show dev lo").stdout
            router.run("ip addr add 198.18.7.2/32 dev lo", check=True)
        # what the router did happened in that namespace, and the namespace outlives it
        seen = subprocess.run(["ip", "-n", name, "-4", "-o", "addr", "show", "dev", "lo"],
                              capture_output=True, text=True, check=True).stdout
        assert "198.18.7.2/32" in seen
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)

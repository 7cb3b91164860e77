"""The macOS test stand-ins (tests/standins/macos/) against the recorded behaviour of the real
tools.

The stand-ins imitate ``sw_vers``, ``sysctl``, ``system_profiler``, ``networksetup``, ``ipconfig``,
``scutil``, ``pmset``, ``launchctl`` and Homebrew's ``brew`` for the end-to-end lab (fake Macs in
network namespaces on Linux). They are TEST ONLY and never used by the product. The expected
strings below are copied from the project's research notes on macOS and Ollama
(reference/macos-ollama.md, not shipped; section cited at each test); samples tagged
[COMPOSED] there are compared where they are exact by construction.

Every test uses its own state directory (``MACOS_STANDIN_STATE``) with the real-network part of
networksetup switched off, except the network-namespace test. Tests that need real root (changing
uids, network namespaces) are skipped with the reason when it is missing, unless ``CI=true``, in
which case they fail.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STANDINS = REPO / "tests" / "standins" / "macos"
IS_ROOT = os.geteuid() == 0
IN_CI = os.environ.get("CI") == "true"
NOBODY = 65534


def need(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true but: {reason}")
        pytest.skip(reason)


class Mac:
    """One fake Mac: a state directory and a way to run its tools."""

    def __init__(self, state: Path, home: Path) -> None:
        self.state = state
        self.home = home
        state.mkdir(parents=True, exist_ok=True)
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": f"{STANDINS}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "MACOS_STANDIN_STATE": str(state),
            "MACOS_STANDIN_REAL_NET": "0",
            "HOME": str(home),
            "USER": "tester",
            "LANG": "C.UTF-8",
        }

    def machine(self, **config) -> None:
        (self.state / "machine.json").write_text(json.dumps(config))

    def run(self, tool: str | os.PathLike, *args: str, euid: int | None = None, env=None,
            check_rc: int | None = None) -> subprocess.CompletedProcess:
        full_env = dict(self.env)
        if euid is not None:
            full_env["MACOS_STANDIN_EUID"] = str(euid)
        full_env.update(env or {})
        exe = tool if os.sep in str(tool) else STANDINS / str(tool)
        result = subprocess.run([sys.executable, str(exe), *args], capture_output=True, text=True,
                                env=full_env, timeout=30)
        if check_rc is not None:
            assert result.returncode == check_rc, (result.stdout, result.stderr)
        return result

    def launchctl(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("launchctl", *args, **kw)


@pytest.fixture
def mac(tmp_path):
    m = Mac(tmp_path / "state", tmp_path / "home")
    yield m
    m.launchctl("standin-reset")


def unprivileged_uid() -> int:
    """An account the tests can act as without root: ourselves, or nobody when we are root."""
    return NOBODY if IS_ROOT else os.getuid()


@pytest.fixture
def shared_dir():
    """A directory every account can use (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="macos-standin-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_plist(path: Path, **keys) -> Path:
    path.write_bytes(plistlib.dumps(keys))
    path.chmod(0o644)
    return path


def field(print_output: str, key: str) -> str | None:
    """A top-level (single-tab) ``key = value`` line of ``launchctl print`` (§3.2 whitelist)."""
    m = re.search(rf"^\t{re.escape(key)} = (.*)$", print_output, flags=re.M)
    return m.group(1) if m else None


def own_domain() -> str:
    """The domain ``launchctl list`` shows us: system for root, else user/<uid> (§3.3)."""
    return "system" if IS_ROOT else f"user/{os.getuid()}"


def print_when(mac: Mac, target: str, predicate, timeout: float = 5.0) -> str | None:
    """``launchctl print target`` once ``predicate(output)`` holds (None on timeout)."""

    def attempt():
        output = mac.launchctl("print", target).stdout
        return output if predicate(output) else None

    return wait_for(attempt, timeout)


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


# ------------------------------------------------------------------------------------------------
# sw_vers, sysctl, system_profiler (§4)


def test_sw_vers_matches_real_capture(mac):
    # §4.1 [REAL] macOS 14.2.1, TAB separators
    mac.machine(os={"product_version": "14.2.1", "build_version": "23C71"})
    out = mac.run("sw_vers", check_rc=0).stdout
    assert out == "ProductName:\t\tmacOS\nProductVersion:\t\t14.2.1\nBuildVersion:\t\t23C71\n"
    assert mac.run("sw_vers", "-productVersion").stdout == "14.2.1\n"
    assert mac.run("sw_vers", "-buildVersion").stdout == "23C71\n"
    assert mac.run("sw_vers", "-productName").stdout == "macOS\n"


def test_identity_defaults_are_an_apple_silicon_mac_on_macos_15_with_64_gb(mac):
    assert mac.run("sw_vers", "-productVersion").stdout.startswith("15.")
    out = mac.run("sysctl", "-n", "hw.memsize", "hw.optional.arm64", "hw.machine").stdout
    assert out == "68719476736\n1\narm64\n"  # §4.2: 64 GB = 68719476736
    assert "Memory: 64 GB" in mac.run("system_profiler", "SPHardwareDataType").stdout


def test_sysctl_values_and_unknown_oid(mac):
    # §4.2 values
    mac.machine(hardware={"memsize": 17179869184, "model": "Mac14,12", "chip": "Apple M2 Pro"})
    out = mac.run("sysctl", "-n", "hw.memsize", "machdep.cpu.brand_string", "hw.model",
                  "hw.optional.arm64", "sysctl.proc_translated", check_rc=0).stdout
    assert out == "17179869184\nApple M2 Pro\nMac14,12\n1\n0\n"
    assert mac.run("sysctl", "hw.memsize").stdout == "hw.memsize: 17179869184\n"
    bad = mac.run("sysctl", "-n", "hw.model", "no.such.oid")
    assert bad.returncode == 1 and bad.stdout == "Mac14,12\n"
    assert "unknown oid 'no.such.oid'" in bad.stderr


def test_system_profiler_matches_real_capture(mac):
    # §4.3 [REAL] Mac mini M1
    mac.machine(hardware={
        "model_name": "Mac mini", "model": "Macmini9,1", "model_number": "MGNR3ZE/A",
        "chip": "Apple M1", "cores_performance": 4, "cores_efficiency": 4,
        "memsize": 8 * 2**30, "firmware": "10151.140.19", "serial": "C07JG1XTQ6NV",
        "hardware_uuid": "A7C8F6C7-C339-5904-B220-CF4C3D22FB1B",
        "provisioning_udid": "00008103-001965521E60801E", "activation_lock": "Enabled"})
    expected = """\
Hardware:

    Hardware Overview:

      Model Name: Mac mini
      Model Identifier: Macmini9,1
      Model Number: MGNR3ZE/A
      Chip: Apple M1
      Total Number of Cores: 8 (4 performance and 4 efficiency)
      Memory: 8 GB
      System Firmware Version: 10151.140.19
      OS Loader Version: 10151.140.19
      Serial Number (system): C07JG1XTQ6NV
      Hardware UUID: A7C8F6C7-C339-5904-B220-CF4C3D22FB1B
      Provisioning UDID: 00008103-001965521E60801E
      Activation Lock Status: Enabled
"""
    assert mac.run("system_profiler", "SPHardwareDataType", check_rc=0).stdout == expected
    data = json.loads(mac.run("system_profiler", "-json", "SPHardwareDataType").stdout)
    item = data["SPHardwareDataType"][0]
    assert (item["machine_name"], item["chip_type"], item["number_processors"],
            item["physical_memory"]) == ("Mac mini", "Apple M1", "proc 8:4:4", "8 GB")


# ------------------------------------------------------------------------------------------------
# networksetup and ipconfig (§1)

SERVICE_ORDER = """\
An asterisk (*) denotes that a network service is disabled.
(1) Ethernet
(Hardware Port: Ethernet, Device: en0)

(2) Thunderbolt Bridge
(Hardware Port: Thunderbolt Bridge, Device: bridge0)

(3) Wi-Fi
(Hardware Port: Wi-Fi, Device: en1)

"""  # §1.3 [REAL]

HARDWARE_PORTS = """
Hardware Port: Ethernet
Device: en0
Ethernet Address: 14:dd:a9:e8:33:81

Hardware Port: Thunderbolt Bridge
Device: bridge0
Ethernet Address: N/A

Hardware Port: Wi-Fi
Device: en1
Ethernet Address: 3c:22:fb:ef:dd:1d

VLAN Configurations
===================
"""  # §1.4


def test_networksetup_listings(mac):
    out = mac.run("networksetup", "-listallnetworkservices", check_rc=0).stdout
    assert out == ("An asterisk (*) denotes that a network service is disabled.\n"
                   "Ethernet\nThunderbolt Bridge\nWi-Fi\n")  # §1.2 [COMPOSED] Mac mini
    assert mac.run("networksetup", "-listnetworkserviceorder").stdout == SERVICE_ORDER
    assert mac.run("networksetup", "-listallhardwareports").stdout == HARDWARE_PORTS
    # flags are case-insensitive; disabled services get "*" / "(*)"
    mac.run("networksetup", "-setnetworkserviceenabled", "Wi-Fi", "off", euid=0, check_rc=0)
    assert mac.run("networksetup", "-listAllNetworkServices").stdout.endswith("\n*Wi-Fi\n")
    assert "(*) Wi-Fi\n(Hardware Port: Wi-Fi, Device: en1)\n" in mac.run(
        "networksetup", "-listnetworkserviceorder").stdout


def test_networksetup_list_matches_real_capture(mac):
    # §1.2 [REAL] MacBook with a USB LAN adapter
    mac.machine(network={"services": [
        {"name": "Wi-Fi", "hardware_port": "Wi-Fi", "device": "en0"},
        {"name": "USB 10/100/1000 LAN", "hardware_port": "USB 10/100/1000 LAN", "device": "en7"},
        {"name": "Thunderbolt Bridge", "hardware_port": "Thunderbolt Bridge", "device": "bridge0"},
        {"name": "iPhone USB", "hardware_port": "iPhone USB", "device": "en8"},
        {"name": "Bluetooth PAN", "hardware_port": "Bluetooth PAN", "device": "en9",
         "enabled": False}]})
    assert mac.run("networksetup", "-listallnetworkservices").stdout == """\
An asterisk (*) denotes that a network service is disabled.
Wi-Fi
USB 10/100/1000 LAN
Thunderbolt Bridge
iPhone USB
*Bluetooth PAN
"""
    assert mac.run("networksetup", "-getinfo", "USB 10/100/1000 LAN").returncode == 0


def test_networksetup_vpn_service_with_empty_device(mac):
    # §1.3 [FIXTURE] variants: disabled VPN, empty device
    mac.machine(network={"services": [
        {"name": "Ethernet", "hardware_port": "Ethernet", "device": "en0"},
        {"name": "Old VPN (Office)", "hardware_port": "L2TP", "device": "", "enabled": False},
        {"name": "Tailscale", "hardware_port": "io.tailscale.ipn.macsys", "device": ""}]})
    out = mac.run("networksetup", "-listnetworkserviceorder").stdout
    assert "(*) Old VPN (Office)\n(Hardware Port: L2TP, Device: )\n" in out
    assert "(2) Tailscale\n(Hardware Port: io.tailscale.ipn.macsys, Device: )\n" in out


def test_networksetup_getinfo_dhcp_formats(mac):
    mac.machine(network={"services": [
        {"name": "Ethernet", "hardware_port": "Ethernet", "device": "en0",
         "ethernet_address": "14:dd:a9:e8:33:81",
         "dhcp_lease": {"ip": "192.168.5.4", "mask": "255.255.255.0", "router": "192.168.5.1"}},
        {"name": "Wi-Fi", "hardware_port": "Wi-Fi", "device": "en1",
         "ethernet_address": "c4:b3:01:a0:64:98",
         "dhcp_lease": {"ip": "10.10.10.113", "mask": "255.255.255.0", "router": "10.10.10.1"}},
        {"name": "USB LAN", "hardware_port": "USB 10/100/1000 LAN", "device": "en7",
         "ethernet_address": "<mac_address>"}]})
    # §1.5 [REAL] wired with a lease (publisher stripped trailing whitespace: compare rstripped)
    wired = """\
DHCP Configuration
IP address: 192.168.5.4
Subnet mask: 255.255.255.0
Router: 192.168.5.1
Client ID:
IPv6: Automatic
IPv6 IP address: none
IPv6 Router: none
Ethernet Address: 14:dd:a9:e8:33:81
"""
    out = mac.run("networksetup", "-getinfo", "Ethernet", check_rc=0).stdout
    assert [line.rstrip() for line in out.splitlines()] == wired.splitlines()
    # §1.5 [REAL] Wi-Fi with a lease: last line is "Wi-Fi ID:"
    out = mac.run("networksetup", "-getinfo", "Wi-Fi").stdout
    assert out.splitlines()[1] == "IP address: 10.10.10.113"
    assert out.endswith("IPv6 Router: none\nWi-Fi ID: c4:b3:01:a0:64:98\n")
    # §1.5 [REAL] no lease: the address lines are absent and "Client ID: " keeps its space
    no_lease = ("DHCP Configuration\nClient ID: \nIPv6: Automatic\nIPv6 IP address: none\n"
                "IPv6 Router: none\nEthernet Address: <mac_address>\n")
    assert mac.run("networksetup", "-getinfo", "USB LAN").stdout == no_lease


def test_networksetup_setmanual_dns_and_back_to_dhcp(mac):
    # §1.8 recipe; §1.5 [COMPOSED] manual layout (no "Client ID:" line)
    rc = mac.run("networksetup", "-setmanual", "Ethernet", "192.168.250.20", "255.255.255.0",
                 "192.168.250.1", euid=0)
    assert (rc.returncode, rc.stdout, rc.stderr) == (0, "", "")  # silent success
    assert mac.run("networksetup", "-getinfo", "Ethernet").stdout == """\
Manual Configuration
IP address: 192.168.250.20
Subnet mask: 255.255.255.0
Router: 192.168.250.1
IPv6: Automatic
IPv6 IP address: none
IPv6 Router: none
Ethernet Address: 14:dd:a9:e8:33:81
"""
    assert mac.run("ipconfig", "getifaddr", "en0").stdout == "192.168.250.20\n"  # §1.8
    assert mac.run("ipconfig", "getifaddr", "en1").returncode == 1
    # §1.6: the sentence when nothing is set, one IP per line otherwise, "empty" clears
    assert mac.run("networksetup", "-getdnsservers", "Ethernet").stdout == (
        "There aren't any DNS Servers set on Ethernet.\n")
    mac.run("networksetup", "-setdnsservers", "Ethernet", "192.168.250.1", "1.1.1.1", euid=0,
            check_rc=0)
    assert mac.run("networksetup", "-getdnsservers", "Ethernet").stdout == (
        "192.168.250.1\n1.1.1.1\n")
    mac.run("networksetup", "-setdhcp", "Ethernet", euid=0, check_rc=0)
    mac.run("networksetup", "-setdnsservers", "Ethernet", "Empty", euid=0, check_rc=0)
    assert mac.run("networksetup", "-getinfo", "Ethernet").stdout.startswith(
        "DHCP Configuration\nClient ID: \n")
    assert mac.run("networksetup", "-getdnsservers", "Ethernet").stdout == (
        "There aren't any DNS Servers set on Ethernet.\n")


def test_networksetup_errors_and_exit_codes(mac):
    # §1.7 [REAL]: two lines, exit 4 (on stdout by default; the stream is configurable)
    for name in ("Ethernet 2", "en0"):
        res = mac.run("networksetup", "-getinfo", name)
        assert res.returncode == 4
        assert res.stdout == (f"{name} is not a recognized network service.\n"
                              "** Error: The parameters were not valid.\n")
    mac.machine(network={"errors_to": "stderr"})
    res = mac.run("networksetup", "-getdnsservers", "Nope")
    assert (res.returncode, res.stdout) == (4, "")
    assert res.stderr.startswith("Nope is not a recognized network service.\n")
    # §1.7 [REAL] non-admin setter; nothing changes
    res = mac.run("networksetup", "-setmanual", "Ethernet", "10.0.0.2", "255.0.0.0", "10.0.0.1",
                  euid=501)
    assert res.returncode != 0
    assert "** Error: Command requires admin privileges." in res.stdout + res.stderr
    assert mac.run("networksetup", "-getinfo", "Ethernet").stdout.startswith("DHCP")
    res = mac.run("networksetup", "-setmanual", "Ethernet", "10.0.0.300", "255.0.0.0",
                  "10.0.0.1", euid=0)
    assert res.returncode == 4


def test_networksetup_really_configures_an_interface_in_a_network_namespace(mac):
    need(IS_ROOT and shutil.which("ip") is not None,
         "needs root and iproute2 to create a throw-away network namespace")
    ns = f"macstandin-{os.getpid()}-{secrets.token_hex(3)}"
    add = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    need(add.returncode == 0, f"cannot create a network namespace: {add.stderr.strip()}")
    try:
        def in_ns(*cmd: str) -> subprocess.CompletedProcess:
            return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True,
                                  text=True, env={**os.environ, **mac.env}, timeout=30)

        # a dummy interface when the kernel has the module, else one end of a veth pair
        ifname = "eth0"
        if in_ns("ip", "link", "add", ifname, "type", "dummy").returncode != 0:
            assert in_ns("ip", "link", "add", ifname, "type", "veth", "peer", "name",
                         "peer0").returncode == 0
        mac.machine(network={"services": [
            {"name": "Ethernet", "hardware_port": "Ethernet", "device": "en0",
             "linux_ifname": ifname},
            {"name": "Wi-Fi", "hardware_port": "Wi-Fi", "device": "en1"}]})
        mac.env["MACOS_STANDIN_REAL_NET"] = "1"
        ns_tool = [sys.executable, str(STANDINS / "networksetup")]
        res = in_ns(*ns_tool, "-setmanual", "Ethernet", "192.168.250.20", "255.255.255.0",
                    "192.168.250.1")
        assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
        addrs = in_ns("ip", "-4", "-o", "addr", "show", "dev", ifname).stdout
        assert "inet 192.168.250.20/24" in addrs
        assert "default via 192.168.250.1 dev eth0" in in_ns("ip", "-4", "route").stdout
        # -getinfo's last line is the interface's real MAC address
        mac_addr = json.loads(in_ns("ip", "-j", "link", "show", "dev", ifname).stdout)[0][
            "address"]
        info = in_ns(*ns_tool, "-getinfo", "Ethernet").stdout
        assert info.startswith("Manual Configuration\nIP address: 192.168.250.20\n")
        assert info.endswith(f"Ethernet Address: {mac_addr}\n")
        # back to DHCP: the address goes; with no DHCP server there is no lease
        assert in_ns(*ns_tool, "-setdhcp", "Ethernet").returncode == 0
        assert "inet " not in in_ns("ip", "-4", "-o", "addr", "show", "dev", ifname).stdout
        assert in_ns(*ns_tool, "-getinfo", "Ethernet").stdout.startswith(
            "DHCP Configuration\nClient ID: \n")
        # a "lease" that appears on the interface is what -getinfo reports
        in_ns("ip", "addr", "add", "10.9.8.7/16", "dev", ifname)
        in_ns("ip", "route", "add", "default", "via", "10.9.0.1", "dev", ifname)
        info = in_ns(*ns_tool, "-getinfo", "Ethernet").stdout
        assert info.startswith("DHCP Configuration\nIP address: 10.9.8.7\n"
                               "Subnet mask: 255.255.0.0\nRouter: 10.9.0.1\n")
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# ------------------------------------------------------------------------------------------------
# pmset (§2)

MAC_MINI_LIVE = """\
System-wide power settings:
Currently in use:
 disksleep            10
 powernap             1
 womp                 1
 networkoversleep     0
 sleep                10 (sleep prevented by sharingd, powerd, bluetoothd)
 Sleep On Power Button 1
 ttyskeepawake        1
 tcpkeepalive         1
 autorestart          1
 standby              0
 displaysleep         10
"""  # §2.1 [REAL] key/values, padding per pmset.c

LAPTOP_LIVE = """\
System-wide power settings:
Currently in use:
 lidwake              1
 autopoweroff         1
 standbydelayhigh     86400
 autopoweroffdelay    28800
 standbydelaylow      10800
 standby              1
 proximitywake        0
 ttyskeepawake        1
 hibernatemode        3
 gpuswitch            2
 powernap             1
 hibernatefile        /var/vm/sleepimage
 highstandbythreshold 50
 displaysleep         28
 sleep                1 (sleep prevented by sharingd)
 acwake               0
 halfdim              1
 tcpkeepalive         1
 disksleep            0
"""  # §2.1 [REAL] laptop, macOS 12

DESKTOP_CUSTOM = """\
AC Power:
 Sleep On Power Button 1
 standbydelayhigh     86400
 standbydelaylow      86400
 proximitywake        1
 standby              1
 ttyskeepawake        1
 hibernatemode        3
 powernap             1
 gpuswitch            2
 hibernatefile        /var/vm/sleepimage
 highstandbythreshold 50
 displaysleep         0
 womp                 1
 networkoversleep     0
 sleep                0
 halfdim              1
 autorestart          1
 disksleep            10
"""  # §2.2 [REAL] desktop


def profile_from(sample: str) -> dict:
    """Parse a pmset listing with the §2.3 regex (also proves that regex works on our output)."""
    result = {}
    for line in sample.splitlines():
        m = re.match(r"^ (.+?)\s+(\S+)(\s+\(.*\))?$", line)
        if m and not line.startswith(" SleepDisabled"):
            value = m.group(2)
            result[m.group(1)] = int(value) if value.isdigit() else value
    return result


def test_pmset_g_matches_real_captures(mac):
    mac.machine(pmset={"profiles": {"AC Power": profile_from(MAC_MINI_LIVE)},
                       "sleep_prevented_by": ["sharingd", "powerd", "bluetoothd"]})
    assert mac.run("pmset", "-g", check_rc=0).stdout == MAC_MINI_LIVE
    assert mac.run("pmset", "-g", "live").stdout == MAC_MINI_LIVE
    # -g custom has no annotations
    custom = mac.run("pmset", "-g", "custom").stdout
    assert custom.startswith("AC Power:\n") and "prevented" not in custom
    assert " sleep                10\n" in custom


def test_pmset_laptop_capture_and_custom_profiles(tmp_path):
    laptop = Mac(tmp_path / "laptop", tmp_path / "home")
    laptop.machine(hardware={"laptop": True}, pmset={
        "profiles": {"Battery Power": profile_from(LAPTOP_LIVE),
                     "AC Power": profile_from(LAPTOP_LIVE)},
        "sleep_prevented_by": ["sharingd"]})
    assert laptop.run("pmset", "-g").stdout == LAPTOP_LIVE
    custom = laptop.run("pmset", "-g", "custom").stdout
    assert custom.index("Battery Power:") < custom.index("AC Power:")  # §2.2 order
    desktop = Mac(tmp_path / "desktop", tmp_path / "home")
    desktop.machine(pmset={"profiles": {"AC Power": profile_from(DESKTOP_CUSTOM)}})
    assert desktop.run("pmset", "-g", "custom").stdout == DESKTOP_CUSTOM


def test_pmset_server_settings_need_root(mac):
    # §2.3 recipe; writes need root: pmset.c prints "'pmset' must be run as root..." and exits 1
    settings = ["-a", "sleep", "0", "disksleep", "0", "displaysleep", "10", "womp", "1",
                "autorestart", "1", "powernap", "0", "tcpkeepalive", "1", "ttyskeepawake", "1"]
    res = mac.run("pmset", *settings, euid=501)
    assert (res.returncode, res.stdout) == (1, "'pmset' must be run as root...\n")
    assert " autorestart          0\n" in mac.run("pmset", "-g").stdout  # unchanged
    res = mac.run("pmset", *settings, euid=0)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    mac.machine(pmset={"sleep_prevented_by": ["coreaudiod", "powerd"]})
    live = mac.run("pmset", "-g").stdout
    # §2.1 [REAL] grep of a server-tuned Mac: the annotation stays even with sleep 0
    for line in (" autorestart          1", " disksleep            0",
                 " sleep                0 (sleep prevented by coreaudiod, powerd)"):
        assert line + "\n" in live
    assert profile_from(live)["womp"] == 1 and profile_from(live)["powernap"] == 0
    # -c is the same profile on a desktop; -b has none: silently nothing
    mac.run("pmset", "-c", "displaysleep", "15", euid=0, check_rc=0)
    mac.run("pmset", "-b", "displaysleep", "3", euid=0, check_rc=0)
    assert profile_from(mac.run("pmset", "-g", "custom").stdout)["displaysleep"] == 15


def test_pmset_disablesleep_warnings_and_bad_arguments(mac):
    mac.run("pmset", "-a", "disablesleep", "1", euid=0, check_rc=0)
    assert mac.run("pmset", "-g").stdout.startswith(
        "System-wide power settings:\n SleepDisabled\t\t1\nCurrently in use:\n")  # §2.1
    res = mac.run("pmset", "disablesleep", "0", euid=501)  # pmset.c: message, but exit 0
    assert (res.returncode, res.stdout) == (0, "'pmset' must be run as root...\n")
    res = mac.run("pmset", "sleep", "5", "displaysleep", "10", "disksleep", "0", euid=0)
    assert res.returncode == 0
    assert res.stderr == ('Warning: Idle sleep timings for "AC Power" may not behave as'
                          ' expected.\n- Display sleep should have a lower timeout than system'
                          ' sleep.\n- Disk sleep should be non-zero whenever system sleep is'
                          ' non-zero.\n')
    usage = "Usage: pmset <options>\nSee pmset(1) for details: 'man pmset'\n"
    for args in (["sleep", "never"], ["sleep", "-1"], ["bogus", "1"], ["sleep"], []):
        res = mac.run("pmset", *args, euid=0)
        assert (res.returncode, res.stdout) == (1, usage), args
    res = mac.run("pmset", "-g", "bogus")
    assert res.returncode == 1 and res.stdout.startswith("Error: unhandled argument bogus\n")
    # lidwake does not exist on a Mac mini: accepted, ignored (§2.3)
    mac.run("pmset", "-a", "lidwake", "1", euid=0, check_rc=0)
    assert "lidwake" not in mac.run("pmset", "-g").stdout


# ------------------------------------------------------------------------------------------------
# launchctl (§0 items 1-4, §3)


def agent_plist(path: Path, label: str, script: str, **extra) -> Path:
    keys = {"Label": label, "ProgramArguments": ["/bin/sh", "-c", script],
            "LimitLoadToSessionType": ["Aqua", "Background"]}
    keys.update(extra)
    return write_plist(path, **keys)


def test_gui_domain_missing_when_nobody_is_at_the_console(mac, tmp_path):
    # §0.1 / §3.7: over SSH on a headless Mac gui/<uid> does not exist
    res = mac.launchctl("print", "gui/501")
    assert (res.returncode, res.stderr) == (
        112, "Bad request.\nCould not find domain for user gui: 501\n")
    plist = agent_plist(tmp_path / "a.plist", "com.ollama", "sleep 30")
    res = mac.launchctl("bootstrap", "gui/501", str(plist), euid=501)
    assert (res.returncode, res.stderr) == (
        125, "Bootstrap failed: 125: Domain does not support specified action\n")
    res = mac.launchctl("kickstart", "-k", "gui/501/com.ollama", euid=501)
    assert (res.returncode, res.stderr) == (
        125, 'Could not kickstart service "com.ollama": 125: Domain does not support specified'
             ' action\n')  # §3.6 [REAL]
    assert mac.launchctl("managername", euid=501).stdout == "Background\n"
    assert mac.launchctl("managername", euid=0).stdout == "System\n"
    # someone logs in at the console: the gui domain appears; services not loaded -> 113
    uid = os.getuid()
    (mac.state / "console_user").write_text(f"{uid}\n")
    assert mac.launchctl("print", f"gui/{uid}").returncode == 0
    res = mac.launchctl("print", f"gui/{uid}/com.ollama")
    assert (res.returncode, res.stderr) == (
        113, f'Bad request.\nCould not find service "com.ollama" in domain for user gui: {uid}\n')


def test_launchctl_runs_supervises_and_stops_a_job(mac, tmp_path):
    uid = os.getuid()
    domain = own_domain()
    out = tmp_path / "job.out"
    plist = agent_plist(
        tmp_path / "com.example.sleeper.plist", "com.example.sleeper",
        'echo "FOO=$FOO PWD=$(pwd) PATH=$PATH XPC=$XPC_SERVICE_NAME"; exec sleep 60',
        EnvironmentVariables={"FOO": "bar baz"}, WorkingDirectory=str(tmp_path),
        StandardOutPath=str(out), RunAtLoad=True, KeepAlive=True, ThrottleInterval=1)
    res = mac.launchctl("bootstrap", domain, str(plist), check_rc=0)
    assert (res.stdout, res.stderr) == ("", "")
    printed = mac.launchctl("print", f"{domain}/com.example.sleeper", check_rc=0).stdout
    assert printed.startswith(f"{domain}/com.example.sleeper = {{\n\tactive count = 1\n")
    assert field(printed, "path") == str(plist)
    assert field(printed, "state") == "running"
    assert field(printed, "program") == "/bin/sh"
    assert field(printed, "runs") == "1"
    assert field(printed, "last exit code") == "(never exited)"
    assert field(printed, "properties") == "keepalive | runatload | inferred program"
    assert "\tenvironment = {\n\t\tFOO => bar baz\n\t\tXPC_SERVICE_NAME => com.example.sleeper\n" \
           "\t}\n" in printed
    assert "\tdefault environment = {\n\t\tPATH => /usr/bin:/bin:/usr/sbin:/sbin\n\t}\n" in printed
    pid = int(field(printed, "pid"))
    assert wait_for(lambda: out.exists() and out.read_text())
    assert out.read_text() == (f"FOO=bar baz PWD={tmp_path} PATH=/usr/bin:/bin:/usr/sbin:/sbin"
                               " XPC=com.example.sleeper\n")
    # §3.3: list (tab-separated) and list <label> (old-style plist)
    listing = mac.launchctl("list", euid=uid).stdout
    assert listing.splitlines()[0] == "PID\tStatus\tLabel"
    assert f"{pid}\t0\tcom.example.sleeper" in listing.splitlines()
    one = mac.launchctl("list", "com.example.sleeper", euid=uid).stdout
    assert re.search(rf'^\t"PID" = {pid};$', one, flags=re.M)
    assert '\t"LastExitStatus" = 0;\n' in one and one.endswith("\t);\n};\n")
    # §0.3: bootstrap is not idempotent
    res = mac.launchctl("bootstrap", domain, str(plist))
    assert res.returncode == 5
    assert res.stderr.splitlines()[0] == "Bootstrap failed: 5: Input/output error"
    # KeepAlive: a killed job comes back; the signal replaces "last exit code" (§3.2)
    os.kill(pid, signal.SIGKILL)
    printed = print_when(mac, f"{domain}/com.example.sleeper",
                         lambda p: field(p, "runs") == "2" and field(p, "pid"))
    assert printed, "the job was not restarted"
    assert field(printed, "last terminating signal") == "Killed: 9"
    assert field(printed, "last exit code") is None
    new_pid = int(field(printed, "pid"))
    assert new_pid != pid
    # kickstart -k restarts; -p prints the pid
    res = mac.launchctl("kickstart", "-kp", f"{domain}/com.example.sleeper", check_rc=0)
    assert res.stdout.strip().isdigit() and int(res.stdout) != new_pid
    printed = mac.launchctl("print", f"{domain}/com.example.sleeper").stdout
    assert field(printed, "last terminating signal") == "Terminated: 15"
    last_pid = int(field(printed, "pid"))
    # bootout stops it for good
    mac.launchctl("bootout", f"{domain}/com.example.sleeper", check_rc=0)
    assert wait_for(lambda: not Path(f"/proc/{last_pid}").exists(), 2), "job still running"
    res = mac.launchctl("print", f"{domain}/com.example.sleeper")
    assert res.returncode == 113
    res = mac.launchctl("bootout", f"{domain}/com.example.sleeper")
    assert (res.returncode, res.stderr) == (3, "Boot-out failed: 3: No such process\n")
    res = mac.launchctl("kickstart", f"{domain}/com.example.sleeper")
    assert (res.returncode, res.stderr) == (
        113, 'Could not kickstart service "com.example.sleeper": 113: Could not find specified'
             ' service\n')


LIST_LABEL_CAPTURE = """\
{
        "StandardOutPath" = "/opt/homebrew/var/log/ollama.log";
        "LimitLoadToSessionType" = "Aqua";
        "StandardErrorPath" = "/opt/homebrew/var/log/ollama.log";
        "Label" = "homebrew.mxcl.ollama";
        "OnDemand" = false;
        "LastExitStatus" = 0;
        "PID" = 24901;
        "Program" = "/opt/homebrew/opt/ollama/bin/ollama";
        "ProgramArguments" = (
                "/opt/homebrew/opt/ollama/bin/ollama";
                "serve";
        );
};
"""  # §3.3 [REAL] (tabs published as 8 spaces)


def test_launchctl_list_label_matches_real_capture(mac, tmp_path, shared_dir):
    uid = unprivileged_uid()  # root's launchctl list would show the system domain
    prefix = shared_dir / "opt" / "homebrew"
    program = prefix / "opt" / "ollama" / "bin" / "ollama"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\nexec sleep 60\n")
    program.chmod(0o755)
    (prefix / "var" / "log").mkdir(parents=True)
    for root, dirs, _files in os.walk(shared_dir):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o777)
    log = str(prefix / "var" / "log" / "ollama.log")
    plist = write_plist(tmp_path / "homebrew.mxcl.ollama.plist", Label="homebrew.mxcl.ollama",
                        ProgramArguments=[str(program), "serve"], RunAtLoad=True, KeepAlive=True,
                        StandardOutPath=log, StandardErrorPath=log,
                        LimitLoadToSessionType=["Aqua", "Background", "LoginWindow",
                                                "StandardIO", "System"])
    (mac.state / "console_user").write_text(str(uid))  # a Terminal in the GUI session
    mac.launchctl("bootstrap", f"gui/{uid}", str(plist), check_rc=0)
    pid = field(mac.launchctl("print", f"gui/{uid}/homebrew.mxcl.ollama").stdout, "pid")
    out = mac.launchctl("list", "homebrew.mxcl.ollama", euid=uid,
                        env={"MACOS_STANDIN_SESSION": "Aqua"}, check_rc=0).stdout
    assert out.expandtabs(8) == LIST_LABEL_CAPTURE.replace("/opt/homebrew", str(prefix)).replace(
        "24901", pid)
    # over SSH (Background session) `launchctl list` looks at user/<uid>, not gui/<uid> (§3.3)
    res = mac.launchctl("list", "homebrew.mxcl.ollama", euid=uid)
    assert (res.returncode, res.stderr) == (
        113, 'Could not find service "homebrew.mxcl.ollama" in domain for port\n')


def test_launchctl_keepalive_restarts_an_exiting_job(mac, tmp_path):
    domain = own_domain()
    runs = tmp_path / "runs"
    plist = agent_plist(tmp_path / "crash.plist", "com.example.crasher",
                        f"echo run >> {runs}; exit 78", KeepAlive=True, ThrottleInterval=1)
    mac.launchctl("bootstrap", domain, str(plist), check_rc=0)
    assert wait_for(lambda: runs.exists() and len(runs.read_text().splitlines()) >= 2, 5)
    printed = mac.launchctl("print", f"{domain}/com.example.crasher").stdout
    assert field(printed, "last exit code") == "78: EX_CONFIG"  # §3.2 symbolic suffix
    assert int(field(printed, "successive crashes")) >= 1
    assert field(printed, "state") in ("spawn scheduled", "running")
    # a job without KeepAlive runs once; without RunAtLoad only when kickstarted
    once = agent_plist(tmp_path / "once.plist", "com.example.once", "exit 0", RunAtLoad=True)
    lazy = agent_plist(tmp_path / "lazy.plist", "com.example.lazy", "exit 1")
    mac.launchctl("bootstrap", domain, str(once), str(lazy), check_rc=0)
    printed = print_when(mac, f"{domain}/com.example.once",
                         lambda p: field(p, "last exit code") == "0")
    assert field(printed, "state") == "not running" and field(printed, "pid") is None
    printed = mac.launchctl("print", f"{domain}/com.example.lazy").stdout
    assert (field(printed, "runs"), field(printed, "state")) == ("0", "not running")
    mac.launchctl("kickstart", f"{domain}/com.example.lazy", check_rc=0)
    printed = print_when(mac, f"{domain}/com.example.lazy",
                         lambda p: field(p, "last exit code") == "1")
    assert field(printed, "runs") == "1"
    listing = mac.launchctl("list", euid=os.getuid()).stdout
    assert "-\t1\tcom.example.lazy" in listing.splitlines()


def test_launchctl_disable_enable_and_session_types(mac, tmp_path):
    uid = os.getuid()
    domain = f"user/{uid}"
    plist = agent_plist(tmp_path / "d.plist", "com.example.d", "sleep 30", RunAtLoad=True)
    mac.launchctl("disable", f"{domain}/com.example.d", check_rc=0)
    res = mac.launchctl("bootstrap", domain, str(plist))
    assert (res.returncode, res.stderr) == (119, "Bootstrap failed: 119: Service is disabled\n")
    assert mac.launchctl("print-disabled", domain).stdout == (
        'disabled services = {\n\t"com.example.d" => disabled\n}\n')  # §3.4
    mac.launchctl("enable", f"{domain}/com.example.d", check_rc=0)
    assert mac.launchctl("print-disabled", domain).stdout == (
        'disabled services = {\n\t"com.example.d" => enabled\n}\n')
    mac.launchctl("bootstrap", domain, str(plist), check_rc=0)
    assert '\t"com.example.d" => enabled\n' in mac.launchctl("print", domain).stdout
    # §3.1: an agent without LimitLoadToSessionType is Aqua-only: not loadable into user/<uid>
    aqua = write_plist(tmp_path / "aqua.plist", Label="com.example.aqua",
                       ProgramArguments=["/bin/sleep", "30"])
    res = mac.launchctl("bootstrap", domain, str(aqua))
    assert res.returncode == 125
    # but it is loadable into the gui domain of the console user
    (mac.state / "console_user").write_text(str(uid))
    mac.launchctl("bootstrap", f"gui/{uid}", str(aqua), check_rc=0)
    printed = mac.launchctl("print", f"gui/{uid}/com.example.aqua").stdout
    assert field(printed, "domain") == f"gui/{uid} [100007]"
    # a group/world-writable plist is refused like launchd does
    bad = agent_plist(tmp_path / "bad.plist", "com.example.bad", "sleep 1")
    bad.chmod(0o666)
    assert mac.launchctl("bootstrap", domain, str(bad)).returncode == 5
    assert mac.launchctl("bootstrap", domain, str(tmp_path / "missing.plist")).returncode == 5


def test_launchctl_non_root_errors(mac, tmp_path):
    uid = unprivileged_uid()
    plist = agent_plist(tmp_path / "x.plist", "com.example.x", "sleep 30", RunAtLoad=True)
    res = mac.launchctl("bootstrap", "system", str(plist), euid=uid)
    assert res.returncode == 1
    # §3.6: the second bootstrap of a loaded label, as a non-root user
    if IS_ROOT:
        mac.launchctl("bootstrap", f"user/{uid}", str(plist), euid=uid, check_rc=0)
        res = mac.launchctl("bootstrap", f"user/{uid}", str(plist), euid=uid)
        assert (res.returncode, res.stderr) == (
            5, "Bootstrap failed: 5: Input/output error\n"
               "Try re-running the command as root for richer errors.\n")
        res = mac.launchctl("print", f"user/{uid}", euid=uid + 1)
        assert (res.returncode, res.stderr) == (1, "Could not print domain: 1: Operation not"
                                                   " permitted\n")


def test_launchctl_job_survives_the_session_that_loaded_it(mac, tmp_path):
    domain = f"user/{os.getuid()}"
    plist = agent_plist(tmp_path / "s.plist", "com.example.survivor", "exec sleep 60",
                        RunAtLoad=True)
    # an "SSH session": its own process group, killed as a whole after the bootstrap
    session = subprocess.Popen(
        ["/bin/sh", "-c", f'"{sys.executable}" "{STANDINS / "launchctl"}" bootstrap {domain}'
                          f' "{plist}" && echo loaded && exec sleep 60'],
        env={**os.environ, **mac.env}, stdout=subprocess.PIPE, text=True,
        start_new_session=True)
    assert session.stdout.readline() == "loaded\n"
    os.killpg(session.pid, signal.SIGHUP)
    os.killpg(session.pid, signal.SIGKILL)
    session.wait()
    time.sleep(0.2)
    printed = mac.launchctl("print", f"{domain}/com.example.survivor").stdout
    assert field(printed, "state") == "running"
    assert Path(f"/proc/{field(printed, 'pid')}").exists()
    # standin-reset is the power cut: nothing stays loaded
    mac.launchctl("standin-reset", check_rc=0)
    assert mac.launchctl("print", f"{domain}/com.example.survivor").returncode == 113


def test_launchctl_standin_boot_is_a_reboot(mac, tmp_path):
    # §0.1 / §2.4: after a reboot without auto-login no LaunchAgent runs; with it, they do
    uid = os.getuid()
    agents = tmp_path / "LaunchAgents"
    agents.mkdir()
    agent_plist(agents / "com.ollama.plist", "com.ollama", "exec sleep 60", RunAtLoad=True)
    mac.machine(launchd={"daemon_dirs": [], "agent_dirs": [str(agents)]})
    mac.launchctl("standin-boot", check_rc=0)
    assert mac.launchctl("print", f"gui/{uid}").returncode == 112
    (mac.state / "console_user").write_text(str(uid))
    mac.launchctl("standin-boot", check_rc=0)
    printed = mac.launchctl("print", f"gui/{uid}/com.ollama").stdout
    assert field(printed, "state") == "running"


def test_launchctl_system_daemon_runs_as_its_username(mac, shared_dir):
    need(IS_ROOT, "needs root to start a LaunchDaemon under another UserName")
    out = shared_dir / "id.out"
    plist = write_plist(shared_dir / "d.plist", Label="com.example.daemon",
                        ProgramArguments=["/bin/sh", "-c", "id -u; echo $HOME $USER"],
                        UserName="nobody", RunAtLoad=True, StandardOutPath=str(out))
    mac.launchctl("bootstrap", "system", str(plist), check_rc=0)
    assert wait_for(lambda: out.exists() and out.read_text().count("\n") >= 2)
    account = __import__("pwd").getpwnam("nobody")
    assert out.read_text() == f"{NOBODY}\n{account.pw_dir} nobody\n"
    printed = mac.launchctl("print", "system/com.example.daemon").stdout
    assert field(printed, "username") == "nobody"
    assert field(printed, "type") == "LaunchDaemon"
    # a log path the job's user cannot create: launchd cannot spawn it (EX_CONFIG)
    bad = write_plist(shared_dir / "bad.plist", Label="com.example.nolog",
                      ProgramArguments=["/bin/true"], UserName="nobody", RunAtLoad=True,
                      StandardErrorPath="/root/no-such-dir/err.log")
    mac.launchctl("bootstrap", "system", str(bad), check_rc=0)
    printed = mac.launchctl("print", "system/com.example.nolog").stdout
    assert (field(printed, "state"), field(printed, "last exit code")) == (
        "spawn failed", "78: EX_CONFIG")


# ------------------------------------------------------------------------------------------------
# brew (§5)


@pytest.fixture
def brew(mac, tmp_path):
    """brew installed at <prefix>/bin/brew, as the lab installs it at /opt/homebrew/bin/brew."""
    prefix = tmp_path / "homebrew"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy(STANDINS / "brew", prefix / "bin" / "brew")
    return prefix


def test_brew_refuses_root(mac, brew):
    res = mac.run(brew / "bin" / "brew", "install", "ollama", euid=0)
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == (
        "Error: Running Homebrew as root is extremely dangerous and no longer supported.\n"
        "As Homebrew does not drop privileges on installation you would be giving all\n"
        "build scripts full access to your system.\n")
    assert mac.run(brew / "bin" / "brew", "--version", euid=0).returncode == 1
    assert mac.run(brew / "bin" / "brew", "--prefix", euid=0).stdout == f"{brew}\n"


def test_brew_install_list_info_upgrade_uninstall(mac, brew):
    b = brew / "bin" / "brew"
    assert mac.run(b, "--version", euid=501).stdout == "Homebrew 4.4.0\n"  # §5.1
    assert mac.run(b, "--prefix", "ollama", euid=501).stdout == f"{brew}/opt/ollama\n"
    res = mac.run(b, "list", "--versions", "ollama", euid=501)
    assert (res.returncode, res.stdout) == (1, "")  # §5.3 [SRC]: not installed
    info = json.loads(mac.run(b, "info", "--json=v2", "--formula", "ollama", euid=501).stdout)
    assert set(info) == {"formulae", "casks"} and info["formulae"][0]["installed"] == []
    mac.run(b, "install", "ollama", euid=501, check_rc=0)
    assert mac.run(b, "list", "--versions", "ollama", euid=501).stdout == "ollama 0.32.3\n"
    assert mac.run(b, "list", "--formula", "-1", euid=501).stdout == "mlx-c\nollama\n"
    # §5.4 field set
    f = json.loads(mac.run(b, "info", "--json=v2", "ollama", euid=501).stdout)["formulae"][0]
    assert f["name"] == f["full_name"] == "ollama"
    assert f["versions"]["stable"] == "0.32.3" and f["linked_keg"] == "0.32.3"
    assert f["dependencies"] == ["mlx-c"] and f["outdated"] is False and f["pinned"] is False
    assert f["installed"][0]["version"] == "0.32.3"
    assert f["installed"][0]["installed_on_request"] is True
    assert f["service"]["run"] == [f"{brew}/opt/ollama/bin/ollama", "serve"]
    assert f["service"]["keep_alive"] == {"always": True}
    assert f["service"]["environment_variables"] == {"OLLAMA_FLASH_ATTENTION": "1",
                                                     "OLLAMA_KV_CACHE_TYPE": "q8_0"}
    dep = json.loads(mac.run(b, "info", "--json=v2", "mlx-c", euid=501).stdout)["formulae"][0]
    assert dep["installed"][0]["installed_as_dependency"] is True
    # the prefix layout: bin/ and opt/ links into the Cellar; the default file answers --version
    assert os.readlink(brew / "bin" / "ollama") == "../Cellar/ollama/0.32.3/bin/ollama"
    tool = brew / "opt" / "ollama" / "bin" / "ollama"
    assert subprocess.run([tool, "--version"], capture_output=True, text=True).stdout == (
        "ollama version is 0.32.3\n")  # §6.2
    res = mac.run(b, "install", "ollama", euid=501, check_rc=0)
    assert "ollama 0.32.3 is already installed and up-to-date." in res.stderr
    res = mac.run(b, "install", "no-such-formula", euid=501)
    assert res.returncode == 1
    assert res.stderr == 'Error: No available formula with the name "no-such-formula".\n'
    # a new version appears; pinned formulae are not upgraded; cleanup can be switched off
    mac.machine(homebrew={"formulae": {"ollama": {"version": "0.32.5"}}})
    assert mac.run(b, "outdated", euid=501).stdout == "ollama\n"
    mac.run(b, "pin", "ollama", euid=501, check_rc=0)
    mac.run(b, "upgrade", euid=501, check_rc=0)
    assert mac.run(b, "list", "--versions", "ollama", euid=501).stdout == "ollama 0.32.3\n"
    mac.run(b, "unpin", "ollama", euid=501, check_rc=0)
    mac.run(b, "upgrade", "ollama", euid=501, env={"HOMEBREW_NO_INSTALL_CLEANUP": "1"},
            check_rc=0)
    assert mac.run(b, "list", "--versions", "ollama", euid=501).stdout == (
        "ollama 0.32.3 0.32.5\n")  # §5.3: several kegs on one line
    assert os.readlink(brew / "opt" / "ollama") == "../Cellar/ollama/0.32.5"
    mac.run(b, "uninstall", "ollama", euid=501, check_rc=0)
    assert not (brew / "bin" / "ollama").exists() and not (brew / "opt" / "ollama").exists()
    res = mac.run(b, "uninstall", "ollama", euid=501)
    assert (res.returncode, res.stderr) == (1, f"Error: No such keg: {brew}/Cellar/ollama\n")


def test_brew_installed_files_are_configurable(mac, brew):
    b = brew / "bin" / "brew"
    mac.machine(homebrew={"formulae": {
        "ollama": {"files": {"bin/ollama": ["/bin/echo", "api stand-in called with"]}},
        "bash": {"files": {"bin/bash": {"symlink": "/bin/bash"}}},
        "haproxy": {"files": {"bin/haproxy": "#!/bin/sh\necho literal haproxy\n"}}}})
    mac.run(b, "install", "ollama", "bash", "haproxy", euid=501, check_rc=0)
    run = subprocess.run([brew / "bin" / "ollama", "serve"], capture_output=True, text=True)
    assert run.stdout == "api stand-in called with serve\n"
    assert os.path.realpath(brew / "bin" / "bash") == os.path.realpath("/bin/bash")
    assert subprocess.run([brew / "bin" / "haproxy"], capture_output=True,
                          text=True).stdout == "literal haproxy\n"
    # "ollama_serve": `ollama serve` -> <command> --host H --port P, parsed from OLLAMA_HOST (§6.6)
    mac.machine(homebrew={"formulae": {"ollama": {"version": "0.32.4", "files": {
        "bin/ollama": {"ollama_serve": ["/bin/echo", "api"]}}}}})
    mac.run(b, "upgrade", "ollama", euid=501, check_rc=0)
    for host, expected in ((None, "127.0.0.1 --port 11434"), ("0.0.0.0", "0.0.0.0 --port 11434"),
                           ("192.168.250.20:11434", "192.168.250.20 --port 11434"),
                           ("http://10.0.0.5", "10.0.0.5 --port 80")):
        env = {k: v for k, v in os.environ.items() if k != "OLLAMA_HOST"}
        if host:
            env["OLLAMA_HOST"] = host
        run = subprocess.run([brew / "opt" / "ollama" / "bin" / "ollama", "serve"],
                             capture_output=True, text=True, env=env)
        assert run.stdout == f"api --host {expected}\n", host


def test_launchd_job_serves_the_ollama_api_standin(mac, brew, tmp_path):
    """brew's ollama + a LaunchAgent plist (§3.8) + launchctl = an Ollama API on OLLAMA_HOST."""
    api = REPO / "tests" / "standins" / "ollama_api.py"
    need(api.exists(), "the Ollama API stand-in tests/standins/ollama_api.py is not there")
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mac.machine(homebrew={"formulae": {"ollama": {"files": {
        "bin/ollama": {"ollama_serve": [sys.executable, str(api)]}}}}})
    mac.run(brew / "bin" / "brew", "install", "ollama", euid=501, check_rc=0)
    plist = agent_plist(tmp_path / "com.ollama.plist", "com.ollama", "",
                        ProgramArguments=[str(brew / "opt" / "ollama" / "bin" / "ollama"), "serve"],
                        EnvironmentVariables={"OLLAMA_HOST": f"127.0.0.1:{port}",
                                              "OLLAMA_KEEP_ALIVE": "24h"},
                        RunAtLoad=True, KeepAlive=True,
                        StandardErrorPath=str(tmp_path / "ollama.stderr.log"))
    mac.launchctl("bootstrap", own_domain(), str(plist), check_rc=0)

    def answer():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                return resp.status, resp.read().decode()
        except OSError:
            return None

    assert wait_for(answer, 10, 0.1) == (200, "Ollama is running")  # §6.3
    printed = mac.launchctl("print", f"{own_domain()}/com.ollama").stdout
    ollama = brew / "opt" / "ollama" / "bin" / "ollama"
    for block in (  # §3.2 [COMPOSED] com.ollama dump
        f"\tprogram = {ollama}\n\targuments = {{\n\t\t{ollama}\n\t\tserve\n\t}}\n",
        f"\tstderr path = {tmp_path}/ollama.stderr.log\n\tdefault environment = {{\n"
        "\t\tPATH => /usr/bin:/bin:/usr/sbin:/sbin\n\t}\n",
        f"\tenvironment = {{\n\t\tOLLAMA_HOST => 127.0.0.1:{port}\n\t\tOLLAMA_KEEP_ALIVE => 24h\n"
        "\t\tXPC_SERVICE_NAME => com.ollama\n\t}\n",
        "\tproperties = keepalive | runatload | inferred program\n}\n",
    ):
        assert block in printed
    mac.launchctl("bootout", f"{own_domain()}/com.ollama", check_rc=0)
    assert wait_for(lambda: answer() is None, 5)


def test_brew_services_start_list_stop(mac, brew, shared_dir):
    uid = unprivileged_uid()
    if IS_ROOT:  # the job runs as nobody: everything it touches must be reachable for nobody
        prefix = shared_dir / "homebrew"
        (prefix / "bin").mkdir(parents=True)
        shutil.copy(STANDINS / "brew", prefix / "bin" / "brew")
        for path in (prefix, prefix / "bin"):
            path.chmod(0o777)
    else:
        prefix = brew
    b = prefix / "bin" / "brew"
    marker = shared_dir / "served"
    mac.machine(homebrew={"formulae": {"ollama": {"files": {"bin/ollama": [
        "/bin/sh", "-c", f'echo "$OLLAMA_KV_CACHE_TYPE" > {marker}; exec sleep 60', "sh"]}}}})
    env = {"HOMEBREW_NO_ENV_HINTS": "1"}
    mac.run(b, "install", "ollama", euid=uid, env=env, check_rc=0)
    if IS_ROOT:
        for root, dirs, _files in os.walk(prefix):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o777)
    assert mac.run(b, "services", "list", euid=uid, env=env).stdout == (
        "Name   Status User File\nollama none                 \n")  # commands/list.rb padding
    # §3.7: no console user and no SSH_TTY -> Homebrew picks gui/<uid>, which does not exist
    res = mac.run(b, "services", "start", "ollama", euid=uid, env=env)
    assert res.returncode == 1
    assert "Bootstrap failed: 125: Domain does not support specified action" in res.stderr
    assert re.search(r"Error: Failure while executing; `\S*launchctl bootstrap gui/\d+ \S+"
                     r"homebrew\.mxcl\.ollama\.plist` exited with 125\.", res.stderr)
    # over SSH with a TTY: user/<uid> and the warning (§5.5)
    env["SSH_TTY"] = "/dev/ttys001"
    res = mac.run(b, "services", "start", "ollama", euid=uid, env=env, check_rc=0)
    assert "running over SSH without /dev/console ownership, using user/* instead of gui/*" \
           " domain!" in res.stderr
    assert res.stdout.endswith("==> Successfully started `ollama` (label: homebrew.mxcl.ollama)\n")
    assert wait_for(lambda: marker.exists() and marker.read_text() == "q8_0\n")
    listed = json.loads(mac.run(b, "services", "list", "--json", euid=uid, env=env).stdout)
    assert listed == [{"name": "ollama", "status": "started", "user": "tester",
                       "file": f"{mac.home}/Library/LaunchAgents/homebrew.mxcl.ollama.plist",
                       "exit_code": 0}]
    plist = plistlib.loads((mac.home / "Library/LaunchAgents/homebrew.mxcl.ollama.plist")
                           .read_bytes())
    assert plist["LimitLoadToSessionType"] == ["Aqua", "Background", "LoginWindow",
                                               "StandardIO", "System"]  # §3.7 / §5.5
    printed = mac.launchctl("print", f"user/{uid}/homebrew.mxcl.ollama").stdout
    assert field(printed, "state") == "running"
    res = mac.run(b, "services", "stop", "ollama", euid=uid, env=env, check_rc=0)
    assert res.stdout.endswith("==> Successfully stopped `ollama` (label: homebrew.mxcl.ollama)\n")
    assert mac.launchctl("print", f"user/{uid}/homebrew.mxcl.ollama").returncode == 113
    res = mac.run(b, "services", "stop", "ollama", euid=uid, env=env, check_rc=0)
    assert "Warning: Service `ollama` is not started." in res.stderr

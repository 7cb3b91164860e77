"""A fake OpenWrt router reachable over a real OpenSSH server, for end-to-end tests.

``OpenWrtHost`` builds a router root filesystem (BusyBox only: ``/bin/sh`` is BusyBox ash, no
bash, python or sudo on ``PATH``), starts a dedicated ``sshd`` on 127.0.0.1 and a free port and
runs every SSH command inside that root, the way dropbear runs it on a router (``ash -c
"<command>"``). Every command is logged before it runs, so tests can count round trips.

How the root is entered
    ``sshd -D -e`` is started as PID 1 of private mount, PID and UTS namespaces
    (``unshare --mount --pid --uts --fork``). Before it execs sshd, a setup script bind-mounts the
    host's shared-library directories, the Python prefix (for the uci stand-in) and the
    stand-ins directory read-only into the root, binds ``/dev/null`` & co., mounts a ``/proc``
    for the namespace, sets the hostname and creates a persistent, empty network namespace (only
    ``lo``) for the router. The ``ForceCommand`` wrapper logs ``$SSH_ORIGINAL_COMMAND`` as one JSON
    line to ``commands.jsonl`` (outside the root), then ``nsenter --net --root --wd`` runs
    ``ash -c "$SSH_ORIGINAL_COMMAND"`` with a minimal environment. The mounts exist only in the
    namespace: nothing is ever mounted on the host, and killing sshd (PID 1) makes the kernel kill
    every process left in the namespace (for example a detached rollback job) and drop the
    mounts. The unshare process is also tied to the thread that started the router
    (``PR_SET_PDEATHSIG``), so an aborted test run does not leave an sshd behind (start it from a
    thread that outlives it, e.g. pytest's main thread).

Stand-ins (``tests/standins/openwrt/``, copied into the root; ``standins=`` replaces or adds
files, so a lab version that really configures WireGuard/nftables is a drop-in):
``/etc/rc.common`` + ``/etc/init.d/{network,firewall,dnsmasq,cron}`` and ``/sbin/ifup`` (``ifdown``)
append ``"<service> <action>"`` lines to ``/tmp/standin-events.log``; ``/bin/opkg`` (opkg
releases) or ``/usr/bin/apk`` (apk releases) keep a real-format package database; ``/sbin/uci``
runs ``tests/standins/uci`` with the host's Python. The release revisions are real; package
versions are plausible illustrations, not measured on a router. BusyBox is Debian's (1.35), whose
applet set differs a little from OpenWrt's (e.g. no ``flock``/``nohup``).

Needs root, OpenSSH's ``sshd``/``ssh-keygen``/``scp``, ``busybox`` and util-linux
(``unshare``, ``nsenter``, ``mount``); see :func:`requirements_missing`.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STANDINS_DIR = REPO / "tests" / "standins"
OPENWRT_STANDINS_DIR = STANDINS_DIR / "openwrt"
UCI_STANDIN = STANDINS_DIR / "uci"
FACTORY_FIXTURE = REPO / "tests" / "fixtures" / "uci" / "wg_dmz_named_batch_first_apply.json"

ROUTER_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
EVENT_LOG = "tmp/standin-events.log"  # relative to the router root
HOST_MOUNT_DIR = "/usr/lib/test-standin"  # where host things appear inside the router
_TOOL_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
     "/sbin", "/bin"]
)

FACTORY_SYSTEM_CONFIG = """\

config system
\toption hostname 'OpenWrt'
\toption timezone 'UTC'
\toption ttylogin '0'
\toption log_size '64'
\toption urandom_seed '0'

config timeserver 'ntp'
\toption enabled '1'
\toption enable_server '0'
\tlist server '0.openwrt.pool.ntp.org'
\tlist server '1.openwrt.pool.ntp.org'
\tlist server '2.openwrt.pool.ntp.org'
\tlist server '3.openwrt.pool.ntp.org'

"""


class HarnessError(RuntimeError):
    """The fake router could not be built or started."""


# --------------------------------------------------------------------------------------------
# Releases and package catalogs
# --------------------------------------------------------------------------------------------

#: package -> its dependencies (only those that matter to our deploys)
_DEPENDS = {
    "wireguard-tools": "kmod-wireguard",
    "luci-proto-wireguard": "wireguard-tools",
}
#: apk "origin" (source package) where it differs from the package name
_ORIGIN = {
    "nftables-json": "nftables",
    "odhcpd-ipv6only": "odhcpd",
    "uclient-fetch": "uclient",
    "apk-mbedtls": "apk",
}

_BASE_PACKAGES = (
    "base-files", "busybox", "ca-bundle", "dnsmasq", "dropbear", "firewall4", "fstools",
    "kmod-nft-offload", "libc", "logd", "netifd", "nftables-json", "odhcp6c", "odhcpd-ipv6only",
    "procd", "uci", "uclient-fetch",
)


@dataclass(frozen=True)
class Release:
    version: str
    revision: str
    package_manager: str  # "opkg" or "apk"
    kernel: str
    versions: Mapping[str, str]  # the feed: package -> version
    target: str = "mediatek/filogic"
    arch: str = "aarch64_cortex-a53"
    default_packages: tuple[str, ...] = field(default=())

    @property
    def description(self) -> str:
        return f"OpenWrt {self.version} {self.revision}"

    def openwrt_release(self) -> str:
        return (
            "DISTRIB_ID='OpenWrt'\n"
            f"DISTRIB_RELEASE='{self.version}'\n"
            f"DISTRIB_REVISION='{self.revision}'\n"
            f"DISTRIB_TARGET='{self.target}'\n"
            f"DISTRIB_ARCH='{self.arch}'\n"
            f"DISTRIB_DESCRIPTION='{self.description}'\n"
            "DISTRIB_TAINTS=''\n"
        )

    def os_release(self) -> str:
        return (
            'NAME="OpenWrt"\n'
            f'VERSION="{self.version}"\n'
            'ID="openwrt"\n'
            'ID_LIKE="lede openwrt"\n'
            f'PRETTY_NAME="OpenWrt {self.version}"\n'
            f'VERSION_ID="{self.version}"\n'
            'HOME_URL="https://openwrt.org/"\n'
            'BUG_URL="https://bugs.openwrt.org/"\n'
            'SUPPORT_URL="https://forum.openwrt.org/"\n'
            f'BUILD_ID="{self.revision}"\n'
            f'OPENWRT_BOARD="{self.target}"\n'
            f'OPENWRT_ARCH="{self.arch}"\n'
            'OPENWRT_TAINTS=""\n'
            'OPENWRT_DEVICE_MANUFACTURER="OpenWrt"\n'
            'OPENWRT_DEVICE_MANUFACTURER_URL="https://openwrt.org/"\n'
            'OPENWRT_DEVICE_PRODUCT="Generic"\n'
            'OPENWRT_DEVICE_REVISION="v0"\n'
            f'OPENWRT_RELEASE="{self.description}"\n'
        )

    def version_of(self, package: str) -> str:
        if package in self.versions:
            return self.versions[package]
        return "1.0-1" if self.package_manager == "opkg" else "1.0-r1"


def _release(version, revision, pm, kernel, versions) -> Release:
    kmod = {"kmod-nft-offload": kernel, "kmod-wireguard": kernel}
    versions = {**versions, **kmod}
    pm_pkg = "opkg" if pm == "opkg" else "apk-mbedtls"
    return Release(version, revision, pm, kernel.split("-")[0], versions,
                   default_packages=tuple(sorted((*_BASE_PACKAGES, pm_pkg))))


RELEASES: dict[str, Release] = {
    "23.05.5": _release("23.05.5", "r24106-10cc5fcd00", "opkg", "5.15.167-1", {
        "base-files": "1562-r24106-10cc5fcd00", "busybox": "1.36.1-1",
        "ca-bundle": "20240203-1", "dnsmasq": "2.90-2", "dropbear": "2022.82-6",
        "firewall4": "2023-09-01-598d9fab-1", "fstools": "2023-02-28-bfe882d5-1",
        "libc": "1.2.4-4", "logd": "2022-08-13-4c7b720b-2", "netifd": "2024-01-04-c18cc79d-2",
        "nftables-json": "1.0.8-1", "odhcp6c": "2023-05-12-bcd28363-20",
        "odhcpd-ipv6only": "2023-10-24-d8118f6e-1", "opkg": "2022-02-24-d038e5b6-2",
        "procd": "2023-06-25-2db83655-2", "uci": "2023-08-10-5781664d-1",
        "uclient-fetch": "2023-04-13-007d9454-1", "wireguard-tools": "1.0.20210914-2",
        "luci-proto-wireguard": "git-24.086.45142-09d5a38", "qrencode": "4.1.1-1",
        "tcpdump": "4.99.4-1",
    }),
    "24.10.0": _release("24.10.0", "r28427-6df0e3d02a", "opkg", "6.6.73-r1", {
        "base-files": "1655~6df0e3d02a", "busybox": "1.36.1-r2", "ca-bundle": "20240203-r1",
        "dnsmasq": "2.90-r4", "dropbear": "2024.86-r1",
        "firewall4": "2024.12.18~18fc0ead-r1", "fstools": "2024.12.02~49d36ba2-r1",
        "libc": "1.2.5-r4", "logd": "2024.04.26~85f10530-r1",
        "netifd": "2024.12.17~ea01ed41-r1", "nftables-json": "1.1.1-r1",
        "odhcp6c": "2024.09.25~b6ae9ffa-r1", "odhcpd-ipv6only": "2024.05.08~a2988231-r1",
        "opkg": "2024.10.16~38eccbb1-r1", "procd": "2024.12.22~42d39376-r1",
        "uci": "2025.01.20~16ff0bad-r1", "uclient-fetch": "2024.10.22~88ae8f20-r1",
        "wireguard-tools": "1.0.20210914-r4", "luci-proto-wireguard": "25.091.58779~2ff5aae",
        "qrencode": "4.1.1-r1", "tcpdump": "4.99.5-r1",
    }),
    "25.12.0": _release("25.12.0", "r32713-f919e7899d", "apk", "6.12.71-r1", {
        "apk-mbedtls": "3.0.5-r2", "base-files": "1696~f919e7899d", "busybox": "1.37.0-r6",
        "ca-bundle": "20250419-r2", "dnsmasq": "2.91-r1", "dropbear": "2025.89-r1",
        "firewall4": "2025.09.01~0eaa2a1f-r1", "fstools": "2025.08.19~a7b7b7b3-r1",
        "libc": "1.2.5-r5", "logd": "2025.05.23~5fa1a0ec-r1",
        "netifd": "2025.10.12~7d3b2a27-r1", "nftables-json": "1.1.3-r1",
        "odhcp6c": "2025.07.01~3fa1c11e-r1", "odhcpd-ipv6only": "2025.08.04~2a1c4f7d-r1",
        "procd": "2025.09.26~a6c1f2b4-r1", "uci": "2025.10.16~4ab1c4b1-r1",
        "uclient-fetch": "2025.06.10~a8c4f0f4-r1", "wireguard-tools": "1.0.20210914-r4",
        "luci-proto-wireguard": "25.340.61234~0c5a2d1", "qrencode": "4.1.1-r1",
        "tcpdump": "4.99.5-r1",
    }),
}


def get_release(version: str) -> Release:
    """A known release, or a sibling of a known one (same major.minor) with that version."""
    if version in RELEASES:
        return RELEASES[version]
    for known in RELEASES.values():
        if version.rsplit(".", 1)[0] == known.version.rsplit(".", 1)[0]:
            return Release(version, "r0-00000000", known.package_manager, known.kernel,
                           known.versions, default_packages=known.default_packages)
    raise ValueError(f"unknown OpenWrt release {version!r}; known: {', '.join(RELEASES)}")


def factory_configs() -> dict[str, str]:
    """The factory 23.05 configs of the uci fixtures (network, firewall, dhcp) + system."""
    if not FACTORY_FIXTURE.exists():
        raise HarnessError(f"factory config fixture missing: {FACTORY_FIXTURE}"
                           " (tests/fixtures/uci is part of the repository)")
    data = json.loads(FACTORY_FIXTURE.read_text(encoding="utf-8"))
    configs = dict(data["initial_config"])
    configs.setdefault("system", FACTORY_SYSTEM_CONFIG)
    return configs


# --------------------------------------------------------------------------------------------
# Host requirements and what must be mounted into the root
# --------------------------------------------------------------------------------------------


def _tool(name: str) -> str | None:
    return shutil.which(name, path=_TOOL_PATH)


_TOOLS = ("sshd", "ssh", "ssh-keygen", "scp", "busybox", "unshare", "nsenter", "mount", "bash",
          "ldd", "flock", "env")


@functools.lru_cache(maxsize=1)
def requirements_missing() -> str | None:
    """Why the fake router cannot run here (``None`` if it can); for ``pytest.skip``."""
    if os.geteuid() != 0:
        return "needs root (sshd as root, chroot and mount/PID namespaces)"
    for name in _TOOLS:
        if _tool(name) is None:
            return f"{name} not found (needs openssh-server/-client, busybox and util-linux)"
    probe = subprocess.run(
        [_tool("unshare"), "--mount", "--uts", "--pid", "--net", "--fork", "--propagation",
         "private", "--", _tool("mount"), "-t", "proc", "proc", "/proc"],
        capture_output=True, text=True, timeout=30,
    )
    if probe.returncode != 0:
        return f"cannot create mount/PID/UTS/network namespaces: {probe.stderr.strip()}"
    return None


def _ldd_paths(binary: str) -> list[str]:
    out = subprocess.run([_tool("ldd"), binary], capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            paths.append(m.group(1))
    return paths


_PROTECTED = {"/", "/bin", "/sbin", "/lib", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/etc",
              "/tmp", "/var", "/root", "/dev", "/proc"}


def _python() -> tuple[str, str | None]:
    """(interpreter path, prefix to mount at the same path or None for a system Python)."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    if prefix in _PROTECTED or prefix in ("/usr/local", "/opt"):
        return exe, None
    return exe, prefix


@functools.lru_cache(maxsize=1)
def _host_mounts() -> tuple[tuple[tuple[str, str], ...], str]:
    """Read-only bind mounts (host source, path inside the root) and the in-root Python path."""
    mounts: dict[str, str] = {}  # target -> source
    python_exe, prefix = _python()
    if prefix is not None:
        mounts[prefix] = prefix
        python_in_root = python_exe
    else:
        for key in ("stdlib", "platstdlib"):
            d = os.path.realpath(sysconfig.get_paths()[key])
            mounts[d] = d
        python_in_root = f"{HOST_MOUNT_DIR}/python3"
        mounts[python_in_root] = python_exe
    for binary in (_tool("busybox"), _tool("scp"), python_exe):
        for path in _ldd_paths(binary):
            for d in {os.path.dirname(path), os.path.dirname(os.path.realpath(path))}:
                if prefix is not None and (d == prefix or d.startswith(prefix + "/")):
                    continue
                if d in _PROTECTED:  # never hide the router's own /lib or /usr/lib: bind the file
                    mounts[os.path.join(d, os.path.basename(path))] = os.path.realpath(path)
                else:
                    mounts[d] = os.path.realpath(d)
    return tuple((src, dst) for dst, src in sorted(mounts.items())), python_in_root


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _cfg_path(path: Path) -> str:
    return f'"{path}"' if " " in str(path) else str(path)


# --------------------------------------------------------------------------------------------
# Scripts
# --------------------------------------------------------------------------------------------

_JSON_ESCAPE_BASH = r"""
json_string() {
	local s=$1 i c u
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	if [[ $s == *[$'\x01'-$'\x1f']* ]]; then
		for ((i = 1; i < 32; i++)); do
			printf -v c "\\$(printf '%03o' "$i")"
			printf -v u '\\u%04x' "$i"
			s=${s//"$c"/$u}
		done
	fi
	printf '"%s"' "$s"
}
"""


def _enter_exec(root: Path, netns: Path, args: str) -> str:
    """bash line that runs ash inside the router with dropbear's minimal environment."""
    return (
        f"exec {_q(_tool('env'))} -i PATH={ROUTER_PATH} HOME=/root USER=root LOGNAME=root"
        ' SHELL=/bin/ash ${TERM:+"TERM=$TERM"} ${SSH_CLIENT:+"SSH_CLIENT=$SSH_CLIENT"}'
        ' ${SSH_CONNECTION:+"SSH_CONNECTION=$SSH_CONNECTION"} ${SSH_TTY:+"SSH_TTY=$SSH_TTY"}'
        f" {_q(_tool('nsenter'))} --net={_q(netns)} --root={_q(root)} --wd={_q(root / 'root')}"
        f" ash {args}\n"
    )


# --------------------------------------------------------------------------------------------
# The fake router
# --------------------------------------------------------------------------------------------


class OpenWrtHost:
    """A fake OpenWrt router behind a real OpenSSH server (see the module docstring).

    ``configs`` maps ``/etc/config`` file names to their text (default: :func:`factory_configs`).
    ``packages`` are the installed package names (default: the release's base image set); a
    mapping gives explicit versions. ``standins`` maps router paths (e.g. ``"/etc/init.d/network"``)
    to host files that replace or add stand-ins, or to ``None`` to have no file at that path.
    ``uci_standin`` defaults to ``tests/standins/uci``. ``netns`` is an existing network
    namespace file (e.g. ``/run/netns/<name>``) the router joins instead of a fresh empty one.
    """

    def __init__(
        self,
        tmp_path: str | os.PathLike[str],
        release: str = "23.05.5",
        configs: Mapping[str, str] | None = None,
        packages: Sequence[str] | Mapping[str, str] | None = None,
        *,
        standins: Mapping[str, str | os.PathLike[str] | None] | None = None,
        uci_standin: str | os.PathLike[str] | None = None,
        hostname: str = "OpenWrt",
        netns: str | os.PathLike[str] | None = None,
    ) -> None:
        self.release = get_release(release)
        self.configs = dict(factory_configs() if configs is None else configs)
        if packages is None:
            packages = self.release.default_packages
        if isinstance(packages, Mapping):
            self.packages = dict(packages)
        else:
            self.packages = {name: self.release.version_of(name) for name in packages}
        self.standin_overrides = dict(standins or {})
        self.uci_standin = Path(uci_standin) if uci_standin else UCI_STANDIN
        self.hostname = hostname
        self.join_netns = str(netns) if netns is not None else None

        Path(tmp_path).mkdir(parents=True, exist_ok=True)
        self.base = Path(tempfile.mkdtemp(prefix="openwrt-", dir=tmp_path))
        self.root = self.base / "root"
        self.ssh_dir = self.base / "ssh"
        self.key_path = self.ssh_dir / "id_ed25519"
        self.host_key_path = self.ssh_dir / "ssh_host_ed25519_key"
        self.known_hosts_path = self.ssh_dir / "known_hosts"
        self.sshd_config_path = self.ssh_dir / "sshd_config"
        self.commands_log = self.base / "commands.jsonl"
        self.sshd_log = self.base / "sshd.log"
        self.netns_path = self.base / "netns"
        self.port: int = 0
        self.ns_pid: int | None = None  # sshd = PID 1 of the router's namespaces (host PID)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> OpenWrtHost:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> OpenWrtHost:
        reason = requirements_missing()
        if reason:
            raise HarnessError(f"cannot start the fake OpenWrt router: {reason}")
        if self._proc is not None:
            raise HarnessError("already started")
        self._build_root()
        self._make_keys()
        self._write_scripts()
        last_error = ""
        for _attempt in range(5):
            self.port = _free_port()
            self._write_sshd_config()
            started, last_error = self._start_sshd()
            if started:
                break
            if "Address already in use" not in last_error:
                break
        else:
            started = False
        if not started:
            raise HarnessError(f"sshd for the fake OpenWrt router did not start:\n{last_error}")
        host_key = self.host_key_path.with_suffix(".pub").read_text().strip()
        self.known_hosts_path.write_text(f"[127.0.0.1]:{self.port} {host_key}\n")
        self.commands_log.touch()
        return self

    def stop(self) -> None:
        """Kill sshd and, with it, every process in the router's namespaces."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            if self.ns_pid:
                try:
                    os.kill(self.ns_pid, signal.SIGKILL)  # PID 1 of the namespace: all go
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.ns_pid = None

    # ---------------------------------------------------------------- building

    def _build_root(self) -> None:
        r = self.root
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/lib", "usr/share/test-standin",
                  "lib", "etc/config", "etc/init.d", "etc/rc.d", "root", "tmp/run", "tmp/lock",
                  "tmp/log", "tmp/.uci", "proc", "dev", "mnt", "overlay", "www"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "tmp", 0o1777)
        (r / "var").symlink_to("tmp")

        shutil.copy2(_tool("busybox"), r / "bin" / "busybox")
        listing = subprocess.run([r / "bin" / "busybox", "--list-full"], capture_output=True,
                                 text=True, check=True).stdout
        for applet in listing.split():
            link = r / applet
            if link.name == "busybox" or link.exists() or link.is_symlink():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(r / "bin" / "busybox", link.parent))
        for name in ("sh", "ash"):
            if not (r / "bin" / name).is_symlink():
                (r / "bin" / name).symlink_to("busybox")
        shutil.copy2(_tool("scp"), r / "usr" / "bin" / "scp")  # dropbear's scp on OpenWrt

        rel = self.release
        self._write("etc/openwrt_release", rel.openwrt_release())
        self._write("usr/lib/os-release", rel.os_release())
        (r / "etc" / "os-release").symlink_to("../usr/lib/os-release")
        self._write("etc/openwrt_version", rel.revision + "\n")
        self._write("etc/hostname", self.hostname + "\n")
        self._write("etc/passwd", "root:x:0:0:root:/root:/bin/ash\n"
                    "daemon:*:1:1:daemon:/var:/bin/false\n"
                    "network:*:101:101:network:/var:/bin/false\n"
                    "dnsmasq:x:453:453:dnsmasq:/var/run/dnsmasq:/bin/false\n"
                    "nobody:*:65534:65534:nobody:/var:/bin/false\n")
        self._write("etc/group", "root:x:0:\ndaemon:x:1:\nnetwork:x:101:\n"
                    "dnsmasq:x:453:dnsmasq\nnogroup:x:65534:\n")
        self._write("etc/shadow", "root:::0:99999:7:::\n", mode=0o600)
        self._write("etc/shells", "/bin/ash\n")
        self._write("etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
        self._write("etc/profile", "export PS1='\\u@\\h:\\w\\$ '\n")
        self._write("etc/banner", f" OpenWrt {rel.version} (fake router for tests)\n")
        for name, text in self.configs.items():
            if "/" in name or not name:
                raise ValueError(f"bad config name {name!r}")
            self._write(f"etc/config/{name}", text)

        # stand-ins
        pm = rel.package_manager
        standins: dict[str, Path | None] = {
            "/etc/rc.common": OPENWRT_STANDINS_DIR / "rc.common",
            "/etc/init.d/network": OPENWRT_STANDINS_DIR / "init.d" / "network",
            "/etc/init.d/firewall": OPENWRT_STANDINS_DIR / "init.d" / "firewall",
            "/etc/init.d/dnsmasq": OPENWRT_STANDINS_DIR / "init.d" / "dnsmasq",
            "/etc/init.d/cron": OPENWRT_STANDINS_DIR / "init.d" / "cron",
            "/sbin/ifup": OPENWRT_STANDINS_DIR / "ifup",
            "/lib/standin-faults.sh": OPENWRT_STANDINS_DIR / "faults.sh",  # fault injection
            ("/bin/opkg" if pm == "opkg" else "/usr/bin/apk"): OPENWRT_STANDINS_DIR / pm,
        }
        for path, src in self.standin_overrides.items():
            standins["/" + path.lstrip("/")] = Path(src) if src is not None else None
        for path, src in standins.items():
            dest = r / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.exists():
                dest.unlink()  # e.g. BusyBox's own ifup applet
            if src is None:
                continue
            shutil.copyfile(src, dest)
            os.chmod(dest, 0o755)
        if standins.get("/sbin/ifup") is not None:
            ifdown = r / "sbin" / "ifdown"
            if ifdown.is_symlink() or ifdown.exists():
                ifdown.unlink()
            ifdown.symlink_to("ifup")
        for link, target in (("S19firewall", "firewall"), ("S19dnsmasq", "dnsmasq"),
                             ("S20network", "network"), ("S50cron", "cron"),
                             ("K85dnsmasq", "dnsmasq"),
                             ("K90network", "network")):
            (r / "etc" / "rc.d" / link).symlink_to(f"../init.d/{target}")

        _, python_in_root = _host_mounts()
        uci_in_root = f"{HOST_MOUNT_DIR}/standins/{self.uci_standin.name}"
        self._write("sbin/uci", f"""\
#!/bin/sh
# TEST STAND-IN for OpenWrt's /sbin/uci (the uci CLI, package "uci"): runs the project's Python
# imitation ({self.uci_standin}) with the host's Python, which the test harness bind-mounts
# read-only into the router. Python is NOT on the router's PATH. -S (no site import, stdlib
# only) keeps a call at ~15 ms instead of ~80 ms.
if [ ! -e {_q(uci_in_root)} ]; then
	echo "uci: test stand-in {self.uci_standin} is missing" >&2
	exit 127
fi
exec {_q(python_in_root)} -S -s -E -B -X utf8 {_q(uci_in_root)} "$@"
""", mode=0o755)

        self._write_package_db()

    def _write_package_db(self) -> None:
        rel = self.release
        feed = dict(rel.versions)
        feed.update(self.packages)
        lines = []
        for name in sorted(feed):
            origin = "linux" if name.startswith("kmod-") else _ORIGIN.get(name, name)
            lines.append(f"{name}\t{feed[name]}\t{_DEPENDS.get(name, '')}\t{origin}\tGPL-2.0\n")
        self._write("usr/share/test-standin/feed.tsv", "".join(lines))
        base = f"https://downloads.openwrt.org/releases/{rel.version}"
        feeds = ["base", "luci", "packages", "routing", "telephony"]
        if rel.package_manager == "opkg":
            self._write("etc/opkg.conf", "dest root /\ndest ram /tmp\n"
                        "lists_dir ext /var/opkg-lists\noption overlay_root /overlay\n"
                        "option check_signature\n")
            self._write("etc/opkg/distfeeds.conf", "".join(
                [f"src/gz openwrt_core {base}/targets/{rel.target}/packages\n"]
                + [f"src/gz openwrt_{f} {base}/packages/{rel.arch}/{f}\n" for f in feeds]))
            self._write("etc/opkg/customfeeds.conf", "# add your custom package feeds here\n")
            stanzas = []
            for name in sorted(self.packages):
                dep = _DEPENDS.get(name)
                stanzas.append(
                    f"Package: {name}\nVersion: {self.packages[name]}\n"
                    + (f"Depends: {dep}\n" if dep else "")
                    + f"Status: install user installed\nArchitecture: {rel.arch}\n"
                    "Installed-Time: 1700000000\n\n")
            self._write("usr/lib/opkg/status", "".join(stanzas))
        else:
            self._write("etc/apk/repositories.d/distfeeds.list", "".join(
                [f"{base}/targets/{rel.target}/packages/packages.adb\n"]
                + [f"{base}/packages/{rel.arch}/{f}/packages.adb\n" for f in feeds]))
            self._write("etc/apk/world", "".join(f"{n}\n" for n in sorted(self.packages)))
            stanzas = []
            for name in sorted(self.packages):
                dep = _DEPENDS.get(name)
                origin = "linux" if name.startswith("kmod-") else _ORIGIN.get(name, name)
                stanzas.append(
                    f"P:{name}\nV:{self.packages[name]}\nA:{rel.arch}\nL:GPL-2.0\no:{origin}\n"
                    + (f"D:{dep}\n" if dep else "") + "\n")
            self._write("lib/apk/db/installed", "".join(stanzas))

    def _write(self, rel_path: str, text: str, mode: int = 0o644) -> None:
        path = self.root / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        os.chmod(path, mode)

    def _make_keys(self) -> None:
        self.ssh_dir.mkdir(mode=0o700)
        keygen = _tool("ssh-keygen")
        for path, comment in ((self.host_key_path, "openwrt-test-host"),
                              (self.key_path, "openwrt-test-client")):
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                           check=True, capture_output=True)

    def _write_scripts(self) -> None:
        bindir = self.base / "bin"
        bindir.mkdir()
        root, netns = self.root, self.netns_path
        mounts, _ = _host_mounts()
        setup = ["#!/bin/bash",
                 "# PID 1 of the router's private mount/PID/UTS namespaces; ends by exec'ing sshd",
                 "set -euo pipefail",
                 "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "mount -t proc proc /proc",
                 f"{_q(_tool('busybox'))} hostname {_q(self.hostname)}",
                 f"mount -t proc proc {_q(root / 'proc')}"]
        for src, dst in mounts:
            target = root / dst.lstrip("/")
            if os.path.isdir(src):
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            setup.append(f"mount --bind -o ro {_q(src)} {_q(target)}")
        standins_target = root / HOST_MOUNT_DIR.lstrip("/") / "standins"
        standins_target.mkdir(parents=True, exist_ok=True)
        if self.uci_standin.parent.is_dir():
            setup.append(f"mount --bind -o ro {_q(self.uci_standin.parent)} {_q(standins_target)}")
        for dev in ("null", "zero", "full", "random", "urandom", "tty"):
            (root / "dev" / dev).touch()
            setup.append(f"mount --bind /dev/{dev} {_q(root / 'dev' / dev)}")
        for src, target in self._extra_mounts():
            if os.path.isdir(src):
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            ro = "" if src.startswith("/dev/") else "-o ro "
            setup.append(f"mount --bind {ro}{_q(src)} {_q(target)}")
        netns.touch()
        setup += [
            f"unshare --net={_q(netns)} true" if self.join_netns is None
            else f"mount --bind {_q(self.join_netns)} {_q(netns)}",
            f"PATH={ROUTER_PATH} {_q(_tool('nsenter'))} --net={_q(netns)} --root={_q(root)}"
            " ip link set lo up",
            "[ -d /run/sshd ] || mkdir -m 0755 /run/sshd",
            f"exec {_q(_tool('sshd'))} -D -e -f {_q(self.sshd_config_path)}",
        ]
        self._setup_script = bindir / "setup-namespace"
        self._setup_script.write_text("\n".join(setup) + "\n")

        self._force_command = bindir / "force-command"
        self._force_command.write_text(
            "#!/bin/bash\n"
            "# sshd ForceCommand of the fake OpenWrt router: log the command as one JSON line\n"
            "# (outside the router), then run it the way dropbear does: ash -c \"<command>\".\n"
            "export LC_ALL=C\n"
            + _JSON_ESCAPE_BASH
            + "if [[ -n ${SSH_ORIGINAL_COMMAND+x} ]]; then\n"
            "\tline=\"{\\\"t\\\": $EPOCHREALTIME, \\\"cmd\\\": $(json_string "
            "\"$SSH_ORIGINAL_COMMAND\")}\"\n"
            f"\t{{ {_q(_tool('flock'))} 9; printf '%s\\n' \"$line\" >&9; }}"
            f" 9>>{_q(self.commands_log)}\n"
            "\tset -- -c \"$SSH_ORIGINAL_COMMAND\"\n"
            "else\n"
            "\tset -- -l\n"
            "fi\n"
            + _enter_exec(root, netns, '"$@"')
        )
        self._enter_script = bindir / "enter-router"
        self._enter_script.write_text(
            "#!/bin/bash\n"
            "# Run \"$1\" inside the fake router without logging it (OpenWrtHost.run).\n"
            + _enter_exec(root, netns, '-c "$1"')
        )
        for script in (self._setup_script, self._force_command, self._enter_script):
            os.chmod(script, 0o755)

    def _extra_mounts(self) -> list[tuple[str, Path]]:
        """(host source, target in the root) bound into the router (read-only, except
        ``/dev/*``) by its setup script; none here, for subclasses."""
        return []

    def _write_sshd_config(self) -> None:
        self.sshd_config_path.write_text(f"""\
ListenAddress 127.0.0.1:{self.port}
HostKey {_cfg_path(self.host_key_path)}
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers root
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {_cfg_path(self.key_path.with_suffix('.pub'))}
ForceCommand {_cfg_path(self._force_command)}
# sshd runs ForceCommand through root's login shell; SHLVL=1 stops bash from sourcing the
# host's ~/.bashrc for every exec (Debian's bash does that for sshd sessions, e.g. pyenv init)
SetEnv SHLVL=1
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
LogLevel INFO
""")

    def _start_sshd(self) -> tuple[bool, str]:
        self.sshd_log.write_bytes(b"")
        with open(self.sshd_log, "ab") as log:
            proc = subprocess.Popen(
                [_tool("unshare"), "--mount", "--uts", "--pid", "--fork", "--kill-child",
                 "--propagation", "private", "--", str(self._setup_script)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent,
                cwd=self.base,
            )
        deadline = time.monotonic() + 15
        needle = f"Server listening on 127.0.0.1 port {self.port}".encode()
        while time.monotonic() < deadline:
            if needle in self.sshd_log.read_bytes():
                self._proc = proc
                self.ns_pid = self._find_child(proc.pid)
                if self.ns_pid is None:
                    self.stop()
                    return False, "could not find sshd inside the namespace"
                return True, ""
            if proc.poll() is not None:
                return False, self.sshd_log.read_text(errors="replace")
            time.sleep(0.003)
        proc.kill()
        proc.wait()
        return False, "timed out waiting for sshd:\n" + self.sshd_log.read_text(errors="replace")

    @staticmethod
    def _find_child(pid: int) -> int | None:
        children = Path(f"/proc/{pid}/task/{pid}/children")
        try:
            found = children.read_text().split()
            if found:
                return int(found[0])
        except OSError:
            pass
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                return int(stat.parent.name)
        return None

    # ---------------------------------------------------------------- for tests

    def inventory_data(self) -> dict[str, object]:
        """pyinfra host data to reach the router over SSH (scp transfers, strict host key)."""
        self._require_started()
        return {
            "ssh_hostname": "127.0.0.1",
            "ssh_port": self.port,
            "ssh_user": "root",
            "ssh_key": str(self.key_path),
            "ssh_file_transfer_protocol": "scp",
            "ssh_known_hosts_file": str(self.known_hosts_path),
            "ssh_strict_host_key_checking": "yes",
            "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
        }

    def write_inventory(self, path: str | os.PathLike[str] | None = None, name: str = "router",
                        group: str = "router", **data: object) -> Path:
        """Write a pyinfra inventory file ``<group> = [(name, {...})]`` for the CLI."""
        path = Path(path) if path else self.base / "inventory.py"
        host_data = {**self.inventory_data(), **data}
        path.write_text(f"{group} = [({name!r}, {host_data!r})]\n")
        return path

    def ssh_argv(self, command: str | None = None) -> list[str]:
        """argv for the OpenSSH client to reach the router (counted like any exec)."""
        self._require_started()
        argv = [_tool("ssh"), "-F", "/dev/null", "-p", str(self.port), "-i", str(self.key_path),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts_path}",
                "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "root@127.0.0.1"]
        if command is not None:
            argv += ["--", command]
        return argv

    def ssh(self, command: str, input: str | None = None, check: bool = False,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command through the real OpenSSH client (it IS logged and counted)."""
        return subprocess.run(self.ssh_argv(command), input=input, capture_output=True,
                              text=True, check=check, timeout=timeout)

    def run(self, command: str, input: str | None = None, check: bool = False,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a shell command inside the router like an SSH exec would, but NOT counted."""
        self._require_started()
        argv = [_tool("nsenter"), "-t", str(self.ns_pid), "-m", "-p", "-u", "--",
                str(self._enter_script), command]
        return subprocess.run(argv, input=input, capture_output=True, text=True, check=check,
                              timeout=timeout)

    def commands(self, *, all: bool = False) -> list[str]:
        """Commands executed over SSH since the last :meth:`reset_counts` (or ever)."""
        with open(self.commands_log, "rb") as f:
            if not all:
                f.seek(self._log_offset)
            data = f.read()
        return [json.loads(line.decode("utf-8", "surrogateescape"))["cmd"]
                for line in data.splitlines() if line.strip()]

    def exec_count(self) -> int:
        return len(self.commands())

    def upload_count(self) -> int:
        """Commands that were scp uploads (``scp -t <dest>``)."""
        return sum(1 for cmd in self.commands() if _is_scp_upload(cmd))

    def reset_counts(self) -> None:
        self._log_offset = self.commands_log.stat().st_size

    def read_config(self, package: str) -> str:
        return (self.root / "etc" / "config" / package).read_text(encoding="utf-8")

    def write_config(self, package: str, text: str) -> None:
        self._write(f"etc/config/{package}", text)

    def events(self) -> list[str]:
        """Lines the init.d/ifup stand-ins appended, e.g. ``"network reload"``, ``"ifup wg0"``."""
        path = self.root / EVENT_LOG
        if not path.exists():
            return []
        return [line for line in path.read_text().splitlines() if line]

    def clear_events(self) -> None:
        (self.root / EVENT_LOG).write_text("")

    def _require_started(self) -> None:
        if self._proc is None:
            raise HarnessError("the fake OpenWrt router is not running (use start() or `with`)")


def _is_scp_upload(command: str) -> bool:
    words = command.split()
    if not words or words[0] not in ("scp", "/usr/bin/scp"):
        return False
    for word in words[1:]:
        if not word.startswith("-"):
            return False
        if word == "--":
            return False
        if "t" in word[1:] and not word.startswith("--"):
            return True
    return False

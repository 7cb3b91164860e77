"""OpenWrt releases and the package databases of the fake router (TEST ONLY): what
:class:`tests.harness.openwrt_host.OpenWrtHost` writes into its root as ``/etc/openwrt_release``,
``os-release``, the factory ``/etc/config`` files and opkg's or apk's installed-package database.

The release revisions are real; package versions are plausible illustrations, not measured on a
router.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.sshd_host import HarnessError

REPO = Path(__file__).resolve().parents[2]
FACTORY_FIXTURE = REPO / "tests" / "fixtures" / "uci" / "wg_dmz_named_batch_first_apply.json"

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



def package_db(rel: Release, packages: Mapping[str, str]) -> dict[str, str]:
    """Files (path in the root -> text) of the feed and of the package manager's database with
    ``packages`` (name -> version) installed: opkg's ``status`` + feeds or apk's ``installed``,
    ``world`` + repositories; ``usr/share/test-standin/feed.tsv`` is the stand-ins' feed."""
    files: dict[str, str] = {}
    feed = dict(rel.versions)
    feed.update(packages)
    lines = []
    for name in sorted(feed):
        origin = "linux" if name.startswith("kmod-") else _ORIGIN.get(name, name)
        lines.append(f"{name}\t{feed[name]}\t{_DEPENDS.get(name, '')}\t{origin}\tGPL-2.0\n")
    files["usr/share/test-standin/feed.tsv"] = "".join(lines)
    base = f"https://downloads.openwrt.org/releases/{rel.version}"
    feeds = ["base", "luci", "packages", "routing", "telephony"]
    stanzas = []
    if rel.package_manager == "opkg":
        files["etc/opkg.conf"] = ("dest root /\ndest ram /tmp\nlists_dir ext /var/opkg-lists\n"
                                  "option overlay_root /overlay\noption check_signature\n")
        files["etc/opkg/distfeeds.conf"] = "".join(
            [f"src/gz openwrt_core {base}/targets/{rel.target}/packages\n"]
            + [f"src/gz openwrt_{f} {base}/packages/{rel.arch}/{f}\n" for f in feeds])
        files["etc/opkg/customfeeds.conf"] = "# add your custom package feeds here\n"
        for name in sorted(packages):
            dep = _DEPENDS.get(name)
            stanzas.append(
                f"Package: {name}\nVersion: {packages[name]}\n"
                + (f"Depends: {dep}\n" if dep else "")
                + f"Status: install user installed\nArchitecture: {rel.arch}\n"
                "Installed-Time: 1700000000\n\n")
        files["usr/lib/opkg/status"] = "".join(stanzas)
    else:
        files["etc/apk/repositories.d/distfeeds.list"] = "".join(
            [f"{base}/targets/{rel.target}/packages/packages.adb\n"]
            + [f"{base}/packages/{rel.arch}/{f}/packages.adb\n" for f in feeds])
        files["etc/apk/world"] = "".join(f"{n}\n" for n in sorted(packages))
        for name in sorted(packages):
            dep = _DEPENDS.get(name)
            origin = "linux" if name.startswith("kmod-") else _ORIGIN.get(name, name)
            stanzas.append(
                f"P:{name}\nV:{packages[name]}\nA:{rel.arch}\nL:GPL-2.0\no:{origin}\n"
                + (f"D:{dep}\n" if dep else "") + "\n")
        files["lib/apk/db/installed"] = "".join(stanzas)
    return files

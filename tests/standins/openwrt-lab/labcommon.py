"""TEST STAND-IN support code shared by the lab router's netifd/fw4/dnsmasq stand-ins.

Runs INSIDE the fake OpenWrt router (``tests/lab/router.py``) with the host's Python, which the
test harness bind-mounts read-only; so do the host's ``ip`` (iproute2), ``wg``, ``wireguard-go``
and ``nft`` (under ``/usr/lib/test-standin/host/``) and the repository's ``firewall/``
and ``facts/`` (``/usr/lib/test-standin/repo``). Standard library only, and the product's
``facts/uci_export.py`` (the one parser of ``uci export``, stdlib only too). Nothing here exists
on a real router.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

HOST = "/usr/lib/test-standin/host"
IP = f"{HOST}/ip"
WG = f"{HOST}/wg"
WIREGUARD_GO = f"{HOST}/wireguard-go"
NFT = f"{HOST}/nft"
REPO = "/usr/lib/test-standin/repo"
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from facts.uci_export import parse_uci_export  # noqa: E402 - the product's parser, mounted

STATE_DIR = "/var/run/lab-standin"
LOG = "/tmp/lab-standin.log"
EVENT_LOG = "/tmp/standin-events.log"  # the same log the plain stand-ins write


def log(message: str) -> None:
    """Append to the stand-ins' own debug log (not the events log tests compare)."""
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%H:%M:%S')} [{os.path.basename(sys.argv[0])}] {message}\n")


def run(argv: list[str], check: bool = True, input: str | None = None,
        quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command, log it, raise ``RuntimeError`` with its stderr on failure."""
    result = subprocess.run(argv, capture_output=True, text=True, input=input)
    if not quiet or result.returncode != 0:
        log(f"$ {shlex.join(argv)} -> {result.returncode} {result.stderr.strip()}")
    if check and result.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: {result.stderr.strip() or result.returncode}")
    return result


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([IP, *args], check=check)


def link_exists(dev: str) -> bool:
    return run([IP, "link", "show", "dev", dev], check=False, quiet=True).returncode == 0


def uci_export(package: str) -> list[dict]:
    """``uci -n export <package>`` (the uci stand-in), parsed by the product's parser."""
    out = run(["uci", "-n", "export", package], check=False, quiet=True).stdout
    return parse_uci_export(out).get(package, [])


def as_list(value) -> list[str]:
    """A uci value that may be a list or a space-separated string, as a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return [v for item in value for v in item.split()]
    return value.split()


def load_state(name: str) -> dict:
    try:
        with open(f"{STATE_DIR}/{name}.json", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def save_state(name: str, data: dict) -> None:
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    tmp = f"{STATE_DIR}/.{name}.json.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, f"{STATE_DIR}/{name}.json")


def clear_state(name: str) -> None:
    try:
        os.unlink(f"{STATE_DIR}/{name}.json")
    except OSError:
        pass


def main_guard(func) -> None:
    """Run ``func(argv)``; print errors the way OpenWrt tools do and exit 1."""
    try:
        sys.exit(func(sys.argv[1:]) or 0)
    except RuntimeError as exc:
        log(f"error: {exc}")
        print(f"{os.path.basename(sys.argv[0])}: {exc}", file=sys.stderr)
        sys.exit(1)

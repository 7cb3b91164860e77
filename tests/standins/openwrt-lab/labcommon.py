"""TEST STAND-IN support code shared by the lab router's netifd/fw4/dnsmasq stand-ins.

Runs INSIDE the fake OpenWrt router (``tests/lab/router.py``) with the host's Python, which the
test harness bind-mounts read-only; so do the host's ``ip`` (iproute2), ``wg``, ``wireguard-go``
and ``nft`` (under ``/usr/lib/test-standin/host/``) and the repository's ``firewall/``
(``/usr/lib/test-standin/repo``). Standard library only. Nothing here exists on a real router.
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
    """``uci -n export <package>`` (the uci stand-in), parsed like facts.openwrt does."""
    out = run(["uci", "-n", "export", package], check=False, quiet=True).stdout
    return parse_uci_export(out).get(package, [])


def parse_uci_export(text: str) -> dict[str, list[dict]]:
    """Same result as ``facts.openwrt.parse_uci_export`` (which needs pyinfra, absent here)."""
    result: dict[str, list[dict]] = {}
    package = section = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw if pending else raw
        try:
            words = shlex.split(line, posix=True)
        except ValueError:
            pending = line + "\n"
            continue
        pending = ""
        if not words:
            continue
        if words[0] == "package" and len(words) >= 2:
            package = result.setdefault(words[1], [])
        elif words[0] == "config" and len(words) >= 2 and package is not None:
            name = words[2] if len(words) >= 3 else None
            section = {"name": name, "type": words[1], "options": {}}
            package.append(section)
        elif words[0] in ("option", "list") and section is not None and len(words) >= 2:
            value = words[2] if len(words) >= 3 else ""
            if words[0] == "option":
                section["options"][words[1]] = value
            else:
                current = section["options"].get(words[1])
                if isinstance(current, list):
                    current.append(value)
                else:
                    section["options"][words[1]] = [value]
    return result


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

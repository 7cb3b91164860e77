"""Facts about an OpenWrt router: its UCI configuration, release and packages.

:class:`OpenWrtState` is the one read the router role needs: a **single** remote command that
returns the parsed ``uci export`` of ``network``, ``firewall`` and ``dhcp``, the release, the
package manager with the installed packages, the pending (uncommitted) uci changes, what
earlier applies left on the router (armed rollback guards, rollbacks, not-live changes, our
own leftovers) and the peer expiry job (its files, our crontab line, the peers it took off).
:class:`OpenWrtPackages` lists installed packages with either opkg (<= 24.10) or apk (25.x).

Secrets never leave the router in clear: the values of ``private_key`` / ``preshared_key``
options are replaced *on the router* by ``sha256:<hex>`` of the value before they are printed
(so they are safe at any pyinfra verbosity), and pending changes to them are shown redacted.
The value is hashed from a file in a fresh mode-700 temp dir, never put on a command line.

Audit from the command line (run from the repo root)::

    pyinfra inventories/home.py fact facts.openwrt.OpenWrtState --limit router
    pyinfra inventories/home.py fact facts.openwrt.UciPackage package=firewall --limit router
    pyinfra inventories/home.py fact facts.openwrt.OpenWrtPackages --limit router
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase, QuoteString, StringCommand

from facts.uci_export import ANONYMOUS_ID, parse_uci_export  # noqa: F401 - part of this API

#: The packages the router role manages, in the order they are exported.
PACKAGES = ("network", "firewall", "dhcp")

# awk program run on the router: replace secret option values by their sha256 fingerprint.
# The value never reaches a command line: awk writes it to the file ``tmp`` (inside a fresh
# mode-700 ``mktemp -d`` directory) and ``sha256sum`` reads that file on stdin, so only the
# file's *name* is in any process's argv. Values that are not base64 are not hashed.
_HASH_SECRETS_AWK = r"""
($1 == "option" || $1 == "list") && ($2 == "private_key" || $2 == "preshared_key") {
    v = $0; sub(/^[^']*'/, "", v); sub(/'$/, "", v)
    if (v ~ /^[A-Za-z0-9+\/=]*$/ && tmp != "") {
        printf "%s", v > tmp; close(tmp)
        cmd = "sha256sum < '" tmp "'"; h = ""; cmd | getline h; close(cmd)
        printf "" > tmp; close(tmp)
        split(h, a, " "); print "\t" $1 " " $2 " 'sha256:" a[1] "'"
    } else { print "\t" $1 " " $2 " 'sha256:unreadable'" }
    next
}
{ print }
"""

#: Shell: ``$k`` = a fresh mode-700 temp dir for :data:`_HASH_SECRETS_AWK` (removed after use).
_HASH_TMPDIR = 'k=$(umask 077; mktemp -d /tmp/pyinfra-hash.XXXXXX) || k=""'
_HASH_TMPDIR_END = '{ [ -z "$k" ] || rm -rf "$k"; }'

_REDACT_CHANGES_SED = r"s/\.(private_key|preshared_key)([+-]?=).*/.\1\2'<redacted>'/"

_SEP = "##pyinfra-openwrt##"

#: The private (mode 700) directory of ``operations.uci.converge`` on the router.
APPLY_DIR = "/tmp/pyinfra-apply"

# The router-side peer expiry job (operations/expiry_job.py): files of ours, read here.
#: Our directory (700): the job's script and its data (peer name, public key, cutoff).
EXPIRY_DIR = "/etc/self-sovereign-ollama"
EXPIRY_SCRIPT = f"{EXPIRY_DIR}/expire-peers"
EXPIRY_DATA = f"{EXPIRY_DIR}/expiry"
#: Runs the job when the WireGuard interface comes up (boot, ifup, reload).
EXPIRY_HOTPLUG = "/etc/hotplug.d/iface/95-self-sovereign-ollama-expiry"
#: What the job took off the interface (RAM: after a reboot it takes them off again).
EXPIRY_LOG = "/tmp/self-sovereign-ollama-expired"
#: root's crontab, shared with the user's own entries: we own only lines ending in the mark.
CRONTAB = "/etc/crontabs/root"
CRON_MARK = "# self-sovereign-ollama: peer expiry"

# Prints our job's files (checksums of the scripts, the data and log lines verbatim: names,
# public keys and times only) and our crontab line(s). Reads only.
_EXPIRY_READ = "; ".join([
    f"for f in {EXPIRY_SCRIPT} {EXPIRY_HOTPLUG}; do [ -f $f ] && "
    "echo \"file $f $(sha256sum < $f | cut -d' ' -f1)\"; done",
    f"[ -f {EXPIRY_DATA} ] && sed 's/^/data /' {EXPIRY_DATA}",
    f"[ -f {EXPIRY_LOG} ] && sed 's/^/removed /' {EXPIRY_LOG}",
    f"[ -f {CRONTAB} ] && grep -F '{CRON_MARK}' {CRONTAB} | sed 's/^/cron /'",
    "true",
])

# Waits (up to 30 s, without writing anything) while an apply or a firing guard holds the
# lock of the apply dir, so the read never sees a half-applied state.
_WAIT_FOR_APPLY = f"""n=0; while [ -d {APPLY_DIR}/lock ] && [ $n -lt 300 ]; do
 o=$(cat {APPLY_DIR}/lock/pid 2>/dev/null); [ -n "$o" ] && ! kill -0 "$o" 2>/dev/null && break
 n=$((n + 1)); sleep 0.1; done"""

# What earlier applies left on the router (see operations/uci.py for the layout): armed
# guards, rollbacks that happened, committed-but-not-live changes and our own leftovers.
# Only names, timestamps and checksums are printed, never a staged value.
_SAFETY_SCRIPT = f"""d={APPLY_DIR}; echo "now $(date +%s)"
for g in "$d"/guard-*; do [ -d "$g" ] || continue
 a=""; [ -f "$g/armed" ] && a=$(cat "$g/armed"); i=$(cat "$g/intent" 2>/dev/null)
 echo "guard ${{g##*/guard-}} armed=${{a:+1}} $a intent=$i"; done
for f in "$d"/rolled-back-*; do [ -f "$f" ] && echo "rolledback $(cat "$f")"; done
for f in "$d"/notlive-*; do [ -f "$f" ] &&
 echo "notlive ${{f##*/notlive-}} $(tr '\\n' ';' < "$f")"; done
for f in "$d"/save-* "$d"/apply-*.sh "$d"/batch-*.err "$d"/expected-* "$d"/actual-*; do
 [ -e "$f" ] && echo "leftover ${{f##*/}}"; done
[ -d "$d/lock" ] && echo "lock $(cat "$d/lock/pid" 2>/dev/null)"
true"""

# Prints the package manager's name, then its list of installed packages.
_LIST_PACKAGES = (
    "if command -v apk >/dev/null 2>&1; then echo apk; apk list --installed 2>/dev/null; "
    "elif command -v opkg >/dev/null 2>&1; then echo opkg; opkg list-installed 2>/dev/null; "
    "else echo none; fi"
)


def _state_script(packages: tuple[str, ...]) -> str:
    """The router-side script of :class:`OpenWrtState` (BusyBox ash)."""
    awk = shlex.quote(_HASH_SECRETS_AWK)
    sed = shlex.quote(_REDACT_CHANGES_SED)
    pkgs = " ".join(shlex.quote(p) for p in packages)
    d = APPLY_DIR
    body = "; ".join(
        [
            f"echo {shlex.quote(_SEP + 'release')}",
            "cat /etc/openwrt_release 2>/dev/null",
            f"echo {shlex.quote(_SEP + 'os-release')}",
            "cat /usr/lib/os-release 2>/dev/null",
            f"echo {shlex.quote(_SEP + 'packages')}",
            _LIST_PACKAGES,
            f"echo {shlex.quote(_SEP + 'pending')}",
            f"uci changes 2>/dev/null | sed -E {sed}",
            # one export per package, kept in the 700 temp dir: parsed and checksummed from
            # the same bytes
            f'for p in {pkgs}; do uci -n export $p > "$k/e.$p" 2>/dev/null; done',
            f"for p in {pkgs}; do echo {shlex.quote(_SEP + 'export')} $p; "
            f'awk -v tmp="$k/v" {awk} "$k/e.$p"; done',
            f"echo {shlex.quote(_SEP + 'checksum')}",
            f'for p in {pkgs}; do cat "$k/e.$p"; done | sha256sum',
            f"echo {shlex.quote(_SEP + 'safety')}",
            _SAFETY_SCRIPT,
            f"echo {shlex.quote(_SEP + 'expiry')}",
            _EXPIRY_READ,
        ]
    )
    # Read again (up to 5 times) if an apply or a firing guard touched the apply dir while we
    # read: config, checksum and guards then always describe the same moment.
    retry = (
        f"try=0; while :; do try=$((try + 1)); {_WAIT_FOR_APPLY}; "
        f"pre=$(ls -A {d} 2>/dev/null | tr '\\n' ' '); {{ {body}; }} > \"$k/out\"; "
        f"post=$(ls -A {d} 2>/dev/null | tr '\\n' ' '); "
        # a lock whose holder is dead (a killed apply) does not count as held
        f'[ "$pre" = "$post" ] && ! {{ [ -d {d}/lock ] && o=$(cat {d}/lock/pid 2>/dev/null) '
        f'&& kill -0 "$o" 2>/dev/null; }} && break; '
        f"[ $try -ge 5 ] && {{ echo {shlex.quote(_SEP + 'busy')} >> \"$k/out\"; break; }}; done"
    )
    return "; ".join(
        [
            # the private directory the uci apply script is later uploaded to
            f"(umask 077; mkdir -p {d})",
            _HASH_TMPDIR,
            'if [ -n "$k" ]; then ' + retry + '; cat "$k/out"; fi',
            _HASH_TMPDIR_END,
            f"echo {shlex.quote(_SEP + 'end')}",
        ]
    )


# -- parsers (pure functions, also used by tests and the lab) -------------------------------


def parse_release(lines: list[str]) -> dict[str, str]:
    """Parse ``/etc/openwrt_release`` (``DISTRIB_*``) or ``/usr/lib/os-release`` lines into
    ``{"distribution", "version", "revision", "target", "description", "codename"}`` (only
    the keys found), the key names ``ubus call system board`` uses."""
    keys = {
        "DISTRIB_ID": "distribution",
        "DISTRIB_RELEASE": "version",
        "DISTRIB_REVISION": "revision",
        "DISTRIB_TARGET": "target",
        "DISTRIB_DESCRIPTION": "description",
        "DISTRIB_CODENAME": "codename",
        "DISTRIB_ARCH": "arch",
        "NAME": "distribution",
        "VERSION": "version",
        "BUILD_ID": "revision",
        "OPENWRT_BOARD": "target",
        "OPENWRT_RELEASE": "description",
        "VERSION_CODENAME": "codename",
        "OPENWRT_ARCH": "arch",
    }
    release: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if not sep or key not in keys:
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            continue
        release.setdefault(keys[key], words[0] if words else "")
    return release


_APK_LINE = re.compile(
    r"^(?P<nv>\S+) (?P<arch>\S+) \{(?P<origin>[^}]*)\} \((?P<license>[^)]*)\) \[installed\]"
)
_APK_VERSION = re.compile(r"^\d[A-Za-z0-9._~+]*(-r\d+)?$")


def _split_apk_name(nv: str, origin: str) -> tuple[str, str]:
    if origin and nv.startswith(origin + "-") and _APK_VERSION.match(nv[len(origin) + 1 :]):
        return origin, nv[len(origin) + 1 :]
    for m in re.finditer(r"-(?=\d)", nv):
        version = nv[m.end() :]
        if _APK_VERSION.match(version):
            return nv[: m.start()], version
    return nv, ""


def parse_packages(manager: str, lines: list[str]) -> dict[str, str]:
    """Installed packages ``{name: version}`` from ``opkg list-installed`` (``name - version``)
    or apk v3 ``apk list --installed`` lines (tolerant of empty licenses and versions without
    ``-rN``, which pyinfra's own Alpine-oriented apk fact drops)."""
    packages: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if manager == "opkg":
            name, sep, version = line.partition(" - ")
            if sep:
                packages[name.strip()] = version.strip().split(" - ")[0]
        elif manager == "apk":
            m = _APK_LINE.match(line)
            if m:
                name, version = _split_apk_name(m["nv"], m["origin"])
                packages[name] = version
    return packages


def parse_state(lines: list[str]) -> dict[str, Any]:
    """Split the output of :class:`OpenWrtState`'s command into its parsed parts."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith(_SEP):
            current = blocks.setdefault(line[len(_SEP) :].strip(), [])
            continue
        if current is not None:
            current.append(line)
    release = parse_release(blocks.get("release", [])) or parse_release(
        blocks.get("os-release", [])
    )
    pkg_lines = blocks.get("packages", [])
    manager = pkg_lines[0].strip() if pkg_lines else "none"
    config: dict[str, list[dict[str, Any]]] = {}
    for key, body in blocks.items():
        if key.startswith("export "):
            name = key.split(" ", 1)[1]
            parsed = parse_uci_export(body)
            config[name] = parsed.get(name, [])
    checksum = (blocks.get("checksum") or [""])[0].split(" ")[0]
    safety = parse_safety(blocks.get("safety", []))
    expiry = parse_expiry(blocks.get("expiry", []))
    return {
        "release": release,
        "package_manager": manager if manager in ("opkg", "apk") else None,
        "packages": parse_packages(manager, pkg_lines[1:]),
        "pending": [line for line in blocks.get("pending", []) if line.strip()],
        "config": config,
        "checksum": checksum,
        "safety": safety,
        "expiry": expiry,
        "complete": "end" in blocks and "busy" not in blocks,
    }


_TOKEN = re.compile(r"^[0-9a-f]{8,64}$")


def _fields(words: list[str]) -> dict[str, str]:
    return dict(w.split("=", 1) for w in words if "=" in w)


def parse_safety(lines: list[str]) -> dict[str, Any]:
    """What earlier applies left behind, from the ``safety`` block of the state read::

        {"now": 1733430000,
         "guards": [{"token", "armed": bool, "when": int, "seconds": int, "age": int,
                     "packages": [...], "intent": "<sha256 of the config it committed>"}],
         "rollbacks": [{"token", "when": int, "reason": str, "restored": [...]}],
         "not_live": [{"token", "reload": ["/etc/init.d/network reload", "ifup wg0", ...]}],
         "leftovers": ["save-<token>", "apply-<token>.sh", ...],
         "lock": "<pid>" | None}
    """
    out: dict[str, Any] = {"now": 0, "guards": [], "rollbacks": [], "not_live": [],
                           "leftovers": [], "lock": None}
    for line in lines:
        words = line.split()
        if not words:
            continue
        kind, rest = words[0], words[1:]
        if kind == "now" and rest and rest[0].isdigit():
            out["now"] = int(rest[0])
        elif kind == "guard" and rest and _TOKEN.match(rest[0]):
            f = _fields(rest[1:])
            when = int(f.get("when", "0") or 0) if f.get("when", "0").isdigit() else 0
            out["guards"].append({
                "token": rest[0],
                "armed": f.get("armed") == "1",
                "when": when,
                "seconds": int(f["seconds"]) if f.get("seconds", "").isdigit() else 0,
                "age": max(0, out["now"] - when) if when else 0,
                "packages": [p for p in f.get("packages", "").split(",") if p],
                "intent": f.get("intent", ""),
            })
        elif kind == "rolledback":
            f = _fields(rest)
            if _TOKEN.match(f.get("token", "")):
                out["rollbacks"].append({
                    "token": f["token"],
                    "when": int(f["when"]) if f.get("when", "").isdigit() else 0,
                    "reason": f.get("reason", "timer").replace("_", " "),
                    "restored": [p for p in f.get("restored", "").split(",") if p],
                })
        elif kind == "notlive" and rest and _TOKEN.match(rest[0]):
            cmds = " ".join(rest[1:]).split(";")
            out["not_live"].append({"token": rest[0],
                                    "reload": [c.strip() for c in cmds if c.strip()]})
        elif kind == "leftover" and rest:
            out["leftovers"].append(rest[0])
        elif kind == "lock":
            out["lock"] = rest[0] if rest else ""
    return out


def parse_expiry(lines: list[str]) -> dict[str, Any]:
    """The router-side expiry job as found, from the ``expiry`` block of the state read::

        {"files": {"/etc/self-sovereign-ollama/expire-peers": "<sha256>", ...},
         "data": ["interface wg0", "peer guest <public key> <cutoff epoch>", ...],
         "removed": [{"name", "public_key", "when": int}],   # what the job took off
         "cron": ["* * * * * ... # self-sovereign-ollama: peer expiry"]}
    """
    out: dict[str, Any] = {"files": {}, "data": [], "removed": [], "cron": []}
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "file":
            path, _, digest = rest.partition(" ")
            out["files"][path] = digest.strip()
        elif kind == "data":
            out["data"].append(rest)
        elif kind == "removed":
            words = rest.split()  # a peer taken off again (after an ifup): the latest time
            if len(words) >= 2:
                out["removed"] = [r for r in out["removed"] if r["name"] != words[0]]
                out["removed"].append({"name": words[0], "public_key": words[1], "when": int(
                    words[2]) if len(words) > 2 and words[2].isdigit() else 0})
        elif kind == "cron":
            out["cron"].append(rest)
    return out


# -- facts ----------------------------------------------------------------------------------


class OpenWrtState(FactBase):
    """The router's state in one exec.

    Returns::

        {
          "release": {"distribution": "OpenWrt", "version": "23.05.5", ...},
          "package_manager": "opkg" | "apk" | None,
          "packages": {"wireguard-tools": "1.0.20210914-2", ...},
          "pending": ["network.lan.ipaddr='192.168.2.1'", ...],   # uncommitted uci changes
          "config": {"network": [section, ...], "firewall": [...], "dhcp": [...]},
          "checksum": "<sha256 of the raw exports, to detect changes made after this read>",
          "safety": {...},   # what earlier applies left: guards, rollbacks, not-live, leftovers
          "expiry": {...},   # the router-side expiry job's files and what it removed
          "complete": True,
        }

    ``safety`` is :func:`parse_safety`'s result. The read waits (up to 30 s) while an apply or a
    firing rollback guard holds the apply dir's lock, so it never sees a half-applied state.

    with sections as :func:`parse_uci_export` returns them (anonymous sections have
    ``"name": None`` and their ``cfgNNHHHH`` id in ``"id"``). Secret option values are
    ``sha256:<hex>`` fingerprints. ``{}`` when the host has no ``uci``.

    Example::

        state = host.get_fact(OpenWrtState)
        [s for s in state["config"]["firewall"] if s["type"] == "zone"]
    """

    @staticmethod
    def default() -> dict:
        return {}

    def requires_command(self, *args, **kwargs) -> str:
        return "uci"

    def command(self) -> str:
        return _state_script(PACKAGES)

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_state(output)


class UciPackage(FactBase):
    """One uci package, parsed (secrets fingerprinted): ``[section, ...]`` in file order.

    Example::

        pyinfra inventories/home.py fact facts.openwrt.UciPackage package=firewall
    """

    @staticmethod
    def default() -> list:
        return []

    def requires_command(self, *args, **kwargs) -> str:
        return "uci"

    def command(self, package: str) -> StringCommand:
        return StringCommand(
            _HASH_TMPDIR + ";",
            "uci",
            "-n",
            "export",
            QuoteString(package),
            "2>/dev/null",
            "|",
            "awk",
            '-v tmp="${k:+$k/v}"',
            QuoteString(_HASH_SECRETS_AWK),
            ";",
            _HASH_TMPDIR_END,
        )

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        parsed = parse_uci_export(output)
        return next(iter(parsed.values()), [])


class OpenWrtPackages(FactBase):
    """Installed packages ``{name: version}``, with opkg (23.05, 24.10) or apk (25.x).

    Example::

        pyinfra inventories/home.py fact facts.openwrt.OpenWrtPackages --limit router
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self) -> str:
        return _LIST_PACKAGES

    def process(self, output: list[str]) -> dict[str, str]:
        if not output:
            return {}
        return parse_packages(output[0].strip(), output[1:])

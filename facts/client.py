"""Facts about a macOS client (group ``clients``): what the client role needs, in two reads.

* :class:`ClientState` (as the SSH user, no root): system, Homebrew formulae (read from the
  Cellar, no Ruby start), pins, the managed files under ``$HOME`` (sha256 + whether they carry
  our header), the marker blocks of the shell profiles, Aider (pipx venv) and Claude Code
  versions, leftovers of the original installer. One exec.
* :class:`TunnelState` (run it with ``_sudo=True``): the root-owned WireGuard config and the
  LaunchDaemon plist (sha256, mode, owner), whether the tunnel is up, whether launchd has the
  daemon loaded or disabled. One exec. It prints hashes only, never the config (the config
  holds the private key; a sha256 of a file holding a 256-bit key reveals nothing).
* :class:`BrewPinned`: pinned Homebrew formulae (for ``pin_ollama`` on the server).

Every command is POSIX ``sh`` using only tools macOS ships (``awk``, ``shasum``, ``ls -n``;
no GNU ``stat``). From the repo root::

    pyinfra inventories/home.py fact facts.client.ClientState --limit alice-mac
    pyinfra inventories/home.py fact facts.client.TunnelState interface=wg-ollama \\
        config=/opt/homebrew/etc/wireguard/wg-ollama.conf \\
        label=org.self-sovereign-ollama.wireguard.wg-ollama --sudo --limit alice-mac
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api import FactBase

#: Homebrew formulae whose installed versions :class:`ClientState` reports.
FORMULAE = ("bash", "wireguard-tools", "wireguard-go", "pipx", "python@3.12")
#: Shell startup files :class:`ClientState` looks for marker blocks in (relative to $HOME).
PROFILES = (".zshrc", ".bash_profile", ".bash_login", ".profile", ".bashrc")
#: Marker names: ours, and the two blocks the original client installer wrote.
MARKER = "self-sovereign-ollama"
LEGACY_MARKERS = ("ai-client", "claude-ollama")
#: First-line header of every file the client role writes (see ``templates/client-*``).
HEADER = "Managed by pyinfra (self-sovereign-ollama"
#: Prefix of the labels of the tunnel LaunchDaemons the client role installs.
MARKER_LABEL = "org.self-sovereign-ollama.wireguard"
#: Our private directory under $HOME (mode 700): env file, upload staging.
CONFIG_DIR = ".config/self-sovereign-ollama"
#: Files under $HOME the role manages (relative to $HOME).
MANAGED_FILES = (f"{CONFIG_DIR}/env.sh", ".aider.conf.yml", ".aider.model.settings.yml",
                 ".aider.model.metadata.json")
BACKUP_SUFFIX = ".before-self-sovereign-ollama"
LEGACY_PATHS = ("Downloads/ai-server-vpn.conf", ".ai-client")
PIPX_PACKAGE = "aider-chat"


def begin_marker(name: str) -> str:
    return f"# >>> {name} >>>"


def end_marker(name: str) -> str:
    return f"# <<< {name} <<<"


def _markers_regex(kind: str) -> str:
    names = "|".join((MARKER, *LEGACY_MARKERS))
    return f"^# {kind} ({names}) {kind}$"


def _client_script(prefix: str) -> str:
    p = shlex.quote(prefix)
    begin_re, end_re = _markers_regex(">>>"), _markers_regex("<<<")
    awk = shlex.quote(
        f"/{begin_re}/ {{ b = 1 }} "
        'b { printf "line\\t%s\\t%d\\t%s\\n", f, NR, $0 } '
        f"/{end_re}/ {{ b = 0 }}"
    )
    header = shlex.quote(HEADER)
    formulae = " ".join(shlex.quote(f) for f in FORMULAE)
    files = " ".join(f'"$H/{f}"' for f in MANAGED_FILES)
    profiles = " ".join(PROFILES)
    legacy = " ".join(f'"$H/{f}"' for f in LEGACY_PATHS)
    return "\n".join(
        [
            f"P={p}; H=$HOME; D=\"$H/{CONFIG_DIR}\"",
            "h() { shasum -a 256 \"$1\" 2>/dev/null | cut -d' ' -f1; }",
            "printf 'sys\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \"$(uname -s)\" \"$(id -u)\" \"$(id -un)\""
            " \"$H\" \"$(sw_vers -productVersion 2>/dev/null)\"",
            "[ -x \"$P/bin/brew\" ] && printf 'brew\\t%s\\n' \"$P/bin/brew\"",
            f"for f in {formulae}; do for v in \"$P/Cellar/$f\"/*; do"
            " [ -d \"$v\" ] && printf 'formula\\t%s\\t%s\\n' \"$f\" \"${v##*/}\"; done; done",
            "for f in \"$P/var/homebrew/pinned\"/*; do"
            " { [ -e \"$f\" ] || [ -L \"$f\" ]; } && printf 'pinned\\t%s\\n' \"${f##*/}\"; done",
            "[ -d \"$D\" ] && printf 'dir\\t%s\\t%s\\n' \"$D\""
            " \"$(ls -ldn \"$D\" | awk '{print $1\" \"$3}')\"",
            f"for f in {files}; do",
            "  if [ -f \"$f\" ]; then m=0;"
            f" head -n 3 \"$f\" | grep -qF {header} && m=1;"
            " printf 'file\\t%s\\t%s\\t%s\\n' \"$f\" \"$(h \"$f\")\" \"$m\"; fi",
            f"  [ -e \"$f{BACKUP_SUFFIX}\" ] && printf 'backup\\t%s\\n' \"$f\"",
            "done",
            f"for f in {profiles}; do [ -f \"$H/$f\" ] || continue;"
            " printf 'profile\\t%s\\n' \"$f\";"
            f" awk -v f=\"$f\" {awk} \"$H/$f\"; done",
            "for v in \"${PIPX_HOME:-}\" \"$H/.local/pipx\""
            " \"$H/Library/Application Support/pipx\"; do",
            f"  [ -n \"$v\" ] && [ -d \"$v/venvs/{PIPX_PACKAGE}\" ] || continue",
            "  printf 'pipx\\t%s\\n' \"$v\"",
            f"  for m in \"$v/venvs/{PIPX_PACKAGE}\"/lib/python*/site-packages/"
            "aider_chat-*.dist-info; do"
            " [ -d \"$m\" ] && printf 'aider\\t%s\\n' \"${m##*/}\"; done",
            "done",
            "c=$(readlink \"$H/.local/bin/claude\" 2>/dev/null) &&"
            " printf 'claude\\tnative\\t%s\\n' \"$c\"",
            "for v in \"$P/Caskroom/claude-code\"/*; do"
            " [ -d \"$v\" ] && printf 'claude\\tcask\\t%s\\n' \"${v##*/}\"; done",
            "for j in \"$P/lib/node_modules/@anthropic-ai/claude-code/package.json\""
            " \"$H/.claude/local/node_modules/@anthropic-ai/claude-code/package.json\"; do",
            "  [ -f \"$j\" ] && printf 'claude\\tnpm\\t%s\\n'"
            " \"$(sed -n 's/^ *\"version\": *\"\\([^\"]*\\)\".*/\\1/p' \"$j\" | head -n 1)\"",
            "done",
            f"for f in {legacy}; do [ -e \"$f\" ] && printf 'legacy\\t%s\\n' \"$f\"; done",
            "printf 'end\\n'",
        ]
    )


def parse_profile_lines(lines: list[tuple[int, str]]) -> dict[str, Any]:
    """Marker lines of one profile (``(line number, text)``, as the fact's awk prints them)
    -> ``{"blocks": [{"marker", "begin", "end", "body"}], "unterminated": [{"marker",
    "begin"}]}``. ``body`` is the text between the markers."""
    blocks: list[dict[str, Any]] = []
    unterminated: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for number, text in lines:
        if current is None:
            for name in (MARKER, *LEGACY_MARKERS):
                if text == begin_marker(name):
                    current = {"marker": name, "begin": number, "body": []}
                    break
            continue
        if text == end_marker(current["marker"]):
            blocks.append({"marker": current["marker"], "begin": current["begin"],
                           "end": number, "body": "\n".join(current["body"])})
            current = None
        elif any(text == begin_marker(n) for n in (MARKER, *LEGACY_MARKERS)):
            unterminated.append({"marker": current["marker"], "begin": current["begin"]})
            current = None
            for name in (MARKER, *LEGACY_MARKERS):
                if text == begin_marker(name):
                    current = {"marker": name, "begin": number, "body": []}
        else:
            current["body"].append(text)
    if current is not None:
        unterminated.append({"marker": current["marker"], "begin": current["begin"]})
    return {"blocks": blocks, "unterminated": unterminated}


def _ls_mode(text: str) -> dict[str, Any]:
    parts = text.split()
    return {"mode": parts[0][:10] if parts else "", "uid": parts[1] if len(parts) > 1 else ""}


class ClientState(FactBase[dict]):
    """The client as the SSH user sees it (one exec; see the module docstring).

    ``{"system", "uid", "user", "home", "macos", "brew": bool, "formulae": {name: [versions]},
    "pinned": [...], "dirs": {path: {"mode", "uid"}}, "files": {path: {"sha256", "managed"}},
    "backups": [path, ...], "profiles": {".zshrc": {"blocks": [...], "unterminated": [...]}},
    "pipx_home": str | None, "aider": version | None, "claude_code": {method: version},
    "legacy": [path, ...]}``
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, prefix: str = "/opt/homebrew") -> str:
        return _client_script(prefix)

    def process(self, output: list[str]) -> dict:
        state: dict[str, Any] = {
            "system": None, "uid": None, "user": None, "home": None, "macos": None,
            "brew": False, "formulae": {}, "pinned": [], "dirs": {}, "files": {},
            "backups": [], "profiles": {}, "pipx_home": None, "aider": None,
            "claude_code": {}, "legacy": [],
        }
        profile_lines: dict[str, list[tuple[int, str]]] = {}
        for line in output:
            kind, _, rest = line.partition("\t")
            fields = rest.split("\t")
            if kind == "sys" and len(fields) >= 5:
                state["system"], uid, state["user"], state["home"], macos = fields[:5]
                state["uid"] = int(uid) if uid.isdigit() else None
                state["macos"] = macos or None
            elif kind == "brew":
                state["brew"] = True
            elif kind == "formula" and len(fields) == 2:
                state["formulae"].setdefault(fields[0], []).append(fields[1])
            elif kind == "pinned":
                state["pinned"].append(rest)
            elif kind == "dir" and len(fields) == 2:
                state["dirs"][fields[0]] = _ls_mode(fields[1])
            elif kind == "file" and len(fields) == 3:
                state["files"][fields[0]] = {"sha256": fields[1] or None,
                                             "managed": fields[2] == "1"}
            elif kind == "backup":
                state["backups"].append(rest)
            elif kind == "profile":
                profile_lines.setdefault(rest, [])
            elif kind == "line" and len(fields) >= 3:
                text = "\t".join(fields[2:])
                profile_lines.setdefault(fields[0], []).append((int(fields[1]), text))
            elif kind == "pipx":
                state["pipx_home"] = state["pipx_home"] or rest
            elif kind == "aider":
                version = rest[len("aider_chat-"):-len(".dist-info")]
                state["aider"] = state["aider"] or version
            elif kind == "claude" and len(fields) == 2 and fields[1]:
                method, value = fields
                if method == "native":  # ~/.local/bin/claude -> .../versions/<version>
                    value = value.rstrip("/").rsplit("/", 1)[-1]
                state["claude_code"][method] = value
            elif kind == "legacy":
                state["legacy"].append(rest)
        for name, lines in profile_lines.items():
            state["profiles"][name] = parse_profile_lines(lines)
        return state


class TunnelState(FactBase[dict]):
    """The root-owned side of the client's tunnel; run with ``_sudo=True`` (one exec).

    ``{"files": {path: {"sha256", "mode", "uid", "gid"}}, "dirs": {path: {"mode", "uid"}},
    "tunnel": {"device", "socket"} | None, "daemon_loaded": bool, "daemon_disabled": bool,
    "config_sha256_nokey": str | None, "public_key": str | None, "key_in_config": bool,
    "wg": bool, "key_file": bool, "others": [path, ...]}``

    With ``key`` (the Mac's own private key file, ``key_on_mac``) and ``wg`` (Homebrew's ``wg``):
    ``public_key`` is ``wg pubkey < key`` (the private key never leaves the Mac),
    ``config_sha256_nokey`` the sha256 of the config without its ``PrivateKey`` line (what the
    controller can compare), ``key_in_config`` whether the config holds that key (compared on
    the Mac, by ``cmp``), ``wg`` whether ``wg`` is installed, ``key_file`` whether the key file
    exists. ``others``: tunnel configs, key
    files and LaunchDaemons this project made for *another* interface name (a renamed tunnel's
    leftovers).
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(self, interface: str, config: str, label: str,
                plist: str | None = None, key: str | None = None,
                wg: str | None = None) -> str:
        conf, lbl = shlex.quote(config), shlex.quote(label)
        conf_dir = shlex.quote(config.rsplit("/", 1)[0])
        plist_path = shlex.quote(plist or f"/Library/LaunchDaemons/{label}.plist")
        name = shlex.quote(f"/var/run/wireguard/{interface}.name")
        keys: list[str] = []
        if key and wg:
            k, w = shlex.quote(key), shlex.quote(wg)
            keys = [
                f"[ -f {k} ] && printf 'keyfile\\n'",
                f"[ -x {w} ] && printf 'wg\\t1\\n'",
                f"[ -s {k} ] && [ -x {w} ] && printf 'pub\\t%s\\n' \"$({w} pubkey < {k})\"",
                f"[ -f {conf} ] && printf 'nokey\\t%s\\n' \"$(grep -v"
                f" '^PrivateKey[[:space:]]*=' {conf} | shasum -a 256 | cut -d' ' -f1)\"",
                # the config's key line against 'PrivateKey = <key file>', compared on the Mac
                f"[ -s {k} ] && [ -f {conf} ] && grep '^PrivateKey[[:space:]]*=' {conf} |"
                f" {{ {{ printf 'PrivateKey = '; cat {k}; }} | cmp -s - /dev/fd/3; }} 3<&0"
                " && printf 'keyok\\n'",
            ]
        others = [
            f"for f in {conf_dir}/*.conf {conf_dir}/*.key; do [ -f \"$f\" ] || continue;"
            f" [ \"$f\" = {conf} ] && continue; [ \"$f\" = {shlex.quote(key or '')} ] && continue;"
            " case $f in *.conf) grep -q 'generated by self-sovereign-ollama' \"$f\" || continue;;"
            " *.key) grep -qs 'generated by self-sovereign-ollama' \"${f%.key}.conf\" || continue;;"
            " esac;"
            " printf 'other\\t%s\\n' \"$f\"; done",
            f"for f in /Library/LaunchDaemons/{MARKER_LABEL}.*.plist; do [ -f \"$f\" ] || continue;"
            f" [ \"$f\" = {plist_path} ] || printf 'other\\t%s\\n' \"$f\"; done",
        ]
        return "\n".join(
            [
                *keys,
                *others,
                f"for f in {conf} {plist_path}; do [ -f \"$f\" ] || continue;"
                " printf 'file\\t%s\\t%s\\t%s\\n' \"$f\""
                " \"$(shasum -a 256 \"$f\" | cut -d' ' -f1)\""
                " \"$(ls -ln \"$f\" | awk '{print $1\" \"$3\" \"$4}')\"; done",
                f"[ -d {conf_dir} ] && printf 'dir\\t%s\\t%s\\n' {conf_dir}"
                f" \"$(ls -ldn {conf_dir} | awk '{{print $1\" \"$3}}')\"",
                f"if [ -f {name} ]; then u=$(cat {name}); s=0;"
                " [ -S \"/var/run/wireguard/$u.sock\" ] && s=1;"
                " printf 'tunnel\\t%s\\t%s\\n' \"$u\" \"$s\"; fi",
                f"launchctl print system/{lbl} >/dev/null 2>&1; printf 'loaded\\t%s\\n' $?",
                f"launchctl print-disabled system 2>/dev/null | grep -F '\"'{lbl}'\"'"
                " | grep -Eq '=> (disabled|true)' && printf 'disabled\\n'",
                "printf 'end\\n'",
            ]
        )

    def process(self, output: list[str]) -> dict:
        state: dict[str, Any] = {"files": {}, "dirs": {}, "tunnel": None,
                                 "daemon_loaded": False, "daemon_disabled": False,
                                 "config_sha256_nokey": None, "public_key": None,
                                 "key_in_config": False, "wg": False, "key_file": False,
                                 "others": []}
        for line in output:
            kind, _, rest = line.partition("\t")
            fields = rest.split("\t")
            if kind == "file" and len(fields) == 3:
                parts = fields[2].split()
                state["files"][fields[0]] = {
                    "sha256": fields[1] or None,
                    "mode": parts[0][:10] if parts else "",
                    "uid": parts[1] if len(parts) > 1 else "",
                    "gid": parts[2] if len(parts) > 2 else "",
                }
            elif kind == "dir" and len(fields) == 2:
                state["dirs"][fields[0]] = _ls_mode(fields[1])
            elif kind == "tunnel" and len(fields) == 2:
                state["tunnel"] = {"device": fields[0], "socket": fields[1] == "1"}
            elif kind == "loaded":
                state["daemon_loaded"] = rest.strip() == "0"
            elif kind == "disabled":
                state["daemon_disabled"] = True
            elif kind == "wg":
                state["wg"] = True
            elif kind == "pub" and rest.strip():
                state["public_key"] = rest.strip()
            elif kind == "nokey" and rest.strip():
                state["config_sha256_nokey"] = rest.strip()
            elif kind == "keyok":
                state["key_in_config"] = True
            elif kind == "keyfile":
                state["key_file"] = True
            elif kind == "other" and rest.strip():
                state["others"].append(rest.strip())
        return state


class BrewPinned(FactBase[list]):
    """Pinned Homebrew formulae: the names in ``<prefix>/var/homebrew/pinned`` (where ``brew
    pin`` records them), without starting Homebrew. Example: ``["ollama"]``."""

    @staticmethod
    def default() -> list:
        return []

    def command(self, prefix: str = "/opt/homebrew") -> str:
        p = shlex.quote(f"{prefix}/var/homebrew/pinned")
        return (f"for f in {p}/*; do {{ [ -e \"$f\" ] || [ -L \"$f\" ]; }} &&"
                " printf '%s\\n' \"${f##*/}\"; done; true")

    def process(self, output: list[str]) -> list:
        return sorted(line.strip() for line in output if line.strip())

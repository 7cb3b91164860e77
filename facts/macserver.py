"""The server role's one read (:class:`MacServerState`: macOS, hardware, Homebrew, launchd jobs
and domains, pmset, network, files, Ollama's API, in **one** exec, with the parsers of
``facts/macos.py``, ``facts/launchd.py``, ``facts/homebrew.py`` and ``facts/ollama.py``), and
the competing Ollama servers found in it (:func:`find_competitors`, :class:`OllamaCompetitors`).
A re-run that changes nothing costs this one round trip.

    pyinfra inventories/home.py fact facts.macserver.MacServerState --limit server
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from pyinfra.api import FactBase

from facts.homebrew import brew_script, parse_brew_block, parse_brew_info
from facts.launchd import launchd_script, parse_domains, parse_launchctl_print
from facts.macos import (
    SECTION_SEP,
    hardware_from,
    info_script,
    int_or_none,
    parse_dns_servers,
    parse_getinfo,
    parse_key_values,
    parse_pmset_custom,
    parse_service_order,
    parse_sw_vers,
    split_sections,
)
from facts.ollama import (
    parse_api_response,
    parse_lsof_listeners,
    parse_ollama_processes,
)


def parse_file_hashes(lines: Iterable[str]) -> dict[str, str | None]:
    """Lines ``<sha256> <path>`` or ``- <path>`` (absent) -> ``{path: sha256 | None}``."""
    result: dict[str, str | None] = {}
    for line in lines:
        digest, sep, path = line.strip().partition(" ")
        if sep:
            result[path] = None if digest == "-" else digest
    return result


def path_expr(path: str) -> str:
    """A shell word for ``path``; ``~/x`` becomes ``"$HOME"/x``."""
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


# -- the server role's one read ---------------------------------------------------------------

#: launchd labels the server role inspects: ours, and Homebrew's competing Ollama service.
SERVER_LABELS = ("com.ollama", "com.haproxy", "homebrew.mxcl.ollama")


def server_state_script(
    api: str,
    port: int,
    labels: Sequence[str] = SERVER_LABELS,
    files: Sequence[str] = (),
    formulas: Sequence[str] = ("ollama", "haproxy"),
    network_service: str = "",
    network_device: str = "",
    proxy_api: str = "",
    brew_info: bool = False,
    api_endpoints: Sequence[str] = ("version", "tags", "ps"),
    run_user: str = "",
) -> str:
    """The Mac-side script of :class:`MacServerState` (POSIX sh, never fails)."""
    if run_user and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", run_user):
        raise ValueError(f"not a user name: {run_user!r}")
    api_q = shlex.quote(api)
    file_words = " ".join(path_expr(f) for f in files)
    parts = [
        f"echo '{SECTION_SEP} id'",
        "id -u",
        "id -un",
        'echo "$HOME"',
        f"echo '{SECTION_SEP} session'",
        'echo "ssh_connection=$SSH_CONNECTION"',
        "if sudo -n true >/dev/null 2>&1; then echo sudo=nopasswd; else echo sudo=password; fi",
        'echo "filevault=$(fdesetup status 2>/dev/null)"',
        'echo "autologin=$(defaults read /Library/Preferences/com.apple.loginwindow '
        'autoLoginUser 2>/dev/null)"',
        f"echo '{SECTION_SEP} runuser'",
        f"id -u {run_user} 2>/dev/null; echo ~{run_user}" if run_user else ":",
        info_script(),
        brew_script(list(formulas), info=brew_info, refresh=brew_info) if formulas else ":",
        launchd_script(list(labels)),
        f"echo '{SECTION_SEP} files'",
        f"for f in {file_words}; do "
        'if [ -f "$f" ]; then echo "$(shasum -a 256 < "$f" | cut -d" " -f1) $f"; '
        'else echo "- $f"; fi; done'
        if files
        else ":",
        f"echo '{SECTION_SEP} apps'",
        'for a in /Applications/Ollama.app "$HOME/Applications/Ollama.app"; do '
        '[ -d "$a" ] && echo "$a"; done',
        f"echo '{SECTION_SEP} processes'",
        "ps ax -o pid= -o user= -o command= 2>/dev/null | grep -i -e ollama -e haproxy "
        f"| grep -v -e '{SECTION_SEP}' -e grep",
        f"echo '{SECTION_SEP} listeners'",
        f"lsof -nP -iTCP:{int(port)} -sTCP:LISTEN -F pcLn 2>/dev/null",
        f"echo '{SECTION_SEP} pmset'",
        "pmset -g custom 2>/dev/null",
        f"echo '{SECTION_SEP} serviceorder'",
        "order=$(networksetup -listnetworkserviceorder 2>/dev/null)",
        "printf '%s\\n' \"$order\"",
    ]
    if network_service or network_device:
        if network_service:
            parts.append(f"svc={shlex.quote(network_service)}")
        else:
            awk = (
                r'/^\(([0-9]+|\*)\) /{n=$0; sub(/^\([^)]*\) /,"",n); next} '
                r'/^\(Hardware Port: /{d=$0; sub(/.*, Device: ?/,"",d); sub(/\)$/,"",d); '
                r'if (d==dev && n!="") {print n; exit}}'
            )
            parts.append(
                f"svc=$(printf '%s\\n' \"$order\" | awk -v dev={shlex.quote(network_device)} "
                f"{shlex.quote(awk)})"
            )
        parts += [
            f'echo "{SECTION_SEP} getinfo $svc"',
            '[ -n "$svc" ] && networksetup -getinfo "$svc" 2>&1',
            f"echo '{SECTION_SEP} dns'",
            '[ -n "$svc" ] && networksetup -getdnsservers "$svc" 2>&1',
        ]
    for endpoint in api_endpoints:
        parts += [
            f"echo '{SECTION_SEP} api {endpoint}'",
            f"curl -s -m 5 -w '\\n%{{http_code}}\\n' http://{api_q}/api/{endpoint} 2>/dev/null"
            " || echo",
        ]
    if proxy_api:
        parts += [
            f"echo '{SECTION_SEP} proxy version'",
            f"curl -s -m 5 -w '\\n%{{http_code}}\\n' http://{shlex.quote(proxy_api)}/api/version"
            " 2>/dev/null || echo",
        ]
    parts += [f"echo '{SECTION_SEP} end'", "true"]
    return "; ".join(parts)


def parse_server_state(lines: list[str]) -> dict[str, Any]:
    """Parse :func:`server_state_script` output into the :class:`MacServerState` dict."""
    state: dict[str, Any] = {
        "uid": None,
        "user": None,
        "home": None,
        "ssh_connection": None,
        "sudo_nopasswd": False,
        "filevault": None,
        "autologin_user": None,
        "run_user": None,
        "macos": {},
        "brew": {"prefix": None, "formulas": {}},
        "brew_info": {},
        "domains": {},
        "launchd": {},
        "files": {},
        "apps": [],
        "processes": [],
        "listeners": [],
        "pmset": {},
        "network_services": [],
        "network_service": None,
        "network": None,
        "dns": None,
        "api": {},
        "proxy_api": None,
        "complete": False,
    }
    arch = None
    sysctl: dict[str, str] = {}
    for words, body in split_sections(lines):
        kind = words[0] if words else ""
        if kind == "id":
            state["uid"] = int_or_none(body[0]) if body else None
            state["user"] = body[1].strip() if len(body) > 1 else None
            state["home"] = body[2].strip() if len(body) > 2 else None
        elif kind == "session":
            kv = parse_key_values(body)
            conn = kv.get("ssh_connection", "").split()
            state["ssh_connection"] = (
                {"client": conn[0], "server": conn[2], "port": int_or_none(conn[3])}
                if len(conn) == 4
                else None
            )
            state["sudo_nopasswd"] = kv.get("sudo") == "nopasswd"
            fv = kv.get("filevault", "")
            state["filevault"] = True if "is On" in fv else False if "is Off" in fv else None
            state["autologin_user"] = kv.get("autologin") or None
        elif kind == "runuser":
            uid = int_or_none(body[0]) if body and len(body) > 1 else None
            home = body[-1].strip() if body else ""
            state["run_user"] = (
                {"uid": uid, "home": home if home.startswith("/") else None}
                if uid is not None
                else None
            )
        elif kind == "sw_vers":
            state["macos"].update(parse_sw_vers(body))
        elif kind == "uname":
            arch = next((line.strip() for line in body if line.strip()), None)
        elif kind == "sysctl":
            sysctl = parse_key_values(body)
        elif kind == "brew":
            state["brew"] = parse_brew_block(body)
        elif kind == "brew-info":
            state["brew_info"] = parse_brew_info("\n".join(body))
        elif kind == "domains":
            state["domains"] = parse_domains(body)
        elif kind == "launchd" and len(words) == 3:
            target, rc = words[1], int_or_none(words[2])
            domain, label = target.rsplit("/", 1)
            kind_name = domain.split("/", 1)[0]
            state["launchd"].setdefault(label, {})[kind_name] = parse_launchctl_print(body, rc)
        elif kind == "files":
            state["files"] = parse_file_hashes(body)
        elif kind == "apps":
            state["apps"] = [line.strip() for line in body if line.strip()]
        elif kind == "processes":
            state["processes"] = parse_ollama_processes(body)
        elif kind == "listeners":
            state["listeners"] = parse_lsof_listeners(body)
        elif kind == "pmset":
            state["pmset"] = parse_pmset_custom(body)
        elif kind == "serviceorder":
            state["network_services"] = parse_service_order(body)
        elif kind == "getinfo":
            state["network_service"] = " ".join(words[1:]) or None
            state["network"] = parse_getinfo(body) if state["network_service"] else None
        elif kind == "dns":
            state["dns"] = parse_dns_servers(body) if state["network_service"] else None
        elif kind == "api" and len(words) == 2:
            state["api"][words[1]] = parse_api_response(body)
        elif kind == "proxy":
            state["proxy_api"] = parse_api_response(body)
        elif kind == "end":
            state["complete"] = True
    state["macos"].update(hardware_from(sysctl, arch))
    return state


class MacServerState(FactBase):
    """Everything the server role reads, in **one** exec: identity and session, macOS version
    and hardware, Homebrew formulas, launchd domains and jobs (``print`` of each label in
    ``gui/<uid>``, ``user/<uid>`` and ``system``), sha256 of the managed files, Ollama.app,
    Ollama/HAProxy processes and listeners, ``pmset -g custom``, network services and the
    configured service's ``-getinfo``/DNS, and Ollama's ``/api/version``, ``/api/tags``,
    ``/api/ps``.

    Arguments: ``api`` (``host:port`` of Ollama), ``port`` (for listeners), ``labels``,
    ``files`` (``~/`` allowed), ``formulas``, ``network_service`` or ``network_device``,
    ``proxy_api`` (HAProxy's ``host:port``), ``brew_info`` (also ``brew update`` + ``brew
    info --json=v2``: slow, only to decide upgrades), ``run_user`` (the daemon's user: uid and
    home). Also FileVault (``fdesetup status``) and the auto-login user: both decide whether
    a LaunchAgent can start after a reboot.

    Example::

        state = host.get_fact(MacServerState, api="192.168.100.10:11434", port=11434,
                              files=["~/Library/LaunchAgents/com.ollama.plist"],
                              network_device="en0")
        state["launchd"]["com.ollama"]["user"]["state"]      # "running"
        state["api"]["version"]["json"]["version"]           # "0.32.3"
    """

    @staticmethod
    def default() -> dict:
        return {}

    def command(
        self,
        api: str,
        port: int,
        labels: Sequence[str] = SERVER_LABELS,
        files: Sequence[str] = (),
        formulas: Sequence[str] = ("ollama", "haproxy"),
        network_service: str = "",
        network_device: str = "",
        proxy_api: str = "",
        brew_info: bool = False,
        run_user: str = "",
    ) -> str:
        return server_state_script(
            api,
            port,
            labels,
            files,
            formulas,
            network_service,
            network_device,
            proxy_api,
            brew_info,
            run_user=run_user,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_server_state(output)


# -- competing Ollama servers -----------------------------------------------------------------

BREW_OLLAMA_LABEL = "homebrew.mxcl.ollama"


def find_competitors(
    state: dict[str, Any], label: str = "com.ollama", port: int | None = None
) -> list[dict[str, Any]]:
    """Other Ollama servers on this Mac, from a :class:`MacServerState`:

    * ``brew-service``: ``brew services``' ``homebrew.mxcl.ollama`` job, loaded in a domain
      (a second server on 127.0.0.1:11434 with Homebrew's own environment);
    * ``brew-plist``: its plist, not loaded now but loaded at the next login or boot;
    * ``app``: Ollama.app (a login item that starts a server at every GUI login), with the
      PIDs of its running processes;
    * ``process``: another ``ollama serve`` (or an app process) not run by our job;
    * ``listener``: another process listening on the Ollama port (when ``port`` is given).

    Example::

        for c in find_competitors(state, port=11434):
            print(c["kind"], c["detail"])
    """
    result: list[dict[str, Any]] = []
    uid, home = state.get("uid"), state.get("home") or ""
    ours = {
        job.get("pid")
        for job in (state.get("launchd", {}).get(label) or {}).values()
        if job.get("loaded") and job.get("pid")
    }
    brew_pids = set()
    for kind, job in (state.get("launchd", {}).get(BREW_OLLAMA_LABEL) or {}).items():
        if job.get("loaded"):
            where = "system" if kind == "system" else f"{kind}/{uid}"
            pid = job.get("pid")
            if pid:
                brew_pids.add(pid)
            result.append(
                {
                    "kind": "brew-service",
                    "domain": kind,
                    "pid": pid,
                    "detail": f"brew services' {BREW_OLLAMA_LABEL} is loaded in {where}"
                    + (f" (pid {pid})" if pid else ""),
                }
            )
    files = state.get("files", {})
    for path in (
        f"{home}/Library/LaunchAgents/{BREW_OLLAMA_LABEL}.plist",
        f"/Library/LaunchDaemons/{BREW_OLLAMA_LABEL}.plist",
    ):
        if files.get(path):
            result.append(
                {
                    "kind": "brew-plist",
                    "path": path,
                    "detail": f"{path} starts brew services' Ollama at login/boot",
                }
            )
    processes = state.get("processes", [])
    app_pids = [p["pid"] for p in processes if p.get("kind") == "app"]
    for app in state.get("apps", []):
        result.append(
            {
                "kind": "app",
                "path": app,
                "pids": app_pids,
                "detail": f"{app} is installed (a login item that starts its own server at "
                "every login)" + (f"; running: pids {app_pids}" if app_pids else ""),
            }
        )
    if not state.get("apps") and app_pids:
        result.append(
            {
                "kind": "app",
                "path": None,
                "pids": app_pids,
                "detail": f"Ollama.app is running (pids {app_pids})",
            }
        )
    for proc in processes:
        if proc.get("kind") == "server" and proc["pid"] not in ours | brew_pids:
            result.append(
                {
                    "kind": "process",
                    "pid": proc["pid"],
                    "user": proc.get("user"),
                    "detail": f"another Ollama server runs: pid {proc['pid']} ({proc['user']}): "
                    f"{proc['command']}",
                }
            )
    if port is not None:
        known = (
            ours
            | brew_pids
            | set(app_pids)
            | {p["pid"] for p in processes if p.get("kind") == "haproxy"}
        )
        for listener in state.get("listeners", []):
            if listener.get("pid") not in known:
                result.append(
                    {
                        "kind": "listener",
                        "pid": listener.get("pid"),
                        "detail": f"{listener.get('command')} (pid {listener.get('pid')}) listens "
                        f"on {listener.get('address')}:{listener.get('port')}",
                    }
                )
    return result


class OllamaCompetitors(FactBase):
    """Competing Ollama servers (see :func:`find_competitors`) in one exec: brew services'
    ``homebrew.mxcl.ollama``, Ollama.app, stray ``ollama serve`` processes, other listeners.

    Example::

        pyinfra inventories/home.py fact facts.macserver.OllamaCompetitors --limit server
    """

    @staticmethod
    def default() -> list:
        return []

    def command(self, port: int = 11434) -> str:
        return server_state_script(
            "127.0.0.1:0",
            port,
            labels=("com.ollama", BREW_OLLAMA_LABEL),
            files=(
                f"~/Library/LaunchAgents/{BREW_OLLAMA_LABEL}.plist",
                f"/Library/LaunchDaemons/{BREW_OLLAMA_LABEL}.plist",
            ),
            formulas=(),
            api_endpoints=(),
        )

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        state = parse_server_state(output)
        port = next((lsn.get("port") for lsn in state.get("listeners", [])), None)
        return find_competitors(state, port=port)

"""Converge a launchd job from its plist, idempotently, over SSH.

pyinfra's own ``launchd.service`` uses legacy ``launchctl start/stop`` in whatever domain the
SSH session lands in; this module manages a job in an explicit domain:

* **LaunchAgent** (``mode="agent"``): ``~/Library/LaunchAgents/<label>.plist`` of the SSH
  user, loaded into ``gui/<uid>`` when that user is logged in at the screen (and owns
  ``/dev/console``), otherwise into ``user/<uid>`` (the domain an SSH session has; the plist's
  ``LimitLoadToSessionType`` must include ``Background``). A job already loaded in either
  domain stays where it is. Caveat: a LaunchAgent only starts after a reboot once someone logs
  in; use the daemon mode for a Mac that must serve without a login.
* **LaunchDaemon** (``mode="daemon"``): ``/Library/LaunchDaemons/<label>.plist`` (root:wheel,
  644), ``system`` domain, every command with sudo; ``UserName`` in the plist.

The recipe (``launchctl bootstrap`` is not idempotent: exit 5 when loaded, 119 when
disabled): ``print`` (read by the state fact) -> write the plist if it changed -> ``bootout``
if it was loaded with the old plist (and wait until it is gone: bootout returns early) ->
``enable`` -> ``bootstrap`` -> ``print`` until the job has been ``running`` with the same PID
for two polls (a bootstrap from SSH may exit 0 and do nothing; a job may die right after
starting). ``kickstart -k`` restarts it when asked (a new binary). Nothing runs when the plist
is unchanged and the job is running.

Example::

    launchd.service(name="Ollama (launchd)", label="com.ollama", plist=text, mode="agent",
                    state=state, restart=ollama_upgraded, log_path="/tmp/ollama.stderr.log")
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation

from operations.macos import plist_validate, sha256_text, write_file_command

MODES = ("agent", "daemon")


def plist_path(label: str, mode: str, home: str | None) -> str:
    """Where the job's plist lives."""
    if mode == "daemon":
        return f"/Library/LaunchDaemons/{label}.plist"
    if not home:
        raise OperationError("launchd: the SSH user's home is unknown")
    return f"{home.rstrip('/')}/Library/LaunchAgents/{label}.plist"


def loaded_domains(jobs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Domain kinds (``gui``, ``user``, ``system``) in which the job is loaded."""
    return [kind for kind in ("gui", "user", "system") if (jobs.get(kind) or {}).get("loaded")]


def agent_domains(state: Mapping[str, Any], loaded: list[str]) -> list[str]:
    """Domain kinds to load an agent into, in order of preference (Homebrew's rule: ``gui``
    when the SSH user owns the console, else ``user``; a loaded job stays where it is)."""
    for kind in ("gui", "user"):
        if kind in loaded:
            return [kind]
    domains = state.get("domains") or {}
    if domains.get("gui") and domains.get("console_user") == state.get("user"):
        return ["gui", "user"]
    return ["user"]


def target(kind: str, uid: int | None) -> str:
    if kind == "system":
        return "system"
    if uid is None:
        raise OperationError("launchd: the SSH user's uid is unknown")
    return f"{kind}/{uid}"


def wait_gone_command(service_target: str, seconds: int = 10) -> str:
    """bootout, then wait until ``print`` no longer finds the job (bootout returns before the
    job is gone; an immediate bootstrap would fail with 5: Input/output error)."""
    t = shlex.quote(service_target)
    polls = seconds * 2
    return (
        f"launchctl bootout {t} 2>/dev/null; i=0; while launchctl print {t} >/dev/null 2>&1; "
        f"do i=$((i+1)); if [ $i -gt {polls} ]; then echo 'launchd: {service_target} is still "
        f"loaded after bootout' >&2; exit 1; fi; sleep 0.5; done"
    )


def load_command(label: str, path: str, domains: list[str]) -> str:
    """enable + bootstrap into the first domain that accepts the job (verified with print)."""
    q = shlex.quote(path)
    parts = []
    for i, domain in enumerate(domains):
        t = shlex.quote(f"{domain}/{label}")
        step = (
            f"launchctl enable {t}; launchctl bootstrap {shlex.quote(domain)} {q} 2>&1; "
            f"launchctl print {t} >/dev/null 2>&1"
        )
        parts.append(step if i == 0 else f"{{ {step}; }}")
    return " || ".join(parts) + (
        f" || {{ echo 'launchd: could not load {label} into {' or '.join(domains)}' >&2; exit 1; }}"
    )


def confirm_command(label: str, domains: list[str], log_path: str | None, wait: int = 30) -> str:
    """Wait until the job is ``running`` with the same PID in two polls 2 s apart; on timeout
    print launchd's view (state, last exit code/signal, runs) and the end of its log."""
    first, rest = domains[0], domains[1:]
    pick = f"t={shlex.quote(f'{first}/{label}')}"
    for domain in rest:
        pick += f'; launchctl print "$t" >/dev/null 2>&1 || t={shlex.quote(f"{domain}/{label}")}'
    log = f"; tail -n 20 {shlex.quote(log_path)} >&2" if log_path else ""
    polls = max(1, wait // 2)
    return (
        f'{pick}; n=0; last=; while :; do s=$(launchctl print "$t" 2>/dev/null | '
        'awk \'/^\\t(state|pid) = /{printf "%s ", $3}\'); case "$s" in "running "*) '
        '[ "$s" = "$last" ] && break; last=$s;; *) last=;; esac; n=$((n+1)); '
        f'if [ $n -gt {polls} ]; then echo "launchd: $t is not running:" >&2; '
        'launchctl print "$t" 2>&1 | awk \'/^\\t(state|last exit code|last terminating '
        f"signal|runs) = /' >&2{log}; exit 1; fi; sleep 2; done; "
        'echo "launchd: $t running: $s"'
    )


def service_commands(
    label: str,
    plist: str,
    mode: str,
    state: Mapping[str, Any],
    restart: bool = False,
    log_path: str | None = None,
    wait: int = 30,
    pending: str | None = None,
) -> tuple[list[StringCommand], str]:
    """The commands :func:`service` yields, and the no-op description when there are none
    (also used by the deploy to know, before anything runs, whether the job will restart).
    ``pending``: the job's restart marker (``operations.macos.restart_marker``), made with a
    new plist and removed once the job runs from it (pass ``restart=True`` when it exists)."""
    if mode not in MODES:
        raise OperationError(f"launchd: mode must be one of {MODES}, not {mode!r}")
    uid, home = state.get("uid"), state.get("home")
    jobs = (state.get("launchd") or {}).get(label, {})
    loaded = loaded_domains(jobs)
    path = plist_path(label, mode, home)
    files = state.get("files") or {}
    changed = files.get(path) != sha256_text(plist if plist.endswith("\n") else plist + "\n")
    sudo: dict[str, Any] = {"_sudo": True} if mode == "daemon" else {}
    commands: list[StringCommand] = []

    # the same label in the other mode's domains: a leftover of a mode switch
    wanted = ["system"] if mode == "daemon" else ["gui", "user"]
    for kind in loaded:
        if kind not in wanted:
            stray: dict[str, Any] = {"_sudo": True} if kind == "system" else {}
            commands.append(
                StringCommand(wait_gone_command(f"{target(kind, uid)}/{label}"), **stray)
            )
    other = plist_path(label, "agent" if mode == "daemon" else "daemon", home)
    if files.get(other):
        other_sudo: dict[str, Any] = {"_sudo": True} if other.startswith("/Library/") else {}
        commands.append(StringCommand("rm", "-f", shlex.quote(other), **other_sudo))

    domains = ["system"] if mode == "daemon" else agent_domains(state, loaded)
    here = [kind for kind in loaded if kind in wanted]
    running = any((jobs.get(kind) or {}).get("state") == "running" for kind in here)
    # loaded from another plist with the same label (e.g. /Library/LaunchAgents): replace it
    if any((jobs.get(kind) or {}).get("path") not in (None, path) for kind in here):
        changed = True
    if not changed and here and running and not restart:
        where = target(here[0], uid)
        pid = (jobs.get(here[0]) or {}).get("pid")
        return commands, f"{where}/{label} is running (pid {pid}) from an unchanged {path}"

    if changed:
        owner = "root:wheel" if mode == "daemon" else None
        commands.append(
            write_file_command(path, plist, "644", owner, plist_validate(), sudo=bool(sudo),
                               pending=pending)
        )
    targets = [target(kind, uid) for kind in domains]
    if here and changed:
        for kind in here:
            commands.append(
                StringCommand(wait_gone_command(f"{target(kind, uid)}/{label}"), **sudo)
            )
        commands.append(StringCommand(load_command(label, path, targets), **sudo))
    elif not here:
        commands.append(StringCommand(load_command(label, path, targets), **sudo))
    else:  # loaded from the unchanged plist: restart it, or start it if it is not running
        kick = "-k " if running else ""
        t = shlex.quote(f"{target(here[0], uid)}/{label}")
        commands.append(StringCommand(f"launchctl kickstart {kick}{t}", **sudo))
        targets = [target(here[0], uid)]
    confirm = confirm_command(label, targets, log_path, wait)
    if pending:  # the job runs from its new files: nothing is pending any more
        confirm += f" && rm -f {shlex.quote(pending)}"
    commands.append(StringCommand(confirm, **sudo))
    return commands, ""


@operation()
def service(
    label: str,
    plist: str,
    mode: str = "agent",
    state: dict[str, Any] | None = None,
    restart: bool = False,
    log_path: str | None = None,
    wait: int = 30,
    pending: str | None = None,
):
    """Make a launchd job run from exactly this plist (see the module docstring).

    + label: the job's ``Label`` (``com.ollama``)
    + plist: the rendered plist text
    + mode: ``agent`` (LaunchAgent of the SSH user) or ``daemon`` (LaunchDaemon, sudo)
    + state: the ``MacServerState`` (uid, user, home, domains, ``launchd[label]``, ``files``
      with both plist paths)
    + restart: restart the job even if its plist did not change (e.g. a new binary)
    + log_path: shown (last 20 lines) when the job does not come up
    + wait: seconds to wait for it to run
    + pending: the job's restart marker (see :func:`service_commands`)

    The job is also booted out of the other mode's domains (an agent left over from before
    switching to the daemon mode, or the reverse) and that plist removed.

    **Example:**

    .. code:: python

        launchd.service(name="Ollama", label="com.ollama", plist=text, mode="daemon",
                        state=state, log_path="/tmp/ollama.stderr.log")
    """
    if state is None:
        raise OperationError("launchd.service needs the MacServerState (state=...)")
    commands, noop = service_commands(label, plist, mode, state, restart, log_path, wait,
                                      pending)
    if not commands:
        host.noop(noop)
        return
    yield from commands


@operation()
def absent(label: str, state: dict[str, Any] | None = None):
    """Stop a job in every domain it is loaded in and delete its plists (agent and daemon).

    **Example:**

    .. code:: python

        launchd.absent(name="no HAProxy", label="com.haproxy", state=state)
    """
    if state is None:
        raise OperationError("launchd.absent needs the MacServerState (state=...)")
    uid, home = state.get("uid"), state.get("home")
    jobs = (state.get("launchd") or {}).get(label, {})
    files = state.get("files") or {}
    did = False
    for kind in loaded_domains(jobs):
        sudo: dict[str, Any] = {"_sudo": True} if kind == "system" else {}
        yield StringCommand(wait_gone_command(f"{target(kind, uid)}/{label}"), **sudo)
        did = True
    for mode in MODES:
        path = plist_path(label, mode, home)
        if files.get(path):
            sudo = {"_sudo": True} if mode == "daemon" else {}
            yield StringCommand("rm", "-f", shlex.quote(path), **sudo)
            did = True
    if not did:
        host.noop(f"{label} is not loaded and has no plist")

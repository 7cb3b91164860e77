"""The router-side peer expiry job: peers past their ``expires`` date leave the live WireGuard
interface even when no run happens (``deploys/expiry.py`` has the date rule).

On the router (all paths in :mod:`facts.openwrt`, which reads them in the state read):

* ``/etc/self-sovereign-ollama/expire-peers`` (700): :data:`JOB_SCRIPT`, BusyBox ash. For each
  peer of the data file whose cutoff (epoch seconds) has come and that is on the interface:
  ``wg set <if> peer <key> remove`` -- the live interface only, **never uci** (a uci change
  made by cron would look like someone else's pending change and stop the next run) -- and a
  line ``<name> <key> <when>`` in ``/tmp/self-sovereign-ollama-expired`` (RAM);
* ``/etc/self-sovereign-ollama/expiry`` (600): ``interface <if>`` and ``peer <name> <key>
  <cutoff>`` lines (public keys only);
* root's crontab ``/etc/crontabs/root``, shared with the user's entries: we own only the line
  ending in ``# self-sovereign-ollama: peer expiry`` (every minute);
* ``/etc/hotplug.d/iface/95-self-sovereign-ollama-expiry``: runs the job when an interface
  comes up (boot, ``ifup``): netifd sets the peers from uci again, the job takes the expired
  ones off at once instead of at the next minute.

The next run removes an expired peer from uci (the peer list then matches the live interface
again). A peer the job took off whose ``expires`` moved (still in uci, off the interface) is
brought back by :func:`converge` with ``ifup <if>`` -- netifd sets every uci peer again -- and
the log is cleared. The safe apply's "committed but never live" detection is unaffected: it
relies on its own markers, not on comparing the interface with uci.

:func:`commands` is pure (found state -> exact shell lines; none when nothing differs), so a
re-run that finds the job as planned issues no write. No peers with ``expires``: nothing is
installed, and what an earlier run installed is removed (with an ``ifup`` first when the job
had taken off a peer that is a peer again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyinfra import host, logger
from pyinfra.api import StringCommand, operation

from facts.openwrt import (
    CRON_MARK,
    CRONTAB,
    EXPIRY_DATA,
    EXPIRY_DIR,
    EXPIRY_HOTPLUG,
    EXPIRY_LOG,
    EXPIRY_SCRIPT,
)

#: The job (BusyBox ash). ``$1``: the time to act on (epoch seconds; for tests), default now.
JOB_SCRIPT = f"""#!/bin/sh
# Managed by pyinfra (self-sovereign-ollama, operations/expiry_job.py): every run rewrites it.
# Peer expiry between runs: each peer of {EXPIRY_DATA} whose cutoff (epoch seconds) has come
# is taken off the live WireGuard interface (wg set <if> peer <key> remove). It never writes
# uci: the next run removes the peer from the config, or brings it back if its date moved.
# Run by cron every minute and by hotplug when an interface comes up.
data={EXPIRY_DATA}
log={EXPIRY_LOG}
now=${{1:-$(date +%s)}}
case "$now" in ''|*[!0-9]*) echo "expire-peers: not a time: '$now'" >&2; exit 2 ;; esac
[ -r "$data" ] || exit 0
iface=
rc=0
while read -r kind name key when; do
\tcase "$kind" in
\tinterface) iface=$name ;;
\tpeer)
\t\tcase "$when" in ''|*[!0-9]*) continue ;; esac
\t\t[ "$now" -ge "$when" ] || continue
\t\twg show "$iface" peers 2>/dev/null | grep -qxF "$key" || continue
\t\tif wg set "$iface" peer "$key" remove; then
\t\t\techo "$name $key $now" >> "$log"
\t\t\tlogger -t self-sovereign-ollama "peer $name expired: taken off $iface" 2>/dev/null
\t\telse
\t\t\trc=1
\t\tfi ;;
\tesac
done < "$data"
exit $rc
"""

#: Sourced by hotplug-call for every interface event: the job when one comes up.
HOTPLUG_SCRIPT = f"""# Managed by pyinfra (self-sovereign-ollama, operations/expiry_job.py).
# netifd sets every uci peer when the VPN interface comes up: take the expired ones off again.
[ "$ACTION" = ifup ] && [ -x {EXPIRY_SCRIPT} ] && {EXPIRY_SCRIPT} >/dev/null 2>&1
"""

#: Our line in root's crontab.
CRON_LINE = f"* * * * * {EXPIRY_SCRIPT} {CRON_MARK}"
CRON_INIT = "/etc/init.d/cron"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def data_lines(interface: str, entries: Iterable[tuple[str, str, int]]) -> list[str]:
    """The data file's lines for ``entries`` (``deploys.expiry.job_entries``)."""
    return [f"interface {interface}"] + [f"peer {n} {k} {c}" for n, k, c in entries]


def _write(path: str, text: str, mode: str) -> str:
    tag = "SSOL_EXPIRY_EOF"
    return (f"(umask 077; cat > {path}.new <<'{tag}'\n{text.rstrip(chr(10))}\n{tag}\n) && "
            f"chmod {mode} {path}.new && mv -f {path}.new {path}")


def _crontab(keep_ours: bool) -> list[str]:
    """Rewrite root's crontab keeping every line but ours (+ ours), then restart cron (enabled
    first when installing: BusyBox crond reads a changed crontab only when restarted)."""
    ours = f"echo '{CRON_LINE}'; " if keep_ours else ""
    return [
        "mkdir -p /etc/crontabs",
        f"(umask 077; {{ grep -vF '{CRON_MARK}' {CRONTAB} 2>/dev/null || true; {ours}}} > "
        f"{CRONTAB}.new) && mv -f {CRONTAB}.new {CRONTAB}",
        *([f"{{ {CRON_INIT} enabled || {CRON_INIT} enable; }} >/dev/null 2>&1",
           f"{CRON_INIT} restart >/dev/null 2>&1"] if keep_ours
          # with no crontab left, OpenWrt's cron refuses to start: that is not a failure
          else [f"{CRON_INIT} restart >/dev/null 2>&1 || true"]),
    ]


def commands(entries: Sequence[tuple[str, str, int]], interface: str,
             live_names: Iterable[str], found: Mapping[str, Any]) -> list[str]:
    """The shell lines that converge the job (empty: nothing differs).

    ``entries``: ``(name, public key, cutoff)`` of the peers the job watches (none: the job is
    removed); ``live_names``: the peers this run leaves on the router (a peer the job took off
    that is one of them is brought back with ``ifup``); ``found``: ``state["expiry"]``.
    """
    files = found.get("files") or {}
    removed = [r["name"] for r in found.get("removed") or []]
    live = set(live_names)
    restore = any(name in live for name in removed)
    out: list[str] = []
    if entries:
        wanted = {EXPIRY_SCRIPT: (JOB_SCRIPT, "700"), EXPIRY_HOTPLUG: (HOTPLUG_SCRIPT, "644")}
        lines = data_lines(interface, entries)
        writes = [_write(path, text, mode) for path, (text, mode) in wanted.items()
                  if files.get(path) != _sha(text)]
        if list(found.get("data") or []) != lines:
            writes.append(_write(EXPIRY_DATA, "\n".join(lines), "600"))
        if writes:
            out += [f"mkdir -p {EXPIRY_DIR} /etc/hotplug.d/iface && chmod 700 {EXPIRY_DIR}",
                    *writes]
        if list(found.get("cron") or []) != [CRON_LINE]:
            out += _crontab(keep_ours=True)
        if restore:
            out += [f"ifup {interface}", f"rm -f {EXPIRY_LOG}"]
        return out
    # no peer expires: nothing of ours may stay
    old = next((d.split()[1] for d in found.get("data") or []
                if d.startswith("interface ") and len(d.split()) == 2), interface)
    if restore:
        out.append(f"ifup {old}")
    if files or found.get("data"):
        out.append(f"rm -rf {EXPIRY_DIR} && rm -f {EXPIRY_HOTPLUG}")
    if removed:
        out.append(f"rm -f {EXPIRY_LOG}")
    if found.get("cron"):
        out += _crontab(keep_ours=False)
    return out


@operation()
def converge(entries: Sequence[tuple[str, str, int]], interface: str,
             live_names: Iterable[str], state: Mapping[str, Any]):
    """Converge the router-side expiry job (see the module docstring) in one exec, or nothing.

    + entries: ``deploys.expiry.job_entries(plan.peers)`` (empty: remove the job)
    + interface: the VPN interface (``wg0``)
    + live_names: names of the peers this run leaves on the router
    + state: the ``facts.openwrt.OpenWrtState`` the deploy read
    """
    found = state.get("expiry") or {}
    lines = commands(entries, interface, live_names, found)
    back = sorted({r["name"] for r in found.get("removed") or []} & set(live_names))
    if back:
        logger.warning(f"    [{host.name}] the router's expiry job took {', '.join(back)} off "
                       f"{interface}; by the inventory they are peers: ifup {interface} brings "
                       "them back")
    if not lines:
        host.noop("peer expiry job as planned" if entries else "no peer expires: no job")
        return
    yield StringCommand("set -e; " + "\n".join(lines))

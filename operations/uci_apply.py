"""The router side of :func:`operations.uci.converge` (apply, guard, confirm scripts) and
what a run decides about what earlier applies left (:func:`settle`).

Everything lives in one private directory in RAM, :data:`APPLY_DIR` (mode 700), one set of
names per apply **token** (16 hex digits, new for every apply)::

    apply-<t>.sh         the uploaded apply script (deletes itself)
    save-<t>/            the apply's own uci save dir (``uci -t``): staged changes never enter
                         the shared /tmp/.uci, and removing this dir reverts them
    guard-<t>/backup/    network, firewall, dhcp as they were before apply <t>
    guard-<t>/armed      "when=<epoch> seconds=<n> packages=..." while the guard is armed
    guard-<t>/intent     sha256 of the config apply <t> committed
    guard-<t>/job.sh     the detached job: after <n> s, restores guard-<t>/backup if armed
    notlive-<t>          reloads apply <t> still owes (written before the commit)
    rolled-back-<t>      "when=... token=<t> reason=... restored=..." (read by the next run)
    lock/                a mkdir lock (with the holder's pid) taken by apply, job and confirm

Rules that make a guard safe: the job and the confirmation each take the lock and act only on
*their* token's ``armed`` file; an apply takes the lock first and settles (confirms, cancels or
adopts) every guard the state read showed, and refuses if any other guard remains; so a job
can only restore the backup of its own apply and never fires over a later one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from facts.openwrt import _REDACT_CHANGES_SED, APPLY_DIR, PACKAGES

RELOAD_COMMANDS = {
    "network": "/etc/init.d/network reload",
    "dhcp": "/etc/init.d/dnsmasq reload",
    "firewall": "/etc/init.d/firewall reload",
}
#: How often a failing reload is tried before the apply is rolled back.
RELOAD_ATTEMPTS = 2

# mkdir lock shared by the apply script, the guard job and the confirmation. A holder that
# died (its pid is gone) or a lock without a pid after 5 s is taken over.
_LOCK = f"""d={APPLY_DIR}
lock() {{
    n=0
    while ! mkdir "$d/lock" 2>/dev/null; do
        o=$(cat "$d/lock/pid" 2>/dev/null)
        if [ -n "$o" ] && ! kill -0 "$o" 2>/dev/null; then rm -rf "$d/lock"; continue; fi
        n=$((n + 1))
        if [ -z "$o" ] && [ "$n" -gt 50 ]; then rm -rf "$d/lock"; continue; fi
        sleep 0.1
    done
    echo $$ > "$d/lock/pid"
}}
unlock() {{ rm -rf "$d/lock"; }}
"""


def _reload_all() -> str:
    cmds = (RELOAD_COMMANDS[p] for p in ("network", "dhcp", "firewall"))
    return "; ".join(f"{cmd} >/dev/null 2>&1" for cmd in cmds)


def _restore(pkgs: str) -> str:
    """Shell function ``restore <reason>``: every package back from ``$g/backup``, reload all,
    leave the rolled-back marker, disarm. Only ever touches this apply's own guard dir."""
    return f"""restore() {{
    r=""
    for p in {pkgs}; do
        [ -f "$g/backup/$p" ] || continue
        # copy next to the file, then rename over it: a restore is never half-written
        cp -p "$g/backup/$p" "/etc/config/.$p.pyinfra-restore" &&
            mv -f "/etc/config/.$p.pyinfra-restore" /etc/config/$p && r="$r$p,"
    done
    {_reload_all()}
    echo "when=$(date +%s) token=$t reason=$1 restored=${{r%,}}" > "$d/rolled-back-$t"
    rm -rf "$g" "$d/notlive-$t"
    logger -t pyinfra "uci converge: apply $t rolled back ($1)" 2>/dev/null
}}
"""


def job_script(token: str, seconds: int, packages: Iterable[str] = PACKAGES) -> str:
    """The detached guard job: after ``seconds``, restore apply ``token``'s backup if (and only
    if) that apply is still armed."""
    pkgs = " ".join(packages)
    return f"""# pyinfra rollback guard of apply {token}
{_LOCK}t={token}
g="$d/guard-$t"
sleep {seconds}
lock
if [ -f "$g/armed" ]; then
    {_restore(pkgs)}
    restore timer
fi
unlock
"""


def confirm_command(token: str) -> str:
    """Disarm apply ``token``'s guard. Exits 1 (with a message) if it already fired."""
    return (
        _LOCK
        + f"""t={token}
lock
if [ -f "$d/guard-$t/armed" ]; then
    rm -rf "$d/guard-$t"; unlock; echo "uci converge: guard $t confirmed"
elif [ -f "$d/rolled-back-$t" ]; then
    unlock
    echo "uci converge: too late, the guard of apply $t restored the previous configuration" >&2
    exit 1
else
    unlock; echo "uci converge: no guard $t on the router" >&2; exit 1
fi"""
    )


def _settle_lines(settle: Sequence[tuple[str, str]]) -> list[str]:
    lines = []
    for token, action in settle:
        x = f'"$d/guard-{token}"'
        fired = (
            f'elif [ -f "$d/rolled-back-{token}" ]; then\n'
            f'    fail "the guard of the earlier apply {token} fired just before this apply; '
            'nothing was applied, run again" 9\nfi'
        )
        if action == "adopt":
            lines.append(
                f'if [ -d {x}/backup ]; then\n    mkdir -p "$g" && mv {x}/backup "$g/backup" && '
                f"rm -rf {x} && adopted=1 || fail \"cannot take over the backup of {token}\" 8\n"
                f'    say "apply {token} was committed but never went live: finishing it under '
                f'a new guard ($t), with its backup"\n{fired}'
            )
        else:
            verb = "confirmed" if action == "confirm" else "cancelled"
            lines.append(
                f'if [ -d {x} ]; then\n    rm -rf {x}; say "guard {token} {verb}"\n{fired}'
            )
    return lines


def apply_script(
    batch: Sequence[str],
    expected: Sequence[str],
    commit: Sequence[str],
    reloads: Sequence[str],
    checksum: str,
    token: str,
    rollback_seconds: int = 0,
    settle: Sequence[tuple[str, str]] = (),
    consume: Iterable[str] = (),
    leftovers: Iterable[str] = (),
    finished: Iterable[str] = (),
    packages: Sequence[str] = PACKAGES,
    env: Mapping[str, str] | None = None,
) -> str:
    """The script apply ``token`` runs on the router (BusyBox ash). In order, holding the lock:

    1. settle the earlier guards the state read showed (``settle``: ``(token, "confirm" |
       "cancel" | "adopt")``; adopt = take over the backup of an apply that committed but never
       went live); refuse if another guard is armed (a concurrent apply);
    2. consume the rollback markers already reported (``consume``), remove our leftovers;
    3. refuse if someone else's changes are pending or the config changed since the read;
    4. stage ``batch`` in our own save dir and check ``uci changes`` is exactly ``expected``;
    5. back up, arm the guard (``rollback_seconds`` > 0), mark not-live, commit ``commit``
       (any failure: restore every package, reload, exit 6);
    6. run ``reloads`` (each tried :data:`RELOAD_ATTEMPTS` times; still failing: restore, exit 7),
       drop the not-live markers (ours and ``finished``).

    It ignores HUP/INT/TERM/PIPE: once started it finishes even if the controller goes away.
    """
    pkgs = " ".join(packages)
    redact = _REDACT_CHANGES_SED.replace("'", "'\\''")
    guard = rollback_seconds > 0
    has_batch = bool(batch)
    backup = has_batch or any(a == "adopt" for _, a in settle)
    out = [
        f"#!/bin/sh\n# Generated by operations.uci.converge: apply {token}. Deletes itself.",
        _LOCK + f't={token}\ng="$d/guard-$t"\ns="$d/save-$t"\nadopted=0\numask 077',
        "trap '' HUP INT TERM PIPE",
        *[f"export {k}={v}" for k, v in (env or {}).items()],
        'say() { echo "uci converge: $*" 2>/dev/null; }',
        f"redact() {{ sed -E '{redact}'; }}",
        'cleanup() { rm -f "$0" "$d/batch-$t.err" "$d/expected-$t" "$d/actual-$t"; rm -rf "$s"; }',
        'fail() { echo "uci converge: $1" >&2; cleanup; unlock; exit "${2:-1}"; }',
        _restore(pkgs),
        "lock",
        *_settle_lines(settle),
        'for x in "$d"/guard-*; do [ "$x" = "$g" ] || [ ! -d "$x" ] ||'
        ' fail "another apply (${x##*/guard-}) is waiting for confirmation; run again" 8; done',
    ]
    for tok in consume:
        out.append(f'rm -f "$d/rolled-back-{tok}"')
    for name in leftovers:
        out.append(f'rm -rf "$d/{name}" && say "removed our leftover {name} of an interrupted run"')
    out.append(
        """pending=$(uci changes 2>&1)
if [ -n "$pending" ]; then
    echo "uci converge: someone else's uncommitted uci changes are pending; refusing to apply:" >&2
    echo "$pending" | redact >&2
    fail "commit or revert them (uci changes / uci revert <package>) and run again" 3
fi"""
    )
    out.append(
        f"sum=$(for p in {pkgs}; do uci -n export $p 2>/dev/null; done |"
        " sha256sum | cut -d' ' -f1)\n"
        f'[ "$sum" = "{checksum}" ] ||\n'
        '    fail "the router\'s config changed after it was read; nothing was applied, '
        'run again" 4'
    )
    if has_batch:
        out.append(
            'rm -rf "$s" && mkdir "$s" || fail "cannot create our uci save dir" 8\n'
            'uci -t "$s" batch >/dev/null 2>"$d/batch-$t.err" <<\'PYINFRA_UCI_BATCH\'\n'
            + "\n".join(batch)
            + "\nPYINFRA_UCI_BATCH\n"
            'uci -t "$s" changes 2>&1 | sort > "$d/actual-$t"\n'
            'sort > "$d/expected-$t" <<\'PYINFRA_UCI_EXPECTED\'\n'
            + "\n".join(expected)
            + """\nPYINFRA_UCI_EXPECTED
if [ "$(cat "$d/expected-$t")" != "$(cat "$d/actual-$t")" ]; then
    echo "uci converge: uci changes differ from the intended ones; everything was reverted." >&2
    echo "uci batch said:" >&2
    redact < "$d/batch-$t.err" >&2
    echo "intended but missing:" >&2
    grep -vxF -f "$d/actual-$t" "$d/expected-$t" | redact >&2
    echo "unexpected:" >&2
    grep -vxF -f "$d/expected-$t" "$d/actual-$t" | redact >&2
    fail "nothing was committed" 5
fi"""
        )
    if backup:
        out.append(
            'if [ "$adopted" = 0 ]; then\n'
            '    rm -rf "$g" && mkdir -p "$g/backup" || fail "cannot back up the configuration" 8\n'
            f"    for p in {pkgs}; do\n"
            '        [ -f /etc/config/$p ] && cp -p /etc/config/$p "$g/backup/$p"\n    done\n'
            "fi"
        )
    if guard:
        job = job_script(token, rollback_seconds, packages)
        out.append(
            f"cat > \"$g/job.sh\" <<'PYINFRA_ROLLBACK'\n{job}PYINFRA_ROLLBACK\n"
            f'echo "when=$(date +%s) seconds={rollback_seconds} packages={",".join(packages)}"'
            ' > "$g/armed"\n'
            # its own pidfile: with -x alone, BusyBox refuses to start it while ANY process's
            # argv[0] is /bin/sh (an earlier guard still sleeping, an init script) and the
            # apply would go on without a guard
            "if command -v start-stop-daemon >/dev/null 2>&1; then\n"
            '    start-stop-daemon -S -b -m -p "$g/job.pid" -x /bin/sh -- "$g/job.sh"\n'
            "else\n"
            '    setsid /bin/sh "$g/job.sh" </dev/null >/dev/null 2>&1 &\n'
            '    echo $! > "$g/job.pid"\n'
            "fi\n"
            # fail closed: no apply without a running guard (the daemon writes its pidfile
            # after start-stop-daemon has returned: give it up to 3 s)
            "i=0\n"
            # (an empty pid would be 0: the whole process group, always alive)
            'while jp=$(cat "$g/job.pid" 2>/dev/null); [ -z "$jp" ] || ! kill -0 "$jp" 2>/dev/null'
            "; do\n"
            "    i=$((i + 1))\n"
            '    [ $i -le 3 ] || { [ "$adopted" = 1 ] || rm -rf "$g"; fail "the rollback guard '
            'could not be started; nothing was applied" 9; }\n'
            "    sleep 1\n"
            "done\n"
            f'say "rollback guard $t armed: the previous configuration comes back in '
            f'{rollback_seconds} s unless confirmed over a new connection"'
        )
    if reloads:
        out.append(f"printf '%s\\n' {' '.join(_sq(r) for r in reloads)} > \"$d/notlive-$t\"")
    for p in commit:
        out.append(
            f'uci -t "$s" commit {p} 2>/dev/null || {{ restore commit_failed_{p}; fail "uci commit '
            f'{p} failed; every package was restored from the backup taken before this apply and '
            'reloaded; nothing of this apply is left" 6; }'
        )
    if commit:
        out.append(
            f'[ -d "$g" ] && for p in {pkgs}; do uci -n export $p 2>/dev/null; done | sha256sum |'
            ' cut -d\' \' -f1 > "$g/intent"'
        )
    for cmd in reloads:
        failed = (
            f"{{ restore reload_failed; fail \"'{cmd}' failed {RELOAD_ATTEMPTS} times; "
            "the previous "
            'configuration was restored and reloaded" 7; }'
            if backup
            else f"fail \"'{cmd}' failed {RELOAD_ATTEMPTS} times; the committed configuration is "
            'still not live (the next run tries again)" 7'
        )
        attempt = f"{cmd} >/dev/null 2>&1"
        chain = attempt
        for _ in range(RELOAD_ATTEMPTS - 1):
            chain = f"{chain} || {{ sleep 1; {attempt}; }}"
        out.append(f"{chain} || {failed}")
    out.append('rm -f "$d/notlive-$t"' + "".join(f' "$d/notlive-{x}"' for x in finished))
    if not guard:
        out.append('rm -rf "$g"')
    out.append("cleanup\nunlock")
    if has_batch:
        out.append(f'say "committed {len(batch)} change(s) to {" ".join(commit)}"')
    return "\n".join(out) + "\n"


def _sq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass
class Settlement:
    """What a run does about what earlier applies left (see :func:`settle`)."""

    actions: list[tuple[str, str]] = field(default_factory=list)  # (token, confirm|cancel|adopt)
    consume: list[str] = field(default_factory=list)  # rolled-back markers reported now
    leftovers: list[str] = field(default_factory=list)  # our own files to remove
    finished: list[str] = field(default_factory=list)  # not-live markers this run finishes
    messages: list[tuple[str, str]] = field(default_factory=list)  # (level, text)

    def __bool__(self) -> bool:
        return bool(self.actions or self.consume or self.leftovers or self.finished)


def _when(epoch: int) -> str:
    if not epoch:
        return "at an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def settle(safety: Mapping[str, Any], checksum: str) -> Settlement:
    """Decide about every guard, rollback, not-live change and leftover the state read showed.

    * a guard whose apply committed but never went live (a not-live marker): **adopt** it: this
      run finishes its reloads under a new guard that restores *its* backup;
    * an armed guard whose committed config (``intent``) is the live config: **confirm** it
      (this run reached the router over a new connection, which is what the guard waits for);
    * any other guard (the live config is not what it committed, or it never got to commit):
      **cancel** it (disarm, keep the live config; this run converges from there);
    * a rollback marker: reported prominently and consumed once;
    * our staged changes or apply scripts from an interrupted run: removed, with a message.
    """
    out = Settlement()
    not_live = {n["token"]: n for n in safety.get("not_live", [])}
    for g in safety.get("guards", []):
        tok = g["token"]
        would = ", ".join(g.get("packages") or []) or "nothing"
        age = f"armed {g.get('age', 0)} s ago" if g.get("armed") else "not armed"
        if tok in not_live:
            out.actions.append((tok, "adopt"))
            out.messages.append(("warning", f"apply {tok} committed but never went live ({age}):"
                                 " finishing its reloads under a new guard"))
        elif g.get("armed") and g.get("intent") and g["intent"] == checksum:
            out.actions.append((tok, "confirm"))
            out.messages.append(("warning", f"rollback guard {tok} is still armed ({age}, would "
                                 f"restore {would}); the live config is what it committed and "
                                 "this run reached the router over a new connection: confirming"))
        else:
            out.actions.append((tok, "cancel"))
            if g.get("armed"):
                out.messages.append(("warning", f"rollback guard {tok} is still armed ({age}, "
                                     f"would restore {would}) but the live config is not what it"
                                     " committed: cancelling it; this run converges from the "
                                     "live config"))
            else:
                out.messages.append(
                    ("info", f"removing the backup left by interrupted apply {tok}")
                )
    for r in safety.get("rollbacks", []):
        out.consume.append(r["token"])
        restored = ", ".join(r.get("restored") or []) or "nothing"
        out.messages.append(("error", f"ROLLED BACK: apply {r['token']} was undone by the router "
                             f"{_when(r.get('when', 0))} ({r.get('reason', 'timer')}); restored: "
                             f"{restored}. This run converges the router again (under a new guard "
                             "when network or firewall change)."))
    for tok in not_live:
        out.finished.append(tok)
    for name in safety.get("leftovers", []):
        out.leftovers.append(name)
        out.messages.append(("warning", f"removing our own leftover {name} of an interrupted run"))
    return out

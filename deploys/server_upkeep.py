"""The server's upkeep between deploys: warm models at boot, log rotation (controller side, pure).

**Warm at boot** (``warm_at_boot``, default ``True``): a launchd job ``com.ollama.warm`` (same
mode and user as ``com.ollama``) runs :data:`WARM_SCRIPT`, the original system's
``warm-models.sh`` as a service. It polls Ollama's ``/api/ps`` every ``warm_poll_seconds``
(default 10) and loads every warm model (``ollama_models`` entries with ``warm: True``) with the
same body as the deploy's warm-up (``operations.ollama.warm_body``: the model's one context size,
``ollama_warm_keep_alive``) whenever Ollama starts answering (boot, crash, upgrade, restart) or
its loaded models vanish (a restart faster than one poll). Otherwise it does nothing and
logs nothing: one line per event in ``warm_log`` (default ``/tmp/ollama.warm.log``). Loading a
loaded model with the same settings changes nothing in Ollama, so the job is idempotent.

**Log rotation** (``log_rotate``, default ``{"size_kb": 10240, "count": 5}``; ``False``: none):
``/etc/newsyslog.d/org.self-sovereign-ollama.conf`` makes macOS' ``newsyslog`` (started
periodically by launchd's ``com.apple.newsyslog`` job) rotate Ollama's, HAProxy's and the warm
job's logs when, at one of those runs, they are past ``size_kb`` (a schedule, not a hard size
limit: a log grows past it until the next run), keeping ``count`` old files, recreated with
the service user as owner (flag ``N``: there is no process to signal; launchd keeps the job's
log open, so a job writes on into the rotated file until it restarts, and the new file takes
over from then).

Example::

    conf = render_newsyslog(["/tmp/ollama.stderr.log"], "admin", size_kb=10240, count=5)
    # '/tmp/ollama.stderr.log  admin:staff  644  5  10240  *  N\\n' after the header
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from operations.ollama import NumCtx, warm_body
from operations.templates import AGENT_SESSION_TYPES, launchd_plist

LABEL_WARM = "com.ollama.warm"
DEFAULT_WARM_LOG = "/tmp/ollama.warm.log"
DEFAULT_WARM_POLL = 10
NEWSYSLOG_LABEL = "org.self-sovereign-ollama"
NEWSYSLOG_CONF = f"/etc/newsyslog.d/{NEWSYSLOG_LABEL}.conf"
DEFAULT_LOG_ROTATE = {"size_kb": 10240, "count": 5}
LOG_GROUP = "staff"

#: The warm job (POSIX sh + curl, both in macOS). Arguments: ``<ollama host:port>
#: <poll seconds> <model> <warm body> [<model> <warm body>...]``.
WARM_SCRIPT = r"""addr=$1 every=$2; shift 2
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S%z') warm-models: $*"; }
failed='' lastfail=''
warm() {  # warm <retry 0|1> <model> <body>...: a retry logs only the models that had failed
    retry=$1; shift; failed=''
    while [ $# -ge 2 ]; do
        out=$(curl -sS -m 1800 -H 'Content-Type: application/json' -X POST -d "$2" \
            "http://$addr/api/generate" 2>&1)
        case "$out" in
            *'"done":true'*)
                case "$retry:$lastfail" in 0:*|1:*"$1: "*) log "$1 loaded ($2)" ;; esac ;;
            *) failed="$failed$1: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300); " ;;
        esac
        shift 2
    done
    # a failure is retried at every poll, and logged when it is new
    [ -n "$failed" ] && [ "$failed" != "$lastfail" ] && log "FAILED (retried): $failed"
    lastfail=$failed
}
log "watching http://$addr/api/ps every ${every}s (Ollama's restarts load the warm models)"
up=0 had=0
while :; do
    if ps=$(curl -fsS -m 5 "http://$addr/api/ps" 2>/dev/null); then
        case "$ps" in *'"name"'*) has=1 ;; *) has=0 ;; esac
        if [ "$up" = 0 ]; then
            log "Ollama answers: loading the warm models"
            warm 0 "$@"
        elif [ -n "$failed" ]; then
            warm 1 "$@"
        elif [ "$had" = 1 ] && [ "$has" = 0 ]; then
            log "Ollama has no model loaded any more (restarted?): loading the warm models"
            warm 0 "$@"
        fi
        up=1
        case "$(curl -fsS -m 5 "http://$addr/api/ps" 2>/dev/null)" in
            *'"name"'*) had=1 ;; *) had=0 ;; esac
    else
        [ "$up" = 1 ] && log "Ollama does not answer: waiting for it"
        up=0 had=0
    fi
    sleep "$every"
done
"""


def warm_at_boot(data: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """``warm_at_boot`` (default True) and its problems."""
    value = data.get("warm_at_boot")
    if value is None:
        return True, []
    if not isinstance(value, bool):
        return True, [f"warm_at_boot: {value!r} (expected True or False)"]
    return value, []


def warm_poll(data: Mapping[str, Any]) -> tuple[float, list[str]]:
    """``warm_poll_seconds`` (default 10) and its problems."""
    value = data.get("warm_poll_seconds")
    if value is None:
        return DEFAULT_WARM_POLL, []
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.1 <= value <= 3600:
        return DEFAULT_WARM_POLL, [
            f"warm_poll_seconds: {value!r} (expected seconds from 0.1 to 3600)"]
    return value, []


def warm_arguments(
    address: str, models: Sequence[str], keep_alive: str | int, num_ctx: NumCtx, poll: float
) -> list[str]:
    """The warm job's ``ProgramArguments``."""
    args = ["/bin/sh", "-c", WARM_SCRIPT, "warm-models", address, f"{poll:g}"]
    for model in models:
        args += [model, warm_body(model, keep_alive, num_ctx)]
    return args


def warm_plist(
    address: str,
    models: Sequence[str],
    keep_alive: str | int,
    num_ctx: NumCtx,
    mode: str = "agent",
    user_name: str | None = None,
    log_path: str = DEFAULT_WARM_LOG,
    poll: float = DEFAULT_WARM_POLL,
    label: str = LABEL_WARM,
) -> str:
    """The ``com.ollama.warm`` job: :data:`WARM_SCRIPT` kept running (``KeepAlive``)."""
    return launchd_plist(
        label=label,
        program_arguments=warm_arguments(address, models, keep_alive, num_ctx, poll),
        user_name=user_name if mode == "daemon" else None,
        session_types=AGENT_SESSION_TYPES if mode == "agent" else (),
        process_type="Background",
        throttle_interval=10,
        stdout_path=log_path,
        stderr_path=log_path,
    )


def log_rotate(data: Mapping[str, Any]) -> tuple[dict[str, int] | None, list[str]]:
    """``log_rotate``: ``{"size_kb", "count"}`` with defaults, ``None`` when turned off
    (``False``), and the problems."""
    value = data.get("log_rotate")
    if value is None or value is True:
        return dict(DEFAULT_LOG_ROTATE), []
    if value is False:
        return None, []
    if not isinstance(value, Mapping):
        return None, [f"log_rotate: {value!r} (expected {{'size_kb': N, 'count': N}} or False)"]
    problems = [f"log_rotate.{key}: {value[key]!r} (unknown field: size_kb, count)"
                for key in sorted(set(value) - set(DEFAULT_LOG_ROTATE))]
    result = dict(DEFAULT_LOG_ROTATE)
    for key, low, high in (("size_kb", 1, 10**8), ("count", 0, 1000)):
        if key in value:
            v = value[key]
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                problems.append(f"log_rotate.{key}: {v!r} (expected a whole number from {low} "
                                f"to {high})")
            else:
                result[key] = v
    return (None if problems else result), problems


def render_newsyslog(logs: Sequence[str], owner: str, size_kb: int, count: int,
                     group: str = LOG_GROUP) -> str:
    """``/etc/newsyslog.d/<label>.conf``: one line per log (``newsyslog.conf(5)`` fields:
    name, owner:group, mode, count, size in KB, when (``*``: size only), flags)."""
    lines = [
        "# Managed by pyinfra (self-sovereign Ollama): edits here are overwritten on the next run.",
        "# logfilename  [owner:group]  mode  count  size(KB)  when  flags",
    ]
    for log in dict.fromkeys(logs):
        if any(c.isspace() or c == "#" for c in log):
            raise ValueError(f"newsyslog cannot name a log path with spaces or '#': {log!r}")
        lines.append(f"{log}  {owner}:{group}  644  {count}  {size_kb}  *  N")
    return "\n".join(lines) + "\n"


def parse_newsyslog(text: str) -> list[dict[str, str]]:
    """The entries of a newsyslog conf (for checks and tests)."""
    names = ("logfile", "owner_group", "mode", "count", "size", "when", "flags")
    return [dict(zip(names, line.split(), strict=False)) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def warm_body_of(args: Sequence[str], model: str) -> dict[str, Any]:
    """The warm-up body the job's arguments give ``model`` (for checks and tests)."""
    pairs = list(args[6:])
    return json.loads(dict(zip(pairs[::2], pairs[1::2], strict=True))[model])


class Upkeep:
    """The upkeep settings of one server (read from its raw host data, with defaults)."""

    def __init__(self, warm_at_boot: bool, warm_poll: float, warm_log: str,
                 rotate: dict[str, int] | None) -> None:
        self.warm_at_boot = warm_at_boot
        self.warm_poll = warm_poll
        self.warm_log = warm_log
        self.rotate = rotate


def upkeep_settings(data: Mapping[str, Any]) -> tuple[Upkeep, list[str]]:
    """All upkeep fields (``warm_at_boot``, ``warm_poll_seconds``, ``warm_log``,
    ``log_rotate``) and their problems (``<field>: <value> (<why>)``)."""
    on, errors = warm_at_boot(data)
    poll, more = warm_poll(data)
    errors += more
    log = data.get("warm_log") or DEFAULT_WARM_LOG
    if not isinstance(log, str) or not log.startswith("/") \
            or any(c.isspace() or c == "#" for c in log):
        errors.append(f"warm_log: {log!r} (expected an absolute path without spaces)")
        log = DEFAULT_WARM_LOG
    rotate, more = log_rotate(data)
    errors += more
    return Upkeep(on, poll, log, rotate), errors


def upkeep_files(upkeep: Upkeep) -> list[str]:
    """Files the server's state fact must hash for the upkeep: the warm job's plists (both
    modes), its log, the newsyslog conf."""
    return [f"~/Library/LaunchAgents/{LABEL_WARM}.plist",
            f"/Library/LaunchDaemons/{LABEL_WARM}.plist", upkeep.warm_log, NEWSYSLOG_CONF]

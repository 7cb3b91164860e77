"""Operations on the Ollama server: stop competing servers, confirm the API answers (and report
which APIs this version offers), pull declared models, prune undeclared ones, pre-warm.

The API is reached with ``curl`` at the address Ollama listens on (``host:port``); with a
specific ``OLLAMA_HOST`` the ``ollama`` CLI would need ``OLLAMA_HOST`` exported, and through
HAProxy ``/api/pull`` is blocked on purpose, so management always talks to Ollama directly.

Pulls stream ``/api/pull`` and print progress live (every 10 % per layer) whatever pyinfra's
verbosity; no timeout cuts them unless ``pull_timeout`` says so. A pull fails when the stream
carries an ``{"error": ...}`` line (Ollama has already sent HTTP 200 then) or never says
``success``; one failing model does not stop the others, and the operation fails at the end
naming every model that failed, with Ollama's message.

Example::

    ollama.models(name="Ollama models", models=["qwen2.5-coder:32b"],
                  address="192.168.100.10:11434", state=state)
    ollama.warm(name="Pre-warm", models=["qwen2.5-coder:32b"], address="192.168.100.10:11434",
                keep_alive=-1, num_ctx=32768, state=state)
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, StringCommand, operation

from facts.macserver import BREW_OLLAMA_LABEL, find_competitors
from facts.ollama import (
    OllamaLoaded,
    OllamaModels,
    api_support,
    parse_loaded,
    parse_models,
)
from operations.launchd import target, wait_gone_command

# -- reports ----------------------------------------------------------------------------------


def api_report(version: str | None) -> str:
    """``"Ollama 0.13.5: /v1/chat/completions, /v1/models, /v1/responses; not
    /v1/messages (needs 0.14.0)"``."""
    from facts.ollama import API_MIN_VERSIONS

    if not version:
        return "Ollama version unknown: cannot tell which APIs it offers"
    support = api_support(version)
    if all(v is None for v in support.values()):
        return f"Ollama {version} (a development build): API support unknown"
    public = ("/v1/chat/completions", "/v1/models", "/v1/responses", "/v1/messages")
    offered = [p for p in public if support[p]]
    missing = [f"{p} (needs {API_MIN_VERSIONS[p]})" for p in public if support[p] is False]
    text = f"Ollama {version}: offers {', '.join(offered) or 'none of the /v1 APIs'}"
    return text + (f"; not {', '.join(missing)}" if missing else "")


def _prefix() -> str:
    return getattr(host, "print_prefix", "")


# -- competing servers ------------------------------------------------------------------------


@operation()
def stop_competitors(state: dict[str, Any], port: int | None = None, label: str = "com.ollama"):
    """Stop Ollama servers that are not ours (see ``facts.macserver.find_competitors``):
    brew services' ``homebrew.mxcl.ollama`` is booted out of its domain and its plist deleted
    (what ``brew services stop`` does, in the domain it is really loaded in), Ollama.app's
    processes are terminated. Ollama.app stays installed and stays a login item (that is only
    reachable from the GUI): a warning says so. Unknown processes are reported, not killed.

    **Example:**

    .. code:: python

        ollama.stop_competitors(name="Stop other Ollama servers", state=state, port=11434)
    """
    competitors = find_competitors(state, label=label, port=port)
    uid, user = state.get("uid"), state.get("user")
    did = False
    for c in competitors:
        if c["kind"] == "brew-service":
            sudo: dict[str, Any] = {"_sudo": True} if c["domain"] == "system" else {}
            t = f"{target(c['domain'], uid)}/{BREW_OLLAMA_LABEL}"
            yield StringCommand(wait_gone_command(t), **sudo)
            did = True
        elif c["kind"] == "brew-plist":
            sudo = {"_sudo": True} if c["path"].startswith("/Library/") else {}
            yield StringCommand("rm", "-f", shlex.quote(c["path"]), **sudo)
            did = True
        elif c["kind"] == "app":
            if c.get("pids"):
                pids = [str(p) for p in c["pids"]]
                others = [
                    p
                    for p in state.get("processes", [])
                    if p["pid"] in c["pids"] and p.get("user") != user
                ]
                kw: dict[str, Any] = {"_sudo": True} if others else {}
                yield StringCommand("kill", *pids, "2>/dev/null", "||", "true", **kw)
                did = True
            logger.warning(
                f"{_prefix()}{c['detail']}: it starts a second server at every login. Remove "
                "it from System Settings > General > Login Items (or delete the app)."
            )
        else:
            logger.warning(
                f"{_prefix()}{c['detail']} (not stopped: not started by Homebrew "
                "or Ollama.app; stop it yourself)"
            )
    if not did:
        host.noop("no competing Ollama server to stop")


# -- service check ----------------------------------------------------------------------------


def check_script(address: str, wait: int, proxy: str | None) -> str:
    """Wait until ``/api/version`` answers (``wait`` s), then (with a proxy) check that the proxy
    forwards ``/api/version`` and answers 403 to ``/api/pull``."""
    url = shlex.quote(f"http://{address}/api/version")
    lines = [
        f"i=0; until v=$(curl -sf -m 3 {url}); do i=$((i+1)); if [ $i -gt {int(wait)} ]; then "
        f"echo 'ollama: no answer from http://{address}/api/version after {int(wait)}s' >&2; "
        'exit 1; fi; sleep 1; done; echo "version $v"',
    ]
    if proxy:
        purl = shlex.quote(f"http://{proxy}/api/version")
        pull = shlex.quote(f"http://{proxy}/api/pull")
        lines.append(
            f"i=0; until p=$(curl -sf -m 3 {purl}); do i=$((i+1)); if [ $i -gt {int(wait)} ]; "
            f"then echo 'haproxy: no answer from http://{proxy}/api/version' >&2; exit 1; fi; "
            'sleep 1; done; echo "proxy $p"; '
            f"c=$(curl -s -m 5 -o /dev/null -w '%{{http_code}}' -X POST -d '{{}}' {pull}); "
            'echo "blocked $c"; [ "$c" = 403 ] || { echo "haproxy: /api/pull answered $c, '
            'not 403" >&2; exit 1; }'
        )
    return "; ".join(lines)


def run_check(state, host, address: str, wait: int, proxy: str | None) -> bool:
    """FunctionCommand body of :func:`verify`: one exec, then the API report."""
    ok, output = host.run_shell_command(StringCommand(check_script(address, wait, proxy)))
    version = None
    for line in output.stdout_lines:
        if line.startswith("version "):
            try:
                version = json.loads(line[len("version ") :]).get("version")
            except ValueError:
                pass
    if not ok:
        host.log_styled(
            "Ollama check failed: " + " | ".join(output.stderr_lines[-5:]),
            fg="red",
            log_func=logger.error,
        )
        return False
    report = api_report(version)
    host.log_styled(report, log_func=logger.info)
    if proxy:
        host.log_styled(
            f"HAProxy on {proxy}: forwards /api/version, answers 403 to /api/pull",
            log_func=logger.info,
        )
    return True


@operation()
def verify(
    address: str,
    state: dict[str, Any] | None = None,
    changed: bool = True,
    proxy_address: str | None = None,
    wait: int = 60,
):
    """Confirm Ollama answers on ``address`` (and HAProxy on ``proxy_address``, with
    ``/api/pull`` blocked), and report which APIs this version offers (``/v1/messages``
    needs 0.14.0, ``/v1/responses`` 0.13.3).

    Without changes (``changed=False``) and with a state that shows a healthy API, the report
    comes from the state and nothing runs.

    **Example:**

    .. code:: python

        ollama.verify(name="Ollama answers", address="192.168.100.10:11434", state=state,
                      changed=False)
    """
    api = (state or {}).get("api", {}).get("version") or {}
    proxy_ok = proxy_address is None or ((state or {}).get("proxy_api") or {}).get("status") == 200
    if not changed and api.get("status") == 200 and proxy_ok:
        version = (api.get("json") or {}).get("version")
        host.noop(api_report(version))
        return
    yield FunctionCommand(run_check, (address, wait, proxy_address), {})


# -- models -----------------------------------------------------------------------------------

# POSIX awk (also BSD awk): read /api/pull's NDJSON, print progress every 10 % per layer,
# remember an {"error": ...} line, and fail unless a {"status":"success"} line came.
_PULL_AWK = r"""
function val(re, skip,   s) {
    if (!match($0, re)) return ""
    s = substr($0, RSTART + skip, RLENGTH - skip - 1); gsub(/\\"/, "\"", s); return s
}
function num(re, skip) {
    if (!match($0, re)) return -1
    return substr($0, RSTART + skip, RLENGTH - skip) + 0
}
{
    e = val("\"error\":\"([^\"\\\\]|\\\\.)*\"", 9)
    if (e != "") { print m ": error: " e; fflush(); err = e; next }
    s = val("\"status\":\"([^\"\\\\]|\\\\.)*\"", 10)
    if (s == "success") { ok = 1; print m ": success"; fflush(); next }
    t = num("\"total\":[0-9]+", 8); c = num("\"completed\":[0-9]+", 12)
    if (t > 0) {
        if (c < 0) c = 0
        p = int(c * 100 / t)
        if (!(s in shown) || p >= shown[s] + 10 || (p == 100 && shown[s] < 100)) {
            shown[s] = p
            if (t >= 1e9) printf "%s: %s %3d%% of %.2f GB\n", m, s, p, t / 1e9
            else printf "%s: %s %3d%% of %.1f MB\n", m, s, p, t / 1e6
            fflush()
        }
        next
    }
    if (s != "") { if (s != last) { print m ": " s; fflush(); last = s }; next }
    if ($0 != "") { other = $0; print m ": " $0; fflush() }
}
END {
    if (ok) exit 0
    if (err == "") err = (other != "" ? other : "no success line from /api/pull")
    print "##failed " m " " err; fflush()
    exit 1
}
"""


def pull_script(models: Sequence[str], address: str, timeout: int = 0) -> str:
    """Pull each model through ``/api/pull`` (streamed), continuing after failures; exit 1 if
    any failed. Failures are reported as ``##failed <model> <message>`` lines."""
    max_time = f" --max-time {int(timeout)}" if timeout else ""
    url = shlex.quote(f"http://{address}/api/pull")
    lines = [
        "pull() { curl -sS -N --connect-timeout 10"
        + max_time
        + " -H 'Content-Type: application/json' -X POST"
        + f' -d "{{\\"model\\":\\"$1\\"}}" {url} 2>&1 | awk -v m="$1" {shlex.quote(_PULL_AWK)}; }}',
        "rc=0",
    ]
    for model in models:
        lines.append(f"pull {shlex.quote(model)} || rc=1")
    lines.append("exit $rc")
    return "\n".join(lines)


def delete_script(models: Sequence[str], address: str) -> str:
    """``DELETE /api/delete`` for each model; ``##failed`` lines for those that fail."""
    url = shlex.quote(f"http://{address}/api/delete")
    lines = ["rc=0"]
    for model in models:
        body = shlex.quote(json.dumps({"model": model}, separators=(",", ":")))
        q = shlex.quote(model)
        lines.append(
            f"c=$(curl -s -m 60 -o /dev/null -w '%{{http_code}}' -X DELETE -d {body} {url}); "
            f"if [ \"$c\" = 200 ]; then echo {q}': deleted'; "
            f"else echo '##failed '{q}\" HTTP $c\"; rc=1; fi"
        )
    lines.append("exit $rc")
    return "\n".join(lines)


def _tags_script(address: str) -> str:
    return (
        f"curl -s -m 10 -w '\\n%{{http_code}}\\n' {shlex.quote(f'http://{address}/api/tags')} "
        "2>/dev/null || echo"
    )


def _failures(lines: Sequence[str]) -> list[str]:
    return [line[len("##failed ") :] for line in lines if line.startswith("##failed ")]


def converge_models(
    state,
    host,
    models: list[str],
    address: str,
    prune: bool,
    timeout: int,
    warm: Sequence[str] = (),
    keep_alive: str | int = -1,
    num_ctx: NumCtx = None,
) -> bool:
    """FunctionCommand body of :func:`models`: read ``/api/tags`` now (the service may have
    just started), pull what is missing with live progress, delete undeclared models (when
    pruning), warm the ``warm`` models that are present; report every failure, fail at the
    end if any."""
    from facts.ollama import parse_api_response

    _, output = host.run_shell_command(StringCommand(_tags_script(address)))
    installed = parse_models(parse_api_response(output.stdout_lines))
    if installed is None:
        host.log_styled(
            f"ollama: cannot list models at http://{address}/api/tags",
            fg="red",
            log_func=logger.error,
        )
        return False
    names = {m["name"] for m in installed}
    missing = [m for m in models if m not in names]
    extra = sorted(names - set(models)) if prune else []
    failures: list[str] = []
    if missing:
        host.log_styled(f"pulling {', '.join(missing)}", log_func=logger.info)
        _, out = host.run_shell_command(
            StringCommand(pull_script(missing, address, timeout)), print_output=True
        )
        failed = _failures(out.stdout_lines)
        failures += failed
        names |= {m for m in missing if not any(f.startswith(m + " ") for f in failed)}
    if extra:
        _, out = host.run_shell_command(StringCommand(delete_script(extra, address)))
        failures += [f"delete {f}" for f in _failures(out.stdout_lines)]
    to_warm = [m for m in warm if m in names]
    if to_warm:
        _, out = host.run_shell_command(
            StringCommand(warm_script(to_warm, address, keep_alive, num_ctx)), print_output=True
        )
        failures += [f"warm-up {f}" for f in _failures(out.stdout_lines)]
    if failures:
        host.log_styled(
            "ollama models failed: " + "; ".join(failures), fg="red", log_func=logger.error
        )
        return False
    return True


@operation()
def models(
    models: list[str],
    address: str,
    state: dict[str, Any] | None = None,
    prune: bool = False,
    pull_timeout: int = 0,
    refresh: bool = False,
    warm: list[str] | None = None,
    keep_alive: str | int = -1,
    num_ctx: NumCtx = None,
):
    """Have exactly the declared models (pull the missing; with ``prune``, delete the others),
    and the ``warm`` ones loaded in memory.

    + models: full names (``llama3.2:latest``; ``deploys.server_plan.normalize_model``)
    + address: ``host:port`` of Ollama itself (not HAProxy: it blocks ``/api/pull``)
    + state: the ``MacServerState`` (its ``/api/tags`` and ``/api/ps``); without it,
      ``OllamaModels``/``OllamaLoaded`` are read
    + refresh: the state may be stale (the service was just (re)started, or did not answer):
      decide when the operation runs, and warm every ``warm`` model
    + pull_timeout: seconds one pull may take (0: no limit)
    + warm / keep_alive / num_ctx: models to pre-load, with the ``keep_alive`` and
      ``num_ctx`` the clients use (see :func:`warm`)

    **Example:**

    .. code:: python

        ollama.models(name="models", models=["qwen2.5-coder:32b"], address="127.0.0.1:11434",
                      state=state, prune=True, warm=["qwen2.5-coder:32b"], num_ctx=32768)
    """
    warm = list(warm or [])
    if not models and not prune and not warm:
        host.noop("no models declared")
        return
    if state is not None:
        installed = parse_models(state.get("api", {}).get("tags") or {})
        loaded = parse_loaded(state.get("api", {}).get("ps") or {})
    else:
        installed = host.get_fact(OllamaModels, address=address)
        loaded = host.get_fact(OllamaLoaded, address=address) if warm else []
    args = (list(models), address, prune, pull_timeout)
    if installed is None or refresh:
        yield FunctionCommand(converge_models, args + (warm, keep_alive, num_ctx), {})
        return
    names = {m["name"] for m in installed}
    missing = [m for m in models if m not in names]
    extra = sorted(names - set(models)) if prune else []
    by_name = {m["name"]: m for m in loaded or []}
    cold = [m for m in warm if m not in by_name or not is_warm(by_name[m], keep_alive, num_ctx)]
    if missing or extra:
        yield FunctionCommand(converge_models, args + (cold, keep_alive, num_ctx), {})
        return
    if cold:
        yield FunctionCommand(run_warm, (cold, address, keep_alive, num_ctx), {})
        return
    text = f"models present: {', '.join(models) or 'none declared'}"
    host.noop(text + (f"; loaded: {', '.join(warm)}" if warm else ""))


# -- warm-up ----------------------------------------------------------------------------------


#: ``num_ctx`` arguments: one size for every model, ``{model: size}`` (the models' one context
#: size each, ``deploys/contexts.py``), or None (the server's default).
NumCtx = int | Mapping[str, int] | None


def ctx_of(num_ctx: NumCtx, model: str) -> int | None:
    """The ``num_ctx`` to load ``model`` with."""
    return num_ctx.get(model) if isinstance(num_ctx, Mapping) else num_ctx


def warm_body(model: str, keep_alive: str | int, num_ctx: NumCtx) -> str:
    body: dict[str, Any] = {"model": model, "keep_alive": keep_alive}
    ctx = ctx_of(num_ctx, model)
    if ctx:
        body["options"] = {"num_ctx": ctx}
    return json.dumps(body, separators=(",", ":"))


def warm_script(
    models: Sequence[str], address: str, keep_alive: str | int, num_ctx: NumCtx
) -> str:
    """Load each model with ``POST /api/generate`` (no prompt: load only), continuing after
    failures; ``##failed <model> <answer>`` for those that fail."""
    url = shlex.quote(f"http://{address}/api/generate")
    lines = ["rc=0"]
    for model in models:
        q = shlex.quote(model)
        body = shlex.quote(warm_body(model, keep_alive, num_ctx))
        lines.append(
            f"out=$(curl -sS -m 1800 -H 'Content-Type: application/json' -X POST -d {body} "
            f"{url} 2>&1); case \"$out\" in *'\"done\":true'*) echo {q}': loaded';; "
            f"*) echo '##failed '{q}\" $(printf '%s' \"$out\" | tr '\\n' ' ' | cut -c1-300)\"; "
            "rc=1;; esac"
        )
    lines.append("exit $rc")
    return "\n".join(lines)


def run_warm(state, host, models: list[str], address: str, keep_alive, num_ctx) -> bool:
    _, out = host.run_shell_command(
        StringCommand(warm_script(models, address, keep_alive, num_ctx)), print_output=True
    )
    failures = _failures(out.stdout_lines)
    if failures:
        host.log_styled("warm-up failed: " + "; ".join(failures), fg="red", log_func=logger.error)
        return False
    return True


def is_warm(loaded: Mapping[str, Any], keep_alive: str | int, num_ctx: NumCtx) -> bool:
    """A loaded model (``/api/ps`` entry) already matches the warm-up: same context length (if
    the server reports it) and, for a negative keep-alive, an expiry in the far future."""
    num_ctx = ctx_of(num_ctx, str(loaded.get("name") or loaded.get("model") or ""))
    if num_ctx and loaded.get("context_length") not in (None, num_ctx):
        return False
    negative = str(keep_alive).startswith("-")
    if negative:
        expires = str(loaded.get("expires_at") or "")
        try:
            return datetime.fromisoformat(expires[:19]).year >= 2100
        except ValueError:
            return False
    return True


@operation()
def warm(
    models: list[str],
    address: str,
    keep_alive: str | int = -1,
    num_ctx: NumCtx = None,
    state: dict[str, Any] | None = None,
    force: bool = False,
):
    """Pre-load models into memory with the ``keep_alive`` and ``num_ctx`` the clients use (a
    different ``num_ctx`` would make Ollama reload the model on the first real request).

    Models already loaded that way are left alone; ``force`` (e.g. Ollama was just restarted,
    so nothing is loaded whatever the state says) warms them all.

    **Example:**

    .. code:: python

        ollama.warm(name="warm", models=["qwen2.5-coder:32b"], address="127.0.0.1:11434",
                    keep_alive=-1, num_ctx=32768, state=state)
    """
    if not models:
        host.noop("no model to pre-warm")
        return
    if state is not None:
        loaded = parse_loaded(state.get("api", {}).get("ps") or {})
    else:
        loaded = host.get_fact(OllamaLoaded, address=address)
    if loaded is not None and not force:
        by_name = {m["name"]: m for m in loaded}
        todo = [
            m for m in models if m not in by_name or not is_warm(by_name[m], keep_alive, num_ctx)
        ]
        if not todo:
            host.noop(f"already loaded: {', '.join(models)}")
            return
    else:
        todo = list(models)
    yield FunctionCommand(run_warm, (todo, address, keep_alive, num_ctx), {})

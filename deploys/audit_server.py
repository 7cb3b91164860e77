"""The Mac server's drift audit, from one read (``facts.macserver.MacServerState``).

:func:`audit_server_state` compares that read with the server's settings, reusing the server
role's own decisions (``deploys.server_plan.server_run``: what a run would change):

* ``service``: the ``com.ollama`` job loaded and running (domain, pid), its plist and
  environment as planned (``OLLAMA_*``), HAProxy's job and config in proxy mode;
* ``bind``: who listens on the Ollama port, against ``OLLAMA_HOST`` (and HAProxy's address);
* ``ollama``: the version the API reports (vs the installed formula) and the APIs it offers;
* ``models``: declared but missing, installed but not declared (drift only with
  ``ollama_prune_models``), warm models not loaded;
* ``competing``: other Ollama servers (brew services, Ollama.app, stray processes/listeners);
* ``pmset`` and ``address``: power settings and the static DMZ address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploys.audit_report import HostAudit
from deploys.server_plan import (
    LABEL_HAPROXY,
    LABEL_OLLAMA,
    ServerSettings,
    network_target,
    normalize_model,
    server_run,
    state_fact_args,
    validate_server,
)
from facts.ollama import API_MIN_VERSIONS, api_support, parse_loaded, parse_models


def audit_server(host: Any, plan: Any) -> HostAudit:
    """The pyinfra side: validate the host's data, read the state once, audit it."""
    from facts.macserver import MacServerState

    settings, errors = validate_server(host.name, host.data.dict())
    if settings is None:
        audit = HostAudit(host.name, "server")
        for e in errors:
            audit.add("data", "inventory", "drift", e)
        return audit
    state = host.get_fact(MacServerState, **state_fact_args(settings, upgrade_check=False))
    from deploys.api_tokens import server_api_tokens
    from deploys.client_tools import proxy_paths
    from deploys.plan import client_datas

    datas = client_datas(plan)
    # the clients' tokens as they are on the controller (read only: a missing one is made in
    # memory, so the audit says HAProxy's config differs, as the next deploy would change it)
    return audit_server_state(host.name, settings, plan, state, proxy_paths=proxy_paths(datas),
                              api_tokens=server_api_tokens(plan, settings.proxy, datas, dry=True))


def _job(state: Mapping[str, Any], label: str) -> tuple[str | None, dict[str, Any]]:
    for domain, info in ((state.get("launchd") or {}).get(label) or {}).items():
        if isinstance(info, dict) and info.get("loaded"):
            return domain, info
    return None, {}


def audit_server_state(host: str, settings: ServerSettings, plan: Any,
                       state: Mapping[str, Any], proxy_paths: tuple[str, ...] = (),
                       api_tokens: tuple = ()) -> HostAudit:
    """Compare a :class:`facts.macserver.MacServerState` value with the settings
    (``proxy_paths``: the clients' tools' endpoints in HAProxy's allowlist; ``api_tokens``: the
    clients HAProxy asks for a token, ``deploys.api_tokens.server_api_tokens``)."""
    from operations.macos import sha256_text

    audit = HostAudit(host, "server")
    run = server_run(settings, network_target(settings, plan), state, proxy_paths=proxy_paths,
                     api_tokens=api_tokens)
    if not state or not state.get("complete"):
        audit.add("state", host, "drift", "could not read the Mac's state over SSH")
        return audit
    settings = settings.resolve_user(state.get("user"))
    api = state.get("api") or {}
    version_json = (api.get("version") or {}).get("json") or {}
    version = version_json.get("version") if isinstance(version_json, dict) else None
    installed = parse_models(api.get("tags") or {})
    loaded = parse_loaded(api.get("ps") or {})
    audit.values = {
        "macos": state.get("macos"), "user": state.get("user"),
        "launchd": {lbl: (state.get("launchd") or {}).get(lbl)
                    for lbl in (LABEL_OLLAMA, LABEL_HAPROXY)},
        "environment": settings.environment(), "listeners": state.get("listeners"),
        "ollama_version": version, "apis": api_support(version), "models": installed,
        "loaded": loaded, "competitors": run.competitors, "network": state.get("network"),
        "dns": state.get("dns"), "pmset": state.get("pmset"),
    }
    for e in run.errors:
        audit.add("preflight", host, "drift", e)
    for w in run.warnings:
        audit.add("preflight", host, "warn", w)

    # -- the service ----------------------------------------------------------------------
    domain, job = _job(state, LABEL_OLLAMA)
    if domain is None:
        audit.add("service", LABEL_OLLAMA, "drift", "not loaded in any launchd domain")
    elif job.get("state") != "running":
        audit.add("service", LABEL_OLLAMA, "drift",
                  f"loaded in {domain}, state {job.get('state')!r} (not running)")
    else:
        audit.add("service", LABEL_OLLAMA, "ok", f"running in {domain}, pid {job.get('pid')}")
    files = state.get("files") or {}
    candidates = [p for p in files if p.endswith(f"/{LABEL_OLLAMA}.plist")
                  and ("/LaunchDaemons/" in p) == (settings.service_mode == "daemon")]
    plist = job.get("path") or next(iter(candidates), None)
    have = files.get(plist) if plist else None
    env = " ".join(f"{k}={v}" for k, v in settings.environment().items())
    if run.ollama_plist and have and have == sha256_text(run.ollama_plist) \
            and not run.ollama_changes:
        audit.add("service", "plist", "ok", f"{plist} as planned ({env})")
    else:
        why = "missing" if not have else "differs from the plan" if have != sha256_text(
            run.ollama_plist or "") else "as planned but not what launchd runs"
        audit.add("service", "plist", "drift", f"{plist or 'plist'} {why} (plan: {env})")
    live_keys = set(job.get("environment_keys") or [])
    if domain is not None and live_keys:
        want_keys = set(settings.environment())
        missing = sorted(want_keys - live_keys)
        extra = sorted(k for k in live_keys - want_keys if k.startswith("OLLAMA_"))
        audit.add("service", "environment", "drift" if missing or extra else "ok",
                  (f"launchd runs it without {', '.join(missing)}" if missing else "")
                  + ("; " if missing and extra else "")
                  + (f"with unplanned {', '.join(extra)}" if extra else "")
                  or "the job's OLLAMA_* variables are the plan's: "
                  + ", ".join(sorted(want_keys)))
    if settings.proxy == "haproxy":
        hdomain, hjob = _job(state, LABEL_HAPROXY)
        if run.haproxy_changes or hjob.get("state") != "running":
            audit.add("service", LABEL_HAPROXY, "drift",
                      f"config or job differs from the plan (state {hjob.get('state')!r})")
        else:
            audit.add("service", LABEL_HAPROXY, "ok", f"running in {hdomain}, config as planned")

    # -- bind address and port --------------------------------------------------------------
    listeners = state.get("listeners") or []
    # the job's own process (by pid), else any `ollama` process
    ours = sorted({f"{x.get('address')}:{x.get('port')}" for x in listeners
                   if x.get("port") == settings.port and (
                       (job.get("pid") and x.get("pid") == job.get("pid"))
                       or "ollama" in str(x.get("command")))})
    others = sorted({f"{x.get('address')}:{x.get('port')} ({x.get('command')}, pid "
                     f"{x.get('pid')})" for x in listeners if x.get("port") == settings.port
                     and f"{x.get('address')}:{x.get('port')}" not in ours})
    want = settings.ollama_host if ":" in settings.ollama_host else \
        f"{settings.ollama_host}:{settings.port}"
    want = want.replace("0.0.0.0", "*") if want.startswith("0.0.0.0") else want
    got = [o.replace("0.0.0.0", "*") for o in ours]
    if got == [want]:
        audit.add("bind", "ollama", "ok", f"listens on {want}")
    else:
        audit.add("bind", "ollama", "drift",
                  f"listens on {', '.join(got) or 'nothing'}; plan: {want}")
    if others and settings.proxy != "haproxy":
        audit.add("bind", "other", "drift", "also on the port: " + ", ".join(others))

    # -- version and APIs -------------------------------------------------------------------
    if version is None:
        audit.add("ollama", "version", "drift",
                  f"the API does not answer on {settings.api_address} "
                  f"(HTTP {(api.get('version') or {}).get('status')})")
    else:
        offered = [p for p, ok in api_support(version).items() if ok]
        missing = [f"{p} (>= {API_MIN_VERSIONS[p]})" for p, ok in api_support(version).items()
                   if ok is False]
        audit.add("ollama", "version", "ok", f"{version}; offers {', '.join(offered)}"
                  + (f"; not yet: {', '.join(missing)}" if missing else ""))

    # -- models -----------------------------------------------------------------------------
    if installed is not None:
        have_names = {normalize_model(m["name"]) for m in installed}
        declared = {normalize_model(m.name): m for m in settings.models}
        for name in sorted(set(declared) - have_names):
            audit.add("models", name, "drift", "declared, not installed")
        for name in sorted(have_names - set(declared)):
            audit.add("models", name, "drift" if settings.prune_models else "info",
                      "installed, not declared" + (" (ollama_prune_models: would be deleted)"
                                                   if settings.prune_models else ""))
        loaded_names = {normalize_model(m["name"]) for m in loaded or []}
        for name, m in sorted(declared.items()):
            if name not in have_names:
                continue
            if m.warm and name not in loaded_names:
                audit.add("models", name, "drift", "warm model not loaded")
            else:
                audit.add("models", name, "ok", "installed" + (", loaded" if name in
                                                                loaded_names else ""))

    # -- competing servers, power, address --------------------------------------------------
    for c in run.competitors:
        audit.add("competing", c.get("kind", "?"),
                  "drift" if settings.competing_servers == "stop" else "warn", c.get("detail", ""))
    if not run.competitors:
        audit.add("competing", "ollama", "ok", "no other Ollama server")
    if settings.pmset:
        audit.add("pmset", "power", "drift" if run.pmset_changes else "ok",
                  ("differs from " if run.pmset_changes else "as planned: ")
                  + " ".join(f"{k}={v}" for k, v in settings.pmset.items()))
    net = state.get("network") or {}
    if settings.static_ip:
        audit.add("address", state.get("network_service") or "network",
                  "drift" if run.network_changes else "ok",
                  f"{net.get('method')} {net.get('ip')} router {net.get('router')}, "
                  f"dns {','.join(state.get('dns') or []) or '-'}"
                  + (f"; plan: {settings.address}" if run.network_changes else ""))
    else:
        audit.add("address", "network", "info", f"{net.get('ip') or '-'} (static_ip off)")
    for formula in run.brew.get("install", []):
        audit.add("homebrew", formula, "drift", "not installed")
    return audit

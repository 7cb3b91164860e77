"""Server role: converge the Apple silicon Mac (group ``server``) that runs Ollama in the DMZ.

One read (``facts.macserver.MacServerState``: macOS, hardware, Homebrew, launchd jobs and domains,
managed files, competing servers, power, network service, and Ollama's ``/api/version``,
``/api/tags``, ``/api/ps``, in **one** SSH exec). Then a preflight that changes nothing when
it fails (macOS >= 14, arm64, Homebrew, memory for the declared models, sudo where needed, a
network change that would cut this SSH session), and only what differs:

1. Homebrew: install Ollama (and HAProxy in proxy mode), upgrade when asked and outdated;
2. competing servers stopped (brew services' ``homebrew.mxcl.ollama``, Ollama.app);
3. ``pmset`` for 24/7 service; the DMZ address with ``networksetup`` (sudo);
4. the ``com.ollama`` launchd job (LaunchAgent, or LaunchDaemon with ``UserName``), from
   ``templates/launchd.plist.j2`` with the ``OLLAMA_*`` settings; restarted only when its
   plist or the Ollama binary changed;
5. with ``proxy = "haproxy"``: ``haproxy.cfg`` (endpoint allowlist, the bearer tokens of the
   clients with ``api_token``, ``deploys/api_tokens.py``; validated with ``haproxy -c``) and
   the ``com.haproxy`` job, Ollama on 127.0.0.1;
6. a check that the API answers (and that HAProxy blocks ``/api/pull``), with a report of
   the APIs this Ollama version offers;
7. declared models pulled (live progress), undeclared ones pruned when asked, warm models
   loaded with each model's one context size (``deploys/contexts.py``: the same the clients
   ask for, and ``OLLAMA_CONTEXT_LENGTH`` for those that cannot ask).

A re-run that finds nothing to change runs the one read and nothing else.

Run it through ``deploys/all.py`` (``--limit server`` to touch only the Mac)::

    pyinfra inventories/home.py deploys/all.py --limit server
"""

from pyinfra import host, logger
from pyinfra.api.exceptions import DeployError

from deploys.api_tokens import server_api_tokens
from deploys.client_tools import proxy_paths
from deploys.contexts import declared_context_problems, model_contexts
from deploys.hostchecks import server_problems
from deploys.plan import client_datas, current_plan
from deploys.server_plan import (
    LABEL_HAPROXY,
    LABEL_OLLAMA,
    network_target,
    server_run,
    state_fact_args,
    validate_server,
)
from deploys.server_upkeep import (
    LABEL_WARM,
    NEWSYSLOG_CONF,
    render_newsyslog,
    upkeep_files,
    upkeep_settings,
    warm_plist,
)
from facts.client import BrewPinned
from facts.macserver import SERVER_LABELS, MacServerState
from operations import client_brew, launchd, macos, ollama
from operations.templates import HAPROXY_BIN

plan = current_plan()
settings, errors = validate_server(host.name, host.data.dict())
errors += declared_context_problems(host.name, host.data.dict())
upkeep, upkeep_errors = upkeep_settings(host.data.dict())
errors += [f"{host.name}: {e}" for e in upkeep_errors]
if settings is None or errors:
    raise DeployError("invalid server data:\n" + "\n".join(f"  - {e}" for e in errors))

fact_args = state_fact_args(settings)
fact_args["labels"] = (*SERVER_LABELS, LABEL_WARM)
fact_args["files"] = [*fact_args["files"], *upkeep_files(upkeep)]
state = host.get_fact(MacServerState, **fact_args)
settings = settings.resolve_user(state.get("user"))  # ssh_user unset: the login user
problems = server_problems(host.name, settings, state)
if problems:  # stop this host before any change
    raise DeployError("inventory does not fit this Mac:\n" + "\n".join(
        f"  - {p}" for p in problems))
target = network_target(settings, plan)


# api_token clients (deploys/api_tokens.py): HAProxy asks them for their token; the endpoints
# of the tools the clients are configured with join HAProxy's allowlist (client_tools.py)
datas = client_datas(plan)
api_tokens = server_api_tokens(plan, settings.proxy, datas)
run = server_run(settings, target, state, sudo_password=bool(host.data.get("_sudo_password")),
                 api_tokens=api_tokens, proxy_paths=proxy_paths(datas))
for warning in run.warnings:
    # Advice on a choice the inventory made (a LaunchAgent needs its user's login after a
    # reboot) is shown when the service is installed or changed, not again on every run.
    if "runs as a LaunchAgent of" in warning and not run.ollama_changes:
        continue
    logger.warning(f"{host.print_prefix}{warning}")
if run.errors:
    raise DeployError(
        "the Mac does not meet the requirements; nothing was changed:\n"
        + "\n".join(f"  - {e}" for e in run.errors)
    )

macos.brew_formulas(
    name="Homebrew: " + ", ".join(run.formulas),
    formulas=run.formulas,
    upgrade=settings.upgrade,
    state=state,
)

# pin_ollama (server host data): True = `brew pin ollama` (brew upgrade leaves it alone, see
# deploys/versions.py for the versions known to work together), False = unpin, unset = leave.
if host.data.get("pin_ollama") is not None:
    client_brew.pin(
        name="Homebrew: pin Ollama" if host.data.get("pin_ollama") else "Homebrew: unpin Ollama",
        formula="ollama",
        pinned=host.data.get("pin_ollama"),
        pinned_now=host.get_fact(BrewPinned),
    )

if settings.competing_servers == "stop":
    ollama.stop_competitors(
        name="Stop competing Ollama servers",
        state=state,
        port=settings.port,
        label=LABEL_OLLAMA,
    )

if settings.pmset and state.get("pmset"):
    macos.pmset(name="Power: 24/7 (pmset)", settings=settings.pmset, state=state)

if settings.static_ip:
    macos.static_ip(
        name=f"Network: {target.address} on the DMZ (networksetup)",
        address=target.address,
        netmask=target.netmask,
        router=target.router,
        dns_servers=list(target.dns),
        service=settings.network_service,
        device=settings.network_device,
        allow_over_ssh=settings.static_ip_over_ssh,
        state=state,
    )

if settings.proxy != "haproxy":  # before Ollama may take the DMZ address:port back
    launchd.absent(name="No HAProxy service (proxy off)", label=LABEL_HAPROXY, state=state)

launchd.service(
    name=f"Ollama service ({LABEL_OLLAMA}, {settings.service_mode}, {settings.ollama_host})",
    label=LABEL_OLLAMA,
    plist=run.ollama_plist,
    mode=settings.service_mode,
    state=state,
    restart=run.restart_ollama,
    log_path=settings.stderr_log,
    pending=run.restart_markers[LABEL_OLLAMA],
)

if settings.proxy == "haproxy":
    macos.file(
        name=f"HAProxy config ({settings.haproxy_config})",
        path=run.haproxy_config_path,
        content=run.haproxy_config,
        validate=f"{HAPROXY_BIN} -c -q -f {{}}",
        state=state,
        pending=run.restart_markers[LABEL_HAPROXY],  # read at (re)start
    )
    launchd.service(
        name=f"HAProxy service ({LABEL_HAPROXY}, {settings.public_address})",
        label=LABEL_HAPROXY,
        plist=run.haproxy_plist,
        mode=settings.service_mode,
        state=state,
        restart=run.restart_haproxy,
        log_path=settings.haproxy_log,
        pending=run.restart_markers[LABEL_HAPROXY],
    )

ollama.verify(
    name="Ollama answers (and which APIs it offers)",
    address=settings.api_address,
    state=state,
    changed=run.changes_service,
    proxy_address=settings.public_address if settings.proxy == "haproxy" else None,
)

ollama.models(
    name="Ollama models",
    models=[m.name for m in settings.models],
    address=settings.api_address,
    state=state,
    prune=settings.prune_models,
    pull_timeout=settings.pull_timeout,
    refresh=run.refresh_models,
    warm=[m.name for m in settings.warm_models],
    keep_alive=settings.warm_keep_alive,
    num_ctx=model_contexts(host.data.dict()),  # each model's one context size
)

# -- upkeep between deploys: warm at boot (after the models are there), log rotation -------

warm_names = [m.name for m in settings.warm_models]
if upkeep.warm_at_boot and warm_names:
    launchd.service(
        name=f"Warm at boot ({LABEL_WARM}: {', '.join(warm_names)} whenever Ollama starts)",
        label=LABEL_WARM,
        plist=warm_plist(
            settings.api_address, warm_names, settings.warm_keep_alive,
            model_contexts(host.data.dict()), mode=settings.service_mode,
            user_name=settings.ollama_user, log_path=upkeep.warm_log, poll=upkeep.warm_poll),
        mode=settings.service_mode,
        state=state,
        log_path=upkeep.warm_log,
    )
else:
    launchd.absent(name=f"No warm-at-boot job ({LABEL_WARM})", label=LABEL_WARM, state=state)

rotate = upkeep.rotate
if rotate is not None:
    logs = [settings.stdout_log, settings.stderr_log, upkeep.warm_log]
    if settings.proxy == "haproxy":
        logs.append(settings.haproxy_log)
    macos.file(
        name=f"Log rotation {NEWSYSLOG_CONF} ({rotate['size_kb']} KB x {rotate['count']})",
        path=NEWSYSLOG_CONF,
        content=render_newsyslog([macos.expand_home(p, state.get("home")) for p in logs],
                                 settings.ollama_user or str(state.get("user")),
                                 rotate["size_kb"], rotate["count"]),
        owner="root:wheel",
        sudo=True,
        state=state,
    )
else:
    macos.remove_files(name=f"No log rotation ({NEWSYSLOG_CONF})", paths=[NEWSYSLOG_CONF],
                       sudo=True, state=state)

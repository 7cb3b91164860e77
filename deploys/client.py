"""Client role: a Mac (group ``clients``) that uses the Ollama server through the VPN.

Run it through ``deploys/all.py`` (``--limit alice-mac`` for one laptop)::

    pyinfra inventories/home.py deploys/all.py --limit clients

Two reads (``facts.client.ClientState`` as the SSH user, ``facts.client.TunnelState`` with
sudo), then only what differs:

* **WireGuard**: Homebrew ``wireguard-tools`` and ``bash`` (wg-quick needs bash >= 4); the
  tunnel config ``<homebrew>/etc/wireguard/<wg_interface_name>.conf`` (root:wheel 600, exactly
  ``deploys.peers.peer_config``: split tunnel, the router's key, PSK, endpoint, keepalive;
  with ``key_on_mac`` (default) the Mac's own private key, made there by ``wg genkey`` into
  ``<interface>.key`` next to it and added on the Mac: see ``deploys/mac_keys.py``),
  uploaded into the SSH user's mode-700 ``~/.config/self-sovereign-ollama`` and moved into
  place with ``sudo install``; with ``tunnel_at_boot`` a LaunchDaemon that runs ``wg-quick up``
  at boot, and the tunnel brought up now (restarted when its config changed). A disabled peer
  (``vpn_enabled: False``) has its tunnel taken down and its config and daemon removed.
* **The client env contract** in ``~/.config/self-sovereign-ollama/env.sh``
  (``OLLAMA_API_BASE``, ``OPENAI_API_BASE``, ``OPENAI_API_KEY``, ``AIDER_MODEL``, the
  ``claude-ollama`` function), sourced by one marker block in ``~/.zshrc``, the bash login
  file and ``~/.bashrc`` (if present). The original installer's blocks are replaced.
* **Aider** (``aider``): Homebrew ``pipx`` + ``python@3.12``, ``pipx install aider-chat``,
  ``~/.aider.conf.yml`` (analytics, update checks and URL scraping off),
  ``~/.aider.model.settings.yml`` (``num_ctx`` = the model's one context size,
  ``deploys/contexts.py``) and ``~/.aider.model.metadata.json`` (so the price list is never
  fetched).
* **Claude Code** (``claude_code``): the ``claude-ollama`` function (no traffic but the API:
  ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` and friends, every model role mapped to a
  declared model), only when the server's Ollama is >= 0.14.0 (``server_ollama_version``, or
  asked from the controller) and the server's context is at least ``claude_min_context``.
* **Versions**: Ollama / Claude Code / Aider checked against ``deploys/versions.py``;
  mismatches are reported at the start of the run.

Nothing with a key is written to ``~/Downloads`` or printed; the controller never puts a key
on a command line. Fields: ``deploys/client_plan.py``.
"""

import ipaddress

from pyinfra import host, inventory, logger
from pyinfra.api.exceptions import DeployError

from deploys.api_tokens import TokenStore, token_problems, wants_token
from deploys.client_plan import (
    ENV_FILE,
    profile_body,
    profile_targets,
    render_aider_conf,
    render_daemon_plist,
    render_env,
    render_model_settings,
    server_base_url,
    server_num_ctx,
    undeclared_models,
    validate_client,
)
from deploys.client_tools import (
    MODEL_METADATA_FILE,
    context_mismatches,
    render_model_metadata,
    with_model_contexts,
)
from deploys.contexts import claude_context_problems
from deploys.hostchecks import client_problems
from deploys.keys import KeyChanges, KeyStore
from deploys.mac_keys import MADE, key_path, with_mac_keys
from deploys.mac_keys import tunnel_state as read_tunnel_state
from deploys.peers import peer_config
from deploys.plan import current_plan
from deploys.versions import (
    check,
    fetch_server_version,
    route_source,
    supports,
)
from facts.client import (
    BACKUP_SUFFIX,
    CONFIG_DIR,
    PIPX_PACKAGE,
    ClientState,
)
from operations import client, client_brew, keystore
from operations.secret import Secret

plan = with_mac_keys(current_plan())


def _server_data():
    if plan.server_host is None:
        return None
    try:
        return inventory.get_host(plan.server_host).data
    except Exception:  # not in this inventory (e.g. --limit does not matter, but be safe)
        return None


server_data = _server_data()
settings, errors = validate_client(host.name, host.data, server_num_ctx(server_data))
if errors:
    raise DeployError("invalid client data:\n" + "\n".join(f"  - {e}" for e in errors))
assert settings is not None
# one context size per model (deploys/contexts.py): Aider's num_ctx = the server's for it
settings = with_model_contexts(settings, host.data, server_data)
if settings.claude_code and settings.claude_models:
    c = settings.claude_models
    errors = claude_context_problems(host.name, host.data,
                                     [c.default, c.opus, c.sonnet, c.haiku, c.subagent],
                                     server_data)
    if errors:
        raise DeployError("invalid client data:\n" + "\n".join(f"  - {e}" for e in errors))
errors = token_problems(host.name, host.data, server_data)
if errors:
    raise DeployError("invalid client data:\n" + "\n".join(f"  - {e}" for e in errors))
# proxy mode, api_token: the client's bearer token (deploys/api_tokens.py), in the env file only
api_token = TokenStore(plan.secrets_dir).token(host.name) if wants_token(host.data)[0] else None
peer = next((p for p in plan.peers if p.host == host.name), None)
if peer is None:
    raise DeployError(f"{host.name}: not a VPN peer of the plan (is it in group 'clients'?)")
if plan.server_address is None:
    raise DeployError(f"{host.name}: the inventory has no server (group 'server' with "
                      "dmz_address): the client has nothing to connect to")
prefix = settings.homebrew_prefix
base_url = server_base_url(plan.server_address, plan.ollama_port)

state = host.get_fact(ClientState, prefix=prefix)
if not state or not state.get("home"):
    raise DeployError(f"{host.name}: could not read the client's state over SSH")
if state.get("system") != "Darwin":
    raise DeployError(f"{host.name}: this is {state.get('system')!r}, not macOS (Darwin); "
                      "the client role manages Macs")
problems = client_problems(host.name, settings, state, needs_brew=(
    (peer.private_key is not None and peer.enabled) or settings.aider))
if problems:  # stop this host before any change
    raise DeployError("inventory does not fit this Mac:\n" + "\n".join(
        f"  - {p}" for p in problems))
home = state["home"]
private_dir = f"{home}/{CONFIG_DIR}"
files = state["files"]
backups = set(state["backups"])


def _file_args(path: str) -> dict:
    return {"path": path, "state": files.get(path), "has_backup": path in backups}


# -- versions and what is offered -----------------------------------------------------------

def _ask_server() -> tuple[str | None, str]:
    """The server's version from GET /api/version, asked only when this controller has a route
    into a network that reaches the server (see ``deploys.versions.route_source``)."""
    source = route_source(str(plan.server_address))
    networks = [plan.vpn_subnet, plan.dmz_subnet] + ([plan.lan_subnet] if plan.lan_to_dmz else [])
    if source is None or not (ipaddress.ip_address(source).is_loopback
                              or any(ipaddress.ip_address(source) in n for n in networks)):
        return None, (f"this controller ({source or 'no route'}) is not on the VPN, the DMZ or "
                      f"a LAN allowed into the DMZ, so {base_url} was not asked")
    return fetch_server_version(base_url)


server_version, why_unknown = settings.server_ollama_version, ""
if (settings.claude_code or settings.aider) and server_version is None:
    server_version, why_unknown = _ask_server()
claude_offered = settings.claude_code and supports("claude_code", server_version)
claude_installed = next(iter(state["claude_code"].values()), None)
tools = tuple(t for t, on in (("claude_code", settings.claude_code), ("aider", settings.aider))
              if on)
for finding in check({"ollama": server_version, "claude_code": claude_installed,
                      "aider": state["aider"]}, tools=tools):
    text = f"version {finding}"
    claude_gate = finding.tool == "claude_code" and finding.level != "untested"
    log = logger.warning if finding.level == "mismatch" or claude_gate else logger.info
    if claude_gate:
        text = f"claude-ollama not offered: {finding.message}"
        if finding.level == "unknown" and why_unknown:
            text += (f" [{why_unknown}: set server_ollama_version in the client's data, or run "
                     "again from a controller that reaches the server]")
    log(f"    [{host.name}] {text}")
for model in undeclared_models(settings, server_data):
    logger.warning(f"    [{host.name}] model {model!r} is not in the server's ollama_models: "
                   "it will not be pulled or warmed there")
for model, ctx, server_ctx in context_mismatches(settings, server_data):
    logger.warning(f"    [{host.name}] Aider asks for num_ctx {ctx} for {model!r} but the server "
                   f"loads it with {server_ctx}: Ollama reloads the model at each switch")
for path in state["legacy"]:
    logger.warning(
        f"    [{host.name}] {path} is left over from the original installer and may hold an old "
        f"WireGuard private key: delete it (rm -rf {path!r}) and remove the tunnel from the "
        "WireGuard app; this deploy manages the tunnel with wg-quick now.")

# -- WireGuard ------------------------------------------------------------------------------

manage_tunnel = peer.private_key is not None or peer.own_key
if not manage_tunnel:
    logger.info(f"    [{host.name}] peer {peer.name} brings its own key (vpn_public_key): its "
                "tunnel config is yours to manage")
active = peer.enabled and not peer.expired  # an expired peer's tunnel goes like a disabled one
if manage_tunnel and active:
    client_brew.formulae(
        name="Homebrew: wireguard-tools, bash (wg-quick needs bash >= 4)",
        formulae=["wireguard-tools", "bash"],
        installed=state["formulae"],
        prefix=prefix,
        uid=state["uid"],
        brew_present=state["brew"],
    )

client.private_directory(
    name=f"Private directory ~/{CONFIG_DIR} (700)",
    path=private_dir,
    state=state["dirs"].get(private_dir),
)

if manage_tunnel:
    # a new key is kept on the controller (pending) before it is uploaded; the router's run
    # records it (deploys/router.py)
    keystore.stage(name="Key store: keep new keys before upload",
                   store=KeyStore(plan.secrets_dir), changes=plan.key_changes)
    tunnel_state = read_tunnel_state(host, settings)  # shared with the router's deploy

    def _learned(public: str, name: str = peer.name) -> None:
        """A key the Mac made during this run: kept (pending) for the router's next run."""
        KeyStore(plan.secrets_dir).stage(KeyChanges(new={f"peers/{name}.pub": Secret(public)}))
        logger.info(f"    [{host.name}] the Mac made its WireGuard key in this run: its public "
                    "key goes to the router at the end of the run (or its next run, when the "
                    "router is not part of this one)")
    client.wireguard_tunnel(
        name=(f"WireGuard tunnel {settings.wg_interface_name}" if active
              else f"WireGuard tunnel {settings.wg_interface_name}: removed (peer "
              f"{'expired' if peer.enabled else 'disabled'})"),
        interface=settings.wg_interface_name,
        config=peer_config(plan, peer) if active else None,
        config_path=settings.wireguard_config,
        staging_dir=private_dir,
        state=tunnel_state,
        at_boot=settings.tunnel_at_boot,
        daemon_label=settings.daemon_label,
        daemon_plist_path=settings.daemon_plist,
        daemon_plist=render_daemon_plist(settings) if settings.tunnel_at_boot else None,
        prefix=prefix,
        present=active,
        key_path=key_path(settings) if peer.own_key else None,
        key_changed=peer.name in MADE,
        on_public_key=_learned if peer.own_key and not peer.public_key and active else None,
    )

# -- the env contract and the shell profiles ------------------------------------------------

client.managed_file(
    name=f"Client env ~/{ENV_FILE}",
    content=render_env(base_url, settings, claude_offered,
                       api_token=api_token.reveal() if api_token else None),
    mode="600",  # it may hold the client's API token
    **_file_args(f"{home}/{ENV_FILE}"),
)
for profile, create in profile_targets(state["profiles"]):
    client.profile_block(
        name=f"Shell profile ~/{profile}: source the env file",
        path=f"{home}/{profile}",
        body=profile_body(),
        state=state["profiles"].get(profile),
        create=create,
    )

# -- Aider ----------------------------------------------------------------------------------

if settings.aider:
    python = f"{prefix}/opt/python@3.12/bin/python3.12"
    client_brew.formulae(
        name="Homebrew: pipx, python@3.12 (for Aider)",
        formulae=["pipx", "python@3.12"],
        installed=state["formulae"],
        prefix=prefix,
        uid=state["uid"],
        brew_present=state["brew"],
    )
    client.pipx_package(
        name=f"Aider ({PIPX_PACKAGE} via pipx)",
        package=PIPX_PACKAGE,
        installed_version=state["aider"],
        version=settings.aider_version,
        python=python,
        pipx=f"{prefix}/bin/pipx",
    )
    client.managed_file(
        name="Aider config ~/.aider.conf.yml",
        content=render_aider_conf(base_url, settings, home),
        backup_suffix=BACKUP_SUFFIX,
        **_file_args(f"{home}/.aider.conf.yml"),
    )
    client.managed_file(
        name="Aider model settings ~/.aider.model.settings.yml (num_ctx)",
        content=render_model_settings(settings),
        backup_suffix=BACKUP_SUFFIX,
        **_file_args(f"{home}/.aider.model.settings.yml"),
    )
    client.managed_file(
        name=f"Aider model metadata ~/{MODEL_METADATA_FILE} (never fetched)",
        content=render_model_metadata(settings),
        backup_suffix=BACKUP_SUFFIX,
        **_file_args(f"{home}/{MODEL_METADATA_FILE}"),
    )

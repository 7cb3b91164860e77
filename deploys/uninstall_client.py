"""Uninstall the client role from a Mac (group ``clients``); included by ``deploys/uninstall.py``.

    pyinfra inventories/home.py deploys/uninstall.py --limit alice-mac

What goes (only what this project put there, each step a no-op when already gone):

* the WireGuard tunnel: taken down, its LaunchDaemon unloaded and deleted, the config (which
  holds the private key) deleted;
* the private directory ``~/.config/self-sovereign-ollama`` (env file, upload leftovers);
* the marker blocks in ``~/.zshrc``, ``~/.bash_profile``, ``~/.bash_login``, ``~/.profile``,
  ``~/.bashrc`` (and the original installer's ``ai-client`` / ``claude-ollama`` blocks);
* ``~/.aider.conf.yml``, ``~/.aider.model.settings.yml`` and ``~/.aider.model.metadata.json``
  if they are ours (a file of yours that they replaced is put back);
* the original installer's key files (``~/Downloads/ai-server-vpn.conf``, ``~/.ai-client``);
* Aider itself only with ``uninstall_aider = True`` (``pipx uninstall aider-chat``).

Homebrew formulae (``wireguard-tools``, ``bash``, ``pipx``, ``python@3.12``) stay: other
software may use them (``brew uninstall wireguard-tools`` by hand if not). The router forgets
the peer when it is removed from the inventory (or ``vpn_enabled: False``) and the router part
runs again.
"""

from pyinfra import host
from pyinfra.api.exceptions import DeployError

from deploys.client_plan import validate_client
from deploys.mac_keys import key_path, tunnel_fact_args
from facts.client import (
    BACKUP_SUFFIX,
    CONFIG_DIR,
    LEGACY_MARKERS,
    MARKER,
    PIPX_PACKAGE,
    PROFILES,
    ClientState,
    TunnelState,
)
from operations import client

settings, errors = validate_client(host.name, host.data)
if errors:
    raise DeployError("invalid client data:\n" + "\n".join(f"  - {e}" for e in errors))
assert settings is not None
prefix = settings.homebrew_prefix

state = host.get_fact(ClientState, prefix=prefix)
if not state or not state.get("home"):
    raise DeployError(f"{host.name}: could not read the client's state over SSH")
home = state["home"]

client.wireguard_tunnel(
    name=f"WireGuard tunnel {settings.wg_interface_name}: down and removed",
    interface=settings.wg_interface_name,
    config=None,
    config_path=settings.wireguard_config,
    staging_dir=f"{home}/{CONFIG_DIR}",
    state=host.get_fact(TunnelState, **tunnel_fact_args(settings), _sudo=True),
    daemon_label=settings.daemon_label,
    daemon_plist_path=settings.daemon_plist,
    prefix=prefix,
    present=False,
    key_path=key_path(settings),  # the Mac's own WireGuard key (key_on_mac) goes too
    forget_key=True,
)

for profile in PROFILES:
    client.profile_block(
        name=f"Shell profile ~/{profile}: block removed",
        path=f"{home}/{profile}",
        body="",
        state=state["profiles"].get(profile),
        marker=MARKER,
        remove_markers=LEGACY_MARKERS,
        present=False,
    )

for name in (".aider.conf.yml", ".aider.model.settings.yml", ".aider.model.metadata.json"):
    path = f"{home}/{name}"
    client.managed_file(
        name=f"~/{name}: removed (yours put back if it was replaced)",
        path=path,
        content="",
        state=state["files"].get(path),
        has_backup=path in set(state["backups"]),
        present=False,
        backup_suffix=BACKUP_SUFFIX,
    )

private_dir = f"{home}/{CONFIG_DIR}"
client.remove_paths(
    name=f"~/{CONFIG_DIR} and the original installer's key files: removed",
    paths=([private_dir] if private_dir in state["dirs"] else []) + list(state["legacy"]),
)

if settings.uninstall_aider:
    client.pipx_package(
        name=f"Aider ({PIPX_PACKAGE}): uninstalled",
        package=PIPX_PACKAGE,
        installed_version=state["aider"],
        pipx=f"{prefix}/bin/pipx",
        present=False,
    )

"""A Mac client's drift audit, from one read (``facts.client_audit.ClientAudit``).

:func:`audit_client_state` compares it with the plan:

* ``tunnel``: the WireGuard config present, root-owned, mode 600, byte for byte the config the
  plan renders for this peer (its keys, address, the router's key and endpoint: compared by
  sha256, no key leaves the Mac), the router's public key in it = the plan's (and, in the
  summary, = the live router's); the boot LaunchDaemon loaded when ``tunnel_at_boot``; whether
  the tunnel is up (info);
* ``env``: the env file as planned, and exactly one marker block sourcing it in each shell
  profile that must have one (none missing, none doubled, none unterminated);
* ``tools``: Aider installed and its two config files as planned;
* ``files``: the private directory ``~/.config/self-sovereign-ollama`` mode 700.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from deploys.audit_report import HostAudit
from deploys.client_plan import (
    ENV_FILE,
    ClientSettings,
    profile_body,
    profile_targets,
    render_aider_conf,
    render_daemon_plist,
    render_env,
    render_model_settings,
    server_base_url,
    server_num_ctx,
    validate_client,
)
from deploys.peers import peer_config
from deploys.versions import supports
from facts.client import CONFIG_DIR, MARKER


def _sha(text: Any) -> str:
    """sha256 hex of a text (a :class:`operations.secret.Secret` is revealed only to hash)."""
    if hasattr(text, "reveal"):
        text = text.reveal()
    return hashlib.sha256(str(text).encode()).hexdigest()


def audit_client(host: Any, plan: Any) -> HostAudit:
    """The pyinfra side: validate the host's data, read the Mac once, audit it."""
    from pyinfra import inventory

    from facts.client_audit import ClientAudit

    audit = HostAudit(host.name, "client")
    server_data = None
    if plan.server_host is not None:
        try:
            server_data = inventory.get_host(plan.server_host).data
        except Exception:  # not in this inventory
            server_data = None
    settings, errors = validate_client(host.name, host.data, server_num_ctx(server_data))
    if errors or settings is None:
        for e in errors:
            audit.add("data", "inventory", "drift", e)
        return audit
    from deploys.mac_keys import key_path

    peer = next((p for p in plan.peers if p.host == host.name), None)
    own_key = bool(peer is not None and peer.own_key)
    fact = host.get_fact(ClientAudit, config=settings.wireguard_config,
                         interface=settings.wg_interface_name, label=settings.daemon_label,
                         plist=settings.daemon_plist, prefix=settings.homebrew_prefix,
                         key=key_path(settings) if own_key else None)
    return audit_client_state(host.name, settings, plan, fact)


def audit_client_state(host: str, settings: ClientSettings, plan: Any,
                       fact: Mapping[str, Any]) -> HostAudit:
    """Compare a :class:`facts.client_audit.ClientAudit` value with the plan."""
    audit = HostAudit(host, "client")
    state = fact.get("client") or {}
    tunnel = fact.get("tunnel") or {}
    if not state.get("home") or not fact.get("complete"):
        audit.add("state", host, "drift", "could not read the client's state over SSH")
        return audit
    home = state["home"]
    peer = next((p for p in plan.peers if p.host == host), None)
    if peer is None:
        audit.add("peer", host, "drift", "not a VPN peer of the plan")
        return audit
    audit.values = {"user": state.get("user"), "macos": state.get("macos"),
                    "files": state.get("files"), "dirs": state.get("dirs"),
                    "profiles": state.get("profiles"), "aider": state.get("aider"),
                    "claude_code": state.get("claude_code"), "tunnel": tunnel,
                    "peer": {"name": peer.name, "address": str(peer.address)}}

    # -- the tunnel -------------------------------------------------------------------------
    conf = settings.wireguard_config
    if peer.private_key is None and not peer.own_key:
        audit.add("tunnel", conf, "info", f"peer {peer.name} brings its own key: its tunnel "
                  "config is not managed")
    elif not tunnel.get("readable"):
        audit.add("tunnel", conf, "drift", "cannot read the root-owned tunnel side "
                  "(sudo -n needs a password): not verified")
    elif not peer.enabled:
        if conf in tunnel.get("files", {}):
            audit.add("tunnel", conf, "drift", "peer disabled, config still present")
    else:
        f = (tunnel.get("files") or {}).get(conf)
        if f is None:
            audit.add("tunnel", conf, "drift", "missing")
        else:
            problems = []
            if f.get("mode") != "-rw-------":
                problems.append(f"mode {f.get('mode')}, plan -rw------- (600)")
            if f.get("uid") != "0":
                problems.append(f"owner uid {f.get('uid')}, plan root")
            if peer.own_key:  # the Mac's own key: compared without its PrivateKey line, on the Mac
                if tunnel.get("config_sha256_nokey") != _sha(peer_config(plan, peer)):
                    problems.append("content differs from the plan's config for "
                                    f"{peer.name} (address, endpoint, routes or keys)")
                if not tunnel.get("key_in_config"):
                    problems.append("the config does not hold the Mac's own key")
                if peer.public_key and tunnel.get("public_key") != peer.public_key:
                    problems.append(f"the Mac's key is not {peer.name}'s key on the router")
            elif f.get("sha256") != _sha(peer_config(plan, peer)):
                problems.append("content differs from the plan's config for "
                                f"{peer.name} (keys, address, endpoint or routes)")
            keys = tunnel.get("peer_public_keys") or []
            if keys != [plan.router_public_key]:
                problems.append(f"peer key {', '.join(keys) or 'none'} is not the router's "
                                f"{plan.router_public_key}")
            audit.add("tunnel", conf, "drift" if problems else "ok", "; ".join(problems)
                      or f"present, 600, as planned for {peer.name} ({peer.address}); "
                         "peer key = the router's")
        up = tunnel.get("tunnel") or {}
        if settings.tunnel_at_boot:
            # the role installs the daemon for the next boot (not bootstrapped now) and keeps
            # the tunnel up itself
            plist = (tunnel.get("files") or {}).get(settings.daemon_plist)
            problems = []
            if plist is None:
                problems.append("plist missing")
            elif plist.get("sha256") != _sha(render_daemon_plist(settings)):
                problems.append("plist differs from the plan")
            if tunnel.get("daemon_disabled"):
                problems.append("disabled in launchd (will not run at boot)")
            audit.add("tunnel", settings.daemon_label, "drift" if problems else "ok",
                      "; ".join(problems) or "boot LaunchDaemon installed as planned")
            audit.add("tunnel", settings.wg_interface_name, "ok" if up.get("socket") else "drift",
                      f"up on {up.get('device')}" if up.get("socket")
                      else "down (tunnel_at_boot: it should be up)")
        else:
            audit.add("tunnel", settings.wg_interface_name, "info",
                      f"up on {up.get('device')}" if up.get("socket") else "down (started "
                      "by hand: tunnel_at_boot = False)")

    # -- the env file and the profile blocks -------------------------------------------------
    base_url = server_base_url(plan.server_address, plan.ollama_port)
    env_path = f"{home}/{ENV_FILE}"
    have = ((state.get("files") or {}).get(env_path) or {}).get("sha256")
    offered = ([settings.claude_code and supports("claude_code", settings.server_ollama_version)]
               if settings.server_ollama_version else [True, False])
    variants = {_sha(render_env(base_url, settings, o)) for o in offered}
    audit.add("env", f"~/{ENV_FILE}", "ok" if have in variants else "drift",
              "as planned" if have in variants else "missing" if have is None
              else "differs from the plan")
    body = profile_body()
    for profile, _create in profile_targets((state.get("profiles") or {}).keys()):
        p = (state.get("profiles") or {}).get(profile) or {}
        ours = [b for b in p.get("blocks") or [] if b.get("marker") == MARKER]
        bad = [b for b in p.get("unterminated") or [] if b.get("marker") == MARKER]
        if bad:
            audit.add("env", f"~/{profile}", "drift", "unterminated marker block")
        elif len(ours) == 1 and ours[0].get("body") == body:
            audit.add("env", f"~/{profile}", "ok", "env block present once")
        else:
            audit.add("env", f"~/{profile}", "drift",
                      "env block missing" if not ours else f"env block present {len(ours)} "
                      "times" if len(ours) > 1 else "env block differs from the plan")

    # -- tools ----------------------------------------------------------------------------------
    if settings.aider:
        audit.add("tools", "aider", "ok" if state.get("aider") else "drift",
                  f"aider-chat {state['aider']}" if state.get("aider") else "not installed")
        for name, content in ((".aider.conf.yml", render_aider_conf(base_url, settings, home)),
                              (".aider.model.settings.yml", render_model_settings(settings))):
            got = ((state.get("files") or {}).get(f"{home}/{name}") or {}).get("sha256")
            audit.add("tools", f"~/{name}", "ok" if got == _sha(content) else "drift",
                      "as planned" if got == _sha(content) else "missing" if got is None
                      else "differs from the plan")
    if settings.claude_code:
        versions = state.get("claude_code") or {}
        audit.add("tools", "claude-code", "info",
                  ", ".join(f"{k} {v}" for k, v in versions.items()) or "not installed "
                  "(claude-ollama needs Claude Code; the role does not install it)")
    private = f"{home}/{CONFIG_DIR}"
    mode = ((state.get("dirs") or {}).get(private) or {}).get("mode")
    audit.add("files", f"~/{CONFIG_DIR}", "ok" if mode == "drwx------" else "drift",
              f"mode {mode}" if mode else "missing")
    return audit

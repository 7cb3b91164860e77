"""The router's drift audit, from one read (``facts.wireguard.RouterAudit``): pure functions.

:func:`audit_router` compares the live router with the plan:

* ``config``: what a router run would change (``operations.uci.compute_changes`` of the desired
  sections of ``deploys/router_config.py`` against the parsed export: our sections missing or
  changed, foreign sections it would disable or delete), uncommitted uci changes, packages;
* ``foreign``: sections we do not own that touch our zones, interfaces or the VPN
  (``vpn``/``dmz`` as src/dest or in a zone's networks): enabled ones are drift;
* ``proof``: the invariants checked on the live config (:func:`prove`);
* ``expiry``: the router-side expiry job (``operations/expiry_job.py``): installed as planned
  or not (a run would install, update or remove it: drift), what it watches, and every peer it
  took off the interface;
* ``wireguard``/``peer``: the interface (up, public key, port), every peer by inventory name
  with its latest handshake, transfer and endpoint -- ``not connected`` after more than
  ``stale_after`` seconds (default 180) without a handshake, ``never connected`` when there has
  been none -- and peers on the interface the inventory does not know.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from deploys.audit_report import HostAudit, human_age, human_bytes
from deploys.expiry import describe as describe_peer
from deploys.expiry import job_entries
from deploys.plan import Plan
from deploys.router_config import (
    DMZ_INTERFACE,
    DMZ_ZONE,
    PACKAGES,
    VPN_ZONE,
    current_defaults_forward,
    desired_router_config,
)
from operations import expiry_job
from operations.secret import fingerprint
from operations.uci import compute_changes

STALE_AFTER = 180  # seconds without a handshake before a peer counts as not connected


def prove(config: Mapping[str, Any], plan: Plan) -> list[str]:
    """The invariant proof on a config: one message per violated invariant (empty: all hold).

    The one call into the firewall proof, so that it can be repointed in one place."""
    from firewall.proof import check

    return check(config, plan)


def _section_ref(summary_line: str) -> str:
    """``set firewall.cfg0a.enabled='0'`` -> ``firewall.cfg0a``."""
    path = summary_line.split(" ", 1)[-1].split("=", 1)[0]
    return ".".join(path.split(".")[:2])


def _touches_our_zones(section: Mapping[str, Any], wg: str) -> bool:
    opts = section.get("options", {})
    zones = {VPN_ZONE, DMZ_ZONE}
    if section["type"] == "zone":
        nets = opts.get("network") or []
        nets = nets if isinstance(nets, list) else str(nets).split()
        return opts.get("name") in zones or bool({wg, DMZ_INTERFACE} & set(nets))
    return opts.get("src") in zones or opts.get("dest") in zones


def audit_router(host: str, plan: Plan, fact: Mapping[str, Any],
                 stale_after: int = STALE_AFTER) -> HostAudit:
    """Compare the router's one read with the plan (see the module docstring)."""
    audit = HostAudit(host, "router")
    state = fact.get("state") or {}
    wg = fact.get("wireguard") or {}
    config = state.get("config") or {}
    if not config or not state.get("complete"):
        audit.add("state", host, "drift", "could not read the router's uci config "
                  "(not OpenWrt, or the read was cut short)")
        return audit
    audit.values = {"release": state.get("release"), "packages": {
        p: state.get("packages", {}).get(p) for p in PACKAGES}, "pending": state.get("pending"),
        "wireguard": wg}

    # -- our sections, and what a run would change ------------------------------------------
    desired = desired_router_config(plan, current_defaults_forward(config))
    ours = {f"{s['package']}.{s['name']}" for s in desired["sections"]}
    changes = compute_changes(config, **desired)
    for line in changes.summary:
        ref = _section_ref(line)
        audit.add("config", ref, "drift",
                  ("ours: " if ref in ours else "foreign: ") + line)
    if not changes:
        audit.add("config", "network, firewall, dhcp", "ok",
                  f"{len(ours)} sections of ours as planned; nothing to change")
    for line in state.get("pending") or []:
        audit.add("config", "uncommitted", "drift", f"uci change not committed: {line}")
    for pkg in PACKAGES:
        if not (state.get("packages") or {}).get(pkg):
            audit.add("packages", pkg, "drift", "not installed")

    # -- foreign sections that touch our zones ----------------------------------------------
    changed = {_section_ref(line) for line in changes.summary}
    for sec in config.get("firewall", []):
        ref = f"firewall.{sec.get('name') or sec.get('id')}"
        if ref in ours or ref in changed or not _touches_our_zones(sec, plan.vpn_interface):
            continue
        opts = sec.get("options", {})
        label = opts.get("name") or sec["type"]
        what = (f"{sec['type']} {label!r}: src={opts.get('src', '-')} "
                f"dest={opts.get('dest', '-')} target={opts.get('target', '-')}")
        if opts.get("enabled") == "0":
            audit.add("foreign", ref, "warn", what + " (disabled)")
        else:
            audit.add("foreign", ref, "drift", what + " (enabled; not in the plan)")

    # -- the proof on the live config -------------------------------------------------------
    try:
        failures = prove(config, plan)
    except Exception as err:  # the model does not understand it: fail closed
        failures = [f"the proof could not run: {err}"]
    for msg in failures:
        item = msg.split(":", 1)[0] if msg.startswith("invariant") else "proof"
        audit.add("proof", item, "drift", msg)
    if not failures:
        audit.add("proof", "invariants", "ok", "every invariant holds on the live config")

    # -- the router-side expiry job, then WireGuard: the interface and its peers -------------
    removed = _audit_expiry(audit, plan, state.get("expiry") or {})
    _audit_wireguard(audit, plan, wg, stale_after, removed)
    return audit


def _at(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(epoch)) if epoch else "?"


def _audit_expiry(audit: HostAudit, plan: Plan, found: Mapping[str, Any]) -> dict[str, int]:
    """Rows for the expiry job; returns ``{peer name: when}`` of the peers it took off."""
    entries = job_entries(plan.peers)
    # the job's files and crontab line (a peer it took off shows in its peer row)
    todo = expiry_job.commands(entries, plan.vpn_interface, [], found)
    installed = bool(found.get("files") or found.get("data") or found.get("cron"))
    watched = ", ".join(f"{n} (from {_at(c)})" for n, _, c in entries)
    if todo and entries:
        what = "installed, not as planned" if installed else "not installed"
        audit.add("expiry", "job", "drift", f"{what}; a run would make it watch {watched}")
    elif todo:
        audit.add("expiry", "job", "drift", "installed, but no peer expires: a run removes it")
    elif entries:
        audit.add("expiry", "job", "ok", f"installed (cron every minute, hotplug); takes "
                  f"{watched} off {plan.vpn_interface}")
    else:
        audit.add("expiry", "job", "info", "not installed (no peer on the router expires)")
    removed = {r["name"]: r.get("when", 0) for r in found.get("removed") or []}
    for name, when in removed.items():
        audit.add("expiry", name, "info", f"taken off {plan.vpn_interface} by the expiry job at "
                  f"{_at(when)}")
    return removed


def _audit_wireguard(audit: HostAudit, plan: Plan, wg: Mapping[str, Any],
                     stale_after: int, removed: Mapping[str, int]) -> None:
    iface = plan.vpn_interface
    if not wg.get("wg"):
        audit.add("wireguard", iface, "drift", "no `wg` command on the router")
        return
    if not wg.get("up"):
        audit.add("wireguard", iface, "drift", "interface not up (no such WireGuard device)")
        return
    problems = []
    if wg.get("public_key") != plan.router_public_key:
        problems.append(f"public key {wg.get('public_key')} is not the plan's "
                        f"{plan.router_public_key}")
    if wg.get("listen_port") != plan.vpn_port:
        problems.append(f"listens on {wg.get('listen_port')}, plan: {plan.vpn_port}")
    audit.add("wireguard", iface, "drift" if problems else "ok",
              "; ".join(problems) or f"up, port {wg.get('listen_port')}, key as planned")
    now = wg.get("now") or 0
    live = {p["public_key"]: p for p in wg.get("peers") or []}
    for peer in plan.peers:
        seen = live.pop(peer.public_key, None)
        if not peer.enabled or peer.expired:
            # disabled or past its `expires` date: off the VPN (deploys/expiry.py)
            state_text = describe_peer(peer.name, peer.expires, peer.enabled)
            if seen is not None:
                audit.add("peer", peer.name, "drift", f"{state_text}; but on the interface")
            else:
                audit.add("peer", peer.name, "info", state_text)
            continue
        if seen is None:
            why = (f" (taken off by the router's expiry job at {_at(removed[peer.name])}: a run "
                   "brings it back)") if peer.name in removed else ""
            audit.add("peer", peer.name, "drift", f"{peer.address}: not on the interface{why}")
            continue
        wrong = []
        if seen.get("allowed_ips") != [f"{peer.address}/32"]:
            wrong.append(f"allowed ips {','.join(seen.get('allowed_ips') or []) or 'none'}, "
                         f"plan: {peer.address}/32")
        if seen.get("preshared_key") != fingerprint(peer.preshared_key.reveal()):
            wrong.append("preshared key differs from the plan's"
                         if seen.get("preshared_key") else "no preshared key")
        hs = seen.get("latest_handshake") or 0
        traffic = (f"rx {human_bytes(seen.get('rx_bytes') or 0)}, "
                   f"tx {human_bytes(seen.get('tx_bytes') or 0)}, "
                   f"endpoint {seen.get('endpoint') or '-'}")
        if hs == 0:
            status, when = "warn", "never connected"
        elif now - hs > stale_after:
            status, when = "warn", f"not connected (last handshake {human_age(now - hs)} ago)"
        else:
            status, when = "ok", f"handshake {human_age(max(now - hs, 0))} ago"
        if wrong:
            status = "drift"
        expiry = [describe_peer(peer.name, peer.expires, True).split(": ", 1)[-1]] \
            if peer.expires is not None else []
        audit.add("peer", peer.name, status,
                  f"{peer.address}: " + "; ".join(wrong + [when, traffic] + expiry))
    for key, seen in live.items():
        audit.add("peer", f"unknown {key[:10]}...", "drift",
                  f"on the interface, not in the inventory: allowed ips "
                  f"{','.join(seen.get('allowed_ips') or []) or 'none'}, endpoint "
                  f"{seen.get('endpoint') or '-'}")

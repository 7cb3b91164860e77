"""Drift audit: what differs from the plan, per host. Read-only: ONE state read per host.

    pyinfra inventories/home.py deploys/audit.py                       # tables
    pyinfra inventories/home.py deploys/audit.py --data audit_json=1   # JSON on stdout
    pyinfra inventories/home.py deploys/audit.py --data audit_json=audit.json   # JSON file
    pyinfra inventories/home.py deploys/audit.py --limit router

(``SSOL_AUDIT_JSON=1`` or ``=<file>`` in the environment does the same as ``audit_json``.)

* router (``facts.wireguard.RouterAudit``: the uci export + ``wg show <if> dump`` with the
  keys removed on the router): ``deploys/audit_router.py``;
* server (``facts.macserver.MacServerState``): ``deploys/audit_server.py``;
* clients (``facts.client_audit.ClientAudit``): ``deploys/audit_client.py``.

Every host prints a table (``AREA ITEM STATUS DETAIL``); ``DRIFT`` rows differ from the plan,
``warn`` rows deserve a look (a peer not connected) without being drift. Once every host is
read, a summary line; pyinfra exits non-zero (``pyinfra error ...: drift on ...``) when any
host drifted. Nothing is changed anywhere (no operation is queued).
"""

import os

from pyinfra import host, logger
from pyinfra.api.exceptions import DeployError
from pyinfra.context import state as pyinfra_state

from deploys.audit_report import RESULTS, HostAudit, cross_check, document, dumps, table
from deploys.plan import current_plan

plan = current_plan()
_json = host.data.get("audit_json") or os.environ.get("SSOL_AUDIT_JSON") or ""
_json = "" if str(_json).lower() in ("0", "false", "no") else str(_json)


def _audit_host() -> HostAudit:
    if not host.data.get("configure_host", True):
        audit = HostAudit(host.name, ",".join(sorted(host.groups)) or "-")
        audit.add("host", host.name, "info", "configure_host = False: not audited")
        return audit
    if "router" in host.groups:
        from deploys.audit_router import audit_router
        from facts.wireguard import RouterAudit

        fact = host.get_fact(RouterAudit, interface=plan.vpn_interface)
        return audit_router(host.name, plan, fact,
                            stale_after=int(host.data.get("audit_stale_after") or 180))
    if "server" in host.groups:
        from deploys.audit_server import audit_server

        return audit_server(host, plan)
    if "clients" in host.groups:
        from deploys.audit_client import audit_client

        return audit_client(host, plan)
    audit = HostAudit(host.name, "-")
    audit.add("host", host.name, "info", "in no role group (router, server, clients)")
    return audit


# shared by every host's execution of this file (an imported module lives for the run)
_done = RESULTS

result = _audit_host()
_done[host.name] = result
if not _json:
    print(table(result), flush=True)

_active = [h.name for h in pyinfra_state.inventory.get_active_hosts()]
if set(_active) <= set(_done):
    audits = [_done[name] for name in _active]
    for changed in cross_check(audits):
        f = changed.findings[-1]
        if not _json:
            print(f"cross-check {changed.host}: {f.area} {f.item} "
                  f"{f.status.upper() if f.status == 'drift' else f.status}  {f.detail}",
                  flush=True)
    drifted = [a.host for a in audits if a.drift]
    doc = document(audits)
    if _json in ("1", "true", "yes", "-"):
        print(dumps(doc), flush=True)
    elif _json:
        with open(_json, "w") as out:
            out.write(dumps(doc) + "\n")
    summary = (f"audit: {len(audits)} host(s), drift on {', '.join(drifted)}" if drifted
               else f"audit: {len(audits)} host(s), no drift")
    if not _json:
        print(summary, flush=True)
    _done.clear()
    if drifted:
        raise DeployError(summary)
    logger.info(summary)

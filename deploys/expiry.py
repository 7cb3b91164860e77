"""Peers that expire: ``expires: "YYYY-MM-DD"`` on a ``vpn_peers`` entry (``vpn_expires`` in a
client's host data). The peer is a peer of the router up to and including that day; from the
next day on, the next run removes it from the router (like ``enabled: False``) and says so.
Its keys stay in the store (an expired guest can be given more time by changing the date).

The date is compared with the controller's local date when the plan is built. Example::

    {"name": "guest_phone", "expires": "2026-12-31"}

Between runs, a small job on the router (:mod:`operations.expiry_job`, installed only while a
peer on the router has an ``expires`` date) takes such a peer off the live interface at its
**cutoff**: :func:`cutoff`, the first second of the day after ``expires`` in the controller's
local time zone, written to the router as epoch seconds (so the router's own time zone does not
matter, only its clock). The run and the job therefore agree on the same instant.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

DATE_FORMAT = "YYYY-MM-DD"


def parse_expires(value: object) -> tuple[_dt.date | None, str | None]:
    """``(date, None)`` for a valid ``expires`` value (``None``: never expires), or
    ``(None, why)`` for an invalid one."""
    if value is None or value == "":
        return None, None
    if isinstance(value, _dt.datetime):
        return value.date(), None
    if isinstance(value, _dt.date):
        return value, None
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip()), None
        except ValueError:
            pass
    return None, f"expected a date {DATE_FORMAT}"


def today() -> _dt.date:
    """The controller's local date."""
    return _dt.date.today()


def is_expired(expires: _dt.date | None, on: _dt.date | None = None) -> bool:
    """Whether a peer with this ``expires`` date is no longer a peer on day ``on`` (today)."""
    return expires is not None and (on or today()) > expires


def describe(name: str, expires: _dt.date | None, enabled: bool,
             on: _dt.date | None = None) -> str:
    """One line for the run's output: ``guest_phone: expired on 2026-01-31 (removed from the
    router)`` / ``... enabled, expires 2026-12-31 (in 20 days)`` / ``... disabled``."""
    on = on or today()
    if not enabled:
        state = "disabled (enabled: False)"
    elif is_expired(expires, on):
        state = f"expired on {expires.isoformat()}: not a peer of the router any more"
    elif expires is not None:
        state = f"enabled, expires {expires.isoformat()} (in {(expires - on).days} days)"
    else:
        state = "enabled, no expiry"
    return f"peer {name}: {state}"


def cutoff(expires: _dt.date) -> int:
    """Epoch seconds from which a peer with this ``expires`` date is no peer any more: midnight
    at the start of the next day, in the controller's local time zone (what :func:`today`
    uses)."""
    return int(_dt.datetime.combine(expires + _dt.timedelta(days=1), _dt.time()).timestamp())


def job_entries(peers: Iterable[Any]) -> list[tuple[str, str, int]]:
    """``[(name, public key, cutoff)]`` for the router-side job: the peers this run leaves on
    the router (enabled, not expired, with a public key) that have an ``expires`` date."""
    return [(p.name, p.public_key, cutoff(p.expires)) for p in peers
            if p.expires is not None and p.enabled and not p.expired and p.public_key]


def job_args(plan: Any) -> dict[str, Any]:
    """``operations.expiry_job.converge``'s arguments for ``plan`` (both router passes)."""
    return {"entries": job_entries(plan.peers), "interface": plan.vpn_interface,
            "live_names": [p.name for p in plan.enabled_peers]}

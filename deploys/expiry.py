"""Peers that expire: ``expires: "YYYY-MM-DD"`` on a ``vpn_peers`` entry (``vpn_expires`` in a
client's host data). The peer is a peer of the router up to and including that day; from the
next day on, the next run removes it from the router (like ``enabled: False``) and says so.
Its keys stay in the store (an expired guest can be given more time by changing the date).

The date is compared with the controller's local date when the plan is built. Example::

    {"name": "guest_phone", "expires": "2026-12-31"}
"""

from __future__ import annotations

import datetime as _dt

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

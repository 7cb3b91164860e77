"""Converge UCI configuration (network, firewall, dhcp) to a desired state, in one batch.

The desired state is data:

* ``sections``: named sections we own, converged *exactly* (type, options, lists; options not
  desired are removed). ``{"package", "name", "type", "options": {opt: str | list[str]}}``.
* ``absent``: named sections we own that must not exist (``{"package", "name"}``), e.g. an
  optional forwarding that was switched off.
* ``exclusive_types``: ``[package, type]`` pairs we own entirely: every section of that type
  that is not in ``sections`` (named or anonymous, e.g. a peer added by hand in LuCI) is
  deleted. This is how a revoked VPN peer disappears.
* ``edits``: changes to sections we do not own, found by content, never by index:
  ``{"package", "match": {"type": t, opt: value, ...}, "set": {...}, "del_list": {...},
  "delete": bool}`` (e.g. disable the factory rule named ``Allow-ISAKMP``). A match value
  ``{"not_in": [...]}`` matches an option whose value is not one of those; an option holding a
  list matches a value it contains.

:func:`compute_changes` diffs that against the :class:`facts.openwrt.OpenWrtState` fact and
returns the minimal uci batch (nothing when nothing differs; an unchanged list is never
deleted and re-added) plus exactly the ``uci changes`` lines it must produce.

:func:`converge` first settles what earlier applies left (:func:`settle`: armed guards are
confirmed or cancelled, rollbacks reported once, committed-but-not-live changes finished, our
leftovers removed), then uploads one script per apply, named by a random token
(:mod:`operations.uci_apply` has the router side): it refuses if foreign changes are pending or
the config changed since it was read; stages the batch in its own uci save dir; checks that
``uci changes`` is exactly what was intended (``uci batch`` always exits 0, so this is the only
reliable check); commits all or nothing and reloads only what changed (``network`` /
``dnsmasq`` / ``firewall``, and ``ifup <wg>`` after peer-only changes), retrying a failing
reload and restoring everything if it still fails; and deletes itself. Network or firewall
changes are guarded: a detached job restores that apply's backup unless pyinfra confirms that
token over a **new** SSH connection. Keys only ever travel inside that uploaded file.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

from pyinfra import host, logger
from pyinfra.api import (
    FileUploadCommand,
    FunctionCommand,
    OperationError,
    StringCommand,
    operation,
)
from pyinfra.api.state import StateStage

from facts.openwrt import APPLY_DIR, PACKAGES, OpenWrtState
from operations.secret import SECRET_OPTIONS, Secret, fingerprint, reveal
from operations.uci_apply import (
    RELOAD_COMMANDS,
    Settlement,
    apply_script,
    confirm_command,
    settle,
)

__all__ = [
    "APPLY_DIR",
    "Settlement",
    "apply_script",
    "compute_changes",
    "confirm_command",
    "converge",
    "settle",
]

#: Default rollback window (seconds), LuCI's default.
ROLLBACK_SECONDS = 90
#: A guarded apply that has not answered this long after its window is given up on (seconds).
APPLY_TIMEOUT_MARGIN = 30


def uci_quote(value: str) -> str:
    """Quote a value the way uci prints it and its batch parser reads it: ``'it'\\''s'``."""
    return "'" + value.replace("'", "'\\''") + "'"


@dataclass
class Changes:
    """The result of :func:`compute_changes`."""

    batch: list[str] = field(default_factory=list)  # lines for `uci batch`
    expected: list[str] = field(default_factory=list)  # lines `uci changes` must print
    summary: list[str] = field(default_factory=list)  # human-readable, secrets redacted
    packages: list[str] = field(default_factory=list)  # packages to commit, in PACKAGES order
    ifup: list[str] = field(default_factory=list)  # interfaces to ifup (peer-only changes)
    reload: list[str] = field(default_factory=list)  # init scripts to reload

    def __bool__(self) -> bool:
        return bool(self.batch)


class _Recorder:
    def __init__(self) -> None:
        self.changes = Changes()
        self.touched: dict[str, set[str]] = {}  # package -> section types changed

    def add(self, package: str, stype: str, batch: str, expected: str, summary: str) -> None:
        self.changes.batch.append(batch)
        self.changes.expected.append(expected)
        self.changes.summary.append(summary)
        self.touched.setdefault(package, set()).add(stype)


def _ref(section: Mapping[str, Any]) -> str:
    return section.get("name") or section["id"]


def _is_secret(option: str, value: Any) -> bool:
    return option in SECRET_OPTIONS or isinstance(value, Secret)


def _same_scalar(option: str, current: Any, desired: Any) -> bool:
    if not isinstance(current, str):
        return False
    if _is_secret(option, desired):
        return current == fingerprint(str(reveal(desired))) or current == reveal(desired)
    return current == desired


def _shown(option: str, value: Any) -> str:
    return "<redacted>" if _is_secret(option, value) else str(value)


def _set(rec: _Recorder, pkg: str, stype: str, ref: str, opt: str, value: Any) -> None:
    text = str(reveal(value))
    rec.add(
        pkg,
        stype,
        f"set {pkg}.{ref}.{opt}={uci_quote(text)}",
        f"{pkg}.{ref}.{opt}={uci_quote(text)}",
        f"set {pkg}.{ref}.{opt}={uci_quote(_shown(opt, value))}",
    )


def _delete(rec: _Recorder, pkg: str, stype: str, path: str) -> None:
    rec.add(pkg, stype, f"delete {pkg}.{path}", f"-{pkg}.{path}", f"delete {pkg}.{path}")


def _add_list(rec: _Recorder, pkg: str, stype: str, ref: str, opt: str, value: Any) -> None:
    text = str(reveal(value))
    rec.add(
        pkg,
        stype,
        f"add_list {pkg}.{ref}.{opt}={uci_quote(text)}",
        f"{pkg}.{ref}.{opt}+={uci_quote(text)}",
        f"add_list {pkg}.{ref}.{opt}={uci_quote(_shown(opt, value))}",
    )


def _converge_option(
    rec: _Recorder, pkg: str, stype: str, ref: str, opt: str, current: Any, desired: Any
) -> None:
    if isinstance(desired, list | tuple):
        desired = [str(reveal(v)) for v in desired]
        if isinstance(current, list) and current == desired:
            return
        if not desired:
            if current is not None:
                _delete(rec, pkg, stype, f"{ref}.{opt}")
            return
        if isinstance(current, list) and desired[: len(current)] == current:
            extra = desired[len(current) :]  # only appended: keep the list where it is
        else:
            if current is not None:
                _delete(rec, pkg, stype, f"{ref}.{opt}")
            extra = desired
        for value in extra:
            _add_list(rec, pkg, stype, ref, opt, value)
        return
    if _same_scalar(opt, current, desired):
        return
    if isinstance(current, list):
        _delete(rec, pkg, stype, f"{ref}.{opt}")
    _set(rec, pkg, stype, ref, opt, desired)


def edit_matches(section: Mapping[str, Any], match: Mapping[str, Any]) -> bool:
    """Whether an edit's ``match`` selects ``section`` (by ``type``, option values, list
    membership, or ``{"not_in": [...]}``); also used by the firewall proof's ``config_after``."""
    for key, want in match.items():
        if key == "type":
            if section["type"] != want:
                return False
            continue
        have = section["options"].get(key)
        if isinstance(want, Mapping) and "not_in" in want:  # {"not_in": [...]}: a negative match
            if have in want["not_in"]:
                return False
            continue
        if isinstance(have, list):
            if want not in have:
                return False
        elif have != want:
            return False
    return True


def _validate_desired(sections: Iterable[Mapping[str, Any]]) -> None:
    import re

    name_re = re.compile(r"^[A-Za-z0-9_]+$")
    for s in sections:
        if s["package"] not in PACKAGES:
            raise OperationError(f"uci: package {s['package']!r} is not managed here")
        if not name_re.match(s["name"]) or not name_re.match(s["type"]):
            raise OperationError(f"uci: invalid section name/type {s['name']!r}/{s['type']!r}")
        for opt, value in s["options"].items():
            if not name_re.match(opt):
                raise OperationError(f"uci: invalid option name {opt!r} in {s['name']}")
            values = value if isinstance(value, list | tuple) else [value]
            for v in values:
                text = str(reveal(v))
                if (text == "" and not isinstance(value, list | tuple)) or "\n" in text:
                    raise OperationError(
                        f"uci: option {s['package']}.{s['name']}.{opt} has an empty or "
                        "multi-line value"
                    )


def compute_changes(
    config: Mapping[str, list[Mapping[str, Any]]],
    sections: Iterable[Mapping[str, Any]] = (),
    absent: Iterable[Mapping[str, Any]] = (),
    edits: Iterable[Mapping[str, Any]] = (),
    exclusive_types: Iterable[Iterable[str]] = (),
) -> Changes:
    """The minimal uci batch turning ``config`` (the fact's ``config``) into the desired state.

    Example::

        changes = compute_changes(
            state["config"],
            sections=[{"package": "network", "name": "wg0", "type": "interface",
                       "options": {"proto": "wireguard", "listen_port": "51820"}}],
        )
        changes.batch     # ["set network.wg0=interface", "set network.wg0.proto='wireguard'", ...]
        changes.expected  # ["network.wg0='interface'", "network.wg0.proto='wireguard'", ...]
    """
    sections, absent, edits = list(sections), list(absent), list(edits)
    _validate_desired(sections)
    rec = _Recorder()
    desired_names = {(s["package"], s["name"]) for s in sections}
    exclusive = {(p, t) for p, t in (tuple(x) for x in exclusive_types)}

    for pkg in PACKAGES:
        current = list(config.get(pkg, []))
        by_name = {s["name"]: s for s in current if s.get("name")}

        def owned(sec: Mapping[str, Any], pkg: str = pkg) -> bool:
            return bool(sec.get("name")) and (pkg, sec["name"]) in desired_names

        pkg_edits = [e for e in edits if e["package"] == pkg]
        # 1. deletions first: foreign sections matched by a deleting edit, and sections of
        #    types we own exclusively that are not desired. Each is deleted once, and no
        #    later edit touches it.
        deleted: set[str] = set()
        for sec in current:
            if owned(sec):
                continue
            doomed = (pkg, sec["type"]) in exclusive or any(
                e.get("delete") and edit_matches(sec, e.get("match", {})) for e in pkg_edits
            )
            if doomed:
                deleted.add(_ref(sec))
                _delete(rec, pkg, sec["type"], _ref(sec))

        # 2. other changes to foreign sections found by content
        for edit in pkg_edits:
            if edit.get("delete"):
                continue
            for sec in current:
                if (owned(sec) or _ref(sec) in deleted
                        or not edit_matches(sec, edit.get("match", {}))):
                    continue
                ref, stype = _ref(sec), sec["type"]
                for opt, value in edit.get("set", {}).items():
                    if not _same_scalar(opt, sec["options"].get(opt), value):
                        _set(rec, pkg, stype, ref, opt, value)
                for opt, values in edit.get("del_list", {}).items():
                    have = sec["options"].get(opt)
                    for value in values:
                        if isinstance(have, list) and value in have:
                            rec.add(
                                pkg,
                                stype,
                                f"del_list {pkg}.{ref}.{opt}={uci_quote(value)}",
                                f"{pkg}.{ref}.{opt}-={uci_quote(value)}",
                                f"del_list {pkg}.{ref}.{opt}={uci_quote(value)}",
                            )
                        elif have == value:
                            _delete(rec, pkg, stype, f"{ref}.{opt}")

        # 3. named sections we own
        for want in sections:
            if want["package"] != pkg:
                continue
            name, stype = want["name"], want["type"]
            have = by_name.get(name)
            if have is not None and have["type"] != stype:
                _delete(rec, pkg, have["type"], name)  # `set` would keep the old options
                have = None
            if have is None:
                rec.add(
                    pkg,
                    stype,
                    f"set {pkg}.{name}={stype}",
                    f"{pkg}.{name}={uci_quote(stype)}",
                    f"set {pkg}.{name}={stype}",
                )
                current_options: Mapping[str, Any] = {}
            else:
                current_options = have["options"]
            for opt, value in want["options"].items():
                _converge_option(rec, pkg, stype, name, opt, current_options.get(opt), value)
            for opt in current_options:
                if opt not in want["options"]:
                    _delete(rec, pkg, stype, f"{name}.{opt}")

        # 4. named sections we own that must go
        for gone in absent:
            if gone["package"] == pkg and gone["name"] in by_name:
                if (pkg, gone["name"]) not in desired_names:
                    _delete(rec, pkg, by_name[gone["name"]]["type"], gone["name"])

    changes = rec.changes
    changes.packages = [p for p in PACKAGES if p in rec.touched]
    for pkg in changes.packages:
        types = rec.touched[pkg]
        if pkg != "network":
            changes.reload.append(RELOAD_COMMANDS[pkg])
            continue
        peer_ifaces = {t[len("wireguard_") :] for t in types if t.startswith("wireguard_")}
        other = types - {f"wireguard_{i}" for i in peer_ifaces}
        if other:
            changes.reload.append(RELOAD_COMMANDS["network"])
        changed_ifaces = _changed_interfaces(changes.expected)
        for iface in sorted(peer_ifaces):
            if iface not in changed_ifaces:  # a network reload does not apply peer changes
                changes.ifup.append(iface)
    # dnsmasq after network, firewall last: the order of reference/openwrt.md D.3
    order = [RELOAD_COMMANDS[p] for p in ("network", "dhcp", "firewall")]
    changes.reload.sort(key=order.index)
    return changes


def _changed_interfaces(expected: list[str]) -> set[str]:
    names = set()
    for line in expected:
        path = line.lstrip("-").split("=", 1)[0]
        parts = path.split(".")
        if parts[0] == "network" and len(parts) >= 2:
            names.add(parts[1])
    return names


def needs_rollback_guard(changes: Changes | Iterable[str]) -> bool:
    """Network or firewall reloads can cut the controller off; dhcp and peer changes cannot."""
    reloads = changes.reload if isinstance(changes, Changes) else list(changes)
    return any(cmd in reloads for cmd in (RELOAD_COMMANDS["network"], RELOAD_COMMANDS["firewall"]))


def all_reloads(changes: Changes, not_live: Iterable[Mapping[str, Any]] = ()) -> list[str]:
    """This apply's reloads plus those earlier applies still owe, once each, in the order
    network, dnsmasq, firewall, then ``ifup``."""
    order = [RELOAD_COMMANDS[p] for p in ("network", "dhcp", "firewall")]
    wanted = set(changes.reload) | {f"ifup {i}" for i in changes.ifup}
    for entry in not_live:
        wanted |= {c for c in entry.get("reload", []) if c in order or _IFUP.match(c)}
    return [c for c in order if c in wanted] + sorted(c for c in wanted if c not in order)


_IFUP = re.compile(r"^ifup [A-Za-z0-9_]+$")


def new_token() -> str:
    """A new apply token: 16 random hex digits."""
    return secrets.token_hex(8)


def _say(level: str, text: str) -> None:
    """Print once per run at normal verbosity (in the change-detection pass when there is one)."""
    state = getattr(host, "state", None)
    stage = getattr(state, "current_stage", None)
    check = getattr(state, "should_check_for_changes", None)
    checking = bool(check()) if callable(check) else False
    if stage == StateStage.Prepare or not checking:
        prefix = getattr(host, "print_prefix", "")
        getattr(logger, level)(f"{prefix}uci: {text}")


def _log(state, host, text: str) -> None:
    logger.info(f"{getattr(host, 'print_prefix', '')}uci: {text}")


@operation()
def converge(
    sections: list[dict[str, Any]] | None = None,
    absent: list[dict[str, Any]] | None = None,
    edits: list[dict[str, Any]] | None = None,
    exclusive_types: list[list[str]] | None = None,
    state: dict[str, Any] | None = None,
    rollback_seconds: int = ROLLBACK_SECONDS,
):
    """Converge named UCI sections (and a few content-matched edits) in one verified batch,
    after settling what earlier applies left (guards, rollbacks, not-live changes, leftovers).

    + sections: named sections we own, converged exactly (see the module docstring)
    + absent: named sections that must not exist
    + edits: content-matched changes to sections we do not own
    + exclusive_types: ``[package, type]`` pairs whose undesired sections are deleted
    + state: the ``facts.openwrt.OpenWrtState`` already read by the deploy (saves an exec);
      read here when not given
    + rollback_seconds: when network or firewall change, the router restores the previous
      configuration after this many seconds unless the controller, over a **new** SSH
      connection, confirms it can still reach the router (0 disables the guard)

    Nothing is yielded (pyinfra says "No changes") only when the router matches *and* no guard
    is armed, no rollback is unreported, nothing committed is waiting to go live and nothing of
    ours is left over. Otherwise: one upload (the apply script, which carries any keys) and one
    exec, plus, with the rollback guard, a reconnect and one confirming exec. Fails with a
    clear error when foreign uci changes are pending (and leaves them untouched).

    **Example:**

    .. code:: python

        uci.converge(
            name="WireGuard interface",
            sections=[{"package": "network", "name": "wg0", "type": "interface",
                       "options": {"proto": "wireguard", "listen_port": "51820",
                                   "addresses": ["10.10.10.1/24"]}}],
            exclusive_types=[["network", "wireguard_wg0"]],
        )
    """
    if isinstance(rollback_seconds, bool) or not isinstance(rollback_seconds, int) or not (
        0 <= rollback_seconds <= 3600
    ):
        raise OperationError(
            f"uci: rollback_seconds = {rollback_seconds!r}: expected whole seconds, 0 to 3600"
        )
    if state is None:
        state = host.get_fact(OpenWrtState)
    if not state or "config" not in state:
        raise OperationError("uci: this host has no uci (is it an OpenWrt router?)")
    if not state.get("complete", True):
        raise OperationError("uci: the router's state could not be read completely")
    if state.get("pending"):
        listing = "\n".join(f"    {line}" for line in state["pending"])
        raise OperationError(
            "uci: someone else's uncommitted uci changes are pending on the router; refusing "
            f"to apply on top of them:\n{listing}\n"
            "Commit or revert them (`uci changes`, `uci revert <package>`) and run again."
        )
    changes = compute_changes(
        state["config"],
        sections=sections or [],
        absent=absent or [],
        edits=edits or [],
        exclusive_types=exclusive_types or [],
    )
    safety = state.get("safety") or {}
    past = settle(safety, state.get("checksum", ""))
    for level, text in past.messages:
        _say(level, text)
    if not changes and not past:
        host.noop("uci configuration already matches")
        return
    _preview(changes)
    reloads = all_reloads(changes, safety.get("not_live", []))
    adopting = any(action == "adopt" for _, action in past.actions)
    guard = (
        rollback_seconds
        if (changes or adopting) and needs_rollback_guard(reloads)
        else 0
    )
    token = new_token()
    script = apply_script(
        changes.batch,
        changes.expected,
        changes.packages,
        reloads,
        state.get("checksum", ""),
        token,
        rollback_seconds=guard,
        settle=past.actions,
        consume=past.consume,
        leftovers=past.leftovers,
        finished=past.finished,
    )
    path = f"{APPLY_DIR}/apply-{token}.sh"
    yield FileUploadCommand(StringIO(script), path)
    if guard:
        # a change that cuts the link leaves this exec waiting for an answer that never comes:
        # once the guard window has passed (plus a margin) the router has restored itself
        yield StringCommand("sh", path, _timeout=guard + APPLY_TIMEOUT_MARGIN)
    else:
        yield StringCommand("sh", path)
    if guard:
        yield FunctionCommand(
            _log, (f"rollback guard {token} armed ({guard} s); reconnecting to confirm",), {}
        )
        yield FunctionCommand(reconnect, (), {})
        yield StringCommand(confirm_command(token))
        yield FunctionCommand(
            _log, (f"rollback guard {token} confirmed over a new SSH connection",), {}
        )


def _preview(changes: Changes) -> None:
    """Print the (redacted) change list while pyinfra detects changes (``--dry`` shows it)."""
    state = getattr(host, "state", None)
    if getattr(state, "current_stage", None) != StateStage.Prepare:
        return
    prefix = getattr(host, "print_prefix", "")
    logger.info(f"{prefix}uci changes ({len(changes.batch)}):")
    for line in changes.summary:
        logger.info(f"{prefix}    {line}")
    for cmd in changes.reload + [f"ifup {i}" for i in changes.ifup]:
        logger.info(f"{prefix}    then: {cmd}")


def reconnect(state, host) -> None:
    """Drop the SSH connection and open a new one (run on the controller, between the apply and
    the confirmation): the rollback is only cancelled if a *new* connection still works."""
    connector = host.connector
    old = getattr(connector, "client", None)
    if old is None:  # not an SSH connector (tests, @local): nothing to prove
        return
    connector.disconnect()
    old.close()
    try:
        connector.connect()
    except Exception as exc:
        raise OperationError(
            f"{host.name}: cannot reconnect after applying the configuration ({exc}); the router "
            "restores the previous configuration when the rollback window ends"
        ) from exc

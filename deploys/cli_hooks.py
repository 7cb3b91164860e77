"""How a run talks to the user, on top of pyinfra 3.10's CLI (``pyinfra_cli.cli``).

``install()`` (called by ``config.py``, pyinfra's config file at the repository root, which
pyinfra runs before anything else) changes three things of the CLI run it is loaded in:

- **No changes, no question.** pyinfra asks "Press enter to execute..." after change detection
  even when nothing would change; the run now goes on without asking.
- **No terminal, no traceback.** Without a terminal (stdin at its end, e.g. ``</dev/null``, cron,
  CI) pyinfra's prompt dies with ``EOFError``; the run now stops with one line telling the user
  to pass ``-y`` (exit status 2, nothing changed). A "hosts failed, continue?" question without
  a terminal answers no. An answer piped in (``echo | pyinfra ...``) still works.
- **What changed, per host.** After pyinfra's results table (per operation), one line per host:
  ``changed: <operations>``, ``no changes``, or ``FAILED`` (with the operation that failed),
  with or without ``-y``.

pyinfra looks ``_do_confirm`` and ``print_results`` up as module globals at call time, so
replacing them in ``pyinfra_cli.cli`` is enough; outside the CLI (the API, tests importing
deploys) ``install()`` does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

NO_TERMINAL = (
    "--> No terminal to confirm on: run again with -y to apply the changes above "
    "(or --dry to only preview them). Nothing was changed."
)


def install() -> None:
    """Hook the running pyinfra CLI (idempotent; no-op outside the CLI)."""
    cli = sys.modules.get("pyinfra_cli.cli")
    if cli is None or getattr(cli, "_ssol_hooks", False):
        return
    cli._do_confirm = _confirm(cli._do_confirm)
    cli.print_results = _results(cli.print_results)
    cli._ssol_hooks = True


def _confirm(original: Callable[[str], bool]) -> Callable[[str], bool]:
    def confirm(msg: str) -> bool:
        from pyinfra import logger
        from pyinfra.context import ctx_state

        detected = msg.startswith("Detected changes")
        if detected and ctx_state.isset() and not any_change(ctx_state.get()):
            logger.info("--> No changes detected: nothing to confirm.")
            return True
        try:
            return original(msg)  # a terminal, or an answer piped in (``echo | pyinfra ...``)
        except EOFError:  # no terminal, nothing to read
            print(file=sys.stderr)
            if detected:
                print(NO_TERMINAL, file=sys.stderr, flush=True)
                raise SystemExit(2) from None
            logger.warning("--> No terminal to answer on: not continuing.")
            return False

    return confirm


def any_change(state: Any) -> bool:
    """Whether change detection found anything to do on any host (as pyinfra's table)."""
    for host in state.inventory.iter_activated_hosts():
        for op_hash in state.ops[host]:
            if state.get_op_data_for_host(host, op_hash).operation_meta._maybe_is_change:
                return True
    return False


def host_summary(state: Any) -> list[str]:
    """One line per host of the run, in inventory order: what changed, or why it failed."""
    from pyinfra_cli.prints import pretty_op_name

    hosts = [h for h in state.inventory if h in state.activated_hosts or h in state.failed_hosts]
    width = max((len(h.name) for h in hosts), default=0)
    lines = []
    for host in hosts:
        changed, failed = [], []
        for op_hash in state.get_op_order():
            if op_hash not in state.ops.get(host, {}):
                continue
            meta = state.ops[host][op_hash].operation_meta
            name = pretty_op_name(state.op_meta[op_hash]).split(" | ", 1)[-1]
            if not meta.is_complete():
                continue
            if not meta.did_succeed(_raise_if_not_complete=False):
                failed.append(name)
            elif meta.did_change():
                changed.append(name)
        if host in state.failed_hosts or failed:
            text = "FAILED" + (f" at: {'; '.join(failed)}" if failed else " (not connected)")
            if changed:
                text += f" (changed before: {'; '.join(changed)})"
        elif changed:
            text = f"changed: {'; '.join(changed)}"
        else:
            text = "no changes"
        lines.append(f"{host.name.ljust(width)}  {text}")
    return lines


def _results(original: Callable[[Any], None]) -> Callable[[Any], None]:
    def print_results(state: Any) -> None:
        from pyinfra import logger

        original(state)
        lines = host_summary(state)
        if lines:
            logger.info("--> Per host:")
            for line in lines:
                logger.info(line)

    return print_results

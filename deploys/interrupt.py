"""Ctrl-C must not look like success.

pyinfra's CLI answers SIGINT with "Exiting upon user request!" and exit status 0.
:func:`exit_nonzero_on_interrupt` replaces that handler (CLI runs only, main thread only) with one
that exits 130, the shell's status for a run ended by Ctrl-C. It is installed by ``config.py``
(the first of the project's code pyinfra runs: about 2 ms after pyinfra's own handler, see the
README's "Reliability"), again as the inventory is loaded
(``deploys.plan.validate_before_connect``: a run with another ``--config``) and by the router
deploy.
Whatever the router was applying finishes there on its own (the apply script ignores the
hang-up); the next run settles it.
"""

from __future__ import annotations

import signal
import sys
import threading

INTERRUPTED_STATUS = 130


def _interrupted(signum, frame):  # pragma: no cover - signal handler
    print(f"Interrupted: exiting with status {INTERRUPTED_STATUS}; run again to settle the hosts",
          file=sys.stderr)
    sys.exit(INTERRUPTED_STATUS)


def exit_nonzero_on_interrupt() -> None:
    """Make SIGINT end a pyinfra CLI run with status 130 (no-op outside the CLI's main thread)."""
    import pyinfra

    if not getattr(pyinfra, "is_cli", False):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _interrupted)

"""pyinfra's config file: pyinfra runs it first, before the inventory, from the repository root.

It makes Ctrl-C end a run with status 130 instead of pyinfra's 0 (``deploys/interrupt.py``; the
earliest place the project's code runs: see README "Reliability" for the milliseconds before
it), and hooks the CLI's questions and output for every run (``deploys/cli_hooks.py``): no
question when nothing would change, one line asking for ``-y`` instead of a traceback without a
terminal, and a per-host summary of what changed at the end.
"""

from deploys.interrupt import exit_nonzero_on_interrupt

exit_nonzero_on_interrupt()  # first: before anything else is imported

from deploys import cli_hooks  # noqa: E402

cli_hooks.install()

"""pyinfra's config file: pyinfra runs it first, before the inventory, from the repository root.

It hooks the CLI's questions and output for every run (``deploys/cli_hooks.py``): no question
when nothing would change, one line asking for ``-y`` instead of a traceback without a
terminal, and a per-host summary of what changed at the end.
"""

from deploys import cli_hooks

cli_hooks.install()

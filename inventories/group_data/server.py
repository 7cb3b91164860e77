"""Defaults for the Mac that runs Ollama (group ``server``).

Every server field, with its default, is documented in ``deploys/server_plan.py`` and README.md
("The server"); host-specific values go in the server's entry in ``inventories/home.py``.
"""

# Homebrew is not on PATH in a non-login SSH shell. The role always calls
# /opt/homebrew/bin/brew and /opt/homebrew/opt/ollama/bin/ollama by absolute path; this PATH
# makes ad-hoc commands work too (`pyinfra inventories/home.py exec --limit server -- ollama -v`).
# Never set `_sudo` here: Homebrew refuses to run as root; the role uses sudo only for pmset,
# networksetup and LaunchDaemons.
_env = {"PATH": "/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin"}

# A 24/7 server: never sleep, restart after a power failure, wake for network access.
pmset = {"sleep": 0, "disksleep": 0, "autorestart": 1, "womp": 1}

# Other Ollama servers on the Mac (brew services' homebrew.mxcl.ollama, Ollama.app) are stopped.
competing_servers = "stop"

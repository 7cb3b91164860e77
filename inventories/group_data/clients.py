"""What every Mac client (group ``clients``) gets. Host data in ``inventories/home.py`` wins.

Every field is explained in ``deploys/client_plan.py`` (and README.md, "The Mac clients").
The models must be ones the server has (its ``ollama_models``).
"""

# -- WireGuard ------------------------------------------------------------------------------
wg_interface_name = "wg-ollama"  # /opt/homebrew/etc/wireguard/wg-ollama.conf
tunnel_at_boot = True  # a LaunchDaemon brings the tunnel up at boot (split tunnel: VPN + server)

# -- Aider (installed with pipx; talks to Ollama's native API) -------------------------------
aider = True
aider_models = ["qwen2.5-coder:32b"]  # the first is the default (AIDER_MODEL)
# aider_num_ctx = 32768  # default: the server's ollama_warm_num_ctx / ollama_context_length

# -- Claude Code (not installed here; `claude-ollama` runs it against the server) ------------
claude_code = True  # offered only when the server's Ollama is >= 0.14.0
# one model for every role: the one the server keeps warm (a second model would evict it)
claude_models = "qwen2.5-coder:32b"  # or {"default": ..., "haiku": ..., "subagent": ...}
# server_ollama_version = "0.14.0"  # when this controller cannot reach the server's API

"""Fields of a Mac client (group ``clients``): the client role (its peer fields are in
:mod:`deploys.schema.network`)."""

from __future__ import annotations

from deploys.schema.base import Field

C = ("clients",)
#: wg-quick's interface-name rule (darwin.bash); ``utunN`` are macOS' own devices.
WG_NAME = r"[a-zA-Z0-9_=+.-]{1,15}"
CLIENT_MODEL = r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*(:[A-Za-z0-9._-]+)?"
VERSION = r"[0-9][0-9A-Za-z.+-]*"
CLAUDE_ROLES = ("default", "opus", "sonnet", "haiku", "subagent")
AIDER_HINT = "not an Ollama model name like 'qwen2.5-coder:32b'"
CLAUDE_HINT = "not an Ollama model name like 'qwen3-coder:30b'"
NUM_CTX_HINT = "expected a whole number of tokens from 512 to 2097152"


def _not_utun(value: str) -> str | None:
    if value.startswith("utun") and value[4:].isdigit():
        return "utunN names are macOS devices, choose another name"
    return None


def _not_prefixed(value: str) -> str | None:
    if value.startswith(("ollama/", "ollama_chat/", "openai/")):
        return "give the Ollama name without Aider's 'ollama_chat/' prefix"
    return None


AIDER_MODEL = Field(
    "aider_models[]", "record", "an Aider model", hosts=C,
    fields=(
        Field("name", "str", "Ollama model name", None, pattern=CLIENT_MODEL, hint=AIDER_HINT,
              check=_not_prefixed),
        Field("num_ctx", "int", "num_ctx pinned for it", None, lo=512, hi=2**21,
              hint=NUM_CTX_HINT),
    ),
    unknown_why="unknown field (expected name, num_ctx)",
    hint="expected a model name or {'name', 'num_ctx'}",
    alt=Field("aider_models[]", "str", "a model name", pattern=CLIENT_MODEL, hint=AIDER_HINT,
              check=_not_prefixed, convert=lambda v: {"name": v}),
)

CLAUDE_MODELS = Field(
    "claude_models", "record", "model(s) for Claude Code", None, C, cli="json",
    fields=tuple(Field(r, "str", f"model for the {r} role", None, pattern=CLIENT_MODEL,
                       hint=CLAUDE_HINT) for r in CLAUDE_ROLES),
    unknown_why=f"unknown role (expected {', '.join(CLAUDE_ROLES)})",
    hint="expected a model name or a dict with 'default' (+ opus, sonnet, haiku, subagent)",
    alt=Field("claude_models", "str", "one model for every role", pattern=CLIENT_MODEL,
              hint=CLAUDE_HINT, convert=lambda v: {"default": v}),
    default_doc="required with claude_code",
)

CLIENT: tuple[Field, ...] = (
    Field("wg_interface_name", "str", "wg-quick tunnel name (<homebrew>/etc/wireguard/<name>"
          ".conf)", "wg-ollama", C, pattern=WG_NAME, check=_not_utun,
          hint="wg-quick interface names are 1-15 of [A-Za-z0-9_=+.-]"),
    Field("tunnel_at_boot", "bool", "a LaunchDaemon brings the tunnel up at boot", True, C,
          cli="bool"),
    Field("aider", "bool", "install Aider (pipx) and write its config", False, C, cli="bool"),
    Field("aider_models", "list", "Ollama models for Aider; the first is the default", [], C,
          cli="csv", item=AIDER_MODEL,
          hint="expected a list of model names or {'name', 'num_ctx'}",
          alt=Field("aider_models", "str", "one model", pattern=CLIENT_MODEL, hint=AIDER_HINT,
                    check=_not_prefixed, convert=lambda v: [{"name": v}])),
    Field("aider_num_ctx", "int", "num_ctx pinned for every Aider model", None, C, lo=512,
          hi=2**21, cli="int", hint=NUM_CTX_HINT,
          default_doc="the server's ollama_warm_num_ctx / ollama_context_length, else 32768"),
    Field("aider_version", "str", "pin Aider to this version", None, C, pattern=VERSION,
          hint="expected a version like '0.86.1'", default_doc="latest"),
    Field("claude_code", "bool", "offer claude-ollama (Claude Code against the server)", False,
          C, cli="bool"),
    CLAUDE_MODELS,
    Field("server_ollama_version", "str", "the server's Ollama version, when the controller "
          "cannot reach its API", None, C, pattern=VERSION,
          hint="expected a version like '0.14.0'", default_doc="asked from the server"),
    Field("uninstall_aider", "bool", "deploys/uninstall_client.py also removes Aider", False,
          C, cli="bool"),
    Field("homebrew_prefix", "str", "where Homebrew lives", "/opt/homebrew", C,
          pattern=r"/[A-Za-z0-9._/+-]*",
          check=lambda v: "expected Homebrew's prefix, e.g. '/opt/homebrew'"
          if v.rstrip("/") in ("", "/usr") else None,
          hint="expected Homebrew's prefix, e.g. '/opt/homebrew'"),
    Field("api_token", "bool", "use a bearer token for the API (needs the server's proxy "
          "'haproxy')", False, C, cli="bool"),
    Field("claude_min_context", "int", "smallest context Claude Code accepts (0: no check)",
          65536, C, lo=0, hi=2**21, cli="int"),
    Field("key_on_mac", "bool", "the Mac generates its own WireGuard key", True, C, cli="bool"),
)

"""One context size per model, declared once in the inventory, used everywhere.

Ollama reloads a model whenever a request asks for another ``num_ctx`` than the one it was
loaded with: a warm-up with one size and a client with another throws the warm-up away. So
every model has exactly one context size, and everything that names a size takes it from here:

* the server's ``OLLAMA_CONTEXT_LENGTH`` (what a request without ``num_ctx`` gets: Claude
  Code's ``/v1/messages`` and the OpenAI-compatible API cannot send one) = :func:`server_context`;
* the warm-up (``deploys/server.py``, the warm-at-boot job) and Aider's ``num_ctx`` (model
  settings file) and its model metadata (``max_input_tokens``) = :func:`context_for`.

Where it comes from (server host data):

==============================  ====================================================  =======
field                           meaning                                               default
==============================  ====================================================  =======
``ollama_models[i].context_``   this model's context size (tokens)                    the
``length``                                                                            server's
``ollama_context_length``       the server's context size: ``OLLAMA_CONTEXT_LENGTH``  32768
                                and every model without its own (``ollama_warm_num_
                                ctx``, the older name, is read when it is unset)
==============================  ====================================================  =======

and client host data: ``claude_min_context`` (default 65536, Claude Code's guidance of at least
64k tokens; ``0`` disables the check). A model Claude Code uses gets the server's context
(Claude Code sends no ``num_ctx``), so :func:`claude_context_problems` refuses a Claude model
when that is below the minimum, or when the model declares a different ``context_length`` (it
would be reloaded at each switch between Claude Code and the warm-up or Aider).

Example::

    server = {"ollama_context_length": 65536,
              "ollama_models": ["qwen3-coder:30b", {"name": "llama3.2", "context_length": 8192}]}
    server_context(server)                 # 65536
    context_for("llama3.2", server)        # 8192
    context_for("qwen3-coder:30b", server) # 65536
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The context size when the inventory gives none: Aider's long-standing pin, and a size every
#: model this project was tried with supports on a 32 GB Mac.
DEFAULT_CONTEXT = 32768
#: Claude Code's guidance: a model for it needs at least 64k tokens of context.
CLAUDE_MIN_CONTEXT = 65536
#: The range Ollama accepts (the server validation's range).
CONTEXT_RANGE = (256, 2**21)


def _tokens(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if CONTEXT_RANGE[0] <= value <= CONTEXT_RANGE[1] else None


def model_key(name: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest`` (Ollama's full name)."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def server_context(server_data: Mapping[str, Any] | None) -> int:
    """The server's context size: ``ollama_context_length``, else ``ollama_warm_num_ctx``, else
    :data:`DEFAULT_CONTEXT`. It is always written as ``OLLAMA_CONTEXT_LENGTH``."""
    data = server_data or {}
    for key in ("ollama_context_length", "ollama_warm_num_ctx"):
        tokens = _tokens(data.get(key))
        if tokens is not None:
            return tokens
    return DEFAULT_CONTEXT


def model_contexts(server_data: Mapping[str, Any] | None) -> dict[str, int]:
    """``{full model name: context size}`` for every model the server declares."""
    default = server_context(server_data)
    raw = (server_data or {}).get("ollama_models") or []
    contexts: dict[str, int] = {}
    for item in raw if isinstance(raw, list | tuple) else []:
        if isinstance(item, str):
            contexts[model_key(item)] = default
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            contexts[model_key(item["name"])] = _tokens(item.get("context_length")) or default
    return contexts


def context_for(model: str, server_data: Mapping[str, Any] | None) -> int:
    """The one context size of ``model`` (the server's when the model is not declared)."""
    return model_contexts(server_data).get(model_key(model), server_context(server_data))


def declared_context_problems(host: str, server_data: Mapping[str, Any]) -> list[str]:
    """``ollama_models[i].context_length`` values that are not a size Ollama accepts."""
    problems = []
    raw = server_data.get("ollama_models") or []
    for i, item in enumerate(raw if isinstance(raw, list | tuple) else []):
        if isinstance(item, Mapping) and item.get("context_length") is not None:
            value = item["context_length"]
            if _tokens(value) is None:
                problems.append(
                    f"{host}: ollama_models[{i}].context_length: {value!r} (expected a whole "
                    f"number of tokens from {CONTEXT_RANGE[0]} to {CONTEXT_RANGE[1]})")
    return problems


def claude_min_context(client_data: Mapping[str, Any]) -> int | None:
    """The client's ``claude_min_context`` (default 65536; ``0``: no check); None if invalid."""
    value = client_data.get("claude_min_context")
    if value is None:
        return CLAUDE_MIN_CONTEXT
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def claude_context_problems(
    host: str,
    client_data: Mapping[str, Any],
    claude_models: Iterable[str],
    server_data: Mapping[str, Any] | None,
) -> list[str]:
    """Why the models given to Claude Code do not have the context it needs (empty: fine).

    Claude Code sends no ``num_ctx``: its requests get the server's ``OLLAMA_CONTEXT_LENGTH``.
    A model is refused when that is below ``claude_min_context``, or when the model declares
    another ``context_length`` (Ollama would reload it between Claude Code and the warm-up)."""
    minimum = claude_min_context(client_data)
    if minimum is None:
        return [f"{host}: claude_min_context: {client_data.get('claude_min_context')!r} "
                "(expected a whole number of tokens, 0 to turn the check off)"]
    problems: list[str] = []
    default = server_context(server_data)
    declared = model_contexts(server_data)
    for model in dict.fromkeys(claude_models):
        own = declared.get(model_key(model), default)
        if own != default:
            problems.append(
                f"{host}: claude_models: {model!r} (the server declares context_length {own} "
                f"for it, but Claude Code sends no num_ctx and gets the server's {default}: "
                "drop the model's context_length or set ollama_context_length to it)")
        elif minimum and default < minimum:
            problems.append(
                f"{host}: claude_models: {model!r} (Claude Code would get a context of "
                f"{default} tokens, below claude_min_context {minimum}: set the server's "
                f"ollama_context_length to {minimum} or more, or claude_min_context = 0)")
    return problems

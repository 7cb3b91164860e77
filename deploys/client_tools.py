"""What the client's tools are told about the server's models (controller side, pure).

* :func:`with_model_contexts`: Aider's ``num_ctx`` per model = the model's one context size
  (``deploys/contexts.py``), unless the client pins its own (``aider_num_ctx`` or a model's
  ``num_ctx``; :func:`context_mismatches` names those that differ from the server's).
* :func:`render_model_metadata`: ``~/.aider.model.metadata.json``: every Aider model with its
  context size and zero prices, so Aider never fetches litellm's price list from the internet
  (Aider looks a model up in this file first, and only fetches when it is missing).
* :func:`proxy_paths`: the API endpoints each tool calls as this project configures it
  (``deploys.versions.TOOL_ENDPOINTS``); in proxy mode HAProxy's allowlist adds those of the
  tools a client is configured with (``deploys/server.py``): the allowlist follows the tools'
  config.

Example::

    settings = with_model_contexts(settings, client_data, server_data)
    text = render_model_metadata(settings)   # JSON5 with our header line
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from deploys.client_plan import AiderModel, ClientSettings
from deploys.contexts import context_for
from deploys.versions import TOOL_ENDPOINTS

#: Aider's model metadata file, relative to $HOME (Aider reads it by default, too).
MODEL_METADATA_FILE = ".aider.model.metadata.json"
#: The most tokens one answer may take (Aider's ``max_output_tokens``), capped by the context.
MAX_OUTPUT_TOKENS = 8192


def proxy_paths(client_datas: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The endpoints of the tools the clients are configured with (``aider``, ``claude_code``
    = True), sorted: what HAProxy's allowlist must forward besides its base list."""
    paths = {path for data in client_datas for tool, tool_paths in TOOL_ENDPOINTS.items()
             if data.get(tool) is True for path in tool_paths}
    return tuple(sorted(paths))


def _pinned(client_data: Mapping[str, Any]) -> set[str]:
    """Models whose ``num_ctx`` the client pins itself (all of them with ``aider_num_ctx``)."""
    if client_data.get("aider_num_ctx") is not None:
        return {"*"}
    raw = client_data.get("aider_models") or []
    return {m["name"] for m in raw if isinstance(m, Mapping) and m.get("num_ctx") is not None
            and isinstance(m.get("name"), str)}


def with_model_contexts(
    settings: ClientSettings, client_data: Mapping[str, Any],
    server_data: Mapping[str, Any] | None,
) -> ClientSettings:
    """``settings`` with each Aider model's ``num_ctx`` = its context on the server (models the
    client pins itself keep the client's value)."""
    pinned = _pinned(client_data)
    models = tuple(
        m if ("*" in pinned or m.name in pinned)
        else AiderModel(m.name, context_for(m.name, server_data))
        for m in settings.aider_models
    )
    return replace(settings, aider_models=models)


def context_mismatches(settings: ClientSettings, server_data: Mapping[str, Any] | None
                       ) -> list[tuple[str, int, int]]:
    """``[(model, client num_ctx, server context)]`` where the client pins another size (each
    switch between the client and the warm-up reloads the model)."""
    return [(m.name, m.num_ctx, context_for(m.name, server_data))
            for m in settings.aider_models if m.num_ctx != context_for(m.name, server_data)]


def model_metadata(settings: ClientSettings) -> dict[str, dict[str, Any]]:
    """litellm's model-info entries for every Aider model (context, zero prices)."""
    return {
        m.aider_name: {
            "max_tokens": min(MAX_OUTPUT_TOKENS, m.num_ctx),
            "max_input_tokens": m.num_ctx,
            "max_output_tokens": min(MAX_OUTPUT_TOKENS, m.num_ctx),
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "litellm_provider": "ollama_chat",
            "mode": "chat",
        }
        for m in settings.aider_models
    }


def render_model_metadata(settings: ClientSettings) -> str:
    """``~/.aider.model.metadata.json`` (JSON5, which Aider reads: a ``//`` header line)."""
    header = ("// Managed by pyinfra (self-sovereign-ollama, deploys/client.py): every run "
              "rewrites this file.\n// The server's models for Aider (context size, no "
              "prices): Aider never fetches its price list.\n")
    return header + json.dumps(model_metadata(settings), indent=2, sort_keys=True) + "\n"

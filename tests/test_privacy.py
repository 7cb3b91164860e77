"""Private by default (issue 13): what the client's tools are told, and one context per model.

* ``claude-ollama`` runs Claude Code with no traffic but the API (every switch of
  ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` spelled out), an empty API key, the token the
  server accepts, and every model role mapped to a declared model: checked in a real bash
  against a fake ``claude`` that prints its environment;
* Aider's config turns analytics, update checks and URL scraping off and reads the models'
  metadata from a file the project writes (so litellm's price list is never fetched);
* every model has one context size, used by ``OLLAMA_CONTEXT_LENGTH``, the warm-up and Aider;
  a Claude Code model below ``claude_min_context`` is refused.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from deploys.client_plan import render_aider_conf, render_env, render_model_settings
from deploys.client_plan import validate_client as _validate
from deploys.client_tools import (
    context_mismatches,
    model_metadata,
    render_model_metadata,
    with_model_contexts,
)
from deploys.contexts import (
    CLAUDE_MIN_CONTEXT,
    DEFAULT_CONTEXT,
    claude_context_problems,
    context_for,
    declared_context_problems,
    model_contexts,
    server_context,
)
from deploys.server_plan import validate_server
from operations.ollama import is_warm, warm_body

BASE = "http://192.168.100.10:11434"
CLIENT = {"aider": True, "aider_models": ["qwen2.5-coder:32b", "llama3.2"],
          "claude_code": True, "claude_models": {"default": "qwen3-coder:30b",
                                                 "haiku": "qwen2.5-coder:7b"}}
SERVER = {"ollama_context_length": 65536,
          "ollama_models": ["qwen3-coder:30b", "qwen2.5-coder:7b", "qwen2.5-coder:32b",
                            {"name": "llama3.2", "context_length": 8192, "warm": True}]}


def settings(data: dict = CLIENT):
    s, errors = _validate("alice-mac", data)
    assert errors == [] and s is not None
    return s


def _run_claude_ollama(tmp_path: Path, text: str) -> dict[str, str]:
    env_file = tmp_path / "env.sh"
    env_file.write_text(text)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "claude").write_text("#!/bin/sh\nenv\n")
    (bindir / "claude").chmod(0o755)
    result = subprocess.run(
        ["bash", "-c", f". {env_file}\nPATH={bindir}:$PATH\n"
                       "ANTHROPIC_API_KEY=sk-ant-real DISABLE_TELEMETRY=0 claude-ollama"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_claude_ollama_sends_nothing_but_the_api(tmp_path: Path) -> None:
    got = _run_claude_ollama(tmp_path, render_env(BASE, settings(), claude_offered=True))
    for switch in ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_AUTOUPDATER",
                   "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING", "DISABLE_BUG_COMMAND",
                   "DISABLE_FEEDBACK_COMMAND", "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY"):
        assert got[switch] == "1", switch  # the shell's DISABLE_TELEMETRY=0 does not win
    assert got["ANTHROPIC_API_KEY"] == ""  # never the user's real key
    assert got["ANTHROPIC_AUTH_TOKEN"] == "ollama"  # what Ollama accepts (any bearer)
    declared = {"qwen3-coder:30b", "qwen2.5-coder:7b"}
    roles = ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
             "ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_SMALL_FAST_MODEL",
             "CLAUDE_CODE_SUBAGENT_MODEL")
    assert {got[r] for r in roles} == declared  # no role left to a cloud model name
    assert got["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == got["ANTHROPIC_SMALL_FAST_MODEL"] \
        == "qwen2.5-coder:7b"


def test_api_token_is_every_tools_key(tmp_path: Path) -> None:
    text = render_env(BASE, settings(), claude_offered=True, api_token="tok-123")
    got = _run_claude_ollama(tmp_path, text)
    assert got["ANTHROPIC_AUTH_TOKEN"] == "tok-123" and got["OPENAI_API_KEY"] == "tok-123"
    assert got["OLLAMA_API_KEY"] == "tok-123"  # litellm's ollama_chat/ sends it as Bearer
    assert "OLLAMA_API_KEY" not in render_env(BASE, settings(), claude_offered=True)


def test_aider_conf_is_private() -> None:
    conf = yaml.safe_load(render_aider_conf(BASE, settings(), "/Users/alice"))
    assert conf["analytics-disable"] is True
    assert conf["check-update"] is False and conf["show-release-notes"] is False
    assert conf["detect-urls"] is False  # never scrape a URL named in the chat
    assert "LITELLM_LOCAL_MODEL_COST_MAP=True" in conf["set-env"]
    assert conf["model-metadata-file"] == "/Users/alice/.aider.model.metadata.json"


def test_model_metadata_names_every_aider_model_with_its_context() -> None:
    s = with_model_contexts(settings(), CLIENT, SERVER)
    text = render_model_metadata(s)
    assert text.startswith("// Managed by pyinfra (self-sovereign-ollama")  # our header
    body = json.loads("".join(line for line in text.splitlines(True)
                              if not line.startswith("//")))
    assert body == model_metadata(s)
    assert set(body) == {"ollama_chat/qwen2.5-coder:32b", "ollama_chat/llama3.2"}
    assert body["ollama_chat/qwen2.5-coder:32b"]["max_input_tokens"] == 65536
    assert body["ollama_chat/llama3.2"]["max_input_tokens"] == 8192
    for entry in body.values():
        assert entry["input_cost_per_token"] == entry["output_cost_per_token"] == 0
        assert entry["litellm_provider"] == "ollama_chat" and entry["mode"] == "chat"


# -- one context size per model ---------------------------------------------------------------


def test_context_defaults_and_per_model() -> None:
    assert server_context(None) == server_context({}) == DEFAULT_CONTEXT == 32768
    assert server_context({"ollama_warm_num_ctx": 16384}) == 16384  # the older name
    assert server_context(SERVER) == 65536
    assert model_contexts(SERVER) == {"qwen3-coder:30b": 65536, "qwen2.5-coder:7b": 65536,
                                      "qwen2.5-coder:32b": 65536, "llama3.2:latest": 8192}
    assert context_for("llama3.2:latest", SERVER) == context_for("llama3.2", SERVER) == 8192
    assert context_for("not-declared:1b", SERVER) == 65536


def test_server_writes_the_one_context_everywhere() -> None:
    s, errors = validate_server("ai-server", {**SERVER, "dmz_address": "192.168.100.10"})
    assert errors == [] and s is not None
    assert s.environment()["OLLAMA_CONTEXT_LENGTH"] == "65536"
    s, _ = validate_server("ai-server", {"dmz_address": "192.168.100.10"})
    assert s is not None and s.environment()["OLLAMA_CONTEXT_LENGTH"] == str(DEFAULT_CONTEXT)
    contexts = model_contexts(SERVER)
    assert json.loads(warm_body("llama3.2:latest", -1, contexts))["options"] == {"num_ctx": 8192}
    assert json.loads(warm_body("qwen3-coder:30b", -1, contexts))["options"] == {"num_ctx": 65536}
    loaded = {"name": "llama3.2:latest", "context_length": 8192, "expires_at": "2318-01-01T00:00"}
    assert is_warm(loaded, -1, contexts) and not is_warm(loaded, -1, 65536)


def test_bad_context_length_is_reported() -> None:
    bad = {"ollama_models": [{"name": "x:1", "context_length": "64k"}, {"name": "y:1"}]}
    assert declared_context_problems("ai-server", bad) == [
        "ai-server: ollama_models[0].context_length: '64k' (expected a whole number of "
        "tokens from 256 to 2097152)"]
    assert declared_context_problems("ai-server", SERVER) == []


def test_aider_asks_for_each_models_context() -> None:
    s = with_model_contexts(settings(), CLIENT, SERVER)
    assert {m.name: m.num_ctx for m in s.aider_models} == {"qwen2.5-coder:32b": 65536,
                                                           "llama3.2": 8192}
    assert yaml.safe_load(render_model_settings(s))[1] == {
        "name": "ollama_chat/llama3.2", "extra_params": {"num_ctx": 8192}}
    assert context_mismatches(s, SERVER) == []
    pinned = {**CLIENT, "aider_num_ctx": 4096}
    s = with_model_contexts(settings(pinned), pinned, SERVER)
    assert {m.num_ctx for m in s.aider_models} == {4096}  # the client's own pin wins...
    assert context_mismatches(s, SERVER) == [("qwen2.5-coder:32b", 4096, 65536),
                                             ("llama3.2", 4096, 8192)]  # ...and is named


@pytest.mark.parametrize("server, client, problem", [
    (SERVER, {}, None),
    ({}, {}, "Claude Code would get a context of 32768 tokens, below claude_min_context 65536"),
    ({}, {"claude_min_context": 0}, None),
    ({}, {"claude_min_context": 32768}, None),
    ({"ollama_context_length": 65536,
      "ollama_models": [{"name": "qwen3-coder:30b", "context_length": 131072}]}, {},
     "the server declares context_length 131072 for it, but Claude Code sends no num_ctx"),
    (SERVER, {"claude_min_context": "64k"}, "claude_min_context: '64k' (expected a whole"),
])
def test_claude_needs_its_context(server: dict, client: dict, problem: str | None) -> None:
    problems = claude_context_problems("alice-mac", client, ["qwen3-coder:30b"], server)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]
        assert problems[0].startswith("alice-mac: ")
    assert CLAUDE_MIN_CONTEXT == 65536


def test_api_token_needs_the_proxy() -> None:
    from deploys.api_tokens import token_problems

    assert token_problems("alice-mac", {"api_token": True}, {"proxy": "haproxy"}) == []
    assert token_problems("alice-mac", {}, {}) == []
    assert token_problems("alice-mac", {"api_token": True}, {}) == [
        "alice-mac: api_token: True (needs the server's proxy = 'haproxy': Ollama itself "
        "checks no token)"]
    assert token_problems("alice-mac", {"api_token": "yes"}, {"proxy": "haproxy"}) == [
        "alice-mac: api_token: 'yes' (expected True or False)"]

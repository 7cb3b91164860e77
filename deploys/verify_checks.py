"""The API acceptance suite's checks: what a client of the server's Ollama relies on.

:func:`run_suite` asks the server at ``base_url`` (from the controller, with ``requests``) and
returns one :class:`Result` per check, in a fixed order: ``passed``, ``failed`` (the reason says
what was expected and what came back) or ``skipped`` (the reason says why: the Ollama version
that first offers the feature, no model installed, not in proxy mode, no isolation targets).

Groups: ``native`` (``/api/version``, ``/api/tags``, ``/api/show``), ``openai``
(``/v1/models``, chat, streaming ending in ``[DONE]``, usage in streams, JSON mode, tools,
``/v1/responses``, unknown model, malformed bodies), ``anthropic`` (``/v1/messages``, the SSE
event order, system prompt, multi-turn, tool use, stream usage, error shapes), ``proxy`` (with
``proxy=True``: every endpoint outside HAProxy's allowlist answers 403, the allowlist does not)
and ``isolation`` (TCP connections that must fail from a VPN peer: LAN, router services, other
peers, the internet).

Every request is harmless on a server that does not block it (bodies that Ollama rejects
before doing anything: no pull, delete or generation is ever started by the proxy checks).
Each result keeps the exchanges it checked (``Result.exchanges``) so tests can hand the same
bytes to the official client libraries.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

from deploys.verify_http import (  # noqa: F401 (Exchange, sse: part of this module's API)
    CheckFailed,
    Context,
    Exchange,
    Result,
    Skip,
    _excerpt,
    _short,
    _sse_json,
    expect,
    sse,
)
from deploys.verify_network import (  # noqa: F401 (tcp_connects: part of this API)
    BLOCKED,
    ISOLATION_LABELS,
    _isolated,
    _proxy_blocked,
    proxy_allowed,
    tcp_connects,
)
from facts.ollama import API_MIN_VERSIONS, version_at_least

UNKNOWN_MODEL = "nonexistent-model-xyz"
#: Versions that first offer a feature beyond a route (Ollama's changelog / the exchange corpus).
MIN_INCLUDE_USAGE = "0.5.2"
MIN_OPENAI_TOOLS = "0.3.0"
MIN_JSON_MODE = "0.1.24"
MIN_RESPONSES_FULL = "0.14.2"  # the full Responses object (0.13.3-0.14.1: a minimal one)
MIN_TOOL_STREAM = "0.12.10"  # tool calls streamed with ids
MIN_ANTHROPIC_TOOL_STREAM = "0.18.0"  # before: tool_use blocks streamed with a quirk
TOKEN_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _parsed(text: Any, failure: str) -> Any:
    """``text`` parsed as JSON; a :class:`CheckFailed` saying ``failure`` when it is not."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise CheckFailed(failure) from None


def _counts_tokens(usage: dict[str, Any]) -> bool:
    """Whether an OpenAI ``usage`` object has integer prompt/completion/total token counts."""
    return all(isinstance(usage.get(k), int) for k in TOKEN_COUNTS)


def _finish_reasons(chunks: list[dict[str, Any]]) -> list[Any]:
    """The ``finish_reason`` of every choice of every chunk that has one, in order."""
    return [ch.get("finish_reason") for d in chunks for ch in d.get("choices") or []
            if ch.get("finish_reason")]

# -- native --------------------------------------------------------------------------------


def native_version(c: Context) -> None:
    body = c.json("GET", "/api/version")
    expect(isinstance(body, dict) and isinstance(body.get("version"), str)
           and re.match(r"^\d+\.\d+\.\d+", body["version"]),
           f"/api/version: expected {{\"version\": \"x.y.z\"}}, got {body!r}")


def native_root(c: Context) -> None:
    if c.proxy:
        raise Skip("GET / is blocked in proxy mode (checked there)")
    ex = c.call("GET", "/")
    expect(ex.status == 200 and ex.body == "Ollama is running",
           f"GET /: HTTP {ex.status} {ex.body[:80]!r}, expected 200 'Ollama is running'")


def native_tags(c: Context) -> None:
    body = c.json("GET", "/api/tags")
    models = body.get("models") if isinstance(body, dict) else None
    expect(isinstance(models, list), f"/api/tags: no 'models' list in {str(body)[:200]}")
    for m in models:
        for key in ("name", "model", "modified_at", "size", "digest", "details"):
            expect(key in m, f"/api/tags: model {m.get('name')!r} has no {key!r}")
    if c.model:
        names = {m["name"] for m in models} | {m["model"] for m in models}
        expect(c.model in names or f"{c.model}:latest" in names,
               f"/api/tags: {c.model!r} is not installed (have {sorted(names)})")


def native_show(c: Context) -> None:
    model = c.need_model()
    body = c.json("POST", "/api/show", {"model": model})
    expect(isinstance(body.get("details"), dict), f"/api/show {model}: no 'details' object")
    expect(isinstance(body.get("modelfile"), str), f"/api/show {model}: no 'modelfile'")


def native_show_unknown(c: Context) -> None:
    body = c.json("POST", "/api/show", {"model": UNKNOWN_MODEL}, status=404)
    expect(isinstance(body.get("error"), str) and "not found" in body["error"],
           f"/api/show unknown model: expected {{\"error\": \"... not found\"}}, got {body!r}")


# -- OpenAI-compatible ---------------------------------------------------------------------


def _openai_error(body: Any, what: str) -> None:
    err = body.get("error") if isinstance(body, dict) else None
    expect(isinstance(err, dict) and isinstance(err.get("message"), str)
           and isinstance(err.get("type"), str),
           f"{what}: expected an OpenAI error object {{\"error\": {{\"message\", \"type\"}}}}, "
           f"got {str(body)[:200]}")


def openai_models(c: Context) -> None:
    c.need(API_MIN_VERSIONS["/v1/models"], "/v1/models")
    body = c.json("GET", "/v1/models")
    # no model installed: Ollama answers "data": null (a nil Go slice)
    expect(body.get("object") == "list" and isinstance(body.get("data"), (list, type(None))),
           f"/v1/models: expected {{\"object\": \"list\", \"data\": [...]}}, got {str(body)[:200]}")
    body["data"] = body["data"] or []
    for m in body["data"]:
        expect(m.get("object") == "model" and isinstance(m.get("id"), str)
               and isinstance(m.get("created"), int) and isinstance(m.get("owned_by"), str),
               f"/v1/models: entry without id/object/created/owned_by: {m!r}")
    ids = [m["id"] for m in body["data"]]
    if c.model:
        expect(c.model in ids or f"{c.model}:latest" in ids,
               f"/v1/models: {c.model!r} is not offered (have {ids})")


def openai_model(c: Context) -> None:
    c.need(API_MIN_VERSIONS["/v1/models"], "/v1/models/{model}")
    model = c.need_model()
    body = c.json("GET", f"/v1/models/{model}")
    expect(body.get("object") == "model" and body.get("id") in (model, f"{model}:latest"),
           f"/v1/models/{model}: expected the model object, got {str(body)[:200]}")


def openai_model_unknown(c: Context) -> None:
    c.need(API_MIN_VERSIONS["/v1/models"], "/v1/models/{model}")
    _openai_error(c.json("GET", f"/v1/models/{UNKNOWN_MODEL}", status=404),
                  "/v1/models/<unknown>")


def _chat(c: Context, **extra: Any) -> dict[str, Any]:
    c.need(API_MIN_VERSIONS["/v1/chat/completions"], "/v1/chat/completions")
    return {"model": c.need_model(), "messages": [{"role": "user", "content": "Say hello"}],
            "max_tokens": 32, **extra}


def _completion(body: Any, what: str) -> dict[str, Any]:
    expect(body.get("object") == "chat.completion", f"{what}: object is "
           f"{body.get('object')!r}, expected 'chat.completion'")
    choices = body.get("choices")
    expect(isinstance(choices, list) and choices, f"{what}: no choices")
    msg = choices[0].get("message") or {}
    expect(msg.get("role") == "assistant", f"{what}: message role {msg.get('role')!r}")
    expect(choices[0].get("finish_reason") in ("stop", "length", "tool_calls"),
           f"{what}: finish_reason {choices[0].get('finish_reason')!r}")
    usage = body.get("usage") or {}
    expect(_counts_tokens(usage), f"{what}: usage {usage!r} lacks prompt/completion/total tokens")
    return msg


def openai_chat(c: Context) -> None:
    msg = _completion(c.json("POST", "/v1/chat/completions", _chat(c)), "chat")
    expect(isinstance(msg.get("content"), str) and msg["content"],
           f"chat: empty content in {msg!r}")


def _chunks(c: Context, body: dict[str, Any], what: str) -> list[dict[str, Any]]:
    events = _sse_json(c.call("POST", "/v1/chat/completions", body, stream=True), what)
    expect(events[-1][1] == "[DONE]", f"{what}: the stream does not end with 'data: [DONE]'")
    expect(sum(1 for _, d in events if d == "[DONE]") == 1, f"{what}: more than one [DONE]")
    chunks = [d for _, d in events[:-1]]
    for d in chunks:
        expect(d.get("object") == "chat.completion.chunk",
               f"{what}: a chunk's object is {d.get('object')!r}, expected chat.completion.chunk")
    return chunks


def openai_chat_stream(c: Context) -> None:
    chunks = _chunks(c, _chat(c, stream=True), "chat stream")
    text = "".join((ch.get("delta") or {}).get("content") or ""
                   for d in chunks for ch in d.get("choices") or [])
    expect(text, "chat stream: no content in the deltas")
    expect(_finish_reasons(chunks), "chat stream: no chunk carries a finish_reason")


def openai_chat_stream_usage(c: Context) -> None:
    c.need(MIN_INCLUDE_USAGE, "stream_options.include_usage")
    chunks = _chunks(c, _chat(c, stream=True, stream_options={"include_usage": True}),
                     "chat stream with include_usage")
    last = chunks[-1] if chunks else {}
    expect(_counts_tokens(last.get("usage") or {}),
           f"chat stream with include_usage: the last chunk before [DONE] has no usage: {last!r}")


def openai_json_mode(c: Context) -> None:
    c.need(MIN_JSON_MODE, "response_format json_object")
    ask = 'Reply with the JSON object {"status": "ok"} and nothing else.'
    body = _chat(c, max_tokens=64, response_format={"type": "json_object"},
                 messages=[{"role": "user", "content": ask}])
    msg = _completion(c.json("POST", "/v1/chat/completions", body), "JSON mode")
    value = _parsed(msg.get("content") or "", f"JSON mode: content is not JSON: "
                    f"{msg.get('content')!r}")
    expect(isinstance(value, dict), f"JSON mode: content is not a JSON object: {value!r}")


WEATHER_OPENAI = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
WEATHER_QUESTION = "What is the weather in Paris? Use the get_weather tool."


def openai_tools(c: Context) -> None:
    c.need(MIN_OPENAI_TOOLS, "tools on /v1/chat/completions")
    body = _chat(c, max_tokens=128, tools=[WEATHER_OPENAI],
                 messages=[{"role": "user", "content": WEATHER_QUESTION}])
    msg = _completion(c.json("POST", "/v1/chat/completions", body), "tools")
    calls = msg.get("tool_calls") or []
    expect(calls, f"tools: the model did not call get_weather: {msg!r}")
    call = calls[0]
    fn = call.get("function") or {}
    expect(call.get("type") == "function" and fn.get("name") == "get_weather",
           f"tools: expected a function call of get_weather, got {call!r}")
    args = _parsed(fn.get("arguments") or "", f"tools: arguments are not a JSON string: {fn!r}")
    expect(isinstance(args, dict), f"tools: arguments are not an object: {args!r}")


def openai_tools_stream(c: Context) -> None:
    c.need(MIN_TOOL_STREAM, "streamed tool calls")
    body = _chat(c, max_tokens=128, stream=True, tools=[WEATHER_OPENAI],
                 messages=[{"role": "user", "content": WEATHER_QUESTION}])
    chunks = _chunks(c, body, "tools stream")
    calls = [tc for d in chunks for ch in d.get("choices") or []
             for tc in (ch.get("delta") or {}).get("tool_calls") or []]
    expect(calls, "tools stream: no tool_calls in the deltas")
    fn = calls[0].get("function") or {}
    expect(fn.get("name") == "get_weather" and isinstance(calls[0].get("id"), str),
           f"tools stream: expected an identified get_weather call, got {calls[0]!r}")
    reasons = _finish_reasons(chunks)
    expect(reasons and reasons[-1] == "tool_calls",
           f"tools stream: finish_reason {reasons[-1:]}, expected 'tool_calls'")


def openai_responses(c: Context) -> None:
    c.need(API_MIN_VERSIONS["/v1/responses"], "/v1/responses")
    body = c.json("POST", "/v1/responses", {"model": c.need_model(), "input": "Say hello",
                                            "max_output_tokens": 32})
    expect(body.get("object") == "response", f"/v1/responses: object {body.get('object')!r}")
    if c.version is None or version_at_least(c.version, MIN_RESPONSES_FULL) is not False:
        expect(body.get("status") == "completed", f"/v1/responses: status {body.get('status')!r}")
    texts = [part.get("text") for item in body.get("output") or []
             if item.get("type") == "message" for part in item.get("content") or []
             if part.get("type") == "output_text"]
    expect(any(texts), f"/v1/responses: no output_text in {str(body.get('output'))[:200]}")


def openai_responses_stream(c: Context) -> None:
    c.need(MIN_RESPONSES_FULL, "the /v1/responses stream")
    what = "/v1/responses stream"
    ex = c.call("POST", "/v1/responses", {"model": c.need_model(), "input": "Say hello",
                                          "max_output_tokens": 32, "stream": True}, stream=True)
    events = _sse_json(ex, what)
    names = [n for n, _ in events]
    expect("[DONE]" not in [d for _, d in events], f"{what}: a Responses stream has no [DONE]")
    expect(names[0] == "response.created" and names[-1] == "response.completed",
           f"{what}: expected response.created ... response.completed, got {names}")
    for name, data in events:
        expect(data.get("type") == name, f"{what}: event {name!r} carries type "
               f"{data.get('type')!r}")
    expect("response.output_text.delta" in names, f"{what}: no response.output_text.delta")
    seq = [d.get("sequence_number") for _, d in events]
    expect(seq == list(range(len(seq))), f"{what}: sequence_number is not 0, 1, 2, ...: {seq}")


def openai_unknown_model(c: Context) -> None:
    c.need(API_MIN_VERSIONS["/v1/chat/completions"], "/v1/chat/completions")
    body = {"model": UNKNOWN_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    _openai_error(c.json("POST", "/v1/chat/completions", body, status=404),
                  "chat with an unknown model")


def openai_malformed(c: Context) -> None:
    c.need(API_MIN_VERSIONS["/v1/chat/completions"], "/v1/chat/completions")
    _openai_error(c.json("POST", "/v1/chat/completions", {"invalid": "json", "no": "model"},
                         status=400), "chat without a model")
    ex = c.call("POST", "/v1/chat/completions", raw=b"{not json")
    expect(ex.status == 400, f"chat with a body that is not JSON: HTTP {ex.status}, expected 400")
    _openai_error(_parsed(ex.body, f"chat with a body that is not JSON: answer is not JSON"
                          f"{_excerpt(ex.body)}"), "chat with a body that is not JSON")


# -- Anthropic-compatible ------------------------------------------------------------------

ANTHROPIC_HEADERS = {"x-api-key": "ollama", "anthropic-version": "2023-06-01"}
STREAM_ORDER = ("message_start", "content_block_start", "content_block_delta",
                "content_block_stop", "message_delta", "message_stop")


def _messages(c: Context, **extra: Any) -> dict[str, Any]:
    c.need(API_MIN_VERSIONS["/v1/messages"], "/v1/messages")
    return {"model": c.need_model(), "max_tokens": 32,
            "messages": [{"role": "user", "content": "Say hello"}], **extra}


def _message(c: Context, body: dict[str, Any], what: str) -> dict[str, Any]:
    msg = c.json("POST", "/v1/messages", body, headers=ANTHROPIC_HEADERS)
    expect(msg.get("type") == "message" and msg.get("role") == "assistant",
           f"{what}: expected type 'message', role 'assistant', got {str(msg)[:200]}")
    expect(isinstance(msg.get("id"), str) and msg["id"].startswith("msg_"),
           f"{what}: id {msg.get('id')!r} is not msg_...")
    expect(isinstance(msg.get("content"), list) and msg["content"], f"{what}: no content blocks")
    expect(msg.get("stop_reason") in ("end_turn", "max_tokens", "tool_use", "stop_sequence"),
           f"{what}: stop_reason {msg.get('stop_reason')!r}")
    usage = msg.get("usage") or {}
    expect(isinstance(usage.get("input_tokens"), int)
           and isinstance(usage.get("output_tokens"), int), f"{what}: usage {usage!r}")
    return msg


def _text(msg: dict[str, Any], what: str) -> None:
    texts = [b.get("text") for b in msg["content"] if b.get("type") == "text"]
    expect(any(isinstance(t, str) and t for t in texts), f"{what}: no text block")


def anthropic_messages(c: Context) -> None:
    _text(_message(c, _messages(c), "/v1/messages"), "/v1/messages")


def _stream_events(c: Context, what: str) -> list[tuple[str | None, Any]]:
    ex = c.call("POST", "/v1/messages", _messages(c, stream=True), stream=True,
                headers=ANTHROPIC_HEADERS)
    events = _sse_json(ex, what)
    for name, data in events:
        expect(data != "[DONE]", f"{what}: an Anthropic stream has no [DONE]")
        expect(isinstance(data, dict) and name == data.get("type"),
               f"{what}: event {name!r} carries data of type {data.get('type')!r}")
    return events


def anthropic_stream_order(c: Context) -> None:
    what = "/v1/messages stream"
    names = [n for n, _ in _stream_events(c, what) if n != "ping"]
    expect(names and names[0] == "message_start", f"{what}: first event is {names[:1]}, "
           "expected message_start")
    expect(names[-1] == "message_stop", f"{what}: last event is {names[-1:]}, "
           "expected message_stop")
    expect(names[-2] == "message_delta", f"{what}: message_delta must come just before "
           f"message_stop: {names}")
    open_block = False
    for name in names[1:-2]:
        if name == "content_block_start":
            expect(not open_block, f"{what}: a block starts inside another: {names}")
            open_block = True
        elif name == "content_block_delta":
            expect(open_block, f"{what}: content_block_delta outside a block: {names}")
        elif name == "content_block_stop":
            expect(open_block, f"{what}: content_block_stop without a start: {names}")
            open_block = False
        else:
            raise CheckFailed(f"{what}: unexpected {name!r} between message_start and "
                              f"message_delta: {names}")
    expect(not open_block, f"{what}: a content block is never stopped: {names}")
    expect("content_block_delta" in names, f"{what}: no content_block_delta")


def anthropic_stream_usage(c: Context) -> None:
    what = "/v1/messages stream usage"
    events = dict((n, d) for n, d in _stream_events(c, what))
    start = (events.get("message_start") or {}).get("message") or {}
    expect(isinstance((start.get("usage") or {}).get("input_tokens"), int),
           f"{what}: message_start has no usage.input_tokens")
    delta = events.get("message_delta") or {}
    expect(isinstance((delta.get("usage") or {}).get("output_tokens"), int),
           f"{what}: message_delta has no usage.output_tokens")


def anthropic_system(c: Context) -> None:
    for system in ("You are helpful.", [{"type": "text", "text": "You are helpful."}]):
        _text(_message(c, _messages(c, system=system), "system prompt"), "system prompt")


def anthropic_multi_turn(c: Context) -> None:
    body = _messages(c, messages=[
        {"role": "user", "content": "My name is Alice."},
        {"role": "assistant", "content": "Nice to meet you, Alice."},
        {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]}])
    _text(_message(c, body, "multi-turn"), "multi-turn")


WEATHER_ANTHROPIC = {"name": "get_weather", "description": "Get the current weather for a city",
                     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                      "required": ["city"]}}


def anthropic_tool_use(c: Context) -> None:
    body = _messages(c, max_tokens=128, tools=[WEATHER_ANTHROPIC],
                     messages=[{"role": "user", "content": WEATHER_QUESTION}])
    msg = _message(c, body, "tool use")
    uses = [b for b in msg["content"] if b.get("type") == "tool_use"]
    expect(uses, f"tool use: no tool_use block in {msg['content']!r}")
    use = uses[0]
    expect(use.get("name") == "get_weather" and isinstance(use.get("input"), dict)
           and isinstance(use.get("id"), str), f"tool use: malformed tool_use block {use!r}")
    expect(msg.get("stop_reason") == "tool_use",
           f"tool use: stop_reason {msg.get('stop_reason')!r}, expected 'tool_use'")


def anthropic_tool_use_stream(c: Context) -> None:
    c.need(MIN_ANTHROPIC_TOOL_STREAM, "streamed tool_use blocks")
    what = "/v1/messages tool use stream"
    ex = c.call("POST", "/v1/messages", _messages(
        c, max_tokens=128, stream=True, tools=[WEATHER_ANTHROPIC],
        messages=[{"role": "user", "content": WEATHER_QUESTION}]),
        stream=True, headers=ANTHROPIC_HEADERS)
    events = _sse_json(ex, what)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"
              and (d.get("content_block") or {}).get("type") == "tool_use"]
    expect(starts and starts[0].get("name") == "get_weather",
           f"{what}: no tool_use block for get_weather")
    partial = "".join((d.get("delta") or {}).get("partial_json") or "" for n, d in events
                      if n == "content_block_delta")
    expect(isinstance(_parsed(partial, f"{what}: input_json_delta pieces are not JSON: "
                              f"{partial!r}"), dict), f"{what}: input is not an object")
    delta = next((d for n, d in events if n == "message_delta"), {})
    expect((delta.get("delta") or {}).get("stop_reason") == "tool_use",
           f"{what}: message_delta stop_reason is not 'tool_use': {delta!r}")


def _anthropic_error(body: Any, kind: str, what: str) -> None:
    err = body.get("error") if isinstance(body, dict) else None
    expect(isinstance(body, dict) and body.get("type") == "error" and isinstance(err, dict)
           and err.get("type") == kind and isinstance(err.get("message"), str),
           f"{what}: expected {{\"type\": \"error\", \"error\": {{\"type\": \"{kind}\", "
           f"\"message\"}}}}, got {str(body)[:200]}")


def anthropic_errors(c: Context) -> None:
    c.need(API_MIN_VERSIONS["/v1/messages"], "/v1/messages")
    body = {"model": UNKNOWN_MODEL, "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}
    _anthropic_error(c.json("POST", "/v1/messages", body, status=404,
                            headers=ANTHROPIC_HEADERS), "not_found_error", "unknown model")
    body = {"model": c.model or UNKNOWN_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    _anthropic_error(c.json("POST", "/v1/messages", body, status=400,
                            headers=ANTHROPIC_HEADERS), "invalid_request_error",
                     "missing max_tokens")



Check = tuple[str, str, str, Callable[[Context], None]]


def _group(group: str, *checks: tuple[str, str, Callable[[Context], None]]) -> list[Check]:
    """The rows of one group: ``(name, text, function)`` -> ``("<group>.<name>", group, text,
    function)``."""
    return [(f"{group}.{name}", group, text, fn) for name, text, fn in checks]


#: (id, group, name, function), in the order they run.
CHECKS: list[Check] = [
    *_group("native",
        ("version", "GET /api/version answers a version", native_version),
        ("root", "GET / answers 'Ollama is running'", native_root),
        ("tags", "GET /api/tags lists the models", native_tags),
        ("show", "POST /api/show describes the model", native_show),
        ("show_unknown", "POST /api/show of an unknown model is 404", native_show_unknown)),
    *_group("openai",
        ("models", "GET /v1/models lists the models", openai_models),
        ("model", "GET /v1/models/{model} retrieves it", openai_model),
        ("model_unknown", "GET /v1/models/{unknown} is a 404 error object",
         openai_model_unknown),
        ("chat", "chat completion", openai_chat),
        ("chat_stream", "chat stream: chunks, then data: [DONE]", openai_chat_stream),
        ("chat_stream_usage", "chat stream with include_usage: usage last",
         openai_chat_stream_usage),
        ("json_mode", "JSON mode answers a JSON object", openai_json_mode),
        ("tools", "tools: a get_weather function call", openai_tools),
        ("tools_stream", "tools stream: a get_weather call in the deltas", openai_tools_stream),
        ("responses", "POST /v1/responses (Responses API body)", openai_responses),
        ("responses_stream", "/v1/responses stream: created ... completed",
         openai_responses_stream),
        ("unknown_model", "chat with an unknown model is a 404 error object",
         openai_unknown_model),
        ("malformed", "malformed bodies are 400 error objects", openai_malformed)),
    *_group("anthropic",
        ("messages", "POST /v1/messages", anthropic_messages),
        ("stream_order", "stream: the SSE event order", anthropic_stream_order),
        ("stream_usage", "stream: usage in message_start and message_delta",
         anthropic_stream_usage),
        ("system", "system prompt (string and blocks)", anthropic_system),
        ("multi_turn", "multi-turn conversation", anthropic_multi_turn),
        ("tool_use", "tool use: a tool_use block", anthropic_tool_use),
        ("tool_use_stream", "tool use stream: tool_use block, input JSON",
         anthropic_tool_use_stream),
        ("errors", "error shapes (unknown model 404, missing max_tokens 400)", anthropic_errors)),
    *_group("proxy",
        *[(f"blocked_{i}", f"blocked: {what}", _proxy_blocked(paths))
          for i, (what, paths) in enumerate(BLOCKED.items(), 1)],
        ("allowed", "the allowlist is not blocked", proxy_allowed)),
    *_group("isolation", *[(label, f"{label} unreachable", _isolated(label))
                           for label in ISOLATION_LABELS]),
]


def _first_model(c: Context) -> str | None:
    for path, key, name in (("/v1/models", "data", "id"), ("/api/tags", "models", "name")):
        try:
            resp = c.session.get(c.base_url + path, timeout=c.timeout)
            items = resp.json().get(key) or []
        except (requests.RequestException, ValueError, AttributeError):
            continue
        if resp.status_code == 200:
            return items[0][name] if items else None
    return None


def run_suite(base_url: str, *, model: str | None = None, proxy: bool = False,
              isolate: Iterable[tuple[str, str, int]] = (), timeout: float = 120.0,
              only: Iterable[str] | None = None,
              progress: Callable[[Result], None] | None = None,
              proxy_allows: Iterable[str] = ()) -> list[Result]:
    """Run every check against ``base_url`` (``http://host:port``, no trailing ``/v1``);
    ``proxy_allows``: endpoints the proxy forwards for the clients' tools (not checked 403)."""
    session = requests.Session()
    session.trust_env = False  # never through an HTTP proxy of the environment
    c = Context(base_url.rstrip("/"), timeout, model, None, proxy, list(isolate), session,
                proxy_allows=frozenset(proxy_allows))
    try:
        version = session.get(c.base_url + "/api/version", timeout=min(timeout, 10.0)).json()
        c.version = version.get("version") if isinstance(version, dict) else None
    except (requests.RequestException, ValueError):
        c.version = None
    unreachable = None
    if c.version is None:
        try:
            session.get(c.base_url + "/", timeout=min(timeout, 10.0))
        except requests.RequestException as err:
            unreachable = f"no answer from {c.base_url} ({_short(err)})"
    if c.model is None and unreachable is None:
        c.model = _first_model(c)
    wanted = set(only) if only is not None else None
    results = []
    for cid, group, name, fn in CHECKS:
        if wanted is not None and cid not in wanted and group not in wanted:
            continue
        c.exchanges = []
        started = time.monotonic()
        try:
            if unreachable and group != "isolation":
                raise CheckFailed(unreachable)
            fn(c)
            status, reason = "passed", ""
        except CheckFailed as err:
            status, reason = "failed", str(err)
        except Skip as err:
            status, reason = "skipped", str(err)
        result = Result(cid, group, name, status, reason, round(time.monotonic() - started, 3),
                        c.exchanges)
        results.append(result)
        if progress:
            progress(result)
    session.close()
    return results

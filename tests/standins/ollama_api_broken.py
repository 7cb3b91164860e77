#!/usr/bin/env python3
"""TEST STAND-IN: a deliberately BROKEN Ollama API, to prove the acceptance suite notices.

:class:`BrokenOllamaStandIn` is the Ollama API stand-in (``tests/standins/ollama_api.py``)
with chosen faults layered over its answers (it never changes the stand-in itself):

``no_done``            OpenAI chat streams end without ``data: [DONE]``
``sse_order``          Anthropic streams send ``content_block_start`` before ``message_start``
``unknown_model_200``  a chat with an unknown model answers 200 with a completion
``anthropic_error``    Anthropic errors come back in OpenAI's shape (``{"error": {...}}``)
``no_stream_usage``    ``include_usage`` streams carry no usage chunk

CLI: ``python3 tests/standins/ollama_api_broken.py --port 11434 --break no_done,sse_order``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.standins.ollama_api import (  # noqa: E402
    OllamaStandIn,
    Reply,
    gin_json,
    go_bytes,
)

FAULTS = ("no_done", "sse_order", "unknown_model_200", "anthropic_error", "no_stream_usage")


class BrokenOllamaStandIn(OllamaStandIn):
    """The stand-in with ``faults`` (a subset of :data:`FAULTS`) applied to its replies."""

    def __init__(self, *args: Any, faults: tuple[str, ...] | list[str] = FAULTS,
                 **kwargs: Any) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
        self.faults = frozenset(faults)
        super().__init__(*args, **kwargs)

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Reply:
        reply = super().handle(method, raw_path, headers, body)
        path = raw_path.split("?", 1)[0]
        if method != "POST":
            return reply
        if path == "/v1/chat/completions":
            if reply.status == 404 and "unknown_model_200" in self.faults:
                return gin_json(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                    "model": _model(body), "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Hello"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
            if reply.chunks is not None:
                reply.chunks = self._openai_chunks(reply.chunks)
        elif path == "/v1/messages":
            if reply.status >= 400 and "anthropic_error" in self.faults:
                err = json.loads(reply.body)
                reply.body = go_bytes({"error": {"message": err["error"]["message"],
                                                 "type": "api_error", "param": None,
                                                 "code": None}})
            if reply.chunks is not None and "sse_order" in self.faults:
                reply.chunks = _swap_first_two(reply.chunks)
        return reply

    def _openai_chunks(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for piece in chunks:
            if b"data: [DONE]" in piece and "no_done" in self.faults:
                continue
            if b'"usage"' in piece and b'"choices":[]' in piece \
                    and "no_stream_usage" in self.faults:
                continue
            yield piece


def _model(body: bytes) -> str:
    try:
        return str(json.loads(body).get("model"))
    except (ValueError, AttributeError):
        return ""


def _swap_first_two(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``message_start`` comes after the first ``content_block_start``."""
    held = None
    for piece in chunks:
        if held is None and piece.startswith(b"event: message_start"):
            held = piece
            continue
        yield piece
        if held is not None and piece.startswith(b"event: content_block_start"):
            yield held
            held = b""
    if held:
        yield held


def main(argv: list[str] | None = None) -> int:
    from tests.standins.ollama_api import _Handler, _Server

    parser = argparse.ArgumentParser(description="BROKEN Ollama HTTP API TEST STAND-IN")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--models", default='["llama3.2"]', help="JSON list of models")
    parser.add_argument("--break", dest="faults", default=",".join(FAULTS),
                        help=f"comma-separated faults: {', '.join(FAULTS)}")
    args = parser.parse_args(argv)
    standin = BrokenOllamaStandIn(args.host, args.port, models=json.loads(args.models),
                                  faults=[f for f in args.faults.split(",") if f])
    server = _Server((args.host, args.port), _Handler)
    server.standin = standin
    print(f"Listening on {args.host}:{server.server_address[1]} [BROKEN Ollama TEST STAND-IN]",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A scripted OpenAI-compatible model on 127.0.0.1: /v1/chat/completions answers with
streamed tool calls or text, chosen by a script per conversation."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = dict[str, Any]
"""{"tool": name, "args": {...}} or {"text": "..."}."""
Script = Callable[[list[dict[str, Any]]], Step]


def user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the conversation's first user message."""
    for message in messages:
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


def tool_results(messages: list[dict[str, Any]]) -> list[str]:
    results = []
    for message in messages:
        if message.get("role") == "tool":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            results.append(str(content))
    return results


def steps(*sequence: Step | Callable[[list[str]], Step]) -> Script:
    """A script that takes the next step after each tool result; a step may be a function
    of the tool results so far (to use an id an earlier tool returned)."""

    def script(messages: list[dict[str, Any]]) -> Step:
        results = tool_results(messages)
        if len(results) >= len(sequence):
            return {"text": "finished"}
        step = sequence[len(results)]
        return step(results) if callable(step) else step

    return script


@dataclass
class ScriptedModel:
    scripts: dict[str, Script]
    """By a phrase of the first user message."""
    port: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def provider_config(self) -> dict[str, Any]:
        return {
            "scripted": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Scripted",
                "options": {"baseURL": self.base_url, "apiKey": "test"},
                "models": {"m": {"name": "Scripted model", "tool_call": True}},
            }
        }

    def answer(self, body: dict[str, Any]) -> Step:
        messages = body.get("messages", [])
        self.seen.append(body)
        if not body.get("tools"):
            return {"text": "A title"}
        text = user_text(messages)
        for phrase, script in self.scripts.items():
            if phrase in text:
                return script(messages)
        return {"text": f"no script for {text[:80]!r}"}


def _chunks(step: Step) -> Iterator[dict[str, Any]]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    if "tool" in step:
        call = {
            "index": 0,
            "id": f"call_{abs(hash(json.dumps(step, sort_keys=True))) % 10**8}",
            "type": "function",
            "function": {"name": step["tool"], "arguments": json.dumps(step["args"])},
        }
        delta: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        finish = "tool_calls"
    else:
        delta = {"role": "assistant", "content": step["text"]}
        yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        finish = "stop"
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    yield {**base, "choices": [], "usage": usage}


def _handler(model: ScriptedModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self.path.endswith("/chat/completions"):
                self.send_error(404)
                return
            step = model.answer(body)
            payload = b"".join(
                b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in _chunks(step)
            )
            payload += b"data: [DONE]\n\n"
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@contextmanager
def serving(model: ScriptedModel) -> Iterator[ScriptedModel]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(model))
    model.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

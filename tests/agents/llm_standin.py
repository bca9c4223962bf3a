"""An OpenAI-compatible chat server on 127.0.0.1 standing in for the LLM in agent turns.

litellm (the framework's LLM client) takes an ``api_base``: pointed here, a real agent turn
runs end to end with nothing leaving the machine. Each reply names how many messages the
request carried and echoes the last user message, and every request is recorded, so a test
can check what the model was sent. ``python tests/agents/llm_standin.py PORT`` runs it
alone (the docs' examples start it so).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["StandInLLM", "reply_to"]


def reply_to(messages: list[dict[str, Any]]) -> str:
    """The stand-in's answer to a request of ``messages``."""
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
    content = last.get("content")
    if isinstance(content, list):  # content parts
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return f"reply to {content!r} after {len(messages)} messages"


class StandInLLM:
    """The server, on a thread; ``requests`` holds each request body as sent."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                standin.requests.append(body)
                text = reply_to(body.get("messages", []))
                if body.get("stream"):
                    self._stream(body, text)
                else:
                    self._send(
                        200,
                        {
                            "id": f"chatcmpl-{len(standin.requests)}",
                            "object": "chat.completion",
                            "created": int(time.time()),
                            "model": body.get("model", "standin"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                        },
                    )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                words = text.split(" ")
                for i, word in enumerate(words):
                    delta: dict[str, Any] = {"content": word + (" " if i < len(words) - 1 else "")}
                    if i == 0:
                        delta["role"] = "assistant"
                    self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}, body)
                self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, body)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, chunk: dict[str, Any], body: dict[str, Any]) -> None:
                chunk.update(
                    id=f"chatcmpl-{len(standin.requests)}",
                    object="chat.completion.chunk",
                    created=int(time.time()),
                    model=body.get("model", "standin"),
                )
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        """What an LLM config's ``api_base`` names."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> StandInLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":
    with StandInLLM(int(sys.argv[1]) if len(sys.argv) > 1 else 0) as server:
        print(server.api_base, flush=True)
        threading.Event().wait()

"""What the three-tier policy tests share beside their fixtures: the namespace, the keys,
and a fake frontier API that answers only with the key it currently expects."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NS = "routing"
FIRST_KEY = "sk-canary-first-0b1c2d3e4f"
SECOND_KEY = "sk-canary-second-5a6b7c8d9e"


class Frontier:
    """A fake external API: 200 for the expected key, 401 otherwise; records keys seen."""

    def __init__(self) -> None:
        self.expected = FIRST_KEY
        self.seen: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                owner.seen.append(key)
                if key != owner.expected:
                    self._send(401, {"error": {"message": "bad key", "type": "auth_error"}})
                    return
                self._send(200, _completion(body.get("model", "frontier")))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-frontier",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "a careful proof"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }

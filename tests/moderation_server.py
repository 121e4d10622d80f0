"""A small HTTP server on localhost speaking two OpenAI endpoints a safety
checker calls: ``POST /v1/moderations`` (scores set by the words of the
input) and ``POST /v1/chat/completions`` answered the way a Llama Guard
model does. It is the network boundary of llmapp's remote checkers, for the
tests; the requests it received are kept in ``requests``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENAI_CATEGORIES = ["harassment", "harassment/threatening", "hate", "hate/threatening",
                     "illicit", "illicit/violent", "self-harm", "self-harm/intent",
                     "self-harm/instructions", "sexual", "sexual/minors", "violence",
                     "violence/graphic"]


def moderation(text: str) -> dict:
    scores = {c: 0.001 for c in OPENAI_CATEGORIES}
    if "grenade" in text.lower():
        scores["illicit/violent"] = 0.97
    flagged = {c: s > 0.5 for c, s in scores.items()}
    return {"id": "modr-test", "model": "omni-moderation-latest",
            "results": [{"flagged": any(flagged.values()), "categories": flagged,
                         "category_scores": scores,
                         "category_applied_input_types": {c: ["text"] for c in scores}}]}


def guard_answer(text: str) -> str:
    if "gibberish" in text.lower():
        return "I am not sure what you mean."
    return "unsafe\nS10" if "grenade" in text.lower() else "safe"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))
        if self.path.endswith("/moderations"):
            text = body["input"] if isinstance(body["input"], str) else body["input"][0]
            reply = moderation(text)
        elif self.path.endswith("/chat/completions"):
            answer = guard_answer(body["messages"][-1]["content"])
            reply = {"id": "c", "object": "chat.completion", "created": 0,
                     "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": answer}}]}
        else:
            self.send_error(404)
            return
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start() -> ThreadingHTTPServer:
    """Serve on a free loopback port; ``server.url`` is its ``/v1`` base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.requests = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

"""A local fake of the Gemini REST `generateContent` endpoint (stdlib only), for tests and benchmarks.

The model name picks the behaviour, so parallel requests need no shared switches:
  ...-429once  429 RESOURCE_EXHAUSTED with RetryInfo retryDelay "1s" on the first call, then success
  ...-429      always 429 with retryDelay "30s" (quota gone for a while)
  ...-500      always 500 INTERNAL
  ...-slow     answers after `slow_seconds` (longer than the client's timeout)
  ...-badenum  success, but priority and one skill outside the enums
  ...-garbage  success with a text part that is not JSON
  anything else: success with `answer` as JSON, after `latency` seconds
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ROUTE = re.compile(r"^/(v1beta|v1)/models/([^/:]+):generateContent$")
DEFAULT_ANSWER = {
    "category": "billing",
    "priority": "high",
    "required_skills": ["payments", "refunds"],
    "language": "en",
    "summary": "Customer was charged twice for the March invoice.",
    "helpful_notes": "Compare the two card transactions; refund the duplicate.",
    "injection_suspected": False,
    "confidence": {"category": 0.93, "priority": 0.81, "required_skills": 0.77},
}


class FakeGemini:
    """Serves on 127.0.0.1 in a daemon thread; `requests` holds every call (model, body, api key)."""

    def __init__(self, latency: float = 0.0, slow_seconds: float = 3.0) -> None:
        self.latency, self.slow_seconds = latency, slow_seconds
        self.answer: dict = dict(DEFAULT_ANSWER)
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def hits(self, model: str) -> int:
        return sum(1 for r in self.requests if r["model"] == model)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                route = _ROUTE.match(self.path.split("?", 1)[0])
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if route is None:
                    return self._reply(404, _error(404, "NOT_FOUND", f"no route {self.path}"))
                model = route.group(2)
                with fake._lock:
                    fake.requests.append({"model": model, "body": body, "api_key": self.headers.get("x-goog-api-key")})
                    calls = sum(1 for r in fake.requests if r["model"] == model)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._answer(model, calls)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _answer(self, model: str, calls: int) -> None:
                if model.endswith("-429") or (model.endswith("-429once") and calls == 1):
                    delay = "30s" if model.endswith("-429") else "1s"
                    error = _error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.")
                    error["error"]["details"] = [
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
                    ]
                    return self._reply(429, error)
                if model.endswith("-500"):
                    return self._reply(500, _error(500, "INTERNAL", "An internal error has occurred."))
                if model.endswith("-slow"):
                    time.sleep(fake.slow_seconds)
                time.sleep(fake.latency)
                answer = dict(fake.answer)
                if model.endswith("-badenum"):
                    answer.update(priority="critical", required_skills=["payments", "root-access"])
                text = "this is not json {" if model.endswith("-garbage") else json.dumps(answer)
                self._reply(200, _success(model, text))

            def _reply(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        return Handler


def _error(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "status": status, "message": message}}


def _success(model: str, text: str) -> dict:
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 45, "totalTokenCount": 165},
        "modelVersion": model,
    }

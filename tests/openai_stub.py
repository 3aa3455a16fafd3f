"""A scripted OpenAI-compatible server on 127.0.0.1, for tests of the real model path.

stdlib only (``http.server`` in a thread, random port). It answers
``POST /v1/chat/completions`` (plain JSON or ``stream: true`` SSE ending with a
usage chunk when ``stream_options.include_usage`` is set) and ``POST /v1/embeddings``.

Requests are classified by what they carry: the meta agent's prompts start their
user message with ``### TASK: analyze|write|repair``; the acting agent's carry
``Admissible actions:``; anything else is a design-internal ``llm()`` call
(``design``). Each kind has a script (a queue) of answers; an answer is a string
(the assistant's text) or a directive: :class:`Fail` (an HTTP error status),
:class:`Hang` (sleep, then answer: a client timeout), :class:`Drop` (close the
connection without a response). When a kind's script is empty the default answer
is used: a valid analysis, a module with :data:`MARKER`, or for the agent the
offline policy's choice on the received chat.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MARKER = "STUB_SERVER_DESIGN_MARKER"

ANALYSIS = {
    "lessons_from_previous": "first analysis from the stub server",
    "trajectory_assessments": [
        {"task_id": "t1", "memory_label": "Potentially Useful", "how_it_could_help": "shows the route"}
    ],
    "content_quality_issues": ["trajectories are long"],
    "structure_issues": [],
    "suggested_changes": [
        {"priority": 1, "what": "store only the successful action sequence", "why": "shorter, more useful"}
    ],
    "title_hint": "successful routes",
}

DESIGN_CODE = f'''"""Successful routes: remember the actions of successful episodes per goal. {MARKER}"""

from alma_tui.design_api import Episode, MemoryDesign, Query


class SuccessfulRoutes(MemoryDesign):
    MARK = "{MARKER}"

    def __init__(self, services):
        super().__init__(services)
        self.routes = {{}}

    def update(self, episode: Episode) -> None:
        if episode.success:
            self.routes[episode.goal] = [s.action for s in episode.steps][:20]

    def retrieve(self, query: Query) -> str:
        actions = self.routes.get(query.goal)
        if not actions:
            return ""
        return "A past success on this goal took: " + " ; ".join(actions)

    def snapshot(self) -> dict:
        return {{"routes": len(self.routes)}}
'''

#: A design that passes loading but crashes on its first update (for repair tests).
BROKEN_CODE = DESIGN_CODE.replace(
    "        if episode.success:", "        raise ValueError('broken on purpose')\n        if episode.success:"
)


@dataclass
class Fail:
    status: int = 429
    retry_after: float | None = None
    message: str = "scripted failure"


@dataclass
class Hang:
    seconds: float = 5.0


@dataclass
class Drop:
    pass


@dataclass
class Recorded:
    path: str
    kind: str
    body: dict
    headers: dict
    answered: str = ""
    at: float = field(default_factory=time.time)


def fenced(code: str, title: str = "Successful routes") -> str:
    return f"TITLE: {title}\n\n```python\n{code}```\n"


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _kind(messages: list[dict]) -> str:
    text = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
    for task in ("analyze", "write", "repair"):
        if f"### TASK: {task}" in text:
            return task
    if "Admissible actions:" in text:
        return "agent"
    return "design"


#: OpenAI's automatic prompt caching: prefixes of at least 1024 tokens, matched in 128-token steps
CACHE_MIN_TOKENS = 1024
CACHE_STEP_TOKENS = 128


def _prompt_text(model: str, messages: list[dict]) -> str:
    parts = [model]
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):  # content blocks (cache-marked): their text, markers aside
            content = "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
        parts.append(f"{m.get('role')}:{content or ''}")
    return "\n".join(parts)


class StubServer:
    """``with StubServer() as s: ... s.base_url`` ("http://127.0.0.1:PORT/v1").

    Like OpenAI it caches prompt prefixes on its own: a request whose first 1024+ tokens
    (``len // 4``) were the start of an earlier request's prompt reports them, in 128-token steps,
    as ``usage.prompt_tokens_details.cached_tokens``.
    """

    def __init__(self, reasoning_tokens: int = 7) -> None:
        self.scripts: dict[str, deque] = {k: deque() for k in ("analyze", "write", "repair", "agent", "design")}
        self.requests: list[Recorded] = []
        self.reasoning_tokens = reasoning_tokens
        self.down = False  # every request fails with 503 while set
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._prefixes: set[bytes] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting --------------------------------------------------------------------------
    def script(self, kind: str, *answers: Any) -> None:
        with self._lock:
            self.scripts[kind].extend(answers)

    def kinds(self) -> list[str]:
        return [r.kind for r in self.requests]

    def default_answer(self, kind: str, messages: list[dict]) -> str:
        if kind == "analyze":
            return json.dumps(ANALYSIS)
        if kind in ("write", "repair"):
            return fenced(DESIGN_CODE)
        if kind == "agent":
            from alma_tui.offline.policy import choose_action

            return choose_action(messages, 0)
        return "a short note from the stub"

    def cached_tokens(self, text: str) -> int:
        """Tokens of the longest cached prefix of ``text``; every prefix of it is cached afterwards."""
        step, first = 4 * CACHE_STEP_TOKENS, 4 * CACHE_MIN_TOKENS
        h = hashlib.sha1()
        pos = best = 0
        seen: list[bytes] = []
        for end in range(first, len(text) + 1, step):
            h.update(text[pos:end].encode())
            pos = end
            seen.append(h.digest())
        with self._lock:
            for i, d in enumerate(seen):
                if d in self._prefixes:
                    best = first + i * step
            self._prefixes.update(seen)
        return best // 4

    def _next(self, kind: str) -> Any:
        with self._lock:
            return self.scripts[kind].popleft() if self.scripts[kind] else None

    # -- life cycle -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> StubServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    server._handle(self, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-stub", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- handling -----------------------------------------------------------------------
    def _send_json(
        self, h: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client timed out and left
            h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        path = h.path.rstrip("/")
        headers = {k.lower(): v for k, v in h.headers.items()}
        if path.endswith("/embeddings"):
            self.requests.append(Recorded(path, "embed", body, headers))
            return self._embeddings(h, body)
        if not path.endswith("/chat/completions"):
            return self._send_json(h, 404, {"error": {"message": f"no route {path}"}})
        messages = body.get("messages") or []
        kind = _kind(messages)
        rec = Recorded(path, kind, body, headers)
        self.requests.append(rec)
        if self.down:
            return self._send_json(h, 503, {"error": {"message": "stub is down", "type": "server_error"}})
        answer = self._next(kind)
        if isinstance(answer, Fail):
            extra = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else {}
            return self._send_json(
                h,
                answer.status,
                {
                    "error": {
                        "message": answer.message,
                        "type": "rate_limit" if answer.status == 429 else "server_error",
                    }
                },
                extra,
            )
        if isinstance(answer, Drop):
            h.close_connection = True
            h.connection.close()
            return None
        if isinstance(answer, Hang):
            time.sleep(answer.seconds)
            answer = None
        text = answer if isinstance(answer, str) else self.default_answer(kind, messages)
        rec.answered = text
        prompt_tokens = sum(_tokens(str(m.get("content") or "")) for m in messages)
        cached = min(prompt_tokens, self.cached_tokens(_prompt_text(str(body.get("model")), messages)))
        usage = {
            "prompt_tokens": prompt_tokens,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens": _tokens(text) + self.reasoning_tokens,
            "total_tokens": prompt_tokens + _tokens(text) + self.reasoning_tokens,
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }
        model = body.get("model", "stub")
        cid = "chatcmpl-" + hashlib.md5(text.encode()).hexdigest()[:12]
        if body.get("stream"):
            return self._stream(
                h, cid, model, text, usage, bool((body.get("stream_options") or {}).get("include_usage"))
            )
        self._send_json(
            h,
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            },
        )
        return None

    def _stream(
        self, h: BaseHTTPRequestHandler, cid: str, model: str, text: str, usage: dict, include_usage: bool
    ) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True

        def event(payload: dict | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            h.wfile.write(f"data: {data}\n\n".encode())
            h.wfile.flush()

        base = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        step = 64
        for i in range(0, len(text), step):
            event({**base, "choices": [{"index": 0, "delta": {"content": text[i : i + step]}, "finish_reason": None}]})
        event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if include_usage:
            event({**base, "choices": [], "usage": usage})
        event("[DONE]")

    def _embeddings(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        inputs = body.get("input") or []
        if isinstance(inputs, str):
            inputs = [inputs]
        data = []
        for i, text in enumerate(inputs):
            digest = hashlib.sha256(str(text).encode()).digest()
            vec = [(b - 128) / 128.0 for b in digest[:16]]
            data.append({"object": "embedding", "index": i, "embedding": vec})
        tokens = sum(_tokens(str(t)) for t in inputs)
        self._send_json(
            h,
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "stub-embed"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )
